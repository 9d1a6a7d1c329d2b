//! The daemon's end of the control socket: owner-only Unix socket, one task per connection
//! that reads request lines and hands them to the event loop.

use std::io;
use std::os::unix::fs::PermissionsExt;
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

/// Bind `path` (a stale socket file left by a crash is replaced) with mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io_err = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
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
    let mut lines = BufReader::new(read.take(64 * 1024));
    let mut line = String::new();
    loop {
        line.clear();
        let read = tokio::time::timeout(Duration::from_secs(30), lines.read_line(&mut line)).await;
        match read {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
        let response = if line.len() > MAX_REQUEST_LEN {
            Response::error(format!("request longer than {MAX_REQUEST_LEN} bytes"))
        } else {
            match serde_json::from_str::<Request>(line.trim()) {
                Ok(request) => dispatch(request, &jobs).await,
                Err(e) => Response::error(format!("not a request: {e}")),
            }
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
