//! The lab benchmark's table: every value next to its target.

use serde_json::Value;

/// Prints the results of `run_all` as a table with the targets.
pub fn print_table(r: &Value) {
    if let Some(runs) = r["tun_rounds"].as_array() {
        print_tun_rounds(runs);
        return;
    }
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "\n{:<38} {:>12} {:>18} {:>8}",
        "lab benchmark", "value", "target", "verdict"
    );
    for (key, name) in [
        ("line2", "line:2 (1 hop)"),
        ("line4", "line:4 (3 hops)"),
        ("line4_no_gro", "line:4, TUN writes not coalesced"),
        ("line4_no_offload", "line:4, TUN offloads off"),
    ] {
        let v = &r[key];
        let mbit = f(v, "tcp_mbit_per_s");
        let (target, ok) = if key.starts_with("line4") {
            ("≥ 500 Mbit/s", verdict(mbit >= 500.0))
        } else {
            ("-", "")
        };
        println!(
            "{:<38} {:>7.0} Mbit/s {:>18} {:>8}",
            format!("{name} TCP"),
            mbit,
            target,
            ok
        );
        println!(
            "    TCP segments {} of which retransmitted {}; frames dropped at the daemons' packet sockets (rx queue full): {}",
            v["tcp_segments_out"],
            v["tcp_retransmitted"],
            v["packet_socket_rx_drops"]
        );
        println!(
            "    sender's TUN: {} super-packets cut into {} segments",
            v["sender_tun_gso_packets"], v["sender_tun_gso_segments"]
        );
        println!(
            "    receiver's TUN: {} super-packets written of {} segments",
            v["receiver_tun_gro_packets"], v["receiver_tun_gro_segments"]
        );
        let p = &v["ping"];
        println!(
            "{:<38} {:>12} {:>18}",
            format!("{name} ping min/avg/max ms"),
            format!(
                "{:.2}/{:.2}/{:.2}",
                f(p, "min_ms"),
                f(p, "avg_ms"),
                f(p, "max_ms")
            ),
            "-"
        );
        println!(
            "{:<38} {:>9.2} s/GB {:>18}",
            format!("{name} daemon CPU per GB"),
            f(v, "cpu_secs_per_gb"),
            "-"
        );
        let rss = f(v, "peak_rss_kib_max") / 1024.0;
        println!(
            "{:<38} {:>9.2} MiB {:>18} {:>8}",
            format!("{name} peak RSS (max daemon)"),
            rss,
            "≤ 8 MB",
            verdict(rss * 1.048_576 <= 8.0)
        );
        if let Some(split) = v["cpu_per_daemon"].as_array() {
            let parts: Vec<String> = split
                .iter()
                .map(|d| {
                    format!(
                        "n{} {:.2}u+{:.2}s",
                        d["node"],
                        f(d, "user_s"),
                        f(d, "sys_s")
                    )
                })
                .collect();
            println!("    daemon cpu during TCP: {}", parts.join(", "));
        }
        println!(
            "    machine before TCP: {:.0} % busy; during TCP: others' CPU {:.2} s, bench endpoints {:.2} s",
            100.0 * f(v, "machine_busy_before"),
            f(v, "others_cpu_secs"),
            f(v, "endpoints_cpu_secs")
        );
        if let Some(top) = v["top_other_processes"]
            .as_array()
            .filter(|t| !t.is_empty())
        {
            let parts: Vec<String> = top
                .iter()
                .map(|p| {
                    format!(
                        "{} {:.2} s",
                        p[0].as_str().unwrap_or("?"),
                        p[1].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            println!("    busiest other processes: {}", parts.join(", "));
        }
        let m = &v["machine_cpu_during_tcp"];
        println!(
            "    machine during TCP: busy {:.0} % (user {:.0}, sys {:.0}, irq+softirq {:.0}, steal {:.0})",
            100.0 * f(m, "busy"),
            100.0 * f(m, "user"),
            100.0 * f(m, "system"),
            100.0 * f(m, "irq_softirq"),
            100.0 * f(m, "steal")
        );
    }
    let idle = &r["idle_line5"];
    let (mean, max) = (
        f(idle, "bytes_out_per_s_mean"),
        f(idle, "bytes_out_per_s_max"),
    );
    println!(
        "{:<38} {:>12} {:>18} {:>8}",
        "line:5 idle B/s per node mean/max",
        format!("{mean:.1}/{max:.1}"),
        "≤ 50 B/s",
        verdict(max <= 50.0)
    );
    let rr = &r["reroute_diamond"];
    let gap = f(rr, "longest_gap_ms");
    println!(
        "{:<38} {:>9.0} ms {:>18} {:>8}",
        "diamond reroute longest gap",
        gap,
        "≤ 1 s",
        verdict(gap <= 1000.0)
    );
    println!(
        "    reroute: cut {}, now via {}, {} sent, {} received",
        rr["cut_link"].as_str().unwrap_or("?"),
        rr["new_next_hop"].as_str().unwrap_or("?"),
        rr["sent"],
        rr["received"]
    );
    print_yggdrasil(r);
    println!("wall time {:.0} s", f(r, "wall_secs"));
}

/// `LAB_BENCH_ONLY=tun`: one line per run, CPU per GB split into sender and receiver.
fn print_tun_rounds(runs: &[Value]) {
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    println!(
        "\n{:<5} {:<7} {:<7} {:>7} {:>7} {:>8} {:>16} {:>18} {:>17}",
        "round",
        "topo",
        "writes",
        "Mbit/s",
        "retrans",
        "all s/GB",
        "sender u+s s/GB",
        "receiver u+s s/GB",
        "receiver GRO segs"
    );
    for v in runs {
        let gb = f(v, "tcp_bytes") / 1e9;
        let daemons = v["cpu_per_daemon"]
            .as_array()
            .map_or(&[][..], |d| d.as_slice());
        let per_gb = |d: Option<&Value>| {
            d.map_or("?".to_string(), |d| {
                format!("{:.2}+{:.2}", f(d, "user_s") / gb, f(d, "sys_s") / gb)
            })
        };
        println!(
            "{:<5} {:<7} {:<7} {:>7.0} {:>7} {:>8.1} {:>16} {:>18} {:>17}",
            n(v, "round"),
            v["topology"].as_str().unwrap_or("?"),
            v["tun_mode"].as_str().unwrap_or("?"),
            f(v, "tcp_mbit_per_s"),
            n(v, "tcp_retransmitted"),
            f(v, "cpu_secs_per_gb"),
            per_gb(daemons.first()),
            per_gb(daemons.last()),
            format!(
                "{} in {}",
                n(v, "receiver_tun_gro_segments"),
                n(v, "receiver_tun_gro_packets")
            ),
        );
        println!(
            "      packet socket drops {}, receiver's TUN writes dropped {}; machine busy before {:.0} %, during {:.0} %; others' CPU {:.2} s",
            v["packet_socket_rx_drops"],
            n(v, "receiver_tun_write_dropped"),
            100.0 * f(v, "machine_busy_before"),
            100.0 * f(&v["machine_cpu_during_tcp"], "busy"),
            f(v, "others_cpu_secs")
        );
    }
}

/// veil next to Yggdrasil (same labs, same medium, same measurement): values and ratios.
fn print_yggdrasil(r: &Value) {
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let summary = &r["yggdrasil"];
    if summary["available"].as_bool() != Some(true) {
        println!(
            "\nyggdrasil: not available ({})",
            summary["why"].as_str().unwrap_or("?")
        );
        return;
    }
    println!(
        "\nveil vs yggdrasil {} (same labs and medium, n1 → last, veil with TUN offloads on; ratio = veil / yggdrasil)",
        summary["version"].as_str().unwrap_or("?")
    );
    println!(
        "{:<28} {:>9} {:>17} {:>7} {:>15} {:>7}",
        "", "veil", "ygg default MTU", "ratio", "ygg MTU 1280", "ratio"
    );
    let runs = ["default_mtu", "mtu_1280"];
    for (key, name) in [("line2", "line:2"), ("line4", "line:4")] {
        let veil = &r[key];
        let ygg = &veil["yggdrasil"];
        for run in runs {
            if let Some(e) = ygg[run]["error"].as_str() {
                println!(
                    "{name} yggdrasil {run}: DID NOT WORK: {}",
                    e.lines().next().unwrap_or("")
                );
            }
        }
        if runs
            .iter()
            .all(|run| ygg[run].get("tcp_mbit_per_s").is_none())
        {
            continue;
        }
        let cell = |run: &str, k: &str, digits: usize| {
            let (a, b) = (f(veil, k), f(&ygg[run], k));
            (format!("{b:.digits$}"), format!("{:.2}", a / b))
        };
        for (k, what, digits) in [
            ("tcp_mbit_per_s", "TCP Mbit/s", 0),
            ("cpu_secs_per_gb", "daemon CPU s/GB", 1),
        ] {
            let (d, dr) = cell(runs[0], k, digits);
            let (s, sr) = cell(runs[1], k, digits);
            println!(
                "{:<28} {:>9.digits$} {:>17} {:>7} {:>15} {:>7}",
                format!("{name} {what}"),
                f(veil, k),
                d,
                dr,
                s,
                sr
            );
        }
        let avg = |v: &Value| f(&v["ping"], "avg_ms");
        let rss = |v: &Value| f(v, "peak_rss_kib_max") / 1024.0;
        println!(
            "{:<28} {:>9.2} {:>17.2} {:>7} {:>15.2} {:>7}",
            format!("{name} ping avg ms"),
            avg(veil),
            avg(&ygg[runs[0]]),
            "",
            avg(&ygg[runs[1]]),
            ""
        );
        println!(
            "{:<28} {:>9.1} {:>17.1} {:>7} {:>15.1} {:>7}",
            format!("{name} peak RSS MiB (max)"),
            rss(veil),
            rss(&ygg[runs[0]]),
            "",
            rss(&ygg[runs[1]]),
            ""
        );
        let peers = &ygg[runs[0]]["peering"]["peers_per_node"];
        println!(
            "    yggdrasil TUN MTU {} / {}; peers per node {} (the lab's links); machine busy during TCP {:.0} % / {:.0} %",
            ygg[runs[0]]["if_mtu"],
            ygg[runs[1]]["if_mtu"],
            peers,
            100.0 * f(&ygg[runs[0]]["machine_cpu_during_tcp"], "busy"),
            100.0 * f(&ygg[runs[1]]["machine_cpu_during_tcp"], "busy"),
        );
    }
}
