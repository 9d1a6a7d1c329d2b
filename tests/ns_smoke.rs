//! Namespace smoke test: two daemons on one link find each other and ping works.

mod nslab;

use std::time::Duration;

#[test]
fn two_daemons_on_one_link_ping_each_other() {
    if !nslab::can_run() {
        return;
    }
    let lab = nslab::up(&nslab::options("tsmk", "line:2"));
    nslab::converge(&lab, Duration::from_secs(20));
    let b = nslab::status(&lab, 2);
    let out = nslab::veil(
        &lab,
        1,
        &["ping", "-n", "2", "-i", "0.1", &b.ipv6.to_string()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", nslab::logs(&lab));
    assert!(text.contains("2 received"), "{text}");
}
