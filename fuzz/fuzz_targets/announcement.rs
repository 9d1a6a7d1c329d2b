//! A signed node announcement: the unverified order, `parse_and_verify`, the chain
//! verifier it yields, and the node's announcement store fed the same bytes (and the
//! input's following 156-byte blocks, so stores of several announcements are reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use veilmesh::crypto::Announcement;
use veilmesh::node::{Announcements, IfaceId};
use veilmesh::time::Instant;
use veilmesh::wire::{MacAddr, ANNOUNCE_LEN};

fuzz_target!(|data: &[u8]| {
    let mut store = Announcements::default();
    for (i, chunk) in data.chunks_exact(ANNOUNCE_LEN).take(8).enumerate() {
        let bytes: &[u8; ANNOUNCE_LEN] = chunk.try_into().expect("exact chunk");
        let (node, epoch, start) = Announcement::unverified_order(bytes);
        if let Ok(a) = Announcement::parse_and_verify(bytes) {
            assert_eq!((a.node_id(), a.epoch, a.chain_start), (node, epoch, start));
            assert!(a.chain_len > 0);
            let v = a
                .chain_verifier()
                .expect("a verified announcement has a valid chain");
            assert_eq!(v.anchor(), a.anchor);
        }
        store.set_now(Instant::from_millis(1000 * i as u64));
        // Alternate sources and reachability: the probation and restart paths too.
        let source = Some((IfaceId(0), MacAddr([2, 0, 0, 0, 0, (i % 3) as u8])));
        // Every fourth one finds its sender over the signature-check budget.
        if let Ok(r) = store.insert(bytes, source, i % 2 == 0, || i % 4 != 3) {
            let a = r.ann;
            assert_eq!(store.get(&a.node_id()), Some(&a));
            assert_eq!(store.bytes(&a.node_id()), Some(bytes));
        }
    }
});
