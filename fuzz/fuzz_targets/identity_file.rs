//! The identity file parser (`Identity::from_file_str`, what `veil` reads at start) on any
//! text, and on bytes that are not UTF-8 (read lossily). A parsed identity writes back to a
//! file that parses to the same identity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veilmesh::crypto::Identity;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = Identity::from_file_str(&text) {
        let again = Identity::from_file_str(&id.to_file_string()).expect("written file parses");
        assert_eq!(again.public(), id.public());
        assert_eq!(again.node_id(), id.node_id());
    }
});
