//! Terminating one run: through its actor, or, when no actor can take it
//! (its records could not be loaded), by closing it in the store directly.
//! Used by [`Engine::terminate`](super::Engine::terminate) and by the owner
//! of a run that another process asked to terminate (`worker::remote`), so
//! that a run parked at its owner is terminated wherever the call was made.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::codec;
use crate::error::ClientError;
use crate::history::{Event, EventKind, RunId, WorkflowStatus};
use crate::store::{StoreError, WriteOp, WriteOutcome};
use crate::worker::{RunMsg, Shared};

/// How often a terminate of a run without an actor reads the history again
/// when the run moved on under it.
const CLOSE_ATTEMPTS: usize = 5;

/// Terminates run `run_id` of `workflow_id`: its actor records the
/// termination, or, when the run is parked without one, the store closes
/// it after its history as stored now.
pub(crate) async fn terminate_run(
    shared: &Arc<Shared>,
    workflow_id: &str,
    run_id: RunId,
    reason: &str,
) -> Result<(), ClientError> {
    if shared.closing() {
        return Err(ClientError::ShutDown);
    }
    let (ack, answer) = oneshot::channel();
    let msg = RunMsg::Terminate {
        reason: reason.to_string(),
        ack,
    };
    let delivered = match shared.deliver(run_id, msg) {
        Ok(()) => answer.await.ok(),
        Err(_) => None,
    };
    match delivered {
        Some(answered) => return answered,
        None => match super::not_live(shared, workflow_id, run_id).await {
            ClientError::Parked { .. } => {}
            other => return Err(other),
        },
    }
    // No actor can take it (the run's records could not be loaded):
    // close it in the file directly, after the history as stored now.
    // The close is conditional: if the run moved on meanwhile (an actor
    // loaded it again and appended), read again and retry.
    for _ in 0..CLOSE_ATTEMPTS {
        let record = shared
            .store
            .run(run_id, workflow_id)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                workflow_id: workflow_id.to_string(),
            })?;
        let last = shared.store.history_len(run_id, workflow_id).await?;
        let Some(event_id) = last.checked_add(1) else {
            return Err(ClientError::Corrupt {
                workflow_id: workflow_id.to_string(),
                message: format!("its history ends at event {last}, the last there can be"),
            });
        };
        let at = shared.clock.now();
        let event = Event {
            event_id,
            timestamp: at,
            kind: EventKind::WorkflowTerminated {
                reason: reason.to_string(),
            },
        };
        let op = WriteOp::Close {
            run_id,
            workflow_id: workflow_id.to_string(),
            event_id,
            at,
            event: codec::encode(&event).map_err(|e| ClientError::Storage(e.to_string()))?,
            status: WorkflowStatus::Terminated,
        };
        // A child's close tells its parent in the same commit.
        let (op, notice) =
            crate::worker::close_telling_parent(shared, run_id, workflow_id, &event.kind, op).await;
        match shared.store.write(op).await {
            Ok(WriteOutcome::AlreadyClosed(status)) => {
                return Err(ClientError::WorkflowClosed {
                    workflow_id: workflow_id.to_string(),
                    status,
                });
            }
            Ok(_) => {
                crate::metrics::workflow_closed(
                    WorkflowStatus::Terminated,
                    &record.workflow_type,
                    &record.task_queue,
                );
                shared.closed_without_actor(run_id, WorkflowStatus::Terminated);
                if let Some(notice) = notice {
                    crate::worker::tell_parent_after_close(shared, notice);
                }
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ClientError::Storage(format!(
        "workflow {workflow_id:?} kept changing while it was terminated; try again"
    )))
}
