//! The history file form: one run's events as a versioned JSON document
//! (HISTORY-JSON in FORMAT.md), for saving production histories and
//! replaying them in tests.
//!
//! The events go through their serde impls, so every [`EventKind`] (and
//! any variant added later) has a JSON form with no code here; payloads
//! show as the JSON they hold (see `payload`). What this file adds is the
//! envelope (format name, version, the run's identity) and the checks that
//! make a document a history the replayer can trust.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Event, EventKind, RunId};

/// The value of the `format` field of every history document.
pub const HISTORY_JSON_FORMAT: &str = "steadfast-history";

/// The version of the history document this build writes, and the newest it
/// reads. A change to the form of an event (not a new `EventKind` variant,
/// which older readers refuse by name, nor an optional field, which they
/// skip and which documents without it read as its default) bumps it.
/// Since store format 6 a failure has the optional `details` and
/// `retry_state`; documents without them read with no details and the
/// retry state `Unspecified`.
pub const HISTORY_JSON_VERSION: u32 = 1;

/// One run's history with the identity needed to replay it: the file form
/// of [`Engine::history`](crate::Engine::history), from
/// [`Engine::workflow_history`](crate::Engine::workflow_history).
///
/// ```
/// # fn main() -> Result<(), steadfast::HistoryJsonError> {
/// use steadfast::WorkflowHistory;
/// let text = r#"{
///   "format": "steadfast-history",
///   "version": 1,
///   "workflow_id": "order-42",
///   "run_id": "0190b2a4-57c5-7000-8000-000000000001",
///   "workflow_type": "Order",
///   "events": [
///     {"event_id": 1,
///      "timestamp": {"secs_since_epoch": 1700000000, "nanos_since_epoch": 0},
///      "kind": {"WorkflowStarted": {"workflow_type": "Order", "workflow_id": "order-42",
///               "task_queue": "default", "input": {"item": "book"},
///               "run_timeout": null, "execution_timeout": null}}}
///   ]
/// }"#;
/// let history = WorkflowHistory::from_json(text)?;
/// assert_eq!(history.workflow_type, "Order");
/// assert_eq!(WorkflowHistory::from_json(&history.to_json()?)?, history);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowHistory {
    /// The workflow ID (also in the first event).
    pub workflow_id: String,
    /// The run: it seeds `ctx.random` and `ctx.uuid`, so a replay needs it.
    pub run_id: RunId,
    /// The workflow's registered name (also in the first event).
    pub workflow_type: String,
    /// The events, from `WorkflowStarted` on, numbered from 1.
    pub events: Vec<Event>,
}

/// A history document could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryJsonError {
    /// The text is not JSON, or does not fit the schema (a missing field, a
    /// wrong type, an unknown event kind); `message` says which and where.
    #[error("not a valid history document: {message}; see HISTORY-JSON in FORMAT.md")]
    Json {
        /// Line of the problem, from 1 (0 when unknown).
        line: usize,
        /// Column of the problem, from 1 (0 when unknown).
        column: usize,
        /// What serde_json reported, with its line and column.
        message: String,
    },
    /// The document has no `"format": "steadfast-history"`: another kind of
    /// JSON (a Temporal history export, say).
    #[error(
        "not a steadfast history: the \"format\" field is {found:?}, expected \
         \"steadfast-history\"; export histories with Engine::workflow_history"
    )]
    NotAHistory {
        /// The `format` field found, if any.
        found: Option<String>,
    },
    /// The document was written by a newer steadfast.
    #[error(
        "history document version {found} is newer than this build reads (up to {supported}); \
         upgrade steadfast to read it"
    )]
    UnsupportedVersion {
        /// The version in the document.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The document parses but is not a history a run could have: events
    /// out of order, no `WorkflowStarted` first, or a second one.
    #[error("invalid history: {problem} (at position {position} of \"events\", from 1)")]
    Invalid {
        /// The event's position in the `events` array, from 1 (0: the
        /// document as a whole).
        position: usize,
        /// What is wrong.
        problem: String,
    },
    /// A payload of the history is not JSON, so it has no JSON form (the
    /// engine writes only JSON payloads: the stored record is damaged).
    #[error("the history cannot be written as JSON: {0}")]
    Unwritable(String),
    /// Reading or writing a history file failed.
    #[error("history file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// A history file could not be read as a history; `source` says why.
    #[error("history file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why it is not a history.
        #[source]
        source: Box<HistoryJsonError>,
    },
}

impl HistoryJsonError {
    fn json(err: serde_json::Error) -> Self {
        HistoryJsonError::Json {
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        }
    }
}

/// The document as written: the envelope around the history.
#[derive(Serialize)]
struct DocumentOut<'a> {
    format: &'a str,
    version: u32,
    workflow_id: &'a str,
    run_id: RunId,
    workflow_type: &'a str,
    events: &'a [Event],
}

/// The document as read; unknown fields are refused, so a typo is not
/// silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentIn {
    // Checked from the header already; named here so that
    // `deny_unknown_fields` accepts them.
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: u64,
    workflow_id: String,
    run_id: RunId,
    workflow_type: String,
    events: Vec<Event>,
}

/// Read first, so that a document of another format or a newer version is
/// named as such rather than as a schema mismatch.
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

impl WorkflowHistory {
    /// The history as a JSON document (pretty-printed, one field per line,
    /// so saved histories diff well in review).
    ///
    /// # Errors
    /// [`HistoryJsonError::Unwritable`] when a payload is not JSON (a
    /// damaged record).
    pub fn to_json(&self) -> Result<String, HistoryJsonError> {
        let document = DocumentOut {
            format: HISTORY_JSON_FORMAT,
            version: HISTORY_JSON_VERSION,
            workflow_id: &self.workflow_id,
            run_id: self.run_id,
            workflow_type: &self.workflow_type,
            events: &self.events,
        };
        serde_json::to_string_pretty(&document)
            .map_err(|e| HistoryJsonError::Unwritable(e.to_string()))
    }

    /// Reads a history document and checks that it is a history a run
    /// could have (see [`HistoryJsonError::Invalid`]).
    ///
    /// # Errors
    /// A [`HistoryJsonError`] naming what is wrong and where.
    pub fn from_json(text: &str) -> Result<Self, HistoryJsonError> {
        let header: Header = serde_json::from_str(text).map_err(HistoryJsonError::json)?;
        match header.format {
            Some(serde_json::Value::String(format)) if format == HISTORY_JSON_FORMAT => {}
            found => {
                return Err(HistoryJsonError::NotAHistory {
                    found: found.map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
                });
            }
        }
        match header.version.as_ref().and_then(serde_json::Value::as_u64) {
            Some(v) if v >= 1 && v <= u64::from(HISTORY_JSON_VERSION) => {}
            Some(found) if found > u64::from(HISTORY_JSON_VERSION) => {
                return Err(HistoryJsonError::UnsupportedVersion {
                    found,
                    supported: HISTORY_JSON_VERSION,
                });
            }
            _ => {
                return Err(HistoryJsonError::Invalid {
                    position: 0,
                    problem: format!(
                        "the \"version\" field is {}, expected a number from 1 to {HISTORY_JSON_VERSION}",
                        header
                            .version
                            .map_or_else(|| "missing".to_string(), |v| v.to_string())
                    ),
                });
            }
        }
        let document: DocumentIn = serde_json::from_str(text).map_err(HistoryJsonError::json)?;
        let history = WorkflowHistory {
            workflow_id: document.workflow_id,
            run_id: document.run_id,
            workflow_type: document.workflow_type,
            events: document.events,
        };
        history.check()?;
        Ok(history)
    }

    /// Reads a history file written by [`to_file`](Self::to_file) (or by
    /// hand, or by a tool).
    ///
    /// # Errors
    /// [`HistoryJsonError::Io`] when the file cannot be read,
    /// [`HistoryJsonError::File`] (naming the file) when it is not a history.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, HistoryJsonError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| HistoryJsonError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| HistoryJsonError::File {
            path: path.display().to_string(),
            source: Box::new(e),
        })
    }

    /// Writes the history to a file as its JSON document.
    ///
    /// # Errors
    /// [`HistoryJsonError::Unwritable`] as for [`to_json`](Self::to_json),
    /// [`HistoryJsonError::Io`] when the file cannot be written.
    pub fn to_file(&self, path: impl AsRef<Path>) -> Result<(), HistoryJsonError> {
        let path = path.as_ref();
        let mut text = self.to_json()?;
        text.push('\n');
        std::fs::write(path, text).map_err(|source| HistoryJsonError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Checks that the events are a history a run could have: numbered from
    /// 1 without gaps, `WorkflowStarted` first (and only there) naming this
    /// workflow. Events after the one that closed the run are accepted:
    /// builds before the close became final could append some, the engine
    /// keeps and shows them (its fold ignores them), so their export must
    /// import too.
    ///
    /// # Errors
    /// [`HistoryJsonError::Invalid`] naming the first event that is wrong.
    pub fn check(&self) -> Result<(), HistoryJsonError> {
        let invalid =
            |position: usize, problem: String| HistoryJsonError::Invalid { position, problem };
        if self.events.is_empty() {
            return Err(invalid(
                0,
                "\"events\" is empty; a history begins with WorkflowStarted".into(),
            ));
        }
        for (index, event) in self.events.iter().enumerate() {
            let position = index + 1;
            if event.event_id != position as u64 {
                return Err(invalid(
                    position,
                    format!(
                        "event_id is {}, expected {position} (events are numbered from 1 without gaps)",
                        event.event_id
                    ),
                ));
            }
            match (&event.kind, position) {
                (
                    EventKind::WorkflowStarted {
                        workflow_type,
                        workflow_id,
                        ..
                    },
                    1,
                ) if *workflow_id != self.workflow_id || *workflow_type != self.workflow_type => {
                    return Err(invalid(
                        1,
                        format!(
                            "WorkflowStarted names workflow {workflow_id:?} of type {workflow_type:?}, \
                             the document {:?} of type {:?}",
                            self.workflow_id, self.workflow_type
                        ),
                    ));
                }
                (EventKind::WorkflowStarted { .. }, 1) => {}
                (EventKind::WorkflowStarted { .. }, _) => {
                    return Err(invalid(
                        position,
                        "a second WorkflowStarted; a history holds one run".into(),
                    ));
                }
                (other, 1) => {
                    return Err(invalid(
                        1,
                        format!(
                            "the first event is {}, expected WorkflowStarted",
                            other.describe()
                        ),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of event survives the JSON form and back unchanged: the
    /// list is the codec's, which lists every kind (its test fails when
    /// one is missing), so no kind can lack a JSON form or lose a field.
    #[test]
    fn every_kind_of_event_round_trips_through_json() {
        let kinds = crate::codec::tests::every_event_kind();
        // A payload that is JSON `null` in an optional field (a schedule's
        // last completion result of a workflow returning `()`, a failure's
        // details, a memo) reads back as no payload: `Some(null)` and
        // `None` are both `null` in this form (version 1). A known gap,
        // left for a version 2 of the form; here such a field holds a
        // payload that is not `null`.
        let seven = crate::history::Payload::encode(&7).expect("a payload");
        // Its first, `WorkflowStarted`, names workflow "w" of type "T".
        let events: Vec<Event> = kinds
            .into_iter()
            .map(|kind| match kind {
                EventKind::WorkflowStartedBySchedule {
                    schedule_id,
                    last_completion_result: Some(_),
                    last_failure,
                } => EventKind::WorkflowStartedBySchedule {
                    schedule_id,
                    last_completion_result: Some(seven.clone()),
                    last_failure,
                },
                other => other,
            })
            .enumerate()
            .map(|(i, kind)| Event {
                event_id: i as u64 + 1,
                timestamp: std::time::SystemTime::UNIX_EPOCH
                    + std::time::Duration::from_millis(1_700_000_000_123 + i as u64),
                kind,
            })
            .collect();
        assert_eq!(events.len(), 50);
        let history = WorkflowHistory {
            workflow_id: "w".into(),
            run_id: RunId::from_u128(1),
            workflow_type: "T".into(),
            events,
        };
        let json = history.to_json().expect("written");
        let back = WorkflowHistory::from_json(&json).expect("read back");
        for (written, read) in history.events.iter().zip(&back.events) {
            assert_eq!(written, read, "changed by its JSON form");
        }
        assert_eq!(back, history);
    }
}
