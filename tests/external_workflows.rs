//! Promise: workflow code signals another workflow
//! (`ctx.signal_external_workflow`) and asks another to cancel
//! (`ctx.cancel_external_workflow`) durably: the command, its delivery into
//! the target's history and its outcome in the sender's are one commit, so
//! a kill -9 at any moment neither loses nor duplicates a delivered signal;
//! a target that does not exist or is closed is a typed error in the
//! sender, the same on replay; replay checks the commands (a changed one
//! parks the run with the diff), and histories holding the new events
//! replay and round-trip through JSON. A child's handle signals the
//! child by the same path (`ChildWorkflowHandle::signal`), naming its run,
//! so a closed child's reused ID never gets it; a run may signal itself and
//! ask itself to cancel.

mod support;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, EventKind,
    ExternalWorkflowError, RunId, SignalDef, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::{OpenDb, child_report, spawn_crash_child, temp_db};

const ITEM: SignalDef<u32> = SignalDef::new("item");
/// Ends a receiver.
const LAST: u32 = u32::MAX;

/// Collects `item` signals until `LAST`; returns them in order.
const RECEIVER: WorkflowDef<(), Vec<u32>> = WorkflowDef::new("receiver");

async fn receiver(ctx: WorkflowContext, (): ()) -> Result<Vec<u32>, WorkflowError> {
    let mut items = Vec::new();
    loop {
        let item = ctx.recv_signal(ITEM).await?;
        if item == LAST {
            return Ok(items);
        }
        items.push(item);
    }
}

/// Waits an hour; a cancellation request ends it `Cancelled`.
const SLEEPER: WorkflowDef<(), ()> = WorkflowDef::new("sleeper");

async fn sleeper(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

/// Sends `items` then `LAST` to the target's latest run; returns the run
/// that got them.
const SENDER: WorkflowDef<(String, Vec<u32>), RunId> = WorkflowDef::new("sender");

async fn sender(
    ctx: WorkflowContext,
    (target, items): (String, Vec<u32>),
) -> Result<RunId, WorkflowError> {
    let mut got = None;
    for item in items.into_iter().chain([LAST]) {
        got = Some(
            ctx.signal_external_workflow(target.clone(), None, ITEM, item)
                .await?,
        );
    }
    got.ok_or_else(|| WorkflowError::new("nothing sent"))
}

/// Reports what each kind of target gives a signal and a cancellation.
const PROBE: WorkflowDef<(String, RunId), Vec<String>> = WorkflowDef::new("probe");

fn outcome(result: Result<RunId, ExternalWorkflowError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(ExternalWorkflowError::NotFound { .. }) => "not-found".into(),
        Err(ExternalWorkflowError::Closed { status, .. }) => format!("closed:{status:?}"),
        Err(other) => format!("{other}"),
    }
}

async fn probe(
    ctx: WorkflowContext,
    (closed, closed_run): (String, RunId),
) -> Result<Vec<String>, WorkflowError> {
    let mut out = Vec::new();
    let nobody = ctx.signal_external_workflow("nobody", None, ITEM, 1).await;
    out.push(outcome(nobody));
    let closed_signal = ctx
        .signal_external_workflow(closed.clone(), None, ITEM, 1)
        .await;
    out.push(outcome(closed_signal));
    // A run ID that is not the workflow's.
    let wrong_run = ctx
        .signal_external_workflow(closed.clone(), Some(ctx.run_id()), ITEM, 1)
        .await;
    out.push(outcome(wrong_run));
    let by_run = ctx.cancel_external_workflow(closed, Some(closed_run)).await;
    out.push(outcome(by_run));
    // A run may signal itself, and receives it like any signal, and ask
    // itself to cancel (see `SELF_CANCEL`).
    let own = ctx
        .signal_external_workflow(ctx.workflow_id(), None, ITEM, 1)
        .await;
    out.push(match own {
        Ok(run_id) if run_id == ctx.run_id() => "own-run".into(),
        other => outcome(other),
    });
    out.push(format!("received {}", ctx.recv_signal(ITEM).await?));
    let own_cancel = ctx.cancel_external_workflow(ctx.workflow_id(), None).await;
    out.push(match own_cancel {
        Ok(run_id) if run_id == ctx.run_id() && ctx.is_cancel_requested() => "own-cancel".into(),
        other => outcome(other),
    });
    let empty = ctx.cancel_external_workflow("", None).await;
    out.push(match empty {
        Err(ExternalWorkflowError::NotDelivered { .. }) => "refused".into(),
        other => outcome(other),
    });
    Ok(out)
}

/// Cancels the target, twice, then signals the one named second.
const CANCELLER: WorkflowDef<(String, String), u32> = WorkflowDef::new("canceller");

async fn canceller(
    ctx: WorkflowContext,
    (target, receiver): (String, String),
) -> Result<u32, WorkflowError> {
    ctx.cancel_external_workflow(target.clone(), None).await?;
    ctx.cancel_external_workflow(target, None).await?;
    ctx.signal_external_workflow(receiver.clone(), None, ITEM, 7)
        .await?;
    ctx.signal_external_workflow(receiver, None, ITEM, LAST)
        .await?;
    Ok(2)
}

/// Collects `item` signals until `LAST`, continuing as new after the
/// first (carrying what it got), so the signals span two runs.
const CONTINUING_RECEIVER: WorkflowDef<Vec<u32>, Vec<u32>> =
    WorkflowDef::new("continuing_receiver");

async fn continuing_receiver(
    ctx: WorkflowContext,
    mut items: Vec<u32>,
) -> Result<Vec<u32>, WorkflowError> {
    loop {
        let item = ctx.recv_signal(ITEM).await?;
        if item == LAST {
            return Ok(items);
        }
        items.push(item);
        if items.len() == 1 {
            return Err(ctx.continue_as_new(CONTINUING_RECEIVER, items));
        }
    }
}

/// Starts a continuing receiver as its child, signals it `1, 2, 3, LAST`
/// through the child's handle, and returns the child's result, whether
/// the first signal reached the child's first run, and what a signal to
/// the closed child gives.
const CHILD_SIGNALLER: WorkflowDef<(), (Vec<u32>, bool, String)> =
    WorkflowDef::new("child_signaller");

async fn child_signaller(
    ctx: WorkflowContext,
    (): (),
) -> Result<(Vec<u32>, bool, String), WorkflowError> {
    let id = format!("{}/receiver", ctx.workflow_id());
    let child = ctx
        .start_child_workflow(
            CONTINUING_RECEIVER,
            id,
            Vec::new(),
            steadfast::ChildWorkflowOptions::new(),
        )
        .await?;
    let mut runs = Vec::new();
    for item in [1, 2, 3, LAST] {
        runs.push(child.signal(ITEM, item).await?);
    }
    let items = child.result().await?;
    let first = runs[0] == child.first_execution_run_id();
    let after_close = outcome(child.signal(ITEM, 9).await);
    Ok((items, first, after_close))
}

/// Starts an hour's timer, asks its own run to cancel, and waits for the
/// timer: the cancellation ends the wait. Its failure says what it saw.
const SELF_CANCEL: WorkflowDef<(), ()> = WorkflowDef::new("self_cancel");

async fn self_cancel(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    let timer = ctx.sleep(Duration::from_secs(3600));
    let before = ctx.is_cancel_requested();
    let got = ctx.cancel_external_workflow(ctx.workflow_id(), None).await;
    let own = matches!(got, Ok(run_id) if run_id == ctx.run_id());
    let after = ctx.is_cancel_requested();
    let waited = timer.await.is_err();
    Err(WorkflowError::new(format!(
        "before {before}, own {own}, after {after}, timer cancelled {waited}"
    )))
}

/// Waits until told to stop, then says so.
const STOPPABLE: ActivityDef<(), String> = ActivityDef::new("stoppable");

/// Set once a `STOPPABLE` attempt was told to stop.
static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn stoppable(ctx: ActivityContext, (): ()) -> Result<String, ActivityError> {
    ctx.cancelled().await;
    TOLD.store(true, std::sync::atomic::Ordering::SeqCst);
    Err(ActivityError::retryable("told to stop"))
}

/// Starts an activity, asks its own run to cancel, and waits for the
/// activity: the running attempt is told, as by a client's cancel.
const SELF_CANCEL_ACTIVITY: WorkflowDef<(), ()> = WorkflowDef::new("self_cancel_activity");

async fn self_cancel_activity(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(3600));
    let running = ctx.execute_activity(STOPPABLE, (), options);
    // Once the attempt runs (a timer lets the step commit first).
    ctx.sleep(Duration::from_millis(200)).await?;
    ctx.cancel_external_workflow(ctx.workflow_id(), None)
        .await?;
    // The wait on the activity ends with the cancellation; the run then
    // cleans up for an hour (a timer started now runs), so the attempt is
    // told by the cancellation, not by the run's close.
    if running.await.is_ok() {
        return Err(WorkflowError::new("the activity was not cancelled"));
    }
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

/// Lets a parent go on.
const GO: SignalDef<()> = SignalDef::new("go");

/// Starts a receiver child, ends it through its handle, waits for `go`
/// (meanwhile the test reuses the child's ID), then signals the closed
/// child through its handle again: the outcome.
const REUSED_CHILD: WorkflowDef<(), String> = WorkflowDef::new("reused_child");

async fn reused_child(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    let id = format!("{}/child", ctx.workflow_id());
    let child = ctx
        .start_child_workflow(RECEIVER, id, (), steadfast::ChildWorkflowOptions::new())
        .await?;
    child.signal(ITEM, 4).await?;
    child.signal(ITEM, LAST).await?;
    let items = child.result().await?;
    ctx.recv_signal(GO).await?;
    let late = outcome(child.signal(ITEM, 5).await);
    Ok(format!("{items:?} then {late}"))
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(SELF_CANCEL, self_cancel)
        .workflow(SELF_CANCEL_ACTIVITY, self_cancel_activity)
        .activity(STOPPABLE, stoppable)
        .workflow(REUSED_CHILD, reused_child)
        .workflow(CONTINUING_RECEIVER, continuing_receiver)
        .workflow(CHILD_SIGNALLER, child_signaller)
        .workflow(RECEIVER, receiver)
        .workflow(SLEEPER, sleeper)
        .workflow(SENDER, sender)
        .workflow(PROBE, probe)
        .workflow(CANCELLER, canceller)
}

fn replayer() -> steadfast::Replayer {
    steadfast::Replayer::new()
        .workflow(SELF_CANCEL, self_cancel)
        .workflow(SELF_CANCEL_ACTIVITY, self_cancel_activity)
        .workflow(REUSED_CHILD, reused_child)
        .workflow(CONTINUING_RECEIVER, continuing_receiver)
        .workflow(CHILD_SIGNALLER, child_signaller)
        .workflow(RECEIVER, receiver)
        .workflow(SLEEPER, sleeper)
        .workflow(SENDER, sender)
        .workflow(PROBE, probe)
        .workflow(CANCELLER, canceller)
}

fn kinds(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            let debug = format!("{:?}", e.kind);
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The request IDs of the signals in a history, in order.
fn request_ids(history: &[steadfast::Event]) -> Vec<Option<String>> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowSignaledWithOptions { request_id, .. } => Some(request_id.clone()),
            EventKind::WorkflowSignaled { .. } => Some(None),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_signal_to_another_workflow_is_delivered_once_with_its_outcome_in_the_same_commit() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let target = engine
        .start_workflow(RECEIVER, "r", (), WorkflowOptions::default())
        .await
        .unwrap();
    let run = engine
        .start_workflow(
            SENDER,
            "s",
            ("r".to_string(), vec![3, 1, 2]),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), target.run_id());
    assert_eq!(target.result().await.unwrap(), vec![3, 1, 2]);

    let sent = engine.history("s").await.unwrap();
    support::assert_history_well_formed(&sent);
    // Each initiation is followed at once by its outcome: one commit.
    let k = kinds(&sent);
    let initiated: Vec<usize> = k
        .iter()
        .enumerate()
        .filter(|(_, k)| *k == "SignalExternalWorkflowInitiated")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(initiated.len(), 4);
    for i in &initiated {
        assert_eq!(k[i + 1], "ExternalWorkflowSignaled", "{k:?}");
    }
    // The target's signals carry request IDs made of the sender's run and
    // the initiating event.
    let got = engine.history("r").await.unwrap();
    let ids = request_ids(&got);
    let expected: Vec<Option<String>> = initiated
        .iter()
        .map(|i| {
            Some(format!(
                "steadfast-external/{}/{}",
                run.run_id(),
                sent[*i].event_id
            ))
        })
        .collect();
    assert_eq!(ids, expected);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_child_handles_signal_is_delivered_once_to_the_childs_current_run() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let parent = engine
        .start_workflow(CHILD_SIGNALLER, "cs", (), WorkflowOptions::default())
        .await
        .unwrap();
    let (items, first, after_close) = parent.result().await.unwrap();
    // The child continued as new after the first signal: the later ones
    // reached it whether they landed in its first run before that close
    // was committed (then moved with it) or in the next.
    assert_eq!(items, [1, 2, 3]);
    assert!(first);
    assert_eq!(after_close, "closed:Completed");
    let sent = engine.history("cs").await.unwrap();
    support::assert_history_well_formed(&sent);
    let k = kinds(&sent);
    let count = |kind: &str| k.iter().filter(|k| *k == kind).count();
    assert_eq!(count("SignalChildWorkflowInitiated"), 5);
    assert_eq!(count("SignalExternalWorkflowInitiated"), 0);
    assert_eq!(count("ExternalWorkflowSignaled"), 4);
    assert_eq!(count("SignalExternalWorkflowFailed"), 1);
    // Each signal once, with the sender's request ID.
    let mut ids = Vec::new();
    let first = sent.iter().find_map(|e| match e.kind {
        EventKind::ChildWorkflowStarted { run_id, .. } => Some(run_id),
        _ => None,
    });
    let mut run = first;
    while let Some(run_id) = run {
        let history = engine
            .workflow_run_history("cs/receiver", run_id)
            .await
            .unwrap();
        replayer().replay(&history).unwrap();
        // Signals a continue-as-new moved carry no request ID: they are
        // the next run's copies of signals its predecessor got.
        ids.extend(request_ids(&history.events).into_iter().flatten());
        run = history.events.iter().find_map(|e| match &e.kind {
            EventKind::WorkflowContinuedAsNew { new_run_id, .. } => Some(*new_run_id),
            _ => None,
        });
    }
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(
        ids.iter().all(|id| id.starts_with("steadfast-external/")),
        "{ids:?}"
    );
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 4);
    replayer()
        .replay(&engine.workflow_history("cs").await.unwrap())
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missing_or_closed_target_is_a_typed_error_in_the_sender() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let closed = engine
        .start_workflow(RECEIVER, "closed", (), WorkflowOptions::default())
        .await
        .unwrap();
    engine.signal("closed", ITEM, LAST).await.unwrap();
    closed.result().await.unwrap();
    let probe_run = engine
        .start_workflow(
            PROBE,
            "probe",
            ("closed".to_string(), closed.run_id()),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        probe_run.result().await.unwrap(),
        [
            "not-found",
            "closed:Completed",
            "not-found",
            "closed:Completed",
            "own-run",
            "received 1",
            "own-cancel",
            "refused"
        ]
    );
    let history = engine.history("probe").await.unwrap();
    let k = kinds(&history);
    let count = |kind: &str| k.iter().filter(|k| *k == kind).count();
    assert_eq!(count("SignalExternalWorkflowFailed"), 3);
    assert_eq!(count("RequestCancelExternalWorkflowFailed"), 1);
    // The refused cancellation (an empty ID) recorded nothing.
    assert_eq!(count("RequestCancelExternalWorkflowInitiated"), 2);
    // The signal to itself: the command, the signal in its own history
    // with the sender's request ID, then the outcome, in one commit.
    let sent = k
        .iter()
        .rposition(|k| k == "SignalExternalWorkflowInitiated")
        .unwrap();
    assert_eq!(
        k[sent + 1..sent + 3],
        ["WorkflowSignaledWithOptions", "ExternalWorkflowSignaled"],
        "{k:?}"
    );
    assert_eq!(request_ids(&history).len(), 1);
    support::assert_history_well_formed(&history);
    // Nothing reached the closed run.
    assert_eq!(
        request_ids(&engine.history("closed").await.unwrap()).len(),
        1
    );
    replayer()
        .replay(&engine.workflow_history("probe").await.unwrap())
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_run_asks_itself_to_cancel_and_ends_cancelled_the_same_on_replay() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let run = engine
        .start_workflow(SELF_CANCEL, "self", (), WorkflowOptions::default())
        .await
        .unwrap();
    let failure = match run.result().await {
        Err(steadfast::ResultError::Cancelled { failure, .. }) => failure,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        failure.message,
        "before false, own true, after true, timer cancelled true"
    );
    let history = engine.history("self").await.unwrap();
    support::assert_history_well_formed(&history);
    let k = kinds(&history);
    // The request, the run's own WorkflowCancelRequested and the outcome,
    // one after the other (one commit); then the close.
    let at = k
        .iter()
        .position(|k| k == "RequestCancelExternalWorkflowInitiated")
        .unwrap();
    assert_eq!(
        k[at + 1..at + 3],
        ["WorkflowCancelRequested", "ExternalWorkflowCancelRequested"],
        "{k:?}"
    );
    assert_eq!(k.last().map(String::as_str), Some("WorkflowCancelled"));
    let outcome_run = history.iter().find_map(|e| match e.kind {
        EventKind::ExternalWorkflowCancelRequested { run_id, .. } => Some(run_id),
        _ => None,
    });
    assert_eq!(outcome_run, Some(run.run_id()));
    // Replay takes the same path from the recorded events, also after a
    // round trip through JSON; and a reopened engine reads it alike.
    let saved = engine.workflow_history("self").await.unwrap();
    replayer().replay(&saved).unwrap();
    let back = steadfast::WorkflowHistory::from_json(&saved.to_json().unwrap()).unwrap();
    replayer().replay(&back).unwrap();
    engine.shutdown().await.unwrap();
    let engine = builder().open_db(&db.path).await.unwrap();
    assert!(matches!(
        engine
            .get_workflow_handle(SELF_CANCEL, "self")
            .await
            .unwrap()
            .result()
            .await,
        Err(steadfast::ResultError::Cancelled { .. })
    ));
    assert_eq!(engine.history("self").await.unwrap(), history);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_run_that_asks_itself_to_cancel_tells_its_running_activity() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let run = engine
        .start_workflow(
            SELF_CANCEL_ACTIVITY,
            "self-activity",
            (),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    // The running attempt is told while the run still runs.
    support::eventually(Duration::from_secs(10), || async {
        TOLD.load(std::sync::atomic::Ordering::SeqCst).then_some(())
    })
    .await;
    let d = engine.describe("self-activity").await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Running);
    engine
        .terminate("self-activity", "the test is done")
        .await
        .unwrap();
    assert!(matches!(
        run.result().await,
        Err(steadfast::ResultError::Terminated { .. })
    ));
    let history = engine.history("self-activity").await.unwrap();
    support::assert_history_well_formed(&history);
    let k = kinds(&history);
    let at = k
        .iter()
        .position(|k| k == "RequestCancelExternalWorkflowInitiated")
        .unwrap();
    assert_eq!(
        k[at + 1..],
        [
            "WorkflowCancelRequested",
            "ExternalWorkflowCancelRequested",
            "TimerStarted",
            "WorkflowTerminated"
        ],
        "{k:?}"
    );
    replayer()
        .replay(&engine.workflow_history("self-activity").await.unwrap())
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_child_handles_signal_never_reaches_a_new_workflow_that_reuses_a_closed_childs_id() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let parent = engine
        .start_workflow(REUSED_CHILD, "ru", (), WorkflowOptions::default())
        .await
        .unwrap();
    // The child's close reaches the parent before the parent waits for
    // `go` (its result is the parent's next wait).
    let child = support::eventually(Duration::from_secs(30), || async {
        engine.get_workflow_handle(RECEIVER, "ru/child").await.ok()
    })
    .await;
    assert_eq!(child.result().await.unwrap(), vec![4]);
    // Another workflow takes the closed child's ID (the default reuse
    // policy allows it).
    let stranger = engine
        .start_workflow(RECEIVER, "ru/child", (), WorkflowOptions::default())
        .await
        .unwrap();
    engine.signal("ru", GO, ()).await.unwrap();
    assert_eq!(parent.result().await.unwrap(), "[4] then not-found");
    engine.signal("ru/child", ITEM, LAST).await.unwrap();
    assert_eq!(stranger.result().await.unwrap(), Vec::<u32>::new());
    let history = engine.history("ru").await.unwrap();
    support::assert_history_well_formed(&history);
    // The handle's commands name the child's start and run.
    let first = history.iter().find_map(|e| match e.kind {
        EventKind::ChildWorkflowStarted { run_id, .. } => Some(run_id),
        _ => None,
    });
    let targets: Vec<Option<RunId>> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SignalChildWorkflowInitiated { run_id, .. } => Some(Some(*run_id)),
            _ => None,
        })
        .collect();
    assert_eq!(targets, vec![first; 3]);
    let k = kinds(&history);
    assert_eq!(
        k.iter()
            .filter(|k| *k == "SignalExternalWorkflowFailed")
            .count(),
        1
    );
    let saved = engine.workflow_history("ru").await.unwrap();
    replayer().replay(&saved).unwrap();
    // Histories of builds before store format 17, which recorded a
    // handle's signal as a signal to the child's ID (naming no run, and
    // later the child's first run), replay under today's code.
    for named in [false, true] {
        replayer()
            .replay(&as_before_format_17(&saved, named))
            .unwrap_or_else(|e| panic!("named run {named}: {e}"));
    }
    engine.shutdown().await.unwrap();
}

/// `history` as a build before store format 17 recorded it: each child
/// handle's signal as a `SignalExternalWorkflowInitiated` to the child's
/// workflow ID, naming the child's first run when `named` (as builds did
/// from the commit that made handles name it) and no run otherwise.
fn as_before_format_17(
    history: &steadfast::WorkflowHistory,
    named: bool,
) -> steadfast::WorkflowHistory {
    let mut older = history.clone();
    for event in &mut older.events {
        if let EventKind::SignalChildWorkflowInitiated {
            seq,
            workflow_id,
            run_id,
            signal_name,
            input,
            ..
        } = &event.kind
        {
            event.kind = EventKind::SignalExternalWorkflowInitiated {
                seq: *seq,
                workflow_id: workflow_id.clone(),
                run_id: named.then_some(*run_id),
                signal_name: signal_name.clone(),
                input: input.clone(),
            };
        }
    }
    older
}

/// Starts a continuing receiver as its child and signals it `1` through
/// its handle (the child then continues as new). Once `go` comes (the
/// test sends it when the child's second run is current), signals the
/// child's first run by its run ID, then the child through its handle,
/// and ends the child. Returns the first signal's outcome, whether the
/// handle's reached a later run than the first, and the child's result.
const FIRST_RUN_SIGNALLER: WorkflowDef<(), (String, bool, Vec<u32>)> =
    WorkflowDef::new("first_run_signaller");

async fn first_run_signaller(
    ctx: WorkflowContext,
    (): (),
) -> Result<(String, bool, Vec<u32>), WorkflowError> {
    let id = format!("{}/receiver", ctx.workflow_id());
    let child = ctx
        .start_child_workflow(
            CONTINUING_RECEIVER,
            id.clone(),
            Vec::new(),
            steadfast::ChildWorkflowOptions::new(),
        )
        .await?;
    let first = child.first_execution_run_id();
    child.signal(ITEM, 1).await?;
    ctx.recv_signal(GO).await?;
    let by_run = ctx.signal_external_workflow(id, Some(first), ITEM, 2).await;
    let by_handle = child.signal(ITEM, 3).await?;
    child.signal(ITEM, LAST).await?;
    let items = child.result().await?;
    Ok((outcome(by_run), by_handle != first, items))
}

#[tokio::test]
async fn a_signal_naming_a_childs_first_run_reaches_that_run_only_and_the_handles_its_successor() {
    let db = temp_db();
    let engine = builder()
        .workflow(FIRST_RUN_SIGNALLER, first_run_signaller)
        .open_db(&db.path)
        .await
        .unwrap();
    let parent = engine
        .start_workflow(FIRST_RUN_SIGNALLER, "fr", (), WorkflowOptions::default())
        .await
        .unwrap();
    // The child's first run got `1` and continued as new.
    support::eventually(Duration::from_secs(30), || async {
        let history = engine.history("fr/receiver").await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::WorkflowContinuedFrom { .. }))
            .then_some(())
    })
    .await;
    engine.signal("fr", GO, ()).await.unwrap();
    // As Temporal's signal to a run ID: the closed first run gets nothing
    // (its successor neither); the handle's signal reaches the successor.
    let (by_run, later, items) = parent.result().await.unwrap();
    assert_eq!(by_run, "closed:ContinuedAsNew");
    assert!(later);
    assert_eq!(items, [1, 3]);
    let history = engine.history("fr").await.unwrap();
    support::assert_history_well_formed(&history);
    let first = history.iter().find_map(|e| match e.kind {
        EventKind::ChildWorkflowStarted { run_id, .. } => Some(run_id),
        _ => None,
    });
    let commands: Vec<String> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SignalExternalWorkflowInitiated { run_id, .. } => {
                Some(format!("run {}", *run_id == first))
            }
            EventKind::SignalChildWorkflowInitiated {
                run_id, child_seq, ..
            } => Some(format!("child {} {child_seq}", Some(*run_id) == first)),
            _ => None,
        })
        .collect();
    assert_eq!(
        commands,
        ["child true 1", "run true", "child true 1", "child true 1"]
    );
    let saved = engine.workflow_history("fr").await.unwrap();
    let replayer = replayer().workflow(FIRST_RUN_SIGNALLER, first_run_signaller);
    replayer.replay(&saved).unwrap();
    // The same history under code that signals the child's ID instead of
    // its first run is a changed command.
    let changed = steadfast::Replayer::new().workflow(
        FIRST_RUN_SIGNALLER,
        |ctx: WorkflowContext, (): ()| async move {
            let id = format!("{}/receiver", ctx.workflow_id());
            let child = ctx
                .start_child_workflow(
                    CONTINUING_RECEIVER,
                    id.clone(),
                    Vec::new(),
                    steadfast::ChildWorkflowOptions::new(),
                )
                .await?;
            child.signal(ITEM, 1).await?;
            ctx.recv_signal(GO).await?;
            let _ = ctx.signal_external_workflow(id, None, ITEM, 2).await;
            Ok((String::new(), false, Vec::new()))
        },
    );
    let err = changed.replay(&saved).unwrap_err().to_string();
    assert!(err.contains("latest run"), "{err}");
    assert!(err.contains(&format!("run {}", first.unwrap())), "{err}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancellation_request_reaches_the_target_once_and_it_ends_cancelled() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let target = engine
        .start_workflow(SLEEPER, "sleepy", (), WorkflowOptions::default())
        .await
        .unwrap();
    let receiver = engine
        .start_workflow(RECEIVER, "rcv", (), WorkflowOptions::default())
        .await
        .unwrap();
    let run = engine
        .start_workflow(
            CANCELLER,
            "canceller",
            ("sleepy".to_string(), "rcv".to_string()),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 2);
    assert!(matches!(
        target.result().await,
        Err(steadfast::ResultError::Cancelled { .. })
    ));
    assert_eq!(receiver.result().await.unwrap(), vec![7]);
    let history = engine.history("sleepy").await.unwrap();
    let requests = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowCancelRequested { .. }))
        .count();
    assert_eq!(requests, 1, "a run asked twice gets one request");
    let sent = kinds(&engine.history("canceller").await.unwrap());
    assert_eq!(
        sent.iter()
            .filter(|k| *k == "ExternalWorkflowCancelRequested")
            .count(),
        2
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn histories_with_the_new_events_replay_round_trip_through_json_and_a_change_parks() {
    let db = temp_db();
    let mut seen = BTreeSet::new();
    {
        let engine = builder().open_db(&db.path).await.unwrap();
        let closed = engine
            .start_workflow(RECEIVER, "j-closed", (), WorkflowOptions::default())
            .await
            .unwrap();
        engine.signal("j-closed", ITEM, LAST).await.unwrap();
        closed.result().await.unwrap();
        let p = engine
            .start_workflow(
                PROBE,
                "j-probe",
                ("j-closed".to_string(), closed.run_id()),
                WorkflowOptions::default(),
            )
            .await
            .unwrap();
        p.result().await.unwrap();
        engine
            .start_workflow(SLEEPER, "j-sleepy", (), WorkflowOptions::default())
            .await
            .unwrap();
        let r = engine
            .start_workflow(RECEIVER, "j-rcv", (), WorkflowOptions::default())
            .await
            .unwrap();
        let c = engine
            .start_workflow(
                CANCELLER,
                "j-canceller",
                ("j-sleepy".to_string(), "j-rcv".to_string()),
                WorkflowOptions::default(),
            )
            .await
            .unwrap();
        c.result().await.unwrap();
        r.result().await.unwrap();
        for id in ["j-probe", "j-canceller", "j-rcv", "j-sleepy"] {
            let history = engine.workflow_history(id).await.unwrap();
            replayer()
                .replay(&history)
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            let json = history.to_json().unwrap();
            let back = steadfast::WorkflowHistory::from_json(&json).unwrap();
            assert_eq!(back, history, "{id}");
            assert_eq!(back.to_json().unwrap(), json, "{id}");
            replayer().replay(&back).unwrap();
            seen.extend(kinds(&history.events));
        }
        engine.shutdown().await.unwrap();
    }
    for wanted in [
        "SignalExternalWorkflowInitiated",
        "ExternalWorkflowSignaled",
        "SignalExternalWorkflowFailed",
        "RequestCancelExternalWorkflowInitiated",
        "ExternalWorkflowCancelRequested",
        "RequestCancelExternalWorkflowFailed",
    ] {
        assert!(seen.contains(wanted), "{wanted} in {seen:?}");
    }
    // Code that signals another workflow than its history records does not
    // replay: the report names the recorded command.
    let changed = steadfast::Replayer::new().workflow(
        CANCELLER,
        |ctx: WorkflowContext, (target, _): (String, String)| async move {
            ctx.signal_external_workflow(target, None, ITEM, 1).await?;
            Ok(0)
        },
    );
    let engine = builder().open_db(&db.path).await.unwrap();
    let err = changed
        .replay(&engine.workflow_history("j-canceller").await.unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("RequestCancelExternalWorkflowInitiated"),
        "{err}"
    );
    engine.shutdown().await.unwrap();
}

// ----- a live run whose replay differs is parked with the diff -----

/// Asks `target` to cancel, then waits for `go`.
const ASK_THEN_WAIT: WorkflowDef<String, u32> = WorkflowDef::new("ask_then_wait");

#[tokio::test]
async fn a_sender_whose_code_changes_its_command_is_parked_with_the_diff() {
    let db = temp_db();
    {
        let engine = builder()
            .workflow(
                ASK_THEN_WAIT,
                |ctx: WorkflowContext, target: String| async move {
                    ctx.cancel_external_workflow(target, None).await?;
                    Ok(ctx.recv_signal(ITEM).await?)
                },
            )
            .open_db(&db.path)
            .await
            .unwrap();
        engine
            .start_workflow(SLEEPER, "nd-target", (), WorkflowOptions::default())
            .await
            .unwrap();
        engine
            .start_workflow(
                ASK_THEN_WAIT,
                "nd",
                "nd-target".to_string(),
                WorkflowOptions::default(),
            )
            .await
            .unwrap();
        support::eventually(Duration::from_secs(10), || async {
            let h = engine.history("nd").await.unwrap();
            kinds(&h)
                .contains(&"ExternalWorkflowCancelRequested".to_string())
                .then_some(())
        })
        .await;
        engine.shutdown().await.unwrap();
    }
    let engine = builder()
        .workflow(
            ASK_THEN_WAIT,
            |ctx: WorkflowContext, target: String| async move {
                ctx.signal_external_workflow(target, None, ITEM, 1).await?;
                Ok(ctx.recv_signal(ITEM).await?)
            },
        )
        .open_db(&db.path)
        .await
        .unwrap();
    engine.signal("nd", ITEM, 5).await.unwrap();
    let reason = support::eventually(Duration::from_secs(10), || async {
        engine.describe("nd").await.unwrap().parked
    })
    .await;
    let text = reason.to_string();
    assert!(
        matches!(reason, steadfast::ParkReason::Nondeterminism(_)),
        "{text}"
    );
    assert!(
        text.contains("RequestCancelExternalWorkflowInitiated"),
        "{text}"
    );
    assert!(text.contains("SignalExternalWorkflowInitiated"), "{text}");
    engine.shutdown().await.unwrap();
}

// ----- kill -9 mid-way -----

const DB_ENV: &str = "STEADFAST_EXTERNAL_DB";
const LOG_ENV: &str = "STEADFAST_EXTERNAL_LOG";
const ITEMS: u32 = 200;

/// Appends the item to the log file, fsynced: the killer's progress.
const NOTE: ActivityDef<u32, ()> = ActivityDef::new("note");

async fn note(_ctx: ActivityContext, item: u32) -> Result<(), ActivityError> {
    let path = std::env::var_os(LOG_ENV).ok_or_else(|| ActivityError::non_retryable("no log"))?;
    support::append_synced(Path::new(&path), &item.to_string())?;
    Ok(())
}

/// Signals each item to `crash-receiver` and notes it, then sends `LAST`.
const NOTING_SENDER: WorkflowDef<u32, u32> = WorkflowDef::new("noting_sender");

async fn noting_sender(ctx: WorkflowContext, count: u32) -> Result<u32, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    for item in 0..count {
        ctx.signal_external_workflow("crash-receiver", None, ITEM, item)
            .await?;
        ctx.execute_activity(NOTE, item, options.clone()).await?;
    }
    ctx.signal_external_workflow("crash-receiver", None, ITEM, LAST)
        .await?;
    Ok(count)
}

fn crash_builder() -> EngineBuilder {
    builder()
        .workflow(NOTING_SENDER, noting_sender)
        .activity(NOTE, note)
}

#[tokio::test]
async fn crash_child_external_signals() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let engine = crash_builder().open_db(Path::new(&db)).await.unwrap();
    for (def_is_receiver, id) in [(true, "crash-receiver"), (false, "crash-sender")] {
        let started = if def_is_receiver {
            engine
                .start_workflow(RECEIVER, id, (), WorkflowOptions::default())
                .await
                .map(|_| ())
        } else {
            engine
                .start_workflow(NOTING_SENDER, id, ITEMS, WorkflowOptions::default())
                .await
                .map(|_| ())
        };
        match started {
            Ok(()) | Err(steadfast::ClientError::AlreadyStarted { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    child_report("started");
    let sender = engine
        .get_workflow_handle(NOTING_SENDER, "crash-sender")
        .await
        .unwrap();
    let sent = sender.result().await.unwrap();
    child_report(&format!("done {sent}"));
}

#[tokio::test]
async fn a_kill_9_at_any_moment_neither_loses_nor_duplicates_a_signal() {
    let db = temp_db();
    let log = db.path.with_extension("log");
    let env = [
        (DB_ENV, db.path.as_os_str() as &OsStr),
        (LOG_ENV, log.as_os_str() as &OsStr),
    ];
    let mut rng = support::SplitMix(support::seed_from_env("STEADFAST_EXTERNAL_SEED"));
    let mut mid_way = 0;
    for _ in 0..8 {
        let mut child = spawn_crash_child("crash_child_external_signals", &env);
        child
            .wait_for_line(Duration::from_secs(60), |l| l == "started")
            .await;
        let before = support::read_log(&log).len() as u64;
        let wanted = before + rng.between(1, 15);
        support::eventually(Duration::from_secs(60), || {
            let now = support::read_log(&log).len() as u64;
            let exited = child.lines().iter().any(|l| l.starts_with("done"));
            async move { (now >= wanted || exited).then_some(()) }
        })
        .await;
        if !child.lines().iter().any(|l| l.starts_with("done")) {
            mid_way += 1;
        }
        child.kill();
    }
    // The kills landed while signals were being sent, not after.
    assert!(mid_way >= 4, "only {mid_way} of 8 kills came mid-way");
    // SAFETY: set before this test's engine runs the activity that reads it.
    unsafe { std::env::set_var(LOG_ENV, &log) };
    let engine = crash_builder().open_db(&db.path).await.unwrap();
    let sender = engine
        .get_workflow_handle(NOTING_SENDER, "crash-sender")
        .await
        .unwrap();
    assert_eq!(sender.result().await.unwrap(), ITEMS);
    let receiver = engine
        .get_workflow_handle(RECEIVER, "crash-receiver")
        .await
        .unwrap();
    // Every item once, in order: none lost, none duplicated.
    assert_eq!(
        receiver.result().await.unwrap(),
        (0..ITEMS).collect::<Vec<_>>()
    );
    let got = engine.history("crash-receiver").await.unwrap();
    support::assert_history_well_formed(&got);
    let ids = request_ids(&got);
    assert_eq!(ids.len() as u32, ITEMS + 1);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "request IDs are distinct"
    );
    let sent = engine.history("crash-sender").await.unwrap();
    support::assert_history_well_formed(&sent);
    let k = kinds(&sent);
    assert_eq!(
        k.iter()
            .filter(|k| *k == "ExternalWorkflowSignaled")
            .count() as u32,
        ITEMS + 1
    );
    assert_eq!(
        engine.describe("crash-sender").await.unwrap().status,
        WorkflowStatus::Completed
    );
    engine.shutdown().await.unwrap();
}
