//! Identities of workflows and runs.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest workflow ID accepted, in bytes (Temporal's limit is 1000 characters).
pub const MAX_WORKFLOW_ID_LEN: usize = 1000;

/// The ID of one run of a workflow: a UUID chosen when the run starts.
///
/// It is a version 7 UUID (a millisecond timestamp, then random bits), so
/// runs started close together sit close together in the file: a commit
/// that advances many concurrent runs writes few pages, where random IDs
/// would scatter it over the whole history table.
///
/// A workflow ID names a workflow chosen by the user and may be reused once its
/// run has closed; the run ID tells those runs apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(Uuid);

impl RunId {
    pub(crate) fn new_time_ordered() -> Self {
        RunId(Uuid::now_v7())
    }

    pub(crate) fn from_u128(v: u128) -> Self {
        RunId(Uuid::from_u128(v))
    }

    pub(crate) fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// The run ID as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Parses the text form that `Display` writes (a UUID, hyphenated or not),
/// as a command-line tool or an admin request passes it.
impl std::str::FromStr for RunId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(RunId)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({})", self.0)
    }
}
