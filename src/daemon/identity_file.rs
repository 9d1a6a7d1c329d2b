//! The node's identity file: created with mode 0600 from the kernel's randomness, written
//! in full and then renamed into place, read back with a clear error for each failure.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::{Identity, IdentityError};

/// Why an identity command failed; each says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityFileError {
    /// Refusing to replace an identity (that would change the node's addresses).
    #[error("{0} already exists; a new identity would change this node's addresses. Use --force to replace it")]
    Exists(PathBuf),
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a valid identity.
    #[error("{path}: not a veilmesh identity file: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        source: IdentityError,
    },
    /// The kernel gave no randomness (getrandom(2) failed: a kernel older than 3.17, or a
    /// seccomp filter that refuses it).
    #[error("cannot get randomness from the kernel (getrandom): {0}")]
    Random(std::io::Error),
}

/// A fresh identity from the OS's randomness, written to `path` readable by its owner only.
pub fn keygen(path: &Path, force: bool) -> Result<Identity, IdentityFileError> {
    if path.exists() && !force {
        return Err(IdentityFileError::Exists(path.to_path_buf()));
    }
    // Straight from the kernel: an RNG in between would keep its state, which no one wipes.
    let mut ed = Zeroizing::new([0u8; 32]);
    let mut x = Zeroizing::new([0u8; 32]);
    super::sys::fill_random(&mut *ed).map_err(IdentityFileError::Random)?;
    super::sys::fill_random(&mut *x).map_err(IdentityFileError::Random)?;
    let identity = Identity::from_secrets(*ed, *x);
    // A new file (mode 0600 whatever the old one had) written in full, then put in place in
    // one step: a crash or a full disk never leaves a half-written or missing identity.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = std::path::PathBuf::from(tmp);
    let io = |source| IdentityFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(identity.to_file_string().as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| {
            if force {
                std::fs::rename(&tmp, path)
            } else {
                // A link fails if `path` appeared meanwhile: never replace without --force.
                std::fs::hard_link(&tmp, path)
            }
        });
    let _ = std::fs::remove_file(&tmp);
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !force => {
            Err(IdentityFileError::Exists(path.to_path_buf()))
        }
        Err(e) => Err(io(e)),
        Ok(()) => Ok(identity),
    }
}

/// Read the identity in `path`.
pub fn load(path: &Path) -> Result<Identity, IdentityFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| IdentityFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = Zeroizing::new(text);
    Identity::from_file_str(&text).map_err(|source| IdentityFileError::Parse {
        path: path.to_path_buf(),
        source,
    })
}
