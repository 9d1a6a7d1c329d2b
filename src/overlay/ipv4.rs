//! Optional IPv4 overlay addresses: a configured pool and key-derived candidates
//! (docs/protocol.md §5.2). Conflict resolution lives in `claims`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::crypto::hash_labeled;

/// Domain-separation label of the IPv4 candidate hash.
pub const IPV4_LABEL: &[u8] = b"veilmesh ipv4 v1";
/// Highest claim index a node may use; 255 is left to the announcement to mean "no claim".
pub const MAX_CLAIM_INDEX: u8 = 254;
/// Shortest pool prefix accepted (a /8 has 2^24 - 2 hosts).
pub const MIN_POOL_PREFIX: u8 = 8;
/// Longest pool prefix accepted (a /30 has 2 hosts).
pub const MAX_POOL_PREFIX: u8 = 30;
/// The default pool, 10.77.0.0/16.
pub const DEFAULT_POOL: Ipv4Pool = Ipv4Pool {
    network: 0x0a4d_0000,
    prefix_len: 16,
};

/// Why a pool configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The prefix length is outside /8../30.
    #[error("IPv4 pool prefix length /{0} not allowed: use a prefix length from /8 to /30")]
    PrefixLength(u8),
    /// The address has bits set below the prefix length.
    #[error(
        "IPv4 pool {addr}/{prefix_len} has host bits set: did you mean {network}/{prefix_len}?"
    )]
    HostBitsSet {
        /// The address as configured.
        addr: Ipv4Addr,
        /// The configured prefix length.
        prefix_len: u8,
        /// The address with the host bits cleared.
        network: Ipv4Addr,
    },
    /// The text is not `a.b.c.d/len`.
    #[error("IPv4 pool {0:?} is not of the form a.b.c.d/len (for example 10.77.0.0/16)")]
    Syntax(String),
}

/// An IPv4 pool `network/prefix_len` with prefix length 8..=30.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Pool {
    network: u32,
    prefix_len: u8,
}

impl Ipv4Pool {
    /// A pool; refuses prefix lengths outside 8..=30 and addresses with host bits set.
    pub fn new(network: Ipv4Addr, prefix_len: u8) -> Result<Self, PoolError> {
        if !(MIN_POOL_PREFIX..=MAX_POOL_PREFIX).contains(&prefix_len) {
            return Err(PoolError::PrefixLength(prefix_len));
        }
        let addr = u32::from(network);
        let mask = u32::MAX << (32 - prefix_len);
        if addr & !mask != 0 {
            return Err(PoolError::HostBitsSet {
                addr: network,
                prefix_len,
                network: Ipv4Addr::from(addr & mask),
            });
        }
        Ok(Ipv4Pool {
            network: addr,
            prefix_len,
        })
    }

    /// The network address (all host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// The prefix length, 8..=30.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The broadcast address (all host bits one).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network | !self.mask())
    }

    /// Number of assignable addresses: 2^(32 - prefix_len) - 2.
    pub fn host_count(&self) -> u32 {
        (1u32 << (32 - self.prefix_len)) - 2
    }

    /// Whether `addr` lies in the pool (network and broadcast included).
    pub fn contains(&self, addr: &Ipv4Addr) -> bool {
        u32::from(*addr) & self.mask() == self.network
    }

    /// Whether `addr` is an assignable address of the pool (not network, not broadcast).
    pub fn is_host(&self, addr: &Ipv4Addr) -> bool {
        self.contains(addr) && *addr != self.network() && *addr != self.broadcast()
    }

    /// Candidate `index` of the key: network + 1 + (H(key, index) mod host_count).
    pub fn candidate(&self, ed25519_public: &[u8; 32], index: u8) -> Ipv4Addr {
        let h = u32::from_be_bytes(hash_labeled::<4>(IPV4_LABEL, &[ed25519_public, &[index]]));
        Ipv4Addr::from(self.network + 1 + h % self.host_count())
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix_len)
    }
}

impl Default for Ipv4Pool {
    fn default() -> Self {
        DEFAULT_POOL
    }
}

impl FromStr for Ipv4Pool {
    type Err = PoolError;

    fn from_str(s: &str) -> Result<Self, PoolError> {
        let syntax = || PoolError::Syntax(s.to_owned());
        let (addr, len) = s.trim().split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        let len: u8 = len.parse().map_err(|_| syntax())?;
        Ipv4Pool::new(addr, len)
    }
}

impl fmt::Display for Ipv4Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix_len)
    }
}

impl fmt::Debug for Ipv4Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ipv4Pool({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::address::tests::test_key;

    #[test]
    fn pool_bounds_and_errors() {
        let p: Ipv4Pool = "10.77.0.0/16".parse().unwrap();
        assert_eq!(p, Ipv4Pool::default());
        assert_eq!(p.host_count(), 65534);
        assert_eq!(p.broadcast(), Ipv4Addr::new(10, 77, 255, 255));
        assert_eq!(
            "10.0.0.0/7".parse::<Ipv4Pool>(),
            Err(PoolError::PrefixLength(7))
        );
        assert_eq!(
            "10.0.0.0/31".parse::<Ipv4Pool>(),
            Err(PoolError::PrefixLength(31))
        );
        assert!(matches!(
            "10.77.1.0/16".parse::<Ipv4Pool>(),
            Err(PoolError::HostBitsSet { network, .. }) if network == Ipv4Addr::new(10, 77, 0, 0)
        ));
        assert!(matches!(
            "10.77.0.0".parse::<Ipv4Pool>(),
            Err(PoolError::Syntax(_))
        ));
        assert!(matches!(
            "x/16".parse::<Ipv4Pool>(),
            Err(PoolError::Syntax(_))
        ));
        let err = "10.0.0.0/32".parse::<Ipv4Pool>().unwrap_err().to_string();
        assert!(err.contains("/8 to /30"), "{err}");
        assert_eq!(
            "10.0.0.0/8".parse::<Ipv4Pool>().unwrap().host_count(),
            (1 << 24) - 2
        );
        assert_eq!(
            "192.168.7.4/30".parse::<Ipv4Pool>().unwrap().host_count(),
            2
        );
    }

    #[test]
    fn candidates_known_answers() {
        let a = test_key(1);
        let p = Ipv4Pool::default();
        assert_eq!(p.candidate(&a, 0), Ipv4Addr::new(10, 77, 159, 30));
        assert_eq!(p.candidate(&a, 1), Ipv4Addr::new(10, 77, 176, 22));
        assert_eq!(p.candidate(&a, 254), Ipv4Addr::new(10, 77, 129, 112));
        assert_eq!(p.candidate(&test_key(2), 0), Ipv4Addr::new(10, 77, 49, 231));
        let small: Ipv4Pool = "192.168.7.0/29".parse().unwrap();
        assert_eq!(small.candidate(&a, 0), Ipv4Addr::new(192, 168, 7, 2));
        assert_eq!(small.candidate(&a, 1), Ipv4Addr::new(192, 168, 7, 2));
    }

    #[test]
    fn candidates_never_network_or_broadcast() {
        for len in [8u8, 16, 24, 29, 30] {
            let p = Ipv4Pool::new(Ipv4Addr::new(10, 0, 0, 0), len).unwrap();
            for seed in 0..8u8 {
                let key = [seed; 32];
                for k in 0..=MAX_CLAIM_INDEX {
                    let c = p.candidate(&key, k);
                    assert!(p.is_host(&c), "{c} in {p}");
                }
            }
        }
    }

    #[test]
    fn slash30_uses_both_hosts() {
        let p: Ipv4Pool = "192.168.7.4/30".parse().unwrap();
        let key = [9u8; 32];
        let seen: std::collections::BTreeSet<_> = (0..=MAX_CLAIM_INDEX)
            .map(|k| p.candidate(&key, k))
            .collect();
        let want: std::collections::BTreeSet<_> =
            [Ipv4Addr::new(192, 168, 7, 5), Ipv4Addr::new(192, 168, 7, 6)].into();
        assert_eq!(seen, want);
    }
}
