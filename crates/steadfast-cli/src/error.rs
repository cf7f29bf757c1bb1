//! What can go wrong in the command-line tool, each with what to do; the
//! exit code tells programs which kind.

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments do not make a request.
    #[error("{0}")]
    Usage(String),
    /// Nothing answered at the address.
    #[error(
        "cannot reach the admin endpoint at {address} ({message}); is the application \
         running with AdminEndpoint serving there? Pass --address (or STEADFAST_ADDRESS)"
    )]
    Unreachable { address: String, message: String },
    /// The endpoint refused the request.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Something answered that is not a steadfast admin endpoint.
    #[error("{0}")]
    Protocol(String),
    /// The file (`--db`) could not be opened or closed.
    #[error("{0}")]
    File(String),
    /// A replayed history and the registered code disagree: the diff.
    #[error("{0}")]
    Replay(String),
}

impl CliError {
    pub(crate) fn json(e: serde_json::Error) -> Self {
        CliError::Protocol(format!(
            "the endpoint's answer is not the JSON this tool reads ({e}); are the tool and the \
             application the same steadfast version?"
        ))
    }

    /// The process exit code: 1 when the endpoint (or the file) refused the
    /// request or a replay disagreed,
    /// 2 for bad arguments (as clap's), 3 when no endpoint could be reached
    /// or it answered something else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api { .. } | CliError::File(_) | CliError::Replay(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable { .. } | CliError::Protocol(_) => 3,
        }
    }
}
