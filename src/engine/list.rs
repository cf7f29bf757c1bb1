//! Listing runs: filters, pages, open runs first, then closed ones, newest
//! first. The store answers from its indexes (`store/redb/visibility.rs`), so a
//! page costs about the same with a thousand runs in the file or a million.

use std::time::SystemTime;

use crate::engine::PauseReason;
use crate::error::ClientError;
use crate::history::{Payload, RunId, SearchAttributeValue, SearchAttributes, WorkflowStatus};
use crate::store::{Query, QueryPage, Suffix};
use crate::worker::Shared;
use crate::workflow::ParkReason;

/// Which runs [`Engine::list`](crate::Engine::list) returns. Every filter
/// set must hold (they are ANDed).
///
/// Runs come in Temporal's default order: open runs first (newest start
/// first), then closed runs, newest close first. The filter is answered by
/// an index: a search attribute equality, else the workflow ID prefix, else
/// a search attribute range, else the type, else the status; the other
/// filters are checked on the runs that index yields.
///
/// Cost: a page read from an ordered index (no filter, status, type, a
/// search attribute equality) costs about the same however many runs the
/// file holds. A workflow ID prefix or an attribute range reads every run
/// that matches it, for each page, to sort them: keep such filters narrow,
/// or combine a broad one with a type or status filter and no prefix. A
/// filter the chosen index cannot check (a rare status among many runs of
/// one type) reads candidates until the page fills.
///
/// ```
/// use steadfast::{ListFilter, WorkflowStatus};
/// let filter = ListFilter::new()
///     .with_status(WorkflowStatus::Running)
///     .with_search_attribute("CustomerId", "c-42")
///     .with_page_size(50);
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
    /// Only closed runs that closed at or after this time.
    pub closed_after: Option<SystemTime>,
    /// Only closed runs that closed before this time.
    pub closed_before: Option<SystemTime>,
    /// Only runs whose workflow ID starts with this.
    pub workflow_id_prefix: Option<String>,
    /// Only runs whose search attribute of each name equals the value (a
    /// `KeywordList` attribute matches a `Keyword` it holds).
    pub search_attributes: SearchAttributes,
    /// Only runs whose attribute `.0` is in `[.1, .2)`: bounds of one kind,
    /// `Int`, `Double` or `Datetime`.
    pub search_attribute_ranges: Vec<(String, SearchAttributeValue, SearchAttributeValue)>,
    /// `Some(true)`: only running runs this engine holds parked (see
    /// [`with_parked`](Self::with_parked)); `Some(false)`: only runs not
    /// parked.
    pub parked: Option<bool>,
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
            closed_after: None,
            closed_before: None,
            workflow_id_prefix: None,
            search_attributes: SearchAttributes::new(),
            search_attribute_ranges: Vec::new(),
            parked: None,
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

    /// Only closed runs that closed in `[after, before)`.
    pub fn with_close_time_range(mut self, after: SystemTime, before: SystemTime) -> Self {
        self.closed_after = Some(after);
        self.closed_before = Some(before);
        self
    }

    /// Only runs whose workflow ID starts with `prefix`.
    pub fn with_workflow_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.workflow_id_prefix = Some(prefix.into());
        self
    }

    /// Only runs whose search attribute `name` equals `value` (or, for a
    /// keyword list, holds the keyword).
    pub fn with_search_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<SearchAttributeValue>,
    ) -> Self {
        self.search_attributes.insert(name, value);
        self
    }

    /// Only runs whose search attribute `name` is in `[from, to)`; both of
    /// one kind: `Int`, `Double` or `Datetime`.
    pub fn with_search_attribute_range(
        mut self,
        name: impl Into<String>,
        from: impl Into<SearchAttributeValue>,
        to: impl Into<SearchAttributeValue>,
    ) -> Self {
        self.search_attribute_ranges
            .push((name.into(), from.into(), to.into()));
        self
    }

    /// `true`: only runs that are parked (they wait for a fix, or for the
    /// disk, see [`ParkReason`]); `false`: only runs that are not.
    ///
    /// Parked is what this engine has seen since it opened the file: a run
    /// parks when it runs, so a run that waits on a timer and would not
    /// replay is listed once it has tried. `result()` on a parked run keeps
    /// waiting; [`WorkflowHandle::result_or_parked`](crate::WorkflowHandle::result_or_parked)
    /// returns. Cost: the running runs are read until the page fills.
    pub fn with_parked(mut self, parked: bool) -> Self {
        self.parked = Some(parked);
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

    /// The store's form of the filter.
    pub(crate) fn query(&self) -> Result<Query, ClientError> {
        for (name, from, to) in &self.search_attribute_ranges {
            let ranged = matches!(
                (from, to),
                (SearchAttributeValue::Int(_), SearchAttributeValue::Int(_))
                    | (
                        SearchAttributeValue::Double(_),
                        SearchAttributeValue::Double(_)
                    )
                    | (
                        SearchAttributeValue::Datetime(_),
                        SearchAttributeValue::Datetime(_)
                    )
            );
            if !ranged {
                return Err(ClientError::InvalidArgument(format!(
                    "the range of search attribute {name:?} has bounds {} and {}; \
                     give two Int, two Double or two Datetime bounds",
                    from.kind(),
                    to.kind()
                )));
            }
        }
        Ok(Query {
            status: self.status,
            workflow_type: self.workflow_type.clone(),
            started: (self.started_after, self.started_before),
            closed: (self.closed_after, self.closed_before),
            id_prefix: self.workflow_id_prefix.clone(),
            attributes: self
                .search_attributes
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect(),
            ranges: self.search_attribute_ranges.clone(),
            // The field is public, so any size can arrive here.
            page_size: self.page_size.max(1),
            after: self.next_page_token.map(|t| t.after),
        })
    }
}

/// Where a page of [`Engine::list`](crate::Engine::list) ended: the place
/// of its last run in list order (not an offset), so the next page starts
/// right after it even when runs were added or closed meanwhile.
///
/// Paging while runs change: a run that did not change is listed exactly
/// once; a run started after the first page sorts before the token and is
/// not listed; a run listed as open that closes meanwhile moves to the
/// closed runs and may be listed again there, now closed.
///
/// [`to_bytes`](Self::to_bytes) and [`from_bytes`](Self::from_bytes) carry
/// it across a process boundary (a web page, a command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageToken {
    after: Suffix,
}

impl PageToken {
    /// The token as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.after.to_vec()
    }

    /// A token from [`to_bytes`](Self::to_bytes); `None` for bytes that are
    /// not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<PageToken> {
        let after: Suffix = bytes.try_into().ok()?;
        (after[0] <= 1).then_some(PageToken { after })
    }
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
    /// Its search attributes: those given at the start, with the workflow's
    /// upserts applied.
    pub search_attributes: SearchAttributes,
    /// The memo given at the start (JSON; [`Payload::decode`] reads it).
    pub memo: Option<Payload>,
    /// Why the run is parked, when this engine holds it parked.
    pub parked: Option<ParkReason>,
    /// Why the run is paused, if it is: an operator's pause (kept in the
    /// run's record), or a park that waits for a fix (see
    /// [`WorkflowDescription::paused`](crate::WorkflowDescription::paused)).
    pub paused: Option<PauseReason>,
}

impl WorkflowExecutionInfo {
    /// Sets the park reason this engine holds for the run, and the pause
    /// it makes.
    fn set_parked(&mut self, parked: Option<ParkReason>) {
        let requested = match self.paused.take() {
            Some(PauseReason::Requested(reason)) => Some(reason),
            _ => None,
        };
        self.paused = PauseReason::of(requested.as_ref(), parked.as_ref());
        self.parked = parked;
    }
}

/// A page of runs: open runs first, then closed ones, newest first.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkflowPage {
    /// The runs of this page.
    pub executions: Vec<WorkflowExecutionInfo>,
    /// Set when more runs match: pass it back for the next page.
    pub next_page_token: Option<PageToken>,
}

/// A page as the public type.
pub(crate) fn page(found: QueryPage) -> WorkflowPage {
    let executions = found
        .runs
        .into_iter()
        .map(|(run_id, r)| WorkflowExecutionInfo {
            workflow_id: r.workflow_id,
            run_id,
            workflow_type: r.workflow_type,
            task_queue: r.task_queue,
            status: r.status,
            start_time: r.start_time,
            close_time: r.close_time,
            history_length: r.history_len,
            search_attributes: r.search_attributes,
            memo: r.memo,
            parked: None,
            paused: r
                .paused
                .filter(|_| !r.status.is_closed())
                .map(PauseReason::Requested),
        })
        .collect();
    WorkflowPage {
        executions,
        next_page_token: found.next.map(|after| PageToken { after }),
    }
}

/// A page of runs matching `filter`, with each run's park reason; with a
/// [`parked`](ListFilter::parked) filter, pages of the store are read until
/// the page fills (each asked for no more runs than are missing, so that
/// the token of the last one read is exactly where this page ends).
pub(crate) async fn list(
    shared: &Shared,
    filter: &ListFilter,
) -> Result<WorkflowPage, ClientError> {
    let mut query = filter.query()?;
    let parked_reason = |run_id| {
        shared
            .watch(run_id)
            .and_then(|s| s.borrow().parked().cloned())
    };
    let Some(parked) = filter.parked else {
        let mut found = page(shared.store.list(&query).await?);
        for run in &mut found.executions {
            run.set_parked(parked_reason(run.run_id));
        }
        return Ok(found);
    };
    if parked {
        // Only running runs park.
        match query.status {
            None => query.status = Some(WorkflowStatus::Running),
            Some(WorkflowStatus::Running) => {}
            Some(_) => {
                return Ok(WorkflowPage {
                    executions: Vec::new(),
                    next_page_token: None,
                });
            }
        }
    }
    let want = query.page_size;
    let mut executions = Vec::with_capacity(want);
    loop {
        query.page_size = want - executions.len();
        let found = page(shared.store.list(&query).await?);
        for mut run in found.executions {
            run.set_parked(parked_reason(run.run_id));
            if run.parked.is_some() == parked {
                executions.push(run);
            }
        }
        match found.next_page_token {
            Some(token) if executions.len() < want => query.after = Some(token.after),
            next_page_token => {
                return Ok(WorkflowPage {
                    executions,
                    next_page_token,
                });
            }
        }
    }
}
