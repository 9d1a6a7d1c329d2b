//! Test vectors: every `vector <name> = <hex>` line of docs/protocol.md §3 is recomputed here,
//! so the document and the code cannot drift. On a mismatch the test prints the lines the
//! code produces; paste them into the doc only if the change of the protocol is intended.

use std::collections::BTreeMap;

use veilmesh::crypto::announce::Announcement;
use veilmesh::crypto::e2e::{E2eEnds, E2eInitReceived, E2eInitiator};
use veilmesh::crypto::handshake::{Initiator, MeshPsk, Responder};
use veilmesh::crypto::hashchain::{chain_hash, chain_seed, ChainSigner};
use veilmesh::crypto::{AcceptPolicy, FrameTagKey, Identity, SendKey};
use veilmesh::wire::e2e::{emit_sealed_header, E2E_SEALED_HEADER_LEN};
use veilmesh::wire::MacAddr;

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
    v
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
