//! What can stop the work around runs (a sweep's orchestrator, a worker, a
//! pull worker, a sweep's `evaluate:` stage): the reasons a caller can
//! branch on are variants of their own (the database's errors, among them
//! a lost connection, which an orchestrator waits out), and the context a
//! failure happened in is the message of a variant whose source is the
//! failure, so that the binary prints the same chain of causes as before.

use crate::config::ConfigError;
use crate::store::StoreError;
use crate::sweep::SweepError;

use super::slots::SlotError;

/// An error of the work around runs.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The run history failed (a lost connection included; see
    /// [`ExecError::store_error`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file, a process or a signal handler could not be set up; `what`
    /// says which.
    #[error("{what}")]
    Io {
        /// What was being done ("creating the log folder ...").
        what: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// No worker slots could be planned.
    #[error(transparent)]
    Slots(#[from] SlotError),
    /// An orchestrator given no slot to run workers on.
    #[error("no GPU or CPU slot to run workers on")]
    NoSlots,
    /// The task that waits for a worker process panicked or was cancelled.
    #[error("a worker watch task failed")]
    WatchTask(#[source] tokio::task::JoinError),
    /// A run the orchestrator was running is no longer in the database.
    #[error("run {0} vanished from the database")]
    Vanished(i64),
    /// A worker told to run a run the database does not hold.
    #[error("run {id} is not in {db}")]
    NotInDb {
        /// The run.
        id: i64,
        /// The database, as shown to the user.
        db: String,
    },
    /// A worker process could not be started.
    #[error("starting the worker of run {id}")]
    Spawn {
        /// Its run.
        id: i64,
        /// Why.
        source: Box<ExecError>,
    },
    /// The database was out of reach for longer than the orchestrator
    /// waits.
    #[error("the database stayed out of reach for {seconds} s")]
    OutOfReach {
        /// How long it waited.
        seconds: u64,
        /// The last lost connection.
        source: Box<ExecError>,
    },
    /// A sweep's `evaluate:` that does not resolve for a search's cell.
    #[error("evaluating run {search}: {problem}")]
    Evaluation {
        /// The search whose cell was to be trained.
        search: i64,
        /// Why the train config does not resolve.
        problem: Box<ConfigError>,
    },
    /// A stored config that no longer reads as JSON of its kind.
    #[error(transparent)]
    StoredConfig(#[from] serde_json::Error),
    /// A pull worker named a sweep the database does not hold.
    #[error("no sweep named `{name}` in the database ({known}); `ddsas sweep submit FILE --slurm` registers one")]
    NoSuchSweep {
        /// The name asked for.
        name: String,
        /// The sweeps it holds, in words.
        known: String,
    },
    /// Rank 0 of a data-parallel training could not meet its other ranks.
    #[error("joining the other ranks of the training: {0}")]
    Ranks(String),
    /// A registered sweep that does not expand on this node.
    #[error("sweep {name} as registered does not expand on this node (is the data folder the same as where it was submitted?)")]
    SweepExpands {
        /// The sweep.
        name: String,
        /// Why.
        source: Box<SweepError>,
    },
}

impl ExecError {
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ExecError {
        let what = what.into();
        move |source| ExecError::Io { what, source }
    }

    /// The database's error behind this one, through the contexts that
    /// wrap it.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            ExecError::Store(e) => Some(e),
            ExecError::Spawn { source, .. } | ExecError::OutOfReach { source, .. } => {
                source.store_error()
            }
            _ => None,
        }
    }
}

/// The error and every cause under it joined by `: ` (what a log line
/// shows of a failure).
pub fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
