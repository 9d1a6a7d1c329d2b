//! `MessageIter` over any plaintext: every message walked, re-encoded and parsed back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    veilmesh_fuzz::walk_messages(data);
});
