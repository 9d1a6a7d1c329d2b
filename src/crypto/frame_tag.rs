//! The mesh-PSK tag that ends every clear frame (hello, handshake): a frame without a
//! valid tag starts nothing and costs its receiver one hash, so an outsider can neither
//! make a node handshake nor take the place of a genuine handshake message
//! (docs/protocol.md §3.5).

use core::fmt;

use super::handshake::MeshPsk;
use super::hash_labeled;
use crate::wire::{MacAddr, FRAME_TAG_LEN};

/// The key of clear-frame tags, derived from the mesh PSK. `Debug` is redacted.
#[derive(Clone)]
pub struct FrameTagKey([u8; 32]);

impl FrameTagKey {
    /// `hash_labeled::<32>("veilmesh frame tag key v1", [psk])`.
    pub fn derive(psk: &MeshPsk) -> FrameTagKey {
        FrameTagKey(hash_labeled::<32>(
            b"veilmesh frame tag key v1",
            &[psk.as_bytes()],
        ))
    }

    /// `hash_labeled::<16>("veilmesh frame tag v1", [key, src MAC, dst MAC, covered])`:
    /// binding both MACs makes a recorded frame useless from, or toward, any other station.
    pub fn tag(&self, src: MacAddr, dst: MacAddr, covered: &[u8]) -> [u8; FRAME_TAG_LEN] {
        hash_labeled::<FRAME_TAG_LEN>(
            b"veilmesh frame tag v1",
            &[&self.0, &src.0, &dst.0, covered],
        )
    }

    /// Whether `tag` is the tag of `covered` sent from `src` to `dst` (constant time).
    pub fn verify(
        &self,
        src: MacAddr,
        dst: MacAddr,
        covered: &[u8],
        tag: &[u8; FRAME_TAG_LEN],
    ) -> bool {
        let want = self.tag(src, dst, covered);
        want.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Drop for FrameTagKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl zeroize::ZeroizeOnDrop for FrameTagKey {}

impl fmt::Debug for FrameTagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FrameTagKey(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(i: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, i])
    }

    #[test]
    fn tag_binds_key_macs_and_bytes() {
        let k = FrameTagKey::derive(&MeshPsk::derive(b"m", None));
        let t = k.tag(mac(1), mac(2), b"abc");
        assert!(k.verify(mac(1), mac(2), b"abc", &t));
        assert!(!k.verify(mac(3), mac(2), b"abc", &t), "another source");
        assert!(!k.verify(mac(1), mac(3), b"abc", &t), "another destination");
        assert!(!k.verify(mac(1), mac(2), b"abd", &t), "other bytes");
        let other = FrameTagKey::derive(&MeshPsk::derive(b"m", Some(b"secret")));
        assert!(
            !other.verify(mac(1), mac(2), b"abc", &t),
            "another mesh secret"
        );
    }
}
