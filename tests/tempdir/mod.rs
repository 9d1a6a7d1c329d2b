//! A fresh directory for one test, shared by the tests that run the `veil` binary.

use std::path::PathBuf;

/// A directory under the system's temp dir, removed when dropped (also when the test fails).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `veil-<name>-<pid>`, emptied first; `name` must be unique among the tests.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("veil-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
