//! The protocol node as a simulated host, and the factory `veil sim` and the tests use.

use std::net::Ipv6Addr;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::SimHost;
use crate::crypto::Identity;
use crate::node::{IfaceId, Node, NodeConfig, Transmit};
use crate::time::Instant;
use crate::wire::{MacAddr, NodeId};

impl SimHost for Node {
    fn node_id(&self) -> NodeId {
        Node::node_id(self)
    }

    fn overlay_addr(&self) -> Ipv6Addr {
        self.overlay_ipv6()
    }

    fn handle_frame(&mut self, now: Instant, iface: IfaceId, src: MacAddr, frame: &[u8]) {
        Node::handle_frame(self, now, iface, src, frame);
    }

    fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) {
        Node::handle_ip_packet(self, now, packet);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        Node::poll_transmit(self, buf)
    }

    fn poll_deliver(&mut self, buf: &mut [u8]) -> Option<usize> {
        Node::poll_deliver(self, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }

    fn next_hop(&self, dst: &NodeId) -> Option<MacAddr> {
        Node::next_hop(self, dst).map(|(_, mac)| mac)
    }

    fn circuit_builds(&self) -> Option<super::host::CircuitBuilds> {
        let s = self.stats();
        Some(super::host::CircuitBuilds {
            sent: s.onion_builds_sent,
            built: s.onion_circuits_built,
            timed_out: s.drops(crate::node::DropReason::OnionBuildTimeout),
            ms_buckets: s.onion_build_ms.to_vec(),
        })
    }

    fn control_bytes_sent(&self) -> u64 {
        // Counted like the medium counts every other frame: Ethernet header included.
        let s = self.stats();
        s.unicast_control_bytes_out
            + s.unicast_control_frames_out * crate::wire::ETH_HEADER_LEN as u64
    }
}

/// The identity of simulated node `index` under `seed`: the same across restarts.
pub fn sim_identity(seed: u64, index: usize) -> Identity {
    let mut rng =
        ChaCha20Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    Identity::generate(&mut rng)
}

/// A factory of protocol nodes for the simulator: node `index` keeps its identity over
/// restarts; each restart (`epoch`) gets fresh randomness.
pub fn node_factory(
    seed: u64,
    cfg: NodeConfig,
) -> impl FnMut(usize, u32, MacAddr, Instant) -> Node {
    move |index, epoch, mac, now| {
        let identity = sim_identity(seed, index);
        let mut rng = ChaCha20Rng::seed_from_u64(
            seed.rotate_left(17) ^ (index as u64) << 20 ^ u64::from(epoch),
        );
        let mut node_seed = [0u8; 32];
        rng.fill_bytes(&mut node_seed);
        build_node(cfg.clone(), identity, epoch, node_seed, mac, now)
    }
}

fn build_node(
    cfg: NodeConfig,
    identity: Identity,
    epoch: u32,
    seed: [u8; 32],
    mac: MacAddr,
    now: Instant,
) -> Node {
    // Node::new fails only if a hash chain of the default length cannot be built, which
    // is a programming error; the simulator is not the place to recover from it.
    #[allow(clippy::expect_used)]
    let mut node = Node::new(cfg, identity, epoch, seed, now).expect("node with default chain");
    node.add_interface(now, IfaceId(0), mac);
    node
}
