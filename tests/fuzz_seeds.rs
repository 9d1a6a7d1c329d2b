//! The fuzz targets' seed corpora (`fuzz/corpus/TARGET/seed-*`, docs/fuzzing.md): written
//! here from the real encoders, so they follow the formats.
//!
//! `cargo test --test fuzz_seeds` checks that every committed seed is still valid input of
//! its kind (a frame of the kind its name says, messages that all parse, an announcement
//! that verifies, a file that parses); after a format change, regenerate them with
//! `VEIL_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_seeds` and commit the result.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use veilmesh::crypto::{Announcement, ChainSigner, Identity};
use veilmesh::daemon::config::Config;
use veilmesh::node::{IfaceId, Node, NodeConfig};
use veilmesh::overlay::build::{build_udp4, build_udp6};
use veilmesh::overlay::icmp::{build_echo_request6, build_time_exceeded6};
use veilmesh::overlay::{ipv6_for, mesh_prefix, IpPacket};
use veilmesh::time::{Duration, Instant};
use veilmesh::wire::{
    Frame, GroupKeyRepr, HandshakeKind, HelloRepr, IhuEntry, MacAddr, Message, MessageIter,
    MessageWriter, NodeId, OgmRepr, SeqnoRequestRepr, ANNOUNCE_LEN, UNICAST_PLAINTEXT_LEN,
};

/// target -> (seed name -> bytes)
type Seeds = BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

fn identity(i: u8) -> Identity {
    Identity::from_secrets([i; 32], [i.wrapping_add(1); 32])
}

fn ann(id: &Identity, epoch: u32) -> [u8; ANNOUNCE_LEN] {
    let chain = ChainSigner::new(id, epoch, 0, 256).unwrap();
    let mut a = Announcement::for_chain(id, epoch, &chain);
    a.ipv4_claim = Some(3);
    a.sign(id).unwrap()
}

/// Every frame two directly connected nodes send in their first 3 s, by kind name.
fn captured_frames() -> BTreeMap<String, Vec<u8>> {
    let t0 = Instant::ZERO;
    let mac = |i: u8| MacAddr([2, 0, 0, 0, 0, i]);
    let mut nodes: Vec<Node> = (1..=2u8)
        .map(|i| {
            let mut n = Node::new(NodeConfig::default(), identity(i), 1, [i; 32], t0).unwrap();
            n.add_interface(t0, IfaceId(0), mac(i));
            n
        })
        .collect();
    let mut out = BTreeMap::new();
    let mut buf = [0u8; 1500];
    let mut now = t0;
    while now < t0 + Duration::from_secs(3) {
        for n in &mut nodes {
            n.handle_timeout(now);
        }
        for _ in 0..8 {
            for from in 0..2 {
                while let Some(t) = nodes[from].poll_transmit(&mut buf) {
                    let frame = &buf[..t.len];
                    let kind = match Frame::parse(frame).unwrap() {
                        Frame::Hello { .. } => "hello",
                        Frame::Handshake { kind, .. } => match kind {
                            HandshakeKind::Init => "handshake-init",
                            HandshakeKind::Resp => "handshake-resp",
                            HandshakeKind::Finish => "handshake-finish",
                        },
                        Frame::Unicast(_) => "unicast",
                        Frame::Broadcast(_) => "broadcast",
                    };
                    out.entry(format!("seed-{kind}"))
                        .or_insert_with(|| frame.to_vec());
                    let src = mac(from as u8 + 1);
                    nodes[1 - from].handle_frame(now, IfaceId(0), src, frame);
                }
            }
        }
        now += Duration::from_millis(10);
    }
    out
}

/// One plaintext per message type, and one with several messages and padding.
fn message_seeds() -> BTreeMap<String, Vec<u8>> {
    let node = NodeId([7; 16]);
    let msgs: Vec<(&str, Message<'static>)> = vec![
        (
            "hello",
            Message::Hello(HelloRepr {
                seq: 5,
                interval_10ms: 400,
            }),
        ),
        (
            "ogm",
            Message::Ogm(OgmRepr {
                node,
                epoch: 1,
                seqno: 9,
                metric: 300,
                ttl: 30,
                flags: 0,
                chain: [3; 16],
            }),
        ),
        ("announce-request", Message::AnnounceRequest(node)),
        (
            "seqno-request",
            Message::SeqnoRequest(SeqnoRequestRepr {
                node,
                epoch: 1,
                seqno: 10,
                hop_limit: 8,
            }),
        ),
        (
            "group-key",
            Message::GroupKey(GroupKeyRepr {
                key_id: 77,
                key: [9; 32],
            }),
        ),
        ("probe", Message::Probe(1)),
        ("probe-ack", Message::ProbeAck(1)),
        ("group-key-request", Message::GroupKeyRequest),
        (
            "data",
            Message::Data {
                dst: node,
                ttl: 64,
                packet: &[0x60, 0, 0, 0, 0, 0, 17, 64],
            },
        ),
    ];
    let mut out = BTreeMap::new();
    let mut all = vec![0u8; 600];
    let mut w_all = MessageWriter::new(&mut all);
    for (name, m) in &msgs {
        let mut buf = vec![0u8; 600];
        let mut w = MessageWriter::new(&mut buf);
        w.push(m).unwrap();
        let n = w.len();
        out.insert(format!("seed-{name}"), buf[..n].to_vec());
        w_all.push(m).unwrap();
    }
    let entries = [IhuEntry {
        mac: MacAddr([2, 0, 0, 0, 0, 2]),
        rx_quality: 60000,
    }];
    let mut buf = vec![0u8; 64];
    let mut w = MessageWriter::new(&mut buf);
    w.push_ihu(&entries).unwrap();
    let n = w.len();
    out.insert("seed-ihu".into(), buf[..n].to_vec());
    let mut buf = vec![0u8; 200];
    let mut w = MessageWriter::new(&mut buf);
    w.push_announce(&ann(&identity(1), 1)).unwrap();
    let n = w.len();
    out.insert("seed-announce".into(), buf[..n].to_vec());
    w_all.push_ihu(&entries).unwrap();
    let n = w_all.finish_padded();
    out.insert("seed-all-padded".into(), all[..n].to_vec());
    out
}

fn ip_seeds() -> BTreeMap<String, Vec<u8>> {
    let prefix = mesh_prefix(b"veilmesh");
    let a = ipv6_for(&prefix, &identity(1).node_id());
    let b = ipv6_for(&prefix, &identity(2).node_id());
    let mut out = BTreeMap::new();
    let mut buf = [0u8; 300];
    let n = build_udp6(&mut buf, &a, &b, (5000, 6000), b"veilmesh").unwrap();
    let udp6 = buf[..n].to_vec();
    out.insert("seed-udp6".into(), udp6.clone());
    let n = build_echo_request6(&mut buf, a, b, 64, 7, 1, 16).unwrap();
    out.insert("seed-echo6".into(), buf[..n].to_vec());
    let n = build_time_exceeded6(&mut buf, b, a, &udp6).unwrap();
    out.insert("seed-time-exceeded6".into(), buf[..n].to_vec());
    let (s4, d4) = (Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 2));
    let n = build_udp4(&mut buf, &s4, &d4, (5000, 6000), b"veilmesh").unwrap();
    out.insert("seed-udp4".into(), buf[..n].to_vec());
    out
}

/// A TCP segment without checksums (the `tun_gro` target fills them in, mode 1).
fn tcp_segment(v6: bool, sport: u16, i: u32, flags: u8, data: usize) -> Vec<u8> {
    let ip = if v6 { 40 } else { 20 };
    let mut p = vec![0u8; ip + 20 + data];
    let total = p.len() as u16;
    if v6 {
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(total - 40).to_be_bytes());
        p[6] = 6;
        p[7] = 64;
        p[8] = 0xfd;
        p[23] = 1;
        p[24] = 0xfd;
        p[39] = 2;
    } else {
        p[0] = 0x45;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&(100 + i as u16).to_be_bytes());
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 77, 0, 1]);
        p[16..20].copy_from_slice(&[10, 77, 0, 2]);
    }
    p[ip..ip + 2].copy_from_slice(&sport.to_be_bytes());
    p[ip + 2..ip + 4].copy_from_slice(&443u16.to_be_bytes());
    p[ip + 4..ip + 8].copy_from_slice(&(1000 + i * data as u32).to_be_bytes());
    p[ip + 12] = 5 << 4;
    p[ip + 13] = flags;
    p[ip + 14] = 1;
    for (k, b) in p[ip + 20..].iter_mut().enumerate() {
        *b = k as u8;
    }
    p
}

/// `tun_gro` input: each packet as `[len u16 BE][mode][bytes]`.
fn gro_input(packets: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mode, p) in packets {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.push(*mode);
        out.extend_from_slice(p);
    }
    out
}

fn gro_seeds() -> BTreeMap<String, Vec<u8>> {
    let (ack, psh) = (0x10, 0x18);
    let run4: Vec<(u8, Vec<u8>)> = (0..4)
        .map(|i| {
            (
                1,
                tcp_segment(false, 40000, i, if i == 3 { psh } else { ack }, 200),
            )
        })
        .collect();
    let mut mixed = Vec::new();
    for i in 0..3 {
        mixed.push((1, tcp_segment(true, 40000, i, ack, 300)));
        mixed.push((1, tcp_segment(true, 40001, i, ack, 300)));
    }
    mixed.push((0, ip_seeds()["seed-udp6"].clone()));
    mixed.push((1, tcp_segment(true, 40000, 3, ack, 300)));
    BTreeMap::from([
        ("seed-tcp4-run".into(), gro_input(&run4)),
        ("seed-tcp6-mixed".into(), gro_input(&mixed)),
    ])
}

fn config_seeds() -> BTreeMap<String, Vec<u8>> {
    let laptop = include_str!("../dist/systemd/veil.toml");
    let darknet = format!(
        "mesh_name = \"camp\"\ninterfaces = [\"wlan0\", \"eth1\"]\nmode = \"darknet\"\n\
         mesh_secret = \"{}\"\nallow = [\n  \"{}\",\n]\nipv4 = true\nipv4_pool = \"10.99.0.0/16\"\n\
         tun = \"veil1\"\nstate_dir = \"/var/lib/veilmesh\"\n\
         control_socket = \"/run/veilmesh/control.sock\"\n\n[timers]\nhello_interval_ms = 1000\n",
        "ab".repeat(32),
        veilmesh::hexstr::encode(&identity(1).public().ed25519),
    );
    BTreeMap::from([
        ("seed-laptop".into(), laptop.as_bytes().to_vec()),
        ("seed-darknet".into(), darknet.into_bytes()),
        ("seed-empty".into(), Vec::new()),
    ])
}

fn identity_seeds() -> BTreeMap<String, Vec<u8>> {
    let file = identity(1).to_file_string();
    let commented = format!(
        "# made by veil keygen\n\n{}\n# end\n",
        file.replace('\n', "\n  ")
    );
    BTreeMap::from([
        ("seed-keygen".into(), file.as_bytes().to_vec()),
        ("seed-commented".into(), commented.into_bytes()),
    ])
}

/// Inputs of the node target (format in fuzz/src/harness.rs): config flags, then actions
/// of op byte and arguments; lengths are u16 little-endian.
fn node_seeds() -> BTreeMap<String, Vec<u8>> {
    fn chunk(op: u8, head: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = vec![op];
        v.extend_from_slice(head);
        v.extend_from_slice(&(body.len() as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }
    let plain = |msgs: &[Message<'_>]| {
        let mut buf = vec![0u8; UNICAST_PLAINTEXT_LEN];
        let mut w = MessageWriter::new(&mut buf);
        for m in msgs {
            w.push(m).unwrap();
        }
        let n = w.len();
        buf.truncate(n);
        buf
    };
    // The harness's node is identity ([1; 32], [2; 32]) on mesh "veilmesh".
    let node_id = Identity::from_secrets([1; 32], [2; 32]).node_id();
    let prefix = mesh_prefix(b"veilmesh");
    let mut pkt = [0u8; 200];
    let n = build_udp6(
        &mut pkt,
        &ipv6_for(&prefix, &identity(3).node_id()),
        &ipv6_for(&prefix, &node_id),
        (1, 2),
        b"to the node",
    )
    .unwrap();
    let unicast = plain(&[
        Message::Probe(1),
        Message::AnnounceRequest(node_id),
        Message::GroupKeyRequest,
        Message::Data {
            dst: node_id,
            ttl: 9,
            packet: &pkt[..n],
        },
    ]);
    let ihu = [IhuEntry {
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        rx_quality: 65535,
    }];
    let mut broadcast = vec![0u8; 200];
    let mut w = MessageWriter::new(&mut broadcast);
    w.push_hello(&HelloRepr {
        seq: 1,
        interval_10ms: 400,
    })
    .unwrap();
    w.push_ihu(&ihu).unwrap();
    w.push_probe_ack(1).unwrap();
    let bn = w.len();
    broadcast.truncate(bn);
    // Config flag 1: an IPv4 pool. Signed OGMs of the peer (seq 5) and of the far node
    // behind it (seq 7; the node asks for its announcement), UDP to both, 10 s pass.
    let mut routed = vec![0x01];
    routed.extend_from_slice(&[10, 0, 5, 0, 0, 1, 64]);
    routed.extend_from_slice(&[10, 1, 7, 0, 0, 2, 64]);
    routed.extend(chunk(6, &[0], b"udp to the peer"));
    routed.extend(chunk(6, &[1], b"udp to the far node"));
    routed.extend_from_slice(&[8, 0xe8, 0x03]);
    let mut timers = vec![0x08];
    timers.extend_from_slice(&[8, 0x30, 0x75]); // 300 s: rekeys
    timers.extend_from_slice(&[9, 2]); // the peer handshakes again, Init sent twice
    timers.extend_from_slice(&[7, 3, 1, 10, 0, 0x40]); // a seen frame, one byte flipped
    timers.extend_from_slice(&[11, 0, 11, 1]); // interface down, up with a new MAC
    timers.extend_from_slice(&[12, 1, 1, 0, 0x90, 1]); // a stranger's hello
    BTreeMap::from([
        ("seed-setup-only".into(), vec![0]),
        (
            "seed-unicast".into(),
            [vec![0], chunk(1, &[0], &unicast)].concat(),
        ),
        (
            "seed-broadcast".into(),
            [vec![0], chunk(3, &[0], &broadcast)].concat(),
        ),
        ("seed-routed".into(), routed),
        ("seed-timers".into(), timers),
        (
            "seed-ip".into(),
            [vec![0x02], chunk(5, &[], &pkt[..n])].concat(),
        ),
    ])
}

fn all_seeds() -> Seeds {
    let mut s = Seeds::new();
    s.insert("frame", captured_frames());
    s.insert("messages", message_seeds());
    let two = [ann(&identity(1), 1), ann(&identity(2), 5)].concat();
    s.insert(
        "announcement",
        BTreeMap::from([
            ("seed-one".into(), ann(&identity(1), 1).to_vec()),
            ("seed-two".into(), two),
        ]),
    );
    s.insert("identity_file", identity_seeds());
    s.insert("config", config_seeds());
    s.insert("ip_packet", ip_seeds());
    s.insert("node", node_seeds());
    s.insert("tun_gro", gro_seeds());
    s
}

/// Whether `bytes` is still a valid seed of `target` named `name`.
fn check_seed(target: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
    let kind = name.trim_start_matches("seed-");
    match target {
        "frame" => {
            let f = Frame::parse(bytes).map_err(|e| e.to_string())?;
            let ok = match f {
                Frame::Hello { .. } => kind == "hello",
                Frame::Handshake { kind: k, .. } => {
                    kind == format!("handshake-{}", format!("{k:?}").to_lowercase())
                }
                Frame::Unicast(_) => kind == "unicast",
                Frame::Broadcast(_) => kind == "broadcast",
            };
            ok.then_some(()).ok_or(format!("parses as {f:?}"))
        }
        "messages" => {
            for m in MessageIter::new(bytes) {
                m.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "announcement" => {
            for c in bytes.chunks(ANNOUNCE_LEN) {
                let c: &[u8; ANNOUNCE_LEN] = c.try_into().map_err(|_| "length".to_string())?;
                Announcement::parse_and_verify(c).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "identity_file" => {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
            Identity::from_file_str(text)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        "config" => {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
            Config::parse(text, Path::new("seed.toml"))
                .map(drop)
                .map_err(|e| e.to_string())
        }
        "ip_packet" => IpPacket::parse(bytes).map(drop).map_err(|e| e.to_string()),
        "tun_gro" => check_gro_seed(bytes),
        // Any bytes are a valid action sequence.
        _ => Ok(()),
    }
}

/// Whether `bytes` is whole `[len][mode][packet]` records of IP packets (IPv4 or IPv6 at
/// least, when mode 1 leaves the checksums to the target).
fn check_gro_seed(mut bytes: &[u8]) -> Result<(), String> {
    while let [hi, lo, mode, rest @ ..] = bytes {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let packet = rest.get(..len).ok_or("a record cut short")?;
        if mode & 1 == 0 {
            IpPacket::parse(packet).map_err(|e| e.to_string())?;
        } else if !matches!(packet.first().map(|b| b >> 4), Some(4 | 6)) {
            return Err("not an IP packet".to_string());
        }
        bytes = &rest[len..];
    }
    bytes
        .is_empty()
        .then_some(())
        .ok_or_else(|| "trailing bytes".to_string())
}

#[test]
fn generated_seeds_are_valid() {
    for (target, seeds) in all_seeds() {
        // Every kind of frame was captured.
        if target == "frame" {
            assert_eq!(seeds.len(), 6, "{:?}", seeds.keys());
        }
        for (name, bytes) in seeds {
            check_seed(target, &name, &bytes).unwrap_or_else(|e| panic!("{target}/{name}: {e}"));
        }
    }
}

#[test]
fn committed_seeds_are_valid() {
    let dir = corpus_dir();
    let seeds = all_seeds();
    if std::env::var_os("VEIL_WRITE_FUZZ_SEEDS").is_some() {
        for (target, files) in &seeds {
            let d = dir.join(target);
            std::fs::create_dir_all(&d).unwrap();
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let stale = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("seed-") && !files.contains_key(n));
                if stale {
                    std::fs::remove_file(p).unwrap();
                }
            }
            for (name, bytes) in files {
                std::fs::write(d.join(name), bytes).unwrap();
            }
        }
    }
    let regenerate = "regenerate with VEIL_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_seeds";
    for (target, files) in &seeds {
        for name in files.keys() {
            let path = dir.join(target).join(name);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; {regenerate}", path.display()));
            check_seed(target, name, &bytes)
                .unwrap_or_else(|e| panic!("{}: {e}; {regenerate}", path.display()));
        }
    }
}
