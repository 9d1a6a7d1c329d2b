use veilmesh::node::NodeConfig;
use veilmesh::sim::{node_factory, Sim, SimConfig, Topology};
use veilmesh::time::Instant;
fn main() {
    let t: String = std::env::args().nth(1).unwrap_or("random:100:1".into());
    let topo: Topology = t.parse().unwrap();
    let mut sim = Sim::new(
        &topo,
        SimConfig {
            seed: 1,
            ..Default::default()
        },
        node_factory(1, NodeConfig::default()),
    );
    for s in 1..=6 {
        sim.run_until(Instant::from_millis(s * 1000));
        let c = sim.route_census();
        let n = topo.len();
        let mut agg = std::collections::BTreeMap::<String, u64>::new();
        for i in 0..n {
            let h = sim.host(i).unwrap();
            let dbg = format!("{:?}", h.routing().counters());
            for kv in dbg
                .trim_start_matches("Counters {")
                .trim_end_matches('}')
                .split(',')
            {
                if let Some((k, v)) = kv.split_once(':') {
                    *agg.entry(k.trim().to_string()).or_default() +=
                        v.trim().parse::<u64>().unwrap_or(0);
                }
            }
            for (k, v) in h.stats().drop_counters() {
                *agg.entry(format!("drop_{k}")).or_default() += v;
            }
        }
        agg.retain(|_, v| *v > 0);
        println!("t={s}s reached={} {:?}", c.reached, agg);
    }
}
