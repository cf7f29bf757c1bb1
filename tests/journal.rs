//! Promise: the journal beside the file (store format 18) holds every
//! acknowledged commit until a checkpoint moves it into the file: a
//! process that dies with commits in the journal only loses none of them;
//! a journal left beside another file is never applied to it; after a
//! clean shutdown the file alone holds everything; the journal stays
//! bounded however much is written.
//!
//! The dying process is a child of this test binary that aborts right
//! after its calls were acknowledged, before the writer is idle long
//! enough to checkpoint (a kill at that moment, made deterministic).

mod support;

use std::path::Path;
use std::time::Duration;

use steadfast::{
    Engine, EngineBuilder, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
    WorkflowStatus,
};
use support::journal_of;

const DB_ENV: &str = "STEADFAST_JOURNAL_TEST_DB";
const WORKFLOWS: u32 = 200;
const SIGNALS: u32 = 50;

const NOTE: WorkflowDef<u32, u32> = WorkflowDef::new("Journal.Note");
const TALLY: WorkflowDef<(), u32> = WorkflowDef::new("Journal.Tally");
const ADD: SignalDef<u32> = SignalDef::new("journal.add");

async fn note(_ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    Ok(n)
}

/// Sums `journal.add` signals until one is 0.
async fn tally(ctx: WorkflowContext, (): ()) -> Result<u32, WorkflowError> {
    let mut total = 0;
    loop {
        match ctx.recv_signal(ADD).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(NOTE, note)
        .workflow(TALLY, tally)
}

/// The child: starts `WORKFLOWS` notes and a tally, signals it `SIGNALS`
/// times (each acknowledged), reports, and aborts at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writes_and_dies() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let engine = builder().open(&db).await.expect("the child opens the file");
    engine
        .start_workflow(TALLY, "tally", (), WorkflowOptions::new())
        .await
        .expect("start the tally");
    for n in 1..=WORKFLOWS {
        engine
            .start_workflow(NOTE, format!("note-{n}"), n, WorkflowOptions::new())
            .await
            .expect("start a note");
        if n <= SIGNALS {
            engine.signal("tally", ADD, n).await.expect("signal");
        }
    }
    support::child_report("acknowledged");
    std::process::abort();
}

/// Ends the tally and answers its total.
async fn end_tally(engine: &Engine) -> u32 {
    engine.signal("tally", ADD, 0).await.expect("end the tally");
    engine
        .get_workflow_handle(TALLY, "tally")
        .await
        .expect("the tally")
        .result()
        .await
        .expect("its result")
}

/// Runs the child on `path` until it aborted.
async fn write_and_die(path: &Path) {
    let mut child =
        support::spawn_crash_child("child_writes_and_dies", &[(DB_ENV, path.as_os_str())]);
    child
        .wait_for_line(Duration::from_secs(60), |l| l == "acknowledged")
        .await;
    let (succeeded, _) = child.wait(Duration::from_secs(30)).await;
    assert!(!succeeded, "the child aborts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_in_the_journal_only_survive_the_process() {
    let db = support::temp_db();
    write_and_die(&db.path).await;
    let journal = std::fs::metadata(journal_of(&db.path)).expect("a journal beside the file");
    assert!(journal.len() > 0);

    let engine = builder()
        .open(&db.path)
        .await
        .expect("open after the abort");
    for n in 1..=WORKFLOWS {
        let handle = engine
            .get_workflow_handle(NOTE, format!("note-{n}").as_str())
            .await
            .unwrap_or_else(|e| panic!("acknowledged start of note-{n} lost: {e}"));
        assert_eq!(handle.result().await.expect("its result"), n);
    }
    let total = end_tally(&engine).await;
    assert_eq!(
        total,
        (1..=SIGNALS).sum::<u32>(),
        "every acknowledged signal"
    );
    engine.shutdown().await.expect("shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_beside_another_file_is_not_applied() {
    let dying = support::temp_db();
    write_and_die(&dying.path).await;

    // Another file, cleanly shut down, gets the dead process's journal.
    let other = support::temp_db();
    let engine = builder()
        .open(&other.path)
        .await
        .expect("open the other file");
    engine
        .start_workflow(NOTE, "mine", 7, WorkflowOptions::new())
        .await
        .expect("start");
    engine.shutdown().await.expect("shut down");
    std::fs::copy(journal_of(&dying.path), journal_of(&other.path)).expect("swap the journal in");

    let engine = builder()
        .open(&other.path)
        .await
        .expect("open beside a foreign journal");
    assert!(
        engine.describe("tally").await.is_err(),
        "the other file's runs were applied here"
    );
    assert!(engine.describe("note-1").await.is_err());
    let mine = engine.describe("mine").await.expect("this file's own run");
    assert_eq!(mine.status, WorkflowStatus::Completed);
    // The journal is this file's from now on.
    engine
        .start_workflow(NOTE, "after", 8, WorkflowOptions::new())
        .await
        .expect("start after");
    engine.shutdown().await.expect("shut down");
    let engine = builder().open(&other.path).await.expect("open again");
    assert!(engine.describe("after").await.is_ok());
    assert!(engine.describe("tally").await.is_err());
    engine.shutdown().await.expect("shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_clean_shutdown_the_file_alone_holds_everything() {
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.expect("open");
    let mut starts = tokio::task::JoinSet::new();
    for n in 0..3_000u32 {
        let engine = engine.clone();
        starts.spawn(async move {
            engine
                .start_workflow(NOTE, format!("note-{n}"), n, WorkflowOptions::new())
                .await
                .map(|_| ())
        });
    }
    while let Some(started) = starts.join_next().await {
        started.expect("join").expect("start");
    }
    engine.shutdown().await.expect("shut down");
    // Bounded: entries start over at each checkpoint.
    let journal = std::fs::metadata(journal_of(&db.path)).expect("the journal");
    assert!(
        journal.len() <= 16 << 20,
        "journal of {} bytes",
        journal.len()
    );

    std::fs::remove_file(journal_of(&db.path)).expect("remove the journal");
    let reader = Engine::builder()
        .read_only()
        .open(&db.path)
        .await
        .expect("read the file alone");
    for n in [0u32, 1_500, 2_999] {
        let run = reader
            .describe(&format!("note-{n}"))
            .await
            .unwrap_or_else(|e| panic!("note-{n} not in the file alone: {e}"));
        assert_eq!(run.status, WorkflowStatus::Completed);
    }
    reader.shutdown().await.expect("shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_put_back_beside_a_later_journal_opens_as_the_backup() {
    let db = support::temp_db();
    let start = |id: &'static str| {
        let path = db.path.clone();
        async move {
            let engine = builder().open(&path).await.expect("open");
            engine
                .start_workflow(NOTE, id, 1, WorkflowOptions::new())
                .await
                .expect("start");
            engine.shutdown().await.expect("shut down");
        }
    };
    start("early").await;
    let backup = db.dir.path().join("backup.steadfast");
    std::fs::copy(&db.path, &backup).expect("back the file up");
    start("mid").await;
    // A later life of the file dies with its commits in the journal.
    write_and_die(&db.path).await;
    std::fs::copy(&backup, &db.path).expect("put the backup back");

    // The journal does not continue the backup: none of it is applied.
    let engine = builder().open(&db.path).await.expect("open the backup");
    assert!(engine.describe("early").await.is_ok());
    assert!(engine.describe("mid").await.is_err());
    assert!(engine.describe("tally").await.is_err());
    engine.shutdown().await.expect("shut down");

    // And the journal, wiped, serves the file again.
    write_and_die(&db.path).await;
    let engine = builder()
        .open(&db.path)
        .await
        .expect("open after the second death");
    assert!(engine.describe("early").await.is_ok());
    let total = end_tally(&engine).await;
    assert_eq!(total, (1..=SIGNALS).sum::<u32>());
    engine.shutdown().await.expect("shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_open_recovers_the_journal_first() {
    let db = support::temp_db();
    write_and_die(&db.path).await;
    // Shared with readers: no journal of its own, but the one a crash left
    // is applied before anything is written.
    let engine = builder()
        .shared_reads(true)
        .open(&db.path)
        .await
        .expect("open shared");
    assert!(engine.describe("note-200").await.is_ok());
    engine.signal("tally", ADD, 1000).await.expect("signal");
    engine.shutdown().await.expect("shut down");
    // An exclusive open after it applies nothing again.
    let engine = builder().open(&db.path).await.expect("open");
    let total = end_tally(&engine).await;
    assert_eq!(total, (1..=SIGNALS).sum::<u32>() + 1000);
    engine.shutdown().await.expect("shut down");
}
