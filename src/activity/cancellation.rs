//! `ActivityCancellationType`: what cancelling one activity from workflow
//! code waits for (Temporal's activity cancellation types).

/// What [`ActivityFuture::cancel`](crate::ActivityFuture::cancel) does and
/// when the future then resolves, as Temporal's `ActivityCancellationType`
/// (temporalio/features `activity/cancel_*`). Set with
/// [`ActivityOptions::with_cancellation_type`](crate::ActivityOptions::with_cancellation_type).
///
/// Except for [`Abandon`](Self::Abandon) the request is a command recorded
/// in history (`ActivityCancelRequested`), so replay cancels at the same
/// point; the running attempt sees it at once through
/// [`ActivityContext::is_cancelled`](crate::ActivityContext::is_cancelled)
/// (no heartbeat needs to carry it: attempts run in the engine's process),
/// and a failure it returns then is final (retry state `CancelRequested`).
/// An attempt that had not begun (a retry waiting for its backoff, or one
/// waiting for a worker slot) never begins: the activity ends as failed
/// with type `"ActivityCancelled"` in the same commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActivityCancellationType {
    /// The request is recorded and the attempt told; the future resolves
    /// as [`ActivityFailure::Cancelled`](crate::ActivityFailure::Cancelled)
    /// at once, and whatever the activity does afterwards is recorded and
    /// not seen by the code. Temporal's default for activities.
    #[default]
    TryCancel,
    /// As [`TryCancel`](Self::TryCancel), resolving once the request is
    /// recorded: in an embedded engine that is the commit of the step that
    /// made it, so the code sees no difference from `TryCancel`.
    WaitCancellationRequested,
    /// The request is recorded and the attempt told; the future resolves
    /// with the activity's own end: its value if it completed anyway, else
    /// [`ActivityFailure::Cancelled`](crate::ActivityFailure::Cancelled)
    /// once it failed (or was ended before it began).
    WaitCancellationCompleted,
    /// Nothing is recorded and the attempt is not told: the future resolves
    /// as [`ActivityFailure::Cancelled`](crate::ActivityFailure::Cancelled)
    /// at once, and the activity runs on to its end, recorded and not seen
    /// by the code.
    Abandon,
}

impl ActivityCancellationType {
    /// True when cancelling records the request and tells the attempt.
    pub(crate) fn requests(self) -> bool {
        !matches!(self, ActivityCancellationType::Abandon)
    }

    /// True when the future resolves at once, without waiting for the
    /// activity's end.
    pub(crate) fn resolves_at_once(self) -> bool {
        !matches!(self, ActivityCancellationType::WaitCancellationCompleted)
    }
}
