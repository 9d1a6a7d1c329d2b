//! Namespace mesh tests: real daemons in `veil lab`, kernel traffic over the overlay,
//! a crash and restart, the CLI's tables against its JSON, and
//! an interface going down and up. Each test has its own lab prefix, so they run in parallel.
//! Measured numbers are printed (see them with `--nocapture`).

mod nslab;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use veilmesh::cli::table::parse_rendered;
use veilmesh::daemon::control::{query_as, NeighborReport, Request, StatsReport, StatusReport};
use veilmesh::lab::{accept_within, in_netns, tcp_throughput, Lab, Signal};

const CONVERGE: Duration = Duration::from_secs(30);

/// `veil ping -n 1` from node `from` to `addr` succeeds.
fn veil_ping_once(lab: &Lab, from: usize, addr: &IpAddr) -> bool {
    nslab::veil(
        lab,
        from,
        &["ping", "-n", "1", "-W", "0.5", &addr.to_string()],
    )
    .status
    .success()
}

/// Parses a `--json` output line.
fn json_of(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => panic!("not JSON ({e}): {text}"),
    }
}

/// Kernel `ping` (IPv4 or IPv6) from node `from`; its output, asserting success.
fn kernel_ping(lab: &Lab, from: usize, addr: IpAddr) -> String {
    let family = if addr.is_ipv6() { "-6" } else { "-4" };
    let a = addr.to_string();
    let out = match lab.exec(
        from,
        &["ping", family, "-c", "3", "-i", "0.2", "-W", "2", &a],
    ) {
        Ok(o) => o,
        Err(e) => panic!("cannot run ping: {e}"),
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("3 received"),
        "ping {a} from n{from} failed:\n{text}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        nslab::logs(lab)
    );
    text
}

#[test]
fn line_of_five_carries_ipv6_and_ipv4_end_to_end() {
    if !nslab::can_run() {
        return;
    }
    let lab = nslab::up(&nslab::options("tml5", "line:5"));
    let took = nslab::converge(&lab, CONVERGE);
    eprintln!("line:5 converged in {:.1} s", took.as_secs_f64());
    let v4 = nslab::eventually(Duration::from_secs(20), || {
        let all: Vec<Option<IpAddr>> = (1..=5).map(|i| nslab::status(&lab, i).ipv4).collect();
        all.iter().all(Option::is_some).then_some(all)
    });
    let v4 = v4.unwrap_or_else(|| panic!("not every node got IPv4\n{}", nslab::logs(&lab)));
    let mut unique = v4.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "IPv4 addresses are not distinct: {v4:?}");
    let far = nslab::status(&lab, 5);
    let far4 = far.ipv4.unwrap_or_else(|| panic!("n5 lost its IPv4"));
    // A node that lost a claim collision re-announces its new address: n1, four hops away,
    // learns it a moment after n5 holds it.
    let known = nslab::eventually(Duration::from_secs(20), || {
        nslab::originators(&lab, 1)
            .iter()
            .any(|o| o.ipv6 == far.ipv6 && o.ipv4 == Some(far4))
            .then_some(())
    });
    assert!(
        known.is_some(),
        "n1 never learnt n5's IPv4 {far4}\n{}",
        nslab::logs(&lab)
    );

    eprintln!("{}", kernel_ping(&lab, 1, far.ipv6));
    eprintln!("{}", kernel_ping(&lab, 1, far4));

    for (addr, port) in [(far.ipv6, 5201), (far4, 5202)] {
        let t = tcp_throughput(
            &lab,
            1,
            5,
            SocketAddr::new(addr, port),
            Duration::from_secs(2),
        )
        .unwrap_or_else(|e| panic!("TCP n1 -> n5 {addr}: {e}\n{}", nslab::logs(&lab)));
        eprintln!(
            "TCP n1 -> n5 over {}: {:.1} Mbit/s ({} bytes in {:.2} s)",
            if addr.is_ipv6() { "IPv6" } else { "IPv4" },
            t.mbit_per_s(),
            t.bytes,
            t.elapsed.as_secs_f64()
        );
        assert!(t.bytes > 0, "no bytes arrived over {addr}");
    }
    // The relays sent every frame they forwarded from the buffer it arrived in.
    for relay in 2..=4 {
        let c = nslab::stats(&lab, relay).counters;
        let n = |k: &str| {
            c.get(k)
                .copied()
                .unwrap_or_else(|| panic!("n{relay}: no {k}"))
        };
        assert!(
            n("forwarded") > 1000,
            "n{relay} forwarded {}",
            n("forwarded")
        );
        assert_eq!(n("relayed_in_place"), n("forwarded"), "n{relay}");
    }

    let target = far.ipv6.to_string();
    let out = nslab::veil(
        &lab,
        1,
        &["ping", "-n", "3", "-i", "0.1", "--json", &target],
    );
    let ping = json_of(&out);
    eprintln!("veil ping n1 -> n5: {ping}");
    assert!(out.status.success(), "{ping}");
    assert_eq!(ping["received"], 3, "{ping}");

    let out = nslab::veil(
        &lab,
        1,
        &["traceroute", "-q", "1", "-W", "1", "--json", &target],
    );
    let trace = json_of(&out);
    eprintln!("veil traceroute n1 -> n5: {trace}");
    assert!(out.status.success(), "{trace}");
    assert_eq!(trace["reached"], true, "{trace}");
    let hops: Vec<String> = trace["hops"]
        .as_array()
        .unwrap_or_else(|| panic!("no hops: {trace}"))
        .iter()
        .map(|h| h["from"].as_str().unwrap_or("*").to_string())
        .collect();
    let expected: Vec<String> = (2..=5)
        .map(|i| nslab::status(&lab, i).ipv6.to_string())
        .collect();
    assert_eq!(hops, expected, "traceroute hops are not n2, n3, n4, n5");
}

#[test]
fn sigkill_and_restart_keep_the_identity() {
    if !nslab::can_run() {
        return;
    }
    let mut lab = nslab::up(&nslab::options("tmrst", "line:3"));
    nslab::converge(&lab, CONVERGE);
    let before = nslab::status(&lab, 3);
    lab.kill_daemon(3, Signal::Kill)
        .unwrap_or_else(|e| panic!("kill n3: {e}"));
    assert!(lab.daemon_pid(3).is_none(), "n3's daemon survived SIGKILL");
    let started = Instant::now();
    lab.start_daemon(3)
        .unwrap_or_else(|e| panic!("restart n3: {e}"));
    let after = nslab::eventually(Duration::from_secs(10), || {
        query_as::<StatusReport>(&lab.control_socket(3), &Request::Status).ok()
    });
    let after =
        after.unwrap_or_else(|| panic!("restarted n3 does not answer\n{}", nslab::logs(&lab)));
    eprintln!(
        "n3 restarted: answers after {:.2} s, epoch {} -> {}",
        started.elapsed().as_secs_f64(),
        before.epoch,
        after.epoch
    );
    assert_eq!(after.node_id, before.node_id, "node id changed on restart");
    assert_eq!(after.ipv6, before.ipv6, "overlay IPv6 changed on restart");
    assert!(
        after.epoch > before.epoch,
        "epoch did not grow: {} -> {}",
        before.epoch,
        after.epoch
    );
    let back = nslab::eventually(Duration::from_secs(15), || {
        veil_ping_once(&lab, 1, &after.ipv6).then_some(())
    });
    eprintln!(
        "n1 pings the restarted n3 after {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        back.is_some(),
        "n1 cannot ping the restarted n3 within 15 s\n{}",
        nslab::logs(&lab)
    );
}

/// `veil <what> --json` of node `i`, parsed.
fn cli_json(lab: &Lab, i: usize, what: &str) -> Value {
    let out = nslab::veil(lab, i, &[what, "--json"]);
    assert!(out.status.success(), "veil {what} --json failed");
    json_of(&out)
}

/// `veil <what>` of node `i` as cells, the header row checked and removed.
fn cli_table(lab: &Lab, i: usize, what: &str, header: &[&str]) -> Vec<Vec<String>> {
    let out = nslab::veil(lab, i, &[what]);
    assert!(out.status.success(), "veil {what} failed");
    let mut rows = parse_rendered(&String::from_utf8_lossy(&out.stdout));
    assert!(!rows.is_empty(), "veil {what} printed nothing");
    let head = rows.remove(0);
    assert_eq!(head, header, "veil {what} header");
    rows
}

/// A JSON value as the tables print it.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// `cell` equals what either JSON snapshot shows, or (numbers) lies between them.
fn agrees(cell: &str, a: &Value, b: &Value) -> bool {
    if cell == shown(a) || cell == shown(b) {
        return true;
    }
    match (cell.parse::<f64>(), a.as_f64(), b.as_f64()) {
        (Ok(c), Some(x), Some(y)) => x.min(y) <= c && c <= x.max(y),
        _ => false,
    }
}

/// Rows of a JSON array keyed by `key(row)`.
fn keyed(v: &Value, key: impl Fn(&Value) -> String) -> BTreeMap<String, Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| (key(r), r.clone()))
        .collect()
}

/// A table column and how to get its value from a JSON row.
type Column<'a> = (usize, &'a dyn Fn(&Value) -> Value);

/// Checks a table against two JSON snapshots taken around it: same keys, and for each
/// `(column, field)` the cell agrees with the field.
fn compare_rows(
    what: &str,
    rows: &[Vec<String>],
    key_col: usize,
    (a, b): (&BTreeMap<String, Value>, &BTreeMap<String, Value>),
    columns: &[Column<'_>],
) {
    let table_keys: Vec<&String> = rows.iter().map(|r| &r[key_col]).collect();
    let json_keys: Vec<&String> = a.keys().collect();
    let mut sorted = table_keys.clone();
    sorted.sort();
    assert_eq!(sorted, json_keys, "{what}: table rows and JSON rows differ");
    for row in rows {
        let (ja, jb) = (&a[&row[key_col]], &b[&row[key_col]]);
        for (col, field) in columns {
            let (x, y) = (field(ja), field(jb));
            assert!(
                agrees(&row[*col], &x, &y),
                "{what} row {row:?} column {col}: table {:?}, JSON {x} / {y}",
                row[*col]
            );
        }
    }
}

/// A node id as the tables show it: its first 16 hex digits, or "-".
fn short(v: &Value) -> String {
    v.as_str()
        .map_or_else(|| "-".to_string(), |s| s.chars().take(16).collect())
}

#[test]
fn cli_tables_agree_with_json() {
    if !nslab::can_run() {
        return;
    }
    let lab = nslab::up(&nslab::options("tmcli", "line:3"));
    nslab::converge(&lab, CONVERGE);
    let n = 2; // the middle node: two neighbours, two originators
               // neighbors: key MAC; iface, node, state, cost.
    let nkey = |r: &Value| shown(&r["mac"]);
    let a = keyed(&cli_json(&lab, n, "neighbors"), nkey);
    let rows = cli_table(
        &lab,
        n,
        "neighbors",
        &[
            "IFACE",
            "MAC",
            "NODE",
            "STATE",
            "RX",
            "TX",
            "COST",
            "LAST-SEEN",
        ],
    );
    let b = keyed(&cli_json(&lab, n, "neighbors"), nkey);
    assert_eq!(rows.len(), 2, "n2 should list 2 neighbours: {rows:?}");
    compare_rows(
        "neighbors",
        &rows,
        1,
        (&a, &b),
        &[
            (0, &|r: &Value| r["iface"].clone()),
            (2, &|r: &Value| Value::String(short(&r["node_id"]))),
            (3, &|r: &Value| r["state"].clone()),
            (6, &|r: &Value| r["cost"].clone()),
        ],
    );

    // originators: key short node id; IPv6, IPv4, metric, next hop.
    let okey = |r: &Value| short(&r["node_id"]);
    let a = keyed(&cli_json(&lab, n, "originators"), okey);
    let rows = cli_table(
        &lab,
        n,
        "originators",
        &[
            "NODE", "IPV6", "IPV4", "METRIC", "NEXT-HOP", "BACKUP", "SEQNO",
        ],
    );
    let b = keyed(&cli_json(&lab, n, "originators"), okey);
    assert_eq!(rows.len(), 2, "n2 should list 2 originators: {rows:?}");
    compare_rows(
        "originators",
        &rows,
        0,
        (&a, &b),
        &[
            (1, &|r: &Value| r["ipv6"].clone()),
            (2, &|r: &Value| r["ipv4"].clone()),
            (3, &|r: &Value| r["metric"].clone()),
            (4, &|r: &Value| {
                Value::String(format!(
                    "{} {}",
                    shown(&r["next_hop"]["mac"]),
                    shown(&r["next_hop"]["iface"])
                ))
            }),
        ],
    );

    // routes: key destination; node, via MAC, iface, metric.
    let rkey = |r: &Value| shown(&r["destination"]);
    let a = keyed(&cli_json(&lab, n, "routes"), rkey);
    let rows = cli_table(
        &lab,
        n,
        "routes",
        &["DESTINATION", "NODE", "VIA", "IFACE", "METRIC"],
    );
    let b = keyed(&cli_json(&lab, n, "routes"), rkey);
    assert!(
        rows.len() >= 2,
        "n2 should have routes to 2 nodes: {rows:?}"
    );
    compare_rows(
        "routes",
        &rows,
        0,
        (&a, &b),
        &[
            (1, &|r: &Value| Value::String(short(&r["node_id"]))),
            (2, &|r: &Value| r["via"]["mac"].clone()),
            (3, &|r: &Value| r["via"]["iface"].clone()),
            (4, &|r: &Value| r["metric"].clone()),
        ],
    );

    // stats: every counter and drop.<reason>, values between two snapshots.
    let flat = |v: Value| -> BTreeMap<String, Value> {
        let s: StatsReport =
            serde_json::from_value(v).unwrap_or_else(|e| panic!("stats JSON: {e}"));
        let drops = s.drops.into_iter().map(|(k, v)| (format!("drop.{k}"), v));
        s.counters
            .into_iter()
            .chain(drops)
            .map(|(k, v)| (k, Value::from(v)))
            .collect()
    };
    let a = flat(cli_json(&lab, n, "stats"));
    let rows = cli_table(&lab, n, "stats", &["COUNTER", "VALUE"]);
    let b = flat(cli_json(&lab, n, "stats"));
    assert!(
        a.contains_key("interface_down") && a.keys().any(|k| k.starts_with("drop.")),
        "stats lack expected keys: {a:?}"
    );
    let as_rows = |m: &BTreeMap<String, Value>| -> BTreeMap<String, Value> {
        m.iter()
            .map(|(k, v)| (k.clone(), serde_json::json!({ "v": v })))
            .collect()
    };
    compare_rows(
        "stats",
        &rows,
        0,
        (&as_rows(&a), &as_rows(&b)),
        &[(1, &|r: &Value| r["v"].clone())],
    );

    // status: FIELD/VALUE.
    let a = cli_json(&lab, n, "status");
    let rows = cli_table(&lab, n, "status", &["FIELD", "VALUE"]);
    let b = cli_json(&lab, n, "status");
    let fields: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r[0].clone(), r.get(1).cloned().unwrap_or_default()))
        .collect();
    for field in [
        "node_id",
        "mesh",
        "ipv6",
        "ipv4",
        "tun",
        "neighbors",
        "originators",
        "sessions",
        "epoch",
        "uptime_secs",
        "version",
    ] {
        let cell = fields
            .get(field)
            .unwrap_or_else(|| panic!("status table lacks {field}: {fields:?}"));
        assert!(
            agrees(cell, &a[field], &b[field]),
            "status {field}: table {cell:?}, JSON {} / {}",
            a[field],
            b[field]
        );
    }
    let iface = &a["interfaces"][0];
    let shown_iface = format!(
        "{}({},{})",
        shown(&iface["name"]),
        shown(&iface["mac"]),
        if iface["up"] == true { "up" } else { "down" }
    );
    assert_eq!(fields["interfaces"], shown_iface);

    let out = std::process::Command::new(nslab::veil_bin())
        .args(["completions", "bash"])
        .output()
        .unwrap_or_else(|e| panic!("veil completions: {e}"));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && script.contains("traceroute"),
        "bash completions do not mention traceroute"
    );
}

#[test]
fn interface_down_and_up_recovers_without_restart() {
    if !nslab::can_run() {
        return;
    }
    let mut lab = nslab::up(&nslab::options("tmifd", "line:2"));
    nslab::converge(&lab, CONVERGE);
    let pid = lab.daemon_pid(1);
    assert!(pid.is_some(), "n1's daemon is not running");
    let n1 = nslab::status(&lab, 1);
    let n2 = nslab::status(&lab, 2);
    let set = |state: &str| {
        let out = lab
            .exec(1, &["ip", "link", "set", "wlan0", state])
            .unwrap_or_else(|e| panic!("ip link set {state}: {e}"));
        assert!(out.status.success(), "ip link set wlan0 {state} failed");
    };
    set("down");
    let down_at = Instant::now();
    let own = nslab::eventually(Duration::from_secs(5), || {
        let s = nslab::status(&lab, 1);
        s.interfaces.iter().all(|f| !f.up).then_some(())
    });
    eprintln!(
        "n1 reports wlan0 down after {:.2} s",
        down_at.elapsed().as_secs_f64()
    );
    assert!(own.is_some(), "n1 still reports wlan0 up after 5 s");
    let n1_mac = n1.interfaces[0].mac.clone().unwrap_or_default();
    // n2 loses n1: no neighbour entry for it that is up, or no route to it any more.
    let lost = nslab::eventually(Duration::from_secs(20), || {
        let nbrs: Vec<NeighborReport> =
            query_as(&lab.control_socket(2), &Request::Neighbors).ok()?;
        let nbr_up = nbrs.iter().any(|n| n.mac == n1_mac && n.state == "up");
        let routed = nslab::originators(&lab, 2)
            .iter()
            .any(|o| o.node_id == n1.node_id && o.next_hop.is_some());
        (!nbr_up || !routed).then_some((nbr_up, routed))
    });
    eprintln!(
        "n2 lost n1 after {:.2} s (neighbour up, routed): {lost:?}",
        down_at.elapsed().as_secs_f64()
    );
    assert!(
        lost.is_some(),
        "n2 still has n1 as an up neighbour with a route 20 s after n1's wlan0 went down\n{}",
        nslab::logs(&lab)
    );
    set("up");
    let up_at = Instant::now();
    let back = nslab::eventually(Duration::from_secs(15), || {
        veil_ping_once(&lab, 1, &n2.ipv6).then_some(())
    });
    eprintln!(
        "n1 pings n2 again {:.2} s after wlan0 came up",
        up_at.elapsed().as_secs_f64()
    );
    assert!(
        back.is_some(),
        "n1 cannot ping n2 within 15 s after wlan0 came up\n{}",
        nslab::logs(&lab)
    );
    assert_eq!(
        lab.daemon_pid(1),
        pid,
        "n1's daemon is not the same process"
    );
    let stats: StatsReport = query_as(&lab.control_socket(1), &Request::Stats)
        .unwrap_or_else(|e| panic!("stats of n1: {e}"));
    let downs = stats.counters.get("interface_down").copied().unwrap_or(0);
    eprintln!("n1 interface_down = {downs}");
    assert!(
        downs >= 1,
        "interface_down not counted: {:?}",
        stats.counters
    );
}

/// Absolute value of a kernel SNMP counter in node `i`'s namespace.
fn nstat(lab: &Lab, i: usize, name: &str) -> u64 {
    let out = match lab.exec(i, &["nstat", "-asz", name]) {
        Ok(o) => o,
        Err(e) => panic!("cannot run nstat: {e}"),
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in nstat's output"))
}

/// The byte at `offset` of a checked transfer: a function of the offset, so that a segment
/// delivered twice, out of place or altered shows.
fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// Accepts one connection on `listener` and reads it to the end: (bytes, offset of the
/// first byte that is not the pattern's).
fn receive_checked(listener: TcpListener) -> std::io::Result<(u64, Option<u64>)> {
    let mut stream = accept_within(&listener, Duration::from_secs(10))?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut total, mut bad) = (0u64, None);
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok((total, bad));
        }
        for (k, b) in buf[..n].iter().enumerate() {
            if bad.is_none() && *b != pattern(total + k as u64) {
                bad = Some(total + k as u64);
            }
        }
        total += n as u64;
    }
}

/// Connects to `addr` and sends `len` bytes of the pattern.
fn send_pattern(addr: SocketAddr, len: u64) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut sent = 0u64;
    let mut chunk = vec![0u8; 1 << 16];
    while sent < len {
        let n = chunk.len().min((len - sent) as usize);
        for (k, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(sent + k as u64);
        }
        stream.write_all(&chunk[..n])?;
        sent += n as u64;
    }
    stream.shutdown(Shutdown::Write)
}

/// Sends `len` pattern bytes from node `from` to `addr` on node `to` and asserts that
/// exactly they arrived.
fn checked_transfer(lab: &Lab, from: usize, to: usize, addr: SocketAddr, len: u64) {
    // A socket stays in the namespace it was made in: bind there, accept anywhere.
    let listener = match in_netns(&lab.ns_name(to), move || TcpListener::bind(addr)) {
        Ok(Ok(l)) => l,
        other => panic!("listening on {addr} in n{to}: {other:?}"),
    };
    let server = std::thread::spawn(move || receive_checked(listener));
    let sent = in_netns(&lab.ns_name(from), move || send_pattern(addr, len));
    let got = server
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    match (sent, got) {
        (Ok(Ok(())), Ok((n, bad))) => {
            assert_eq!(bad, None, "{addr}: a wrong byte arrived");
            assert_eq!(n, len, "{addr}: bytes arrived");
        }
        (sent, got) => panic!(
            "checked transfer to {addr}: {sent:?} {got:?}\n{}",
            nslab::logs(lab)
        ),
    }
}

/// What one TCP run on a line of two leaves: the counters of n1 (sender) and n2 (receiver),
/// and n1's log.
struct TwoNodeRun {
    sender: BTreeMap<String, u64>,
    receiver: BTreeMap<String, u64>,
    log: String,
}

/// TCP n1 -> n2 over IPv6 and IPv4 on a line of two, with TUN offloads on or (through
/// `VEIL_TUN_OFFLOAD=0`) off: a timed transfer each, then a checked one.
fn tcp_over_two_nodes(prefix: &str, offload: bool) -> TwoNodeRun {
    let mut opts = nslab::options(prefix, "line:2");
    if !offload {
        opts.daemon_cmd = vec![
            "env".to_string(),
            "VEIL_TUN_OFFLOAD=0".to_string(),
            nslab::veil_bin().display().to_string(),
        ];
    }
    let lab = nslab::up(&opts);
    nslab::converge(&lab, CONVERGE);
    let far = nslab::eventually(Duration::from_secs(20), || {
        let s = nslab::status(&lab, 2);
        Some((s.ipv6, s.ipv4?)).filter(|_| nslab::status(&lab, 1).ipv4.is_some())
    })
    .unwrap_or_else(|| panic!("no IPv4 addresses\n{}", nslab::logs(&lab)));
    let csum_errors = nstat(&lab, 2, "TcpInCsumErrors");
    for (addr, port) in [(far.0, 5203), (far.1, 5204)] {
        checked_transfer(&lab, 1, 2, SocketAddr::new(addr, port + 10), 16 << 20);
        let t = tcp_throughput(
            &lab,
            1,
            2,
            SocketAddr::new(addr, port),
            Duration::from_secs(2),
        )
        .unwrap_or_else(|e| panic!("TCP n1 -> n2 {addr}: {e}\n{}", nslab::logs(&lab)));
        eprintln!(
            "offload {offload}: TCP n1 -> n2 {addr}: {:.1} Mbit/s",
            t.mbit_per_s()
        );
        // Segments with bad checksums would be dropped by n2's kernel: next to nothing
        // would arrive.
        assert!(t.bytes > 1_000_000, "{} bytes over {addr}", t.bytes);
    }
    assert_eq!(nstat(&lab, 2, "TcpInCsumErrors"), csum_errors);
    TwoNodeRun {
        sender: nslab::stats(&lab, 1).counters,
        receiver: nslab::stats(&lab, 2).counters,
        log: std::fs::read_to_string(lab.log_path(1)).unwrap_or_default(),
    }
}

#[test]
fn tcp_with_tun_offloads_arrives_cut_from_super_packets() {
    if !nslab::can_run() {
        return;
    }
    let run = tcp_over_two_nodes("tmoff", true);
    let n = |k: &str| {
        run.sender
            .get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let r = |k: &str| {
        run.receiver
            .get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k}"))
    };
    eprintln!(
        "n1: {} super-packets cut into {} segments, {} malformed; \
         n2: {} super-packets written of {} segments, {} writes dropped",
        n("tun_gso_packets"),
        n("tun_gso_segments"),
        n("tun_malformed"),
        r("tun_gro_packets"),
        r("tun_gro_segments"),
        r("tun_write_dropped")
    );
    let log = &run.log;
    assert!(
        log.contains("TUN offloads on (TSO and checksum; coalesced writes)"),
        "{log}"
    );
    assert!(n("tun_gso_packets") > 0, "no super-packet from the TUN");
    assert!(n("tun_gso_segments") > n("tun_gso_packets"));
    assert_eq!(n("tun_malformed"), 0);
    assert!(r("tun_gro_packets") > 0, "no coalesced write to n2's TUN");
    assert!(r("tun_gro_segments") > r("tun_gro_packets"));
}

#[test]
fn tcp_with_tun_offloads_off_arrives_as_plain_packets() {
    if !nslab::can_run() {
        return;
    }
    let run = tcp_over_two_nodes("tmoffp", false);
    assert!(run.log.contains("TUN offloads off"), "{}", run.log);
    assert_eq!(run.sender.get("tun_gso_packets"), Some(&0));
    assert_eq!(run.receiver.get("tun_gro_packets"), Some(&0));
}
