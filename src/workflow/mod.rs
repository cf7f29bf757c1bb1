//! Workflows: definitions, the context, durable futures and replay.

mod context;
mod definition;
mod error;
mod future;
pub(crate) mod replay;

pub use context::WorkflowContext;
pub use definition::WorkflowDef;
pub use error::{ActivityFailure, NondeterminismError, WorkflowError};
pub use future::{ActivityFuture, TimerFuture};
pub use replay::ParkReason;

pub(crate) use definition::{WorkflowFn, erase};
pub(crate) use replay::WorkflowMachine;
