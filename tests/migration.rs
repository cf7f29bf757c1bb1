//! Promise: a file of store format 1 keeps opening. The first open migrates
//! it in place to format 2's tables (it builds the visibility indexes of
//! every run and sets the version, today 4, in one write transaction), after which `list`
//! finds and filters its runs; a process killed at any moment of that open
//! leaves a file that opens and lists every run exactly once.
//!
//! `tests/fixtures/format-1.steadfast` was written by the build of format 1
//! and is never regenerated (see the fixtures' README).

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use steadfast::{ClientError, Engine, ListFilter, WorkflowStatus};
use support::{child_report, spawn_crash_child, temp_db};

const FIXTURE: &str = "tests/fixtures/format-1.steadfast";

/// The tables as `src/store/redb/tables.rs` lays them out.
const RUNS: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("runs");

/// The fixture's runs: ten workflow IDs, one run each.
const CLOSED: [(&str, WorkflowStatus); 5] = [
    ("format1-closed-completed", WorkflowStatus::Completed),
    ("format1-closed-failed", WorkflowStatus::Failed),
    ("format1-closed-cancelled", WorkflowStatus::Cancelled),
    ("format1-closed-terminated", WorkflowStatus::Terminated),
    ("format1-closed-timed-out", WorkflowStatus::TimedOut),
];
const RUNNING: [&str; 5] = [
    "format1-running-parked-on-nondeterminism",
    "format1-running-pending-activity",
    "format1-running-far-timer",
    "format1-running-pending-timer",
    "format1-running-buffered-signals",
];

/// A copy of the fixture in a temporary folder: opening a file writes to it.
/// Opens with no workflow registered: runs are listed, none makes progress.
async fn open(path: &Path) -> Engine {
    Engine::builder().open(path).await.expect("open the engine")
}

/// Every run `filter` matches, page by page, as (workflow ID, status).
async fn list_all(engine: &Engine, filter: ListFilter) -> Vec<(String, WorkflowStatus)> {
    let mut out = Vec::new();
    let mut filter = filter;
    loop {
        let page = engine.list(&filter).await.expect("list");
        out.extend(
            page.executions
                .iter()
                .map(|e| (e.workflow_id.clone(), e.status)),
        );
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => return out,
        }
    }
}

fn ids(runs: &[(String, WorkflowStatus)]) -> Vec<&str> {
    runs.iter().map(|(id, _)| id.as_str()).collect()
}

#[tokio::test]
async fn the_format_1_fixture_migrates_and_lists_its_runs() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 1);
    let engine = open(&db.path).await;

    let all = list_all(&engine, ListFilter::new()).await;
    assert_eq!(all.len(), 10, "{all:?}");
    // Open runs first, then closed ones.
    assert!(all[..5].iter().all(|(_, s)| *s == WorkflowStatus::Running));
    assert!(all[5..].iter().all(|(_, s)| s.is_closed()));
    let mut running = ids(&all[..5]);
    running.sort();
    let mut expected = RUNNING.to_vec();
    expected.sort();
    assert_eq!(running, expected);

    for (id, status) in CLOSED {
        let page = list_all(&engine, ListFilter::new().with_status(status)).await;
        assert_eq!(ids(&page), [id], "{status:?}");
    }
    let page = list_all(
        &engine,
        ListFilter::new().with_status(WorkflowStatus::Running),
    )
    .await;
    assert_eq!(page.len(), 5);
    let page = list_all(
        &engine,
        ListFilter::new().with_workflow_type("Format1.WaitForever"),
    )
    .await;
    let mut got = ids(&page);
    got.sort();
    assert_eq!(
        got,
        ["format1-closed-cancelled", "format1-closed-terminated"]
    );
    let page = list_all(
        &engine,
        ListFilter::new().with_workflow_id_prefix("format1-closed-"),
    )
    .await;
    assert_eq!(page.len(), 5);
    let page = list_all(
        &engine,
        ListFilter::new().with_close_time_range(SystemTime::UNIX_EPOCH, SystemTime::now()),
    )
    .await;
    assert_eq!(page.len(), 5);
    // Version-1 records have no attributes and no memo.
    let d = engine.describe("format1-closed-completed").await.unwrap();
    assert!(d.search_attributes.is_empty());
    assert_eq!(d.memo, None);
    let first = engine.list(&ListFilter::new()).await.unwrap();
    assert!(
        first
            .executions
            .iter()
            .all(|e| e.search_attributes.is_empty())
    );

    // A migrated file is a format-2 file: delete works on it.
    engine.delete("format1-closed-failed").await.unwrap();
    assert!(matches!(
        engine.describe("format1-closed-failed").await,
        Err(ClientError::NotFound { .. })
    ));
    assert!(matches!(
        engine.delete("format1-running-far-timer").await,
        Err(ClientError::StillRunning { .. })
    ));
    engine.shutdown().await.unwrap();
    // Later formats changed no table: the migration lands on the current
    // one directly.
    assert_eq!(
        support::stored_format_version(&db.path),
        support::CURRENT_STORE_FORMAT
    );

    let engine = open(&db.path).await;
    assert_eq!(list_all(&engine, ListFilter::new()).await.len(), 9);
    engine.shutdown().await.unwrap();
}

/// Replicates the fixture's run records (raw version-1 bytes, unchanged)
/// under `copies` new run IDs each, with redb directly: a big format-1 file.
/// Returns the number of runs in the file.
fn grow_format_1_file(path: &Path, copies: u128) -> u64 {
    let db = redb::Database::create(path).expect("open with redb");
    let originals: Vec<(u128, Vec<u8>)> = {
        let txn = db.begin_read().unwrap();
        let runs = txn.open_table(RUNS).unwrap();
        runs.iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect()
    };
    let txn = db.begin_write().unwrap();
    {
        let mut runs = txn.open_table(RUNS).unwrap();
        for copy in 1..=copies {
            for (run, bytes) in &originals {
                // New IDs above the originals' (time-ordered) range.
                let id = run.wrapping_add(copy << 100);
                runs.insert(id, bytes.as_slice()).unwrap();
            }
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_read().unwrap();
    txn.open_table(RUNS).unwrap().len().unwrap()
}

const MIGRATE_ENV: &str = "STEADFAST_MIGRATION_CHILD_FILE";

/// The crash child: opens the file (migrating it) and reports when done.
/// Without its variable it returns at once.
#[tokio::test]
async fn child_open_and_migrate() {
    let Some(path) = std::env::var_os(MIGRATE_ENV) else {
        return;
    };
    child_report("opening");
    let engine = Engine::builder().open(&path).await.expect("open");
    child_report("opened");
    engine.shutdown().await.unwrap();
}

/// Checks a file after a kill: it opens, and lists every run once.
async fn assert_lists_every_run_once(path: &Path, runs: u64) {
    let engine = open(path).await;
    let mut seen: HashMap<steadfast::RunId, u32> = HashMap::new();
    let mut filter = ListFilter::new().with_page_size(1000);
    loop {
        let page = engine.list(&filter).await.unwrap();
        for e in &page.executions {
            *seen.entry(e.run_id).or_default() += 1;
        }
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, runs, "every run is listed");
    assert!(seen.values().all(|&n| n == 1), "no run is listed twice");
    // The type index has them all too.
    let waits = list_all(
        &engine,
        ListFilter::new()
            .with_workflow_type("Format1.WaitForever")
            .with_page_size(1000),
    )
    .await;
    assert_eq!(
        waits.len() as u64,
        runs / 5,
        "two of the ten runs, in every copy"
    );
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(path),
        support::CURRENT_STORE_FORMAT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_migration_leaves_the_old_file_or_the_new_one() {
    let template = support::copy_fixture(FIXTURE);
    let copies: u128 = std::env::var("STEADFAST_MIGRATION_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let runs = grow_format_1_file(&template.path, copies);
    assert_eq!(runs as u128, 10 * (copies + 1));
    let rounds: u32 = std::env::var("STEADFAST_MIGRATION_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed = support::seed_from_env("STEADFAST_MIGRATION_SEED");
    eprintln!("STEADFAST_MIGRATION_SEED={seed}");
    let mut random = support::SplitMix(seed);
    // The first round is not killed: it measures how long an open takes.
    let mut open_time = Duration::ZERO;
    let mut killed_before = 0;
    for round in 0..rounds {
        let db = temp_db();
        std::fs::copy(&template.path, &db.path).unwrap();
        let mut child = spawn_crash_child(
            "child_open_and_migrate",
            &[(MIGRATE_ENV, db.path.as_os_str())],
        );
        child
            .wait_for_line(Duration::from_secs(60), |l| l == "opening")
            .await;
        let started = Instant::now();
        if round == 0 {
            child
                .wait_for_line(Duration::from_secs(300), |l| l == "opened")
                .await;
            open_time = started.elapsed();
            let (ok, _) = child.wait(Duration::from_secs(60)).await;
            assert!(ok, "the child failed");
        } else {
            let micros = open_time.as_micros() as u64;
            let at = Duration::from_micros(random.between(0, micros));
            tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
            let lines = child.kill();
            if !lines.iter().any(|l| l == "opened") {
                killed_before += 1;
            }
        }
        assert_lists_every_run_once(&db.path, runs).await;
    }
    eprintln!(
        "an open took {open_time:?}; {killed_before} of {} kills landed before it finished",
        rounds.saturating_sub(1)
    );
}
