//! The kernel's randomness, through getrandom(2).

use std::io;

/// Fills all of `buf` from the kernel's CSPRNG. getrandom(2), unlike a read of
/// /dev/urandom, waits until the kernel's pool is initialised (a router's first boot has
/// little entropy) and needs no device file (a sandbox or chroot without /dev).
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    fill_with(buf, getrandom)
}

/// Fills `buf` with repeated `call`s, each given what is still unfilled: a large request
/// can come back in parts, and a signal can interrupt the wait for the pool.
fn fill_with(
    buf: &mut [u8],
    mut call: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> io::Result<()> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match call(rest) {
            Ok(0) => return Err(io::Error::other("getrandom returned no bytes")),
            Ok(n) => filled += n.min(rest.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One getrandom(2) call with no flags (blocking until the pool is initialised). The raw
/// system call, not libc's wrapper: the static musl of some router targets (mipsel) has no
/// `getrandom` symbol, and the weak reference called address 0.
fn getrandom(buf: &mut [u8]) -> io::Result<usize> {
    let flags: libc::c_uint = 0;
    // SAFETY: `buf` is a writable region of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::syscall(libc::SYS_getrandom, buf.as_mut_ptr(), buf.len(), flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_fills_the_whole_buffer_and_two_calls_differ() {
        let mut buf = vec![0u8; 1 << 20];
        fill_random(&mut buf).unwrap();
        // Every 4 KiB page got random bytes (all zero by chance: 2^-32768).
        for (i, page) in buf.chunks(4096).enumerate() {
            assert!(page.iter().any(|&b| b != 0), "page {i} left zero");
        }
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(fill_random(&mut []).is_ok());
    }

    #[test]
    fn short_and_interrupted_calls_are_continued_until_the_buffer_is_full() {
        let mut calls = 0;
        let mut buf = [0u8; 100];
        fill_with(&mut buf, |rest| {
            calls += 1;
            if calls % 3 == 0 {
                return Err(io::Error::from_raw_os_error(libc::EINTR));
            }
            let n = rest.len().min(7);
            rest.iter_mut().take(n).for_each(|b| *b = 0xa5);
            Ok(n)
        })
        .unwrap();
        assert_eq!(buf, [0xa5; 100]);
        assert!(calls > 100 / 7);
    }

    #[test]
    fn a_refusal_or_an_empty_answer_is_an_error_not_a_spin() {
        let mut buf = [0u8; 8];
        let e = fill_with(&mut buf, |_| {
            Err(io::Error::from_raw_os_error(libc::ENOSYS))
        });
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::ENOSYS));
        assert!(fill_with(&mut buf, |_| Ok(0)).is_err());
    }
}
