//! `veil keygen` and `veil id`, run as the real binary.

mod tempdir;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use tempdir::TempDir;

fn veil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veil"))
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap()
}

#[test]
fn keygen_writes_an_owner_only_file_that_id_reads_back() {
    let dir = TempDir::new("keygen");
    let file = dir.0.join("identity");
    let made = veil()
        .args(["keygen", "--json", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let shown = veil()
        .args(["id", "--json", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(shown.status.success());
    let (a, b) = (json(&made.stdout), json(&shown.stdout));
    assert_eq!(a, b, "id shows what keygen made");
    let ipv6 = a["ipv6"].as_str().unwrap();
    assert!(ipv6.starts_with("fd"), "{ipv6}");
    // Another mesh name, another /48, same interface id.
    let other = veil()
        .args(["id", "--json", "--mesh", "camp", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    let other_ip = json(&other.stdout)["ipv6"].as_str().unwrap().to_string();
    assert_ne!(other_ip, ipv6);
    // Two keygens make two different identities.
    let second = dir.0.join("second");
    let again = veil()
        .args(["keygen", "--json", "-i"])
        .arg(&second)
        .output()
        .unwrap();
    assert_ne!(json(&again.stdout)["ed25519"], a["ed25519"]);
}

#[test]
fn keygen_refuses_to_replace_an_identity_without_force() {
    let dir = TempDir::new("force");
    let file = dir.0.join("identity");
    assert!(veil()
        .args(["keygen", "-i"])
        .arg(&file)
        .output()
        .unwrap()
        .status
        .success());
    let before = std::fs::read(&file).unwrap();
    // An old file with a looser mode: --force must not keep it.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = veil().args(["keygen", "-i"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read(&file).unwrap(), before, "file untouched");
    let forced = veil()
        .args(["keygen", "--force", "-i"])
        .arg(&file)
        .output()
        .unwrap()
        .status;
    assert!(forced.success());
    assert_ne!(std::fs::read(&file).unwrap(), before);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the replaced identity is owner-only");
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["identity"], "no temporary file left: {names:?}");
}

#[test]
fn id_names_the_problem_with_a_bad_file() {
    let dir = TempDir::new("bad");
    let missing = veil()
        .args(["id", "-i"])
        .arg(dir.0.join("nope"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
    let file = dir.0.join("identity");
    std::fs::write(&file, "veilmesh-identity v1\ned25519-secret zz\n").unwrap();
    let bad = veil().args(["id", "-i"]).arg(&file).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("not a veilmesh identity file"), "{err}");
    assert!(err.contains("line"), "says which line: {err}");
}

/// Whether this process may make a mount namespace (root); without it the test skips,
/// unless `VEIL_NS_TESTS=require`, which makes that a failure.
fn can_unshare_mounts() -> bool {
    let ok = Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("VEIL_NS_TESTS").as_deref() != Ok("require"),
            "VEIL_NS_TESTS=require but cannot make a mount namespace (root?)"
        );
        eprintln!("skipped: needs root");
    }
    ok
}

#[test]
fn keygen_needs_no_dev_urandom() {
    // Randomness comes from getrandom(2), so a sandbox without /dev (here: an empty tmpfs
    // over /dev in a private mount namespace) still gets an identity.
    if !can_unshare_mounts() {
        return;
    }
    let dir = TempDir::new("nodev");
    let file = dir.0.join("identity");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none /dev && ! test -e /dev/urandom && exec "$0" keygen -i "$1""#)
        .arg(env!("CARGO_BIN_EXE_veil"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown = veil().args(["id", "-i"]).arg(&file).output().unwrap();
    assert!(shown.status.success(), "{shown:?}");
}
