//! `veil id`: what an identity means on a mesh — public keys, node id, overlay address.
//! (`veil keygen` and the daemon write and read the file with `daemon::identity_file`.)

use std::net::Ipv6Addr;

use serde::Serialize;

use crate::crypto::Identity;
use crate::overlay::{ipv6_for, mesh_prefix};

/// What `veil id` shows.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityInfo {
    /// ed25519 public key, hex.
    pub ed25519: String,
    /// x25519 public key, hex.
    pub x25519: String,
    /// Node id (BLAKE2s-128 of the ed25519 key), hex.
    pub node_id: String,
    /// The mesh the address is for.
    pub mesh: String,
    /// Overlay IPv6 address on that mesh.
    pub ipv6: Ipv6Addr,
}

/// What an identity means on mesh `mesh`.
pub fn info(identity: &Identity, mesh: &str) -> IdentityInfo {
    let public = identity.public();
    let id = identity.node_id();
    IdentityInfo {
        ed25519: crate::hexstr::encode(&public.ed25519),
        x25519: crate::hexstr::encode(&public.x25519),
        node_id: crate::hexstr::encode(&id.0),
        mesh: mesh.to_string(),
        ipv6: ipv6_for(&mesh_prefix(mesh.as_bytes()), &id),
    }
}

impl IdentityInfo {
    /// The human form: one `name value` line each.
    pub fn render_text(&self) -> String {
        format!(
            "node id   {}\ned25519   {}\nx25519    {}\nmesh      {}\nipv6      {}\n",
            self.node_id, self.ed25519, self.x25519, self.mesh, self.ipv6
        )
    }
}
