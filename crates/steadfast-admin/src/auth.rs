//! The token check: with a token set, every request must carry
//! `Authorization: Bearer <token>`; without one (loopback only) none is
//! asked for.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The token a request must present, if any.
#[derive(Clone)]
pub(crate) struct Token(pub(crate) Option<Arc<str>>);

/// True for a token the endpoint accepts: 16 to 256 printable ASCII
/// characters without spaces (it travels in a header).
pub(crate) fn acceptable(token: &str) -> bool {
    (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

pub(crate) async fn check(State(token): State<Token>, request: Request, next: Next) -> Response {
    let Some(expected) = token.0.as_deref() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(given) if same(given.trim().as_bytes(), expected.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => ApiError::unauthorized(
            "the token is wrong; send the token the application configured \
             (AdminEndpoint::token) as `Authorization: Bearer <token>`",
        )
        .into_response(),
        None => ApiError::unauthorized(
            "this endpoint needs a token; send it as `Authorization: Bearer <token>` \
             (the command-line tool reads it from --token or STEADFAST_TOKEN)",
        )
        .into_response(),
    }
}

/// Compares in time that depends on the lengths only, so the answer's
/// timing does not tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
