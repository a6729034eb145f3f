//! Executing runs: one claimed run from its database row to `done`,
//! `failed` or `interrupted` (shared by `ddsas search` and sweep workers),
//! with its epochs stored as they finish.
//!
//! What computes (the run itself, training, the worker, devices) is in the
//! `engine` build only; what plans, watches and cleans up around runs (the
//! orchestrator, slots, Slurm, exit statuses, log paths) needs no libtorch
//! and is in every build, so that the compiler keeps it free of tensors.

#[cfg(feature = "engine")]
pub mod claim;
#[cfg(feature = "engine")]
pub mod device;
#[cfg(feature = "engine")]
mod engine;
mod error;
pub mod evaluate;
pub mod guard;
pub mod load;
pub mod memory;
pub mod orchestrator;
#[cfg(feature = "engine")]
pub mod pipeline;
pub mod process;
#[cfg(feature = "engine")]
pub mod search;
pub mod slots;
pub mod slurm;
pub mod sweep_run;
#[cfg(feature = "engine")]
pub mod train;
#[cfg(feature = "engine")]
pub mod worker;

use std::path::PathBuf;

use crate::config::ResolvedConfig;
use crate::store::DbLocation;

pub use error::{chain_text, ExecError};

#[cfg(feature = "engine")]
pub use engine::{epoch_line, execute, Display, Job, RunEnd};
#[cfg(feature = "engine")]
pub(crate) use engine::{prepare, resuming_at, run_guarded, unfinished};

/// Exit status of a run stopped at a safe point (Ctrl-C, SIGTERM, SIGHUP,
/// cancel, its orchestrator gone): the run is `interrupted`, its checkpoint
/// kept. 128 + SIGINT, as shells expect; `search`, `sweep run` and workers
/// all use it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Exit status of a run stopped because a disk is full: the run is
/// `interrupted` and resumes once space is freed (sysexits' EX_TEMPFAIL,
/// "try again later"). An orchestrator whose worker exits with it stops
/// claiming runs.
pub const EXIT_NO_SPACE: u8 = 75;

/// Worker exit status: the run is `done`.
pub const EXIT_DONE: u8 = 0;
/// Worker exit status: the search itself failed (divergence, bad data, a
/// config that no longer resolves); the run is `failed` and retrying cannot
/// help.
pub const EXIT_SEARCH_FAILED: u8 = 3;
/// Worker exit status: the orchestrator no longer holds the claim (another
/// one took the run over); the worker left the run alone.
pub const EXIT_CLAIM_LOST: u8 = 4;

/// `checkpoints/<fingerprint>` in the database's folder.
pub fn default_checkpoint_dir(db: &DbLocation, cfg: &ResolvedConfig) -> PathBuf {
    checkpoint_dir_of(db, &cfg.fingerprint())
}

/// `checkpoints/<fingerprint>` in the database's folder, for any run.
pub fn checkpoint_dir_of(db: &DbLocation, fingerprint: &str) -> PathBuf {
    db.home().join("checkpoints").join(fingerprint)
}

/// Worker logs of a run, oldest attempt first (`logs/` beside the database).
pub fn run_logs(db: &DbLocation, id: i64) -> Vec<PathBuf> {
    let dir = db.home().join("logs");
    let prefix = format!("run-{id}-attempt-");
    let mut logs: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let attempt = name
                        .strip_prefix(&prefix)?
                        .strip_suffix(".log")?
                        .parse()
                        .ok()?;
                    Some((attempt, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    let errors = error_log_of(db, id);
    logs.into_iter()
        .map(|(_, p)| p)
        .chain(errors.exists().then_some(errors))
        .collect()
}

/// `logs/run-<id>-errors.log` in the database's folder: the whole text of
/// errors whose message shows one line.
pub fn error_log_of(db: &DbLocation, run_id: i64) -> PathBuf {
    db.home()
        .join("logs")
        .join(format!("run-{run_id}-errors.log"))
}

/// The one limit on libtorch threads per run, for `search`, workers and
/// `sweep run`'s plan: at most four per core.
pub fn check_threads(threads: usize, cores: usize) -> Result<(), String> {
    if threads > 4 * cores {
        return Err(format!(
            "{threads} threads is more than 4 per core ({cores} cores here); use at most {}",
            4 * cores
        ));
    }
    Ok(())
}
