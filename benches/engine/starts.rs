//! `starts`: how fast workflows start. Three ways a program starts many:
//! one after another, awaiting each start (the most common loop in user
//! code: about one durable commit per start, compared with the floor
//! measured in the same run); from 1,000 concurrent tasks; and through one
//! `engine.start_workflows` call. Each started workflow waits for a signal,
//! so the figure is the start alone.

use std::time::Instant;

use futures::future::join_all;
use serde_json::json;
use steadfast::{Engine, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};

use crate::common::{self, BenchResult};

const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Waiter");
const GO: SignalDef<()> = SignalDef::new("go");

async fn waiter(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

/// Workflows started one after another.
const SERIAL: u32 = 1_000;
/// Workflows started concurrently, and in bulk.
const MANY: u32 = 100_000;
/// Tasks that start the concurrent ones, each starting its share in turn.
const TASKS: u32 = 1_000;

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let commits_per_s = crate::floor::measure(dir.path())?;
    let floor_ms = 1000.0 / commits_per_s;
    let runtime = common::runtime()?;
    for mode in ["serial", "concurrent", "bulk"] {
        let path = dir.path().join(format!("starts-{mode}.steadfast"));
        let (workflows, secs) = runtime.block_on(async {
            let engine = Engine::builder()
                .workflow(WAITER, waiter)
                .open(&path)
                .await?;
            let options = WorkflowOptions::new;
            let start = Instant::now();
            let workflows = match mode {
                "serial" => {
                    for i in 0..SERIAL {
                        engine
                            .start_workflow(WAITER, format!("serial-{i}"), (), options())
                            .await?;
                    }
                    SERIAL
                }
                "concurrent" => {
                    let per_task = MANY / TASKS;
                    let tasks = (0..TASKS).map(|t| {
                        let engine = engine.clone();
                        tokio::spawn(async move {
                            for i in 0..per_task {
                                let id = format!("concurrent-{t}-{i}");
                                engine.start_workflow(WAITER, id, (), options()).await?;
                            }
                            Ok::<_, steadfast::ClientError>(())
                        })
                    });
                    for task in join_all(tasks).await {
                        task.map_err(|e| steadfast::ClientError::Storage(e.to_string()))??;
                    }
                    MANY
                }
                _ => {
                    let starts = (0..MANY).map(|i| (format!("bulk-{i}"), (), options()));
                    for started in engine.start_workflows(WAITER, starts).await? {
                        started?;
                    }
                    MANY
                }
            };
            let secs = start.elapsed().as_secs_f64();
            engine.shutdown().await?;
            Ok::<_, steadfast::Error>((workflows, secs))
        })?;
        let per_s = f64::from(workflows) / secs;
        let ms_per_start = secs * 1000.0 / f64::from(workflows);
        common::emit(&[
            ("workload", json!("starts")),
            ("mode", json!(mode)),
            ("workflows", json!(workflows)),
            ("starts_per_s", json!(per_s.round() as u64)),
            (
                "ms_per_start_to_floor",
                json!(common::round(ms_per_start / floor_ms, 3)),
            ),
        ]);
    }
    eprintln!("# starts: floor {commits_per_s:.0} commits/s ({floor_ms:.3} ms) just before");
    Ok(())
}
