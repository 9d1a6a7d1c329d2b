//! Runs node-target inputs outside libFuzzer and prints what the node counted, after the
//! actions and after the quiet time that ends every run:
//! `cargo run --release --example node_stats -- corpus/node/seed-*`.
fn main() {
    for path in std::env::args().skip(1) {
        let input = std::fs::read(&path).unwrap();
        let t = std::time::Instant::now();
        let h = veilmesh_fuzz::harness::Harness::run_actions(&input);
        let n = h.node();
        println!(
            "{path}: sessions {}, routes {}, {:?}",
            n.sessions(),
            n.routing().originators().count(),
            n.stats()
        );
        let h = veilmesh_fuzz::harness::Harness::run(&input);
        let n = h.node();
        println!(
            "  after 40 s more: {:?} per run, sessions {}, established {}, routes {}\n",
            t.elapsed(),
            n.sessions(),
            n.stats().sessions_established,
            n.routing().originators().count(),
        );
    }
}
