//! `repair`: what redb's quick repair would buy and cost, on redb alone
//! (the options for the `open` workload's after-SIGKILL figure).
//!
//! After a kill, redb repairs the file when it opens it: it verifies the
//! checksums of the last commit's trees and rebuilds its allocator state by
//! walking every page, so the time grows with the file. With quick repair
//! (`WriteTransaction::set_quick_repair(true)`), each commit also saves the
//! allocator state and commits in two phases, and an open after a kill
//! loads that state instead of walking the file.
//!
//! Two measurements, each printed as one line:
//! - `{"workload":"repair","measure":"commit",…}`: durable commits of one
//!   ~200-byte record, and of 100 such records, without and with quick
//!   repair, alternating [`ROUNDS`] rounds of [`ROUND_FOR`] each in one file;
//!   medians, and each with quick repair as a ratio to without.
//! - `{"workload":"repair","measure":"open_after_kill",…}`: a child process
//!   fills a file with [`records`] records of 500 bytes (about the bytes a
//!   closed engine run takes), makes a few more durable commits with quick
//!   repair off or on, and is killed (SIGKILL); this process then times
//!   opening the file (the repair). Three rounds each; medians, with the
//!   file's size and the time of a clean open for reference.

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};
use serde_json::json;

use crate::common::{self, BenchResult};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");

const ROUNDS: usize = 5;
const ROUND_FOR: Duration = Duration::from_millis(1000);
const OPEN_ROUNDS: usize = 3;

/// Records in the file the open is timed on (1,000,000 with
/// `STEADFAST_BENCH_LARGE=1`).
fn records() -> u64 {
    if common::large() { 1_000_000 } else { 100_000 }
}

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    commit_costs(dir.path())?;
    open_after_kill(dir.path())
}

/// Commits per second of `per_commit` records each, for `ROUND_FOR`.
fn commit_rate(
    db: &Database,
    quick: bool,
    per_commit: u64,
    next: &mut u64,
) -> Result<f64, redb::Error> {
    let record = [0x5au8; 200];
    let start = Instant::now();
    let mut commits = 0u64;
    while start.elapsed() < ROUND_FOR {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_quick_repair(quick);
        {
            let mut table = txn.open_table(RECORDS)?;
            for _ in 0..per_commit {
                table.insert(*next, record.as_slice())?;
                *next += 1;
            }
        }
        txn.commit()?;
        commits += 1;
    }
    Ok(commits as f64 / start.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    common::percentile(&values, 50.0)
}

fn commit_costs(dir: &Path) -> BenchResult {
    let path = dir.join("commit.redb");
    let db = Database::create(&path)?;
    let mut next = 0u64;
    // The first commits create the table and grow the file.
    commit_rate(&db, false, 100, &mut next)?;
    for per_commit in [1u64, 100] {
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            without.push(commit_rate(&db, false, per_commit, &mut next)?);
            with.push(commit_rate(&db, true, per_commit, &mut next)?);
        }
        eprintln!(
            "# repair: {per_commit} record(s) per commit, commits/s without {without:.0?}, with quick repair {with:.0?}"
        );
        let (without, with) = (median(without), median(with));
        common::emit(&[
            ("workload", json!("repair")),
            ("measure", json!("commit")),
            ("records_per_commit", json!(per_commit)),
            ("commits_per_s", json!(without.round() as u64)),
            ("quick_repair_commits_per_s", json!(with.round() as u64)),
            (
                "quick_repair_time_per_commit_ratio",
                json!(common::round(without / with, 2)),
            ),
        ]);
    }
    drop(db);
    std::fs::remove_file(&path)?;
    Ok(())
}

fn open_after_kill(dir: &Path) -> BenchResult {
    let path = dir.join("open.redb");
    let count = records().to_string();
    let clean_ms = {
        // A clean open first: the child builds the file and exits.
        run_child(&path, &count, "build")?;
        let begin = Instant::now();
        drop(Database::create(&path)?);
        begin.elapsed().as_secs_f64() * 1000.0
    };
    let bytes = std::fs::metadata(&path)?.len();
    for quick in ["0", "1"] {
        let mut opens = Vec::new();
        for _ in 0..OPEN_ROUNDS {
            run_child(&path, &count, quick)?;
            let begin = Instant::now();
            drop(Database::create(&path)?);
            opens.push(begin.elapsed().as_secs_f64() * 1000.0);
        }
        eprintln!("# repair: open after kill, quick repair {quick}: {opens:.1?} ms");
        common::emit(&[
            ("workload", json!("repair")),
            ("measure", json!("open_after_kill")),
            ("records", json!(records())),
            ("file_bytes", json!(bytes)),
            ("quick_repair", json!(quick == "1")),
            ("open_ms", json!(common::round(median(opens), 1))),
            ("clean_open_ms", json!(common::round(clean_ms, 1))),
        ]);
    }
    Ok(())
}

/// Runs the child in `mode` (`build`: fill the file and exit cleanly; `0` or
/// `1`: a few commits with quick repair off or on, then killed).
fn run_child(path: &Path, count: &str, mode: &str) -> BenchResult {
    let (mut child, lines) = common::spawn_child(
        "repair",
        &[
            ("STEADFAST_BENCH_FILE", path.as_os_str()),
            ("STEADFAST_BENCH_RECORDS", count.as_ref()),
            ("STEADFAST_BENCH_MODE", mode.as_ref()),
        ],
    )?;
    let ready = lines
        .recv_timeout(Duration::from_secs(600))
        .is_ok_and(|(_, line)| line == "ready");
    if mode != "build" {
        child.kill()?;
    }
    let status = child.wait()?;
    if !ready || (mode == "build" && !status.success()) {
        return Err(format!("the repair child failed ({status})").into());
    }
    Ok(())
}

/// The child: see [`run_child`].
pub fn child() -> BenchResult {
    let path = common::child_var("STEADFAST_BENCH_FILE")?;
    let count: u64 = common::child_var("STEADFAST_BENCH_RECORDS")?.parse()?;
    let mode = common::child_var("STEADFAST_BENCH_MODE")?;
    let db = Database::create(&path)?;
    let record = [0x5au8; 500];
    if mode == "build" {
        let mut next = 0;
        while next < count {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(RECORDS)?;
                for key in next..(next + 10_000).min(count) {
                    table.insert(key, record.as_slice())?;
                }
            }
            txn.commit()?;
            next += 10_000;
        }
    } else {
        let first = db.begin_read()?.open_table(RECORDS)?.len()?;
        for key in first..first + 20 {
            let mut txn = db.begin_write()?;
            txn.set_quick_repair(mode == "1");
            txn.open_table(RECORDS)?.insert(key, record.as_slice())?;
            txn.commit()?;
        }
    }
    println!("ready");
    if mode != "build" {
        // Waits to be killed.
        std::thread::sleep(Duration::from_secs(600));
    }
    Ok(())
}
