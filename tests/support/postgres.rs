//! A throwaway PostgreSQL cluster for the tests: one per test binary,
//! started on first use in a temporary folder (as the `postgres` user when
//! the tests run as root, since the server refuses root), reached by its
//! Unix socket in that folder only, and stopped when the binary exits.
//!
//! - `STEADFAST_PG_URL` set: that server is used instead (a crash child
//!   gets its parent's this way).
//! - `STEADFAST_PG_BIN` set: the folder of `initdb` and `pg_ctl` to use
//!   (none there counts as not installed).
//! - No PostgreSQL installed: the binary says so in one line and the
//!   PostgreSQL tests return at once, unless `STEADFAST_REQUIRE_POSTGRES`
//!   is set (CI), when they fail.
//!
//! Shared by the integration tests (`tests/support`) and the store's
//! conformance suite (included by path), so it uses std and libc only.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the tests' server is.
pub const URL_VAR: &str = "STEADFAST_PG_URL";
/// Set (to anything) to make a missing PostgreSQL fail the tests.
pub const REQUIRE_VAR: &str = "STEADFAST_REQUIRE_POSTGRES";

/// The server's connection string, or `None` when PostgreSQL is not
/// installed and not required (the tests that need it then return).
pub fn url() -> Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var(URL_VAR) {
            return Some(url);
        }
        match bin_dir() {
            Some(bin) => Some(start(&bin)),
            None if std::env::var_os(REQUIRE_VAR).is_some() => panic!(
                "{REQUIRE_VAR} is set but PostgreSQL is not installed (no initdb under \
                 /usr/lib/postgresql/*/bin nor on PATH); install the postgresql package"
            ),
            None => {
                // Past the test harness's capture: one line per binary.
                let _ = writeln!(
                    std::io::stderr(),
                    "PostgreSQL is not installed (no initdb found): the PostgreSQL tests of {} are left out",
                    std::env::current_exe()
                        .ok()
                        .and_then(|p| p.file_stem().map(|n| n.to_string_lossy().into_owned()))
                        .map(|name| match name.rsplit_once('-') {
                            Some((target, _hash)) => target.to_string(),
                            None => name,
                        })
                        .unwrap_or_default()
                );
                None
            }
        }
    })
    .clone()
}

/// Names the folder of `initdb` and `pg_ctl` instead of looking for one.
pub const BIN_VAR: &str = "STEADFAST_PG_BIN";

/// The folder of `initdb` and `pg_ctl`: [`BIN_VAR`]'s, Debian's newest,
/// or the PATH's.
fn bin_dir() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(BIN_VAR) {
        let bin = PathBuf::from(bin);
        return bin.join("initdb").exists().then_some(bin);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    })
}

/// The running cluster, stopped at exit.
static DIR: OnceLock<PathBuf> = OnceLock::new();
static BIN: OnceLock<PathBuf> = OnceLock::new();

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and no memory effects.
    unsafe { libc::geteuid() == 0 }
}

/// A command run as the server's user (`postgres` when we are root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Creates and starts the binary's cluster; returns its connection string.
fn start(bin: &Path) -> String {
    let cluster = Cluster::create(bin, &std::env::temp_dir(), false);
    let url = cluster.url();
    let _ = DIR.set(cluster.dir.clone());
    let _ = BIN.set(bin.to_path_buf());
    // The binary's cluster lives until exit: not dropped, stopped by `stop`.
    std::mem::forget(cluster);
    // SAFETY: registers a function without arguments that only runs
    // commands and removes a folder; atexit has no other preconditions.
    unsafe { libc::atexit(stop) };
    url
}

/// Stops the cluster and removes its folder (at exit).
extern "C" fn stop() {
    if let (Some(dir), Some(bin)) = (DIR.get(), BIN.get()) {
        pg_ctl(bin, dir, &["-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Runs `pg_ctl -D DIR/data ARGS` as the server's user, ignoring failure.
fn pg_ctl(bin: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut pg_ctl = as_server_user(&bin.join("pg_ctl"));
    pg_ctl.arg("-D").arg(dir.join("data")).args(args);
    pg_ctl
        .output()
        .unwrap_or_else(|e| panic!("could not run pg_ctl: {e}"))
}

/// Whether [`url`] started a cluster of this binary's own (which
/// [`stop_immediate`] and [`start_again`] control), rather than naming a
/// server from [`URL_VAR`].
pub fn has_own_cluster() -> bool {
    DIR.get().is_some()
}

/// Stops the binary's own cluster abruptly (`pg_ctl -m immediate`: the
/// server exits without a checkpoint and recovers from its WAL on the next
/// start, as after a crash). Returns false, doing nothing, when the binary
/// uses a server it did not start ([`URL_VAR`]) or has none.
pub fn stop_immediate() -> bool {
    match (DIR.get(), BIN.get()) {
        (Some(dir), Some(bin)) => {
            let output = pg_ctl(bin, dir, &["-m", "immediate", "-w", "stop"]);
            assert!(
                output.status.success(),
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            true
        }
        _ => false,
    }
}

/// Starts the binary's own cluster again after [`stop_immediate`], on the
/// same socket; returns once it accepts connections.
pub fn start_again() {
    let (Some(dir), Some(bin)) = (DIR.get(), BIN.get()) else {
        panic!("start_again: this binary has no cluster of its own");
    };
    run(pg_ctl_start(bin, dir, false), "pg_ctl start (again)");
}

/// The `pg_ctl start` command of the cluster in `dir`: the socket only (no
/// TCP port to collide on), in the cluster's folder. `durable` keeps
/// PostgreSQL's defaults (`fsync` and `synchronous_commit` on), as for
/// benchmarks; otherwise `fsync` is off, which an abrupt stop of the server
/// (not of the machine) does not make unsafe.
fn pg_ctl_start(bin: &Path, dir: &Path, durable: bool) -> Command {
    let mut pg_ctl = as_server_user(&bin.join("pg_ctl"));
    let fsync = if durable { "on" } else { "off" };
    pg_ctl
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("log"))
        .args([
            "-w",
            "-o",
            &format!(
                "-c listen_addresses='' -k {} -c fsync={fsync} -c max_connections=200",
                dir.display()
            ),
            "start",
        ]);
    pg_ctl
}

/// A throwaway cluster of its own, in a new folder under a given one,
/// stopped and removed when dropped (the benchmarks start one with
/// `fsync` on, in the project's target folder).
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
}

impl Cluster {
    /// Starts a cluster with the installed server binaries, or returns
    /// `None` when PostgreSQL is not installed.
    pub fn start_in(parent: &Path, durable: bool) -> Option<Cluster> {
        bin_dir().map(|bin| Cluster::create(&bin, parent, durable))
    }

    fn create(bin: &Path, parent: &Path, durable: bool) -> Cluster {
        let dir = parent.join(format!(
            "steadfast-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster's folder");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:postgres").arg(&dir);
                    c
                },
                "chown of the cluster's folder",
            );
        }
        let mut initdb = as_server_user(&bin.join("initdb"));
        initdb.arg("-D").arg(dir.join("data")).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(initdb, "initdb");
        run(pg_ctl_start(bin, &dir, durable), "pg_ctl start");
        Cluster {
            dir,
            bin: bin.to_path_buf(),
        }
    }

    /// The cluster's connection string (its Unix socket).
    pub fn url(&self) -> String {
        format!("host={} user=postgres dbname=postgres", self.dir.display())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        pg_ctl(&self.bin, &self.dir, &["-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A schema name of its own for each call (a fresh, empty store).
pub fn fresh_schema(label: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("t_{label}_{}_{n}", std::process::id())
}

/// The schema that stands for a database file's path, so that a test (or
/// its crash child) that opens the same path opens the same schema.
pub fn schema_for(path: &Path) -> String {
    // FNV-1a of the path: stable, and the same in a child process.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("f_{hash:016x}")
}

/// A workflow or schedule ID's shard among a new schema's 64 (FNV-1a of
/// its UTF-8 bytes, `FORMAT.md`).
pub fn shard_of(id: &str) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % 64) as i32
}

/// A session of the test's own in `schema`.
pub async fn sql(url: &str, schema: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search path");
    client
}
