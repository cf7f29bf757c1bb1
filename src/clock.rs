//! The one source of time for the engine: the system clock, or a virtual
//! clock for the test engine ([`TestEngine`](crate::testing::TestEngine)).
//!
//! Every time the engine uses goes through a [`Clock`]: event timestamps
//! (hence the workflow's `now`), durable timers, retry backoff, the four
//! activity timeouts, heartbeat throttling, run and execution timeouts,
//! retention cutoffs. Only the store's own I/O backoff and the group-commit
//! writer's spin stay on real time: they measure the disk, not the program.
//!
//! With the system clock every call is one branch on `None` and then the
//! std or tokio call it replaces.
//!
//! # The virtual clock
//!
//! Virtual time stands still unless it is moved: by hand
//! ([`Clock::advance`]), or by skipping to the next due time once the engine
//! is quiescent. Quiescent means nothing holds the clock:
//!
//! - a [`Hold`] is taken by every piece of work in flight: a message on its
//!   way to a run and the step it causes (until its commit and its effects:
//!   new due times and attempts are registered before the hold goes), a
//!   start being committed, an activity attempt from its dispatch until its
//!   outcome is delivered, the timer thread while it delivers;
//! - a holder that now only waits on time (an activity in
//!   `ActivityContext::sleep`, the timer thread between due times) goes
//!   [`Idle`]: it stops holding until the next advance, at which the clock
//!   makes it hold again, so that nothing skips further before it has looked
//!   at the new time;
//! - the test client holds the clock unless it waits on the engine (a
//!   workflow's result, [`Clock::advance`]), as Temporal's test server does:
//!   a test can start a workflow and signal it before any time passes.
//!
//! Due times are registered from the moment they exist until the sleep that
//! waits on them is dropped, so a due time that has come but is not yet
//! acted on also keeps the clock where it is.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

/// A timeout on the engine's clock ran out.
#[derive(Debug)]
pub(crate) struct Elapsed;

/// Called after every advance of a virtual clock (the timer thread's wake-up).
type Listener = Arc<dyn Fn() + Send + Sync>;

/// The engine's clock: the system's, or a shared virtual one.
#[derive(Clone, Default)]
pub(crate) struct Clock {
    virt: Option<Arc<Virtual>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.virt {
            None => f.write_str("Clock::System"),
            Some(v) => write!(f, "Clock::Virtual({:?})", v.now()),
        }
    }
}

impl Clock {
    /// The system clock.
    pub(crate) fn system() -> Self {
        Clock { virt: None }
    }

    /// A virtual clock that reads the system's time now until it is
    /// moved, with its skipper thread: the one place a test engine reads
    /// the wall clock.
    pub(crate) fn virtual_now() -> std::io::Result<Self> {
        Self::virtual_at(SystemTime::now())
    }

    /// A virtual clock that reads `start` until it is moved, with its
    /// skipper thread.
    pub(crate) fn virtual_at(start: SystemTime) -> std::io::Result<Self> {
        let virt = Arc::new(Virtual {
            start,
            origin: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
            state: Mutex::new(State {
                // The test client holds the clock until it waits on the engine.
                holds: 1,
                ..State::default()
            }),
            wake_skipper: Condvar::new(),
            advanced: watch::channel(0).0,
            settled: watch::channel(0).0,
            listeners: Mutex::new(Vec::new()),
        });
        let skipper = virt.clone();
        std::thread::Builder::new()
            .name("steadfast-virtual-clock".into())
            .spawn(move || skipper.run_skipper())?;
        Ok(Clock { virt: Some(virt) })
    }

    /// True for a virtual clock.
    pub(crate) fn is_virtual(&self) -> bool {
        self.virt.is_some()
    }

    /// The current time, for timestamps and deadlines on the calendar.
    pub(crate) fn now(&self) -> SystemTime {
        match &self.virt {
            None => SystemTime::now(),
            Some(v) => v.now(),
        }
    }

    /// The current time on the monotonic scale the engine waits on. A
    /// virtual clock's instants are real instants moved by its offset.
    pub(crate) fn instant(&self) -> Instant {
        match &self.virt {
            None => Instant::now(),
            Some(v) => v.instant(),
        }
    }

    /// Waits until `deadline` (never for `None`); a virtual clock may skip
    /// to it. The due time counts from this call, not from the first poll:
    /// a holder pausing in between cannot let the clock skip past it.
    /// Holds the clock from the moment the due time is let go until the
    /// returned guard is dropped: the caller acts on the time (drops a
    /// timed-out future) before the clock may move on.
    pub(crate) fn sleep_until_held(
        &self,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Hold> + Send + 'static {
        self.wait(deadline)
    }

    /// Waits until `deadline` (never for `None`) while holding nothing: for
    /// a holder (an activity attempt) that now waits only on time or on the
    /// engine, so a virtual clock may skip past its wait. For a holder that
    /// may wait more than once at a time, share one [`Sleepers`] instead.
    pub(crate) fn idle_until(
        &self,
        deadline: Option<Instant>,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.sleepers().sleep_until(deadline)
    }

    /// Waits for `duration`; see [`idle_until`](Self::idle_until).
    pub(crate) fn idle_sleep(
        &self,
        duration: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.idle_until(self.instant().checked_add(duration))
    }

    /// The sleeps in progress of one holder of the clock, which goes idle
    /// while any of them waits (see [`Sleepers`]).
    pub(crate) fn sleepers(&self) -> Sleepers {
        Sleepers {
            clock: self.clone(),
            paused: Arc::new(Mutex::new(Pause::default())),
        }
    }

    /// Waits until `deadline`; the hold returned is taken before the due
    /// time is let go.
    fn wait(&self, deadline: Option<Instant>) -> impl Future<Output = Hold> + Send + 'static {
        let virt = self.virt.clone();
        let due = match (&virt, deadline) {
            (Some(v), Some(at)) => Some(Due::new(v.clone(), at)),
            _ => None,
        };
        async move {
            match (virt, deadline) {
                (None, Some(at)) => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    Hold(None)
                }
                (None, None) => std::future::pending().await,
                (Some(v), _) => {
                    v.sleep(deadline).await;
                    v.lock().holds += 1;
                    drop(due);
                    Hold(Some(v))
                }
            }
        }
    }

    /// Waits until `until` (never for `None`) on this clock, without making
    /// it a due time: a virtual clock never skips to it (a periodic
    /// background look, such as the retention sweep, would otherwise make
    /// virtual time crawl from one look to the next). A caller that counts
    /// its looks from when they began, not from when it is ready to wait
    /// again, sees an advance made while it was busy.
    pub(crate) async fn passive_until(&self, until: Option<Instant>) {
        let Some(until) = until else {
            return std::future::pending().await;
        };
        match &self.virt {
            None => tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await,
            Some(v) => {
                let mut advanced = v.advanced.subscribe();
                while v.instant() < until {
                    if advanced.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    /// Runs `future` for at most `duration` on this clock. On a timeout the
    /// clock is held from the deadline until the future is dropped, so a
    /// holder paused inside it holds again before the clock could move on.
    pub(crate) async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        let deadline = self.instant().checked_add(duration);
        let (output, _hold) = {
            let sleep = pin!(self.sleep_until_held(deadline));
            let future = pin!(future);
            tokio::select! {
                biased;
                output = future => (Ok(output), None),
                hold = sleep => (Err(Elapsed), Some(hold)),
            }
            // The future is dropped here, before the hold goes.
        };
        output
    }

    /// Awaits `future` without holding while it is pending (for a holder
    /// that waits on other holders, such as an attempt waiting for a slot),
    /// and holds again before its output is returned. Polled once first:
    /// a future that is ready at once never lets go. Nothing hands the
    /// holder a hold when `future` becomes ready: the one that readies it
    /// must hold until the waiter has run (see the task queue's handoff).
    pub(crate) async fn idle_while<F: Future>(&self, future: F) -> F::Output {
        let Some(v) = self.virt.clone() else {
            return future.await;
        };
        let mut future = pin!(future);
        if let std::task::Poll::Ready(output) = futures::poll!(&mut future) {
            return output;
        }
        let mut advanced = v.advanced.subscribe();
        loop {
            let idle = Idle(Some((v.clone(), v.pause())));
            tokio::select! {
                biased;
                output = &mut future => {
                    drop(idle);
                    return output;
                }
                changed = advanced.changed() => {
                    // The advance made us hold again; let go once more.
                    drop(idle);
                    if changed.is_err() {
                        return future.await;
                    }
                }
            }
        }
    }

    /// How many hold a virtual clock now (the test client among them unless
    /// it waits); for unit tests of holders.
    #[cfg(test)]
    pub(crate) fn holds(&self) -> usize {
        self.virt.as_ref().map_or(0, |v| v.lock().holds)
    }

    /// Holds a virtual clock until the guard is dropped; nothing for the
    /// system clock.
    pub(crate) fn hold(&self) -> Hold {
        Hold(self.virt.as_ref().map(|v| {
            v.lock().holds += 1;
            v.clone()
        }))
    }

    /// Stops holding until the next advance (or the guard's drop); for the
    /// timer thread, which holds the clock while it is not waiting.
    pub(crate) fn idle(&self) -> Idle {
        Idle(self.virt.as_ref().map(|v| (v.clone(), v.pause())))
    }

    /// Registers a due time the timer thread keeps; a virtual clock skips
    /// to it. Pair with [`clear_due`](Self::clear_due).
    pub(crate) fn note_due(&self, at: Instant) {
        if let Some(v) = &self.virt {
            *v.lock().deadlines.entry(at).or_insert(0) += 1;
        }
    }

    /// Lets go of a due time given to [`note_due`](Self::note_due).
    pub(crate) fn clear_due(&self, at: Instant) {
        if let Some(v) = &self.virt {
            let mut state = v.lock();
            state.remove_deadline(at);
            v.changed(&state);
        }
    }

    /// Calls `listener` after every advance of a virtual clock.
    pub(crate) fn on_advance(&self, listener: Listener) {
        if let Some(v) = &self.virt {
            v.listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(listener);
        }
    }

    /// Marks the test client as waiting on the engine until the guard is
    /// dropped: while it waits, a virtual clock may skip.
    pub(crate) fn client_waiting(&self) -> ClientWait {
        ClientWait(self.virt.as_ref().map(|v| {
            let mut state = v.lock();
            state.client_waiting += 1;
            if state.client_waiting == 1 {
                debug_assert!(state.holds > 0, "the test client's hold is gone");
                state.holds = state.holds.saturating_sub(1);
            }
            v.changed(&state);
            v.clone()
        }))
    }

    /// Moves a virtual clock forward by `duration`, acting on every due time
    /// on the way in order, and returns once the engine has settled at the
    /// new time (nothing holds the clock, nothing is due). Does nothing on
    /// the system clock.
    pub(crate) async fn advance(&self, duration: Duration) {
        let Some(v) = &self.virt else { return };
        let Some(target) = v.instant().checked_add(duration) else {
            return;
        };
        // The target first: once the client waits, the clock may skip,
        // and never past a target.
        {
            let mut state = v.lock();
            state.targets.push(target);
            v.changed(&state);
        }
        let waiting = self.client_waiting();
        let mut settled = v.settled.subscribe();
        loop {
            {
                let state = v.lock();
                if v.instant() >= target && state.quiet(v.instant()) {
                    break;
                }
            }
            if settled.changed().await.is_err() {
                break;
            }
        }
        // Holding again before the target goes, so nothing skips past it.
        drop(waiting);
        let mut state = v.lock();
        if let Some(i) = state.targets.iter().position(|t| *t == target) {
            state.targets.swap_remove(i);
        }
    }

    /// Stops a virtual clock's skipper thread (at the test engine's end),
    /// and lets go of its listeners (which hold the timer thread's queue,
    /// which holds this clock).
    pub(crate) fn stop(&self) {
        if let Some(v) = &self.virt {
            {
                let mut state = v.lock();
                state.stopped = true;
                v.changed(&state);
            }
            v.listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }
}

/// The sleeps in progress of one holder of the clock (an activity attempt,
/// shared by the clones of its context).
///
/// The holder has one hold. It lets go of it when its first sleep begins
/// (0 → 1 sleeps) and takes it again when its last sleep ends (1 → 0), or
/// at an advance (as any [`Idle`] holder), after which the first sleeper
/// that is still not due lets go again. Each sleep on its own would let go
/// of one hold, so two at once would let go of someone else's.
///
/// The limit: while one of the holder's sleeps waits, the holder does not
/// hold the clock, even if other code of the same holder runs meanwhile
/// (a sleep in a `select!` or `join!` beside real work, or one that ended
/// while another goes on). Time may then skip while that code runs.
#[derive(Clone, Debug)]
pub(crate) struct Sleepers {
    clock: Clock,
    paused: Arc<Mutex<Pause>>,
}

/// How a holder's sleeps stand: how many wait, and the generation at which
/// the holder let go of its hold (`None`: it holds).
#[derive(Debug, Default)]
struct Pause {
    sleeping: usize,
    since: Option<u64>,
    /// The holder is gone (see [`Sleepers::close`]): its sleeps let go of
    /// nothing, since its hold is no longer theirs.
    closed: bool,
}

impl Sleepers {
    fn lock(&self) -> MutexGuard<'_, Pause> {
        // Nothing panics while holding this lock; recover if it ever did.
        self.paused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for `duration` without holding (see [`Clock::idle_sleep`]).
    pub(crate) fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + use<> {
        self.sleep_until(self.clock.instant().checked_add(duration))
    }

    /// Waits until `deadline` (never for `None`) without holding.
    pub(crate) fn sleep_until(
        &self,
        deadline: Option<Instant>,
    ) -> impl Future<Output = ()> + Send + use<> {
        let this = self.clone();
        let due = match (&self.clock.virt, deadline) {
            (Some(v), Some(at)) => Some(Due::new(v.clone(), at)),
            _ => None,
        };
        async move {
            let Some(v) = this.clock.virt.clone() else {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
                return;
            };
            let mut advanced = v.advanced.subscribe();
            let _sleeping = Sleeping::begin(&this);
            loop {
                if deadline.is_some_and(|at| v.instant() >= at) {
                    break;
                }
                this.let_go(&v);
                if advanced.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
            // `_sleeping` ends (the holder holds again if this was its last
            // sleep) before `due` goes: nothing skips past it meanwhile.
            drop(_sleeping);
            drop(due);
        }
    }

    /// Lets go of the holder's hold, unless it did since the last advance.
    fn let_go(&self, v: &Virtual) {
        let mut pause = self.lock();
        if pause.closed {
            return;
        }
        let generation = v.lock().generation;
        if pause.since != Some(generation) {
            pause.since = Some(v.pause());
        }
    }

    /// Ends the holder's part: call before its hold goes. If a sleep still
    /// waits (one in a task the holder spawned), the holder holds again now,
    /// so its hold is not let go of twice; later sleeps let go of nothing.
    pub(crate) fn close(&self) {
        let mut pause = self.lock();
        pause.closed = true;
        if let (Some(generation), Some(v)) = (pause.since.take(), &self.clock.virt) {
            v.resume(generation);
        }
    }
}

/// One sleep of a [`Sleepers`] in progress.
struct Sleeping<'a>(&'a Sleepers);

impl<'a> Sleeping<'a> {
    fn begin(sleepers: &'a Sleepers) -> Self {
        sleepers.lock().sleeping += 1;
        Sleeping(sleepers)
    }
}

impl Drop for Sleeping<'_> {
    fn drop(&mut self) {
        let mut pause = self.0.lock();
        pause.sleeping -= 1;
        if pause.sleeping == 0
            && let (Some(generation), Some(v)) = (pause.since.take(), &self.0.clock.virt)
        {
            v.resume(generation);
        }
    }
}

/// Holds a virtual clock while it lives (see [`Clock::hold`]).
#[must_use]
pub(crate) struct Hold(Option<Arc<Virtual>>);

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hold"
        } else {
            "Hold(system clock)"
        })
    }
}

impl Hold {
    /// True when this holds a virtual clock (false on the system clock).
    pub(crate) fn is_held(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(v) = &self.0 {
            let mut state = v.lock();
            debug_assert!(state.holds > 0, "a hold let go of a clock nothing held");
            state.holds = state.holds.saturating_sub(1);
            v.changed(&state);
        }
    }
}

/// A holder's pause (see [`Clock::idle`]); dropping it holds again, unless
/// an advance did so already.
#[must_use]
pub(crate) struct Idle(Option<(Arc<Virtual>, u64)>);

impl Drop for Idle {
    fn drop(&mut self) {
        if let Some((v, generation)) = &self.0 {
            v.resume(*generation);
        }
    }
}

/// The test client waiting on the engine (see [`Clock::client_waiting`]).
#[must_use]
pub(crate) struct ClientWait(Option<Arc<Virtual>>);

impl Drop for ClientWait {
    fn drop(&mut self) {
        if let Some(v) = &self.0 {
            let mut state = v.lock();
            state.client_waiting = state.client_waiting.saturating_sub(1);
            if state.client_waiting == 0 {
                state.holds += 1;
            }
        }
    }
}

/// A due time registered with a virtual clock while it lives.
struct Due(Arc<Virtual>, Instant);

impl Due {
    fn new(v: Arc<Virtual>, at: Instant) -> Self {
        *v.lock().deadlines.entry(at).or_insert(0) += 1;
        Due(v, at)
    }
}

impl Drop for Due {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.remove_deadline(self.1);
        self.0.changed(&state);
    }
}

#[derive(Default)]
struct State {
    /// Holders of the clock (the test client among them unless it waits).
    holds: usize,
    /// Holders gone idle at this generation; the next advance holds them again.
    idle: usize,
    /// Advances so far.
    generation: u64,
    /// Due times, with how many waiters each.
    deadlines: BTreeMap<Instant, usize>,
    /// How many client calls wait on the engine.
    client_waiting: usize,
    /// Where manual advances stop.
    targets: Vec<Instant>,
    stopped: bool,
}

impl State {
    fn remove_deadline(&mut self, at: Instant) {
        if let Some(n) = self.deadlines.get_mut(&at) {
            *n -= 1;
            if *n == 0 {
                self.deadlines.remove(&at);
            }
        }
    }

    /// Nothing holds the clock and nothing due is left to act on.
    fn quiet(&self, now: Instant) -> bool {
        self.holds == 0
            && self
                .deadlines
                .first_key_value()
                .is_none_or(|(at, _)| *at > now)
    }

    /// Where the clock may skip to now, if anywhere.
    fn skip_to(&self, now: Instant) -> Option<Instant> {
        if self.stopped || !self.quiet(now) {
            return None;
        }
        let next = self.deadlines.first_key_value().map(|(at, _)| *at);
        // A manual advance that reached its target stops the clock there
        // until it has returned.
        let target = self.targets.iter().min().copied();
        let to = match (next, target) {
            (Some(n), Some(t)) => n.min(t),
            (n, t) => n.or(t)?,
        };
        (to > now).then_some(to)
    }
}

struct Virtual {
    /// What the clock read when it was made.
    start: SystemTime,
    /// The real instant it was made at.
    origin: Instant,
    /// Virtual time passed since; written under `state`. A `Duration`, not
    /// nanoseconds in a `u64`: those end 584 years on, and a clock stuck
    /// below a later due time would skip to it forever.
    offset: Mutex<Duration>,
    state: Mutex<State>,
    /// Wakes the skipper thread when the state changed.
    wake_skipper: Condvar,
    /// The generation after each advance, for sleepers.
    advanced: watch::Sender<u64>,
    /// Bumped on every change of the state, for [`Clock::advance`].
    settled: watch::Sender<u64>,
    listeners: Mutex<Vec<Listener>>,
}

impl Virtual {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding this lock; recover if it ever did.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn offset(&self) -> Duration {
        // Taken alone, never while waiting for another lock.
        *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> SystemTime {
        self.start.checked_add(self.offset()).unwrap_or(self.start)
    }

    fn instant(&self) -> Instant {
        self.origin
            .checked_add(self.offset())
            .unwrap_or(self.origin)
    }

    /// Tells the skipper and [`Clock::advance`] that the state changed;
    /// called with the state locked.
    fn changed(&self, _state: &MutexGuard<'_, State>) {
        self.wake_skipper.notify_one();
        self.settled.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Stops holding until the next advance; returns the generation to
    /// give to [`resume`](Self::resume).
    fn pause(&self) -> u64 {
        let mut state = self.lock();
        debug_assert!(state.holds > 0, "a holder went idle holding nothing");
        state.holds = state.holds.saturating_sub(1);
        state.idle += 1;
        self.changed(&state);
        state.generation
    }

    /// Holds again after [`pause`](Self::pause), unless an advance since
    /// did so already.
    fn resume(&self, generation: u64) {
        let mut state = self.lock();
        if state.generation == generation {
            state.idle = state.idle.saturating_sub(1);
            state.holds += 1;
        }
    }

    /// Waits until `deadline` is reached on virtual time, holding what the
    /// caller holds; its registration is the caller's.
    async fn sleep(&self, deadline: Option<Instant>) {
        let mut advanced = self.advanced.subscribe();
        loop {
            if deadline.is_some_and(|at| self.instant() >= at) {
                return;
            }
            if advanced.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// The skipper thread: whenever nothing holds the clock, it moves the
    /// clock to the next due time (or a manual advance's target).
    fn run_skipper(self: Arc<Self>) {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return;
            }
            let now = self.instant();
            let Some(to) = state.skip_to(now) else {
                state = self
                    .wake_skipper
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            };
            *self.offset.lock().unwrap_or_else(|p| p.into_inner()) =
                to.saturating_duration_since(self.origin);
            state.generation += 1;
            // Idle holders hold again until they have seen the new time.
            state.holds += std::mem::take(&mut state.idle);
            let generation = state.generation;
            self.advanced.send_replace(generation);
            self.settled.send_modify(|n| *n = n.wrapping_add(1));
            drop(state);
            // Outside the state lock: a listener takes its own lock, whose
            // holders may take the state lock.
            let listeners = self
                .listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            for listener in listeners {
                listener();
            }
            state = self.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    fn holds(clock: &Clock) -> usize {
        clock.holds()
    }

    #[tokio::test]
    async fn a_due_time_past_584_years_is_reached() {
        let clock = Clock::virtual_at(SystemTime::UNIX_EPOCH).unwrap();
        let deadline = clock.instant().checked_add(YEAR * 700).unwrap();
        let sleep = clock.sleep_until_held(Some(deadline));
        let waiting = clock.client_waiting();
        let hold = tokio::time::timeout(Duration::from_secs(60), sleep)
            .await
            .expect("the clock never reached the due time");
        drop(waiting);
        assert!(clock.instant() >= deadline);
        assert!(clock.now() >= SystemTime::UNIX_EPOCH + YEAR * 700);
        drop(hold);
        clock.stop();
    }

    #[tokio::test]
    async fn two_sleeps_of_one_holder_let_go_of_one_hold() {
        let clock = Clock::virtual_at(SystemTime::UNIX_EPOCH).unwrap();
        // The test client's hold, and the holder's.
        let hold = clock.hold();
        assert_eq!(holds(&clock), 2);
        let sleepers = clock.sleepers();
        let mut first = Box::pin(sleepers.sleep(Duration::from_secs(60)));
        let mut second = Box::pin(sleepers.sleep(Duration::from_secs(60)));
        assert!((&mut first).now_or_never().is_none());
        assert!((&mut second).now_or_never().is_none());
        // Only the holder's own hold went: the client still holds.
        assert_eq!(holds(&clock), 1);
        drop(first);
        assert_eq!(holds(&clock), 1);
        // The last sleep's end takes the holder's hold again.
        drop(second);
        assert_eq!(holds(&clock), 2);
        drop(hold);
        assert_eq!(holds(&clock), 1);
        clock.stop();
    }

    #[tokio::test]
    async fn a_holder_sleeping_twice_holds_again_after_both() {
        let clock = Clock::virtual_at(SystemTime::UNIX_EPOCH).unwrap();
        let hold = clock.hold();
        let sleepers = clock.sleepers();
        let short = sleepers.sleep(Duration::from_secs(60));
        let long = sleepers.sleep(Duration::from_secs(600));
        let waiting = clock.client_waiting();
        tokio::time::timeout(Duration::from_secs(60), async {
            futures::join!(short, long);
        })
        .await
        .expect("the sleeps never ended");
        drop(waiting);
        assert!(clock.now() >= SystemTime::UNIX_EPOCH + Duration::from_secs(600));
        // The client's hold and the holder's, nothing lost or left over.
        assert_eq!(holds(&clock), 2);
        drop(hold);
        clock.stop();
    }

    #[tokio::test]
    async fn a_sleep_after_its_holder_closed_lets_go_of_nothing() {
        let clock = Clock::virtual_at(SystemTime::UNIX_EPOCH).unwrap();
        let hold = clock.hold();
        let sleepers = clock.sleepers();
        let mut early = Box::pin(sleepers.sleep(Duration::from_secs(60)));
        assert!((&mut early).now_or_never().is_none());
        assert_eq!(holds(&clock), 1);
        // The holder ends while a sleep of a task it spawned still waits:
        // it holds again, then its hold goes.
        sleepers.close();
        assert_eq!(holds(&clock), 2);
        drop(hold);
        assert_eq!(holds(&clock), 1);
        let mut late = Box::pin(sleepers.sleep(Duration::from_secs(60)));
        assert!((&mut late).now_or_never().is_none());
        drop((early, late));
        // Only the test client's hold is left, untouched.
        assert_eq!(holds(&clock), 1);
        clock.stop();
    }
}
