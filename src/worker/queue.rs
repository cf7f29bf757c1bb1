//! Task queues at run time: a worker's registrations with its concurrency
//! and rate limits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Worker;
use crate::activity::ActivityFn;
use crate::clock::Clock;
use crate::workflow::WorkflowFn;

/// One task queue's worker and its limits.
pub(crate) struct TaskQueue {
    worker: Worker,
    /// Free activity slots, when the worker limits concurrency.
    slots: Option<Arc<Semaphore>>,
    /// Spacing between attempt starts, and the earliest next start, when the
    /// worker limits the rate.
    rate: Option<(Duration, Mutex<Instant>)>,
    /// The engine's clock, which the rate limit waits on.
    clock: Clock,
}

/// Held while an attempt runs; frees its slot when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
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
        TaskQueue {
            worker,
            slots,
            rate,
            clock,
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
        Some(Slot { _permit: permit })
    }

    /// Waits for a free slot, then for the rate limit's next start time.
    pub(crate) async fn acquire(&self) -> Slot {
        let permit = match &self.slots {
            // The semaphore is never closed, so acquiring only waits.
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
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
        Slot { _permit: permit }
    }
}
