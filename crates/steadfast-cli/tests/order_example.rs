//! The `order` example's file read with the tool, as the README shows:
//! after `cargo run --example order -- --db order.steadfast ... --id
//! order-1`, `steadfast workflow list --db order.steadfast` shows `order-1`
//! completed and `steadfast workflow show --db order.steadfast
//! --workflow-id order-1 --output json` prints its history as JSON.

mod support;

#[path = "../../../examples/order.rs"]
#[allow(dead_code)]
mod order;

use std::process::Output;

use steadfast::{EventKind, WorkflowHistory};
use support::stdout;

fn steadfast(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(args)
        .env_remove("STEADFAST_ADDRESS")
        .env_remove("STEADFAST_TOKEN")
        .output()
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_examples_file_is_listed_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("order.steadfast");
    let result = order::run(order::Args {
        db: Some(db.clone()),
        postgres: None,
        schema: steadfast::DEFAULT_POSTGRES_SCHEMA.into(),
        log: dir.path().join("order.log"),
        id: "order-1".into(),
    })
    .await
    .unwrap();
    assert!(result.starts_with("order order-1 done"), "{result}");
    let db = db.to_str().unwrap();

    let list = stdout(&steadfast(&["workflow", "list", "--db", db]));
    assert!(
        list.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(&"Completed") && cells.get(1) == Some(&"order-1")
        }),
        "{list}"
    );
    let shown = stdout(&steadfast(&[
        "workflow",
        "show",
        "--db",
        db,
        "--workflow-id",
        "order-1",
        "--output",
        "json",
    ]));
    let history = WorkflowHistory::from_json(&shown).expect("the history JSON form");
    assert_eq!(history.workflow_id, "order-1");
    assert_eq!(history.workflow_type, "Order");
    assert!(matches!(
        history.events.last().map(|e| &e.kind),
        Some(EventKind::WorkflowCompleted { .. })
    ));
}
