//! The daemon's end of the control socket: owner-only Unix socket, one task per connection
//! that reads request lines and hands them to the event loop.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::control::{Request, Response, MAX_REQUEST_LEN};

/// Most control connections served at once; more are answered with an error and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// A connection with no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A request and where its response goes.
pub type Job = (Request, oneshot::Sender<Response>);

/// Why the control socket cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Another daemon answers on that path.
    #[error("{0}: another daemon is listening on this control socket; stop it or set control_socket to another path")]
    InUse(PathBuf),
    /// Creating, binding or restricting the socket failed.
    #[error("{path}: cannot create the control socket: {source} (set control_socket to a writable path)")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// Bind `path` (a stale socket file left by a crash is replaced) with mode 0600; missing
/// parent directories are created 0700.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io_err = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            // Only the daemon's user may use the socket anyway; 0700 keeps others from even
            // seeing whether it exists.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err)?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = bind_owner_only(path).map_err(io_err)?;
    // A umask can only have taken bits away; this gives the owner back read and write.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    UnixListener::from_std(listener).map_err(io_err)
}

/// A non-blocking listening socket at `path` whose file is created with mode 0600 (less
/// the umask). Linux gives the file bind(2) creates the mode of the socket's own inode,
/// so that is set first with fchmod(2): a chmod after bind would leave a window in which
/// anyone could connect.
fn bind_owner_only(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    // `File::set_permissions` is fchmod(2) on the fd, which works on any fd, sockets too.
    let fd = std::fs::File::from(OwnedFd::from(socket));
    fd.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let socket = socket2::Socket::from(OwnedFd::from(fd));
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Serve one accepted connection on its own task.
pub fn spawn_connection(stream: UnixStream, jobs: mpsc::Sender<Job>, open: Arc<AtomicUsize>) {
    if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
        open.fetch_sub(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut stream = stream;
            let _ = write_response(
                &mut stream,
                &Response::error("too many control connections"),
            )
            .await;
        });
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = serve(stream, jobs).await {
            tracing::debug!("control connection: {e}");
        }
        open.fetch_sub(1, Ordering::Relaxed);
    });
}

async fn serve(stream: UnixStream, jobs: mpsc::Sender<Job>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        // At most one byte more than a request may have: enough to tell it is too long.
        let mut limited = (&mut reader).take(MAX_REQUEST_LEN as u64 + 1);
        let read = tokio::time::timeout(IDLE_TIMEOUT, limited.read_line(&mut line)).await;
        match read {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
        if line.len() > MAX_REQUEST_LEN {
            // The rest of that line is still unread: answer and hang up.
            let too_long = format!("request longer than {MAX_REQUEST_LEN} bytes");
            return write_response(&mut write, &Response::error(too_long)).await;
        }
        let response = match serde_json::from_str::<Request>(line.trim()) {
            Ok(request) => dispatch(request, &jobs).await,
            Err(e) => Response::error(format!("not a request: {e}")),
        };
        write_response(&mut write, &response).await?;
    }
}

async fn dispatch(request: Request, jobs: &mpsc::Sender<Job>) -> Response {
    let (tx, rx) = oneshot::channel();
    if jobs.try_send((request, tx)).is_err() {
        return Response::error("the daemon is busy; try again");
    }
    rx.await
        .unwrap_or_else(|_| Response::error("the daemon is shutting down"))
}

async fn write_response(
    w: &mut (impl AsyncWriteExt + Unpin),
    response: &Response,
) -> io::Result<()> {
    let mut text = serde_json::to_string(response).map_err(io::Error::other)?;
    text.push('\n');
    w.write_all(text.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::control::{query, ClientError};
    use std::os::unix::fs::PermissionsExt;

    fn socket_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veil-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("sub").join("control.sock")
    }

    /// Serve `listener` with a loop that answers every request with its own JSON.
    fn serve_echo(listener: UnixListener) {
        let (jobs_tx, mut jobs) = mpsc::channel::<Job>(4);
        let open = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Ok((stream, _)) = listener.accept() => {
                        spawn_connection(stream, jobs_tx.clone(), open.clone());
                    }
                    Some((request, reply)) = jobs.recv() => {
                        let _ = reply.send(Response::ok(request));
                    }
                }
            }
        });
    }

    async fn ask(path: &Path, request: Request) -> Result<serde_json::Value, ClientError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || query(&path, &request))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn requests_round_trip_and_the_socket_is_owner_only() {
        let path = socket_path("rt");
        let listener = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        serve_echo(listener);
        let v = ask(&path, Request::Status).await.unwrap();
        assert_eq!(v, serde_json::json!({"cmd": "status"}));
        // A second daemon on the same path is refused while this one listens.
        assert!(matches!(bind(&path), Err(ControlError::InUse(_))));
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[tokio::test]
    async fn a_bad_line_gets_an_error_and_an_oversized_one_ends_the_connection() {
        let path = socket_path("bad");
        serve_echo(bind(&path).unwrap());
        let p = path.clone();
        let lines = tokio::task::spawn_blocking(move || {
            use std::io::{BufRead, BufReader, Write};
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            let long = format!("{{\"cmd\":\"status\",\"pad\":\"{}\"}}\n", "x".repeat(5000));
            for line in ["not json\n", "{\"cmd\":\"stats\"}\n", long.as_str()] {
                s.write_all(line.as_bytes()).unwrap();
            }
            let mut r = BufReader::new(s);
            let mut answers: Vec<Response> = (0..3)
                .map(|_| {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    serde_json::from_str::<Response>(&l).unwrap()
                })
                .collect();
            // After the oversized request the daemon hangs up.
            let mut rest = String::new();
            assert_eq!(r.read_line(&mut rest).unwrap(), 0, "{rest}");
            answers.swap(1, 2);
            answers
        })
        .await
        .unwrap();
        assert!(lines[0].error.as_deref().unwrap().contains("not a request"));
        assert!(lines[1]
            .error
            .as_deref()
            .unwrap()
            .contains("longer than 4096"));
        assert_eq!(lines[2].result, Some(serde_json::json!({"cmd": "stats"})));
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    /// The mode bits of `path`.
    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_socket_file_is_created_without_group_or_other_bits() {
        let path = socket_path("mode");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Straight from bind(2), before the chmod `bind` adds: under the usual umask (022) a
        // socket bound without fchmod first would be 0755 here.
        let listener = bind_owner_only(&path).unwrap();
        assert_eq!(mode(&path) & 0o077, 0, "mode {:o}", mode(&path));
        // It is a working listener.
        let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        assert!(listener.accept().is_ok());
        drop(client);
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[tokio::test]
    async fn missing_parent_directories_are_created_owner_only() {
        let path = socket_path("dirs");
        let _listener = bind(&path).unwrap();
        let sub = path.parent().unwrap();
        assert_eq!(mode(sub), 0o700);
        assert_eq!(mode(sub.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
        // A directory that exists is left as it is.
        let _ = std::fs::remove_file(&path);
        std::fs::set_permissions(sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _listener = bind(&path).unwrap();
        assert_eq!(mode(sub), 0o755);
        let _ = std::fs::remove_dir_all(sub.parent().unwrap());
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let path = socket_path("stale");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A socket file nobody listens on, as a crashed daemon leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { assert!(bind(&path).is_ok()) });
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }
}
