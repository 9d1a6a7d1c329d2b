//! Test vectors: every `vector <name> = <hex>` line of docs/protocol.md (§3, §7, §8) is
//! recomputed here, so the document and the code cannot drift. On a mismatch the test prints
//! the lines the code produces; paste them into the doc only if the change of the protocol is
//! intended.

use std::collections::BTreeMap;

use veilmesh::crypto::announce::Announcement;
use veilmesh::crypto::e2e::{E2eEnds, E2eInitReceived, E2eInitiator};
use veilmesh::crypto::handshake::{Initiator, MeshPsk, Responder};
use veilmesh::crypto::hashchain::{chain_hash, chain_seed, ChainSigner};
use veilmesh::crypto::onion::{
    anon_forward_ad, anon_reply_ad, build_key_seq, open_build, seal_build, AnonIdentity,
    CreatorCircuit, HopOrder, HopSpec, OnionKeyPair, OnionKeyRecord, RelayLayer, BUILD_LEN,
    EXIT_DATA_LEN, ONION_KEY_RELAY, SLOTS_LEN, SLOT_LEN,
};
use veilmesh::crypto::{AcceptPolicy, FrameTagKey, Identity, SendKey};
use veilmesh::wire::e2e::{emit_sealed_header, E2E_SEALED_HEADER_LEN};
use veilmesh::wire::{MacAddr, NodeId};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn seq<const N: usize>(first: u8) -> [u8; N] {
    core::array::from_fn(|i| first.wrapping_add(i as u8))
}

fn ident_a() -> Identity {
    Identity::from_secrets(seq(0x00), seq(0x20))
}

fn ident_b() -> Identity {
    Identity::from_secrets(seq(0x40), seq(0x60))
}

fn computed() -> Vec<(&'static str, Vec<u8>)> {
    let a = ident_a();
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        ("identity_a_ed25519_public", a.public().ed25519.to_vec()),
        ("identity_a_x25519_public", a.public().x25519.to_vec()),
        ("node_id_a", a.node_id().0.to_vec()),
        ("link_proof_a", a.link_proof().to_vec()),
        (
            "psk_veilmesh_test",
            MeshPsk::derive(b"veilmesh-test", None).as_bytes().to_vec(),
        ),
        (
            "psk_veilmesh_test_secret",
            MeshPsk::derive(b"veilmesh-test", Some(b"correct horse"))
                .as_bytes()
                .to_vec(),
        ),
        ("chain_hash_zero", chain_hash(&[0; 16]).to_vec()),
        ("chain_seed_a_epoch1_start0", chain_seed(&a, 1, 0).to_vec()),
    ];
    let chain = ChainSigner::new(&a, 1, 0, 4096).unwrap();
    v.push(("chain_a_element_seqno0", chain.element(0).unwrap().to_vec()));
    v.push(("chain_a_element_seqno1", chain.element(1).unwrap().to_vec()));
    v.push(("chain_a_anchor", chain.anchor().to_vec()));
    let mut ann = Announcement::for_chain(&a, 1, &chain);
    ann.ipv4_claim = Some(7);
    v.push(("announce_a", ann.sign(&a).unwrap().to_vec()));
    v.push(("transport_frame", transport_frame()));
    v.extend(frame_tag());
    v.extend(handshake());
    v.extend(e2e());
    v.extend(onion());
    v.extend(anonymous());
    v
}

/// Anonymous flows (docs/protocol.md §8.9): the sender's key from `seq(0xa0)`, the
/// destination's onion key is relay 1's (seq 2), the exit `seq16(0xb0)`, the destination
/// node B; one packet each way under counter 0.
fn anonymous() -> Vec<(&'static str, Vec<u8>)> {
    let sender = AnonIdentity::generate(&mut ChaCha20Rng::from_seed(seq(0xa0)));
    let dst_key = onion_key(1);
    let (exit, dst) = (NodeId(seq(0xb0)), ident_b().node_id());
    let mut out = sender.flow(&dst_key.public()).unwrap();
    let mut back = dst_key.anon_flow(&sender.public()).unwrap();
    let ad = anon_forward_ad(&exit, &dst, dst_key.seq(), &sender.public());
    let mut packet = b"veilmesh anonymous vector".to_vec();
    let tag = out.send.seal_in_place(0, &ad, &mut packet).unwrap();
    let mut opened = packet.clone();
    back.recv.open_in_place(0, &ad, &mut opened, &tag).unwrap();
    assert_eq!(opened, b"veilmesh anonymous vector");
    packet.extend_from_slice(&tag);
    let rad = anon_reply_ad(&dst, &exit, &sender.iid());
    let mut reply = b"veilmesh anonymous reply".to_vec();
    let tag = back.send.seal_in_place(0, &rad, &mut reply).unwrap();
    let mut opened = reply.clone();
    out.recv.open_in_place(0, &rad, &mut opened, &tag).unwrap();
    reply.extend_from_slice(&tag);
    vec![
        ("anon_sender_public", sender.public().to_vec()),
        ("anon_iid", sender.iid().to_vec()),
        ("anon_exit_data", sender.exit_data().to_vec()),
        ("anon_forward_sealed", packet),
        ("anon_reply_sealed", reply),
    ]
}

/// Key 80..9f, counter 1, AAD = a unicast header, plaintext "veilmesh transport vector":
/// ciphertext || tag.
fn transport_frame() -> Vec<u8> {
    let key = SendKey::new(&seq(0x80));
    let aad = [0x15, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 1];
    let mut buf = b"veilmesh transport vector".to_vec();
    let tag = key.seal_in_place(1, &aad, &mut buf).unwrap();
    buf.extend_from_slice(&tag);
    buf
}

/// The tag key of the psk of "veilmesh-test", and the tag of the hello of docs/protocol.md
/// §1.5 (seq 7, interval 1 s) broadcast from 02:00:00:00:00:01.
fn frame_tag() -> Vec<(&'static str, Vec<u8>)> {
    let key = FrameTagKey::derive(&MeshPsk::derive(b"veilmesh-test", None));
    let hello = [0x11, 0, 0, 7, 0, 0x64];
    let tag = key.tag(MacAddr([2, 0, 0, 0, 0, 1]), MacAddr::BROADCAST, &hello);
    vec![("frame_tag_hello", tag.to_vec())]
}

/// A (initiator, RNG seed a0..bf, handshake sequence number 1) with B (responder, seed c0..df), psk of "veilmesh-test".
fn handshake() -> Vec<(&'static str, Vec<u8>)> {
    let psk = MeshPsk::derive(b"veilmesh-test", None);
    let open = AcceptPolicy::Open;
    let (mut m1, mut m2, mut m3) = ([0u8; 256], [0u8; 256], [0u8; 256]);
    let (mut i, n1) = Initiator::new(&ident_a(), &psk, seq(0xa0), 1, &mut m1).unwrap();
    let (mut r, n2) = Responder::respond(&ident_b(), &psk, seq(0xc0), &m1[..n1], &mut m2).unwrap();
    let (ei, n3) = i.finish(&m2[..n2], &mut m3, &open).unwrap();
    let er = r.finish(&m3[..n3], &open).unwrap();
    assert_eq!((ei.send_key, ei.recv_key), (er.recv_key, er.send_key));
    assert_eq!(ei.peer, ident_b().public());
    vec![
        ("handshake_msg1", m1[..n1].to_vec()),
        ("handshake_msg2", m2[..n2].to_vec()),
        ("handshake_msg3", m3[..n3].to_vec()),
        ("handshake_key_i2r", ei.send_key.to_vec()),
        ("handshake_key_r2i", ei.recv_key.to_vec()),
        ("handshake_hash", ei.handshake_hash.to_vec()),
    ]
}

/// The end-to-end handshake (docs/protocol.md §7.1): A initiates toward B with RNG seed
/// a0..bf and session sequence number 1, B answers with seed c0..df; then the Sealed payload
/// (§7.2) of "veilmesh e2e vector" from A under receiver idx 0x01020304, counter 1.
fn e2e() -> Vec<(&'static str, Vec<u8>)> {
    let (a, b) = (ident_a(), ident_b());
    let ends = E2eEnds {
        initiator: a.node_id(),
        responder: b.node_id(),
    };
    let (mut m1, mut m2) = ([0u8; 64], [0u8; 64]);
    let (mut i, n1) = E2eInitiator::new(&a, &b.public(), ends, seq(0xa0), 1, &mut m1).unwrap();
    let got = E2eInitReceived::read(&b, &a.public(), ends, seq(0xc0), &m1[..n1]).unwrap();
    assert_eq!(got.init_seq(), 1);
    let (er, n2) = got.answer(&mut m2).unwrap();
    let ei = i.finish(&m2[..n2]).unwrap();
    assert_eq!((ei.send_key, ei.recv_key), (er.recv_key, er.send_key));
    let packet = b"veilmesh e2e vector";
    let mut sealed = vec![0u8; E2E_SEALED_HEADER_LEN + packet.len()];
    emit_sealed_header(&mut sealed, a.node_id(), 0x0102_0304, 1).unwrap();
    let (header, body) = sealed.split_at_mut(E2E_SEALED_HEADER_LEN);
    body.copy_from_slice(packet);
    let tag = SendKey::new(&ei.send_key)
        .seal_in_place(1, header, body)
        .unwrap();
    sealed.extend_from_slice(&tag);
    vec![
        ("e2e_msg1", m1[..n1].to_vec()),
        ("e2e_msg2", m2[..n2].to_vec()),
        ("e2e_key_i2r", ei.send_key.to_vec()),
        ("e2e_key_r2i", ei.recv_key.to_vec()),
        ("e2e_hash", ei.handshake_hash.to_vec()),
        ("e2e_sealed", sealed),
    ]
}

/// Relay `i`'s onion key (docs/protocol.md §8.6): sequence number `i + 1`, drawn from a
/// ChaCha20Rng seeded with `seq(0x10 + 0x20·i)`.
fn onion_key(i: u8) -> OnionKeyPair {
    let mut rng = ChaCha20Rng::from_seed(seq(0x10 + 0x20 * i));
    OnionKeyPair::generate(u32::from(i) + 1, &mut rng)
}

/// The link ids of the legs into relays 0, 1, 2.
const ONION_LINKS: [u32; 3] = [0x0102_0304, 0x0506_0708, 0x090a_0b0c];

/// A 64-byte cell body: `text`, then zeros.
fn onion_body(text: &[u8]) -> [u8; 64] {
    let mut body = [0u8; 64];
    body[..text.len()].copy_from_slice(text);
    body
}

/// A circuit through the first `hops` relays of `keys`, built with a ChaCha20Rng seeded with
/// `seed`, opened by every relay: the creator's side, the relays' sides, and the build as
/// the creator sends it and as each relay after the first receives it.
fn onion_circuit(
    keys: &[OnionKeyPair],
    hops: usize,
    seed: u8,
) -> (CreatorCircuit, Vec<RelayLayer>, Vec<[u8; BUILD_LEN]>) {
    let links = &ONION_LINKS[..hops];
    let next = [ident_b().node_id(), NodeId(seq(0xf0))];
    // The creator, then relays 0 (node A) and 1 (node B).
    let prev = [NodeId(seq(0xc0)), ident_a().node_id(), ident_b().node_id()];
    let specs: Vec<HopSpec> = (0..hops)
        .map(|i| {
            let exit = i + 1 == hops;
            HopSpec {
                onion_key: keys[i].public(),
                key_seq: keys[i].seq(),
                order: HopOrder {
                    exit,
                    prev: prev[i],
                    next: if exit { NodeId([0; 16]) } else { next[i] },
                    next_link: if exit { 0 } else { links[i + 1] },
                    exit_data: if exit {
                        seq::<EXIT_DATA_LEN>(0xd0)
                    } else {
                        [0; EXIT_DATA_LEN]
                    },
                },
            }
        })
        .collect();
    let mut msg = [0u8; BUILD_LEN];
    let mut rng = ChaCha20Rng::from_seed(seq(seed));
    let creator_keys = seal_build(&specs, links[0], &mut rng, &mut msg).unwrap();
    let mut seen = vec![msg];
    let mut relays = Vec::new();
    for (i, key) in keys[..hops].iter().enumerate() {
        assert_eq!(build_key_seq(&msg), key.seq());
        let (order, hop_keys) = open_build(key, links[i], &mut msg).unwrap();
        assert_eq!(order, specs[i].order, "relay {i}");
        relays.push(RelayLayer::new(hop_keys, links[i]));
        seen.push(msg);
    }
    seen.pop(); // what the exit leaves is sent nowhere
    let circuit = CreatorCircuit::new(creator_keys, links, seq(0xe0)).unwrap();
    (circuit, relays, seen)
}

/// One forward cell of `body` (region = 84 zero slot bytes | body) through the circuit:
/// the cell as each relay receives it, the first being what the creator sends.
fn onion_forward(
    circuit: &mut CreatorCircuit,
    relays: &mut [RelayLayer],
    body: &[u8; 64],
) -> Vec<[u8; SLOTS_LEN + 64]> {
    let mut cell = [0u8; SLOTS_LEN + 64];
    cell[SLOTS_LEN..].copy_from_slice(body);
    circuit.seal_forward(&mut cell).unwrap();
    let mut views = Vec::new();
    for relay in relays.iter_mut() {
        views.push(cell);
        relay.open_forward(&mut cell).unwrap();
    }
    assert_eq!(&cell[SLOTS_LEN..], body);
    views
}

/// The onion layer (docs/protocol.md §8.6): relay 0 is node A; a 3-relay circuit built with
/// a ChaCha20Rng seeded with `seq(0x70)`; its forward cells 0 and 1 followed through every
/// relay, and its backward cell 0 from the exit as the creator receives it; then a 2-relay
/// circuit (seed `seq(0x90)`) for the pad key and the random third record.
fn onion() -> Vec<(&'static str, Vec<u8>)> {
    let a = ident_a();
    let keys = [onion_key(0), onion_key(1), onion_key(2)];
    let record = OnionKeyRecord {
        node: a.node_id(),
        seq: 1,
        lifetime_s: 3600,
        flags: ONION_KEY_RELAY,
        key: keys[0].public(),
    };
    let record_bytes = record.sign(&a).unwrap();
    assert_eq!(
        OnionKeyRecord::parse_and_verify(&record_bytes, &a.public()),
        Ok(record)
    );

    let (mut circuit, mut relays, builds) = onion_circuit(&keys, 3, 0x70);
    let body = onion_body(b"veilmesh onion vector");
    let cell0 = onion_forward(&mut circuit, &mut relays, &body);
    let cell1 = onion_forward(&mut circuit, &mut relays, &body);
    // The nonce each relay reads: the last 12 bytes of its first slot.
    let nonces: Vec<u8> = cell0
        .iter()
        .chain(&cell1)
        .flat_map(|view| view[SLOT_LEN - 12..SLOT_LEN].to_vec())
        .collect();

    // Backward cell 0: the exit seals over zero slots and its plaintext, then relays 1, 0.
    let reply = onion_body(b"veilmesh onion reply");
    let mut back = [0u8; SLOTS_LEN + 64];
    back[SLOTS_LEN..].copy_from_slice(&reply);
    for relay in relays.iter_mut().rev() {
        relay.seal_backward(&mut back).unwrap();
    }
    let backward = back.to_vec();
    circuit.open_backward(&mut back).unwrap();
    assert_eq!(back[SLOTS_LEN..], reply);

    let (mut short, mut short_relays, short_builds) = onion_circuit(&keys, 2, 0x90);
    let short_cell = onion_forward(&mut short, &mut short_relays, &body);

    vec![
        ("onion_key_public", keys[0].public().to_vec()),
        ("onion_key_record_a", record_bytes.to_vec()),
        ("onion_build", builds[0].to_vec()),
        ("onion_build_after_hop0", builds[1].to_vec()),
        ("onion_build_after_hop1", builds[2].to_vec()),
        ("onion_nonce_perm", nonces),
        ("onion_cell_forward", cell0[0].to_vec()),
        ("onion_cell_after_hop0", cell0[1].to_vec()),
        ("onion_cell_after_hop1", cell0[2].to_vec()),
        ("onion_cell_backward", backward),
        ("onion_build_2relay", short_builds[0].to_vec()),
        ("onion_cell_forward_2relay", short_cell[0].to_vec()),
    ]
}

fn documented() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("vector ") else {
            continue;
        };
        let (name, hex) = rest
            .split_once(" = ")
            .expect("vector line: `vector <name> = <hex>`");
        let prev = out.insert(name.trim().to_string(), hex.trim().to_string());
        assert!(prev.is_none(), "vector {name} appears twice");
    }
    out
}

/// Vectors named `<layer>_...` for a layer other than crypto belong to that layer's tests.
fn is_other_layer(name: &str) -> bool {
    ["overlay_", "wire_", "routing_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

#[test]
fn protocol_md_vectors_match_the_code() {
    let doc = documented();
    let code = computed();
    let mut problems = Vec::new();
    for (name, bytes) in &code {
        let hex = hex::encode(bytes);
        if doc.get(*name) != Some(&hex) {
            problems.push(format!("vector {name} = {hex}"));
        }
    }
    // Vectors of other layers (`overlay_*`, ...) are checked by those layers' own tests.
    for name in doc.keys().filter(|n| !is_other_layer(n)) {
        if !code.iter().any(|(n, _)| n == name) {
            problems.push(format!(
                "documented vector {name} is not computed by this test"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "vectors differ from docs/protocol.md:\n{}",
        problems.join("\n")
    );
}
