//! A built-in bulk TCP transfer between two lab nodes, for `veil lab` and for tests and
//! benchmarks: no iperf needed. The server runs on a thread inside the receiver's
//! namespace, the client on one inside the sender's; the client sends for the given time,
//! half-closes, and the server answers with the byte count it received, so the rate is
//! what actually arrived.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{in_netns, Lab, LabError};

/// How long connect, accept and every read or write may block.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Size of each write.
const CHUNK: usize = 64 * 1024;

/// The result of one transfer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Bytes the receiver got.
    pub bytes: u64,
    /// From connect until the receiver's count came back.
    pub elapsed: Duration,
}

impl Throughput {
    /// Goodput in Mbit/s.
    pub fn mbit_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.bytes as f64 * 8.0 / secs / 1e6
    }
}

/// Sends from node `from` to `to_addr` (an address of node `to`, which must be up there)
/// for `duration`, and reports what arrived.
pub fn tcp_throughput(
    lab: &Lab,
    from: usize,
    to: usize,
    to_addr: SocketAddr,
    duration: Duration,
) -> Result<Throughput, LabError> {
    lab.check_node(from)?;
    lab.check_node(to)?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let server_ns = lab.ns_name(to);
    let server =
        std::thread::spawn(move || in_netns(&server_ns, move || serve_once(to_addr, &ready_tx)));
    let io_err = |e: std::io::Error| LabError::Io {
        path: format!("tcp {to_addr}").into(),
        source: e,
    };
    // Wait until the listener is bound (or failed) before connecting.
    let bound = ready_rx
        .recv_timeout(IO_TIMEOUT)
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
    if let Err(e) = bound {
        let _ = server.join();
        return Err(io_err(e));
    }
    let sent = in_netns(&lab.ns_name(from), move || send_for(to_addr, duration))?;
    let received = match server.join() {
        Ok(r) => r?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let (count, elapsed) = sent.map_err(io_err)?;
    received.map_err(io_err)?;
    Ok(Throughput {
        bytes: count,
        elapsed,
    })
}

/// One connection accepted on `listener` within `timeout` (`TimedOut` if none came), in
/// blocking mode with `timeout` as its read timeout.
pub fn accept_within(listener: &TcpListener, timeout: Duration) -> std::io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(timeout))?;
    Ok(stream)
}

/// Accepts one connection, counts bytes until EOF, answers the count (8 bytes BE).
fn serve_once(addr: SocketAddr, ready: &mpsc::Sender<std::io::Result<()>>) -> std::io::Result<u64> {
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            let kind = e.kind();
            let _ = ready.send(Err(e));
            return Err(kind.into());
        }
    };
    let _ = ready.send(Ok(()));
    let mut stream = accept_within(&listener, IO_TIMEOUT)?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf)? {
            0 => break,
            n => total += n as u64,
        }
    }
    stream.write_all(&total.to_be_bytes())?;
    Ok(total)
}

/// Connects, writes for `duration`, half-closes and reads the receiver's count.
fn send_for(addr: SocketAddr, duration: Duration) -> std::io::Result<(u64, Duration)> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let buf = vec![0x5au8; CHUNK];
    while start.elapsed() < duration {
        stream.write_all(&buf)?;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut count = [0u8; 8];
    stream.read_exact(&mut count)?;
    Ok((u64::from_be_bytes(count), start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_bits_over_elapsed() {
        let t = Throughput {
            bytes: 1_250_000,
            elapsed: Duration::from_secs(2),
        };
        assert!((t.mbit_per_s() - 5.0).abs() < 1e-9);
        let z = Throughput {
            bytes: 5,
            elapsed: Duration::ZERO,
        };
        assert_eq!(z.mbit_per_s(), 0.0);
    }
}
