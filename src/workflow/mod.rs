//! Workflows: definitions, the context, durable futures and replay.

mod child;
mod context;
mod continue_as_new;
mod definition;
mod error;
mod external;
mod future;
mod local_activity;
pub(crate) mod replay;
mod seq_map;
mod signal_handler;
mod update;

pub use child::{
    ChildResultFuture, ChildWorkflowCancellationType, ChildWorkflowError, ChildWorkflowHandle,
    ChildWorkflowOptions, StartChildFuture,
};
pub use context::WorkflowContext;
pub(crate) use continue_as_new::HistoryLimits;
pub use continue_as_new::{
    ContinueAsNewOptions, DEFAULT_SUGGEST_CONTINUE_AS_NEW_BYTES,
    DEFAULT_SUGGEST_CONTINUE_AS_NEW_EVENTS, DEFAULT_WARN_HISTORY_EVENTS,
};
pub use definition::{QueryDef, SignalDef, WorkflowDef};
pub use error::{ActivityFailure, Cancelled, NondeterminismError, SignalError, WorkflowError};
pub use external::{ExternalWorkflowError, ExternalWorkflowFuture};
pub use future::{ActivityFuture, SignalFuture, TimerFuture};
pub(crate) use local_activity::LocalRequest;
pub use local_activity::{LocalActivityFuture, LocalActivityOptions};
pub use replay::ParkReason;
pub(crate) use update::Refusal;
pub use update::UpdateDef;
pub use update::{DEFAULT_MAX_IN_FLIGHT_UPDATES, DEFAULT_MAX_UPDATES_PER_RUN};

pub(crate) use definition::{QueryFault, WorkflowFn, erase};
pub(crate) use replay::WorkflowMachine;
