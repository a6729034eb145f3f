//! The ranks of a data-parallel training (`dist` build only): a launcher
//! re-executes its own command line as N rank processes on this node, each
//! told its rank, the world size, the rendezvous port and its share of the
//! cores through [`RANK_ENV`]; the ranks meet on loopback and train
//! data-parallel ([`crate::nas::parallel`]) with Gloo, or NCCL on CUDA
//! devices (one GPU per rank: the r-th of `--gpus`, else GPU r).
//! Rank 0 is the one process of a training (it registers or confirms,
//! claims and records the run, and writes the checkpoints); the others
//! train the same steps on their shards and keep nothing.
//!
//! Two commands launch ranks so: `ddsas train --nproc N`, and the worker a
//! sweep's orchestrator starts for a training whose `evaluate:` entry asks
//! for `nproc: N` (`ddsas worker --run-id ID --nproc N`); [`Tie`] is how
//! their ranks differ. Under Slurm (`ddsas train --slurm`) there is no
//! launcher: srun starts the ranks on every node, and each learns its part
//! from srun's environment ([`RankSpec::from_slurm`]); from there on a rank
//! is the same.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tch::{Kind, Tensor};
use tokio::runtime::Runtime;

use crate::config::train::{DistBackend, ResolvedTrain};
use crate::exec::slurm::train_script::{rendezvous_port, MASTER_VARIABLE};
use crate::exec::EXIT_INTERRUPTED;
use crate::nas::dist::Rendezvous;
use crate::nas::parallel::{self, Combine, RankObserver};
use crate::nas::run::{RunError, RunOptions};

/// "RANK WORLD PORT THREADS" of a rank process.
pub const RANK_ENV: &str = "DDSAS_DIST_RANK";
/// Seconds a rendezvous or a collective waits for the other ranks (600 by
/// default: rank 0 may be downloading the dataset, or writing a large
/// checkpoint, while the others wait). A rank that dies is noticed within
/// seconds whatever this is; a rank that hangs, within this.
pub const TIMEOUT_ENV: &str = "DDSAS_DIST_TIMEOUT_S";
const MASTER: &str = "127.0.0.1";

/// What a rank process was told by its launcher, or by srun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankSpec {
    pub rank: usize,
    pub world: usize,
    /// Its rank among the ranks of its node: which of the node's GPUs it
    /// trains on.
    pub local_rank: usize,
    /// The host of rank 0's store: loopback for the launcher's ranks.
    pub master: String,
    pub port: u16,
    /// libtorch threads of this rank: the launcher's threads split evenly,
    /// or the CPUs Slurm gave the task.
    pub threads: usize,
}

impl RankSpec {
    /// The spec in [`RANK_ENV`], if this process is a rank.
    pub fn from_env() -> anyhow::Result<Option<RankSpec>> {
        let Ok(text) = std::env::var(RANK_ENV) else {
            return Ok(None);
        };
        let words: Vec<usize> = text
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("{RANK_ENV}={text:?}: expected RANK WORLD PORT THREADS"))?;
        let [rank, world, port, threads] = words[..] else {
            anyhow::bail!("{RANK_ENV}={text:?}: expected RANK WORLD PORT THREADS");
        };
        Ok(Some(RankSpec {
            rank,
            world,
            local_rank: rank,
            master: MASTER.into(),
            port: u16::try_from(port).context("the rendezvous port")?,
            threads,
        }))
    }

    /// The spec of a rank that srun started for `ddsas train --slurm`
    /// (`env` looks a variable up): rank, world and local rank are srun's
    /// `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`; the master is the
    /// host the batch script exported as [`MASTER_VARIABLE`]; the port comes
    /// from `SLURM_JOB_ID`; the threads are `SLURM_CPUS_PER_TASK`, else
    /// `cores`. `None` outside such a job, and for a job of one task, which
    /// trains as one process.
    pub fn from_slurm(
        env: impl Fn(&str) -> Option<String>,
        cores: usize,
    ) -> anyhow::Result<Option<RankSpec>> {
        let Some(master) = env(MASTER_VARIABLE).filter(|m| !m.trim().is_empty()) else {
            return Ok(None);
        };
        let number = |name: &str| -> anyhow::Result<Option<u64>> {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .with_context(|| format!("{name}={v:?} under srun: expected a number"))
                })
                .transpose()
        };
        let needed = |name: &str| -> anyhow::Result<u64> {
            number(name)?.with_context(|| {
                format!("{MASTER_VARIABLE} is set but {name} is not: `ddsas train` of a `train --slurm` job must be started by the job's srun")
            })
        };
        let world = usize::try_from(needed("SLURM_NTASKS")?)?;
        if world < 2 {
            return Ok(None);
        }
        let threads = match number("SLURM_CPUS_PER_TASK")? {
            Some(n) if n > 0 => usize::try_from(n)?,
            _ => cores.max(1),
        };
        Ok(Some(RankSpec {
            rank: usize::try_from(needed("SLURM_PROCID")?)?,
            world,
            local_rank: usize::try_from(needed("SLURM_LOCALID")?)?,
            master: master.trim().to_owned(),
            port: rendezvous_port(needed("SLURM_JOB_ID")?),
            threads,
        }))
    }

    /// Joins the ranks' process group on loopback, its collectives on
    /// `backend` and this rank's `device`; then rank 0 tells the others
    /// whether there is a run to train (`go`: false when it found the run
    /// done), and every rank answers that.
    pub fn join(
        &self,
        go: bool,
        backend: DistBackend,
        device: tch::Device,
    ) -> anyhow::Result<bool> {
        parallel::join(&Rendezvous {
            master_addr: self.master.clone(),
            master_port: self.port,
            rank: self.rank,
            world_size: self.world,
            timeout: timeout(),
            backend,
            device,
        })
        .map_err(|e| anyhow::anyhow!("rank {} could not join: {e}", self.rank))?;
        let mut flag = vec![Tensor::from_slice(&[i64::from(go)]).to_kind(Kind::Int64)];
        parallel::combine(&mut flag, Combine::FromRankZero)
            .map_err(|e| anyhow::anyhow!("rank {}: {e}", self.rank))?;
        Ok(flag[0].int64_value(&[0]) != 0)
    }
}

/// The device of a rank whose local rank (among its node's ranks) is
/// `local`, on a run on `device`: CPU stays CPU; on CUDA each rank takes
/// its own GPU, the `local`-th of `gpus`, else GPU `local` of those
/// visible (modulo their number: a rank that Slurm gave a single GPU sees
/// only that one, as GPU 0).
pub fn rank_device(device: &str, gpus: &[u32], local: usize) -> anyhow::Result<String> {
    if !is_cuda(device) {
        return Ok(device.to_owned());
    }
    let gpu = match gpus {
        [] => {
            let visible = crate::exec::device::cuda_devices().len().max(1);
            u32::try_from(local % visible).context("the local rank")?
        }
        list => *list
            .get(local)
            .with_context(|| format!("rank {local} has no GPU in --gpus {list:?}"))?,
    };
    Ok(format!("cuda:{gpu}"))
}

fn is_cuda(device: &str) -> bool {
    device == "cuda" || device.starts_with("cuda:")
}

/// Checks, before any rank starts, that every rank has a GPU of its own
/// on CUDA (`--gpus` lists at least `nproc`, or that many are visible)
/// and that `setting` can run there; answers the backend the ranks use.
pub fn check_devices(
    device: &str,
    gpus: &[u32],
    nproc: u32,
    setting: DistBackend,
) -> anyhow::Result<DistBackend> {
    let cuda = is_cuda(device);
    if cuda {
        let (count, what) = if gpus.is_empty() {
            let seen = crate::exec::device::cuda_devices().len();
            (seen, format!("libtorch sees {seen} CUDA device(s)"))
        } else {
            (gpus.len(), format!("--gpus lists {}", gpus.len()))
        };
        if (nproc as usize) > count {
            anyhow::bail!("--nproc {nproc} on CUDA takes one GPU per rank, but {what}: lower --nproc or list more GPUs with --gpus");
        }
    } else if !gpus.is_empty() {
        anyhow::bail!(
            "--gpus picks the GPUs of the ranks on --device cuda; this run is on {device}"
        );
    }
    Ok(setting.for_device(cuda, crate::nas::dist::NCCL_BUILT)?)
}

fn timeout() -> Duration {
    let secs = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(600);
    Duration::from_secs(secs.max(1))
}

/// A rank after the first: trains the run of `cfg` on its shards, in step
/// with rank 0, and records nothing. A peer that stops answering ends it
/// with the group's line and the interrupted status.
pub fn follow(
    spec: RankSpec,
    backend: DistBackend,
    rt: &Runtime,
    cfg: &ResolvedTrain,
    opts: RunOptions,
) -> anyhow::Result<ExitCode> {
    if !spec.join(false, backend, opts.device)? {
        return Ok(ExitCode::SUCCESS);
    }
    follow_joined(&spec, rt, cfg, &opts)
}

/// [`follow`] for a rank that has joined its group and been told to go.
pub fn follow_joined(
    spec: &RankSpec,
    rt: &Runtime,
    cfg: &ResolvedTrain,
    opts: &RunOptions,
) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    crate::exec::process::watch_stop_signals(rt, stop.clone(), "")?;
    let mut observer = RankObserver { stop };
    match crate::nas::train::run(cfg, opts, &mut observer) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(RunError::PeerLost(message)) => {
            crate::errln!("error: rank {}: {message}", spec.rank);
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        Err(RunError::Interrupted { .. }) => Ok(ExitCode::from(EXIT_INTERRUPTED)),
        Err(err) => Err(anyhow::anyhow!("rank {}: {err}", spec.rank)),
    }
}

/// How the launcher's ranks are tied to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tie {
    /// `ddsas train --nproc`, started from a terminal: each rank leads its
    /// own process group (a Ctrl-C reaches the launcher alone, which passes
    /// one stop to every rank), and a rank whose launcher dies gets SIGTERM:
    /// it stops at the next step, checkpointed.
    Terminal,
    /// A sweep's worker (`ddsas worker --nproc`): the ranks stay in the
    /// worker's process group, which the orchestrator kills as one when the
    /// worker hangs, and a rank whose launcher dies is killed with it. The
    /// orchestrator acts on the worker's exit (it retries the run from its
    /// checkpoint at once), so no rank may outlive it and write to a run
    /// that the next attempt holds.
    Worker,
}

impl Tie {
    /// The signal a rank gets when its launcher dies.
    fn on_launcher_death(self) -> libc::c_int {
        match self {
            Tie::Terminal => libc::SIGTERM,
            Tie::Worker => libc::SIGKILL,
        }
    }
}

/// The launcher: starts `nproc` ranks of this command line, each with its
/// share of `threads` (0: every core), tied to it as `tie` says, forwards
/// stop signals to them (and one stop when its own parent is gone), and
/// answers rank 0's exit status. Once one rank has ended, the others get
/// the group's timeout and a little more to end on their own (a dead peer
/// ends them within seconds), or a few seconds once rank 0 has ended
/// ([`Grace`]), then are killed.
pub fn launch(nproc: u32, threads: usize, tie: Tie, rt: &Runtime) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding this ddsas binary")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let port = free_port()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let total = if threads > 0 { threads } else { cores };
    let per_rank = (total / nproc as usize).max(1);
    let signals = forward_signals(rt)?;
    let mut children = Vec::new();
    for rank in 0..nproc {
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .env(RANK_ENV, format!("{rank} {nproc} {port} {per_rank}"));
        if tie == Tie::Terminal {
            cmd.process_group(0);
        }
        let death = tie.on_launcher_death();
        // SAFETY: prctl is async-signal-safe; it only sets a flag of the
        // child, which then gets `death` if the launcher dies.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, death);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting rank {rank}"))?;
        children.push(child);
    }
    let grace = Grace {
        after_any: timeout() + Duration::from_secs(10),
        after_rank_zero: AFTER_RANK_ZERO,
    };
    let statuses = supervise(&mut children, &signals, grace)?;
    Ok(exit_code(&statuses))
}

/// A free TCP port on loopback for rank 0's store (free when asked; the
/// store binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((MASTER, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The signals the launcher received, to be passed on to the ranks.
#[derive(Debug, Default)]
struct Received {
    /// Stop signals (SIGINT, SIGTERM, SIGHUP): each becomes a SIGTERM.
    stops: AtomicUsize,
    /// Slurm's SIGUSR2: passed on as it is.
    time_limits: AtomicUsize,
}

/// Counts the signals the launcher receives.
fn forward_signals(rt: &Runtime) -> anyhow::Result<Arc<Received>> {
    use tokio::signal::unix::{signal, SignalKind};
    let received = Arc::new(Received::default());
    let (mut signals, mut usr2) = {
        let _inside = rt.enter();
        (
            crate::exec::process::StopSignals::new().context("installing the signal handlers")?,
            signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?,
        )
    };
    let seen = received.clone();
    rt.spawn(async move {
        loop {
            tokio::select! {
                _ = signals.recv() => seen.stops.fetch_add(1, Ordering::SeqCst),
                _ = usr2.recv() => seen.time_limits.fetch_add(1, Ordering::SeqCst),
            };
        }
    });
    Ok(received)
}

/// How long the ranks still alive may take to end once one has ended.
/// Every collective involves rank 0, whose process serves the store: once
/// it has ended, the others' next collective fails within seconds, so a
/// rank still alive after `after_rank_zero` is hung (or in a long local
/// step whose result nobody records) and is killed. While rank 0 lives, a
/// rank that ended gives it the group's timeout to notice and record the
/// run's end.
#[derive(Debug, Clone, Copy)]
struct Grace {
    after_any: Duration,
    after_rank_zero: Duration,
}

/// See [`Grace::after_rank_zero`].
const AFTER_RANK_ZERO: Duration = Duration::from_secs(10);

/// Waits for every rank; passes each signal on to the live ones; kills
/// those still alive when the `grace` after a rank's end has passed.
fn supervise(
    children: &mut [Child],
    signals: &Received,
    grace: Grace,
) -> anyhow::Result<Vec<ExitStatus>> {
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; children.len()];
    let mut forwarded = (0, 0);
    let mut deadline: Option<Instant> = None;
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    let mut orphaned = false;
    while statuses.iter().any(Option::is_none) {
        // A parent gone (a sweep's orchestrator killed, a terminal closed
        // without SIGHUP) is one stop: the ranks checkpoint at the step.
        // SAFETY: as above.
        if !orphaned && unsafe { libc::getppid() } != parent {
            orphaned = true;
            crate::errln!(
                "launcher: its parent (pid {parent}) is gone; every rank stops at the next step"
            );
            signals.stops.fetch_add(1, Ordering::SeqCst);
        }
        for (rank, (child, status)) in children.iter_mut().zip(statuses.iter_mut()).enumerate() {
            if status.is_none() {
                *status = child.try_wait()?;
                if status.is_some() {
                    let wait = if rank == 0 {
                        grace.after_rank_zero
                    } else {
                        grace.after_any
                    };
                    let end = Instant::now() + wait;
                    deadline = Some(deadline.map_or(end, |d| d.min(end)));
                }
            }
        }
        let asked = (
            signals.stops.load(Ordering::SeqCst),
            signals.time_limits.load(Ordering::SeqCst),
        );
        let kill_now = deadline.is_some_and(|d| Instant::now() >= d);
        let live = children
            .iter()
            .zip(&statuses)
            .filter(|(_, s)| s.is_none())
            .map(|(c, _)| c.id() as libc::pid_t);
        for pid in live {
            // SAFETY: the pid is a child of this process not yet reaped.
            unsafe {
                if kill_now {
                    libc::kill(pid, libc::SIGKILL);
                    continue;
                }
                if forwarded.1 < asked.1 {
                    libc::kill(pid, libc::SIGUSR2);
                }
                if forwarded.0 < asked.0 {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
        forwarded = asked;
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(statuses.into_iter().flatten().collect())
}

/// Rank 0's exit status (it recorded the run's end), with a line for each
/// other rank that failed otherwise than by stopping.
fn exit_code(statuses: &[ExitStatus]) -> ExitCode {
    for (rank, status) in statuses.iter().enumerate().skip(1) {
        let stopped =
            matches!(status.code(), Some(c) if c == 0 || c == i32::from(EXIT_INTERRUPTED));
        if !stopped {
            crate::errln!("rank {rank} ended with {status}");
        }
    }
    match statuses.first().and_then(ExitStatus::code) {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => {
            crate::errln!("error: rank 0 ended with {}", statuses[0]);
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const SRUN: [(&str, &str); 6] = [
        ("DDSAS_DIST_MASTER", "node07"),
        ("SLURM_JOB_ID", "4242"),
        ("SLURM_PROCID", "5"),
        ("SLURM_NTASKS", "8"),
        ("SLURM_LOCALID", "1"),
        ("SLURM_CPUS_PER_TASK", "6"),
    ];

    #[test]
    fn a_rank_under_srun_takes_its_part_from_slurm() {
        let spec = RankSpec::from_slurm(env(&SRUN), 64).unwrap().unwrap();
        assert_eq!(
            spec,
            RankSpec {
                rank: 5,
                world: 8,
                local_rank: 1,
                master: "node07".into(),
                port: 24242,
                threads: 6,
            }
        );
        let without_cpus = RankSpec::from_slurm(env(&SRUN[..5]), 3).unwrap().unwrap();
        assert_eq!(without_cpus.threads, 3);
    }

    #[test]
    fn only_a_job_of_several_tasks_of_our_script_makes_ranks() {
        assert_eq!(RankSpec::from_slurm(env(&SRUN[1..]), 4).unwrap(), None);
        let mut one = SRUN;
        one[3] = ("SLURM_NTASKS", "1");
        assert_eq!(RankSpec::from_slurm(env(&one), 4).unwrap(), None);
        let err = RankSpec::from_slurm(env(&[SRUN[0], SRUN[3]]), 4).unwrap_err();
        assert!(err.to_string().contains("SLURM_PROCID"), "{err}");
        let mut bad = SRUN;
        bad[2] = ("SLURM_PROCID", "x");
        let err = RankSpec::from_slurm(env(&bad), 4).unwrap_err();
        assert!(err.to_string().contains("SLURM_PROCID=\"x\""), "{err}");
    }
}
