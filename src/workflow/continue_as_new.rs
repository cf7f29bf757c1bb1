//! Continue-as-new: what a run asks of its successor, and the history
//! sizes at which the engine suggests it.

use crate::history::{Payload, SearchAttributes};

/// Events in a run's history at which
/// [`continue_as_new_suggested`](crate::WorkflowContext::continue_as_new_suggested)
/// turns true by default (Temporal's `limit.historyCount.suggestContinueAsNew`).
pub const DEFAULT_SUGGEST_CONTINUE_AS_NEW_EVENTS: u64 = 4096;
/// History bytes at which the suggestion turns true by default: 4 MiB
/// (Temporal's `limit.historySize.suggestContinueAsNew`).
pub const DEFAULT_SUGGEST_CONTINUE_AS_NEW_BYTES: u64 = 4 * 1024 * 1024;
/// Events in a run's history past which the engine logs a warning once
/// per run, by default (Temporal warns at 10,240).
pub const DEFAULT_WARN_HISTORY_EVENTS: u64 = 10_240;

/// What may change for the next run of a continue-as-new; everything
/// else carries over (the workflow ID, the search attributes and memo, the
/// run timeout, and the execution timeout, which spans the chain). As
/// Temporal's `ContinueAsNewOptions`, trimmed to what steadfast has.
///
/// ```
/// use steadfast::ContinueAsNewOptions;
/// let options = ContinueAsNewOptions::new().with_task_queue("v2");
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ContinueAsNewOptions {
    /// The next run's task queue; this run's when `None`.
    pub task_queue: Option<String>,
    /// Replaces the search attributes (this run's, upserts included, carry
    /// over when `None`).
    pub search_attributes: Option<SearchAttributes>,
    /// Replaces the memo (this run's carries over when `None`).
    pub memo: Option<Payload>,
}

impl ContinueAsNewOptions {
    /// Everything carries over.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the next run on another task queue.
    pub fn with_task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.task_queue = Some(task_queue.into());
        self
    }

    /// Gives the next run these search attributes instead of this run's.
    pub fn with_search_attributes(mut self, attributes: SearchAttributes) -> Self {
        self.search_attributes = Some(attributes);
        self
    }

    /// Gives the next run this memo instead of this run's. A memo that does
    /// not encode as JSON is ignored (this run's carries over).
    pub fn with_memo(mut self, memo: impl serde::Serialize) -> Self {
        if let Ok(payload) = Payload::encode(&memo) {
            self.memo = Some(payload);
        }
        self
    }
}

/// A run's request to continue as new, carried out of the workflow code
/// inside the [`WorkflowError`](crate::WorkflowError) it returns.
#[derive(Clone, Debug)]
pub(crate) struct ContinueAsNew {
    pub(crate) workflow_type: String,
    pub(crate) input: Payload,
    pub(crate) options: ContinueAsNewOptions,
}

/// What a run's history may grow to: when the engine suggests continuing
/// as new, when it warns, and how many updates a run takes (in flight,
/// and in all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HistoryLimits {
    pub(crate) suggest_events: u64,
    pub(crate) suggest_bytes: u64,
    pub(crate) warn_events: u64,
    pub(crate) max_in_flight_updates: u32,
    pub(crate) max_updates_per_run: u32,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            suggest_events: DEFAULT_SUGGEST_CONTINUE_AS_NEW_EVENTS,
            suggest_bytes: DEFAULT_SUGGEST_CONTINUE_AS_NEW_BYTES,
            warn_events: DEFAULT_WARN_HISTORY_EVENTS,
            max_in_flight_updates: super::update::DEFAULT_MAX_IN_FLIGHT_UPDATES,
            max_updates_per_run: super::update::DEFAULT_MAX_UPDATES_PER_RUN,
        }
    }
}
