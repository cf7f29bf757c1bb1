//! Workflows: definitions, the context, durable futures and replay.

mod context;
mod definition;
mod error;
mod future;
pub(crate) mod replay;

pub use context::WorkflowContext;
pub use definition::{QueryDef, SignalDef, WorkflowDef};
pub use error::{ActivityFailure, Cancelled, NondeterminismError, SignalError, WorkflowError};
pub use future::{ActivityFuture, SignalFuture, TimerFuture};
pub use replay::ParkReason;

pub(crate) use definition::{WorkflowFn, erase};
pub(crate) use replay::WorkflowMachine;
