//! The daemon's state directory: the identity (created on first start, mode 0600), the
//! restart epoch (grows on every start, so peers believe a restarted node at once), and a
//! lock so two daemons never run on one state directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::identity_file::{self, IdentityFileError};
use crate::crypto::Identity;

/// An opened, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    /// Held for the daemon's lifetime: the lock is released when it is dropped.
    _lock: File,
}

/// Why the state directory cannot be used; each says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Another daemon holds the lock.
    #[error("{0}: another `veil run` is using this state directory; stop it first or use another --state-dir")]
    Busy(PathBuf),
    /// A file could not be created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The epoch file holds something else than a number.
    #[error(
        "{0}: not a restart epoch (one decimal number); remove the file to start over at the clock"
    )]
    BadEpoch(PathBuf),
    /// The identity file is unusable.
    #[error(transparent)]
    Identity(#[from] IdentityFileError),
}

impl StateDir {
    /// Create `path` (mode 0700) if needed and lock it.
    pub fn open(path: &Path) -> Result<StateDir, StateError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| StateError::Io { path: p, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io(path))?;
        let lock_path = path.join("lock");
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StateError::Busy(path.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        Ok(StateDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The node's identity: read from `identity`, or created there on first start.
    pub fn identity(&self) -> Result<Identity, StateError> {
        let file = self.path.join("identity");
        if file.exists() {
            Ok(identity_file::load(&file)?)
        } else {
            Ok(identity_file::keygen(&file, false)?)
        }
    }

    /// This start's epoch: one more than the last start's, and at least `unix_secs` (the
    /// clock helps when the state was lost; the counter helps when the clock is not set,
    /// as on routers without an RTC). Written before it is used.
    pub fn next_epoch(&self, unix_secs: u64) -> Result<u32, StateError> {
        let file = self.path.join("epoch");
        let last = match std::fs::read_to_string(&file) {
            Ok(text) => Some(
                text.trim()
                    .parse::<u32>()
                    .map_err(|_| StateError::BadEpoch(file.clone()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(StateError::Io { path: file, source }),
        };
        let clock = u32::try_from(unix_secs).unwrap_or(u32::MAX);
        let epoch = last.map_or(clock, |l| l.saturating_add(1).max(clock));
        let tmp = self.path.join("epoch.new");
        let io = |source| StateError::Io {
            path: tmp.clone(),
            source,
        };
        let mut f = File::create(&tmp).map_err(io)?;
        writeln!(f, "{epoch}").map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &file).map_err(|source| StateError::Io { path: file, source })?;
        Ok(epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Tmp(PathBuf);

    impl Tmp {
        fn new(name: &str) -> Tmp {
            let p = std::env::temp_dir().join(format!("veil-state-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Tmp(p)
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn identity_is_created_once_and_reused() {
        let t = Tmp::new("id");
        let dir = StateDir::open(&t.0).unwrap();
        let mode = std::fs::metadata(&t.0).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let first = dir.identity().unwrap();
        let file_mode = std::fs::metadata(t.0.join("identity"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(file_mode & 0o777, 0o600);
        drop(dir);
        let again = StateDir::open(&t.0).unwrap().identity().unwrap();
        assert_eq!(first.public(), again.public());
    }

    #[test]
    fn a_second_daemon_is_refused_until_the_first_is_gone() {
        let t = Tmp::new("lock");
        let first = StateDir::open(&t.0).unwrap();
        let err = StateDir::open(&t.0).unwrap_err();
        assert!(matches!(err, StateError::Busy(_)), "{err}");
        assert!(err.to_string().contains("another `veil run`"));
        drop(first);
        assert!(StateDir::open(&t.0).is_ok());
    }

    #[test]
    fn epoch_grows_on_every_start_even_without_a_clock() {
        let t = Tmp::new("epoch");
        let dir = StateDir::open(&t.0).unwrap();
        // A router without an RTC boots at 1970: the counter still grows.
        assert_eq!(dir.next_epoch(5).unwrap(), 5);
        assert_eq!(dir.next_epoch(5).unwrap(), 6);
        assert_eq!(dir.next_epoch(0).unwrap(), 7);
        // With a real clock the epoch jumps ahead, and never goes back.
        assert_eq!(dir.next_epoch(1_800_000_000).unwrap(), 1_800_000_000);
        assert_eq!(dir.next_epoch(100).unwrap(), 1_800_000_001);
        std::fs::write(t.0.join("epoch"), "garbage").unwrap();
        assert!(matches!(
            dir.next_epoch(1).unwrap_err(),
            StateError::BadEpoch(_)
        ));
    }
}
