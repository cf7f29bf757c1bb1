//! Activities: their definitions, options, retry policy, context and errors.

mod cancellation;
mod context;
mod definition;
mod error;
mod info;
mod options;
pub(crate) mod retry;

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};

pub use cancellation::ActivityCancellationType;
pub use context::ActivityContext;
pub(crate) use context::{Beats, HeartbeatSink};
pub use definition::ActivityDef;
pub use error::ActivityError;
pub use info::ActivityInfo;
pub use options::ActivityOptions;
pub use retry::RetryPolicy;

use crate::history::Payload;

/// A registered activity with its types erased: decodes the input, runs one
/// attempt, encodes the result.
pub(crate) type ActivityFn = Arc<
    dyn Fn(ActivityContext, Payload) -> BoxFuture<'static, Result<Payload, ActivityError>>
        + Send
        + Sync,
>;

fn decode_input<I: DeserializeOwned>(input: &Payload) -> Result<I, ActivityError> {
    input
        .decode()
        .map_err(|e| ActivityError::non_retryable(e.to_string()).with_type("PayloadDecodeError"))
}

fn encode_output<O: Serialize>(output: Result<O, ActivityError>) -> Result<Payload, ActivityError> {
    Payload::encode(&output?)
        .map_err(|e| ActivityError::non_retryable(e.to_string()).with_type("PayloadEncodeError"))
}

/// Erases an async activity function.
pub(crate) fn erase_async<I, O, F, Fut>(f: F) -> ActivityFn
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ActivityError>> + Send + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |ctx, input| {
        let f = f.clone();
        Box::pin(async move {
            let input = decode_input::<I>(&input)?;
            encode_output(f(ctx, input).await)
        })
    })
}

/// Erases a blocking activity function; each attempt runs on tokio's
/// blocking thread pool so it never stalls workflow or async activity work.
pub(crate) fn erase_blocking<I, O, F>(f: F) -> ActivityFn
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(ActivityContext, I) -> Result<O, ActivityError> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |ctx, input| {
        let f = f.clone();
        Box::pin(async move {
            let input = decode_input::<I>(&input)?;
            let joined = tokio::task::spawn_blocking(move || f(ctx, input)).await;
            match joined {
                Ok(output) => encode_output(output),
                Err(e) => {
                    // The same failure as an async activity's panic, with
                    // the panic's own message.
                    let message = match e.try_into_panic() {
                        Ok(panic) => crate::panic::message(&*panic),
                        Err(e) => e.to_string(),
                    };
                    Err(
                        ActivityError::retryable(format!("the activity panicked: {message}"))
                            .with_type("ActivityPanic"),
                    )
                }
            }
        })
    })
}
