//! Task queues at run time: a worker's registrations with its concurrency
//! and rate limits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Worker;
use crate::activity::ActivityFn;
use crate::clock::{Clock, Hold};
use crate::workflow::WorkflowFn;

/// One task queue's worker and its limits.
pub(crate) struct TaskQueue {
    worker: Worker,
    /// The slots held now, for the slot gauges.
    in_use: Arc<SlotCount>,
    /// Free activity slots, when the worker limits concurrency.
    slots: Option<Arc<Semaphore>>,
    /// Spacing between attempt starts, and the earliest next start, when the
    /// worker limits the rate.
    rate: Option<(Duration, Mutex<Instant>)>,
    /// The engine's clock, which the rate limit waits on.
    clock: Clock,
    /// On a virtual clock, with a slot limit: the attempts waiting for a
    /// slot without holding the clock.
    handoff: Option<Arc<Mutex<Handoff>>>,
}

/// Attempts waiting for a slot let go of the virtual clock (they wait on
/// other attempts, not on time), so the clock needs a hold from the moment
/// a slot is handed to one until it holds again: otherwise the clock could
/// skip between the two, while work is ready to run.
#[derive(Debug, Default)]
struct Handoff {
    /// Attempts waiting for a slot.
    waiting: usize,
    /// Of those, how many a freed slot was handed to.
    handed: usize,
    /// Held while `handed` is not zero.
    hold: Option<Hold>,
}

impl Handoff {
    /// Keeps `handed` within `waiting`, and the hold only while needed.
    fn settle(&mut self) {
        self.handed = self.handed.min(self.waiting);
        if self.handed == 0 {
            self.hold = None;
        }
    }
}

fn lock(handoff: &Mutex<Handoff>) -> std::sync::MutexGuard<'_, Handoff> {
    // Nothing panics while holding this lock; recover if it ever did.
    handoff.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many slots of a queue are held, for the slot gauges
/// (`steadfast_worker_task_slots_used`/`_available`).
#[derive(Debug)]
struct SlotCount {
    task_queue: String,
    limit: Option<usize>,
    held: Mutex<usize>,
}

impl SlotCount {
    /// One more slot held (`+1`) or one freed (`-1`); sets the gauges.
    fn change(&self, by: isize) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        *held = held.saturating_add_signed(by);
        crate::metrics::activity_slots(&self.task_queue, *held, self.limit);
    }
}

/// Held while an attempt runs; frees its slot when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    /// The queue's handoff, with the clock to hold for a waiter.
    handoff: Option<(Arc<Mutex<Handoff>>, Clock)>,
    count: Arc<SlotCount>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.count.change(-1);
        let Some(permit) = self.permit.take() else {
            return;
        };
        if let Some((handoff, clock)) = &self.handoff {
            // Before the slot is freed: the waiter it goes to is held for.
            let mut handoff = lock(handoff);
            if handoff.waiting > handoff.handed {
                handoff.handed += 1;
                if handoff.hold.is_none() {
                    handoff.hold = Some(clock.hold());
                }
            }
        }
        drop(permit);
    }
}

/// One attempt waiting for a slot (see [`Handoff`]). Register it and
/// start waiting in one poll: a waiter counted here is always queued on
/// the semaphore, so a freed slot goes to one of them.
struct Waiter<'a> {
    handoff: &'a Mutex<Handoff>,
    /// It got its slot (and holds again); otherwise it was cancelled.
    got: bool,
}

impl<'a> Waiter<'a> {
    fn new(handoff: &'a Mutex<Handoff>) -> Self {
        lock(handoff).waiting += 1;
        Waiter {
            handoff,
            got: false,
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut handoff = lock(self.handoff);
        handoff.waiting -= 1;
        if self.got {
            // Holding again: the slot handed to it needs no hold now. (A
            // cancelled waiter's slot goes on to the next waiter, still
            // held for, unless none is left: see `settle`.)
            handoff.handed = handoff.handed.saturating_sub(1);
        }
        handoff.settle();
    }
}

/// The longest spacing between attempt starts: rates below one start per
/// 10^9 s (about 32 years) count as that rate.
const MAX_SPACING: Duration = Duration::from_secs(1_000_000_000);

impl TaskQueue {
    pub(crate) fn new(worker: Worker, clock: Clock) -> Self {
        // More slots than a semaphore holds is no limit.
        let slots = worker
            .max_concurrent_activities
            .filter(|n| *n <= Semaphore::MAX_PERMITS)
            .map(|n| Arc::new(Semaphore::new(n)));
        let rate = worker.max_activities_per_second.map(|per_second| {
            let spacing = Duration::try_from_secs_f64(1.0 / per_second)
                .unwrap_or(MAX_SPACING)
                .min(MAX_SPACING);
            (spacing, Mutex::new(clock.instant()))
        });
        let handoff = (slots.is_some() && clock.is_virtual()).then(Arc::default);
        let in_use = Arc::new(SlotCount {
            task_queue: worker.task_queue.clone(),
            limit: slots.as_ref().and(worker.max_concurrent_activities),
            held: Mutex::new(0),
        });
        TaskQueue {
            in_use,
            worker,
            slots,
            rate,
            clock,
            handoff,
        }
    }

    pub(crate) fn workflow(&self, name: &str) -> Option<WorkflowFn> {
        self.worker.workflows.get(name).cloned()
    }

    pub(crate) fn activity(&self, name: &str) -> Option<ActivityFn> {
        self.worker.activities.get(name).cloned()
    }

    /// A slot if one is free and the rate limit allows a start now; never
    /// waits. A free slot is handed to those already waiting first, so
    /// this does not overtake them.
    pub(crate) fn try_acquire(&self) -> Option<Slot> {
        let permit = match &self.slots {
            Some(slots) => Some(slots.clone().try_acquire_owned().ok()?),
            None => None,
        };
        if let Some((spacing, next)) = &self.rate {
            let mut next = next.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.clock.instant();
            if *next > now {
                return None;
            }
            *next = now.checked_add(*spacing).unwrap_or(now);
        }
        Some(self.slot(permit))
    }

    fn slot(&self, permit: Option<OwnedSemaphorePermit>) -> Slot {
        self.in_use.change(1);
        Slot {
            count: self.in_use.clone(),
            permit,
            handoff: self
                .handoff
                .as_ref()
                .map(|h| (h.clone(), self.clock.clone())),
        }
    }

    /// Waits for a free slot, then for the rate limit's next start time.
    pub(crate) async fn acquire(&self) -> Slot {
        let permit = match (&self.slots, &self.handoff) {
            // The semaphore is never closed, so acquiring only waits.
            (Some(slots), None) => slots.clone().acquire_owned().await.ok(),
            (Some(slots), Some(handoff)) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    // Waiting on other attempts, not on time: a virtual
                    // clock may skip meanwhile (their sleeps, their timeouts).
                    let mut waiter = Waiter::new(handoff);
                    let permit = self.clock.idle_while(slots.clone().acquire_owned()).await;
                    waiter.got = true;
                    drop(waiter);
                    permit.ok()
                }
            },
            (None, _) => None,
        };
        if let Some((spacing, next)) = &self.rate {
            let start = {
                let mut next = next.lock().unwrap_or_else(|p| p.into_inner());
                let start = (*next).max(self.clock.instant());
                // Past what the clock holds (some 10^11 years on), the
                // limit no longer applies rather than panicking.
                *next = start.checked_add(*spacing).unwrap_or(start);
                start
            };
            // Only time is waited on: a virtual clock may skip to the start.
            self.clock.idle_until(Some(start)).await;
        }
        self.slot(permit)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_freed_slot_is_held_for_until_its_waiter_holds_again() {
        let clock = Clock::virtual_at(SystemTime::UNIX_EPOCH).unwrap();
        let queue = TaskQueue::new(
            Worker::new("default").max_concurrent_activities(1),
            clock.clone(),
        );
        // The test client holds; attempt A has the slot and its hold.
        let a_hold = clock.hold();
        let a_slot = queue.try_acquire().unwrap();
        // Attempt B waits for the slot without holding.
        let b_hold = clock.hold();
        let mut b = Box::pin(queue.acquire());
        assert!((&mut b).now_or_never().is_none());
        assert_eq!(clock.holds(), 2);
        // A frees the slot and ends: the slot's waiter is held for.
        drop(a_slot);
        drop(a_hold);
        assert_eq!(clock.holds(), 2);
        // B takes the slot and holds again; the hold kept for it goes.
        let b_slot = (&mut b).now_or_never().unwrap();
        assert_eq!(clock.holds(), 2);
        drop((b_slot, b_hold));
        assert_eq!(clock.holds(), 1);
        clock.stop();
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_no_hold_behind() {
        let clock = Clock::virtual_at(SystemTime::UNIX_EPOCH).unwrap();
        let queue = TaskQueue::new(
            Worker::new("default").max_concurrent_activities(1),
            clock.clone(),
        );
        let a_slot = queue.try_acquire().unwrap();
        let b_hold = clock.hold();
        let mut b = Box::pin(queue.acquire());
        assert!((&mut b).now_or_never().is_none());
        // The slot is handed to B, which is cancelled before it runs.
        drop(a_slot);
        drop(b);
        drop(b_hold);
        assert_eq!(clock.holds(), 1);
        clock.stop();
    }
}
