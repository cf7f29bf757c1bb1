//! Promise: files written by store format 5 keep opening and running, and
//! format-4 files are opened as the current format.
//!
//! Format 5 keeps format 4's tables and adds the event kinds
//! `WorkflowContinuedAsNew` (index 22: a run closed by a continue-as-new,
//! naming its successor and the signals it carried) and
//! `WorkflowContinuedFrom` (index 23: a continued run's second event), and
//! the run status `ContinuedAsNew` (index 6). `tests/fixtures/format-5.steadfast`
//! was written once, by the build that introduced format 5, with
//! `STEADFAST_WRITE_FIXTURES=1 cargo test --test format_v5 -- --ignored
//! write_format_5_fixture`, and is never regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format5-closed-chain` | `Format5.Chain` | Three runs: two `ContinuedAsNew` (each read one `format5.item` and carried the unread `format5.note`), the third Completed with `["a", "b", "c"]` and `SignalsUnread` for the note; memo `{"chain": "closed"}`, search attribute `Round` upserted by each continue |
//! | `format5-running-continued` | `Format5.Chain` | Two runs: the first `ContinuedAsNew` (read `x`, carried the note), the second Running, waiting for its `format5.item` |

mod support;

use steadfast::{
    ContinueAsNewOptions, Engine, EngineBuilder, EventKind, ListFilter, SearchAttributes,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::assert_history_well_formed;

const FIXTURE: &str = "tests/fixtures/format-5.steadfast";
const FORMAT_4_FIXTURE: &str = "tests/fixtures/format-4.steadfast";

/// (round, last round, items read so far) in, the items out.
const CHAIN: WorkflowDef<(u32, u32, Vec<String>), Vec<String>> = WorkflowDef::new("Format5.Chain");
const ITEM: SignalDef<String> = SignalDef::new("format5.item");
/// Never read: carried along the chain.
const NOTE: SignalDef<String> = SignalDef::new("format5.note");

async fn chain(
    ctx: WorkflowContext,
    (round, last, mut seen): (u32, u32, Vec<String>),
) -> Result<Vec<String>, WorkflowError> {
    seen.push(ctx.recv_signal(ITEM).await?);
    if round < last {
        let attributes = SearchAttributes::new().with("Round", i64::from(round + 1));
        return Err(ctx.continue_as_new_with_options(
            CHAIN,
            (round + 1, last, seen),
            ContinueAsNewOptions::new().with_search_attributes(attributes),
        ));
    }
    Ok(seen)
}

fn builder() -> EngineBuilder {
    Engine::builder().workflow(CHAIN, chain)
}

/// Writes `tests/fixtures/format-5.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_5_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let options = WorkflowOptions::new().with_memo(serde_json::json!({"chain": "closed"}));
    let run = engine
        .start_workflow(CHAIN, "format5-closed-chain", (0, 2, Vec::new()), options)
        .await
        .unwrap();
    engine
        .signal("format5-closed-chain", NOTE, "kept".to_string())
        .await
        .unwrap();
    for item in ["a", "b", "c"] {
        engine
            .signal("format5-closed-chain", ITEM, item.to_string())
            .await
            .unwrap();
    }
    assert_eq!(run.result().await.unwrap(), ["a", "b", "c"]);

    engine
        .start_workflow(
            CHAIN,
            "format5-running-continued",
            (0, 1, Vec::new()),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    engine
        .signal("format5-running-continued", NOTE, "kept".to_string())
        .await
        .unwrap();
    engine
        .signal("format5-running-continued", ITEM, "x".to_string())
        .await
        .unwrap();
    // Wait for the second run to be current (the switch is one commit).
    support::eventually(std::time::Duration::from_secs(10), || async {
        let d = engine.describe("format5-running-continued").await.unwrap();
        d.previous_run_id.is_some().then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_5_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 5);
    let engine = builder().open(&db.path).await.unwrap();

    // The closed chain: three runs, linked both ways, the last Completed.
    let page = engine
        .list(&ListFilter::new().with_workflow_id_prefix("format5-closed-chain"))
        .await
        .unwrap();
    assert_eq!(page.executions.len(), 3);
    let last = engine.describe("format5-closed-chain").await.unwrap();
    assert_eq!(last.status, WorkflowStatus::Completed);
    assert_eq!(
        last.memo.unwrap().decode::<serde_json::Value>().unwrap(),
        serde_json::json!({"chain": "closed"})
    );
    assert_eq!(
        last.search_attributes,
        SearchAttributes::new().with("Round", 2i64)
    );
    assert_eq!(last.unread_signals.len(), 1);
    let middle_id = last.previous_run_id.expect("continued");
    let middle = engine
        .describe_run("format5-closed-chain", middle_id)
        .await
        .unwrap();
    assert_eq!(middle.status, WorkflowStatus::ContinuedAsNew);
    assert_eq!(middle.next_run_id, Some(last.run_id));
    let first_id = middle.previous_run_id.expect("continued");
    let first = engine
        .workflow_run_history("format5-closed-chain", first_id)
        .await
        .unwrap();
    assert_history_well_formed(&first.events);
    match &first.events.last().unwrap().kind {
        EventKind::WorkflowContinuedAsNew {
            new_run_id,
            signals,
            ..
        } => {
            assert_eq!(*new_run_id, middle_id);
            assert_eq!(signals.len(), 1);
            assert_eq!(signals[0].signal_name, "format5.note");
        }
        other => panic!("expected WorkflowContinuedAsNew, got {other:?}"),
    }
    let handle = engine
        .get_workflow_handle(CHAIN, "format5-closed-chain")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), ["a", "b", "c"]);

    // The running chain replays its continued run (WorkflowContinuedFrom,
    // the carried note) and finishes with the next item.
    let running = engine.describe("format5-running-continued").await.unwrap();
    assert_eq!(running.status, WorkflowStatus::Running);
    let history = engine.history("format5-running-continued").await.unwrap();
    assert!(matches!(
        history[1].kind,
        EventKind::WorkflowContinuedFrom { .. }
    ));
    engine
        .signal("format5-running-continued", ITEM, "y".to_string())
        .await
        .unwrap();
    let handle = engine
        .get_workflow_handle(CHAIN, "format5-running-continued")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), ["x", "y"]);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_4_files_are_opened_as_the_current_format() {
    let db = support::copy_fixture(FORMAT_4_FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 4);
    let engine = Engine::builder().open(&db.path).await.unwrap();
    assert_eq!(
        engine
            .describe("format4-closed-after-waiting")
            .await
            .unwrap()
            .status,
        WorkflowStatus::Completed
    );
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        support::CURRENT_STORE_FORMAT
    );
}
