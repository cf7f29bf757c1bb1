//! Promise: a signal sent with a request ID is delivered at most once,
//! however often it is retried (as Temporal deduplicates by request ID):
//! a retry with an ID the run has recorded is acknowledged without a second
//! event, also after the engine is closed and opened again (the ID is in
//! the history event). Signals without an ID, or with another, are
//! delivered as usual; an empty or over-long ID is refused.

mod support;

use std::path::Path;

use steadfast::{
    ClientError, Engine, EventKind, MAX_SIGNAL_REQUEST_ID_LEN, SignalDef, SignalOptions,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::temp_db;

/// Collects `charge` signals until `done`; returns them.
const LEDGER: WorkflowDef<(), Vec<u32>> = WorkflowDef::new("Ledger");

const CHARGE: SignalDef<u32> = SignalDef::new("charge");
const DONE: SignalDef<()> = SignalDef::new("done");

async fn ledger(ctx: WorkflowContext, _: ()) -> Result<Vec<u32>, WorkflowError> {
    let mut charges = Vec::new();
    loop {
        let mut charge = ctx.recv_signal(CHARGE);
        let mut done = ctx.recv_signal(DONE);
        futures::select_biased! {
            amount = charge => charges.push(amount?),
            finished = done => {
                finished?;
                break;
            }
        }
    }
    Ok(charges)
}

async fn open(path: &Path) -> Engine {
    Engine::builder()
        .workflow(LEDGER, ledger)
        .open(path)
        .await
        .expect("open the engine")
}

fn with_id(id: &str) -> SignalOptions {
    SignalOptions::new().with_request_id(id)
}

#[tokio::test]
async fn a_retried_signal_with_a_request_id_is_delivered_once() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(LEDGER, "ledger", (), WorkflowOptions::new())
        .await
        .unwrap();
    for _ in 0..3 {
        engine
            .signal_with_options("ledger", CHARGE, 10, with_id("charge-1"))
            .await
            .unwrap();
    }
    // Deduplicated across a reopen too: the ID is read back from history.
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    engine
        .signal_with_options("ledger", CHARGE, 10, with_id("charge-1"))
        .await
        .unwrap();
    engine
        .signal_with_options("ledger", CHARGE, 20, with_id("charge-2"))
        .await
        .unwrap();
    // Without an ID, every call delivers.
    engine.signal("ledger", CHARGE, 30).await.unwrap();
    engine.signal("ledger", CHARGE, 30).await.unwrap();
    engine.signal("ledger", DONE, ()).await.unwrap();
    let run = engine
        .get_workflow_handle(LEDGER, run.workflow_id())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), vec![10, 20, 30, 30]);
    let history = engine.history("ledger").await.unwrap();
    let ids: Vec<Option<&str>> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowSignaledWithOptions {
                signal_name,
                request_id,
                ..
            } if signal_name == "charge" => Some(request_id.as_deref()),
            EventKind::WorkflowSignaled { signal_name, .. } if signal_name == "charge" => {
                Some(None)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        ids,
        vec![Some("charge-1"), Some("charge-2"), None, None],
        "{history:#?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_empty_or_over_long_request_id_is_refused() {
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(LEDGER, "ids", (), WorkflowOptions::new())
        .await
        .unwrap();
    let before = engine.history("ids").await.unwrap();
    let long = "x".repeat(MAX_SIGNAL_REQUEST_ID_LEN + 1);
    for id in ["", long.as_str()] {
        let err = engine
            .signal_with_options("ids", CHARGE, 1, with_id(id))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    }
    assert_eq!(engine.history("ids").await.unwrap(), before);
    engine.shutdown().await.unwrap();
}
