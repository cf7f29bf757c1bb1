//! Helpers shared by the integration tests: temporary files, waiting for a
//! condition, tracing output, and the store the tests run on.
#![allow(dead_code)]

pub mod postgres;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Set to `postgres` to run a test file's engines on PostgreSQL instead of
/// redb files: each path a test opens stands for a schema of its own in the
/// binary's throwaway cluster (see [`postgres`]), so the same test body
/// checks both stores (`.ci/run` runs the engine's files both ways).
pub const STORE_VAR: &str = "STEADFAST_TEST_STORE";

/// Whether this run's engines are on PostgreSQL (see [`STORE_VAR`]).
pub fn on_postgres() -> bool {
    match std::env::var(STORE_VAR).as_deref() {
        Ok("postgres") => true,
        Ok("redb") | Err(_) => false,
        Ok(other) => panic!("{STORE_VAR}={other:?}: use postgres or redb"),
    }
}

/// Opens an engine on the store this run uses (see [`STORE_VAR`]).
pub trait OpenDb {
    /// Opens the file at `path`, or on PostgreSQL the schema that stands for it.
    fn open_db(
        self,
        path: impl AsRef<Path>,
    ) -> impl Future<Output = Result<steadfast::Engine, steadfast::OpenError>>;
}

impl OpenDb for steadfast::EngineBuilder {
    async fn open_db(
        self,
        path: impl AsRef<Path>,
    ) -> Result<steadfast::Engine, steadfast::OpenError> {
        if !on_postgres() {
            return self.open(path).await;
        }
        let url = postgres::url().unwrap_or_else(|| {
            panic!("{STORE_VAR}=postgres, but PostgreSQL is not installed here")
        });
        self.postgres_schema(postgres::schema_for(path.as_ref()))
            .postgres(&url)
            .await
    }
}

/// A temporary folder and a database path inside it; the folder is removed
/// when the value drops.
pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn temp_db() -> TempDb {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let path = dir.path().join("test.steadfast");
    TempDb { dir, path }
}

/// Polls `check` until it returns `Some`, or panics after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("condition not met within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends tracing output to the test's captured output (once per process).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::DEBUG)
        .try_init();
}

// ----- Crash children: the test binary re-run as a child process -----

/// Marks the lines a crash child reports to its parent; the test harness may
/// print other text before it on the same line.
pub const CHILD_MARK: &str = "crash-child: ";

/// Prints one report line from a crash child to its parent (stdout is
/// line-buffered, so the parent sees it at once).
pub fn child_report(message: &str) {
    println!("{CHILD_MARK}{message}");
}

/// A child process running one test of the current test binary (a crash
/// child). Its reports ([`child_report`]) are collected as they arrive.
/// Dropping it kills the child, so a failing parent never leaves one behind.
pub struct CrashChild {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Re-runs the current test binary as a child that runs only `test_name`
/// (`--exact test_name --nocapture --test-threads=1`) with `env` set. Child
/// tests read their inputs from such variables and return at once without
/// them, so they pass as no-ops in the normal test run.
pub fn spawn_crash_child(test_name: &str, env: &[(&str, &std::ffi::OsStr)]) -> CrashChild {
    spawn_crash_child_under(&[], test_name, env)
}

/// As [`spawn_crash_child`], run by the command `wrapper` (its program and
/// arguments, the test binary's path and arguments appended), for example
/// `unshare --pid --fork` to run the child in a process namespace of its
/// own. [`CrashChild::id`] is then the wrapper's process ID.
pub fn spawn_crash_child_under(
    wrapper: &[&str],
    test_name: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> CrashChild {
    use std::io::BufRead;
    let exe = std::env::current_exe().expect("locate the test binary");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = std::process::Command::new(program);
            command.args(args).arg(exe);
            command
        }
        None => std::process::Command::new(exe),
    };
    command
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    // A child on PostgreSQL uses its parent's cluster.
    if on_postgres()
        && let Some(url) = postgres::url()
    {
        command.env(postgres::URL_VAR, url);
    }
    let mut child = command.spawn().expect("start the crash child");
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find(CHILD_MARK) {
                let report = line[at + CHILD_MARK.len()..].to_string();
                sink.lock().expect("lines lock").push(report);
            }
        }
    });
    CrashChild {
        child,
        lines,
        reader: Some(reader),
    }
}

impl CrashChild {
    /// The child's process ID.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The reports printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Waits until the child reported a line matching `pred`, and returns it.
    /// Panics after `limit`, or if the child exits first.
    pub async fn wait_for_line(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| pred(l)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader drain what the child printed last.
                self.join_reader();
                if let Some(line) = self.lines().into_iter().find(|l| pred(l)) {
                    return line;
                }
                panic!(
                    "the child exited ({status}) before printing the expected line; it printed {:?}",
                    self.lines()
                );
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "the child did not print the expected line within {limit:?}; it printed {:?}",
                    self.lines()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// True once the child has exited (it is reaped then).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the child with SIGKILL (no chance to clean up), reaps it, and
    /// returns every line it reported.
    pub fn kill(mut self) -> Vec<String> {
        let pid = self.child.id() as libc::pid_t;
        if !self.has_exited() {
            // SAFETY: kill(2) has no memory effects; the child is not reaped
            // yet, so its PID cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
        self.join_reader();
        self.lines()
    }

    /// Waits up to `limit` for the child to exit on its own, then returns its
    /// success and every line it reported. Panics (killing it) on timeout.
    pub async fn wait(mut self, limit: Duration) -> (bool, Vec<String>) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.join_reader();
                return (status.success(), self.lines());
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "the child did not exit within {limit:?}; it printed {:?}",
                    self.lines()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for CrashChild {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Appends one line to a log file and fsyncs it, so the line is on disk
/// before the caller goes on, even if the process is killed right after.
pub fn append_synced(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_all()
}

/// The lines of a log file; none when it does not exist yet.
pub fn read_log(path: &std::path::Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// Checks the shape of a closed run's history: event IDs 1..n in order,
/// `WorkflowStarted` first, one closing event last; every activity scheduled
/// once, its attempts numbered 1, 2, … with failures that planned a retry
/// before one final outcome; every timer started once and fired at most once,
/// never before its due time.
pub fn assert_history_well_formed(history: &[steadfast::Event]) {
    use std::collections::HashMap;
    use steadfast::EventKind;
    assert!(!history.is_empty(), "the history is empty");
    for (i, event) in history.iter().enumerate() {
        assert_eq!(
            event.event_id,
            i as u64 + 1,
            "event ids must run 1..n without gaps: {history:#?}"
        );
    }
    assert!(
        matches!(history[0].kind, EventKind::WorkflowStarted { .. }),
        "the history must start with WorkflowStarted: {history:#?}"
    );
    let closing = |kind: &EventKind| {
        matches!(
            kind,
            EventKind::WorkflowCompleted { .. }
                | EventKind::WorkflowFailed { .. }
                | EventKind::WorkflowCancelled { .. }
                | EventKind::WorkflowTerminated { .. }
                | EventKind::WorkflowTimedOut { .. }
                | EventKind::WorkflowContinuedAsNew { .. }
        )
    };
    let last = history.len() - 1;
    assert!(
        closing(&history[last].kind),
        "the history must end with the run's closing event: {history:#?}"
    );
    // Per activity seq: the next expected attempt, or None once resolved.
    let mut activities: HashMap<u32, Option<u32>> = HashMap::new();
    // Per timer seq: due time, and whether it fired.
    let mut timers: HashMap<u32, (std::time::SystemTime, bool)> = HashMap::new();
    // Per update ID: whether its handler's outcome is recorded.
    let mut updates: HashMap<String, bool> = HashMap::new();
    for event in &history[1..] {
        let at = event.event_id;
        match &event.kind {
            EventKind::WorkflowStarted { .. } => panic!("a second WorkflowStarted at {at}"),
            kind if closing(kind) => assert_eq!(at, last as u64 + 1, "a closing event at {at}"),
            EventKind::ActivityScheduled { seq, .. } => {
                let previous = activities.insert(*seq, Some(1));
                assert!(
                    previous.is_none(),
                    "activity seq {seq} scheduled twice (event {at})"
                );
            }
            EventKind::ActivityCompleted { seq, attempt, .. } => {
                let next = activities.get_mut(seq);
                let expected = next.as_ref().and_then(|n| **n);
                assert_eq!(
                    expected,
                    Some(*attempt),
                    "event {at}: activity seq {seq} completed attempt {attempt} out of order"
                );
                if let Some(next) = next {
                    *next = None;
                }
            }
            EventKind::ActivityFailed {
                seq,
                attempt,
                next_attempt_at,
                ..
            } => {
                let next = activities.get_mut(seq);
                let expected = next.as_ref().and_then(|n| **n);
                assert_eq!(
                    expected,
                    Some(*attempt),
                    "event {at}: activity seq {seq} failed attempt {attempt} out of order"
                );
                if let Some(next) = next {
                    *next = next_attempt_at.map(|_| attempt + 1);
                }
            }
            EventKind::ActivityAttemptStarted { seq, attempt } => {
                let expected = activities.get(seq).copied().flatten();
                assert_eq!(
                    expected,
                    Some(*attempt),
                    "event {at}: activity seq {seq} started attempt {attempt} out of order"
                );
            }
            EventKind::TimerStarted { seq, fire_at } => {
                let previous = timers.insert(*seq, (*fire_at, false));
                assert!(
                    previous.is_none(),
                    "timer seq {seq} started twice (event {at})"
                );
            }
            EventKind::TimerFired { seq } => {
                let Some((fire_at, fired)) = timers.get_mut(seq) else {
                    panic!("event {at}: timer seq {seq} fired but was never started");
                };
                assert!(!*fired, "event {at}: timer seq {seq} fired twice");
                assert!(
                    event.timestamp >= *fire_at,
                    "event {at}: timer seq {seq} fired before its due time"
                );
                *fired = true;
            }
            EventKind::WorkflowUpdateAccepted { update_id, .. } => {
                let previous = updates.insert(update_id.clone(), false);
                assert!(
                    previous.is_none(),
                    "event {at}: update {update_id:?} accepted twice"
                );
            }
            EventKind::WorkflowUpdateCompleted { update_id, .. } => {
                let Some(done) = updates.get_mut(update_id) else {
                    panic!("event {at}: update {update_id:?} completed but never accepted");
                };
                assert!(!*done, "event {at}: update {update_id:?} completed twice");
                *done = true;
            }
            _ => {}
        }
    }
}

// ----- Seeded randomness for kill schedules -----

/// A small deterministic generator (splitmix64), so a random schedule can be
/// replayed from its printed seed.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
}

/// The seed in environment variable `var`, or a fresh one from the clock.
/// Panics when the variable is set but is not a number.
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{var} must be a u64, got {s:?}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// What a workflow saw from one activity call, returned as the workflow's
/// result so that a test can look at it.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Seen {
    Value(String),
    Failed {
        attempt: u32,
        failure: steadfast::Failure,
    },
    NotScheduled(String),
    Other(String),
}

impl From<Result<String, steadfast::ActivityFailure>> for Seen {
    fn from(result: Result<String, steadfast::ActivityFailure>) -> Self {
        use steadfast::ActivityFailure;
        match result {
            Ok(value) => Seen::Value(value),
            Err(ActivityFailure::Failed {
                attempt, failure, ..
            }) => Seen::Failed { attempt, failure },
            Err(ActivityFailure::NotScheduled { message, .. }) => Seen::NotScheduled(message),
            Err(other) => Seen::Other(other.to_string()),
        }
    }
}

/// A failure as a test expects to see it.
/// (No details, retry state unspecified: set them with `with_retry_state`.)
pub fn failure(error_type: &str, message: &str, non_retryable: bool) -> steadfast::Failure {
    steadfast::Failure::new(error_type, message).with_non_retryable(non_retryable)
}

/// An `ActivityFailed` event, flattened.
#[derive(Debug)]
pub struct FailedEvent {
    pub timestamp: std::time::SystemTime,
    pub attempt: u32,
    pub failure: steadfast::Failure,
    pub next_attempt_at: Option<std::time::SystemTime>,
}

/// The `ActivityFailed` events of a history, in order.
pub fn failed_events(history: &[steadfast::Event]) -> Vec<FailedEvent> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            steadfast::EventKind::ActivityFailed {
                attempt,
                failure,
                next_attempt_at,
                ..
            } => Some(FailedEvent {
                timestamp: e.timestamp,
                attempt: *attempt,
                failure: failure.clone(),
                next_attempt_at: *next_attempt_at,
            }),
            _ => None,
        })
        .collect()
}

/// `a - b`, or zero when `a` is earlier.
pub fn since(a: std::time::SystemTime, b: std::time::SystemTime) -> Duration {
    a.duration_since(b).unwrap_or_default()
}

/// The history table as `src/store/redb/tables.rs` lays it out:
/// `(run ID u128, event ID u64) -> &[u8]`, one encoded event per entry.
pub const HISTORY: redb::TableDefinition<(u128, u64), &[u8]> =
    redb::TableDefinition::new("history");

/// Encodes an event as `src/codec.rs` lays records out: the format-version
/// byte 2 (events since store format 6), then bincode 2's standard configuration.
pub fn encode_event(event: &steadfast::Event) -> Vec<u8> {
    let mut bytes = vec![2u8];
    bytes.extend(bincode::serde::encode_to_vec(event, bincode::config::standard()).unwrap());
    bytes
}

/// Decodes a stored event record of any version this build reads (today's
/// [`encode_event`] writes, and the version 1 of store formats 1 to 5), as
/// the engine reads it.
pub fn decode_event(bytes: &[u8]) -> steadfast::Event {
    steadfast::testing::decode_event_record(bytes).expect("a readable event record")
}

/// Stores `bytes` as event `event_id` of `run` with redb directly, as a
/// disk error or a bug would leave it (the engine must not have the file
/// open).
pub fn write_history_record(path: &std::path::Path, run: u128, event_id: u64, bytes: &[u8]) {
    let db = redb::Database::create(path).expect("open with redb");
    let txn = db.begin_write().unwrap();
    {
        let mut history = txn.open_table(HISTORY).unwrap();
        history.insert((run, event_id), bytes).unwrap();
    }
    txn.commit().unwrap();
}

/// The warnings logged on this thread while it lives, as text. With the
/// single-threaded test runtime the engine's run actors run on the test's
/// thread, so their warnings are captured.
pub struct CapturedWarnings {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl CapturedWarnings {
    pub fn start() -> Self {
        let buffer = std::sync::Arc::<std::sync::Mutex<Vec<u8>>>::default();
        let writer = SharedBuffer(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        CapturedWarnings {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone)]
struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A copy of a checked-in file (`relative` to the crate root, such as
/// `tests/fixtures/format-2.steadfast`) in a new temporary folder: tests
/// open the copy, never the fixture itself.
pub fn copy_fixture(relative: &str) -> TempDb {
    let db = temp_db();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::copy(&source, &db.path).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    db
}

/// Where an ignored fixture writer writes `relative`: `None` (write
/// nothing) unless `STEADFAST_WRITE_FIXTURES=1`. Panics if the fixture
/// exists: fixtures are never regenerated.
pub fn fixture_to_write(relative: &str) -> Option<PathBuf> {
    if std::env::var("STEADFAST_WRITE_FIXTURES").as_deref() != Ok("1") {
        eprintln!("set STEADFAST_WRITE_FIXTURES=1 to write {relative}");
        return None;
    }
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    assert!(
        !target.exists(),
        "{} exists; fixtures are never regenerated",
        target.display()
    );
    Some(target)
}

/// The store format today's build writes: what every older file reads
/// after an open (one place to change at the next format).
pub const CURRENT_STORE_FORMAT: u32 = 18;

/// The journal beside the file at `path` (store format 18).
pub fn journal_of(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

/// The store format a file records, read with redb directly.
pub fn stored_format_version(path: &std::path::Path) -> u32 {
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("steadfast_meta");
    let db = redb::Database::open(path).expect("open with redb");
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta = txn.open_table(META).unwrap();
    let value = meta
        .get("format_version")
        .unwrap()
        .expect("a format version");
    u32::from_le_bytes(value.value().try_into().unwrap())
}

/// Counts by status as `list` finds them, every page, for each status
/// `count_workflows` names (to check the counts against the list).
pub async fn listed_counts(engine: &steadfast::Engine) -> Vec<(steadfast::WorkflowStatus, u64)> {
    let mut out = Vec::new();
    for (status, _) in engine.count_workflows().await.unwrap().by_status() {
        let mut filter = steadfast::ListFilter::new()
            .with_status(status)
            .with_page_size(100);
        let mut n = 0;
        loop {
            let page = engine.list(&filter).await.unwrap();
            n += page.executions.len() as u64;
            match page.next_page_token {
                Some(token) => filter = filter.with_next_page_token(token),
                None => break,
            }
        }
        out.push((status, n));
    }
    out
}

/// Waits until the shards of a PostgreSQL schema (a session in it) have
/// split between two members, every one held.
pub async fn split(c: &tokio_postgres::Client) {
    eventually(Duration::from_secs(30), || async {
        let row = c
            .query_one(
                "SELECT count(DISTINCT owner) FILTER (WHERE lease_until > now()), \
                 count(*) FILTER (WHERE owner IS NULL OR lease_until <= now()) FROM shards",
                &[],
            )
            .await
            .expect("owners");
        (row.get::<_, i64>(0) == 2 && row.get::<_, i64>(1) == 0).then_some(())
    })
    .await;
}
