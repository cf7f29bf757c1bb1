//! Counts of runs by status: what the web UI shows beside the list, and
//! `steadfast workflow count`, at a cost that does not grow with the number
//! of runs in the file (the store keeps the counts as runs start, close and
//! are removed).

use crate::error::ClientError;
use crate::history::WorkflowStatus;
use crate::worker::Shared;

/// How many runs of each status the engine's store holds, as
/// [`Engine::count_workflows`](crate::Engine::count_workflows) answers
/// (Temporal's `CountWorkflowExecutions` grouped by `ExecutionStatus`).
///
/// Every run is counted, the closed runs of a continue-as-new chain each
/// as `ContinuedAsNew`; a run removed by retention or `delete` is no longer
/// counted. Runs parked on nondeterminism are `Running` and also counted in
/// [`parked`](Self::parked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowCounts {
    by_status: Vec<(WorkflowStatus, u64)>,
    parked: u64,
}

impl WorkflowCounts {
    /// The number of runs with `status`.
    pub fn get(&self, status: WorkflowStatus) -> u64 {
        self.by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |&(_, n)| n)
    }

    /// Every status with its count, each status once (zero for none),
    /// `Running` first.
    pub fn by_status(&self) -> impl Iterator<Item = (WorkflowStatus, u64)> + '_ {
        self.by_status.iter().copied()
    }

    /// The number of runs of every status.
    pub fn total(&self) -> u64 {
        self.by_status.iter().map(|&(_, n)| n).sum()
    }

    /// How many running runs this engine holds parked on a nondeterminism
    /// error (part of the `Running` count); always 0 on a read-only engine,
    /// which runs no workflow code.
    pub fn parked(&self) -> u64 {
        self.parked
    }
}

pub(crate) async fn count(shared: &Shared) -> Result<WorkflowCounts, ClientError> {
    let by_status = shared.store.counts().await?;
    Ok(WorkflowCounts {
        by_status,
        parked: shared.parked_count(),
    })
}
