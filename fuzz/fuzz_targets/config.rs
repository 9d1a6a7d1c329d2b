//! `Config::parse` (the daemon's TOML file) on any text, and on bytes that are not UTF-8
//! (read lossily; `Config::load` refuses them before parsing). What parses yields a node
//! configuration and a summary line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use veilmesh::daemon::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, Path::new("/etc/veilmesh/veil.toml")) {
        Ok(cfg) => {
            assert!(
                cfg.node_config().is_ok(),
                "parse accepted a bad node config"
            );
            std::hint::black_box(cfg.summary());
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
});
