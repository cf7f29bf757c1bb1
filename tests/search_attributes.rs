//! Promise: search attributes and the memo. Attributes given at the start
//! and upserted by the workflow (`ctx.upsert_search_attributes`) are shown
//! by `describe` and `list` and filtered on by `list` (every kind, equality
//! and ranges), are durable with the step that set them (also after a
//! reopen), and the upsert is a command: a history with one replays, and
//! code that stops upserting parks the run with a nondeterminism error. The
//! memo is free JSON that comes back as it went in.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use steadfast::{
    ClientError, Engine, EventKind, ListFilter, ParkReason, SearchAttributeValue, SearchAttributes,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::temp_db;

/// Waits for `go`, upserts `State = "shipped"`, `Step = 2`, and clears
/// `Tags`; waits for `done`, then completes.
const SHIPPER: WorkflowDef<(), ()> = WorkflowDef::new("Shipper");
/// Upserts in its first activation, then waits for `done`.
const EAGER: WorkflowDef<(), ()> = WorkflowDef::new("Eager");
/// Waits for `done` only.
const PLAIN: WorkflowDef<(), ()> = WorkflowDef::new("Plain");

const GO: SignalDef<()> = SignalDef::new("go");
const DONE: SignalDef<()> = SignalDef::new("done");

fn shipped() -> SearchAttributes {
    SearchAttributes::new()
        .with("State", "shipped")
        .with("Step", 2i64)
        .with("Tags", Vec::<String>::new())
}

async fn shipper(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    ctx.upsert_search_attributes(shipped())?;
    ctx.recv_signal(DONE).await?;
    Ok(())
}

/// The same type after a code change that dropped the upsert.
async fn shipper_without_upsert(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    ctx.recv_signal(DONE).await?;
    Ok(())
}

async fn eager(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.upsert_search_attributes(SearchAttributes::new().with("State", "eager"))?;
    ctx.recv_signal(DONE).await?;
    Ok(())
}

async fn plain(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(DONE).await?;
    Ok(())
}

async fn open(path: &Path) -> Engine {
    Engine::builder()
        .workflow(SHIPPER, shipper)
        .workflow(EAGER, eager)
        .workflow(PLAIN, plain)
        .open(path)
        .await
        .expect("open the engine")
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn start_attributes() -> SearchAttributes {
    SearchAttributes::new()
        .with("CustomerId", "c-1")
        .with("Priority", 5i64)
        .with("Score", 0.75)
        .with("Vip", true)
        .with("Due", at(1_000))
        .with("Tags", vec!["gold".to_string(), "eu".to_string()])
}

async fn listed(engine: &Engine, filter: ListFilter) -> Vec<String> {
    let page = engine.list(&filter).await.expect("list");
    page.executions.into_iter().map(|e| e.workflow_id).collect()
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
    tries: u32,
}

#[tokio::test]
async fn attributes_and_memo_given_at_start_are_shown_and_filtered_on() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let note = Note {
        text: "first order".into(),
        tries: 3,
    };
    engine
        .start_workflow(
            PLAIN,
            "with-attributes",
            (),
            WorkflowOptions::new()
                .with_search_attributes(start_attributes())
                .with_memo(&note),
        )
        .await
        .unwrap();
    engine
        .start_workflow(
            PLAIN,
            "other",
            (),
            WorkflowOptions::new()
                .with_search_attribute("CustomerId", "c-2")
                .with_search_attribute("Priority", 9i64)
                .with_search_attribute("Due", at(5_000)),
        )
        .await
        .unwrap();

    let described = engine.describe("with-attributes").await.unwrap();
    assert_eq!(described.search_attributes, start_attributes());
    assert_eq!(described.memo.unwrap().decode::<Note>().unwrap(), note);
    let page = engine.list(&ListFilter::new()).await.unwrap();
    let info = page
        .executions
        .iter()
        .find(|e| e.workflow_id == "with-attributes")
        .unwrap();
    assert_eq!(info.search_attributes, start_attributes());
    assert_eq!(info.memo.as_ref().unwrap().decode::<Note>().unwrap(), note);
    assert_eq!(engine.describe("other").await.unwrap().memo, None);

    let only = |name: &str, value: SearchAttributeValue| {
        ListFilter::new().with_search_attribute(name.to_string(), value)
    };
    let one = vec!["with-attributes".to_string()];
    assert_eq!(listed(&engine, only("CustomerId", "c-1".into())).await, one);
    assert_eq!(listed(&engine, only("Priority", 5i64.into())).await, one);
    assert_eq!(listed(&engine, only("Score", 0.75.into())).await, one);
    assert_eq!(listed(&engine, only("Vip", true.into())).await, one);
    assert_eq!(listed(&engine, only("Due", at(1_000).into())).await, one);
    // A keyword list matches each keyword it holds.
    assert_eq!(listed(&engine, only("Tags", "eu".into())).await, one);
    assert!(listed(&engine, only("Tags", "us".into())).await.is_empty());
    // Kinds are part of the value: Int 5 is not Keyword "5".
    assert!(
        listed(&engine, only("Priority", "5".into()))
            .await
            .is_empty()
    );
    assert!(
        listed(&engine, only("Missing", "x".into()))
            .await
            .is_empty()
    );
    // Two equalities must both hold.
    let both = only("CustomerId", "c-1".into()).with_search_attribute("Vip", false);
    assert!(listed(&engine, both).await.is_empty());

    // Ranges: [from, to).
    let ints = ListFilter::new().with_search_attribute_range("Priority", 5i64, 9i64);
    assert_eq!(listed(&engine, ints).await, one);
    let ints = ListFilter::new().with_search_attribute_range("Priority", -100i64, 100i64);
    assert_eq!(listed(&engine, ints).await, ["other", "with-attributes"]);
    let times = ListFilter::new().with_search_attribute_range("Due", at(2_000), at(9_000));
    assert_eq!(listed(&engine, times).await, ["other"]);
    let doubles = ListFilter::new().with_search_attribute_range("Score", 0.5, 1.0);
    assert_eq!(listed(&engine, doubles).await, one);
    // With another filter, the range still applies.
    let ranged = ListFilter::new()
        .with_search_attribute_range("Priority", 0i64, 100i64)
        .with_search_attribute("CustomerId", "c-2");
    assert_eq!(listed(&engine, ranged).await, ["other"]);
    let mixed = ListFilter::new().with_search_attribute_range("Priority", 0i64, "z");
    assert!(matches!(
        engine.list(&mixed).await,
        Err(ClientError::InvalidArgument(_))
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_attributes_or_memo_are_refused_at_start() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let long = "x".repeat(steadfast::MAX_SEARCH_ATTRIBUTE_VALUE_BYTES + 1);
    let refused = [
        WorkflowOptions::new().with_search_attribute("", "empty name"),
        WorkflowOptions::new().with_search_attribute("Long", long),
        WorkflowOptions::new()
            .with_search_attribute("Old", SystemTime::UNIX_EPOCH - Duration::from_secs(1)),
        // A map with non-string keys is not JSON.
        WorkflowOptions::new().with_memo(std::collections::HashMap::from([((1, 2), 3)])),
    ];
    for options in refused {
        let err = engine
            .start_workflow(PLAIN, "refused", (), options)
            .await
            .expect_err("refused");
        assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    }
    assert!(matches!(
        engine.describe("refused").await,
        Err(ClientError::NotFound { .. })
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn upserted_attributes_are_durable_with_their_step_and_after_reopen() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let options = WorkflowOptions::new().with_search_attributes(start_attributes());
    engine
        .start_workflow(SHIPPER, "ship-1", (), options)
        .await
        .unwrap();
    let by_state = || ListFilter::new().with_search_attribute("State", "shipped");
    assert!(listed(&engine, by_state()).await.is_empty());

    engine.signal("ship-1", GO, ()).await.unwrap();
    let mut expected = start_attributes();
    expected.merge(&shipped());
    assert_eq!(expected.get("Tags"), None, "an empty list clears");
    support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("ship-1").await.ok()?;
        (d.search_attributes == expected).then_some(())
    })
    .await;
    // Once the record shows it, so do the indexes: the same commit.
    assert_eq!(listed(&engine, by_state()).await, ["ship-1"]);
    let by_step = ListFilter::new().with_search_attribute("Step", 2i64);
    assert_eq!(listed(&engine, by_step).await, ["ship-1"]);
    let by_tag = ListFilter::new().with_search_attribute("Tags", "gold");
    assert!(listed(&engine, by_tag).await.is_empty(), "cleared");
    let history = engine.history("ship-1").await.unwrap();
    let upserts: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SearchAttributesUpserted { attributes } => Some(attributes.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(upserts, [shipped()]);
    engine.shutdown().await.unwrap();

    // After reopening, the run replays its upsert (no nondeterminism), keeps
    // its attributes, and completes.
    let engine = open(&db.path).await;
    let d = engine.describe("ship-1").await.unwrap();
    assert_eq!(d.search_attributes, expected);
    assert_eq!(listed(&engine, by_state()).await, ["ship-1"]);
    engine.signal("ship-1", DONE, ()).await.unwrap();
    let run = engine.get_workflow_handle(SHIPPER, "ship-1").await.unwrap();
    run.result().await.unwrap();
    let d = engine.describe("ship-1").await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(d.parked, None);
    assert_eq!(d.search_attributes, expected, "kept by the close");
    let closed = by_state().with_status(WorkflowStatus::Completed);
    assert_eq!(listed(&engine, closed).await, ["ship-1"]);
    let open_ones = by_state().with_status(WorkflowStatus::Running);
    assert!(listed(&engine, open_ones).await.is_empty());
    engine.shutdown().await.unwrap();
}

/// Upserts one new attribute at a time until refused, and returns how
/// many were taken and whether removing one made room again.
const GREEDY: WorkflowDef<(), (usize, bool)> = WorkflowDef::new("Greedy");

async fn greedy(ctx: WorkflowContext, _: ()) -> Result<(usize, bool), WorkflowError> {
    let mut taken = 0;
    while ctx
        .upsert_search_attributes(SearchAttributes::new().with(format!("A{taken}"), 1i64))
        .is_ok()
    {
        taken += 1;
    }
    let removed = SearchAttributes::new().with("A0", SearchAttributeValue::KeywordList(Vec::new()));
    ctx.upsert_search_attributes(removed)?;
    let room = ctx
        .upsert_search_attributes(SearchAttributes::new().with("B", 1i64))
        .is_ok();
    Ok((taken, room))
}

/// Each upsert is checked against what the run's earlier upserts set, so a
/// run cannot grow its attributes past the limit one call at a time.
#[tokio::test]
async fn upserts_are_bounded_over_the_run() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(GREEDY, greedy)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(GREEDY, "greedy", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        (steadfast::MAX_SEARCH_ATTRIBUTES, true)
    );
    let d = engine.describe("greedy").await.unwrap();
    assert_eq!(d.search_attributes.len(), steadfast::MAX_SEARCH_ATTRIBUTES);
    assert!(d.search_attributes.get("A0").is_none());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_upsert_in_the_first_activation_is_stored_with_the_start() {
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(EAGER, "eager", (), WorkflowOptions::new())
        .await
        .unwrap();
    // No waiting: the start's commit held it.
    let d = engine.describe("eager").await.unwrap();
    assert_eq!(
        d.search_attributes,
        SearchAttributes::new().with("State", "eager")
    );
    let filter = ListFilter::new().with_search_attribute("State", "eager");
    assert_eq!(listed(&engine, filter).await, ["eager"]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn code_that_stops_upserting_parks_the_run() {
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(SHIPPER, "ship-2", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("ship-2", GO, ()).await.unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("ship-2").await.ok()?;
        (d.search_attributes.get("State").is_some()).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();

    let engine = Engine::builder()
        .workflow(SHIPPER, shipper_without_upsert)
        .open(&db.path)
        .await
        .unwrap();
    let d = support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("ship-2").await.ok()?;
        d.parked.is_some().then_some(d)
    })
    .await;
    assert_eq!(d.status, WorkflowStatus::Running, "parked, not failed");
    match d.parked {
        Some(ParkReason::Nondeterminism(e)) => {
            assert_eq!(e.workflow_id, "ship-2");
            assert!(e.history.contains("SearchAttributesUpserted"), "{e}");
        }
        other => panic!("expected nondeterminism, got {other:?}"),
    }
    // Nothing was discarded.
    assert_eq!(
        d.search_attributes.get("State"),
        Some(&SearchAttributeValue::Keyword("shipped".into()))
    );
    engine.shutdown().await.unwrap();
}
