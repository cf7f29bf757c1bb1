//! Promise: files written by store format 18 keep opening and running,
//! with the commits a crash left in their journal only: a file killed
//! before its journal was checkpointed opens with every acknowledged
//! start, signal and result; a read-only open of it is refused until a
//! writing open has recovered it; format-17 files open as format 18.
//!
//! Format 18 keeps format 17's tables and records and adds the journal
//! beside the file (`<path>-journal`, FORMAT.md "Store format 18").
//! `tests/fixtures/format-18.steadfast` and
//! `tests/fixtures/format-18.steadfast-journal` were written once, by the
//! build that introduced format 18, with `STEADFAST_WRITE_FIXTURES=1 cargo
//! test --test format_v18 -- --ignored write_format_18_fixture` (a child
//! process opens a new file, makes the calls below and aborts before any
//! checkpoint; the journal's zeros after its last entry are left out), and
//! are never regenerated. They hold, in the journal only:
//!
//! | ID | What | State |
//! |---|---|---|
//! | `format18-echo` | `Format18.Echo` | Completed: ran activity `Format18.Upper` on `"journal"`, answered `"JOURNAL"` |
//! | `format18-sum` | `Format18.Sum` | Running: got signal `format18.item` `1`, waits for a second |

mod support;

use std::path::Path;
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, OpenError,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{CURRENT_STORE_FORMAT, eventually, journal_of};

const FIXTURE: &str = "tests/fixtures/format-18.steadfast";
const PATIENCE: Duration = Duration::from_secs(20);
/// Set for the child process that writes the fixture: the folder to write
/// it in.
const CHILD_ENV: &str = "STEADFAST_FORMAT18_CHILD";

const ECHO: WorkflowDef<String, String> = WorkflowDef::new("Format18.Echo");
const UPPER: ActivityDef<String, String> = ActivityDef::new("Format18.Upper");
const SUM: WorkflowDef<(), u32> = WorkflowDef::new("Format18.Sum");
const ITEM: SignalDef<u32> = SignalDef::new("format18.item");

async fn echo(ctx: WorkflowContext, text: String) -> Result<String, WorkflowError> {
    Ok(ctx
        .execute_activity(
            UPPER,
            text,
            ActivityOptions::start_to_close(Duration::from_secs(30)),
        )
        .await?)
}

async fn upper(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
    Ok(text.to_uppercase())
}

/// Answers the sum of the first two items.
async fn sum(ctx: WorkflowContext, (): ()) -> Result<u32, WorkflowError> {
    let first = ctx.recv_signal(ITEM).await?;
    let second = ctx.recv_signal(ITEM).await?;
    Ok(first + second)
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(ECHO, echo)
        .activity(UPPER, upper)
        .workflow(SUM, sum)
}

/// Copies the fixture and, with `journal`, its journal beside it.
fn copy_fixture(journal: bool) -> support::TempDb {
    let db = support::copy_fixture(FIXTURE);
    if journal {
        let source = journal_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE));
        std::fs::copy(&source, journal_of(&db.path)).expect("copy the fixture's journal");
    }
    db
}

/// The child process of `write_format_18_fixture`: makes the calls and
/// aborts, as a kill would stop it, before the journal is checkpointed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn format_18_fixture_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = Path::new(&dir).join("format-18.steadfast");
    let engine = builder().open(&path).await.unwrap();
    let echoed = engine
        .start_workflow(
            ECHO,
            "format18-echo",
            "journal".into(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(echoed.result().await.unwrap(), "JOURNAL");
    engine
        .start_workflow(SUM, "format18-sum", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("format18-sum", ITEM, 1).await.unwrap();
    std::process::abort();
}

/// Writes the fixture and its journal. Ignored, and a no-op without
/// `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite them.
#[test]
#[ignore]
fn write_format_18_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "format_18_fixture_child"])
        .env(CHILD_ENV, dir.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child aborts");
    let written = dir.path().join("format-18.steadfast");
    std::fs::copy(&written, &target).unwrap();
    // The journal is extended to 4.25 MiB with zeros when opened; its entries
    // end at the first zeros, so the copy keeps only what precedes them.
    let mut journal = std::fs::read(journal_of(&written)).unwrap();
    let used = journal.iter().rposition(|b| *b != 0).map_or(0, |at| at + 1);
    journal.truncate(used);
    std::fs::write(journal_of(&target), journal).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_18_files_keep_opening_with_their_journal() {
    // The file alone holds none of it: the calls were journaled only.
    let alone = copy_fixture(false);
    let engine = builder().open(&alone.path).await.unwrap();
    assert!(engine.describe("format18-echo").await.is_err());
    assert!(engine.describe("format18-sum").await.is_err());
    engine.shutdown().await.unwrap();

    // With its journal, a read-only open is refused until it is recovered.
    let db = copy_fixture(true);
    let refused = Engine::builder().read_only().open(&db.path).await;
    assert!(
        matches!(refused, Err(OpenError::NeedsRecovery { .. })),
        "{:?}",
        refused.err()
    );

    let engine = builder().open(&db.path).await.unwrap();
    let echo = engine.describe("format18-echo").await.unwrap();
    assert_eq!(echo.status, WorkflowStatus::Completed);
    let answered: String = engine
        .get_workflow_handle(ECHO, "format18-echo")
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(answered, "JOURNAL");
    engine.signal("format18-sum", ITEM, 2).await.unwrap();
    let total = engine
        .get_workflow_handle(SUM, "format18-sum")
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(total, 3, "the journaled signal 1 and the new 2");
    engine.shutdown().await.unwrap();
    assert_eq!(support::stored_format_version(&db.path), 18);

    // Recovered and closed: the file alone holds everything now.
    std::fs::remove_file(journal_of(&db.path)).unwrap();
    let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
    let sum = reader.describe("format18-sum").await.unwrap();
    assert_eq!(sum.status, WorkflowStatus::Completed);
    reader.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_17_files_open_as_format_18() {
    let db = support::copy_fixture("tests/fixtures/format-17.steadfast");
    let engine = Engine::builder().open(&db.path).await.unwrap();
    eventually(PATIENCE, || async {
        engine.describe("format17-parent").await.ok().map(|_| ())
    })
    .await;
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        CURRENT_STORE_FORMAT
    );
}
