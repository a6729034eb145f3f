//! What `ddsas train` runs (`engine` build only).

use crate::arch::space::SpaceKind;
use crate::config::train::{TrainConfig, TrainNetwork};
use crate::exec::checkpoint_dir_of;
use crate::exec::train::Train;
use crate::nas::evalnet::EvalNetwork;
use crate::nas::parallel;
use crate::store::{RunKind, RunStatus};
use anyhow::{bail, Context};
use std::process::ExitCode;
use tokio::runtime::Runtime;

use super::TrainCmd;
use crate::cli::launch::Launch;

/// `--nproc` above 1: the collectives exist only in the `dist` build
/// (`nas::dist`).
#[cfg(not(feature = "dist"))]
fn nproc_unavailable() -> ExitCode {
    crate::errln!("error: --nproc above 1 needs data-parallel training: this ddsas was built without the cargo feature `dist`: build with `cargo build --release --features dist` (needs Gloo's headers: apt-get install libgloo-dev, as scripts/test.sh does as root)");
    ExitCode::from(crate::cli::EXIT_NO_ENGINE)
}

/// This process's part in a data-parallel run: `None` for one process.
#[cfg(feature = "dist")]
type Rank = Option<crate::cli::ranks::RankSpec>;
#[cfg(not(feature = "dist"))]
type Rank = Option<std::convert::Infallible>;

/// The number of this process's rank, `None` for one process.
#[cfg(feature = "dist")]
fn rank_number(rank: &Rank) -> Option<usize> {
    rank.as_ref().map(|spec| spec.rank)
}

/// Without `dist` every process trains alone.
#[cfg(not(feature = "dist"))]
fn rank_number(_rank: &Rank) -> Option<usize> {
    None
}

/// Makes Slurm's SIGUSR2 (the job's time limit, or a preemption, is near)
/// stop this process's run at the next step through
/// [`parallel::warn_time_limit`], which the training loop polls
/// ([`parallel::SharedStop`]): in one process it checkpoints there; in a
/// rank (`rank`) every rank stops at that step and rank 0 checkpoints it;
/// only rank 0 prints the line, since every rank gets the signal. Either
/// way the run ends `interrupted`, to be resumed at that step.
/// Installed before anything long, since SIGUSR2's default action ends the
/// process. A task that srun started keeps its own handling
/// ([`super::slurm::SrunTask`], which also requeues the job).
fn watch_time_limit(rt: &Runtime, rank: Option<usize>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut usr2 = {
        let _inside = rt.enter();
        signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?
    };
    rt.spawn(async move {
        while usr2.recv().await.is_some() {
            // Every rank gets the signal (the launcher or srun passes it
            // on); rank 0 alone says so, the others only stop.
            if !parallel::time_limit_near() {
                match rank {
                    Some(0) => crate::errln!("SIGUSR2 (Slurm: time limit or preemption near): every rank stops at the next step, rank 0 checkpoints there"),
                    Some(_) => {}
                    None => crate::errln!("SIGUSR2 (Slurm: time limit or preemption near): stopping at the next step, checkpointed there"),
                }
            }
            parallel::warn_time_limit();
        }
    });
    Ok(())
}

impl TrainCmd {
    /// Runs the command.
    // Without `dist` there are no ranks to adjust the threads of or join.
    #[cfg_attr(not(feature = "dist"), allow(unused_mut, unused_variables))]
    pub fn run(mut self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        #[cfg(not(feature = "dist"))]
        if self.nproc > 1 || !self.gpus.is_empty() {
            return Ok(nproc_unavailable());
        }
        let merged = self.merged_config(rt)?;
        if self.job.print_config {
            crate::outln!("{}", merged.commented_yaml().trim_end());
            return Ok(ExitCode::SUCCESS);
        }
        if self.dry_run {
            crate::outln!("{}", dry_run_line(&merged.network()?));
            return Ok(ExitCode::SUCCESS);
        }
        if self.slurm.wanted() {
            return super::slurm::submit(&self, rt, merged);
        }
        let srun = super::slurm::SrunTask::start(rt)?;
        if srun.as_ref().is_some_and(super::slurm::SrunTask::restarted) {
            self.job.resume = true;
        }
        let rank: Rank = self.rank()?;
        #[cfg(feature = "dist")]
        let backend = self.backend(merged.dist_backend, &rank)?;
        #[cfg(feature = "dist")]
        if self.nproc > 1 && rank.is_none() {
            return crate::cli::ranks::launch(
                self.nproc,
                self.job.threads,
                crate::cli::ranks::Tie::Terminal,
                rt,
            );
        }
        if srun.is_none() {
            watch_time_limit(rt, rank_number(&rank))?;
        }
        #[cfg(feature = "dist")]
        if let Some(spec) = &rank {
            self.job.device =
                crate::cli::ranks::rank_device(&self.job.device, &self.gpus, spec.local_rank)?;
        }
        let cfg = merged.resolve()?;
        let checkpoint_dir = self
            .job
            .checkpoint_dir
            .clone()
            .unwrap_or_else(|| checkpoint_dir_of(&self.job.db.db, &cfg.fingerprint()));
        #[cfg(feature = "dist")]
        if let Some(spec) = &rank {
            self.job.threads = spec.threads;
            if spec.rank > 0 {
                return self.follow(spec.clone(), backend, rt, &cfg, checkpoint_dir);
            }
        }
        let data = (cfg.config().dataset, cfg.data_dir(), cfg.download());
        let (device, store) = self.job.set_up(rt, data)?;
        let run = rt.block_on(store.ensure_train_run(&cfg))?;
        if let Some(search) = self.from_run {
            rt.block_on(store.link_evaluation(search, run.id))?;
        }
        let go = run.status != RunStatus::Done;
        #[cfg(feature = "dist")]
        if let Some(spec) = &rank {
            spec.join(go, backend, device)?;
        }
        if !go {
            crate::cli::say_already_done(
                "train run",
                &run,
                &format!(
                    "test acc {:.2}%, {} parameters",
                    100.0 * run.final_test_acc.unwrap_or(f64::NAN),
                    run.params.map_or("?".into(), |p| p.to_string())
                ),
            );
            return Ok(ExitCode::SUCCESS);
        }
        let launch = Launch {
            run: &run,
            cfg: &cfg,
            device,
            checkpoint_dir,
        };
        let code = self
            .job
            .claim_and_execute::<Train>(rt, &store, launch, |outcome| {
                crate::outln!(
                    "train run {}: test accuracy {:.2}% (error {:.2}%), best {:.2}%, {:.3} M parameters, {:.1} s",
                    run.id,
                    100.0 * outcome.final_test_acc,
                    100.0 * (1.0 - outcome.final_test_acc),
                    100.0 * outcome.best_test_acc,
                    outcome.params as f64 / 1e6,
                    outcome.wall_s
                );
                Ok(())
            })?;
        if let Some(task) = &srun {
            task.requeue_if_warned(rt, &store, run.id);
        }
        Ok(code)
    }

    /// The rank this process is of a data-parallel run (`--nproc` above 1,
    /// started by the launcher, or started by the srun of a `train --slurm`
    /// job of several ranks); `None` for one process or the launcher.
    #[cfg(feature = "dist")]
    fn rank(&self) -> anyhow::Result<Rank> {
        if self.nproc > 1 {
            return crate::cli::ranks::RankSpec::from_env();
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        crate::cli::ranks::RankSpec::from_slurm(|name| std::env::var(name).ok(), cores)
    }

    /// Without `dist` every process trains alone.
    #[cfg(not(feature = "dist"))]
    fn rank(&self) -> anyhow::Result<Rank> {
        Ok(None)
    }

    /// The backend of the ranks' collectives (`dist_backend` for the
    /// device of `--device`), checked with the GPUs the ranks would take
    /// before any rank starts; Gloo in one process, which ignores both.
    /// A rank that srun started needs only a GPU of its own on its node.
    #[cfg(feature = "dist")]
    fn backend(
        &self,
        setting: crate::config::train::DistBackend,
        rank: &Rank,
    ) -> anyhow::Result<crate::config::train::DistBackend> {
        let nproc = match rank {
            Some(_) if self.nproc <= 1 => 1,
            None if self.nproc <= 1 => return Ok(crate::config::train::DistBackend::Gloo),
            _ => self.nproc,
        };
        crate::cli::ranks::check_devices(&self.job.device, &self.gpus, nproc, setting)
    }

    /// A rank after the first: the device and threads as rank 0 sets
    /// them, then its shards of rank 0's run, recording nothing.
    #[cfg(feature = "dist")]
    fn follow(
        &self,
        spec: crate::cli::ranks::RankSpec,
        backend: crate::config::train::DistBackend,
        rt: &Runtime,
        cfg: &crate::config::train::ResolvedTrain,
        checkpoint_dir: std::path::PathBuf,
    ) -> anyhow::Result<ExitCode> {
        let device = crate::exec::device::parse_device(&self.job.device)?;
        crate::exec::device::set_threads(spec.threads)?;
        let opts = crate::nas::run::RunOptions {
            device,
            checkpoint_dir: Some(checkpoint_dir),
            resume: self.job.resume,
        };
        crate::cli::ranks::follow(spec, backend, rt, cfg, opts)
    }

    /// The config: file (or defaults), then the search's cell, dataset and
    /// data folder (`--from-run`) or `--genotype`, then `--set`.
    fn merged_config(&self, rt: &Runtime) -> anyhow::Result<TrainConfig> {
        let base = match &self.job.config {
            Some(path) => TrainConfig::from_yaml_file(path)?,
            None => TrainConfig::default(),
        };
        let mut sets = Vec::new();
        if let Some(genotype) = &self.genotype {
            sets.push(format!("genotype={}", yaml_string(genotype)));
        }
        if let Some(id) = self.from_run {
            sets.extend(self.search_sets(rt, id)?);
        }
        sets.extend(self.job.overrides.iter().cloned());
        Ok(base.with_overrides(&sets)?)
    }

    /// `--set` entries taking the final cell, dataset and data folder of
    /// search run `id`, which must be a done DARTS-space search.
    fn search_sets(&self, rt: &Runtime, id: i64) -> anyhow::Result<Vec<String>> {
        if !self.job.db.db.exists() {
            bail!(
                "--from-run {id}: database {} does not exist; point --db at the database of the search",
                self.job.db.db.display()
            );
        }
        let store = self.job.db.open(rt)?;
        let row = rt.block_on(store.run(id))?.with_context(|| {
            format!(
                "--from-run {id}: there is no run {id} in {} (see `ddsas runs list`)",
                self.job.db.db.display()
            )
        })?;
        rt.block_on(store.close());
        if row.kind == RunKind::Train {
            bail!("--from-run {id}: run {id} is a train run, not a search; give the search run it came from (`ddsas runs show {id}` names it)");
        }
        if row.space == SpaceKind::Nb201 {
            bail!("--from-run {id}: run {id} searched the NAS-Bench-201 space, whose cells are not trained: their accuracy comes from the benchmark table (`ddsas nb201 import FILE --dataset cifar10`)");
        }
        let genotype = match (row.status, row.final_genotype) {
            (RunStatus::Done, Some(g)) => g,
            (status, _) => bail!(
                "--from-run {id}: run {id} is {}, and only a done search has a final cell; finish it first (`ddsas search ... --resume` or `ddsas sweep run FILE`)",
                status.as_str()
            ),
        };
        let search: serde_json::Value = serde_json::from_str(&row.config_json)
            .with_context(|| format!("--from-run {id}: its stored config is not JSON"))?;
        let mut sets = vec![
            format!("genotype={}", yaml_string(&genotype)),
            format!("dataset={}", row.dataset.name()),
        ];
        if let Some(dir) = search["data_dir"].as_str() {
            sets.push(format!("data_dir={}", yaml_string(dir)));
        }
        Ok(sets)
    }
}

/// A value as a YAML string scalar (genotype texts hold `:`, `[`, `'`).
fn yaml_string(text: &str) -> String {
    serde_yaml::to_string(text)
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| text.to_owned())
}

/// What a dry run prints: the parameters of the network, without the
/// auxiliary head, its multiply-adds for one image at its input size
/// ([`crate::arch::madds`]: convolutions and the classifier), and what
/// they were counted for, since both depend on the dataset and, for
/// ImageNet, on the crop (`params=3349342 madds=... (cifar10: 3x32x32, 10
/// classes)`).
fn dry_run_line(net: &TrainNetwork) -> String {
    let params = EvalNetwork::new(&net.genotype, net.shape, tch::Device::Cpu).params_without_aux();
    let madds = crate::arch::madds::multiply_adds(&net.genotype, &net.shape);
    let counted_for = crate::data::ImageShape {
        channels: net.shape.in_channels,
        size: net.shape.image_size,
        classes: net.shape.classes,
    };
    format!(
        "params={params} madds={madds} ({}: {counted_for})",
        net.dataset.name(),
    )
}
