//! Claiming and executing a registered run for `search` and `train`
//! (`engine` build only): what the two commands share from the claim on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::runtime::Runtime;

use super::JobArgs;
use crate::data::DatasetKind;
use crate::exec::claim::{claim_or_take_over, local_claim};
use crate::exec::device::{parse_device, set_threads};
use crate::exec::pipeline::{execute_run, Pipeline};
use crate::exec::{RunEnd, EXIT_INTERRUPTED, EXIT_NO_SPACE};
use crate::nas::run::interrupted_text;
use crate::store::{RunRow, Store};

/// A registered run that `search` or `train` is about to claim and run.
pub(crate) struct Launch<'a, C> {
    /// Its row, as registered.
    pub run: &'a RunRow,
    /// Its resolved config.
    pub cfg: &'a C,
    /// Device to run on.
    pub device: tch::Device,
    /// Folder of its checkpoints.
    pub checkpoint_dir: PathBuf,
}

impl JobArgs {
    /// What `search` and `train` do before registering their run, in one
    /// order: the device and thread flags are checked before a download
    /// can take minutes, the data is fetched before the database is
    /// touched. `data` is the run's dataset, its folder (none: bundled)
    /// and whether it may be downloaded there. Returns the device and the
    /// open store.
    pub(crate) fn set_up(
        &self,
        rt: &Runtime,
        data: (DatasetKind, Option<&Path>, bool),
    ) -> anyhow::Result<(tch::Device, Store)> {
        let device = parse_device(&self.device)?;
        set_threads(self.threads)?;
        let (dataset, dir, download) = data;
        crate::cli::data::fetch_if_missing(dataset, dir, download, self.quiet)?;
        Ok((device, self.db.open(rt)?))
    }

    /// The job of claimed run `run_id` with these arguments; the first
    /// Ctrl-C (SIGTERM, SIGHUP) stops it at the next safe point.
    pub fn job<'a, C>(
        &self,
        rt: &Runtime,
        run_id: i64,
        cfg: &'a C,
        device: tch::Device,
        checkpoint_dir: PathBuf,
    ) -> anyhow::Result<crate::exec::Job<'a, C>> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        crate::exec::process::watch_stop_signals(rt, stop.clone(), "")?;
        Ok(crate::exec::Job {
            run_id,
            cfg,
            device,
            checkpoint_dir,
            resume: self.resume,
            stop,
            display: if self.quiet {
                crate::exec::Display::Quiet
            } else {
                crate::exec::Display::Bar
            },
        })
    }

    /// Claims the run (or takes it over from a dead `ddsas` of this host),
    /// executes it as a `P` and says how it ended: `done` prints the kind's
    /// summary of a finished run; the rest is alike for every kind.
    pub(crate) fn claim_and_execute<P: Pipeline>(
        &self,
        rt: &Runtime,
        store: &Store,
        launch: Launch<'_, P::Cfg>,
        done: impl FnOnce(&P::Outcome) -> anyhow::Result<()>,
    ) -> anyhow::Result<ExitCode> {
        let (noun, id) = (P::KIND.noun(), launch.run.id);
        let claim = local_claim(launch.device);
        if !rt.block_on(claim_or_take_over(store, id, &claim))? {
            anyhow::bail!(
                "{noun} {id} is being run by {} (heartbeat within the last 2 minutes); wait for it or stop that process",
                launch.run.owner.as_deref().unwrap_or("another process")
            );
        }
        let job = self.job(rt, id, launch.cfg, launch.device, launch.checkpoint_dir)?;
        match execute_run::<P>(rt, store, job)? {
            RunEnd::Done(outcome) => {
                done(&outcome)?;
                Ok(ExitCode::SUCCESS)
            }
            RunEnd::Interrupted { epoch, step } => {
                crate::errln!("{noun} {id}: {}; its finished epochs are stored.\nresume with the same command plus --resume", interrupted_text(epoch, step));
                Ok(ExitCode::from(EXIT_INTERRUPTED))
            }
            RunEnd::NoSpace(message) => {
                crate::errln!("error: {noun} {id} stopped: {message}\nit is `interrupted`: once space is freed, resume with the same command plus --resume");
                Ok(ExitCode::from(EXIT_NO_SPACE))
            }
            RunEnd::PeerLost(message) => {
                crate::errln!("error: {noun} {id} stopped: {message}\nit is `interrupted`: resume with the same command plus --resume");
                Ok(ExitCode::from(EXIT_INTERRUPTED))
            }
            RunEnd::Failed(message) => Err(anyhow::anyhow!("{noun} {id} failed: {message}")),
        }
    }
}
