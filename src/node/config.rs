//! What a node is told at start: mesh membership, policy, addressing and queue sizes.

use crate::crypto::AcceptPolicy;
use crate::overlay::Ipv4Pool;

/// Node configuration (the daemon builds it from its TOML file and flags).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Mesh name: separates meshes (PSK input) and fixes the overlay /48.
    pub mesh_name: String,
    /// Optional mesh secret: without it a node cannot even complete a handshake.
    pub mesh_secret: Option<crate::crypto::SecretBytes>,
    /// Which peer identities may complete a handshake (open, or a darknet allow-list).
    pub policy: AcceptPolicy,
    /// IPv4 pool to claim an address from, if IPv4 is on.
    pub ipv4_pool: Option<Ipv4Pool>,
    /// Data frames waiting to be sent (slots of 1500 bytes, allocated once).
    pub tx_queue: usize,
    /// Control frames waiting to be sent, in a queue of their own (slots of 1500 bytes).
    pub tx_control_queue: usize,
    /// IP packets waiting for the TUN side.
    pub deliver_queue: usize,
    /// Handshakes (started or answered) per second over all neighbours.
    pub handshakes_per_sec: u32,
    /// Interval between our hellos (neighbour loss detection scales with it).
    pub hello_interval: crate::time::Duration,
    /// Relay other nodes' onion circuits (our onion key record says so).
    pub relay: bool,
    /// Keep onion circuits of our own built (docs/protocol.md §8.8).
    pub circuits: bool,
    /// Send IPv6 traffic to other nodes anonymously, through a circuit (docs/protocol.md
    /// §8.9); implies `circuits`.
    pub anonymous: bool,
    /// Destinations (by the interface id of their overlay address) that get direct mode
    /// even when `anonymous` is on: they see who talks to them.
    pub direct: Vec<crate::overlay::Iid>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            mesh_name: "veilmesh".to_string(),
            mesh_secret: None,
            policy: AcceptPolicy::Open,
            ipv4_pool: None,
            tx_queue: 256,
            tx_control_queue: 128,
            deliver_queue: 128,
            handshakes_per_sec: 20,
            hello_interval: crate::routing::HELLO_INTERVAL,
            relay: true,
            circuits: false,
            anonymous: false,
            direct: Vec::new(),
        }
    }
}
