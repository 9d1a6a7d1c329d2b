//! Namespace tests of the daemon's life cycle: SIGHUP reloads the config (interfaces change
//! live, a broken config is refused), SIGTERM removes what the daemon configured.

mod nslab;

use std::process::Command;
use std::time::Duration;

use veilmesh::lab::{Lab, Signal};

fn hup(lab: &mut Lab, i: usize) {
    let pid = lab.daemon_pid(i).expect("daemon running");
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status();
    assert!(ok.is_ok_and(|s| s.success()), "kill -HUP {pid}");
}

fn interfaces(lab: &Lab, i: usize) -> Vec<(String, bool)> {
    nslab::status(lab, i)
        .interfaces
        .into_iter()
        .map(|f| (f.name, f.up))
        .collect()
}

#[test]
fn sighup_changes_interfaces_live_and_sigterm_cleans_up() {
    if !nslab::can_run() {
        return;
    }
    let mut lab = nslab::up(&nslab::options("tdhup", "line:2"));
    nslab::converge(&lab, Duration::from_secs(20));
    let out = lab.exec(1, &["sh", "-c", "ip link add vdum0 type veth peer name vdum1 && ip link set vdum1 up && ip link set vdum0 up"]);
    assert!(out.is_ok_and(|o| o.status.success()));
    let pid = lab.daemon_pid(1);

    // Add an interface.
    lab.write_config(1, &["interfaces = [\"wlan0\", \"vdum0\"]".to_string()])
        .unwrap();
    hup(&mut lab, 1);
    let added = nslab::eventually(Duration::from_secs(5), || {
        let ifs = interfaces(&lab, 1);
        ifs.contains(&("vdum0".to_string(), true)).then_some(ifs)
    });
    assert!(
        added.is_some(),
        "{:?}\n{}",
        interfaces(&lab, 1),
        nslab::logs(&lab)
    );

    // A broken config is refused; the daemon keeps running with what it had.
    lab.write_config(1, &["interfaces = 5".to_string()])
        .unwrap();
    hup(&mut lab, 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lab.daemon_pid(1),
        pid,
        "the daemon survived a broken config"
    );
    assert!(interfaces(&lab, 1).contains(&("vdum0".to_string(), true)));
    assert!(
        lab.log_tail(1, 20).contains("keeping the running config"),
        "{}",
        nslab::logs(&lab)
    );

    // Remove it again; the mesh interface still carries traffic.
    lab.write_config(1, &[]).unwrap();
    hup(&mut lab, 1);
    let removed = nslab::eventually(Duration::from_secs(5), || {
        let ifs = interfaces(&lab, 1);
        (ifs == [("wlan0".to_string(), true)]).then_some(())
    });
    assert!(removed.is_some(), "{:?}", interfaces(&lab, 1));
    let b = nslab::status(&lab, 2).ipv6.to_string();
    let ping = nslab::veil(&lab, 1, &["ping", "-n", "1", &b]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );

    // SIGTERM: the TUN device (with its addresses and routes) and the socket are gone.
    assert!(lab
        .exec(1, &["ip", "link", "show", "veil0"])
        .is_ok_and(|o| o.status.success()));
    lab.kill_daemon(1, Signal::Term).unwrap();
    let tun = lab.exec(1, &["ip", "link", "show", "veil0"]).unwrap();
    assert!(!tun.status.success(), "veil0 left behind after SIGTERM");
    assert!(
        !lab.control_socket(1).exists(),
        "control socket left behind"
    );
    assert!(
        lab.log_tail(1, 5).contains("SIGTERM: stopping"),
        "{}",
        lab.log_tail(1, 5)
    );
}
