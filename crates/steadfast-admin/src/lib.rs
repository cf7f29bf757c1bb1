//! The admin endpoint of a [steadfast](steadfast) engine: an HTTP API with
//! JSON bodies, served by the application itself, through which the
//! `steadfast` command-line tool and the web UI see and operate the
//! workflows of a running app (its redb file is locked against every other
//! process, even readers).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use steadfast::Engine;
//! use steadfast_admin::AdminEndpoint;
//!
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::builder().open(dir.path().join("app.steadfast")).await?;
//! let admin = AdminEndpoint::new(engine.clone())
//!     .bind("127.0.0.1:0".parse()?)
//!     .serve()
//!     .await?;
//! println!("admin endpoint on {}", admin.address());
//! // ... the application runs ...
//! admin.shutdown().await;
//! engine.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! The same endpoint serves a web UI at `/` (plain HTML, CSS and
//! JavaScript compiled into this crate; it reads through the API below).
//!
//! Routes (all under `/api/v1`, bodies and answers JSON, errors
//! `{"error": {"code", "message"}}` with a 4xx or 5xx status; the README's
//! "Admin endpoint" section documents each):
//!
//! | method | route | does |
//! |---|---|---|
//! | GET | `/api/v1` | names the server and version |
//! | GET | `/api/v1/workflows` | lists runs (filters in the query string) |
//! | GET | `/api/v1/counts` | how many runs of each status |
//! | GET | `/api/v1/workflows/{id}` | describes the latest run (`?run_id=` for another) |
//! | GET | `/api/v1/workflows/{id}/history` | the run's history, in the history JSON form ([`api::HistoryAnswer`]) |
//! | POST | `/api/v1/workflows/{id}/signal` | `{"name", "input", "request_id"}` |
//! | POST | `/api/v1/workflows/{id}/query` | `{"name", "args"}`: the app's code answers |
//! | POST | `/api/v1/workflows/{id}/update` | `{"name", "input", "update_id"}`: the handler's result |
//! | POST | `/api/v1/workflows/{id}/cancel` | requests cancellation |
//! | POST | `/api/v1/workflows/{id}/terminate` | `{"reason"}` |
//! | DELETE | `/api/v1/workflows/{id}` | deletes a closed workflow |
//! | GET | `/api/v1/schedules` | lists schedules |
//! | POST | `/api/v1/schedules/{id}` | creates a schedule ([`schedules::CreateScheduleRequest`]) |
//! | GET | `/api/v1/schedules/{id}` | describes a schedule: next and recent actions |
//! | DELETE | `/api/v1/schedules/{id}` | deletes a schedule |
//! | POST | `/api/v1/schedules/{id}/pause`, `/unpause` | `{"note"}` |
//! | POST | `/api/v1/schedules/{id}/trigger` | `{"overlap"}`: an action now |
//! | POST | `/api/v1/schedules/{id}/backfill` | `{"start_at", "end_at", "overlap"}` |

pub mod api;
mod auth;
pub mod calls;
mod endpoint;
mod error;
mod routes;
pub mod schedules;
mod ui;

pub use endpoint::{AdminAddress, AdminEndpoint, AdminServer, DEFAULT_ADDRESS};
pub use error::{AdminError, error_detail, schedule_error_detail, update_error_detail};
pub use routes::{MAX_PAGE_SIZE, MAX_REQUEST_BYTES, list_filter_from_query};
