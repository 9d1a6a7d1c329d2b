//! Root-only tests of the medium, without a daemon: raw frames between node namespaces.
//! Without root they print "skipped: needs root" (VEIL_NS_TESTS=require makes that fail).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::sys::packet::PacketSocket;
use super::*;

const BROADCAST: [u8; 6] = [0xff; 6];
/// How long a receiver waits for one more frame before it reports what it got.
const QUIET: Duration = Duration::from_millis(150);

fn can_run() -> bool {
    if netns::require_root().is_ok() && netns::require_tools(&["ip", "nft"]).is_ok() {
        return true;
    }
    if std::env::var("VEIL_NS_TESTS").as_deref() == Ok("require") {
        panic!("VEIL_NS_TESTS=require but not root or ip/nft missing (run ./install-deps)");
    }
    eprintln!("skipped: needs root");
    false
}

/// A prefix unique to this test and process (tests run in parallel).
fn prefix(tag: &str) -> String {
    format!("t{tag}{}-", std::process::id() % 100_000)
}

fn options(tag: &str, topology: &str) -> LabOptions {
    LabOptions {
        prefix: prefix(tag),
        topology: topology.to_string(),
        veil_bin: "/nonexistent/veil".into(),
        start_daemons: false,
        ..LabOptions::default()
    }
}

fn lab_namespaces(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = netns::list_netns()
        .into_iter()
        .filter(|n| names::is_lab_ns(prefix, n))
        .collect();
    v.sort();
    v
}

/// A file removed when dropped (also when the test panics).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes an executable script.
fn script(name: &str, text: &str) -> TempFile {
    let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    TempFile(path)
}

fn mac(i: usize) -> [u8; 6] {
    [2, 0x76, 0x6c, 0, 0, i as u8]
}

/// One socket per node on wlan0 for `ethertype`, each opened inside its namespace.
fn sockets(lab: &Lab, ethertype: u16) -> Vec<PacketSocket> {
    (1..=lab.len())
        .map(|i| {
            in_netns(&lab.ns_name(i), || PacketSocket::open("wlan0", ethertype))
                .unwrap()
                .unwrap()
        })
        .collect()
}

/// Which nodes (other than the sender) received `tag` sent from `from` to `dst`.
fn heard_by(socks: &[PacketSocket], from: usize, dst: [u8; 6], tag: &[u8]) -> Vec<usize> {
    socks[from - 1].send(dst, tag).unwrap();
    let mut got = Vec::new();
    for (i, s) in (1..).zip(socks) {
        let frames = s.drain(QUIET).unwrap();
        if i != from && frames.iter().any(|f| f.as_slice() == tag) {
            got.push(i);
        }
    }
    got
}

#[test]
fn medium_carries_frames_only_between_neighbours() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::up(&options("m", "line:3")).unwrap();
    let socks = sockets(&lab, ETHERTYPE);
    assert_eq!(heard_by(&socks, 1, BROADCAST, b"b1"), vec![2]);
    assert_eq!(heard_by(&socks, 2, BROADCAST, b"b2"), vec![1, 3]);
    assert_eq!(heard_by(&socks, 3, BROADCAST, b"b3"), vec![2]);
    assert_eq!(heard_by(&socks, 1, mac(2), b"u12"), vec![2]);
    assert_eq!(heard_by(&socks, 1, mac(3), b"u13"), Vec::<usize>::new());

    lab.cut(1, 2).unwrap();
    assert_eq!(heard_by(&socks, 1, BROADCAST, b"c1"), Vec::<usize>::new());
    assert_eq!(heard_by(&socks, 2, BROADCAST, b"c2"), vec![3]);
    assert!(LabState::load(&lab.state().run_dir).unwrap().links[0].cut);
    lab.heal(2, 1).unwrap();
    assert_eq!(heard_by(&socks, 1, BROADCAST, b"h1"), vec![2]);
    assert_eq!(heard_by(&socks, 2, BROADCAST, b"h2"), vec![1, 3]);

    lab.set_loss(2, 3, 100.0).unwrap();
    assert_eq!(heard_by(&socks, 2, BROADCAST, b"l2"), vec![1]);
    lab.set_loss(2, 3, 50.0).unwrap();
    for k in 0..200u32 {
        socks[1].send(BROADCAST, &k.to_be_bytes()).unwrap();
    }
    let arrived = socks[2].drain(QUIET).unwrap().len();
    assert!(
        (60..=140).contains(&arrived),
        "50% loss let {arrived}/200 through"
    );
    assert!(matches!(
        lab.cut(1, 3),
        Err(LabError::NoLink { a: 1, b: 3, .. })
    ));
    assert!(matches!(
        lab.cut(1, 4),
        Err(LabError::NoNode { node: 4, nodes: 3 })
    ));
    assert!(matches!(
        lab.set_loss(1, 2, 101.0),
        Err(LabError::BadLoss(_))
    ));

    // Other EtherTypes do not cross even on a link that is up.
    let other = sockets(&lab, 0x88b6);
    assert_eq!(heard_by(&other, 1, BROADCAST, b"x1"), Vec::<usize>::new());
}

#[test]
fn link_local_parser_skips_tentative_addresses() {
    let text = "2: wlan0    inet6 fe80::76:6cff:fe00:1/64 scope link tentative \\       valid_lft forever preferred_lft forever\n";
    assert_eq!(parse_link_local(text), None);
    let text = "2: wlan0    inet6 fe80::76:6cff:fe00:1/64 scope link \\       valid_lft forever preferred_lft forever\n";
    assert_eq!(
        parse_link_local(text),
        Some("fe80::76:6cff:fe00:1".parse().unwrap())
    );
    assert_eq!(parse_link_local(""), None);
}

/// Whether `ping -6` from node `a` to node `b`'s link-local address gets an answer: three
/// echoes 300 ms apart, any answer counts (the first also waits for neighbour discovery,
/// which on a loaded machine can take longer than one echo's wait). Both ends' addresses
/// must have left duplicate address detection: a tentative source address cannot send.
fn ping_link_local(lab: &Lab, a: usize, b: usize) -> bool {
    lab.mesh_link_local(a, Duration::from_secs(5))
        .unwrap()
        .expect("the pinging node has no usable link-local address within 5 s");
    let addr = lab
        .mesh_link_local(b, Duration::from_secs(5))
        .unwrap()
        .expect("no usable link-local address within 5 s");
    let target = format!("{addr}%{MESH_IF}");
    lab.exec(
        a,
        &["ping", "-6", "-c", "3", "-i", "0.3", "-W", "2", &target],
    )
    .unwrap()
    .status
    .success()
}

#[test]
fn ipv6_crosses_only_lab_links_and_only_when_asked() {
    if !can_run() {
        return;
    }
    // Default medium: veil frames only, so not even neighbours reach each other over IPv6.
    let lab = Lab::up(&options("6", "line:2")).unwrap();
    assert!(!lab.state().carry_ipv6);
    assert!(!ping_link_local(&lab, 1, 2));
    drop(lab);

    // With carry_ipv6, IPv6 (NDP included) follows the topology: the neighbour answers,
    // the node two hops away does not, and a cut link stops it like veil's frames.
    let opts = LabOptions {
        carry_ipv6: true,
        ..options("6", "line:3")
    };
    let mut lab = Lab::up(&opts).unwrap();
    assert!(LabState::load(&lab.state().run_dir).unwrap().carry_ipv6);
    assert!(ping_link_local(&lab, 1, 2));
    assert!(ping_link_local(&lab, 3, 2));
    assert!(!ping_link_local(&lab, 1, 3));
    lab.cut(1, 2).unwrap();
    assert!(!ping_link_local(&lab, 2, 1));
    lab.heal(1, 2).unwrap();
    assert!(ping_link_local(&lab, 2, 1));
    // veil's EtherType still crosses next to IPv6.
    let socks = sockets(&lab, ETHERTYPE);
    assert_eq!(heard_by(&socks, 2, BROADCAST, b"v2"), vec![1, 3]);
}

#[test]
fn drop_removes_everything_even_when_the_test_panics() {
    if !can_run() {
        return;
    }
    let opts = options("p", "ring:3");
    let p = opts.prefix.clone();
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::up(&opts).unwrap();
        assert_eq!(lab_namespaces(&p).len(), 4);
        assert!(lab.config_path(3).is_file());
        panic!("test body fails with the lab up");
    });
    assert!(result.is_err());
    assert_eq!(lab_namespaces(&p), Vec::<String>::new());
    assert!(!names::run_dir(&p).exists());
}

#[test]
fn a_second_lab_with_the_same_prefix_is_refused_and_the_first_survives() {
    if !can_run() {
        return;
    }
    let opts = options("s", "line:2");
    let lab = Lab::up(&opts).unwrap();
    let err = Lab::up(&opts).unwrap_err();
    assert!(matches!(err, LabError::AlreadyUp { .. }), "{err}");
    assert!(err.to_string().contains("veil lab down --prefix"), "{err}");
    assert_eq!(lab_namespaces(&opts.prefix).len(), 3);
    // An attached handle changes the same lab and does not tear it down when dropped.
    let mut attached = Lab::attach(&opts.prefix).unwrap();
    attached.cut(1, 2).unwrap();
    drop(attached);
    assert_eq!(lab_namespaces(&opts.prefix).len(), 3);
    assert!(LabState::load(&lab.state().run_dir).unwrap().links[0].cut);
    lab.down();
    assert_eq!(lab_namespaces(&opts.prefix), Vec::<String>::new());
}

#[test]
fn down_works_when_half_of_the_lab_is_already_gone() {
    if !can_run() {
        return;
    }
    let opts = options("h", "line:3");
    let p = opts.prefix.clone();
    let lab = Lab::up(&opts).unwrap();
    netns::delete_netns(&[lab.ns_name(2)]);
    lab.down();
    assert_eq!(lab_namespaces(&p), Vec::<String>::new());

    // Without lab.json, `down_prefix` still finds the namespaces by name.
    let lab = Lab::up(&opts).unwrap();
    let state = lab.into_persistent();
    std::fs::remove_file(LabState::path_in(&state.run_dir)).unwrap();
    assert!(matches!(Lab::attach(&p), Err(LabError::NotUp { .. })));
    assert_eq!(Lab::down_prefix(&p).unwrap(), 4);
    assert_eq!(lab_namespaces(&p), Vec::<String>::new());
    assert!(!state.run_dir.exists());
    assert_eq!(Lab::down_prefix(&p).unwrap(), 0);
}

#[test]
fn daemons_start_in_their_namespace_and_stop_on_signal_or_drop() {
    if !can_run() {
        return;
    }
    let fake = script(
        "fake-veil",
        "#!/bin/sh\necho \"fake veil $*\"\nexec sleep 600\n",
    );
    let opts = LabOptions {
        veil_bin: fake.0.clone(),
        start_daemons: true,
        extra_config: vec!["ipv4 = false".to_string()],
        node_config: vec![(2, vec!["mode = \"darknet\"".to_string()])],
        ..options("d", "line:2")
    };
    let mut lab = Lab::up(&opts).unwrap();
    let pid = lab.daemon_pid(1).unwrap();
    assert!(matches!(
        lab.start_daemon(1),
        Err(LabError::DaemonRunning { node: 1, .. })
    ));
    let cfg2 = std::fs::read_to_string(lab.config_path(2)).unwrap();
    assert!(cfg2.contains("ipv4 = false") && cfg2.contains("mode = \"darknet\""));
    assert!(!std::fs::read_to_string(lab.config_path(1))
        .unwrap()
        .contains("darknet"));

    // The fake writes its log line before it sleeps: wait for it (bounded) so SIGTERM
    // does not race the shell's start.
    let logged = (0..250).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        lab.log_tail(1, 5).contains("fake veil run -v --config")
    });
    assert!(logged, "log: {:?}", lab.log_tail(1, 5));
    // Once it logs, the daemon has entered node 1's namespace.
    let ns_of = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ns_of(Path::new(&format!("/proc/{pid}/ns/net"))),
        ns_of(&Path::new(netns::NETNS_DIR).join(lab.ns_name(1)))
    );
    lab.kill_daemon(1, Signal::Term).unwrap();
    assert_eq!(lab.daemon_pid(1), None);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    let pid1 = lab.start_daemon(1).unwrap();
    let pid2 = lab.daemon_pid(2).unwrap();
    drop(lab);
    for p in [pid1, pid2] {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "pid {p} survived"
        );
    }
    assert_eq!(lab_namespaces(&opts.prefix), Vec::<String>::new());
}

#[test]
fn a_daemon_command_wraps_the_daemons() {
    if !can_run() {
        return;
    }
    // As `--daemon-cmd 'qemu-mipsel-static …/veil'` would: a wrapper program with its own
    // arguments, then `run -v --config …`; `veil_bin` is not what starts.
    let fake = script(
        "fake-wrapper",
        "#!/bin/sh\necho \"wrapper $*\"\nexec sleep 600\n",
    );
    let opts = LabOptions {
        daemon_cmd: vec![
            "/bin/sh".into(),
            fake.0.display().to_string(),
            "guest".into(),
        ],
        start_daemons: true,
        ..options("w", "line:2")
    };
    let mut lab = Lab::up(&opts).unwrap();
    let started = (0..250).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        lab.log_tail(2, 5).contains("wrapper guest run -v --config")
    });
    assert!(started, "log: {:?}", lab.log_tail(2, 5));
    assert!(
        lab.daemon_pid(2).is_some(),
        "the wrapped daemon counts as running"
    );
    lab.kill_daemon(2, Signal::Term).unwrap();
    assert_eq!(lab.daemon_pid(2), None);
}

#[test]
fn tcp_transfer_runs_inside_the_namespaces() {
    if !can_run() {
        return;
    }
    let lab = Lab::up(&options("t", "line:2")).unwrap();
    let lo = "[::1]:5201".parse().unwrap();
    let t = tcp_throughput(&lab, 2, 2, lo, Duration::from_millis(300)).unwrap();
    assert!(t.bytes > 1_000_000, "{t:?}");
    assert!(t.elapsed >= Duration::from_millis(300));
    assert!(t.mbit_per_s() > 1.0);
    // Node 1's loopback is not node 2's: nobody listens there.
    let err = tcp_throughput(
        &lab,
        1,
        2,
        "[fd00::9]:5201".parse().unwrap(),
        Duration::ZERO,
    );
    assert!(err.is_err());
}

/// A stand-in for `veil` that answers `run`, `originators` and `status` like the daemon,
/// with `ipv6` as every node's overlay address.
fn fake_veil(nodes: usize, ipv6: &str) -> TempFile {
    let origs = vec!["{}"; nodes - 1].join(",");
    let text = format!(
        "#!/bin/bash\ncase \"$1\" in\n\
         run) echo \"fake veil $*\"; exec -a \"veil run -v --config $4\" sleep 600 ;;\n\
         originators) echo '[{origs}]' ;;\n\
         status) echo '{{\"node_id\":\"00aa\",\"ipv6\":\"{ipv6}\",\"ipv4\":null,\"neighbors\":1,\"originators\":{}}}' ;;\n\
         *) exit 2 ;;\nesac\n",
        nodes - 1
    );
    script(&format!("fake-veil-cli-{ipv6}"), &text)
}

#[test]
fn cli_up_status_cut_down_and_the_demo_run() {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Top {
        #[command(flatten)]
        lab: cli::LabArgs,
    }
    if !can_run() {
        return;
    }
    let veil = fake_veil(3, "::1");
    let unreachable = fake_veil(3, "fd00::9");
    let p = prefix("c");
    let run_with = |bin: &Path, args: &[&str]| {
        let mut argv = vec!["veil-lab"];
        argv.extend_from_slice(args);
        let top = Top::try_parse_from(argv).unwrap();
        cli::run(&top.lab, bin)
    };
    let run = |args: &[&str]| run_with(&veil.0, args);
    let ok = std::process::ExitCode::SUCCESS;
    assert_eq!(run(&["up", "-n", "3", "--prefix", &p]), ok);
    assert_eq!(lab_namespaces(&p).len(), 4);
    let pids = LabState::load(&names::run_dir(&p)).unwrap().pids;
    assert!(pids.iter().all(Option::is_some), "{pids:?}");
    assert_eq!(run(&["status", "--prefix", &p]), ok);
    assert_eq!(run(&["cut", "2", "3", "--prefix", &p]), ok);
    assert!(LabState::load(&names::run_dir(&p)).unwrap().links[1].cut);
    assert_ne!(run(&["cut", "1", "3", "--prefix", &p]), ok);
    assert_eq!(run(&["exec", "2", "--prefix", &p, "--", "true"]), ok);
    assert_ne!(run(&["exec", "2", "--prefix", &p, "--", "false"]), ok);
    assert_ne!(run(&["up", "-n", "3", "--prefix", &p]), ok);
    assert_eq!(run(&["down", "--prefix", &p]), ok);
    assert_eq!(lab_namespaces(&p), Vec::<String>::new());
    for pid in pids.into_iter().flatten() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "daemon {pid} survived: {stat}"
        );
    }
    // The demonstration run: up, converge, table, ping, TCP, tear down after --duration.
    assert_eq!(run(&["-n", "3", "--prefix", &p, "--duration", "100ms"]), ok);
    assert_eq!(lab_namespaces(&p), Vec::<String>::new());
    // A demonstration whose ping gets no answer fails (CI relies on it), and cleans up.
    let args = ["-n", "3", "--prefix", &p, "--duration", "100ms"];
    assert_ne!(run_with(&unreachable.0, &args), ok);
    assert_eq!(lab_namespaces(&p), Vec::<String>::new());
}
