//! Promise: files written by store format 2 keep opening and running.
//!
//! `tests/fixtures/format-2.steadfast` was written once, by the build that
//! introduced format 2 (search attributes, memo, visibility indexes), with
//! `STEADFAST_WRITE_FIXTURES=1 cargo test --test format_v2 -- --ignored
//! write_format_2_fixture`, and is never regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format2-closed-with-attributes` | `Format2.Done` | Completed; started with one attribute of every kind and a memo |
//! | `format2-closed-upserted` | `Format2.Upsert` | Completed; started with `Tags`, upserted `State = "shipped"`, `Step = 2`, cleared `Tags` |
//! | `format2-running-upserted` | `Format2.UpsertThenWait` | Running: upserted `State = "waiting"`, waits for signal `format2.go`, then upserts `State = "done"` and completes |
//! | `format2-running-plain` | `Format2.Wait` | Running: memo only, waits for `format2.go` |

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use redb::{ReadableDatabase, ReadableTable};
use serde_json::json;
use steadfast::{
    Engine, EngineBuilder, ListFilter, SearchAttributeValue, SearchAttributes, SignalDef,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};

const FIXTURE: &str = "tests/fixtures/format-2.steadfast";

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("steadfast_meta");
const RUNS: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("runs");

const DONE: WorkflowDef<(), String> = WorkflowDef::new("Format2.Done");
const UPSERT: WorkflowDef<(), String> = WorkflowDef::new("Format2.Upsert");
const UPSERT_THEN_WAIT: WorkflowDef<(), String> = WorkflowDef::new("Format2.UpsertThenWait");
const WAIT: WorkflowDef<(), String> = WorkflowDef::new("Format2.Wait");
const GO: SignalDef<()> = SignalDef::new("format2.go");

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn every_kind() -> SearchAttributes {
    SearchAttributes::new()
        .with("CustomerId", "format2-customer")
        .with("Priority", -7i64)
        .with("Score", 2.5)
        .with("Vip", true)
        .with("Due", at(1_700_000_000))
        .with("Tags", vec!["gold".to_string(), "eu".to_string()])
}

async fn done(_ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    Ok("done".into())
}

async fn upsert(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.upsert_search_attributes(
        SearchAttributes::new()
            .with("State", "shipped")
            .with("Step", 2i64)
            .with("Tags", Vec::<String>::new()),
    )?;
    Ok("upserted".into())
}

async fn upsert_then_wait(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.upsert_search_attributes(SearchAttributes::new().with("State", "waiting"))?;
    ctx.recv_signal(GO).await?;
    ctx.upsert_search_attributes(SearchAttributes::new().with("State", "done"))?;
    Ok("went".into())
}

async fn wait(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok("went".into())
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(DONE, done)
        .workflow(UPSERT, upsert)
        .workflow(UPSERT_THEN_WAIT, upsert_then_wait)
        .workflow(WAIT, wait)
}

/// Writes `tests/fixtures/format-2.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test]
#[ignore]
async fn write_format_2_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let run = engine
        .start_workflow(
            DONE,
            "format2-closed-with-attributes",
            (),
            WorkflowOptions::new()
                .with_search_attributes(every_kind())
                .with_memo(json!({ "note": "format 2", "items": [1, 2, 3] })),
        )
        .await
        .unwrap();
    run.result().await.unwrap();
    let run = engine
        .start_workflow(
            UPSERT,
            "format2-closed-upserted",
            (),
            WorkflowOptions::new().with_search_attribute("Tags", vec!["old".to_string()]),
        )
        .await
        .unwrap();
    run.result().await.unwrap();
    engine
        .start_workflow(
            UPSERT_THEN_WAIT,
            "format2-running-upserted",
            (),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    engine
        .start_workflow(
            WAIT,
            "format2-running-plain",
            (),
            WorkflowOptions::new().with_memo("just a memo"),
        )
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

/// The raw file: store format 2, run records of record version 2.
fn check_raw(path: &Path) {
    let db = redb::Database::create(path).expect("open with redb");
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let version = meta.get("format_version").unwrap().unwrap();
    assert_eq!(version.value(), 2u32.to_le_bytes());
    let runs = txn.open_table(RUNS).unwrap();
    let mut count = 0;
    for entry in runs.iter().unwrap() {
        let (_, value) = entry.unwrap();
        assert_eq!(value.value()[0], 2, "run record version");
        count += 1;
    }
    assert_eq!(count, 4);
}

async fn listed(engine: &Engine, filter: ListFilter) -> Vec<String> {
    let page = engine.list(&filter).await.unwrap();
    page.executions.into_iter().map(|e| e.workflow_id).collect()
}

#[tokio::test]
async fn format_2_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    check_raw(&db.path);
    let engine = builder().open(&db.path).await.unwrap();

    let d = engine
        .describe("format2-closed-with-attributes")
        .await
        .unwrap();
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(d.search_attributes, every_kind());
    let memo: serde_json::Value = d.memo.unwrap().decode().unwrap();
    assert_eq!(memo, json!({ "note": "format 2", "items": [1, 2, 3] }));

    let d = engine.describe("format2-closed-upserted").await.unwrap();
    assert_eq!(
        d.search_attributes,
        SearchAttributes::new()
            .with("State", "shipped")
            .with("Step", 2i64)
    );
    let d = engine.describe("format2-running-plain").await.unwrap();
    assert!(d.search_attributes.is_empty());
    assert_eq!(d.memo.unwrap().decode::<String>().unwrap(), "just a memo");

    // The indexes written by format 2 answer every kind of filter.
    let all = listed(&engine, ListFilter::new()).await;
    assert_eq!(all.len(), 4);
    assert!(all[..2].iter().all(|id| id.starts_with("format2-running-")));
    let one = ["format2-closed-with-attributes"];
    for (name, value) in every_kind().iter() {
        let value = match value {
            SearchAttributeValue::KeywordList(list) => list[0].clone().into(),
            other => other.clone(),
        };
        let filter = ListFilter::new().with_search_attribute(name, value);
        assert_eq!(listed(&engine, filter).await, one, "{name}");
    }
    let range = ListFilter::new().with_search_attribute_range("Priority", -10i64, 0i64);
    assert_eq!(listed(&engine, range).await, one);
    let state = |s: &str| ListFilter::new().with_search_attribute("State", s);
    assert_eq!(
        listed(&engine, state("shipped")).await,
        ["format2-closed-upserted"]
    );
    assert_eq!(
        listed(&engine, state("waiting")).await,
        ["format2-running-upserted"]
    );
    assert!(
        listed(
            &engine,
            ListFilter::new().with_search_attribute("Tags", "old")
        )
        .await
        .is_empty()
    );
    let typed = ListFilter::new().with_workflow_type("Format2.Wait");
    assert_eq!(listed(&engine, typed).await, ["format2-running-plain"]);

    // The running ones replay their upserts and finish.
    for id in ["format2-running-upserted", "format2-running-plain"] {
        engine.signal(id, GO, ()).await.unwrap();
    }
    let run = engine
        .get_workflow_handle(UPSERT_THEN_WAIT, "format2-running-upserted")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "went");
    let run = engine
        .get_workflow_handle(WAIT, "format2-running-plain")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "went");
    assert_eq!(
        listed(&engine, state("done")).await,
        ["format2-running-upserted"]
    );
    assert!(listed(&engine, state("waiting")).await.is_empty());
    let running = ListFilter::new().with_status(WorkflowStatus::Running);
    assert!(listed(&engine, running).await.is_empty());
    engine.shutdown().await.unwrap();
}
