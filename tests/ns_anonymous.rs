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
