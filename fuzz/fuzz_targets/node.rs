//! A whole node with a live session to a deterministic peer, driven by a fuzzed sequence of
//! actions (raw frames, plaintext and `arbitrary` messages sealed under the session or the
//! peer's group key, IP packets, replays, time, handshakes, interfaces): it must never
//! panic, and everything it sends must parse. The input format is in `src/harness.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = veilmesh_fuzz::harness::Harness::run(data);
});
