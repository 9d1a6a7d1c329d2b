//! Which peers a node accepts a link session with: everyone holding the mesh PSK, or an
//! allow-list of ed25519 keys (a "darknet").

use std::collections::BTreeSet;

/// Most keys an allow-list may hold (bounds memory; a darknet is a small, known group).
pub const MAX_ALLOW_LIST: usize = 4096;

/// The allow-list given was longer than `MAX_ALLOW_LIST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("allow-list has {0} keys, more than the limit of {MAX_ALLOW_LIST}")]
pub struct AllowListTooLong(pub usize);

/// Accept policy, checked on both sides of every handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AcceptPolicy {
    /// Accept any peer that completes the handshake (i.e. knows the mesh PSK).
    #[default]
    Open,
    /// Accept only these ed25519 public keys.
    AllowList(BTreeSet<[u8; 32]>),
}

impl AcceptPolicy {
    /// An allow-list policy, refusing lists longer than `MAX_ALLOW_LIST`.
    pub fn allow_list(
        keys: impl IntoIterator<Item = [u8; 32]>,
    ) -> Result<AcceptPolicy, AllowListTooLong> {
        let mut set = BTreeSet::new();
        for k in keys {
            set.insert(k);
            if set.len() > MAX_ALLOW_LIST {
                return Err(AllowListTooLong(set.len()));
            }
        }
        Ok(AcceptPolicy::AllowList(set))
    }

    /// Whether a peer with this ed25519 key may hold a session with us.
    pub fn permits(&self, ed25519: &[u8; 32]) -> bool {
        match self {
            AcceptPolicy::Open => true,
            AcceptPolicy::AllowList(set) => set.contains(ed25519),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_permits_only_members_and_is_bounded() {
        let p = AcceptPolicy::allow_list([[1; 32], [2; 32]]).unwrap();
        assert!(p.permits(&[1; 32]));
        assert!(!p.permits(&[3; 32]));
        assert!(AcceptPolicy::Open.permits(&[3; 32]));
        let too_many = (0..=MAX_ALLOW_LIST as u32).map(|i| {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            k
        });
        assert_eq!(
            AcceptPolicy::allow_list(too_many),
            Err(AllowListTooLong(MAX_ALLOW_LIST + 1))
        );
    }
}
