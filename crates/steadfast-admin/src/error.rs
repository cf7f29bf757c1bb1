//! Errors: [`AdminError`] when the endpoint cannot start, and the JSON
//! error answer of a request that fails (`ApiError`).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use steadfast::{ClientError, ScheduleError, UpdateError};

use crate::api::{ErrorBody, ErrorDetail};

/// Why [`AdminEndpoint::serve`](crate::AdminEndpoint::serve) could not start
/// the endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A TCP address other than loopback was asked for without a token.
    #[error(
        "the admin endpoint would listen on {address}, which is not loopback, without a token; \
         set one with AdminEndpoint::token, or bind to 127.0.0.1"
    )]
    TokenRequired {
        /// The address asked for.
        address: SocketAddr,
    },
    /// The token given is empty or not printable ASCII.
    #[error(
        "the admin token must be 16 to 256 printable ASCII characters without spaces; \
         generate one, e.g. with `openssl rand -hex 32`"
    )]
    BadToken,
    /// The TCP address could not be bound.
    #[error("the admin endpoint cannot listen on {address}: {source}; choose another address")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The Unix socket could not be made.
    #[error("the admin endpoint cannot listen on the Unix socket {path:?}: {message}")]
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// What failed, with what to do.
        message: String,
    },
}

/// A request's failure: an HTTP status and a JSON body naming the cause.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            ClientError::NotFound { .. } => (S::NOT_FOUND, "not_found"),
            ClientError::WorkflowClosed { .. } => (S::CONFLICT, "workflow_closed"),
            ClientError::StillRunning { .. } => (S::CONFLICT, "still_running"),
            ClientError::NotAResetPoint { .. } => (S::BAD_REQUEST, "not_a_reset_point"),
            ClientError::ResetRefused { .. } => (S::CONFLICT, "reset_refused"),
            ClientError::AlreadyStarted { .. } => (S::CONFLICT, "already_started"),
            ClientError::IdReuseRejected { .. } => (S::CONFLICT, "id_reuse_rejected"),
            ClientError::DefinitionMismatch { .. } => (S::CONFLICT, "definition_mismatch"),
            ClientError::Parked { .. } => (S::CONFLICT, "parked"),
            ClientError::UnknownQuery { .. } => (S::BAD_REQUEST, "unknown_query"),
            ClientError::UnknownWorkflowType { .. } => (S::CONFLICT, "unknown_workflow_type"),
            ClientError::NoWorker { .. } => (S::CONFLICT, "no_worker"),
            ClientError::QueryFailed { .. } => (S::UNPROCESSABLE_ENTITY, "query_failed"),
            ClientError::InvalidArgument(_) => (S::BAD_REQUEST, "invalid_argument"),
            ClientError::PayloadTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ClientError::Payload(_) => (S::BAD_REQUEST, "bad_payload"),
            ClientError::ShutDown => (S::SERVICE_UNAVAILABLE, "shut_down"),
            ClientError::DiskFull { .. } => (S::INSUFFICIENT_STORAGE, "disk_full"),
            ClientError::Storage(_) => (S::SERVICE_UNAVAILABLE, "storage"),
            ClientError::Corrupt { .. } => (S::INTERNAL_SERVER_ERROR, "corrupt"),
            ClientError::Damaged { .. } => (S::INTERNAL_SERVER_ERROR, "damaged"),
            _ => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        use StatusCode as S;
        // Not found, closed, parked, storage: as every other call's.
        let e = match e {
            UpdateError::Client(inner) => return ApiError::from(inner),
            other => other,
        };
        let (status, code) = match &e {
            UpdateError::Rejected { .. } => (S::UNPROCESSABLE_ENTITY, "update_rejected"),
            UpdateError::UnknownUpdate { .. } => (S::BAD_REQUEST, "unknown_update"),
            UpdateError::InvalidInput { .. } => (S::BAD_REQUEST, "bad_payload"),
            UpdateError::Failed { .. } => (S::UNPROCESSABLE_ENTITY, "update_failed"),
            UpdateError::Aborted { .. } => (S::CONFLICT, "update_aborted"),
            UpdateError::Paused { .. } => (S::CONFLICT, "workflow_paused"),
            // Worth retrying once an update in flight completes.
            UpdateError::TooManyInFlight { .. } => {
                (S::TOO_MANY_REQUESTS, "updates_in_flight_limit")
            }
            // Not before the workflow continues as new.
            UpdateError::TooManyUpdates { .. } => (S::CONFLICT, "updates_per_run_limit"),
            _ => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            ScheduleError::NotFound { .. } => (S::NOT_FOUND, "schedule_not_found"),
            ScheduleError::AlreadyRunning { .. } => (S::CONFLICT, "schedule_already_running"),
            ScheduleError::InvalidSpec { .. } => (S::BAD_REQUEST, "invalid_spec"),
            ScheduleError::InvalidArgument(_) => (S::BAD_REQUEST, "invalid_argument"),
            ScheduleError::Client(_) => {
                let ScheduleError::Client(inner) = e else {
                    unreachable!("matched above")
                };
                return ApiError::from(inner);
            }
            _ => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl ApiError {
    /// The HTTP status and the body's detail.
    pub(crate) fn into_detail(self) -> (u16, ErrorDetail) {
        (
            self.status.as_u16(),
            ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        )
    }
}

/// What the endpoint answers for an engine error: the HTTP status and the
/// error's code and message. For a tool that calls the engine itself (the
/// command-line tool on a file) and reports errors as the endpoint would.
pub fn error_detail(e: ClientError) -> (u16, ErrorDetail) {
    ApiError::from(e).into_detail()
}

/// What the endpoint answers for an update's error, as [`error_detail`]
/// does for the other calls.
pub fn update_error_detail(e: UpdateError) -> (u16, ErrorDetail) {
    ApiError::from(e).into_detail()
}

/// What the endpoint answers for a schedule call's error (see
/// [`error_detail`]).
pub fn schedule_error_detail(e: ScheduleError) -> (u16, ErrorDetail) {
    ApiError::from(e).into_detail()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = crate::routes::json_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"steadfast\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update_error(e: UpdateError) -> (StatusCode, &'static str) {
        let api = ApiError::from(e);
        (api.status, api.code)
    }

    #[test]
    fn update_limits_answer_their_own_codes() {
        let in_flight = UpdateError::TooManyInFlight {
            workflow_id: "w".into(),
            update_id: "u".into(),
            limit: 10,
        };
        assert_eq!(
            update_error(in_flight),
            (StatusCode::TOO_MANY_REQUESTS, "updates_in_flight_limit")
        );
        let per_run = UpdateError::TooManyUpdates {
            workflow_id: "w".into(),
            update_id: "u".into(),
            limit: 2_000,
        };
        assert_eq!(
            update_error(per_run),
            (StatusCode::CONFLICT, "updates_per_run_limit")
        );
    }
}
