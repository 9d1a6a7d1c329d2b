//! The address book: which node owns a destination address (docs/protocol.md §5.4).
//!
//! Filled from verified announcements only. IPv6 lookups go by interface id; IPv4 lookups
//! go to the holder of the address in the claim table, so conflicts resolve by the rule of
//! `claims` and not by arrival order. Lookups do not allocate.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::address::{iid_for, iid_of, Iid, MeshPrefix};
use super::claims::{ClaimError, ClaimOutcome, Ipv4Claim, Ipv4Claims};
use super::classify::PacketClass;
use super::ipv4::Ipv4Pool;
use crate::wire::NodeId;

/// Default bound on the number of nodes in the book.
pub const MAX_BOOK_ENTRIES: usize = 4096;

/// What `learn` did with a node's IPv6 interface id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Learned6 {
    /// The node was added.
    New,
    /// The node was already known.
    Known,
    /// Another node already holds this interface id (an 80-bit collision); kept the first.
    IidTaken {
        /// The node that holds the interface id.
        holder: NodeId,
    },
    /// The book is full and the node is new; nothing stored.
    TableFull,
}

/// The result of `learn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// What happened to the IPv6 entry.
    pub ipv6: Learned6,
    /// What happened to the IPv4 claim; `None` if none was given, no pool is configured
    /// or the node was not stored.
    pub ipv4: Option<ClaimOutcome>,
}

/// Drop counters of the address book (the claim table has its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookCounters {
    /// New nodes refused because the book was full.
    pub full_drops: u64,
    /// Nodes whose interface id another node already held.
    pub iid_conflicts: u64,
    /// IPv4 claims that named another node than their announcement.
    pub wrong_node_claims: u64,
}

/// A bounded map from interface id and IPv4 address to node id.
#[derive(Debug, Clone)]
pub struct AddressBook {
    prefix: MeshPrefix,
    cap: usize,
    iids: BTreeMap<Iid, NodeId>,
    claims: Option<Ipv4Claims>,
    counters: BookCounters,
}

impl AddressBook {
    /// An empty book for `prefix` (and `pool`, if IPv4 is on) of `MAX_BOOK_ENTRIES` nodes.
    pub fn new(prefix: MeshPrefix, pool: Option<Ipv4Pool>) -> Self {
        Self::with_capacity(prefix, pool, MAX_BOOK_ENTRIES)
    }

    /// An empty book holding at most `cap` nodes (and `cap` IPv4 claims).
    pub fn with_capacity(prefix: MeshPrefix, pool: Option<Ipv4Pool>, cap: usize) -> Self {
        AddressBook {
            prefix,
            cap,
            iids: BTreeMap::new(),
            claims: pool.map(|p| Ipv4Claims::with_capacity(p, cap)),
            counters: BookCounters::default(),
        }
    }

    /// The mesh prefix.
    pub fn prefix(&self) -> &MeshPrefix {
        &self.prefix
    }

    /// The IPv4 claim table, if IPv4 is on.
    pub fn claims(&self) -> Option<&Ipv4Claims> {
        self.claims.as_ref()
    }

    /// Number of nodes with an IPv6 entry.
    pub fn len(&self) -> usize {
        self.iids.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.iids.is_empty()
    }

    /// Drop counters.
    pub fn counters(&self) -> BookCounters {
        self.counters
    }

    /// Records a node from a verified announcement: `node` must be `crypto::node_id` of
    /// the announcement's key, `ipv4` the claim the announcement carries (if any).
    ///
    /// A full book refuses new nodes rather than evicting, so a flood of fresh keys cannot
    /// push known nodes out; the node layer calls `forget` when an originator expires.
    pub fn learn(&mut self, node: NodeId, ipv4: Option<Ipv4Claim>) -> Learned {
        let ipv6 = self.learn6(node);
        if ipv6 == Learned6::TableFull {
            return Learned { ipv6, ipv4: None };
        }
        let ipv4 = match (ipv4, self.claims.as_mut()) {
            (Some(c), Some(_)) if c.node != node => {
                self.counters.wrong_node_claims += 1;
                Some(ClaimOutcome::Rejected(ClaimError::WrongNode))
            }
            (Some(c), Some(t)) => Some(t.observe_claim(c)),
            _ => None,
        };
        Learned { ipv6, ipv4 }
    }

    fn learn6(&mut self, node: NodeId) -> Learned6 {
        let iid = iid_for(&node);
        match self.iids.get(&iid) {
            Some(h) if *h == node => Learned6::Known,
            Some(h) => {
                self.counters.iid_conflicts += 1;
                Learned6::IidTaken { holder: *h }
            }
            None if self.iids.len() >= self.cap => {
                self.counters.full_drops += 1;
                Learned6::TableFull
            }
            None => {
                self.iids.insert(iid, node);
                Learned6::New
            }
        }
    }

    /// Drops everything known about `node`; returns whether anything was stored.
    pub fn forget(&mut self, node: &NodeId) -> bool {
        let iid = iid_for(node);
        let had6 = self.iids.get(&iid) == Some(node) && self.iids.remove(&iid).is_some();
        let had4 = self.claims.as_mut().and_then(|t| t.forget(node)).is_some();
        had6 || had4
    }

    /// The node owning interface id `iid`.
    pub fn lookup_iid(&self, iid: &Iid) -> Option<NodeId> {
        self.iids.get(iid).copied()
    }

    /// The node owning IPv6 address `addr` (must be in the prefix).
    pub fn lookup_v6(&self, addr: &Ipv6Addr) -> Option<NodeId> {
        self.lookup_iid(&iid_of(&self.prefix, addr)?)
    }

    /// The node holding IPv4 address `addr` under the conflict rule.
    pub fn lookup_v4(&self, addr: &Ipv4Addr) -> Option<NodeId> {
        self.claims.as_ref()?.holder(addr).map(|c| c.node)
    }

    /// The node owning destination `dst`.
    pub fn lookup(&self, dst: &IpAddr) -> Option<NodeId> {
        match dst {
            IpAddr::V6(a) => self.lookup_v6(a),
            IpAddr::V4(a) => self.lookup_v4(a),
        }
    }

    /// The node a classified packet goes to, if it is routable and known.
    pub fn lookup_class(&self, class: &PacketClass) -> Option<NodeId> {
        match class {
            PacketClass::Overlay6 { iid } => self.lookup_iid(iid),
            PacketClass::Pool4 { dst } => self.lookup_v4(dst),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
