//! Key-derived IPv6 overlay addresses: a ULA /48 from the mesh name, an 80-bit interface id
//! from the node id (docs/protocol.md §5.1).

use std::fmt;
use std::net::Ipv6Addr;

use crate::crypto::{hash_labeled, node_id};
use crate::wire::NodeId;

/// Domain-separation label of the mesh prefix hash.
pub const PREFIX_LABEL: &[u8] = b"veilmesh prefix v1";
/// Length of the mesh prefix in bytes (a /48).
pub const PREFIX_LEN: usize = 6;
/// Length of the prefix in bits.
pub const PREFIX_BITS: u8 = 48;
/// Length of an interface id in bytes (80 bits).
pub const IID_LEN: usize = 10;
/// First byte of every RFC 4193 locally assigned ULA (fc00::/7 with L = 1).
pub const ULA_BYTE: u8 = 0xfd;

/// An 80-bit interface id: the first 10 bytes of a node id.
pub type Iid = [u8; IID_LEN];

/// The mesh's /48: `fd` followed by a 40-bit global id derived from the mesh name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MeshPrefix(pub [u8; PREFIX_LEN]);

impl MeshPrefix {
    /// The six prefix bytes.
    pub const fn bytes(&self) -> [u8; PREFIX_LEN] {
        self.0
    }

    /// The prefix as an address with a zero interface part (`fdxx:xxxx:xxxx::`).
    pub fn network(&self) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o[..PREFIX_LEN].copy_from_slice(&self.0);
        Ipv6Addr::from(o)
    }

    /// Whether `addr` lies inside this /48.
    pub fn contains(&self, addr: &Ipv6Addr) -> bool {
        addr.octets()[..PREFIX_LEN] == self.0
    }
}

impl fmt::Display for MeshPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), PREFIX_BITS)
    }
}

impl fmt::Debug for MeshPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeshPrefix({self})")
    }
}

/// The mesh prefix: `fd || BLAKE2s-40("veilmesh prefix v1", mesh_name)`.
pub fn mesh_prefix(mesh_name: &[u8]) -> MeshPrefix {
    let gid = hash_labeled::<5>(PREFIX_LABEL, &[mesh_name]);
    let mut p = [ULA_BYTE; PREFIX_LEN];
    p[1..].copy_from_slice(&gid);
    MeshPrefix(p)
}

/// The interface id of a node: the first 80 bits of its node id.
pub fn iid_for(node: &NodeId) -> Iid {
    let mut iid = [0u8; IID_LEN];
    iid.copy_from_slice(&node.0[..IID_LEN]);
    iid
}

/// The overlay IPv6 address of `node` in the mesh `prefix`: prefix48 || iid80.
pub fn ipv6_for(prefix: &MeshPrefix, node: &NodeId) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[..PREFIX_LEN].copy_from_slice(&prefix.0);
    o[PREFIX_LEN..].copy_from_slice(&iid_for(node));
    Ipv6Addr::from(o)
}

/// The interface id of `addr`, or `None` if `addr` is not inside `prefix`.
pub fn iid_of(prefix: &MeshPrefix, addr: &Ipv6Addr) -> Option<Iid> {
    let o = addr.octets();
    if o[..PREFIX_LEN] != prefix.0 {
        return None;
    }
    let mut iid = [0u8; IID_LEN];
    iid.copy_from_slice(&o[PREFIX_LEN..]);
    Some(iid)
}

/// Whether `addr` is the overlay address of the holder of `ed25519_public` in `prefix`.
pub fn address_belongs_to(prefix: &MeshPrefix, addr: &Ipv6Addr, ed25519_public: &[u8; 32]) -> bool {
    *addr == ipv6_for(prefix, &node_id(ed25519_public))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    /// The ed25519 public key of the fixed secret seed `[seed; 32]` (test vectors).
    pub(crate) fn test_key(seed: u8) -> [u8; 32] {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    }

    #[test]
    fn known_answer_vectors() {
        let a = test_key(1);
        assert_eq!(
            hex::encode(a),
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
        );
        assert_eq!(
            hex::encode(node_id(&a).0),
            "6ff099f13d166b267914838357646913"
        );
        let p = mesh_prefix(b"veilmesh");
        assert_eq!(p.to_string(), "fdfb:9112:e04a::/48");
        assert_eq!(
            ipv6_for(&p, &node_id(&a)).to_string(),
            "fdfb:9112:e04a:6ff0:99f1:3d16:6b26:7914"
        );
        assert_eq!(mesh_prefix(b"").to_string(), "fd22:83aa:a9ac::/48");
        let b = test_key(2);
        assert_eq!(
            hex::encode(b),
            "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
        );
        assert_eq!(
            ipv6_for(&p, &node_id(&b)).to_string(),
            "fdfb:9112:e04a:b75e:ab15:6d4f:c20a:9789"
        );
    }

    #[test]
    fn prefix_is_ula_and_depends_on_name() {
        let p = mesh_prefix(b"camp");
        assert_eq!(p.0[0], 0xfd);
        assert_ne!(p, mesh_prefix(b"Camp"));
        assert_eq!(p, mesh_prefix(b"camp"));
        assert!(p.contains(&p.network()));
    }

    #[test]
    fn iid_round_trips_and_rejects_foreign_prefix() {
        let p = mesh_prefix(b"veilmesh");
        let id = node_id(&test_key(2));
        let addr = ipv6_for(&p, &id);
        assert_eq!(iid_of(&p, &addr), Some(iid_for(&id)));
        assert_eq!(&iid_for(&id)[..], &id.0[..10]);
        let other = mesh_prefix(b"elsewhere");
        assert_eq!(iid_of(&other, &addr), None);
        assert_eq!(iid_of(&p, &Ipv6Addr::LOCALHOST), None);
    }

    #[test]
    fn address_is_bound_to_the_key() {
        let p = mesh_prefix(b"veilmesh");
        let (a, b) = (test_key(1), test_key(2));
        let addr_a = ipv6_for(&p, &node_id(&a));
        assert!(address_belongs_to(&p, &addr_a, &a));
        assert!(!address_belongs_to(&p, &addr_a, &b));
        let other = mesh_prefix(b"other");
        assert!(!address_belongs_to(&other, &addr_a, &a));
    }
}
