//! The TUN write side's coalescer (`daemon::gro`): packets as the node delivers them (any
//! peer's, so any bytes), each `[len u16 BE][mode][bytes]`; mode bit 0 fills in valid IPv4
//! header and TCP checksums first, so that the coalescing paths are reached. Nothing may
//! panic, a packet written alone comes out unchanged, and every write cut back by
//! `offload::split` gives exactly the packets pushed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veilmesh::daemon::gro::{Coalesced, Gro};
use veilmesh::daemon::offload::{split, Split, VNET_HDR_LEN};

const SLOT: usize = 1500;

fuzz_target!(|data: &[u8]| {
    let mut gro = Gro::new(SLOT);
    let mut pushed: Vec<Vec<u8>> = Vec::new();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while let [hi, lo, mode, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])) % (SLOT + 1);
        let (bytes, next) = tail.split_at(len.min(tail.len()));
        rest = next;
        let mut packet = bytes.to_vec();
        if mode & 1 != 0 {
            fix_checksums(&mut packet);
        }
        if gro.slot().is_none() {
            gro.drain(&mut |w| out.extend(cut(w)));
        }
        let slot = gro.slot().expect("a slot after a drain");
        slot[..packet.len()].copy_from_slice(&packet);
        gro.push(packet.len());
        pushed.push(packet);
    }
    gro.drain(&mut |w| out.extend(cut(w)));
    pushed.sort();
    out.sort();
    assert_eq!(pushed, out, "what was pushed is not what came out");
});

/// The packets a write stands for, as the daemon's read side would cut it.
fn cut(w: &Coalesced<'_>) -> Vec<Vec<u8>> {
    let mut read = w.vnet_hdr.to_vec();
    for p in w.parts {
        read.extend_from_slice(p);
    }
    assert!(read.len() <= VNET_HDR_LEN + 0xffff, "a write over 64 KiB");
    let mut buf = vec![0u8; SLOT];
    let mut got = Vec::new();
    match split(&mut read, &mut buf, &mut |p| got.push(p.to_vec())) {
        Ok(Split::Plain) => assert_eq!(w.segments, 1),
        Ok(Split::Segments(n)) => assert!(n == w.segments && n > 1),
        Err(e) => panic!("a write that does not cut back: {e:?}"),
    }
    got
}

/// Valid IPv4 header and TCP checksums, where the packet is laid out for them.
fn fix_checksums(p: &mut [u8]) {
    let (l4, addrs) = match p.first().map(|b| b >> 4) {
        Some(4) => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl {
                return;
            }
            p[10..12].fill(0);
            let c = csum(&[&p[..ihl]]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            (ihl, 12..20)
        }
        Some(6) if p.len() >= 40 => (40, 8..40),
        _ => return,
    };
    if p.len() < l4 + 20 {
        return;
    }
    p[l4 + 16..l4 + 18].fill(0);
    let len = (p.len() - l4) as u16;
    let pseudo = [0, 6, (len >> 8) as u8, len as u8];
    let c = csum(&[&p[addrs], &pseudo, &p[l4..]]);
    p[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
}

/// The Internet checksum of the chunks (each even-length but the last), zero sent as 0xffff.
fn csum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for c in chunks {
        for w in c.chunks(2) {
            sum += u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        c => c,
    }
}
