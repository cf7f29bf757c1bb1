//! Listing runs: filters, pages, newest first.

use std::time::SystemTime;

use crate::history::{RunId, WorkflowStatus};
use crate::store::RunRecord;

/// Which runs [`Engine::list`](crate::Engine::list) returns.
///
/// ```
/// use steadfast::{ListFilter, WorkflowStatus};
/// let filter = ListFilter::new().with_status(WorkflowStatus::Running).with_page_size(50);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ListFilter {
    /// Only runs with this status.
    pub status: Option<WorkflowStatus>,
    /// Only runs of this workflow type.
    pub workflow_type: Option<String>,
    /// Only runs started at or after this time.
    pub started_after: Option<SystemTime>,
    /// Only runs started before this time.
    pub started_before: Option<SystemTime>,
    /// Most runs per page. Default: 100.
    pub page_size: usize,
    /// Where the previous page ended.
    pub next_page_token: Option<PageToken>,
}

impl Default for ListFilter {
    fn default() -> Self {
        ListFilter {
            status: None,
            workflow_type: None,
            started_after: None,
            started_before: None,
            page_size: 100,
            next_page_token: None,
        }
    }
}

impl ListFilter {
    /// Every run, 100 per page.
    pub fn new() -> Self {
        ListFilter::default()
    }

    /// Only runs with `status`.
    pub fn with_status(mut self, status: WorkflowStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs of `workflow_type`.
    pub fn with_workflow_type(mut self, workflow_type: impl Into<String>) -> Self {
        self.workflow_type = Some(workflow_type.into());
        self
    }

    /// Only runs started in `[after, before)`.
    pub fn with_start_time_range(mut self, after: SystemTime, before: SystemTime) -> Self {
        self.started_after = Some(after);
        self.started_before = Some(before);
        self
    }

    /// Sets the page size (at least 1).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Continues after a previous page.
    pub fn with_next_page_token(mut self, token: PageToken) -> Self {
        self.next_page_token = Some(token);
        self
    }

    fn matches(&self, record: &RunRecord) -> bool {
        self.status.is_none_or(|s| s == record.status)
            && self
                .workflow_type
                .as_ref()
                .is_none_or(|t| *t == record.workflow_type)
            && self.started_after.is_none_or(|t| record.start_time >= t)
            && self.started_before.is_none_or(|t| record.start_time < t)
    }
}

/// Where a page of [`Engine::list`](crate::Engine::list) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageToken {
    start_time: SystemTime,
    run_id: RunId,
}

/// One run, as listed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkflowExecutionInfo {
    /// The workflow ID.
    pub workflow_id: String,
    /// The run.
    pub run_id: RunId,
    /// The workflow's registered name.
    pub workflow_type: String,
    /// The task queue it runs on.
    pub task_queue: String,
    /// Its status.
    pub status: WorkflowStatus,
    /// When it started.
    pub start_time: SystemTime,
    /// When it closed.
    pub close_time: Option<SystemTime>,
    /// Number of events in its history.
    pub history_length: u64,
}

/// A page of runs, newest first.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkflowPage {
    /// The runs of this page.
    pub executions: Vec<WorkflowExecutionInfo>,
    /// Set when more runs match: pass it back for the next page.
    pub next_page_token: Option<PageToken>,
}

/// Filters, orders (newest first) and pages `runs`.
pub(crate) fn page(runs: Vec<(RunId, RunRecord)>, filter: &ListFilter) -> WorkflowPage {
    let mut matching: Vec<(RunId, RunRecord)> = runs
        .into_iter()
        .filter(|(_, r)| filter.matches(r))
        .collect();
    matching.sort_by_key(|(id, r)| std::cmp::Reverse((r.start_time, *id)));
    let start = match filter.next_page_token {
        Some(token) => matching
            .iter()
            .position(|(id, r)| (r.start_time, *id) < (token.start_time, token.run_id))
            .unwrap_or(matching.len()),
        None => 0,
    };
    // The field is public, so any size can arrive here.
    let page_size = filter.page_size.max(1);
    let end = start.saturating_add(page_size).min(matching.len());
    let executions: Vec<WorkflowExecutionInfo> = matching[start..end]
        .iter()
        .map(|(run_id, r)| WorkflowExecutionInfo {
            workflow_id: r.workflow_id.clone(),
            run_id: *run_id,
            workflow_type: r.workflow_type.clone(),
            task_queue: r.task_queue.clone(),
            status: r.status,
            start_time: r.start_time,
            close_time: r.close_time,
            history_length: r.history_len,
        })
        .collect();
    let next_page_token = (end < matching.len())
        .then(|| executions.last())
        .flatten()
        .map(|last| PageToken {
            start_time: last.start_time,
            run_id: last.run_id,
        });
    WorkflowPage {
        executions,
        next_page_token,
    }
}
