//! What the workloads share: the bench folder, JSON output, the runtime, the
//! no-op activity, child-process dispatch and the machine's facts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use steadfast::{ActivityContext, ActivityDef, ActivityError, ActivityOptions};

pub type BenchResult = Result<(), Box<dyn std::error::Error>>;

/// Selects the child role when this binary is re-run by a workload.
pub const CHILD_ENV: &str = "STEADFAST_BENCH_CHILD";

/// Opt-in for the large forms of `recovery` and `idle`.
pub fn large() -> bool {
    std::env::var("STEADFAST_BENCH_LARGE").is_ok_and(|v| v == "1")
}

/// `STEADFAST_BENCH_SHARED_READS=1` opens the `sequential` and `fanout`
/// files with `EngineBuilder::shared_reads(true)` (redb's single-writer
/// mode), to measure what it costs against the default whole-file lock.
pub fn shared_reads() -> bool {
    std::env::var("STEADFAST_BENCH_SHARED_READS").is_ok_and(|v| v == "1")
}

/// Runs the child role this process was started for, if any.
pub fn run_child() -> Option<BenchResult> {
    let role = std::env::var(CHILD_ENV).ok()?;
    Some(match role.as_str() {
        "recovery" => crate::recovery::child(),
        "idle" => crate::idle::child(),
        "open" => crate::open::child(),
        "pg_member" => crate::postgres::member(),
        "repair" => crate::repair::child(),
        other => Err(format!("unknown child role {other:?}").into()),
    })
}

/// Lines a child process printed, each with when it arrived.
pub type ChildLines = std::sync::mpsc::Receiver<(std::time::Instant, String)>;

/// Re-runs this binary as the child `role` with `vars` set, its stdout
/// read line by line on a thread of its own (so each line's arrival time
/// is when it was printed, not when the parent got to it).
pub fn spawn_child(
    role: &str,
    vars: &[(&str, &std::ffi::OsStr)],
) -> std::io::Result<(std::process::Child, ChildLines)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, role)
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send((std::time::Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    Ok((child, rx))
}

/// Reads a variable a parent set for its child.
pub fn child_var(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("the child needs {name}").into())
}

/// The activity every throughput workload calls: it does nothing.
pub const NOOP: ActivityDef<u32, ()> = ActivityDef::new("noop");

pub async fn noop(_ctx: ActivityContext, _step: u32) -> Result<(), ActivityError> {
    Ok(())
}

/// The options of every no-op call (PEERS.md's workloads use the same).
pub fn noop_options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(10))
}

/// The folder the bench files live in: under the target directory, so on the
/// project's disk and file system.
pub fn bench_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("steadfast-bench")
}

/// A fresh temporary folder in [`bench_root`], removed when dropped.
pub fn temp_dir() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let root = bench_root();
    std::fs::create_dir_all(&root)?;
    Ok(tempfile::Builder::new().prefix("run-").tempdir_in(root)?)
}

/// A multi-threaded runtime with one worker per core, as an application
/// would run.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Prints one result line: a JSON object with the keys in the given order
/// (the workload first), so lines read and diff well across commits.
pub fn emit(fields: &[(&str, serde_json::Value)]) {
    let fields: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", serde_json::Value::from(*key)))
        .collect();
    println!("{{{}}}", fields.join(","));
}

/// Rounds to `digits` decimals, for readable JSON.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// The `p`-th percentile (0..=100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Peak resident memory of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// Prints the machine's facts on stderr: cores, CPU, memory, kernel, and the
/// file system of the bench folder.
pub fn print_machine_facts() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = read_trimmed("/proc/sys/kernel/osrelease");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into());
    let root = bench_root();
    let _ = std::fs::create_dir_all(&root);
    eprintln!("# machine: {cores} cores ({cpu}), {memory}, kernel {kernel}");
    eprintln!("# bench dir: {} on {}", root.display(), mount_of(&root));
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The /proc/mounts entry (device, file system, options) holding `path`.
fn mount_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown".into();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 4 && path.starts_with(fields[1])).then(|| {
                let text = format!(
                    "{} ({}, {}, mounted at {})",
                    fields[0], fields[2], fields[3], fields[1]
                );
                (fields[1].len(), text)
            })
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, text)| text)
}
