//! `WorkflowDef`: a workflow's durable name with its input and output types.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};

use super::context::WorkflowContext;
use super::error::WorkflowError;
use crate::history::{Payload, PayloadError};

/// A workflow's name as stored in history, with its input and output types.
///
/// ```
/// use steadfast::WorkflowDef;
/// const SAY_HELLO_WORKFLOW: WorkflowDef<String, String> = WorkflowDef::new("SayHello");
/// ```
pub struct WorkflowDef<I, O> {
    name: &'static str,
    types: PhantomData<fn(I) -> O>,
}

impl<I, O> WorkflowDef<I, O> {
    /// Names a workflow type. The name is its durable identity.
    pub const fn new(name: &'static str) -> Self {
        WorkflowDef {
            name,
            types: PhantomData,
        }
    }

    /// The name stored in history.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<I, O> Clone for WorkflowDef<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for WorkflowDef<I, O> {}

impl<I, O> fmt::Debug for WorkflowDef<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkflowDef({:?})", self.name)
    }
}

pub(crate) type WorkflowFuture = BoxFuture<'static, Result<Payload, WorkflowError>>;

/// A registered workflow with its types erased. Fails only when the stored
/// input does not decode as the workflow's input type.
pub(crate) type WorkflowFn =
    Arc<dyn Fn(WorkflowContext, &Payload) -> Result<WorkflowFuture, PayloadError> + Send + Sync>;

pub(crate) fn erase<I, O, F, Fut>(f: F) -> WorkflowFn
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
{
    Arc::new(move |ctx, input| {
        let input: I = input.decode()?;
        let fut = f(ctx, input);
        Ok(Box::pin(async move {
            let output = fut.await?;
            Payload::encode(&output).map_err(WorkflowError::from)
        }))
    })
}

/// A signal's name as stored in history, with its payload type.
///
/// ```
/// use steadfast::SignalDef;
/// const APPROVE: SignalDef<String> = SignalDef::new("approve");
/// ```
pub struct SignalDef<T> {
    name: &'static str,
    types: PhantomData<fn(T)>,
}

impl<T> SignalDef<T> {
    /// Names a signal. The name is stored in history with each signal.
    pub const fn new(name: &'static str) -> Self {
        SignalDef {
            name,
            types: PhantomData,
        }
    }

    /// The name stored in history.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<T> Clone for SignalDef<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SignalDef<T> {}

impl<T> fmt::Debug for SignalDef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignalDef({:?})", self.name)
    }
}

/// A query's name with its answer type `R` and its argument type `I`
/// (none by default). Queries read a workflow's state without changing it
/// and are never recorded in history.
///
/// The answer type comes first, so that a query without an argument is
/// still `QueryDef<R>` (`QueryDef<R, ()>`), as before queries took one;
/// Temporal's order would be argument, then answer.
///
/// ```
/// use steadfast::QueryDef;
/// const STATUS: QueryDef<String> = QueryDef::new("status");
/// // Takes the number of lines to return.
/// const TAIL: QueryDef<Vec<String>, usize> = QueryDef::new("tail");
/// ```
pub struct QueryDef<R, I = ()> {
    name: &'static str,
    types: PhantomData<fn(I) -> R>,
}

impl<R, I> QueryDef<R, I> {
    /// Names a query.
    pub const fn new(name: &'static str) -> Self {
        QueryDef {
            name,
            types: PhantomData,
        }
    }

    /// The query's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<R, I> Clone for QueryDef<R, I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R, I> Copy for QueryDef<R, I> {}

impl<R, I> fmt::Debug for QueryDef<R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryDef({:?})", self.name)
    }
}

/// A registered query handler with its argument and answer types erased.
pub(crate) type QueryFn = Arc<dyn Fn(&Payload) -> Result<Payload, QueryFault> + Send + Sync>;

/// Why a query handler gave no answer.
#[derive(Debug)]
pub(crate) enum QueryFault {
    /// The argument does not decode as the handler's argument type.
    Argument(PayloadError),
    /// The answer does not encode.
    Answer(PayloadError),
}
