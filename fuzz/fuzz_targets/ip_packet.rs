//! IP packets as the overlay reads them (from the TUN side, and inside Data messages from
//! the mesh): `IpPacket::parse` and its views, `classify` against the mesh prefix and
//! IPv4 pool, the ICMP answer reader and the UDP/echo readers.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use veilmesh::overlay::build::{read_echo6, read_udp6};
use veilmesh::overlay::{
    classify, icmp::must_not_answer, mesh_prefix, parse_icmp_answer, IpPacket, DEFAULT_POOL,
};

fuzz_target!(|data: &[u8]| {
    let prefix = mesh_prefix(b"veilmesh");
    black_box(classify(data, &prefix, Some(&DEFAULT_POOL)));
    black_box(classify(data, &prefix, None));
    black_box(parse_icmp_answer(data));
    black_box(must_not_answer(data));
    match IpPacket::parse(data) {
        Ok(IpPacket::V6(p)) => {
            assert!(p.as_bytes().len() <= data.len());
            black_box((
                p.src(),
                p.dst(),
                p.hop_limit(),
                p.next_header(),
                p.payload(),
            ));
            black_box(p.upper_layer());
            let _ = black_box(read_udp6(&p));
            let _ = black_box(read_echo6(&p));
        }
        Ok(IpPacket::V4(p)) => {
            assert!(p.header_len() <= p.as_bytes().len());
            assert!(p.as_bytes().len() <= data.len());
            black_box((p.src(), p.dst(), p.ttl(), p.protocol(), p.payload()));
        }
        Err(e) => {
            black_box(e);
        }
    }
});
