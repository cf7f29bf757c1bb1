//! One thread that keeps the due times of the near future (durable timers,
//! retry delays, run timeouts, wake-ups of runs not in memory) and delivers
//! each to its run when it comes. Deliveries go by run ID, so a run evicted
//! from memory in the meantime is loaded again to take it.
//!
//! A thread rather than a task: tokio's timer wheel rounds every deadline up
//! to its next millisecond tick and fires it from whichever worker is free,
//! which made wake-ups up to 2 ms late; a thread sleeping on a condition
//! variable wakes within tens of microseconds of the due time.
//!
//! Memory holds only what is due within [`HORIZON`]: later due times are
//! dropped here, because every run's earliest due time is in the file's
//! wake-up index (committed before any timer is scheduled), and the thread
//! reads the index a slice at a time as the horizon moves on. Its first read
//! also takes every overdue wake-up: that is how runs resume after a restart.
//!
//! On the system clock a second thread reads the index (it waits for the
//! store, a round trip and a query on PostgreSQL, a few ms under load) and
//! puts what it read in the queue, so that the timer thread never stops
//! delivering while a read is under way.
//!
//! Time comes from the engine's [`Clock`]. On a virtual clock the thread
//! keeps every due time in memory (no horizon: skipping needs the next one,
//! and a test engine holds few runs), registers each with the clock, holds
//! the clock while it delivers, and waits for the clock's advances instead
//! of a real timeout.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::clock::{Clock, Hold};

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::run::RunMsg;
use crate::history::RunId;

/// How far ahead due times are kept in memory.
const HORIZON: Duration = Duration::from_secs(10);
/// How often the wake-up index is read for the next slice.
const SCAN_EVERY: Duration = Duration::from_secs(1);

struct Due {
    run_id: RunId,
    msg: RunMsg,
}

/// What the handle and the thread share.
#[derive(Default)]
struct Queue {
    /// Keyed by due time, then arrival, so equal times fire in order.
    due: BTreeMap<(Instant, u64), Due>,
    /// Where each durable timer's firing is in `due`, so that cancelling
    /// one (`TimerCanceled`) takes it out without a scan.
    timers: HashMap<(RunId, u32), (Instant, u64)>,
    arrivals: u64,
    stopped: bool,
    /// Read the wake-up index now (see [`Timers::rescan`]).
    rescan: bool,
    /// The timer thread asks the scan thread for a read of the index.
    scan_wanted: bool,
}

impl Queue {
    /// Adds a due time; true when it is now the earliest. A durable timer
    /// scheduled again (a wake re-arms every due time) keeps one firing:
    /// the due time it replaced is returned, for the clock to forget.
    fn push(&mut self, at: Instant, run_id: RunId, msg: RunMsg) -> (bool, Option<Instant>) {
        self.arrivals += 1;
        let key = (at, self.arrivals);
        let earliest = self
            .due
            .first_key_value()
            .is_none_or(|(first, _)| key < *first);
        let mut replaced = None;
        if let RunMsg::TimerDue { seq } = msg
            && let Some(old) = self.timers.insert((run_id, seq), key)
            && self.due.remove(&old).is_some()
        {
            replaced = Some(old.0);
        }
        self.due.insert(key, Due { run_id, msg });
        (earliest, replaced)
    }

    /// Takes the first due entry if it is due by `now`, with its due time.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, Due)> {
        let entry = self.due.first_entry()?;
        let at = entry.key().0;
        if at > now {
            return None;
        }
        let due = entry.remove();
        if let RunMsg::TimerDue { seq } = due.msg {
            self.timers.remove(&(due.run_id, seq));
        }
        Some((at, due))
    }
}

struct Inner {
    queue: Mutex<Queue>,
    /// Signalled when an earlier due time arrives, the thread must stop,
    /// or a virtual clock advanced.
    changed: Condvar,
    clock: Clock,
    /// Signalled when a read of the index is wanted or the threads must
    /// stop.
    scan_changed: Condvar,
    /// The threads, taken by the first [`Timers::stop`].
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding this lock; recover if it ever did.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle to the timer thread.
#[derive(Clone)]
pub(crate) struct Timers {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").finish_non_exhaustive()
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The due times sent to a [`Timers`] handle, for the timer thread to serve
/// once it is started ([`TimerQueue::start`]).
pub(crate) struct TimerQueue(Arc<Inner>);

impl Timers {
    /// A handle and the queue it feeds; nothing is delivered until the
    /// queue's thread is started.
    pub(crate) fn new(clock: Clock) -> (Self, TimerQueue) {
        let inner = Arc::new(Inner {
            queue: Mutex::default(),
            changed: Condvar::new(),
            clock,
            scan_changed: Condvar::new(),
            threads: Mutex::default(),
        });
        (
            Timers {
                inner: inner.clone(),
            },
            TimerQueue(inner),
        )
    }

    /// Delivers `msg` to run `run_id` at wall-clock time `at` (at once if it
    /// passed). Due times past the horizon are left to the wake-up index.
    pub(crate) fn schedule(&self, at: SystemTime, run_id: RunId, msg: RunMsg) {
        let clock = &self.inner.clock;
        let now = clock.now();
        if at > now + HORIZON && !clock.is_virtual() {
            return;
        }
        let Some(at) = clock
            .instant()
            .checked_add(at.duration_since(now).unwrap_or_default())
        else {
            // Past what the clock holds: never due.
            return;
        };
        let mut queue = self.inner.lock();
        if queue.stopped {
            return;
        }
        clock.note_due(at);
        let (earliest, replaced) = queue.push(at, run_id, msg);
        if let Some(replaced) = replaced {
            clock.clear_due(replaced);
        }
        drop(queue);
        if earliest {
            self.inner.changed.notify_one();
        }
    }

    /// Drops the due times of a run that closed, on a virtual clock only:
    /// left in place, they would still draw the clock to them (on the
    /// system clock they cost nothing but a delivery the run ignores, and
    /// scanning for them would).
    pub(crate) fn forget(&self, run_id: RunId) {
        let clock = &self.inner.clock;
        if !clock.is_virtual() {
            return;
        }
        let mut queue = self.inner.lock();
        let queue = &mut *queue;
        queue.due.retain(|(at, _), due| {
            let keep = due.run_id != run_id;
            if !keep {
                clock.clear_due(*at);
                if let RunMsg::TimerDue { seq } = due.msg {
                    queue.timers.remove(&(run_id, seq));
                }
            }
            keep
        });
    }

    /// Drops every due time of `runs`, on any clock: runs whose shard this
    /// process lost are no longer its own, and a stale firing would load
    /// one again here (or, acquired back meanwhile, hand a fresh actor a
    /// message meant for the old one). Costs one pass over the queue, once
    /// per shard lost.
    pub(crate) fn forget_runs(&self, runs: &std::collections::HashSet<RunId>) {
        if runs.is_empty() {
            return;
        }
        let clock = &self.inner.clock;
        let mut queue = self.inner.lock();
        let queue = &mut *queue;
        queue.due.retain(|(at, _), due| {
            let keep = !runs.contains(&due.run_id);
            if !keep {
                clock.clear_due(*at);
            }
            keep
        });
        queue.timers.retain(|(run_id, _), _| !runs.contains(run_id));
    }

    /// Forgets the firing of a durable timer the workflow cancelled, so the
    /// thread never delivers it and a virtual clock is not drawn to it.
    pub(crate) fn cancel(&self, run_id: RunId, seq: u32) {
        let mut queue = self.inner.lock();
        if let Some(key) = queue.timers.remove(&(run_id, seq))
            && queue.due.remove(&key).is_some()
        {
            self.inner.clock.clear_due(key.0);
        }
    }

    /// Has the thread read the wake-up index now rather than at its next
    /// scan (a store shared by processes acquired shards, whose overdue
    /// wake-ups its next read takes whole).
    pub(crate) fn rescan(&self) {
        self.inner.lock().rescan = true;
        self.inner.changed.notify_one();
    }

    /// Stops the threads and waits for them, so that they hold nothing of
    /// the engine afterwards (the file closes with the engine's last user,
    /// not with a delivery in flight). Quick: each thread is waiting, or
    /// busy with one delivery or one read of the index. Later calls do
    /// nothing.
    pub(crate) fn stop(&self) {
        self.inner.lock().stopped = true;
        self.inner.changed.notify_one();
        self.inner.scan_changed.notify_one();
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in threads {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl TimerQueue {
    /// Starts the timer thread; it ends at [`Timers::stop`], once `shutdown`
    /// is cancelled, or once `shared` is gone. Start it only once `shared`
    /// can be upgraded (not from inside `Arc::new_cyclic`): the thread stops
    /// for good the first time it cannot reach `shared`. Call from inside the
    /// runtime: deliveries may start tasks on it.
    pub(crate) fn start(
        self,
        shared: Weak<Shared>,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let inner = self.0;
        let runtime = tokio::runtime::Handle::current();
        let thread_inner = inner.clone();
        // Taken before the thread exists: until it first waits, what it
        // reads and delivers happens before a virtual clock moves on.
        let hold = inner.clock.hold();
        let woken = inner.clone();
        inner.clock.on_advance(Arc::new(move || {
            // Taking the lock first: the thread is then either about to look
            // at the time or waiting, never between the two.
            drop(woken.lock());
            woken.changed.notify_all();
        }));
        let scanner = if inner.clock.is_virtual() {
            None
        } else {
            let (shared, shutdown, inner) = (shared.clone(), shutdown.clone(), inner.clone());
            let runtime = runtime.clone();
            Some(
                std::thread::Builder::new()
                    .name("steadfast-timers-scan".into())
                    .spawn(move || {
                        let _runtime = runtime.enter();
                        scan_thread(&shared, &shutdown, &inner);
                    })?,
            )
        };
        let thread = std::thread::Builder::new()
            .name("steadfast-timers".into())
            .spawn(move || {
                let _runtime = runtime.enter();
                run(&shared, &shutdown, &thread_inner, hold);
                // However it ended (the engine gone, shut down, stopped),
                // the scan thread ends with it.
                thread_inner.lock().stopped = true;
                thread_inner.scan_changed.notify_one();
            })?;
        let mut threads = inner.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.push(thread);
        threads.extend(scanner);
        Ok(())
    }
}

/// The engine, unless it is gone or shutting down.
fn reach(shared: &Weak<Shared>, shutdown: &CancellationToken) -> Option<Arc<Shared>> {
    shared.upgrade().filter(|_| !shutdown.is_cancelled())
}

/// The thread's loop; `_hold` is held while the thread is not waiting:
/// what it reads and delivers happens before a virtual clock moves on.
fn run(shared: &Weak<Shared>, shutdown: &CancellationToken, inner: &Inner, _hold: Hold) {
    let clock = &inner.clock;
    // Wake-ups before this time (ms since the epoch) have been read.
    let mut read_until = 0u64;
    let mut next_scan = clock.instant();
    loop {
        if clock.instant() >= next_scan && !clock.is_virtual() {
            // Read by the scan thread, which puts what is due in the queue.
            inner.lock().scan_wanted = true;
            inner.scan_changed.notify_one();
            next_scan = clock.instant() + SCAN_EVERY;
        } else if clock.instant() >= next_scan {
            // The thread starts once `shared` exists, so this fails only
            // when the engine is gone or shutting down.
            let Some(shared) = reach(shared, shutdown) else {
                return;
            };
            if let Some((until, overdue)) = scan(&shared, inner, read_until) {
                read_until = until;
                // Delivered at once, in the index's order, without the
                // queue: after a restart these can be every run in flight,
                // and the first of them start loading while the thread
                // delivers the rest.
                for run_id in overdue {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    let _ = shared.deliver(run_id, RunMsg::Wake);
                }
            }
            next_scan = clock.instant() + SCAN_EVERY;
        }
        let due = {
            let mut queue = inner.lock();
            loop {
                if queue.stopped {
                    return;
                }
                let now = clock.instant();
                if std::mem::take(&mut queue.rescan) {
                    next_scan = now;
                }
                let first = queue.due.first_key_value().map(|((at, _), _)| *at);
                if first.is_some_and(|at| at <= now) || now >= next_scan {
                    break;
                }
                if clock.is_virtual() {
                    // Every due time is in memory and registered with the
                    // clock; an advance or an earlier due time wakes us.
                    let idle = clock.idle();
                    queue = inner.changed.wait(queue).unwrap_or_else(|p| p.into_inner());
                    drop(idle);
                    continue;
                }
                let until = first.map_or(next_scan, |at| at.min(next_scan));
                queue = inner
                    .changed
                    .wait_timeout(queue, until - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            let now = clock.instant();
            let mut due = Vec::new();
            while let Some((at, entry)) = queue.pop_due(now) {
                due.push(entry);
                clock.clear_due(at);
            }
            due
        };
        if due.is_empty() {
            continue;
        }
        let Some(shared) = reach(shared, shutdown) else {
            return;
        };
        for due in due {
            // A run that closed in the meantime needs nothing.
            let _ = shared.deliver(due.run_id, due.msg);
        }
    }
}

/// The scan thread's loop (system clock only): reads the wake-up index
/// each time the timer thread asks, puts what is due later in the queue
/// and delivers what is overdue.
fn scan_thread(shared: &Weak<Shared>, shutdown: &CancellationToken, inner: &Inner) {
    // Wake-ups before this time (ms since the epoch) have been read.
    let mut read_until = 0u64;
    loop {
        {
            let mut queue = inner.lock();
            while !queue.scan_wanted && !queue.stopped {
                queue = inner
                    .scan_changed
                    .wait(queue)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if queue.stopped {
                return;
            }
            queue.scan_wanted = false;
        }
        let Some(shared) = reach(shared, shutdown) else {
            return;
        };
        if let Some((until, overdue)) = scan(&shared, inner, read_until) {
            read_until = until;
            for run_id in overdue {
                if shutdown.is_cancelled() {
                    return;
                }
                let _ = shared.deliver(run_id, RunMsg::Wake);
            }
        }
    }
}

/// Reads the wake-ups due before the horizon from the index into the queue.
/// Returns how far it read and the runs whose wake-up is already due (on
/// the system clock; the caller delivers those), or `None` to read from the
/// same place again.
fn scan(shared: &Shared, inner: &Inner, read_until: u64) -> Option<(u64, Vec<RunId>)> {
    let clock = &inner.clock;
    let until = if clock.is_virtual() {
        u64::MAX
    } else {
        millis(clock.now() + HORIZON)
    };
    // The timer thread is no task: it waits for the read (a redb read is
    // ready at once).
    let wakeups = match futures::executor::block_on(shared.store.wakeups(read_until, until)) {
        Ok(wakeups) => wakeups,
        Err(e) => {
            tracing::warn!(error = %e, "reading the wake-up index failed");
            return None;
        }
    };
    // Made before taking the lock: after a restart this can be every run
    // in the file, and `schedule` callers wait on the lock meanwhile.
    let (now, now_at) = (clock.now(), clock.instant());
    let now_ms = millis(now);
    let mut overdue = Vec::new();
    let mut due = Vec::new();
    for (wake, run_id) in wakeups {
        // A virtual clock's due times all go through the queue: each is
        // registered with the clock, which must not skip past it.
        if wake <= now_ms && !clock.is_virtual() {
            overdue.push(run_id);
            continue;
        }
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(wake);
        if let Some(at) = now_at.checked_add(at.duration_since(now).unwrap_or_default()) {
            due.push((at, run_id));
        }
    }
    if !due.is_empty() {
        let mut queue = inner.lock();
        let mut earliest = false;
        for (at, run_id) in due {
            clock.note_due(at);
            earliest |= queue.push(at, run_id, RunMsg::Wake).0;
        }
        drop(queue);
        // Read by the scan thread: the timer thread may be waiting for a
        // later due time.
        if earliest {
            inner.changed.notify_one();
        }
    }
    Some((until, overdue))
}
