//! Shared set-up of the namespace tests: a `veil lab` with a test's own prefix, running the
//! `veil` binary under test, and helpers that talk to its daemons.
//!
//! These tests need root (network namespaces). Without root they print "skipped: needs root"
//! and pass, unless `VEIL_NS_TESTS=require` (set by `.ci/run`), where that is a failure.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use veilmesh::daemon::control::{
    query_as, NeighborReport, OriginatorReport, Request, StatsReport, StatusReport,
};
use veilmesh::lab::{wait_converged, Lab, LabOptions};

/// The binary under test.
pub fn veil_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_veil"))
}

/// True when namespace tests can run here; false (skip) otherwise, or a panic if
/// `VEIL_NS_TESTS=require`.
pub fn can_run() -> bool {
    let ok = veilmesh::lab::require_root().is_ok();
    if !ok {
        if std::env::var("VEIL_NS_TESTS").as_deref() == Ok("require") {
            panic!("VEIL_NS_TESTS=require but namespace tests cannot run (root? ./install-deps?)");
        }
        eprintln!("skipped: needs root");
    }
    ok
}

/// Options for a lab with `prefix` on `topology`, running the binary under test.
pub fn options(prefix: &str, topology: &str) -> LabOptions {
    LabOptions {
        prefix: prefix.to_string(),
        topology: topology.to_string(),
        veil_bin: veil_bin(),
        ..LabOptions::default()
    }
}

/// Bring a lab up (a leftover of a crashed run with the same prefix is removed first).
pub fn up(opts: &LabOptions) -> Lab {
    let _ = Lab::down_prefix(&opts.prefix);
    match Lab::up(opts) {
        Ok(lab) => lab,
        Err(e) => panic!("lab {} did not come up: {e}", opts.prefix),
    }
}

/// Wait until every node knows every other; panics with the daemons' logs if not.
pub fn converge(lab: &Lab, within: Duration) -> Duration {
    match wait_converged(lab, within, &|| false) {
        Ok(d) => d,
        Err(e) => panic!("no convergence within {within:?}: {e}\n{}", logs(lab)),
    }
}

/// The tails of every daemon's log, for failure messages.
pub fn logs(lab: &Lab) -> String {
    (1..=lab.len())
        .map(|i| format!("--- n{i} ---\n{}", lab.log_tail(i, 20)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Node `i`'s answer to `request`; panics with the daemons' logs if there is none.
pub fn ask<T: serde::de::DeserializeOwned>(lab: &Lab, i: usize, request: &Request) -> T {
    match query_as(&lab.control_socket(i), request) {
        Ok(v) => v,
        Err(e) => panic!("{request:?} of n{i}: {e}\n{}", logs(lab)),
    }
}

/// `veil status` of node `i`.
pub fn status(lab: &Lab, i: usize) -> StatusReport {
    ask(lab, i, &Request::Status)
}

/// `veil originators` of node `i`.
pub fn originators(lab: &Lab, i: usize) -> Vec<OriginatorReport> {
    ask(lab, i, &Request::Originators)
}

/// `veil neighbors` of node `i`.
pub fn neighbors(lab: &Lab, i: usize) -> Vec<NeighborReport> {
    ask(lab, i, &Request::Neighbors)
}

/// `veil stats` of node `i`.
pub fn stats(lab: &Lab, i: usize) -> StatsReport {
    ask(lab, i, &Request::Stats)
}

/// Run `veil ARGS --socket <n_i's socket>` and return its output.
pub fn veil(lab: &Lab, i: usize, args: &[&str]) -> Output {
    let socket = lab.control_socket(i);
    let out = std::process::Command::new(veil_bin())
        .args(args)
        .arg("--socket")
        .arg(&socket)
        .output();
    match out {
        Ok(o) => o,
        Err(e) => panic!("cannot run veil: {e}"),
    }
}

/// Poll `f` every 100 ms until it returns Some or `within` passes.
pub fn eventually<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
