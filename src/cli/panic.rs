//! What a panic does to the process: it ends it, whatever the build's panic strategy.
//!
//! A release build aborts on panic, but OpenWrt's feed forces `panic = "unwind"`, and under
//! unwind tokio catches a panicking task and a panicking thread dies alone: the daemon would
//! go on half-working (no control socket, say, or no TUN reader) and procd would never
//! restart it. The hook below prints one clear line and aborts before any unwinding starts,
//! so both strategies behave the same.

use std::io::Write;
use std::panic::PanicHookInfo;

/// Install the hook: on any panic, print what and where on stderr, then abort the process.
pub fn abort_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", message(info));
        let _ = err.flush();
        std::process::abort();
    }));
}

/// The line printed for a panic: a bug, where it happened, and what happens next.
fn message(info: &PanicHookInfo<'_>) -> String {
    let what = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    let at = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_else(|| "(unknown place)".to_string());
    format!(
        "veil: internal error (a bug, please report it): {what} at {at}; \
         stopping the whole process so a supervisor restarts it cleanly"
    )
}
