//! `veil run`'s start-up errors: each exits with its documented sysexits code and a message
//! that names what is wrong (config file and line, interface, capability, busy state).

mod nslab;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A temporary directory removed on drop.
struct TmpDir(PathBuf);

impl TmpDir {
    fn new(tag: &str) -> TmpDir {
        let p = std::env::temp_dir().join(format!("veil-nserr-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create tmp dir");
        TmpDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A network namespace of our own, deleted on drop (also on panic).
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh(&["ip", "netns", "add", name]);
        Netns(name.to_string())
    }

    /// Runs `args` inside the namespace.
    fn run(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.0];
        full.extend_from_slice(args);
        run(&full)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn sh(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn veil() -> String {
    nslab::veil_bin().display().to_string()
}

/// `veil run ARGS` in this process's namespace.
fn veil_run(args: &[&str]) -> Output {
    Command::new(nslab::veil_bin())
        .arg("run")
        .args(args)
        .output()
        .expect("run veil")
}

/// Exit code and stderr, checked against `code`.
fn expect_exit(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    eprintln!("exit {code}: {}", err.trim());
    err
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn bad_config_exits_78_naming_the_file_and_line() {
    let tmp = TmpDir::new("cfg");
    let typo = tmp.path("typo.toml");
    std::fs::write(&typo, "mesh_name = \"x\"\ninterfacs = [\"wlan0\"]\n").unwrap();
    let err = expect_exit(&veil_run(&["--config", path_str(&typo)]), 78);
    assert!(err.contains(path_str(&typo)), "{err}");
    assert!(err.contains("line 2") && err.contains("interfacs"), "{err}");

    let value = tmp.path("value.toml");
    std::fs::write(&value, "interfaces = [\"wlan0\"]\n\nmode = \"closed\"\n").unwrap();
    let err = expect_exit(&veil_run(&["--config", path_str(&value)]), 78);
    assert!(err.contains(path_str(&value)), "{err}");
    assert!(err.contains("line 3") && err.contains("closed"), "{err}");

    let secret = tmp.path("secret.toml");
    std::fs::write(
        &secret,
        "interfaces = [\"wlan0\"]\nmesh_secret = \"abcd\"\n",
    )
    .unwrap();
    let err = expect_exit(&veil_run(&["--config", path_str(&secret)]), 78);
    assert!(
        err.contains(path_str(&secret)) && err.contains("mesh_secret"),
        "{err}"
    );

    let missing = tmp.path("missing.toml");
    let err = expect_exit(&veil_run(&["--config", path_str(&missing)]), 78);
    assert!(err.contains(path_str(&missing)), "{err}");
}

#[test]
fn no_interface_at_all_exits_64() {
    let tmp = TmpDir::new("noif");
    let sock = tmp.path("s");
    let state = tmp.path("state");
    let err = expect_exit(
        &veil_run(&["--state-dir", path_str(&state), "--socket", path_str(&sock)]),
        64,
    );
    assert!(err.contains("--interface"), "{err}");
    let err = expect_exit(&veil_run(&[]), 64);
    assert!(err.contains("no mesh interface"), "{err}");
}

#[test]
fn missing_or_down_interface_exits_69() {
    if !nslab::can_run() {
        return;
    }
    let ns = Netns::new("treif");
    let tmp = TmpDir::new("if");
    let (state, sock) = (tmp.path("state"), tmp.path("s"));
    let args = |ifname: &'static str| {
        vec![
            veil(),
            "run".into(),
            "-i".into(),
            ifname.into(),
            "--state-dir".into(),
            path_str(&state).into(),
            "--socket".into(),
            path_str(&sock).into(),
        ]
    };
    let as_refs = |v: &[String]| -> Output {
        let r: Vec<&str> = v.iter().map(String::as_str).collect();
        ns.run(&r)
    };
    let err = expect_exit(&as_refs(&args("nosuch0")), 69);
    assert!(err.contains("nosuch0"), "{err}");

    sh(&[
        "ip", "netns", "exec", "treif", "ip", "link", "add", "tva", "type", "veth", "peer", "name",
        "tvb",
    ]);
    let err = expect_exit(&as_refs(&args("tva")), 69);
    assert!(
        err.contains("tva") && err.contains("ip link set tva up"),
        "{err}"
    );
    assert!(!sock.exists(), "a failed start left its control socket");
}

#[test]
fn no_privilege_exits_77_naming_cap_net_raw() {
    if !nslab::can_run() {
        return;
    }
    let ns = Netns::new("trepriv");
    sh(&[
        "ip", "netns", "exec", "trepriv", "ip", "link", "add", "tva", "type", "veth", "peer",
        "name", "tvb",
    ]);
    sh(&[
        "ip", "netns", "exec", "trepriv", "ip", "link", "set", "tva", "up",
    ]);
    let tmp = TmpDir::new("priv");
    // `nobody` must be able to create its state directory and socket here.
    sh(&["chmod", "0777", path_str(&tmp.0)]);
    let (state, sock) = (tmp.path("state"), tmp.path("s"));
    let bin = veil();
    let out = ns.run(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        &bin,
        "run",
        "-i",
        "tva",
        "--state-dir",
        path_str(&state),
        "--socket",
        path_str(&sock),
    ]);
    let err = expect_exit(&out, 77);
    assert!(err.contains("CAP_NET_RAW"), "{err}");
    assert!(err.contains("tva"), "{err}");
}

#[test]
fn second_daemon_on_the_same_state_dir_exits_75() {
    if !nslab::can_run() {
        return;
    }
    let lab = nslab::up(&nslab::options("trsd", "line:2"));
    let answered = nslab::eventually(Duration::from_secs(10), || {
        veilmesh::daemon::control::query(
            &lab.control_socket(1),
            &veilmesh::daemon::control::Request::Status,
        )
        .ok()
    });
    assert!(
        answered.is_some(),
        "first daemon never answered\n{}",
        nslab::logs(&lab)
    );
    let bin = veil();
    let config = lab.config_path(1).display().to_string();
    let out = lab.exec(1, &[&bin, "run", "--config", &config]).unwrap();
    let err = expect_exit(&out, 75);
    assert!(err.contains("another `veil run`"), "{err}");
    assert!(err.contains(path_str(&lab.state_dir(1))), "{err}");
    // The first daemon is unharmed and still answers.
    let st = nslab::status(&lab, 1);
    eprintln!("first daemon still up: node {}", st.node_id);
}
