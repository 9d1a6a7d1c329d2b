//! Anonymous mode with real daemons (docs/protocol.md §8.9): kernel ping and a checked TCP
//! transfer cross a circuit of three relays, and the destination sees the connection come
//! from an ephemeral address of the anonymous prefix, never from the sender's own.

mod nslab;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use serde_json::Value;
use veilmesh::lab::{accept_within, in_netns, Lab};
use veilmesh::overlay::anon::anon_prefix;
use veilmesh::overlay::MeshPrefix;

const CONVERGE: Duration = Duration::from_secs(30);

/// The circuits `veil circuits --json` shows on node `i`.
fn circuits(lab: &Lab, i: usize) -> Vec<Value> {
    let out = nslab::veil(lab, i, &["circuits", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("veil circuits --json: {other:?}: {text}"),
    }
}

/// Node `i`'s built circuit of its own, once it has one.
fn built_circuit(lab: &Lab, i: usize) -> Value {
    let found = nslab::eventually(Duration::from_secs(40), || {
        circuits(lab, i)
            .into_iter()
            .find(|c| c["role"] == "creator" && c["built"] == true)
    });
    found.unwrap_or_else(|| panic!("n{i} built no circuit\n{}", nslab::logs(lab)))
}

fn counter(lab: &Lab, i: usize, name: &str) -> u64 {
    nslab::stats(lab, i)
        .counters
        .get(name)
        .copied()
        .unwrap_or(0)
}

/// Accepts one connection, reads it to the end: (peer address, bytes, all bytes right).
fn receive(listener: TcpListener) -> std::io::Result<(SocketAddr, u64, bool)> {
    let mut stream = accept_within(&listener, Duration::from_secs(20))?;
    let peer = stream.peer_addr()?;
    let (mut buf, mut total, mut right) = (vec![0u8; 1 << 16], 0u64, true);
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok((peer, total, right));
        }
        right &= buf[..n]
            .iter()
            .enumerate()
            .all(|(k, b)| *b == (total + k as u64) as u8);
        total += n as u64;
    }
}

fn send(addr: SocketAddr, len: u64) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(20))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    stream.write_all(&data)?;
    stream.shutdown(Shutdown::Write)
}

#[test]
fn ping_and_tcp_cross_a_circuit_from_an_ephemeral_address() {
    if !nslab::can_run() {
        return;
    }
    let mut opts = nslab::options("tan", "line:5");
    opts.extra_config.push("anonymous = true".to_string());
    let lab = nslab::up(&opts);
    nslab::converge(&lab, CONVERGE);
    let circuit = built_circuit(&lab, 1);
    eprintln!("n1's circuit: {circuit}");
    // The lab's mesh name is its own: take the mesh prefix from an overlay address.
    let IpAddr::V6(own) = nslab::status(&lab, 1).ipv6 else {
        panic!("n1 has no IPv6 overlay address");
    };
    let mut mesh = [0u8; 6];
    mesh.copy_from_slice(&own.octets()[..6]);
    let anon = anon_prefix(&MeshPrefix(mesh));
    let address: IpAddr = circuit["address"].as_str().unwrap().parse().unwrap();
    assert!(
        matches!(address, IpAddr::V6(a) if anon.contains(&a)),
        "{address}"
    );
    assert_eq!(circuit["nodes"].as_array().unwrap().len(), 3, "{circuit}");

    let far = nslab::status(&lab, 5).ipv6;
    let out = lab
        .exec(
            1,
            &[
                "ping",
                "-6",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                &far.to_string(),
            ],
        )
        .unwrap_or_else(|e| panic!("cannot run ping: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("3 received"),
        "anonymous ping n1 -> n5 failed:\n{text}\n{}",
        nslab::logs(&lab)
    );
    assert!(counter(&lab, 1, "anon_packets_sent") >= 3);
    assert!(counter(&lab, 5, "anon_packets_received") >= 3);
    assert!(counter(&lab, 1, "anon_replies_received") >= 3);

    let addr = SocketAddr::new(far, 5301);
    let listener = match in_netns(&lab.ns_name(5), move || TcpListener::bind(addr)) {
        Ok(Ok(l)) => l,
        other => panic!("listening on {addr} in n5: {other:?}"),
    };
    let server = std::thread::spawn(move || receive(listener));
    let len = 2_000_000;
    let sent = in_netns(&lab.ns_name(1), move || send(addr, len));
    let got = server
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    match (sent, got) {
        (Ok(Ok(())), Ok((peer, n, right))) => {
            assert_eq!((n, right), (len, true), "the transfer arrived whole");
            assert_eq!(peer.ip(), address, "n5 saw the circuit's ephemeral address");
            assert_ne!(peer.ip(), nslab::status(&lab, 1).ipv6);
        }
        (sent, got) => panic!("transfer n1 -> n5: {sent:?} {got:?}\n{}", nslab::logs(&lab)),
    }
}

/// Sends `chunks` chunks of 64 KiB of the counting pattern, one every `gap`.
fn send_paced(addr: SocketAddr, chunks: u64, gap: Duration) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(20))?;
    stream.set_write_timeout(Some(Duration::from_secs(90)))?;
    let chunk = 1u64 << 16;
    for c in 0..chunks {
        let data: Vec<u8> = (c * chunk..(c + 1) * chunk).map(|i| i as u8).collect();
        stream.write_all(&data)?;
        std::thread::sleep(gap);
    }
    stream.shutdown(Shutdown::Write)
}

/// Index (1-based) of the lab node whose node id is `id`.
fn node_index(lab: &Lab, nodes: usize, id: &str) -> usize {
    (1..=nodes)
        .find(|&i| nslab::status(lab, i).node_id == id)
        .unwrap_or_else(|| panic!("no node {id}"))
}

#[test]
fn property_15_killing_the_middle_relay_rebuilds_through_the_same_exit_and_tcp_goes_on() {
    if !nslab::can_run() {
        return;
    }
    let mut opts = nslab::options("tar", "ring:6");
    opts.extra_config.push("anonymous = true".to_string());
    let mut lab = nslab::up(&opts);
    nslab::converge(&lab, CONVERGE);
    let circuit = built_circuit(&lab, 1);
    eprintln!("n1's circuit before: {circuit}");
    let ids: Vec<String> = circuit["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let [_, middle, exit] = &ids[..] else {
        panic!("not three relays: {circuit}");
    };
    let middle = node_index(&lab, 6, middle);
    // The destination: a node off the circuit if there is one, never the middle.
    let in_circuit: Vec<usize> = ids.iter().map(|id| node_index(&lab, 6, id)).collect();
    let dst = (2..=6)
        .find(|i| !in_circuit.contains(i))
        .unwrap_or_else(|| (2..=6).find(|&i| i != middle).unwrap());
    let far = nslab::status(&lab, dst).ipv6;
    let addr = SocketAddr::new(far, 5302);
    let listener = match in_netns(&lab.ns_name(dst), move || TcpListener::bind(addr)) {
        Ok(Ok(l)) => l,
        other => panic!("listening on {addr} in n{dst}: {other:?}"),
    };
    let server = std::thread::spawn(move || {
        let mut stream = accept_within(&listener, Duration::from_secs(20))?;
        stream.set_read_timeout(Some(Duration::from_secs(90)))?;
        let peer = stream.peer_addr()?;
        let (mut buf, mut total, mut right) = (vec![0u8; 1 << 16], 0u64, true);
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok::<_, std::io::Error>((peer, total, right));
            }
            right &= buf[..n]
                .iter()
                .enumerate()
                .all(|(k, b)| *b == (total + k as u64) as u8);
            total += n as u64;
        }
    });
    let sender_ns = lab.ns_name(1);
    let chunks = 80;
    let sender = std::thread::spawn(move || {
        in_netns(&sender_ns, move || {
            send_paced(addr, chunks, Duration::from_millis(50))
        })
    });
    std::thread::sleep(Duration::from_millis(1500));
    eprintln!("killing the middle relay n{middle}");
    lab.kill_daemon(middle, veilmesh::lab::Signal::Kill)
        .unwrap_or_else(|e| panic!("killing n{middle}: {e}"));
    let sent = sender
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    let got = server
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    let after = built_circuit(&lab, 1);
    eprintln!("n1's circuit after: {after}");
    match (sent, got) {
        (Ok(Ok(())), Ok((peer, n, right))) => {
            assert_eq!(
                (n, right),
                (chunks << 16, true),
                "the transfer arrived whole"
            );
            assert_eq!(peer.ip().to_string(), circuit["address"].as_str().unwrap());
        }
        (sent, got) => panic!("transfer: {sent:?} {got:?}\n{}", nslab::logs(&lab)),
    }
    assert_eq!(
        after["address"], circuit["address"],
        "the same ephemeral address"
    );
    let after_ids = after["nodes"].as_array().unwrap();
    assert_eq!(
        after_ids.last().unwrap().as_str(),
        Some(exit.as_str()),
        "the same exit"
    );
    assert!(!after_ids
        .iter()
        .any(|n| n.as_str() == Some(ids[1].as_str())));
    assert!(counter(&lab, 1, "onion_circuits_broken") >= 1);
}
