//! `veil check-config`, run as the real binary: the checks of `veil run` with no side effects.

mod tempdir;

use std::path::Path;
use std::process::{Command, Output};

use tempdir::TempDir;

fn check(config: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .arg("check-config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_good_config_passes_and_nothing_is_created() {
    let dir = TempDir::new("cc-good");
    let state = dir.0.join("state");
    let sock = dir.0.join("run").join("control.sock");
    let file = dir.0.join("veil.toml");
    std::fs::write(
        &file,
        format!(
            "mesh_name = \"camp\"\ninterfaces = [\"no-such-if0\"]\nstate_dir = \"{}\"\n\
             control_socket = \"{}\"\n",
            state.display(),
            sock.display()
        ),
    )
    .unwrap();
    let out = check(&file, &[]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok") && text.contains("no-such-if0"),
        "{text}"
    );
    // No state directory, no socket directory: a check touches nothing.
    assert!(!state.exists(), "check-config created the state directory");
    assert!(
        !sock.parent().unwrap().exists(),
        "check-config created the run directory"
    );
}

#[test]
fn errors_and_exit_codes_are_those_of_veil_run() {
    let dir = TempDir::new("cc-bad");
    let file = dir.0.join("veil.toml");
    // A bad value: exit 78 (EX_CONFIG), the file, the line or key, and what to do.
    std::fs::write(&file, "interfaces = [\"wlan0\"]\nmode = \"darknet\"\n").unwrap();
    let out = check(&file, &[]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains("veil.toml") && err.contains("allow"), "{err}");
    // Same file through `veil run`: same code, same message (it fails before touching
    // anything, so this is safe without privileges).
    let run = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["run", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(78));
    assert_eq!(
        stderr(&run).replace("veil run: ", ""),
        err.replace("veil check-config: ", "")
    );
    // No interface anywhere: exit 64, as `veil run`; `-i` supplies one.
    std::fs::write(&file, "mesh_name = \"camp\"\n").unwrap();
    let none = check(&file, &[]);
    assert_eq!(none.status.code(), Some(64), "{none:?}");
    assert!(stderr(&none).contains("--interface"));
    assert!(check(&file, &["-i", "wlan0"]).status.success());
    // A name given with -i is checked as well (veil run's exit 64 for a bad name).
    let bad_if = check(&file, &["-i", "wlan:0"]);
    assert_eq!(bad_if.status.code(), Some(64), "{bad_if:?}");
    assert!(stderr(&bad_if).contains("wlan:0"), "{}", stderr(&bad_if));
    // A syntax error names the line.
    std::fs::write(&file, "interfaces = [\"wlan0\"]\nipv4 = yes\n").unwrap();
    let syntax = check(&file, &[]);
    assert_eq!(syntax.status.code(), Some(78));
    assert!(stderr(&syntax).contains("line 2"), "{}", stderr(&syntax));
    // A file that is not there.
    let missing = check(&dir.0.join("absent.toml"), &[]);
    assert_eq!(missing.status.code(), Some(78));
    assert!(stderr(&missing).contains("absent.toml"));
}
