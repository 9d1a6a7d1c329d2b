//! A node's long-term identity: an ed25519 signing key and an x25519 static secret.
//!
//! On-disk format (docs/protocol.md §3.2): a small text file
//! ```text
//! veilmesh-identity v1
//! ed25519-secret <64 lowercase hex digits>
//! x25519-secret <64 lowercase hex digits>
//! ```
//! Empty lines and lines starting with `#` are ignored when reading.

use core::fmt;

use ed25519_dalek::{Signer, SigningKey};
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::secret::SecretBytes;
use super::{hash_labeled, node_id};
use crate::wire::NodeId;

/// First line of an identity file.
pub const IDENTITY_FILE_HEADER: &str = "veilmesh-identity v1";
const ED_PREFIX: &str = "ed25519-secret ";
const X_PREFIX: &str = "x25519-secret ";
/// Length of the identity proof carried in handshake messages 2 and 3: ed25519 pub || signature.
pub const LINK_PROOF_LEN: usize = 96;

/// Why an identity file could not be read. Never contains secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A line is not the one expected at this point of the file.
    #[error("identity file line {line}: expected `{expected}`")]
    UnexpectedLine {
        /// 1-based line number.
        line: usize,
        /// What should have been there.
        expected: &'static str,
    },
    /// A secret is not exactly 64 hex digits.
    #[error("identity file line {line}: secret must be exactly 64 hex digits")]
    BadHex {
        /// 1-based line number.
        line: usize,
    },
    /// The file ended before a required line.
    #[error("identity file ends before the line `{expected}`")]
    Missing {
        /// The missing line.
        expected: &'static str,
    },
}

/// A node's secret identity. `Debug` prints the node id only; both keys are zeroized when
/// dropped (the dalek types do it themselves).
#[derive(Clone)]
pub struct Identity {
    ed25519: SigningKey,
    x25519: StaticSecret,
}

/// The public half of an identity, as peers learn it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    /// ed25519 public key: signs announcements and link proofs.
    pub ed25519: [u8; 32],
    /// x25519 public key: the Noise static key.
    pub x25519: [u8; 32],
}

impl PublicIdentity {
    /// The node id: BLAKE2s-128 over the ed25519 public key (see `crypto::node_id`).
    pub fn node_id(&self) -> NodeId {
        node_id(&self.ed25519)
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicIdentity({})", self.node_id())
    }
}

impl Identity {
    /// A fresh identity from the caller's RNG.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Identity {
        let mut ed = Zeroizing::new([0u8; 32]);
        let mut x = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *ed);
        rng.fill_bytes(&mut *x);
        Identity::from_secrets(*ed, *x)
    }

    /// An identity from its two 32-byte secrets (the ed25519 seed and the x25519 scalar).
    /// The copies passed in are wiped; the caller wipes its own.
    pub fn from_secrets(mut ed25519_secret: [u8; 32], mut x25519_secret: [u8; 32]) -> Identity {
        let identity = Identity {
            ed25519: SigningKey::from_bytes(&ed25519_secret),
            x25519: StaticSecret::from(x25519_secret),
        };
        ed25519_secret.zeroize();
        x25519_secret.zeroize();
        identity
    }

    /// The public keys.
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            ed25519: self.ed25519.verifying_key().to_bytes(),
            x25519: PublicKey::from(&self.x25519).to_bytes(),
        }
    }

    /// The node id of this identity.
    pub fn node_id(&self) -> NodeId {
        self.public().node_id()
    }

    /// The x25519 secret, for the Noise builder only; the copy is zeroized when dropped.
    pub(crate) fn x25519_secret(&self) -> SecretBytes {
        SecretBytes::from(self.x25519.as_bytes().to_vec())
    }

    /// ed25519 signature over a 32-byte digest.
    pub(crate) fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 64] {
        self.ed25519.sign(digest).to_bytes()
    }

    /// A key for deriving hash-chain seeds, so the raw signing seed is hashed in one place.
    pub(crate) fn chain_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hash_labeled::<32>(
            b"veilmesh chain key v1",
            &[self.ed25519.as_bytes()],
        ))
    }

    /// Handshake identity proof: ed25519 public key || signature over
    /// `hash_labeled::<32>("veilmesh link id v1", [x25519 public])`.
    pub fn link_proof(&self) -> [u8; LINK_PROOF_LEN] {
        let public = self.public();
        let digest = link_proof_digest(&public.x25519);
        let mut out = [0u8; LINK_PROOF_LEN];
        out[..32].copy_from_slice(&public.ed25519);
        out[32..].copy_from_slice(&self.sign_digest(&digest));
        out
    }

    /// The identity file text (§3.2). Contains the secrets: write it with mode 0600. It is
    /// zeroized when dropped.
    pub fn to_file_string(&self) -> Zeroizing<String> {
        let ed = Zeroizing::new(crate::hexstr::encode(self.ed25519.as_bytes()));
        let x = Zeroizing::new(crate::hexstr::encode(self.x25519.as_bytes()));
        let parts = [
            IDENTITY_FILE_HEADER,
            "\n",
            ED_PREFIX,
            ed.as_str(),
            "\n",
            X_PREFIX,
            x.as_str(),
            "\n",
        ];
        // Sized up front: a String that grows leaves copies of the secrets in freed memory.
        let mut text = Zeroizing::new(String::with_capacity(parts.iter().map(|p| p.len()).sum()));
        parts.iter().for_each(|p| text.push_str(p));
        text
    }

    /// Parse an identity file; the error names the offending line.
    pub fn from_file_str(text: &str) -> Result<Identity, IdentityError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let mut next =
            |expected: &'static str| lines.next().ok_or(IdentityError::Missing { expected });
        let (n, header) = next(IDENTITY_FILE_HEADER)?;
        if header != IDENTITY_FILE_HEADER {
            return Err(IdentityError::UnexpectedLine {
                line: n,
                expected: IDENTITY_FILE_HEADER,
            });
        }
        let ed = Zeroizing::new(secret_line(
            next("ed25519-secret <hex>")?,
            ED_PREFIX,
            "ed25519-secret <hex>",
        )?);
        let x = Zeroizing::new(secret_line(
            next("x25519-secret <hex>")?,
            X_PREFIX,
            "x25519-secret <hex>",
        )?);
        if let Some((n, _)) = lines.next() {
            return Err(IdentityError::UnexpectedLine {
                line: n,
                expected: "end of file",
            });
        }
        Ok(Identity::from_secrets(*ed, *x))
    }
}

impl ZeroizeOnDrop for Identity {}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, secrets redacted)", self.node_id())
    }
}

/// The digest an identity proof signs: binds the ed25519 identity to the Noise static key.
pub(crate) fn link_proof_digest(x25519_public: &[u8; 32]) -> [u8; 32] {
    hash_labeled::<32>(b"veilmesh link id v1", &[x25519_public])
}

fn secret_line(
    (n, line): (usize, &str),
    prefix: &str,
    expected: &'static str,
) -> Result<[u8; 32], IdentityError> {
    let hex = line
        .strip_prefix(prefix)
        .ok_or(IdentityError::UnexpectedLine { line: n, expected })?;
    let bytes =
        Zeroizing::new(crate::hexstr::decode(hex.trim()).ok_or(IdentityError::BadHex { line: n })?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| IdentityError::BadHex { line: n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn ident() -> Identity {
        Identity::generate(&mut ChaCha20Rng::from_seed([7; 32]))
    }

    #[test]
    fn file_round_trip() {
        let id = ident();
        let text = id.to_file_string();
        assert!(text.starts_with("veilmesh-identity v1\ned25519-secret "));
        let back = Identity::from_file_str(&text).unwrap();
        assert_eq!(back.public(), id.public());
        assert_eq!(
            back.x25519_secret().as_bytes(),
            id.x25519_secret().as_bytes()
        );
    }

    #[test]
    fn file_tolerates_comments_and_crlf() {
        let text = ident().to_file_string().replace('\n', "\r\n");
        let text = format!("# my router\n\n{text}\n");
        assert_eq!(
            Identity::from_file_str(&text).unwrap().public(),
            ident().public()
        );
    }

    #[test]
    fn file_errors_name_the_line() {
        let good = ident().to_file_string();
        let e = Identity::from_file_str("veilmesh-identity v2\n").unwrap_err();
        assert_eq!(
            e,
            IdentityError::UnexpectedLine {
                line: 1,
                expected: IDENTITY_FILE_HEADER
            }
        );
        let bad = good.replacen("ed25519-secret ", "ed25519-secret zz", 1);
        assert_eq!(
            Identity::from_file_str(&bad).unwrap_err(),
            IdentityError::BadHex { line: 2 }
        );
        let swapped: Vec<&str> = good.lines().collect();
        let swapped = format!("{}\n{}\n{}\n", swapped[0], swapped[2], swapped[1]);
        assert!(matches!(
            Identity::from_file_str(&swapped),
            Err(IdentityError::UnexpectedLine { line: 2, .. })
        ));
        let short: String = good.lines().take(2).map(|l| format!("{l}\n")).collect();
        assert!(matches!(
            Identity::from_file_str(&short),
            Err(IdentityError::Missing { .. })
        ));
        let extra = format!("{}junk\n", good.as_str());
        assert!(matches!(
            Identity::from_file_str(&extra),
            Err(IdentityError::UnexpectedLine { line: 4, .. })
        ));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let id = ident();
        let dbg = format!("{id:?}");
        let ed_hex = crate::hexstr::encode(&id.ed25519.to_bytes());
        assert!(!dbg.contains(&ed_hex[..16]));
        assert!(!dbg.contains(&crate::hexstr::encode(&id.x25519_secret())[..16]));
        assert!(dbg.contains(&id.node_id().to_string()));
    }

    #[test]
    fn link_proof_verifies_against_own_key() {
        let id = ident();
        let proof = id.link_proof();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&id.public().ed25519).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&proof[32..].try_into().unwrap());
        let digest = link_proof_digest(&id.public().x25519);
        assert!(vk.verify_strict(&digest, &sig).is_ok());
        assert_eq!(&proof[..32], &id.public().ed25519);
    }
}
