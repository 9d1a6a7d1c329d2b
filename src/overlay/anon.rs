//! Ephemeral addresses of anonymous senders (docs/protocol.md §5.6): a second ULA /48 derived
//! from the mesh prefix, with a 64-bit interface id from the sender's ephemeral key; and the
//! rewrite of a packet's source (at the sender) or destination (at the sender, for replies)
//! between its own address and the ephemeral one, with the upper-layer checksum patched
//! (RFC 1624) so TCP, UDP and ICMPv6 still check.

use std::net::Ipv6Addr;

use super::address::{MeshPrefix, PREFIX_LEN, ULA_BYTE};
use super::packet::{PROTO_ICMPV6, PROTO_UDP};
use crate::crypto::hash_labeled;
pub use crate::crypto::onion::ANON_IID_LEN;

/// Domain-separation label of the anonymous prefix.
pub const ANON_PREFIX_LABEL: &[u8] = b"veilmesh anonymous prefix v1";
/// Largest IP packet an anonymous flow carries: one cell's payload, rounded down to IPv6's
/// minimum MTU.
pub const ANON_MTU: usize = 1280;

const PROTO_TCP: u8 = 6;
const SRC_AT: usize = 8;
const DST_AT: usize = 24;
const IPV6_HEADER_LEN: usize = 40;

/// The anonymous /48 of the mesh whose prefix is `mesh`: `fd || BLAKE2s-40(label, mesh)`.
pub fn anon_prefix(mesh: &MeshPrefix) -> MeshPrefix {
    let gid = hash_labeled::<5>(ANON_PREFIX_LABEL, &[&mesh.bytes()]);
    let mut p = [ULA_BYTE; PREFIX_LEN];
    p[1..].copy_from_slice(&gid);
    MeshPrefix(p)
}

/// The ephemeral address with interface id `iid`: `prefix48 | 0000 | iid64`.
pub fn anon_address(prefix: &MeshPrefix, iid: &[u8; ANON_IID_LEN]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[..PREFIX_LEN].copy_from_slice(&prefix.0);
    o[16 - ANON_IID_LEN..].copy_from_slice(iid);
    Ipv6Addr::from(o)
}

/// The interface id of `addr` if it is an ephemeral address in `prefix`.
pub fn anon_iid_of(prefix: &MeshPrefix, addr: &Ipv6Addr) -> Option<[u8; ANON_IID_LEN]> {
    let o = addr.octets();
    let (head, iid) = o.split_at(16 - ANON_IID_LEN);
    let (p, subnet) = head.split_at(PREFIX_LEN);
    (p == prefix.0 && subnet == [0, 0]).then(|| {
        let mut out = [0u8; ANON_IID_LEN];
        out.copy_from_slice(iid);
        out
    })
}

/// Why a packet cannot be carried anonymously.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// Not a whole IPv6 packet.
    #[error("not an IPv6 packet")]
    NotIpv6,
    /// Extension headers, fragments or a protocol other than TCP, UDP and ICMPv6: its
    /// checksum (if any) cannot be found without walking headers we do not carry.
    #[error("upper-layer protocol {0} is not carried anonymously")]
    Unsupported(u8),
}

/// Which address of the header a rewrite replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The source address.
    Src,
    /// The destination address.
    Dst,
}

/// Whether `packet` can be carried anonymously: a whole IPv6 packet whose next header is
/// TCP, UDP or ICMPv6 with its checksum field present. Returns the checksum's offset.
pub fn rewritable(packet: &[u8]) -> Result<usize, RewriteError> {
    let header = packet.get(..IPV6_HEADER_LEN).ok_or(RewriteError::NotIpv6)?;
    if header[0] >> 4 != 6 {
        return Err(RewriteError::NotIpv6);
    }
    let proto = header[6];
    let at = IPV6_HEADER_LEN
        + match proto {
            PROTO_TCP => 16,
            PROTO_UDP => 6,
            PROTO_ICMPV6 => 2,
            other => return Err(RewriteError::Unsupported(other)),
        };
    if packet.len() < at + 2 {
        return Err(RewriteError::Unsupported(proto));
    }
    Ok(at)
}

/// Replace the source or destination address of the IPv6 `packet` with `new` in place and
/// patch its TCP, UDP or ICMPv6 checksum for the change.
pub fn rewrite(packet: &mut [u8], field: Field, new: &Ipv6Addr) -> Result<(), RewriteError> {
    let at = rewritable(packet)?;
    let (header, rest) = packet.split_at_mut(IPV6_HEADER_LEN);
    let proto = header[6];
    let checksum = rest
        .get_mut(at - IPV6_HEADER_LEN..at - IPV6_HEADER_LEN + 2)
        .ok_or(RewriteError::Unsupported(proto))?;
    let start = match field {
        Field::Src => SRC_AT,
        Field::Dst => DST_AT,
    };
    let addr = &mut header[start..start + 16];
    let old = u16::from_be_bytes([checksum[0], checksum[1]]);
    // UDP over IPv6 must carry a checksum; a zero one (RFC 6935's tunnels) stays zero.
    if !(proto == PROTO_UDP && old == 0) {
        let mut patched = patch(old, addr, &new.octets());
        if proto == PROTO_UDP && patched == 0 {
            patched = 0xffff;
        }
        checksum.copy_from_slice(&patched.to_be_bytes());
    }
    addr.copy_from_slice(&new.octets());
    Ok(())
}

/// RFC 1624's incremental update, HC' = ~(~HC + ~m + m'), over the words of an address.
fn patch(checksum: u16, old: &[u8], new: &[u8; 16]) -> u16 {
    let mut sum = u32::from(!checksum);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::address::mesh_prefix;
    use crate::overlay::packet::{internet_checksum, sum16};

    /// A packet of `proto` with a correct upper-layer checksum at `at`.
    fn packet(proto: u8, at: usize, body_len: usize, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut p = vec![0u8; IPV6_HEADER_LEN + body_len];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(body_len as u16).to_be_bytes());
        p[6] = proto;
        p[7] = 64;
        p[8..24].copy_from_slice(&src.octets());
        p[24..40].copy_from_slice(&dst.octets());
        for (i, b) in p[IPV6_HEADER_LEN..].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        p[IPV6_HEADER_LEN + at..IPV6_HEADER_LEN + at + 2].fill(0);
        let c = !upper_sum(&p);
        p[IPV6_HEADER_LEN + at..IPV6_HEADER_LEN + at + 2].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// The complemented checksum over pseudo-header and upper layer: 0 when it checks.
    fn upper_sum(p: &[u8]) -> u16 {
        let len = (p.len() - IPV6_HEADER_LEN) as u32;
        let mut acc = sum16(0, &p[8..40]);
        acc = sum16(acc, &len.to_be_bytes());
        acc = sum16(acc, &[0, 0, 0, p[6]]);
        !internet_checksum(acc, &p[IPV6_HEADER_LEN..])
    }

    #[test]
    fn rewritten_packets_still_check_for_every_protocol_and_both_fields() {
        let mesh = mesh_prefix(b"veilmesh");
        let anon = anon_prefix(&mesh);
        let own: Ipv6Addr = "fdfb:9112:e04a:6ff0:99f1:3d16:6b26:7914".parse().unwrap();
        let peer: Ipv6Addr = "fdfb:9112:e04a:b75e:ab15:6d4f:c20a:9789".parse().unwrap();
        for (proto, at, len) in [
            (PROTO_TCP, 16, 20),
            (PROTO_UDP, 6, 33),
            (PROTO_ICMPV6, 2, 64),
        ] {
            for iid in [[0u8; 8], [0xff; 8], [1, 2, 3, 4, 5, 6, 7, 8]] {
                let eph = anon_address(&anon, &iid);
                let mut p = packet(proto, at, len, own, peer);
                assert_eq!(upper_sum(&p), 0xffff);
                rewrite(&mut p, Field::Src, &eph).unwrap();
                assert_eq!(&p[8..24], &eph.octets());
                assert_eq!(upper_sum(&p), 0xffff, "proto {proto} iid {iid:?}");
                // The answer comes back to the ephemeral address and is turned to ours.
                let mut answer = packet(proto, at, len, peer, eph);
                rewrite(&mut answer, Field::Dst, &own).unwrap();
                assert_eq!(&answer[24..40], &own.octets());
                assert_eq!(upper_sum(&answer), 0xffff);
            }
        }
    }

    #[test]
    fn other_packets_are_refused_untouched() {
        let a = Ipv6Addr::LOCALHOST;
        let mut frag = packet(44, 0, 16, a, a);
        let before = frag.clone();
        assert_eq!(
            rewrite(&mut frag, Field::Src, &Ipv6Addr::UNSPECIFIED),
            Err(RewriteError::Unsupported(44))
        );
        assert_eq!(frag, before);
        let mut short_tcp = packet(PROTO_TCP, 0, 10, a, a);
        assert!(rewrite(&mut short_tcp, Field::Src, &a).is_err());
        assert_eq!(
            rewrite(&mut [0x45; 60], Field::Src, &a),
            Err(RewriteError::NotIpv6)
        );
        assert_eq!(rewrite(&mut [], Field::Dst, &a), Err(RewriteError::NotIpv6));
    }

    #[test]
    fn the_anonymous_prefix_is_a_ula_apart_from_the_mesh_and_iids_round_trip() {
        let mesh = mesh_prefix(b"veilmesh");
        let anon = anon_prefix(&mesh);
        // docs/protocol.md §5.7's example.
        assert_eq!(anon.to_string(), "fda7:2bbf:7d04::/48");
        assert_eq!(
            anon_address(&anon, &[1, 2, 3, 4, 5, 6, 7, 8]).to_string(),
            "fda7:2bbf:7d04:0:102:304:506:708"
        );
        assert_eq!(anon.0[0], ULA_BYTE);
        assert_ne!(anon, mesh);
        assert_eq!(anon, anon_prefix(&mesh));
        assert_ne!(anon, anon_prefix(&mesh_prefix(b"other")));
        let addr = anon_address(&anon, &[9; 8]);
        assert_eq!(anon_iid_of(&anon, &addr), Some([9; 8]));
        assert_eq!(anon_iid_of(&mesh, &addr), None);
        let mut o = addr.octets();
        o[7] = 1;
        assert_eq!(anon_iid_of(&anon, &Ipv6Addr::from(o)), None);
    }
}
