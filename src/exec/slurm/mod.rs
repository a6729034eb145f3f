//! Sweeps on a Slurm cluster: `ddsas sweep submit --slurm`
//! writes a batch script ([`script`]) and submits it as a job array of pull
//! workers; each task runs `ddsas worker --sweep`, which plans its slots
//! from what Slurm gave it ([`task_slots`]) and runs the orchestrator's loop
//! until nothing is left to claim; before a time limit it requeues its own
//! task ([`requeue`]). `sweep status` asks squeue about the recorded jobs in
//! one call ([`queue`], [`squeue`]) and `sweep cancel` scancels them.
//! `ddsas train --slurm` submits one data-parallel training as one job
//! whose batch script starts its ranks with `srun` ([`train_script`]).
//!
//! The Slurm commands are run as child processes with a time limit: a
//! client pointed at a missing configuration retries for a minute, and
//! `sweep status` must not hang on it.

pub mod handoff;
pub mod pull;
pub mod script;
pub mod squeue;
pub mod train_script;

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::orchestrator::Slot;
use super::slots::{self, GpuChoice, RunsPerGpu, SlotError, SlotRequest};
use crate::sweep::Resources;

/// How long a Slurm client command may take before ddsas gives up on it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether a `--db` value names a PostgreSQL database (the only kind
/// Slurm's pull workers on several nodes can share).
pub fn is_postgres_url(db: &str) -> bool {
    db.parse::<crate::store::DbLocation>()
        .is_ok_and(|location| location.is_postgres())
}

/// Why a submission to Slurm was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// A SQLite `--db`, which nodes cannot share.
    #[error("--slurm needs a PostgreSQL database, and --db {0} is a SQLite file: its tasks run on several nodes, and SQLite's locking does not work across the network file systems they share (its write-ahead log needs shared memory on one machine; databases end up \"malformed\"). Pass --db postgres://USER@HOST/DB instead: `scripts/postgres.sh start` starts one on this machine (postgres://postgres@127.0.0.1:55432/ddsas), or ask for one on a host every node can reach")]
    SqliteDb(String),
    /// `sbatch` failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `sbatch` answered without a job id.
    #[error("sbatch accepted {script} but printed no job id (it said: {said:?})")]
    NoJobId {
        /// The batch script.
        script: String,
        /// What it printed, trimmed.
        said: String,
    },
}

/// Refuses a SQLite `--db` for a Slurm submission, with the reason and
/// the fix.
pub fn refuse_sqlite(db: &str) -> Result<(), SubmitError> {
    if is_postgres_url(db) {
        return Ok(());
    }
    Err(SubmitError::SqliteDb(db.to_owned()))
}

/// How a Slurm client command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The program is not installed here (not a cluster's login node).
    #[error("`{0}` is not installed here; run ddsas on a login node of the cluster (for this machine's test cluster: scripts/slurm.sh start, then export the SLURM_CONF it prints)")]
    Missing(String),
    /// It did not end within the time limit.
    #[error("`{program}` did not answer within {seconds} s (is slurmctld up? `scripts/slurm.sh status` shows this machine's test cluster)")]
    TimedOut {
        /// The command.
        program: String,
        /// The limit.
        seconds: u64,
    },
    /// It ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// It could not be started for another reason.
    #[error("cannot run `{program}`: {message}")]
    Start {
        /// The command.
        program: String,
        /// Why.
        message: String,
    },
}

/// Why `program` did not start, `path` being the `PATH` it was looked up
/// in. A search of `PATH` that met a folder this user may not enter fails
/// with "permission denied" even when the program is in none of them (the
/// rule of execvp): a user without root meets that with another user's
/// folders on `PATH` (`su`, `sudo -u`), and it is a missing program too.
fn start_error(program: &str, e: &std::io::Error, path: &OsStr) -> ClientError {
    let missing = match e.kind() {
        std::io::ErrorKind::NotFound => true,
        std::io::ErrorKind::PermissionDenied => {
            !program.contains('/')
                && !std::env::split_paths(path).any(|d| d.join(program).is_file())
        }
        _ => false,
    };
    if missing {
        return ClientError::Missing(program.to_owned());
    }
    ClientError::Start {
        program: program.to_owned(),
        message: e.to_string(),
    }
}

/// Runs a Slurm client command and returns its stdout, giving up after
/// `timeout` (the child is killed then).
pub fn run_client(
    program: &str,
    args: &[String],
    timeout: Duration,
) -> Result<String, ClientError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| start_error(program, &e, &std::env::var_os("PATH").unwrap_or_default()))?;
    // Both pipes are drained on threads, so a large answer cannot block
    // the child while we wait for it.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ClientError::TimedOut {
                    program: program.to_owned(),
                    seconds: timeout.as_secs(),
                });
            }
            Err(e) => {
                return Err(ClientError::Start {
                    program: program.to_owned(),
                    message: e.to_string(),
                })
            }
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        return Ok(stdout);
    }
    Err(ClientError::Failed {
        command: format!("{program} {}", args.join(" ")),
        status: status.to_string(),
        stderr: stderr.trim().to_owned(),
    })
}

/// Submits a batch script with `sbatch --parsable`; returns the job id.
pub fn submit(script: &std::path::Path) -> Result<String, SubmitError> {
    sbatch(script, false)
}

/// Submits a batch script held (`sbatch --hold`: it does not start until
/// [`release`]), so that what must happen before it starts (a run handed
/// to it) happens first; returns the job id.
pub fn submit_held(script: &std::path::Path) -> Result<String, SubmitError> {
    sbatch(script, true)
}

/// Lets a job submitted with [`submit_held`] start (`scontrol release`).
pub fn release(job: &str) -> Result<(), ClientError> {
    let args = vec!["release".to_owned(), job.to_owned()];
    run_client("scontrol", &args, CLIENT_TIMEOUT).map(|_| ())
}

fn sbatch(script: &std::path::Path, held: bool) -> Result<String, SubmitError> {
    let mut args = vec!["--parsable".to_owned()];
    if held {
        args.push("--hold".to_owned());
    }
    args.push(script.display().to_string());
    let out = run_client("sbatch", &args, CLIENT_TIMEOUT)?;
    parse_job_id(&out).ok_or_else(|| SubmitError::NoJobId {
        script: script.display().to_string(),
        said: out.trim().to_owned(),
    })
}

/// The job id in `sbatch --parsable`'s answer: `4242`, or `4242;cluster`
/// on a multi-cluster setup.
pub fn parse_job_id(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_owned())
}

/// Every task of the given jobs, from one squeue call. Jobs Slurm has
/// forgotten (finished more than `MinJobAge` ago) are simply not listed.
pub fn queue(job_ids: &[String]) -> Result<Vec<squeue::QueuedTask>, ClientError> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    let args = vec![
        "-h".to_owned(),
        "-r".to_owned(),
        "--states=all".to_owned(),
        "-o".to_owned(),
        squeue::SQUEUE_FORMAT.to_owned(),
        format!("--jobs={}", job_ids.join(",")),
    ];
    match run_client("squeue", &args, CLIENT_TIMEOUT) {
        Ok(out) => Ok(squeue::parse_squeue(&out)),
        Err(ClientError::Failed { stderr, .. }) if squeue::says_unknown_jobs(&stderr) => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// Whether job `job` has ended for good (squeue lists it as ended, or
/// no longer at all): what a run held for the job waits for before another
/// worker may take it. `None` when squeue cannot tell.
pub fn job_ended(job: &str) -> Option<bool> {
    let tasks = queue(&[job.to_owned()]).ok()?;
    Some(tasks.iter().all(squeue::QueuedTask::ended))
}

/// The error recorded with a run released because the Slurm job it was
/// held for (owner `slurm:<job>`) was cancelled, or ended, before its
/// rank 0 took it over.
pub const JOB_NEVER_STARTED: &str = "its Slurm job was cancelled, or ended, before it started";

/// Cancels the given jobs (every task of each array) with one scancel.
pub fn cancel(job_ids: &[String]) -> Result<(), ClientError> {
    if job_ids.is_empty() {
        return Ok(());
    }
    run_client("scancel", job_ids, CLIENT_TIMEOUT).map(|_| ())
}

/// The Slurm task this process runs in, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThisTask {
    /// How `scontrol` names it: `<array job>_<task>` for an array task,
    /// else the job id.
    pub id: String,
    /// How often Slurm has requeued it (`SLURM_RESTART_COUNT`).
    pub restarts: u32,
}

/// The Slurm task of an environment (`env` looks a variable up); `None`
/// outside Slurm.
pub fn this_task(env: impl Fn(&str) -> Option<String>) -> Option<ThisTask> {
    let job = env("SLURM_JOB_ID").filter(|v| !v.is_empty())?;
    let id = match (env("SLURM_ARRAY_JOB_ID"), env("SLURM_ARRAY_TASK_ID")) {
        (Some(array), Some(task)) if !array.is_empty() && !task.is_empty() => {
            format!("{array}_{task}")
        }
        _ => job,
    };
    let restarts = env("SLURM_RESTART_COUNT")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Some(ThisTask { id, restarts })
}

/// Asks Slurm to requeue `task` (it is killed at once and starts again
/// later with the same id), so the runs it stopped before its time limit
/// resume there. The last thing a pull worker does.
pub fn requeue(task: &ThisTask) -> Result<(), ClientError> {
    let args = vec!["requeue".to_owned(), task.id.clone()];
    run_client("scontrol", &args, CLIENT_TIMEOUT).map(|_| ())
}

/// What Slurm gave a task: its GPUs (as `CUDA_VISIBLE_DEVICES` lists
/// them) and its CPU cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskResources {
    /// GPU indices; empty when the task has none.
    pub gpus: Vec<u32>,
    /// CPU cores (`SLURM_CPUS_PER_TASK`, else the machine's).
    pub cpus: usize,
}

/// The resources of the task an environment describes. Inside a Slurm
/// job, GPUs count only when Slurm allocated some (`SLURM_JOB_GPUS` /
/// `SLURM_GPUS_ON_NODE`; a `CUDA_VISIBLE_DEVICES` passed on from the login
/// node means nothing here).
pub fn task_resources(
    env: impl Fn(&str) -> Option<String>,
    machine_cores: usize,
) -> Result<TaskResources, SlotError> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let in_slurm = set("SLURM_JOB_ID").is_some();
    let slurm_gave_gpus = set("SLURM_JOB_GPUS").is_some()
        || set("SLURM_GPUS_ON_NODE").is_some_and(|n| n.trim() != "0");
    let gpus = match set("CUDA_VISIBLE_DEVICES") {
        Some(list) if slurm_gave_gpus || !in_slurm => parse_gpu_list(&list)?,
        _ => Vec::new(),
    };
    let cpus = match set("SLURM_CPUS_PER_TASK") {
        Some(n) => match n.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(SlotError::CpusPerTask(n)),
        },
        None => machine_cores.max(1),
    };
    Ok(TaskResources { gpus, cpus })
}

fn parse_gpu_list(list: &str) -> Result<Vec<u32>, SlotError> {
    list.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            g.parse::<u32>()
                .map_err(|_| SlotError::GpuList(list.to_owned()))
        })
        .collect()
}

/// The worker slots of a pull worker on `task`: `runs_per_gpu` per GPU
/// (default: the sweep's `resources.runs_per_gpu`, else 1), or without a
/// GPU, one CPU slot per `threads` cores (default: the sweep's
/// `resources.cpu_threads_per_run`, else one slot with every core).
pub fn task_slots(
    task: &TaskResources,
    runs_per_gpu: Option<usize>,
    threads: Option<usize>,
    resources: &Resources,
) -> Result<(Vec<Slot>, String), SlotError> {
    let runs_per_gpu = match runs_per_gpu {
        Some(n) => Some(RunsPerGpu::Fixed(
            std::num::NonZeroUsize::new(n).ok_or(SlotError::RunsPerGpuZero)?,
        )),
        None => None,
    };
    let cpu_workers = match (task.gpus.is_empty(), threads) {
        (false, _) => Some(0),
        (true, Some(0)) => return Err(SlotError::ThreadsZero),
        (true, Some(t)) => Some((task.cpus / t).max(1)),
        (true, None) => None,
    };
    let request = SlotRequest {
        gpus: if task.gpus.is_empty() {
            GpuChoice::None
        } else {
            GpuChoice::List(task.gpus.clone())
        },
        runs_per_gpu,
        cpu_workers,
        threads,
    };
    let detected = task.gpus.iter().map(|&g| (g, None)).collect();
    slots::plan_for(&request, resources, Some(detected), task.cpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::orchestrator::SlotDevice;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn only_postgres_urls_pass_the_slurm_check() {
        assert!(refuse_sqlite("postgres://u@h/db").is_ok());
        assert!(refuse_sqlite("postgresql://u@h:5432/db").is_ok());
        for sqlite in [
            "results.db",
            "/shared/results.db",
            "sqlite://x.db",
            "postgres.db",
        ] {
            let err = refuse_sqlite(sqlite).unwrap_err().to_string();
            assert!(err.contains("network file systems"), "{err}");
            assert!(err.contains("postgres://"), "{err}");
            assert!(err.contains("scripts/postgres.sh start"), "{err}");
            assert!(err.contains(sqlite), "{err}");
        }
    }

    #[test]
    fn job_ids_come_from_parsable_output() {
        assert_eq!(parse_job_id("4242\n").as_deref(), Some("4242"));
        assert_eq!(parse_job_id("4242;big\n").as_deref(), Some("4242"));
        assert_eq!(parse_job_id("\n 17 \n").as_deref(), Some("17"));
        assert_eq!(parse_job_id(""), None);
        assert_eq!(parse_job_id("Submitted batch job 4242"), None);
    }

    #[test]
    fn an_array_task_is_named_by_array_and_index() {
        let task = this_task(env(&[
            ("SLURM_JOB_ID", "43"),
            ("SLURM_ARRAY_JOB_ID", "41"),
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_RESTART_COUNT", "1"),
        ]))
        .unwrap();
        assert_eq!(
            task,
            ThisTask {
                id: "41_2".into(),
                restarts: 1
            }
        );
        let plain = this_task(env(&[("SLURM_JOB_ID", "7")])).unwrap();
        assert_eq!(plain.id, "7");
        assert_eq!(this_task(env(&[])), None);
    }

    #[test]
    fn gpus_count_only_when_slurm_gave_them() {
        let gave = task_resources(
            env(&[
                ("SLURM_JOB_ID", "5"),
                ("SLURM_JOB_GPUS", "2,3"),
                ("CUDA_VISIBLE_DEVICES", "2,3"),
                ("SLURM_CPUS_PER_TASK", "8"),
            ]),
            64,
        )
        .unwrap();
        assert_eq!(
            gave,
            TaskResources {
                gpus: vec![2, 3],
                cpus: 8
            }
        );
        let inherited = task_resources(
            env(&[("SLURM_JOB_ID", "5"), ("CUDA_VISIBLE_DEVICES", "0")]),
            4,
        )
        .unwrap();
        assert_eq!(
            inherited,
            TaskResources {
                gpus: vec![],
                cpus: 4
            }
        );
        let by_hand = task_resources(env(&[("CUDA_VISIBLE_DEVICES", "1")]), 4).unwrap();
        assert_eq!(by_hand.gpus, [1]);
        let uuid = task_resources(
            env(&[
                ("SLURM_JOB_ID", "5"),
                ("SLURM_GPUS_ON_NODE", "1"),
                ("CUDA_VISIBLE_DEVICES", "GPU-1a2b"),
            ]),
            4,
        );
        assert!(uuid.unwrap_err().to_string().contains("GPU-1a2b"));
        let bad = task_resources(
            env(&[("SLURM_JOB_ID", "5"), ("SLURM_CPUS_PER_TASK", "x")]),
            4,
        );
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("SLURM_CPUS_PER_TASK=x"));
    }

    #[test]
    fn slots_follow_the_task_gpus_or_its_cores() {
        let none = Resources::default();
        let two_gpus = TaskResources {
            gpus: vec![2, 3],
            cpus: 8,
        };
        let (slots, _) = task_slots(&two_gpus, Some(2), None, &none).unwrap();
        let devices: Vec<SlotDevice> = slots.iter().map(|s| s.device).collect();
        assert_eq!(
            devices,
            [
                SlotDevice::Gpu(2),
                SlotDevice::Gpu(2),
                SlotDevice::Gpu(3),
                SlotDevice::Gpu(3)
            ]
        );
        assert!(slots.iter().all(|s| s.threads == 2), "8 cores over 4 runs");
        let cpus = TaskResources {
            gpus: vec![],
            cpus: 4,
        };
        let (slots, _) = task_slots(&cpus, None, Some(1), &none).unwrap();
        assert_eq!(slots.len(), 4);
        assert!(slots
            .iter()
            .all(|s| s.device == SlotDevice::Cpu && s.threads == 1));
        let (slots, _) = task_slots(&cpus, None, None, &none).unwrap();
        assert_eq!(
            (slots.len(), slots[0].threads),
            (1, 4),
            "one run with every core"
        );
        let per_run = Resources {
            cpu_threads_per_run: Some(2),
            ..Resources::default()
        };
        let (slots, _) = task_slots(&cpus, None, None, &per_run).unwrap();
        assert_eq!((slots.len(), slots[0].threads), (2, 2));
        assert!(task_slots(&cpus, None, Some(0), &none).is_err());
        assert!(task_slots(&two_gpus, Some(0), None, &none).is_err());
    }

    #[test]
    fn a_missing_client_says_where_to_run() {
        let err = run_client("ddsas-no-such-slurm-client", &[], CLIENT_TIMEOUT).unwrap_err();
        assert_eq!(
            err,
            ClientError::Missing("ddsas-no-such-slurm-client".into())
        );
        assert!(err.to_string().contains("login node"));
    }

    /// A `PATH` with a folder the user may not enter makes a missing
    /// program "permission denied"; one that is there but may not be run
    /// stays a start failure.
    #[test]
    fn a_client_nowhere_on_path_is_missing_whatever_the_error() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("squeue"), b"").unwrap();
        let path =
            std::env::join_paths(["/nonexistent/ddsas", dir.path().to_str().unwrap()]).unwrap();
        assert_eq!(
            start_error("sbatch", &denied, &path),
            ClientError::Missing("sbatch".into())
        );
        assert!(matches!(
            start_error("squeue", &denied, &path),
            ClientError::Start { .. }
        ));
        assert!(matches!(
            start_error("/opt/slurm/bin/sbatch", &denied, &path),
            ClientError::Start { .. }
        ));
    }

    #[test]
    fn a_client_that_hangs_is_given_up_on() {
        let started = std::time::Instant::now();
        let err = run_client("sleep", &["5".into()], Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, ClientError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        let err = run_client(
            "sh",
            &["-c".into(), "echo oops >&2; exit 3".into()],
            CLIENT_TIMEOUT,
        )
        .unwrap_err();
        assert!(err.to_string().contains("oops"), "{err}");
        assert_eq!(
            run_client("echo", &["hi".into()], CLIENT_TIMEOUT).unwrap(),
            "hi\n"
        );
    }
}
