//! The deterministic replay state machine and nondeterminism detection.
//!
//! No tokio, no redb: the machine is driven with history events and hands
//! back the commands the workflow code issued. One resolution event is fed per
//! activation, and the code is polled until it waits again before the next
//! one, both live and on replay, so `select` and `join` see results in the
//! same order every time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::SystemTime;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::child::ChildWorkflowCancellationType;
use super::context::WorkflowContext;
use super::definition::{QueryFn, WorkflowFn, WorkflowFuture};
use super::error::NondeterminismError;
use super::seq_map::SeqMap;
use super::update::{self, Handlers, Polled, Refusal, Task};
use crate::history::{
    CarriedSignal, Event, EventKind, Failure, Payload, RunId, SearchAttributes, SignalDelivery,
    UnreadSignals,
};

/// Locks a mutex, ignoring poison: workflow panics are caught and park the
/// run, so a poisoned lock holds nothing half-updated that matters.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The outcome of a command, waiting to be taken by its future.
#[derive(Clone, Debug)]
pub(crate) enum Resolution {
    ActivityCompleted(Payload),
    ActivityFailed {
        attempt: u32,
        failure: Failure,
    },
    TimerFired,
    Cancelled,
    /// A child workflow's start was recorded (see [`super::child`]).
    ChildStarted(RunId),
    ChildStartFailed(crate::history::StartChildFailedCause),
    ChildCompleted(Payload),
    ChildClosed {
        status: crate::history::WorkflowStatus,
        failure: Failure,
    },
    /// This run cancelled a child and stops waiting for its close (its
    /// cancellation type is not wait-cancellation-completed).
    ChildCancelRequested,
    /// A signal or cancellation request sent to another workflow was
    /// delivered to this run, or not (see [`super::external`]).
    External(Result<RunId, crate::history::ExternalFailedCause>),
}

/// What kind of command a pending seq is, so that an outcome of the other
/// kind (a damaged or foreign history) is a nondeterminism, not a future
/// that never resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Awaited {
    Activity,
    Timer,
    /// Resolved by `LocalActivityRecorded` (as an activity's outcome).
    LocalActivity,
    /// A child workflow's start (keyed by the start's seq).
    ChildStart,
    /// A child workflow's close (keyed by [`super::child::result_key`]).
    ChildResult,
    /// A signal or cancellation request sent to another workflow.
    External,
}

impl Awaited {
    fn accepts(self, resolution: &Resolution) -> bool {
        match resolution {
            Resolution::ActivityCompleted(_) | Resolution::ActivityFailed { .. } => {
                matches!(self, Awaited::Activity | Awaited::LocalActivity)
            }
            Resolution::TimerFired => self == Awaited::Timer,
            Resolution::ChildStarted(_) | Resolution::ChildStartFailed(_) => {
                self == Awaited::ChildStart
            }
            Resolution::ChildCompleted(_)
            | Resolution::ChildClosed { .. }
            | Resolution::ChildCancelRequested => self == Awaited::ChildResult,
            Resolution::External(_) => self == Awaited::External,
            Resolution::Cancelled => true,
        }
    }

    fn describe(self, seq: u32) -> String {
        match self {
            Awaited::Activity => format!("an activity at seq {seq}"),
            Awaited::Timer => format!("a timer at seq {seq}"),
            Awaited::LocalActivity => format!("a local activity at seq {seq}"),
            Awaited::ChildStart => format!("a child workflow's start at seq {seq}"),
            Awaited::ChildResult => format!(
                "a child workflow's close at seq {}",
                super::child::seq_of(seq)
            ),
            Awaited::External => format!("a signal or cancel to another workflow at seq {seq}"),
        }
    }
}

/// State shared by a run's context, its futures and its machine.
pub(crate) struct RunCore {
    pub(crate) workflow_id: String,
    pub(crate) run_id: RunId,
    next_seq: u32,
    /// Time of the event being applied: `ctx.now()`.
    now: SystemTime,
    /// Seeded from the run ID, so `random` and `uuid` repeat on replay (in
    /// a reset run: from the ID of the run that recorded each stretch).
    rng: ChaCha8Rng,
    /// A reset run's seeds still to come: the run ID whose seed the events
    /// after each `WorkflowResetFrom` of its history were recorded with.
    seeds: VecDeque<RunId>,
    /// Command events of the history not yet matched by the code, in order.
    expected: VecDeque<Event>,
    /// Commands issued past the end of the history.
    new_commands: Vec<EventKind>,
    results: SeqMap<Resolution>,
    wakers: SeqMap<Waker>,
    patches: HashMap<String, bool>,
    nondeterminism: Option<NondeterminismError>,
    /// Activities and timers issued and not resolved: what a cancellation
    /// request resolves.
    pending: BTreeMap<u32, Awaited>,
    /// Signals received and not yet taken, by name, in arrival order,
    /// each with its arrival number (the order across names, for a
    /// continue-as-new that moves them).
    signals: HashMap<String, VecDeque<(u64, Payload)>>,
    /// Signals delivered so far: the next one's arrival number.
    signal_arrivals: u64,
    /// The run's task queue (from `WorkflowStarted`): a continue-as-new's
    /// unless it names another.
    pub(crate) task_queue: String,
    /// Events of the history as of the activation running (all of it up
    /// to the event that woke the code), and their approximate size.
    pub(crate) history_len: u64,
    pub(crate) history_bytes: u64,
    pub(crate) limits: super::HistoryLimits,
    signal_wakers: HashMap<String, Vec<Waker>>,
    /// Bumped when a cancellation request is applied; a signal wait created
    /// before it resolves as cancelled.
    cancel_epoch: u32,
    queries: HashMap<String, QueryFn>,
    /// Set once the workflow future is being dropped without having
    /// returned (a park, or the machine leaving memory): the futures it
    /// drops then record nothing, since the code did not drop them.
    torn_down: bool,
    /// The search attributes this run's code has upserted so far (merged),
    /// so that the run's attributes stay bounded however often it upserts.
    pub(crate) upserted: SearchAttributes,
    /// Local activities the code asked for, not yet taken by the engine
    /// (on replay too: one whose end the history lacks runs again).
    local_requests: Vec<super::LocalRequest>,
    /// Each local activity's type, by seq, to check its recorded end.
    local_types: SeqMap<String>,
    /// Local activities the code cancelled, with the cancellation type,
    /// not yet taken by the engine (on replay too: the engine must not
    /// run again one the code gave up on, nor leave one it waits for).
    local_cancels: Vec<(u32, crate::activity::ActivityCancellationType)>,
    /// The update and signal handlers the code registered.
    pub(crate) handlers: Handlers,
    /// Child workflows' closes once taken, by result key: every wait on
    /// one child's result sees it.
    child_results: SeqMap<Resolution>,
    /// The children the code asked to cancel, by start seq: the
    /// cancellation type each was asked with, and whether the ask was this
    /// run's own cancellation (its wait then ends as the parent's).
    cancelled_children: SeqMap<(ChildWorkflowCancellationType, bool)>,
    /// Each child's cancellation type, by start seq, as its start gave it
    /// (the code's, not recorded): what this run's own cancellation does
    /// to the child.
    child_cancellation_types: SeqMap<ChildWorkflowCancellationType>,
    /// What the schedule that started this run passed on
    /// (`WorkflowStartedBySchedule`): the last completion result and the
    /// last failure of its earlier actions.
    pub(crate) last_completion_result: Option<Payload>,
    pub(crate) last_failure: Option<Failure>,
}

impl std::fmt::Debug for RunCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCore")
            .field("workflow_id", &self.workflow_id)
            .field("run_id", &self.run_id)
            .field("next_seq", &self.next_seq)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// The random generator of a run whose code draws from `run_id`'s seed.
fn seeded(run_id: RunId) -> ChaCha8Rng {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&run_id.as_u128().to_le_bytes());
    seed[16..].copy_from_slice(&run_id.as_u128().to_be_bytes());
    ChaCha8Rng::from_seed(seed)
}

/// The seeds a run's history was recorded with, in order: the first one
/// seeds its code from the start, and each `WorkflowResetFrom` switches to
/// the next. A run never reset has one, its own ID. A reset run's events
/// before its (first) `WorkflowResetFrom` were recorded by the run that
/// event names as `seed_run_id`; after its last one, by the run itself.
pub(crate) fn seeds(run_id: RunId, history: &[Event]) -> VecDeque<RunId> {
    let mut seeds: VecDeque<RunId> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowResetFrom { seed_run_id, .. } => Some(*seed_run_id),
            _ => None,
        })
        .collect();
    seeds.push_back(run_id);
    seeds
}

impl RunCore {
    fn new(workflow_id: String, run_id: RunId, expected: VecDeque<Event>) -> Self {
        RunCore {
            workflow_id,
            run_id,
            next_seq: 1,
            now: SystemTime::UNIX_EPOCH,
            rng: seeded(run_id),
            seeds: VecDeque::new(),
            expected,
            new_commands: Vec::new(),
            results: SeqMap::default(),
            wakers: SeqMap::default(),
            patches: HashMap::new(),
            nondeterminism: None,
            pending: BTreeMap::new(),
            signals: HashMap::new(),
            signal_arrivals: 0,
            task_queue: String::new(),
            history_len: 0,
            history_bytes: 0,
            limits: super::HistoryLimits::default(),
            signal_wakers: HashMap::new(),
            cancel_epoch: 0,
            queries: HashMap::new(),
            torn_down: false,
            upserted: SearchAttributes::new(),
            local_requests: Vec::new(),
            local_types: SeqMap::default(),
            local_cancels: Vec::new(),
            handlers: Handlers::default(),
            child_results: SeqMap::default(),
            cancelled_children: SeqMap::default(),
            child_cancellation_types: SeqMap::default(),
            last_completion_result: None,
            last_failure: None,
        }
    }

    /// A child's close (under its result key), or registers the waker to
    /// be woken by it; kept once taken, so a later wait sees it too.
    pub(crate) fn child_result(&mut self, key: u32, waker: &Waker) -> Option<Resolution> {
        if let Some(resolution) = self.child_results.get(&key) {
            return Some(resolution.clone());
        }
        let resolution = self.take_resolution(key, waker)?;
        self.child_results.insert(key, resolution.clone());
        Some(resolution)
    }

    /// Notes the cancellation type child `seq` was started with.
    pub(crate) fn set_child_cancellation_type(
        &mut self,
        seq: u32,
        cancellation: ChildWorkflowCancellationType,
    ) {
        self.child_cancellation_types.insert(seq, cancellation);
    }

    /// Asks child `seq` to cancel as `cancellation` says, once: unless it
    /// abandons the child, the request is a command (delivered by the
    /// commit that records it); abandon and try-cancel stop the wait for
    /// the child's close at once. `by_parent` when this run's own
    /// cancellation asks: the wait then ends as
    /// [`Resolution::Cancelled`] (the parent's), else as
    /// [`Resolution::ChildCancelRequested`]. Nothing happens once the
    /// child's close is recorded, or when it was asked before.
    pub(crate) fn cancel_child(
        &mut self,
        seq: u32,
        cancellation: ChildWorkflowCancellationType,
        by_parent: bool,
    ) {
        let key = super::child::result_key(seq);
        if self.torn_down
            || !self.pending.contains_key(&key)
            || self.cancelled_children.contains_key(&seq)
        {
            return;
        }
        self.cancelled_children
            .insert(seq, (cancellation, by_parent));
        if cancellation != ChildWorkflowCancellationType::Abandon {
            let kind = EventKind::ChildWorkflowCancelRequested { seq };
            if by_parent {
                self.parent_cancel_command(kind);
            } else {
                self.command(kind);
            }
        }
        if matches!(
            cancellation,
            ChildWorkflowCancellationType::Abandon | ChildWorkflowCancellationType::TryCancel
        ) {
            self.stop_waiting_for_child(seq);
        }
    }

    /// Ends the wait for child `seq`'s close (it is recorded, not seen by
    /// the code): as the parent's cancellation when this run's own asked
    /// the child to cancel, else as the child's cancel request.
    fn stop_waiting_for_child(&mut self, seq: u32) {
        let key = super::child::result_key(seq);
        let resolution = match self.cancelled_children.get(&seq) {
            Some((_, true)) => Resolution::Cancelled,
            _ => Resolution::ChildCancelRequested,
        };
        if self.pending.remove(&key).is_some() {
            self.results.insert(key, resolution);
            if let Some(waker) = self.wakers.remove(&key) {
                waker.wake();
            }
        }
    }

    /// True when the code cancelled child `seq` waiting for the request
    /// to reach it.
    fn waits_for_child_cancel_request(&self, seq: u32) -> bool {
        self.cancelled_children.get(&seq).map(|(t, _)| *t)
            == Some(ChildWorkflowCancellationType::WaitCancellationRequested)
    }

    /// A child's cancellation request issued by this run's own
    /// cancellation, matched against the history when it records one. A
    /// history written before a run's cancellation asked its children
    /// through commands (store format 14 and older, whose engine asked
    /// every child after the commit, recording nothing) lacks it: there it
    /// is left out, as a timer cancellation such a history lacks.
    fn parent_cancel_command(&mut self, kind: EventKind) {
        if self.nondeterminism.is_some() {
            return;
        }
        let at = self
            .expected
            .iter()
            .position(|e| !matches!(e.kind, EventKind::PatchRecorded { .. }));
        match at.map(|i| (i, &self.expected[i].kind)) {
            None if self.expected.is_empty() => self.new_commands.push(kind),
            Some((i, recorded)) if *recorded == kind => {
                self.expected.drain(..=i);
            }
            _ => {}
        }
    }

    /// Marks an activity or timer as waiting for its outcome.
    pub(crate) fn track(&mut self, seq: u32, awaited: Awaited) {
        self.pending.insert(seq, awaited);
    }

    pub(crate) fn cancel_epoch(&self) -> u32 {
        self.cancel_epoch
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancel_epoch > 0
    }

    /// Takes the oldest signal of a name, or registers the waker for the next.
    pub(crate) fn take_signal(&mut self, name: &str, waker: &Waker) -> Option<Payload> {
        if let Some((_, payload)) = self.signals.get_mut(name).and_then(|q| q.pop_front()) {
            return Some(payload);
        }
        self.signal_wakers
            .entry(name.to_string())
            .or_default()
            .push(waker.clone());
        None
    }

    /// Takes the oldest signal of a name if one was delivered, without
    /// waiting: what the workflow has received by this point of its
    /// history, so the same on replay.
    pub(crate) fn try_take_signal(&mut self, name: &str) -> Option<Payload> {
        self.signals
            .get_mut(name)
            .and_then(|q| q.pop_front())
            .map(|(_, payload)| payload)
    }

    /// Takes the buffered signals of a name, for a handler registered now.
    pub(crate) fn take_buffered(&mut self, name: &str) -> VecDeque<(u64, Payload)> {
        self.signals.remove(name).unwrap_or_default()
    }

    /// Buffers again signals a handler could not take (their payload does
    /// not decode), ahead of any later ones.
    pub(crate) fn put_back(&mut self, name: &str, kept: Vec<(u64, Payload)>) {
        if kept.is_empty() {
            return;
        }
        let queue = self.signals.entry(name.to_string()).or_default();
        for signal in kept.into_iter().rev() {
            queue.push_front(signal);
        }
    }

    /// The signals delivered and not taken, in arrival order across names
    /// (what a continue-as-new moves to the next run).
    fn unread_in_order(&self) -> Vec<CarriedSignal> {
        let mut unread: Vec<(u64, CarriedSignal)> = self
            .signals
            .iter()
            .flat_map(|(name, queue)| {
                queue.iter().map(move |(n, input)| {
                    let signal = CarriedSignal {
                        signal_name: name.clone(),
                        input: input.clone(),
                    };
                    (*n, signal)
                })
            })
            .collect();
        unread.sort_by_key(|(n, _)| *n);
        unread.into_iter().map(|(_, s)| s).collect()
    }

    /// Counts an event into the history's length and approximate size.
    pub(crate) fn observe(&mut self, event: &Event) {
        self.history_len = event.event_id;
        self.history_bytes = self.history_bytes.saturating_add(event.kind.approx_bytes());
    }

    /// True once the history reached the limits at which continuing as new
    /// is suggested.
    pub(crate) fn continue_as_new_suggested(&self) -> bool {
        self.history_len >= self.limits.suggest_events
            || self.history_bytes >= self.limits.suggest_bytes
    }

    /// The signals delivered and not taken, by name in name order.
    fn unread_signals(&self) -> Vec<UnreadSignals> {
        let mut unread: Vec<UnreadSignals> = self
            .signals
            .iter()
            .filter(|(_, queue)| !queue.is_empty())
            .map(|(name, queue)| UnreadSignals {
                signal_name: name.clone(),
                count: queue.len() as u64,
            })
            .collect();
        unread.sort_by(|a, b| a.signal_name.cmp(&b.signal_name));
        unread
    }

    /// The code dropped (or cancelled) a timer's future before taking its
    /// outcome: a timer still pending is cancelled, as a command, so it is
    /// in history and replays alike; one that already fired is forgotten.
    pub(crate) fn cancel_timer(&mut self, seq: u32) {
        if self.torn_down {
            return;
        }
        self.results.remove(&seq);
        self.wakers.remove(&seq);
        if self.pending.remove(&seq).is_some() {
            self.command(EventKind::TimerCanceled { seq });
        }
    }

    /// The code cancelled activity `seq` with `cancellation`: unless it
    /// abandons it, the request is a command; unless it waits for the
    /// activity's end, the future resolves as cancelled now, and the
    /// activity's later outcome is not seen. Nothing happens for an
    /// activity already resolved.
    pub(crate) fn cancel_activity(
        &mut self,
        seq: u32,
        cancellation: crate::activity::ActivityCancellationType,
    ) {
        if self.torn_down || !self.pending.contains_key(&seq) {
            return;
        }
        if cancellation.requests() {
            self.command(EventKind::ActivityCancelRequested { seq });
        }
        if cancellation.resolves_at_once() {
            self.pending.remove(&seq);
            self.results.insert(seq, Resolution::Cancelled);
        }
    }

    /// The code asked for a local activity (tracked as pending already).
    pub(crate) fn request_local(&mut self, request: super::LocalRequest) {
        if self.torn_down {
            return;
        }
        self.local_types
            .insert(request.seq, request.activity_type.clone());
        self.local_requests.push(request);
    }

    /// The code cancelled local activity `seq` with `cancellation`: the
    /// engine is told (it tells the attempt, unless it abandons it); unless
    /// it waits for the activity's end, the future resolves as cancelled
    /// now. Nothing is recorded: the code cancels at the same point on
    /// replay. Nothing happens for one already resolved.
    pub(crate) fn cancel_local(
        &mut self,
        seq: u32,
        cancellation: crate::activity::ActivityCancellationType,
    ) {
        if self.torn_down || self.pending.get(&seq) != Some(&Awaited::LocalActivity) {
            return;
        }
        self.local_cancels.push((seq, cancellation));
        if cancellation.resolves_at_once() {
            self.pending.remove(&seq);
            self.results.insert(seq, Resolution::Cancelled);
        }
    }

    /// True while the code waits on something the engine resolves: an
    /// activity or timer not resolved yet, or a signal wait.
    fn outstanding(&self) -> bool {
        !self.pending.is_empty() || self.signal_wakers.values().any(|w| !w.is_empty())
    }

    pub(crate) fn set_query(&mut self, name: &str, handler: QueryFn) {
        self.queries.insert(name.to_string(), handler);
    }

    fn deliver_signal(&mut self, name: &str, input: Payload) {
        let arrival = self.signal_arrivals;
        self.signal_arrivals = arrival.saturating_add(1);
        self.signals
            .entry(name.to_string())
            .or_default()
            .push_back((arrival, input));
        for waker in self.signal_wakers.remove(name).unwrap_or_default() {
            waker.wake();
        }
    }

    fn deliver_cancel(&mut self) {
        self.cancel_epoch = self.cancel_epoch.saturating_add(1);
        // Each open child is asked to cancel as its cancellation type says
        // (Temporal's SDKs cancel a child with the scope it was started
        // in): the requests are commands, in seq order, and the waits for
        // the children's closes end (or not) as `cancel_child` says. A
        // delivery to another workflow has its outcome in the commit that
        // made it, so it is still awaited.
        let (kept, cancelled): (BTreeMap<u32, Awaited>, BTreeMap<u32, Awaited>) =
            std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|(_, awaited)| {
                    matches!(awaited, Awaited::ChildResult | Awaited::External)
                });
        self.pending = kept;
        let children: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, awaited)| **awaited == Awaited::ChildResult)
            .map(|(key, _)| super::child::seq_of(*key))
            .collect();
        for seq in children {
            let cancellation = self
                .child_cancellation_types
                .get(&seq)
                .copied()
                .unwrap_or_default();
            self.cancel_child(seq, cancellation, true);
        }
        for seq in cancelled.into_keys() {
            self.resolve(seq, Resolution::Cancelled);
        }
        for (_, wakers) in self.signal_wakers.drain() {
            for waker in wakers {
                waker.wake();
            }
        }
    }

    /// True once the code did something its history does not record.
    pub(crate) fn diverged(&self) -> bool {
        self.nondeterminism.is_some()
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.now
    }

    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    pub(crate) fn fill_random(&mut self, bytes: &mut [u8]) {
        self.rng.fill_bytes(bytes)
    }

    /// Records a command. On replay it is checked against the history and the
    /// recorded event is returned; past the history's end it is kept as new.
    pub(crate) fn command(&mut self, kind: EventKind) -> Option<EventKind> {
        if self.nondeterminism.is_some() {
            return None;
        }
        if let EventKind::TimerCanceled { seq } = kind {
            return self.cancel_command(seq);
        }
        // Markers of patches the code no longer checks (deprecated patches)
        // are skipped, as Temporal's SDKs do.
        while let Some(front) = self.expected.front() {
            let skippable = matches!(front.kind, EventKind::PatchRecorded { .. })
                && !matches!(kind, EventKind::PatchRecorded { .. });
            if !skippable {
                break;
            }
            self.expected.pop_front();
        }
        match self.expected.pop_front() {
            None => {
                self.new_commands.push(kind);
                None
            }
            Some(event) if same_command(&event.kind, &kind) => Some(event.kind),
            Some(event) => {
                self.nondeterminism = Some(NondeterminismError {
                    workflow_id: self.workflow_id.clone(),
                    run_id: self.run_id,
                    event_id: event.event_id,
                    history: event.kind.describe(),
                    code: kind.describe(),
                });
                None
            }
        }
    }

    /// A timer cancellation, matched against the history when it records
    /// one. A history written before cancellations were recorded (format 2
    /// and older) has none: there the timer simply stayed pending, so a
    /// cancellation it does not hold is not a nondeterminism error; it is
    /// left out, and the timer's later firing changes nothing.
    fn cancel_command(&mut self, seq: u32) -> Option<EventKind> {
        let kind = EventKind::TimerCanceled { seq };
        // Deprecated patch markers before it are skipped, as for any
        // other command.
        let at = self
            .expected
            .iter()
            .position(|e| !matches!(e.kind, EventKind::PatchRecorded { .. }));
        match at.map(|i| (i, &self.expected[i].kind)) {
            None if self.expected.is_empty() => {
                self.new_commands.push(kind);
                None
            }
            Some((i, recorded)) if *recorded == kind => {
                self.expected.drain(..i);
                self.expected.pop_front().map(|e| e.kind)
            }
            _ => None,
        }
    }

    /// Puts the real value into a side-effect command issued live with a
    /// placeholder (the closure runs only once the command is known to be new).
    pub(crate) fn replace_last_side_effect(&mut self, seq: u32, payload: Payload) {
        if let Some(EventKind::SideEffectRecorded { seq: s, value }) = self.new_commands.last_mut()
            && *s == seq
        {
            *value = payload;
        }
    }

    /// `ctx.patched`: true on new executions and on histories recorded with
    /// the patch; false on histories recorded before it.
    pub(crate) fn patched(&mut self, patch_id: &str) -> bool {
        if let Some(&known) = self.patches.get(patch_id) {
            return known;
        }
        let value = match self.expected.front().map(|e| &e.kind) {
            Some(EventKind::PatchRecorded { patch_id: recorded }) if recorded == patch_id => {
                self.expected.pop_front();
                true
            }
            Some(_) => false,
            None => {
                self.new_commands.push(EventKind::PatchRecorded {
                    patch_id: patch_id.to_string(),
                });
                true
            }
        };
        self.patches.insert(patch_id.to_string(), value);
        value
    }

    /// Takes a command's outcome, or registers the waker to be woken by it.
    pub(crate) fn take_resolution(&mut self, seq: u32, waker: &Waker) -> Option<Resolution> {
        match self.results.remove(&seq) {
            Some(r) => Some(r),
            None => {
                if self.nondeterminism.is_none() {
                    self.wakers.insert(seq, waker.clone());
                }
                None
            }
        }
    }

    fn resolve(&mut self, seq: u32, resolution: Resolution) {
        if !matches!(resolution, Resolution::Cancelled) && self.pending.remove(&seq).is_none() {
            // An outcome for a command already resolved as cancelled.
            return;
        }
        self.results.insert(seq, resolution);
        if let Some(waker) = self.wakers.remove(&seq) {
            waker.wake();
        }
    }
}

fn same_command(history: &EventKind, code: &EventKind) -> bool {
    use EventKind::*;
    match (history, code) {
        (
            ActivityScheduled {
                seq: a,
                activity_type: ta,
                ..
            },
            ActivityScheduled {
                seq: b,
                activity_type: tb,
                ..
            },
        ) => a == b && ta == tb,
        (TimerStarted { seq: a, .. }, TimerStarted { seq: b, .. }) => a == b,
        (TimerCanceled { seq: a }, TimerCanceled { seq: b }) => a == b,
        (ActivityCancelRequested { seq: a }, ActivityCancelRequested { seq: b }) => a == b,
        // The seq, type and ID; not the input nor the options, as for an
        // activity.
        (
            StartChildWorkflowInitiated {
                seq: a,
                workflow_type: ta,
                workflow_id: ia,
                ..
            },
            StartChildWorkflowInitiated {
                seq: b,
                workflow_type: tb,
                workflow_id: ib,
                ..
            },
        ) => a == b && ta == tb && ia == ib,
        (ChildWorkflowCancelRequested { seq: a }, ChildWorkflowCancelRequested { seq: b }) => {
            a == b
        }
        // The seq, the target (its run ID, or none) and the signal's name;
        // not the input.
        (
            SignalExternalWorkflowInitiated {
                seq: a,
                workflow_id: ia,
                run_id: ra,
                signal_name: na,
                ..
            },
            SignalExternalWorkflowInitiated {
                seq: b,
                workflow_id: ib,
                run_id: rb,
                signal_name: nb,
                ..
            },
        ) => a == b && ia == ib && ra == rb && na == nb,
        (
            SignalChildWorkflowInitiated {
                seq: a,
                child_seq: ca,
                workflow_id: ia,
                run_id: ra,
                signal_name: na,
                ..
            },
            SignalChildWorkflowInitiated {
                seq: b,
                child_seq: cb,
                workflow_id: ib,
                run_id: rb,
                signal_name: nb,
                ..
            },
        ) => a == b && ca == cb && ia == ib && ra == rb && na == nb,
        // A child handle's signal as builds before store format 17
        // recorded it: as a signal to the child's workflow ID, naming no
        // run (before the handles named one) or the child's first run.
        // Such a history replays under today's handle; it cannot be told
        // from code that signalled the child's ID (or first run) itself.
        (
            SignalExternalWorkflowInitiated {
                seq: a,
                workflow_id: ia,
                run_id: ra,
                signal_name: na,
                ..
            },
            SignalChildWorkflowInitiated {
                seq: b,
                workflow_id: ib,
                run_id: rb,
                signal_name: nb,
                ..
            },
        ) => a == b && ia == ib && ra.is_none_or(|r| r == *rb) && na == nb,
        (
            RequestCancelExternalWorkflowInitiated {
                seq: a,
                workflow_id: ia,
                run_id: ra,
            },
            RequestCancelExternalWorkflowInitiated {
                seq: b,
                workflow_id: ib,
                run_id: rb,
            },
        ) => a == b && ia == ib && ra == rb,
        (SideEffectRecorded { seq: a, .. }, SideEffectRecorded { seq: b, .. }) => a == b,
        // The update, not its outcome (as an activity's type, not its result).
        (
            WorkflowUpdateCompleted { update_id: a, .. },
            WorkflowUpdateCompleted { update_id: b, .. },
        ) => a == b,
        (PatchRecorded { patch_id: a }, PatchRecorded { patch_id: b }) => a == b,
        (WorkflowCompleted { .. }, WorkflowCompleted { .. }) => true,
        (WorkflowFailed { .. }, WorkflowFailed { .. }) => true,
        (WorkflowCancelled { .. }, WorkflowCancelled { .. }) => true,
        // The type, not the input nor the run ID the engine gave the next run.
        (
            WorkflowContinuedAsNew {
                workflow_type: a, ..
            },
            WorkflowContinuedAsNew {
                workflow_type: b, ..
            },
        ) => a == b,
        // The names, not the values: like an activity's type, not its input.
        (
            SearchAttributesUpserted { attributes: a },
            SearchAttributesUpserted { attributes: b },
        ) => a
            .iter()
            .map(|(name, _)| name)
            .eq(b.iter().map(|(name, _)| name)),
        _ => false,
    }
}

/// Why a run is parked instead of making progress. Nothing is discarded; the
/// run resumes when the engine is opened with code that fixes the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParkReason {
    /// The code does not match the history.
    #[error(transparent)]
    Nondeterminism(#[from] NondeterminismError),
    /// The workflow code panicked.
    #[error("workflow code panicked: {0}; fix the code and open the engine again")]
    Panic(String),
    /// The workflow cannot be started from its history.
    #[error("{0}")]
    Unrunnable(String),
    /// The disk holding the file is full, so the run's progress could not be
    /// stored (nothing acknowledged is lost). Unlike the other reasons this
    /// needs no new code and no reopening: the run resumes by itself, from
    /// its last durable step, once space is freed on that disk.
    #[error(
        "the disk holding the file is full ({0}); the run resumes by itself from its last \
         durable step once space is freed on that disk"
    )]
    DiskFull(String),
    /// Storing the run's progress failed with an I/O error (nothing
    /// acknowledged is lost). As with a full disk, the run resumes by
    /// itself from its last durable step once the file can be written.
    #[error(
        "storing the run's progress failed ({0}); the run resumes by itself from its last \
         durable step once the file can be written again"
    )]
    Storage(String),
    /// The workflow code awaits a future that is not the context's
    /// (`tokio::time::sleep`, a channel, I/O): the engine cannot resolve
    /// it, and replay could not repeat it.
    #[error(
        "the workflow code awaits a future that is not its context's ({0}); it would hang \
         or replay differently. Await only the context's futures (ctx.sleep instead of \
         tokio::time::sleep, ctx.recv_signal instead of a channel, an activity for I/O), \
         then open the engine again"
    )]
    ForeignFuture(String),
}

/// Called when the workflow's waker is woken outside an activation.
pub(crate) type ForeignWake = Arc<dyn Fn() + Send + Sync>;

/// The waker of a run's workflow code. The engine's own futures wake it
/// only while the machine applies an event; a wake at any other time
/// comes from a future that is not the context's.
#[derive(Default)]
struct WakeFlag {
    woken: AtomicBool,
    /// True while the machine applies an event or polls the code.
    activating: AtomicBool,
    /// Set by the first wake outside an activation.
    foreign: AtomicBool,
    on_foreign: Mutex<Option<ForeignWake>>,
}

impl WakeFlag {
    fn woken(initially: bool) -> Self {
        WakeFlag {
            woken: AtomicBool::new(initially),
            ..WakeFlag::default()
        }
    }

    fn wake_flag(&self) {
        self.woken.store(true, Ordering::SeqCst);
        if !self.activating.load(Ordering::SeqCst) && !self.foreign.swap(true, Ordering::SeqCst) {
            let notify = lock(&self.on_foreign).clone();
            if let Some(notify) = notify {
                notify();
            }
        }
    }
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_flag();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_flag();
    }
}

/// Marks the machine as activating while it lives (nested ones restore
/// what they found).
struct Activating {
    flag: Arc<WakeFlag>,
    was: bool,
}

impl Activating {
    fn new(flag: &Arc<WakeFlag>) -> Self {
        let was = flag.activating.swap(true, Ordering::SeqCst);
        Activating {
            flag: flag.clone(),
            was,
        }
    }
}

impl Drop for Activating {
    fn drop(&mut self) {
        self.flag.activating.store(self.was, Ordering::SeqCst);
    }
}

/// One run's workflow code, driven event by event.
pub(crate) struct WorkflowMachine {
    core: Arc<Mutex<RunCore>>,
    root: Option<WorkflowFuture>,
    woken: Arc<WakeFlag>,
    parked: Option<ParkReason>,
    /// Update and signal handlers running beside the main code, in the
    /// order they began.
    tasks: Vec<Task>,
    /// How the code ended the run (its close command as the code issued
    /// it, not as history recorded it): the replayer compares the two.
    finished: Option<EventKind>,
}

impl std::fmt::Debug for WorkflowMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowMachine")
            .field("parked", &self.parked)
            .field("running", &self.root.is_some())
            .finish()
    }
}

impl Drop for WorkflowMachine {
    fn drop(&mut self) {
        self.tear_down();
        // Handlers may hold a context (so the core): dropped here, outside
        // the lock, so that nothing keeps the core alive in a cycle.
        let handlers = std::mem::take(&mut lock(&self.core).handlers);
        drop(handlers);
    }
}

impl WorkflowMachine {
    /// Replays `history` (which starts with `WorkflowStarted`) through the
    /// workflow code. Commands issued past the end of the history are left in
    /// [`take_commands`](Self::take_commands).
    pub(crate) fn replay(workflow: &WorkflowFn, run_id: RunId, history: &[Event]) -> Self {
        Self::replay_with(workflow, run_id, history, super::HistoryLimits::default())
    }

    /// [`replay`](Self::replay) with the history sizes at which the code is
    /// told to continue as new.
    pub(crate) fn replay_with(
        workflow: &WorkflowFn,
        run_id: RunId,
        history: &[Event],
        limits: super::HistoryLimits,
    ) -> Self {
        let (started, rest) = match history.split_first() {
            Some((
                e @ Event {
                    kind: EventKind::WorkflowStarted { .. },
                    ..
                },
                rest,
            )) => (e, rest),
            _ => {
                return Self::unrunnable(run_id, "history does not begin with WorkflowStarted");
            }
        };
        let EventKind::WorkflowStarted {
            workflow_id,
            input,
            task_queue,
            ..
        } = &started.kind
        else {
            return Self::unrunnable(run_id, "history does not begin with WorkflowStarted");
        };
        let expected = rest
            .iter()
            .filter(|e| e.kind.is_command())
            .cloned()
            .collect();
        let mut core = RunCore::new(workflow_id.clone(), run_id, expected);
        core.seeds = seeds(run_id, history);
        if let Some(first) = core.seeds.pop_front() {
            core.rng = seeded(first);
        }
        let core = Arc::new(Mutex::new(core));
        // The signal of a signal-with-start is there before the code first
        // runs (Temporal's signal-with-start: it is in the first workflow
        // task), so a value set from it is visible from the first line.
        let mut rest = rest;
        {
            let mut core = lock(&core);
            core.now = started.timestamp;
            core.task_queue = task_queue.clone();
            core.limits = limits;
            core.observe(started);
            // A continued run's link to its predecessor, and the signals
            // moved to it, come before its code runs too.
            while let Some((first, tail)) = rest.split_first() {
                match &first.kind {
                    EventKind::WorkflowSignaledWithOptions {
                        signal_name,
                        input,
                        delivery: SignalDelivery::BeforeStart,
                        ..
                    } => core.deliver_signal(signal_name, input.clone()),
                    EventKind::WorkflowContinuedFrom { .. }
                    | EventKind::WorkflowStartedAsChild { .. } => {}
                    EventKind::WorkflowStartedBySchedule {
                        last_completion_result,
                        last_failure,
                        ..
                    } => {
                        core.last_completion_result = last_completion_result.clone();
                        core.last_failure = last_failure.clone();
                    }
                    _ => break,
                }
                core.observe(first);
                rest = tail;
            }
        }
        let ctx = WorkflowContext::new(core.clone());
        let mut machine = WorkflowMachine {
            core,
            root: None,
            woken: Arc::new(WakeFlag::woken(true)),
            parked: None,
            tasks: Vec::new(),
            finished: None,
        };
        match catch_unwind(AssertUnwindSafe(|| workflow(ctx, input))) {
            Ok(Ok(root)) => machine.root = Some(root),
            Ok(Err(e)) => {
                machine.parked = Some(ParkReason::Unrunnable(format!(
                    "the workflow input does not decode: {e}"
                )));
                return machine;
            }
            Err(panic) => {
                machine.parked = Some(ParkReason::Panic(crate::panic::message(&*panic)));
                return machine;
            }
        }
        machine.poll();
        for event in rest {
            if machine.parked.is_some() {
                break;
            }
            machine.observe(event);
            machine.apply(event);
        }
        machine.carry_late_signals();
        machine.check_history_consumed();
        machine
    }

    /// A continue-as-new the code issued before the end of its history
    /// (so not recorded yet) moves the signals the history holds after
    /// that point too: they arrived while the close was being committed,
    /// which the store then refused (the run reloaded from the file), and
    /// belong to the next run, after those unread at the close, in order.
    fn carry_late_signals(&mut self) {
        let mut core = lock(&self.core);
        let unread = core.unread_in_order();
        let late = |kind: Option<&mut EventKind>| {
            if let Some(EventKind::WorkflowContinuedAsNew { signals, .. }) = kind
                && signals.len() < unread.len()
            {
                *signals = unread.clone();
            }
        };
        let new = matches!(
            core.new_commands.last(),
            Some(EventKind::WorkflowContinuedAsNew { .. })
        );
        if new {
            late(core.new_commands.last_mut());
            late(self.finished.as_mut());
        }
    }

    fn unrunnable(run_id: RunId, message: &str) -> Self {
        Self::parked_with(run_id, ParkReason::Unrunnable(message.to_string()))
    }

    /// A machine that cannot run code, for a run whose workflow type is not
    /// registered; its activities and timers still complete and are recorded.
    pub(crate) fn parked_with(run_id: RunId, reason: ParkReason) -> Self {
        WorkflowMachine {
            core: Arc::new(Mutex::new(RunCore::new(
                String::new(),
                run_id,
                VecDeque::new(),
            ))),
            root: None,
            woken: Arc::new(WakeFlag::woken(false)),
            parked: Some(reason),
            tasks: Vec::new(),
            finished: None,
        }
    }

    /// Counts an event into the history length and size the code sees
    /// (every event, in history order, before it is applied).
    pub(crate) fn observe(&mut self, event: &Event) {
        lock(&self.core).observe(event);
    }

    /// Feeds one event. Results and timer firings wake the code, which runs
    /// until it waits again; other events need no activation.
    pub(crate) fn apply(&mut self, event: &Event) {
        let _activating = Activating::new(&self.woken);
        let resolution = match &event.kind {
            EventKind::ActivityCompleted { seq, result, .. } => {
                (*seq, Resolution::ActivityCompleted(result.clone()))
            }
            EventKind::ActivityFailed {
                seq,
                attempt,
                failure,
                next_attempt_at: None,
            } => (
                *seq,
                Resolution::ActivityFailed {
                    attempt: *attempt,
                    failure: failure.clone(),
                },
            ),
            EventKind::TimerFired { seq } => (*seq, Resolution::TimerFired),
            // Not an activation: the code goes on waiting for the end.
            EventKind::LocalActivityBackoff {
                seq, activity_type, ..
            } => {
                self.check_local(event, *seq, activity_type);
                return;
            }
            EventKind::LocalActivityRecorded {
                seq,
                activity_type,
                attempt,
                result,
            } => {
                if !self.check_local(event, *seq, activity_type) {
                    return;
                }
                let resolution = match result {
                    Ok(value) => Resolution::ActivityCompleted(value.clone()),
                    Err(failure) => Resolution::ActivityFailed {
                        attempt: *attempt,
                        failure: failure.clone(),
                    },
                };
                (*seq, resolution)
            }
            kind @ (EventKind::ChildWorkflowStarted { .. }
            | EventKind::StartChildWorkflowFailed { .. }
            | EventKind::ChildWorkflowCompleted { .. }
            | EventKind::ChildWorkflowClosed { .. }) => match super::child::resolution(kind) {
                Some(resolution) => resolution,
                None => return,
            },
            // The outcome of a child's cancellation request (keyed by the
            // child's seq, which no external command has): it ends a wait
            // of type wait-cancellation-requested; a failure (the child had
            // closed) leaves it to the child's close.
            EventKind::ExternalWorkflowCancelRequested { seq, .. }
            | EventKind::RequestCancelExternalWorkflowFailed { seq, .. }
                if lock(&self.core).pending.get(seq) != Some(&Awaited::External) =>
            {
                let delivered = matches!(
                    event.kind,
                    EventKind::ExternalWorkflowCancelRequested { .. }
                );
                let mut core = lock(&self.core);
                if delivered && core.waits_for_child_cancel_request(*seq) {
                    core.now = event.timestamp;
                    core.stop_waiting_for_child(*seq);
                    drop(core);
                    self.poll();
                }
                return;
            }
            kind @ (EventKind::ExternalWorkflowSignaled { .. }
            | EventKind::SignalExternalWorkflowFailed { .. }
            | EventKind::ExternalWorkflowCancelRequested { .. }
            | EventKind::RequestCancelExternalWorkflowFailed { .. }) => {
                match super::external::resolution(kind) {
                    Some(resolution) => resolution,
                    None => return,
                }
            }
            kind @ (EventKind::WorkflowSignaled { .. }
            | EventKind::WorkflowSignaledWithOptions { .. }) => {
                let Some((signal_name, input)) = kind.signal() else {
                    return;
                };
                let handler = {
                    let mut core = lock(&self.core);
                    core.now = event.timestamp;
                    core.handlers.signals.get(signal_name).cloned()
                };
                // A name with a handler starts a task (outside the lock:
                // making its future is user code); one that does not
                // decode stays buffered, as does a name without one.
                let ctx = WorkflowContext::new(self.core.clone());
                let started =
                    handler.map(|start| catch_unwind(AssertUnwindSafe(|| start(ctx, input))));
                match started {
                    Some(Ok(Ok(future))) => {
                        self.tasks.push(Task {
                            kind: update::TaskKind::Signal,
                            future,
                        });
                        self.woken.woken.store(true, Ordering::SeqCst);
                    }
                    Some(Err(panic)) => {
                        self.tear_down();
                        self.parked = Some(ParkReason::Panic(crate::panic::message(&*panic)));
                        return;
                    }
                    Some(Ok(Err(_))) | None => {
                        lock(&self.core).deliver_signal(signal_name, input.clone())
                    }
                }
                // A signal delivered with the next event wakes the code
                // only with that event, so it sees both at once.
                let with_next = matches!(
                    kind,
                    EventKind::WorkflowSignaledWithOptions {
                        delivery: SignalDelivery::WithNext,
                        ..
                    }
                );
                if !with_next {
                    self.poll();
                }
                return;
            }
            EventKind::WorkflowCancelRequested { .. } => {
                let mut core = lock(&self.core);
                core.now = event.timestamp;
                core.deliver_cancel();
                drop(core);
                self.poll();
                return;
            }
            EventKind::WorkflowUpdateAccepted {
                update_id,
                update_name,
                input,
            } => {
                self.start_update(event, update_id, update_name, input);
                return;
            }
            // The copy a reset made ends here: what the code draws from now
            // on comes from the next recorder's seed (Temporal re-seeds
            // after a reset too). Not an activation.
            EventKind::WorkflowResetFrom { .. } => {
                let mut core = lock(&self.core);
                if let Some(next) = core.seeds.pop_front() {
                    core.rng = seeded(next);
                }
                return;
            }
            _ => return,
        };
        {
            let mut core = lock(&self.core);
            if let Some(awaited) = core.pending.get(&resolution.0).copied()
                && !awaited.accepts(&resolution.1)
            {
                let nde = NondeterminismError {
                    workflow_id: core.workflow_id.clone(),
                    run_id: core.run_id,
                    event_id: event.event_id,
                    history: event.kind.describe(),
                    code: awaited.describe(resolution.0),
                };
                drop(core);
                self.tear_down();
                self.parked = Some(nde.into());
                return;
            }
            core.now = event.timestamp;
            let started = matches!(resolution.1, Resolution::ChildStarted(_))
                && core.pending.contains_key(&resolution.0);
            core.resolve(resolution.0, resolution.1);
            // A started child's close is awaited from now on.
            if started {
                core.track(super::child::result_key(resolution.0), Awaited::ChildResult);
            }
        }
        self.poll();
    }

    /// Checks that the code asked for local activity `seq` of this type,
    /// as a local activity's event says; parks the run when it did not.
    fn check_local(&mut self, event: &Event, seq: u32, activity_type: &str) -> bool {
        let core = lock(&self.core);
        let asked = core.local_types.get(&seq);
        if asked.map(String::as_str) == Some(activity_type) {
            return true;
        }
        let nde = NondeterminismError {
            workflow_id: core.workflow_id.clone(),
            run_id: core.run_id,
            event_id: event.event_id,
            history: event.kind.describe(),
            code: match asked {
                Some(other) => format!("a local activity {other:?} at seq {seq}"),
                None => format!("no local activity at seq {seq}"),
            },
        };
        drop(core);
        self.tear_down();
        self.parked = Some(nde.into());
        false
    }

    /// Starts the handler of an accepted update, then runs the code.
    fn start_update(&mut self, event: &Event, update_id: &str, name: &str, input: &Payload) {
        let handler = {
            let mut core = lock(&self.core);
            core.now = event.timestamp;
            core.handlers.updates.get(name).cloned()
        };
        let Some(handler) = handler else {
            let core = lock(&self.core);
            let nde = NondeterminismError {
                workflow_id: core.workflow_id.clone(),
                run_id: core.run_id,
                event_id: event.event_id,
                history: event.kind.describe(),
                code: format!("no handler for update {name:?} (ctx.handle_update)"),
            };
            drop(core);
            self.tear_down();
            self.parked = Some(nde.into());
            return;
        };
        let ctx = WorkflowContext::new(self.core.clone());
        let started = catch_unwind(AssertUnwindSafe(|| {
            update::start_update(&handler, ctx, update_id, input)
        }));
        match started {
            Ok(task) => self.tasks.push(task),
            Err(panic) => {
                self.tear_down();
                self.parked = Some(ParkReason::Panic(crate::panic::message(&*panic)));
                return;
            }
        }
        self.woken.woken.store(true, Ordering::SeqCst);
        self.poll();
    }

    /// Runs the validator of update `name` on `input`, live, before the
    /// update is accepted; nothing is recorded.
    pub(crate) fn validate_update(&self, name: &str, input: &Payload) -> Result<(), Refusal> {
        let handler = lock(&self.core).handlers.updates.get(name).cloned();
        match handler {
            Some(handler) => update::validate(&handler, input),
            None => Err(Refusal::Unknown),
        }
    }

    /// Takes the handler tasks the code started during its last poll.
    fn adopt_tasks(&mut self) -> bool {
        let spawned = std::mem::take(&mut lock(&self.core).handlers.spawned);
        let any = !spawned.is_empty();
        self.tasks.extend(spawned);
        any
    }

    fn poll(&mut self) {
        let waker = Waker::from(self.woken.clone());
        let mut cx = Context::from_waker(&waker);
        let _activating = Activating::new(&self.woken);
        while self.parked.is_none() && self.woken.woken.swap(false, Ordering::SeqCst) {
            if self.root.is_none() {
                return;
            }
            // Handlers first, in the order they began: each runs before
            // the main code continues, live and on replay alike.
            self.adopt_tasks();
            let outcome = match update::poll_tasks(&mut self.tasks, &self.core, &mut cx) {
                Polled::Fine => match self.root.as_mut() {
                    Some(root) => catch_unwind(AssertUnwindSafe(|| root.as_mut().poll(&mut cx))),
                    None => return,
                },
                Polled::WorkflowFailed(e) => Ok(Poll::Ready(Err(e))),
                Polled::Panicked(panic) => Err(panic),
            };
            // Handlers the code started meanwhile run before it goes on.
            if self.adopt_tasks() {
                self.woken.woken.store(true, Ordering::SeqCst);
            }
            match outcome {
                Ok(Poll::Pending) => {}
                Ok(Poll::Ready(result)) => {
                    self.root = None;
                    // Handlers still running end with the run (updates
                    // among them are aborted for their callers); what
                    // they drop is recorded before the close.
                    self.tasks.clear();
                    let mut core = lock(&self.core);
                    // Past the end of the history (live), signals the code
                    // never read are recorded with the close: never dropped
                    // silently. On replay the history already holds them.
                    // A continue-as-new moves them to the next run instead.
                    let mut result = result;
                    let continuing = match &mut result {
                        Err(e) => e.take_continue_as_new(),
                        Ok(_) => None,
                    };
                    let unread = core.unread_signals();
                    if !unread.is_empty()
                        && continuing.is_none()
                        && core.expected.is_empty()
                        && core.nondeterminism.is_none()
                    {
                        core.new_commands
                            .push(EventKind::SignalsUnread { signals: unread });
                    }
                    let kind = match (continuing, result) {
                        (Some(next), _) => EventKind::WorkflowContinuedAsNew {
                            // Given by the engine when it records the command.
                            new_run_id: RunId::from_u128(0),
                            workflow_type: next.workflow_type,
                            task_queue: next
                                .options
                                .task_queue
                                .unwrap_or_else(|| core.task_queue.clone()),
                            input: next.input,
                            signals: core.unread_in_order(),
                            search_attributes: next.options.search_attributes,
                            memo: next.options.memo,
                        },
                        (None, Ok(result)) => EventKind::WorkflowCompleted { result },
                        (None, Err(e)) if core.cancel_requested() => EventKind::WorkflowCancelled {
                            failure: e.into_failure(),
                        },
                        (None, Err(e)) => EventKind::WorkflowFailed {
                            failure: e.into_failure(),
                        },
                    };
                    self.finished = Some(kind.clone());
                    core.command(kind);
                }
                Err(panic) => {
                    self.tear_down();
                    self.parked = Some(ParkReason::Panic(crate::panic::message(&*panic)));
                }
            }
            let nde = lock(&self.core).nondeterminism.clone();
            if let Some(nde) = nde {
                self.tear_down();
                self.parked = Some(nde.into());
            }
        }
        // Pending, yet waiting on nothing of the context: no event can
        // ever wake it (or only by accident, when another one comes).
        let stuck = self.parked.is_none()
            && self.root.is_some()
            && !self.woken.woken.load(Ordering::SeqCst)
            && !lock(&self.core).outstanding();
        if stuck {
            self.park_foreign(
                "it is waiting, and on no activity, timer or signal of its context".to_string(),
            );
        }
    }

    fn park_foreign(&mut self, detail: String) {
        self.tear_down();
        self.parked = Some(ParkReason::ForeignFuture(detail));
    }

    /// Calls `notify` (once) when the workflow's waker is woken outside an
    /// activation, which only a future that is not the context's does.
    pub(crate) fn on_foreign_wake(&self, notify: ForeignWake) {
        *lock(&self.woken.on_foreign) = Some(notify);
    }

    /// Parks the run after a wake outside an activation (see
    /// [`on_foreign_wake`](Self::on_foreign_wake)).
    pub(crate) fn foreign_wake(&mut self) {
        if self.parked.is_none() && self.root.is_some() && self.woken.foreign.load(Ordering::SeqCst)
        {
            self.park_foreign(
                "its waker was woken between activations, by a timer, a channel or I/O \
                 that is not the context's"
                    .to_string(),
            );
        }
    }

    fn check_history_consumed(&mut self) {
        if self.parked.is_some() {
            return;
        }
        let core = lock(&self.core);
        if let Some(event) = core.expected.front() {
            let nde = NondeterminismError {
                workflow_id: core.workflow_id.clone(),
                run_id: core.run_id,
                event_id: event.event_id,
                history: event.kind.describe(),
                code: "nothing (it is waiting for something else)".to_string(),
            };
            drop(core);
            self.tear_down();
            self.parked = Some(nde.into());
        }
    }

    /// Drops the workflow future without its code having returned; what it
    /// drops records nothing.
    fn tear_down(&mut self) {
        lock(&self.core).torn_down = true;
        self.root = None;
        self.tasks.clear();
    }

    /// Commands issued past the end of the history since the last call.
    pub(crate) fn take_commands(&mut self) -> Vec<EventKind> {
        if self.parked.is_some() {
            return Vec::new();
        }
        std::mem::take(&mut lock(&self.core).new_commands)
    }

    /// The local activities asked for since the last call whose end is not
    /// in the history so far (the engine runs them).
    pub(crate) fn take_local_requests(&mut self) -> Vec<super::LocalRequest> {
        if self.parked.is_some() {
            return Vec::new();
        }
        let mut core = lock(&self.core);
        let requests = std::mem::take(&mut core.local_requests);
        requests
            .into_iter()
            .filter(|r| core.pending.get(&r.seq) == Some(&Awaited::LocalActivity))
            .collect()
    }

    /// The local activities the code cancelled since the last call, with
    /// their cancellation types, in order.
    pub(crate) fn take_local_cancels(
        &mut self,
    ) -> Vec<(u32, crate::activity::ActivityCancellationType)> {
        if self.parked.is_some() {
            return Vec::new();
        }
        std::mem::take(&mut lock(&self.core).local_cancels)
    }

    /// The type of the local activity at `seq`, as the code asked for it.
    pub(crate) fn local_activity_type(&self, seq: u32) -> Option<String> {
        lock(&self.core).local_types.get(&seq).cloned()
    }

    /// The handler of a query, if the code registered one.
    pub(crate) fn query_handler(&self, name: &str) -> Option<QueryFn> {
        lock(&self.core).queries.get(name).cloned()
    }

    /// The close command the code issued (with its own result or failure),
    /// once it returned.
    pub(crate) fn finished(&self) -> Option<&EventKind> {
        self.finished.as_ref()
    }

    /// Why the run cannot make progress, if it cannot.
    pub(crate) fn parked(&self) -> Option<&ParkReason> {
        self.parked.as_ref()
    }
}
