//! `Frame::parse` on any bytes, and everything it returns walked to the end (header,
//! Noise message, ciphertext read as messages, a failing open), with round trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    veilmesh_fuzz::walk_frame(data);
});
