//! A panic anywhere ends the whole process with one clear line, even where it would only
//! unwind a tokio task or a thread. `cargo test` builds this with `panic = "unwind"` (the
//! OpenWrt feed's forced setting: the case where a daemon could go on half-working); CI also
//! runs it built with `panic = "abort"` (the release setting). No test harness (Cargo.toml
//! `harness = false`), so the same program runs itself again as a child, under either
//! strategy, and the child is the process that must die.

use std::process::Command;

const CHILD: &str = "VEIL_PANIC_TEST_CHILD";

/// In the child: install the hook, panic in the named place, and say so if the process
/// survives it (the parent checks that it never does).
fn child(place: &str) {
    veilmesh::cli::panic::abort_on_panic();
    match place {
        "task" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                let task = tokio::spawn(async { panic!("boom in task") });
                let _ = task.await;
            });
        }
        "thread" => {
            let t = std::thread::spawn(|| panic!("boom in thread"));
            let _ = t.join();
        }
        _ => panic!("boom in main"),
    }
    println!("still running after the panic");
}

fn run_child(place: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD, place)
        .output()
        .unwrap()
}

fn main() {
    if let Ok(place) = std::env::var(CHILD) {
        child(&place);
        return;
    }
    for place in ["task", "thread", "main"] {
        let out = run_child(place);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stdout.contains("still running"),
            "{place}: the process outlived a panic"
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{place}: {:?}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("veil: internal error") && stderr.contains(&format!("boom in {place}")),
            "{place}: {stderr}"
        );
        assert!(
            stderr.contains("panic_abort.rs:"),
            "{place}: no location: {stderr}"
        );
        println!("a panic in {place}: the process aborted with one line on stderr");
    }
}
