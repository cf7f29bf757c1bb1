//! Promise: engines sharing a PostgreSQL schema race without breaking the
//! rules one engine keeps: two starts of the same new workflow ID at the
//! same moment, from two engines, start one run; the other start is
//! refused with `ClientError::AlreadyStarted` naming that run.

mod support;

use steadfast::{
    ClientError, Engine, EngineBuilder, SignalDef, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};

const GO: SignalDef<()> = SignalDef::new("go");
/// Waits for a signal: stays running for the whole test.
const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Waiter");

async fn waiter(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(WAITER, waiter)
        .postgres_schema(schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_starting_one_new_workflow_id_at_once_start_one_run() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("start_race");
    let first = builder(&schema).postgres(&url).await.expect("open");
    let second = builder(&schema)
        .postgres(&url)
        .await
        .expect("open a second");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    for i in 0..40 {
        let id = format!("race-{i}");
        let (a, b) = tokio::join!(
            first.start_workflow(WAITER, id.clone(), (), WorkflowOptions::default()),
            second.start_workflow(WAITER, id.clone(), (), WorkflowOptions::default()),
        );
        let started = match (a, b) {
            (Ok(handle), Err(ClientError::AlreadyStarted { run_id, .. }))
            | (Err(ClientError::AlreadyStarted { run_id, .. }), Ok(handle)) => {
                assert_eq!(run_id, handle.run_id(), "{id}: the refusal names the run");
                handle.run_id()
            }
            (a, b) => panic!(
                "{id}: exactly one start must succeed, the other be refused: {:?} / {:?}",
                a.map(|h| h.run_id()),
                b.map(|h| h.run_id())
            ),
        };
        let runs: Vec<String> = client
            .query(
                &format!("SELECT run_id::text FROM {schema}.runs WHERE workflow_id = $1"),
                &[&id],
            )
            .await
            .expect("runs")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(runs.len(), 1, "{id}: one run stored, not {runs:?}");
        assert_eq!(runs[0], started.to_string(), "{id}");
    }
    first.shutdown().await.expect("shutdown");
    second.shutdown().await.expect("shutdown");
}
