//! What the endpoint tests share: an engine with a workflow that waits for
//! a signal, and a plain HTTP/1.1 client over TCP or a Unix socket that
//! sends exactly the bytes a test gives (so malformed requests can be sent).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ChildWorkflowOptions, Engine,
    LocalActivityOptions, QueryDef, RetryPolicy, SignalDef, UpdateDef, WorkflowContext,
    WorkflowDef, WorkflowError,
};

pub const GREETER: WorkflowDef<String, String> = WorkflowDef::new("Greeter");
pub const NAME: SignalDef<String> = SignalDef::new("name");
/// The greeting applied to its argument.
pub const GREET: QueryDef<String, String> = QueryDef::new("greet");
/// Counts a number of greetings sent; the validator refuses zero.
pub const COUNT: UpdateDef<u32, u32> = UpdateDef::new("count");
/// An update whose handler waits for signal `release` and returns it.
pub const HOLD: UpdateDef<(), u32> = UpdateDef::new("hold");
pub const RELEASE: SignalDef<u32> = SignalDef::new("release");

/// Waits for signal `name` and greets it; query `greet` greets its argument;
/// update `count` adds its input to a total and returns it; update `hold`
/// waits for signal `release`.
async fn greeter(ctx: WorkflowContext, greeting: String) -> Result<String, WorkflowError> {
    let prefix = greeting.clone();
    ctx.handle_query_with(GREET, move |who: String| format!("{prefix}, {who}?"));
    let total = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    ctx.handle_update(
        COUNT,
        |n: &u32| match n {
            0 => Err("count at least one greeting".to_string()),
            _ => Ok(()),
        },
        move |_ctx, n: u32| {
            let total = total.clone();
            async move { Ok(total.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + n) }
        },
    );
    ctx.handle_update(
        HOLD,
        |_: &()| Ok(()),
        |ctx, _: ()| async move { Ok(ctx.recv_signal(RELEASE).await?) },
    );
    let name = ctx.recv_signal(NAME).await?;
    Ok(format!("{greeting}, {name}!"))
}

/// Runs a `Greeter` child of the given ID and returns its greeting.
pub const PARENT: WorkflowDef<String, String> = WorkflowDef::new("Parent");

async fn parent(ctx: WorkflowContext, child_id: String) -> Result<String, WorkflowError> {
    let options = ChildWorkflowOptions::new();
    Ok(ctx
        .execute_child_workflow(GREETER, child_id, "Hi".into(), options)
        .await?)
}

/// Calls local activity `admin.flaky`, which always fails, with an hour's
/// backoff over a 100 ms `local_retry_threshold`: it waits out a recorded
/// backoff (`LocalActivityBackoff`).
pub const LOCAL_BACKOFF: WorkflowDef<(), String> = WorkflowDef::new("LocalBackoff");
const FLAKY: ActivityDef<(), String> = ActivityDef::new("admin.flaky");

async fn local_backoff(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    let policy = RetryPolicy::default().with_initial_interval(Duration::from_secs(3600));
    let options = LocalActivityOptions::start_to_close(Duration::from_secs(30))
        .with_retry_policy(policy)
        .with_local_retry_threshold(Duration::from_millis(100));
    Ok(ctx.execute_local_activity(FLAKY, (), options).await?)
}

async fn flaky(_ctx: ActivityContext, (): ()) -> Result<String, ActivityError> {
    Err(ActivityError::retryable("not yet").with_type("Flaky"))
}

pub async fn engine(dir: &Path) -> Engine {
    Engine::builder()
        .workflow(GREETER, greeter)
        .workflow(PARENT, parent)
        .workflow(LOCAL_BACKOFF, local_backoff)
        .activity(FLAKY, flaky)
        .open(dir.join("admin.steadfast"))
        .await
        .expect("engine opens")
}

/// An answer: status code, headers (lowercase names), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error answer: {:?}", self.json()))
            .to_string()
    }
}

/// A request with an optional JSON body and bearer token.
pub fn request(method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(token) = token {
        text.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    match body {
        Some(body) => {
            text.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        None => text.push_str("Content-Length: 0\r\n\r\n"),
    }
    text.into_bytes()
}

/// Sends raw bytes over TCP and reads the whole answer (blocking; call from
/// `spawn_blocking`, or through [`call`]).
pub fn send_tcp(address: SocketAddr, bytes: &[u8]) -> Answer {
    let mut stream = std::net::TcpStream::connect(address).expect("connects");
    exchange(&mut stream, bytes)
}

#[cfg(unix)]
pub fn send_unix(path: &Path, bytes: &[u8]) -> Answer {
    let mut stream = std::os::unix::net::UnixStream::connect(path).expect("connects");
    exchange(&mut stream, bytes)
}

fn exchange<S: Read + Write>(stream: &mut S, bytes: &[u8]) -> Answer {
    stream.write_all(bytes).expect("request sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("answer read");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}

/// One request over TCP, off the runtime's threads.
pub async fn call(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Answer {
    let bytes = request(method, path, body, token);
    tokio::task::spawn_blocking(move || send_tcp(address, &bytes))
        .await
        .expect("request task")
}

/// Waits until `check` holds (the engine commits asynchronously).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
