//! A client of the admin endpoint: one HTTP/1.1 request per call, over TCP
//! or a Unix socket, through hyper.

use std::path::PathBuf;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use steadfast_admin::api::ErrorBody;

use crate::error::CliError;

/// Where the endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `host:port`.
    Tcp(String),
    /// A Unix socket's path.
    Unix(PathBuf),
}

impl Address {
    /// Reads `host:port`, `http://host:port[/]` or `unix:/path`.
    pub fn parse(text: &str) -> Result<Address, CliError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(CliError::Usage(
                    "--address unix: needs the socket's path, e.g. unix:/run/app.sock".into(),
                ));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if text.starts_with("https://") {
            return Err(CliError::Usage(
                "--address https:// is not supported; the endpoint speaks plain HTTP on \
                 loopback or a Unix socket (put a TLS proxy in front to reach it remotely)"
                    .into(),
            ));
        }
        let host = text.strip_prefix("http://").unwrap_or(text);
        let host = host.trim_end_matches('/');
        if host.is_empty() || host.contains('/') || !host.contains(':') {
            return Err(CliError::Usage(format!(
                "--address {text:?} is not host:port, http://host:port or unix:/path"
            )));
        }
        Ok(Address::Tcp(host.to_string()))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(host) => write!(f, "http://{host}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The endpoint of one application, with its token.
pub struct AdminClient {
    address: Address,
    token: Option<String>,
}

/// A path segment percent-encoded (a workflow ID may hold any character).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl AdminClient {
    pub fn new(address: Address, token: Option<String>) -> Self {
        AdminClient { address, token }
    }

    /// Sends one request and returns the JSON answer; an error answer
    /// becomes [`CliError::Api`] with the endpoint's message.
    pub async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let bytes = match body {
            Some(body) => Bytes::from(serde_json::to_vec(body).map_err(CliError::json)?),
            None => Bytes::new(),
        };
        let host = match &self.address {
            Address::Tcp(host) => host.clone(),
            Address::Unix(_) => "localhost".to_string(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| CliError::Usage(format!("the request cannot be made: {e}")))?;
        let (status, answer) = match &self.address {
            Address::Tcp(host) => {
                let stream = tokio::net::TcpStream::connect(host)
                    .await
                    .map_err(|e| self.unreachable(e))?;
                self.exchange(stream, request).await?
            }
            Address::Unix(path) => {
                #[cfg(unix)]
                {
                    let stream = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| self.unreachable(e))?;
                    self.exchange(stream, request).await?
                }
                #[cfg(not(unix))]
                {
                    let _ = path;
                    return Err(CliError::Usage("Unix sockets need a Unix system".into()));
                }
            }
        };
        if status.is_success() {
            return serde_json::from_slice(&answer).map_err(CliError::json);
        }
        match serde_json::from_slice::<ErrorBody>(&answer) {
            Ok(body) => Err(CliError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            }),
            Err(_) => Err(CliError::Protocol(format!(
                "{} answered {status} without a steadfast error body; is it a steadfast admin \
                 endpoint?",
                self.address
            ))),
        }
    }

    fn unreachable(&self, e: std::io::Error) -> CliError {
        CliError::Unreachable {
            address: self.address.to_string(),
            message: e.to_string(),
        }
    }

    async fn exchange<S>(
        &self,
        stream: S,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), CliError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let protocol = |e: hyper::Error| {
            CliError::Protocol(format!(
                "talking to {} failed: {e}; is it a steadfast admin endpoint?",
                self.address
            ))
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(protocol)?;
        let driver = tokio::spawn(connection);
        let response = sender.send_request(request).await.map_err(protocol)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(protocol)?
            .to_bytes();
        driver.abort();
        Ok((status, body))
    }
}
