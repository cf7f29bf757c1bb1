//! What a `list` asks a store for, and the order runs are listed in: open
//! runs first (newest start first), then closed runs (newest close first),
//! as one sortable key per run, its *order suffix*, which is also the page
//! token. Backend-neutral: the redb store ends every index key with it.

use std::time::SystemTime;

use super::record::RunRecord;
use crate::history::{RunId, SearchAttributeValue, WorkflowStatus};

/// Length of the order suffix that ends every key.
pub(crate) const SUFFIX_LEN: usize = 25;
/// A run's place in list order; also a page token.
pub(crate) type Suffix = [u8; SUFFIX_LEN];

/// The order suffix's first byte: the group of open runs, listed first.
pub(crate) const OPEN: u8 = 0;
/// The group of closed runs.
pub(crate) const CLOSED: u8 = 1;

/// Which runs a `list` wants (the store's form of `ListFilter`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Query {
    /// Only runs with this status.
    pub(crate) status: Option<WorkflowStatus>,
    /// Only runs of this workflow type.
    pub(crate) workflow_type: Option<String>,
    /// Start time in `[.0, .1)`.
    pub(crate) started: (Option<SystemTime>, Option<SystemTime>),
    /// Close time in `[.0, .1)`; open runs never match.
    pub(crate) closed: (Option<SystemTime>, Option<SystemTime>),
    /// Only workflow IDs that start with this.
    pub(crate) id_prefix: Option<String>,
    /// Each attribute equals (or, for a keyword list, holds) the value.
    pub(crate) attributes: Vec<(String, SearchAttributeValue)>,
    /// Each attribute is of the bounds' kind and in `[from, to)`.
    pub(crate) ranges: Vec<(String, SearchAttributeValue, SearchAttributeValue)>,
    /// Most runs in the page (taken as at least one).
    pub(crate) page_size: usize,
    /// The suffix of the last run of the previous page.
    pub(crate) after: Option<Suffix>,
}

/// One page of a query.
#[derive(Debug)]
pub(crate) struct QueryPage {
    pub(crate) runs: Vec<(RunId, RunRecord)>,
    /// Set when more runs match.
    pub(crate) next: Option<Suffix>,
}

/// Nanoseconds since the epoch (0 before it, saturated far after it).
pub(crate) fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The run's place in list order.
pub(crate) fn suffix(run_id: RunId, record: &RunRecord) -> Suffix {
    let (group, time) = match record.close_time {
        Some(close) if record.status.is_closed() => (CLOSED, close),
        _ => (OPEN, record.start_time),
    };
    let mut out = [0u8; SUFFIX_LEN];
    out[0] = group;
    out[1..9].copy_from_slice(&(!nanos(time)).to_be_bytes());
    out[9..].copy_from_slice(&(!run_id.as_u128()).to_be_bytes());
    out
}
