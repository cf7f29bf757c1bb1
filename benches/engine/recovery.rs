//! `recovery`: a child process runs workflows of 20 steps, each an activity
//! that sleeps 50 ms and then appends "<workflow id> <step>" to a log file;
//! the parent SIGKILLs it once half the steps are logged (after step 10 for
//! one workflow), restarts a child on the same file, and measures the time
//! from the restart (process spawn) to the first resumed step beginning
//! (`restart_to_first_step_s`: how soon work flows again), to that step
//! being logged 50 ms later (`restart_to_first_step_logged_s`), and to the
//! last result. Steps logged twice were executed again (activities run at
//! least once).
//!
//! Two forms: one workflow, its log fsync'd per line (PEERS.md's workload);
//! and 10,000 workflows in flight (100,000 with `STEADFAST_BENCH_LARGE=1`),
//! whose log lines are written without fsync (a SIGKILL does not lose them).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult};

const STEPS: u32 = 20;
const STEP_TIME: Duration = Duration::from_millis(50);

/// Longest wait for any line from a child before the run is called hung.
const QUIET_LIMIT: Duration = Duration::from_secs(120);

const STEPS_WORKFLOW: WorkflowDef<u32, u32> = WorkflowDef::new("RecoverySteps");
const SLOW_STEP: ActivityDef<u32, ()> = ActivityDef::new("slow_step");

async fn steps_workflow(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    for step in 1..=steps {
        ctx.execute_activity(SLOW_STEP, step, options.clone())
            .await?;
    }
    Ok(steps)
}

pub fn run() -> BenchResult {
    run_one(1, true)?;
    let many = if common::large() { 100_000 } else { 10_000 };
    run_one(many, false)
}

fn run_one(workflows: u32, fsync: bool) -> BenchResult {
    let dir = common::temp_dir()?;
    let path = dir.path().join("recovery.steadfast");
    let log = dir.path().join("steps.log");
    let workflows_text = workflows.to_string();
    let spawn = |mode: &str| {
        common::spawn_child(
            "recovery",
            &[
                ("STEADFAST_BENCH_FILE", path.as_os_str()),
                ("STEADFAST_BENCH_LOG", log.as_os_str()),
                ("STEADFAST_BENCH_WORKFLOWS", workflows_text.as_ref()),
                ("STEADFAST_BENCH_MODE", mode.as_ref()),
                (
                    "STEADFAST_BENCH_FSYNC",
                    if fsync { "1" } else { "0" }.as_ref(),
                ),
            ],
        )
    };

    // First life: killed once half of all steps are logged.
    let first_life = Instant::now();
    let (mut child, lines) = spawn("start")?;
    let half = u64::from(workflows) * u64::from(STEPS) / 2;
    wait_for_at(&lines, &mut child, |_, line| {
        line.strip_prefix("steps ")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= half)
    })?;
    child.kill()?;
    child.wait()?;
    eprintln!(
        "# recovery {workflows}: killed after {:.2} s, {} steps logged",
        first_life.elapsed().as_secs_f64(),
        count_lines(&log)?
    );

    // Second life: resumes from the file.
    let restart = Instant::now();
    let (mut child, lines) = spawn("resume")?;
    let (mut opened, mut begun) = (None, None);
    let first = wait_for_at(&lines, &mut child, |at, line| {
        if line.starts_with("opened ") {
            opened = Some(at);
        } else if line == "begin" {
            begun = Some(at);
        }
        line == "first"
    })?;
    let done = wait_for_at(&lines, &mut child, |_, line| line == "done")?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the resumed child failed: {status}").into());
    }
    let since_restart = |at: Option<Instant>| {
        at.map_or_else(
            || "?".into(),
            |at| format!("{:.1} ms", (at - restart).as_secs_f64() * 1000.0),
        )
    };
    eprintln!(
        "# recovery {workflows}: after the restart, the engine was open at {}, the first step began at {} (it then takes {} ms)",
        since_restart(opened),
        since_restart(begun),
        STEP_TIME.as_millis()
    );

    let (reexecuted, missing) = audit(&log, workflows)?;
    if missing > 0 {
        eprintln!("# recovery {workflows}: LOST {missing} steps: never logged");
    }
    common::emit(&[
        ("workload", json!("recovery")),
        ("workflows", json!(workflows)),
        (
            "restart_to_first_step_s",
            json!(begun.map(|at| common::round((at - restart).as_secs_f64(), 4))),
        ),
        (
            "restart_to_first_step_logged_s",
            json!(common::round((first - restart).as_secs_f64(), 4)),
        ),
        (
            "restart_to_done_s",
            json!(common::round((done - restart).as_secs_f64(), 4)),
        ),
        ("reexecuted_steps", json!(reexecuted)),
    ]);
    Ok(())
}

/// Waits for a line matching `want` (given its arrival time and text) and
/// returns when it arrived; fails if the child exits or stays quiet too long.
fn wait_for_at(
    lines: &common::ChildLines,
    child: &mut Child,
    mut want: impl FnMut(Instant, &str) -> bool,
) -> Result<Instant, Box<dyn std::error::Error>> {
    loop {
        match lines.recv_timeout(QUIET_LIMIT) {
            Ok((at, line)) if want(at, &line) => return Ok(at),
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                let status = child.wait()?;
                return Err(format!("the recovery child stopped reporting ({e}; {status})").into());
            }
        }
    }
}

fn count_lines(log: &Path) -> std::io::Result<usize> {
    Ok(std::fs::read_to_string(log)?.lines().count())
}

/// Steps logged more than once (re-executed), and steps never logged.
fn audit(log: &Path, workflows: u32) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(log)?;
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for line in text.lines() {
        *seen.entry(line).or_default() += 1;
    }
    let reexecuted = seen.values().map(|n| n - 1).sum();
    let expected = u64::from(workflows) * u64::from(STEPS);
    Ok((reexecuted, expected.saturating_sub(seen.len() as u64)))
}

/// The child: starts (or resumes) the workflows and reports on stdout:
/// `opened <ms>` once the engine is open, `begin` when its first step
/// begins, `first` when its first step is logged, `steps <n>` each time
/// another round of steps (one per workflow) is logged, `done`.
pub fn child() -> BenchResult {
    let path = common::child_var("STEADFAST_BENCH_FILE")?;
    let log = common::child_var("STEADFAST_BENCH_LOG")?;
    let workflows: u32 = common::child_var("STEADFAST_BENCH_WORKFLOWS")?.parse()?;
    let resume = common::child_var("STEADFAST_BENCH_MODE")? == "resume";
    let fsync = common::child_var("STEADFAST_BENCH_FSYNC")? == "1";
    let began = Instant::now();
    let sink = Arc::new(StepLog {
        file: Mutex::new(OpenOptions::new().create(true).append(true).open(log)?),
        fsync,
        begun: AtomicBool::new(false),
        first: AtomicBool::new(false),
        logged: AtomicU64::new(0),
        report_every: u64::from(workflows),
    });
    let slow_step = move |ctx: ActivityContext, step: u32| {
        let sink = sink.clone();
        async move {
            sink.begin();
            tokio::time::sleep(STEP_TIME).await;
            sink.record(ctx.workflow_id(), step)?;
            Ok::<(), ActivityError>(())
        }
    };
    common::runtime()?.block_on(async {
        let engine = Engine::builder()
            .workflow(STEPS_WORKFLOW, steps_workflow)
            .activity(SLOW_STEP, slow_step)
            .open(&path)
            .await?;
        println!("opened {:.1}", began.elapsed().as_secs_f64() * 1000.0);
        let ids = (0..workflows).map(|i| format!("recovery-{i}"));
        let handles = if resume {
            join_all(ids.map(|id| engine.get_workflow_handle(STEPS_WORKFLOW, id))).await
        } else {
            let options = WorkflowOptions::new();
            join_all(
                ids.map(|id| engine.start_workflow(STEPS_WORKFLOW, id, STEPS, options.clone())),
            )
            .await
        };
        let handles = handles.into_iter().collect::<Result<Vec<_>, _>>()?;
        for result in join_all(handles.iter().map(|h| h.result())).await {
            result?;
        }
        println!("done");
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(())
    })?;
    Ok(())
}

/// The log of executed steps, and the child's progress reports.
struct StepLog {
    file: Mutex<File>,
    fsync: bool,
    begun: AtomicBool,
    first: AtomicBool,
    logged: AtomicU64,
    report_every: u64,
}

impl StepLog {
    fn begin(&self) {
        if !self.begun.swap(true, Ordering::SeqCst) {
            println!("begin");
        }
    }

    fn record(&self, workflow_id: &str, step: u32) -> Result<(), ActivityError> {
        {
            let mut file = self
                .file
                .lock()
                .map_err(|_| ActivityError::non_retryable("the log lock is poisoned"))?;
            file.write_all(format!("{workflow_id} {step}\n").as_bytes())?;
            if self.fsync {
                file.sync_data()?;
            }
        }
        if !self.first.swap(true, Ordering::SeqCst) {
            println!("first");
        }
        let logged = self.logged.fetch_add(1, Ordering::SeqCst) + 1;
        if logged.is_multiple_of(self.report_every) {
            println!("steps {logged}");
        }
        Ok(())
    }
}
