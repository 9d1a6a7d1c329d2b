//! No secret shows in `Debug` output (what a `{:?}` in a log line would print), and every
//! type that holds one wipes it when dropped.

use std::path::Path;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veilmesh::crypto::{
    AcceptPolicy, Established, FrameTagKey, GroupReceiver, GroupSender, Identity, Initiator,
    MeshPsk, RecvKey, Responder, SecretBytes, SendKey, Session,
};
use veilmesh::daemon::config::{Config, SecretString};
use veilmesh::node::Node;
use veilmesh::time::Instant;
use zeroize::ZeroizeOnDrop;

/// The mesh secret of the test configuration (distinctive bytes, not a repeated one).
const MESH_SECRET: [u8; 16] = [
    201, 17, 233, 4, 88, 150, 61, 242, 9, 177, 36, 120, 219, 5, 140, 99,
];
const ED_SECRET: [u8; 32] = seq(0xc3);
const X_SECRET: [u8; 32] = seq(0x2f);

/// 32 bytes `start, start + 37, …` (mod 256).
const fn seq(start: u8) -> [u8; 32] {
    let mut b = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        b[i] = start.wrapping_add((i as u8).wrapping_mul(37));
        i += 1;
    }
    b
}

/// The ways `secret` could show up in a formatted value: hex (either case), and the
/// decimal list `Debug` prints for a byte array or Vec (`[201, 17, 233, 4, …`).
fn forms(secret: &[u8]) -> Vec<String> {
    let hex = veilmesh::hexstr::encode(secret);
    let decimal: Vec<String> = secret.iter().take(4).map(|b| b.to_string()).collect();
    vec![
        hex[..16].to_string(),
        hex[..16].to_uppercase(),
        decimal.join(", "),
    ]
}

/// Fails if `debug` (the `{:?}` of `what`) contains any form of any of `secrets`.
fn assert_hides(what: &str, debug: &str, secrets: &[&[u8]]) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(!debug.contains(&form), "{what} shows {form:?}: {debug}");
        }
    }
}

fn config_text() -> String {
    format!(
        "mesh_name = \"camp\"\ninterfaces = [\"wlan0\"]\nmesh_secret = \"{}\"\n",
        veilmesh::hexstr::encode(&MESH_SECRET)
    )
}

fn identity() -> Identity {
    Identity::from_secrets(ED_SECRET, X_SECRET)
}

/// A full handshake between `identity()` and another node: (initiator's, responder's).
fn handshake(psk: &MeshPsk) -> (Established, Established) {
    let other = Identity::from_secrets(seq(0x51), seq(0x7a));
    let (mut m1, mut m2, mut m3) = ([0u8; 256], [0u8; 256], [0u8; 256]);
    let open = AcceptPolicy::Open;
    let (mut i, n1) = Initiator::new(&identity(), psk, [11; 32], 1, &mut m1).unwrap();
    let (mut r, n2) = Responder::respond(&other, psk, [22; 32], &m1[..n1], &mut m2).unwrap();
    let (est_i, n3) = i.finish(&m2[..n2], &mut m3, &open).unwrap();
    let est_r = r.finish(&m3[..n3], &open).unwrap();
    (est_i, est_r)
}

#[test]
fn the_configs_do_not_show_the_mesh_secret() {
    let cfg = Config::parse(&config_text(), Path::new("/etc/veilmesh/veil.toml")).unwrap();
    let secret_hex = veilmesh::hexstr::encode(&MESH_SECRET);
    let shown = [format!("{cfg:?}"), format!("{cfg:#?}")];
    for debug in &shown {
        assert!(
            !debug.contains(&secret_hex),
            "Config shows the secret: {debug}"
        );
        assert_hides("Config", debug, &[&MESH_SECRET]);
    }
    let node_cfg = cfg.node_config().unwrap();
    assert_eq!(node_cfg.mesh_secret.as_deref(), Some(&MESH_SECRET[..]));
    for debug in [format!("{node_cfg:?}"), format!("{node_cfg:#?}")] {
        assert_hides("NodeConfig", &debug, &[&MESH_SECRET]);
        // `{:#?}` puts one byte on a line.
        assert!(
            !debug.contains("201,\n"),
            "NodeConfig shows the secret: {debug}"
        );
    }
    // The node takes this configuration as it is.
    let node = Node::new(node_cfg, identity(), 1, [5; 32], Instant::ZERO);
    assert!(node.is_ok());
}

#[test]
fn a_syntax_error_on_the_secret_line_does_not_quote_it() {
    // An unterminated string: the parser's message would show the line it failed on.
    let secret_hex = veilmesh::hexstr::encode(&MESH_SECRET);
    let text = format!("mesh_name = \"camp\"\nmesh_secret = \"{secret_hex}\n");
    let err = Config::parse(&text, Path::new("/etc/veilmesh/veil.toml"))
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&secret_hex[..8]), "{err}");
    assert!(err.contains("line 2"), "{err}");
    // An unknown key (a typo of mesh_secret) is named, its value not shown.
    let text = format!("mesh_secert = \"{secret_hex}\"\n");
    let err = Config::parse(&text, Path::new("/etc/veilmesh/veil.toml"))
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&secret_hex[..8]), "{err}");
    assert!(
        err.contains("mesh_secert") && err.contains("line 1"),
        "{err}"
    );
    // A value of the wrong type (the secret without its quotes) is not quoted either.
    let err = Config::parse(
        "mesh_secret = 20117233488150
",
        Path::new("/x.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(!err.contains("20117233"), "{err}");
    assert!(
        err.contains("line 1") && err.contains("hex digits"),
        "{err}"
    );
}

#[test]
fn identity_psk_handshake_result_group_keys_and_session_do_not_show_their_keys() {
    let id = identity();
    assert_hides(
        "Identity",
        &format!("{id:?} {id:#?}"),
        &[&ED_SECRET, &X_SECRET],
    );

    let psk = MeshPsk::derive(b"camp", Some(&MESH_SECRET));
    let psk_bytes = *psk.as_bytes();
    assert_hides(
        "MeshPsk",
        &format!("{psk:?} {psk:#?}"),
        &[&psk_bytes, &MESH_SECRET],
    );

    let (est_i, est_r) = handshake(&psk);
    assert_eq!(est_i.send_key, est_r.recv_key);
    let keys: [&[u8]; 2] = [&est_i.send_key, &est_i.recv_key];
    for est in [&est_i, &est_r] {
        assert_hides("Established", &format!("{est:?} {est:#?}"), &keys);
    }

    let session = Session::new(&est_i, Instant::ZERO);
    assert_hides("Session", &format!("{session:?} {session:#?}"), &keys);

    let sender = GroupSender::generate(&mut ChaCha20Rng::from_seed([9; 32]));
    let repr = sender.repr();
    let receiver = GroupReceiver::from_repr(&repr);
    let group_key: [&[u8]; 1] = [&repr.key];
    assert_hides(
        "GroupSender",
        &format!("{sender:?} {sender:#?}"),
        &group_key,
    );
    assert_hides("GroupKeyRepr", &format!("{repr:?} {repr:#?}"), &group_key);
    assert_hides(
        "GroupReceiver",
        &format!("{receiver:?} {receiver:#?}"),
        &group_key,
    );
}

/// Compiles only for types that wipe their secrets when dropped.
fn zeroized_on_drop<T: ZeroizeOnDrop>() {}

#[test]
fn every_holder_of_a_secret_wipes_it_when_dropped() {
    zeroized_on_drop::<Identity>();
    zeroized_on_drop::<MeshPsk>();
    zeroized_on_drop::<Established>();
    zeroized_on_drop::<SendKey>();
    zeroized_on_drop::<RecvKey>();
    zeroized_on_drop::<Session>();
    zeroized_on_drop::<GroupSender>();
    zeroized_on_drop::<GroupReceiver>();
    zeroized_on_drop::<FrameTagKey>();
    zeroized_on_drop::<SecretBytes>();
    zeroized_on_drop::<SecretString>();
    // And the redacted types really carry the secret.
    let s = SecretBytes::from(MESH_SECRET.to_vec());
    assert_eq!(s.as_bytes(), MESH_SECRET);
    assert_eq!(format!("{s:?}"), "SecretBytes(redacted)");
    let text = SecretString::from("abcd".to_string());
    assert_eq!(text.expose(), "abcd");
    assert_eq!(format!("{text:?}"), "SecretString(redacted)");
}
