//! [`AdminEndpoint`]: where the admin API listens and who may use it, and
//! [`AdminServer`], the running endpoint.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use steadfast::Engine;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::{self, Token};
use crate::error::AdminError;
use crate::routes;

/// The address the endpoint listens on unless told otherwise: loopback,
/// port 8233 (Temporal's development server serves its UI there).
pub const DEFAULT_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8233);

/// How to serve an engine's admin API. Opt-in: nothing listens until
/// [`serve`](Self::serve) is called.
///
/// - By default it listens on [`DEFAULT_ADDRESS`] (loopback) and asks for
///   no token: anyone who can run a program on this machine can reach it,
///   as anyone who can read the file could.
/// - [`unix_socket`](Self::unix_socket) listens on a Unix socket instead,
///   made with mode 0600 so only the file's owner can connect.
/// - Any address but loopback needs a [`token`](Self::token); with a token
///   set, every request must carry `Authorization: Bearer <token>`.
#[derive(Clone)]
#[must_use = "nothing listens until `serve` is called"]
pub struct AdminEndpoint {
    engine: Engine,
    listen: Listen,
    token: Option<String>,
}

#[derive(Clone, Debug)]
enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Where a running endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminAddress {
    /// A TCP address (with the port chosen, when port 0 was asked for).
    Tcp(SocketAddr),
    /// A Unix socket's path.
    Unix(PathBuf),
}

impl std::fmt::Display for AdminAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAddress::Tcp(address) => write!(f, "http://{address}"),
            AdminAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl AdminEndpoint {
    /// The admin API of `engine` (a clone shares it), on [`DEFAULT_ADDRESS`].
    pub fn new(engine: Engine) -> Self {
        AdminEndpoint {
            engine,
            listen: Listen::Tcp(DEFAULT_ADDRESS),
            token: None,
        }
    }

    /// Listens on a TCP address; port 0 picks a free port
    /// ([`AdminServer::address`] tells which).
    pub fn bind(mut self, address: SocketAddr) -> Self {
        self.listen = Listen::Tcp(address);
        self
    }

    /// Listens on a Unix socket at `path` (mode 0600) instead of TCP. A
    /// stale socket left by a killed process is replaced; a live one is an
    /// error.
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.listen = Listen::Unix(path.into());
        self
    }

    /// Requires every request to carry `Authorization: Bearer <token>`.
    /// Needed for any TCP address but loopback. 16 to 256 printable ASCII
    /// characters.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Starts listening and serving in the background, on the current
    /// tokio runtime. The endpoint stops when the returned server is shut
    /// down or dropped.
    ///
    /// # Errors
    /// [`AdminError::TokenRequired`] for a non-loopback address without a
    /// token, [`AdminError::BadToken`], [`AdminError::Bind`] or
    /// [`AdminError::Socket`] when the address cannot be listened on.
    pub async fn serve(self) -> Result<AdminServer, AdminError> {
        if let Some(token) = &self.token
            && !auth::acceptable(token)
        {
            return Err(AdminError::BadToken);
        }
        let token = Token(self.token.as_deref().map(Arc::from));
        let app = routes::router(self.engine, token);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        match self.listen {
            Listen::Tcp(address) => {
                if !address.ip().is_loopback() && self.token.is_none() {
                    return Err(AdminError::TokenRequired { address });
                }
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|source| AdminError::Bind { address, source })?;
                let local = listener
                    .local_addr()
                    .map_err(|source| AdminError::Bind { address, source })?;
                let task = tokio::spawn(async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await;
                    if let Err(e) = served {
                        tracing::warn!("the admin endpoint stopped: {e}");
                    }
                });
                tracing::info!("admin endpoint listening on http://{local}");
                Ok(AdminServer {
                    address: AdminAddress::Tcp(local),
                    stop: Some(stop),
                    task: Some(task),
                })
            }
            Listen::Unix(path) => {
                let listener = bind_unix(&path).await?;
                let task = tokio::spawn(async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await;
                    if let Err(e) = served {
                        tracing::warn!("the admin endpoint stopped: {e}");
                    }
                });
                tracing::info!("admin endpoint listening on unix:{}", path.display());
                Ok(AdminServer {
                    address: AdminAddress::Unix(path),
                    stop: Some(stop),
                    task: Some(task),
                })
            }
        }
    }
}

#[cfg(unix)]
async fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, AdminError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let socket_error = |message: String| AdminError::Socket {
        path: path.to_path_buf(),
        message,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(socket_error(
                "a file that is not a socket is there; choose another path".to_string(),
            ));
        }
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(socket_error(
                "another endpoint is listening on it; stop it or choose another path".to_string(),
            ));
        }
        // Left by a process that was killed: nothing listens.
        std::fs::remove_file(path)
            .map_err(|e| socket_error(format!("the stale socket cannot be removed: {e}")))?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| {
        socket_error(format!(
            "{e}; check that the directory exists and is writable"
        ))
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| socket_error(format!("its mode cannot be set to 0600: {e}")))?;
    Ok(listener)
}

#[cfg(not(unix))]
async fn bind_unix(path: &Path) -> Result<tokio::net::TcpListener, AdminError> {
    Err(AdminError::Socket {
        path: path.to_path_buf(),
        message: "Unix sockets need a Unix system; bind to 127.0.0.1 instead".to_string(),
    })
}

/// A running admin endpoint. It serves until [`shutdown`](Self::shutdown)
/// or until dropped.
#[must_use = "the endpoint stops when this is dropped"]
pub struct AdminServer {
    address: AdminAddress,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Where it listens.
    pub fn address(&self) -> &AdminAddress {
        &self.address
    }

    /// Stops listening, lets requests in progress finish, and returns once
    /// it has stopped. A Unix socket's file is removed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.remove_socket();
    }

    fn remove_socket(&self) {
        if let AdminAddress::Unix(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            self.remove_socket();
        }
    }
}
