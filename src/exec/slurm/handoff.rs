//! A sweep's data-parallel training on Slurm (an `evaluate:` entry with
//! `nproc: N` in a sweep submitted with `sweep submit --slurm`): the pull
//! worker that meets it does not train it in its own task, whose
//! allocation was sized for one-device runs, but hands it to a Slurm job of
//! its own, the one `ddsas train --slurm` would submit
//! ([`super::train_script`]): srun starts the N ranks on `nodes` nodes,
//! they meet on the first one, and SIGUSR2 before the time limit stops
//! them at a step and requeues the job.
//!
//! The run is claimed before the job is submitted and then held for it as
//! owner `slurm:<job>` ([`crate::exec::process::Owner::SlurmJob`]), so no
//! other pull worker takes it while the job waits in the queue; the job's
//! rank 0 takes it over when it starts (`exec::claim`), and the job is
//! recorded with the run in `slurm_jobs`, where `runs show` finds it.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::script::SbatchOptions;
use super::train_script::TrainScript;
use crate::config::train::DistBackend;
use crate::store::RunRow;

/// What a pull worker needs to submit a training's own job.
#[derive(Debug, Clone, PartialEq)]
pub struct HandOff {
    /// The database URL the ranks record into.
    pub db: String,
    /// The working folder the ranks run in (the pull worker's).
    pub workdir: PathBuf,
    /// The folder each training's `train-<run>/` goes into (scripts,
    /// config, the job's output).
    pub script_dir: PathBuf,
    /// The ddsas binary the ranks run.
    pub exe: PathBuf,
    /// GPUs of a node of the job: those of the pull worker's own task (0:
    /// a cluster without GPUs, one rank per task on CPU cores).
    pub gpus_per_node: u32,
    /// CPU cores of each rank (`--cpus-per-task`).
    pub cpus_per_rank: u32,
    /// The sbatch options the job takes from the pull worker's task
    /// (partition, account).
    pub sbatch: SbatchOptions,
}

/// How N ranks are laid out on nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Nodes of the job.
    pub nodes: u32,
    /// Ranks per node.
    pub tasks_per_node: u32,
    /// GPUs per node, one per rank; `None` on CPU.
    pub gpus_per_node: Option<u32>,
}

/// The layout of `ranks` ranks on nodes of `gpus` GPUs each (0: CPU only).
/// With GPUs, each node holds the most ranks that divide `ranks` evenly and
/// fit its GPUs (8 ranks on 4-GPU nodes: 2 x 4; 6 on 4: 3 x 2), so that
/// every node runs as many ranks as the others. On CPU the ranks share one
/// node, as `sweep run`'s CPU workers do.
pub fn layout(ranks: u32, gpus: u32) -> Layout {
    let ranks = ranks.max(1);
    if gpus == 0 {
        return Layout {
            nodes: 1,
            tasks_per_node: ranks,
            gpus_per_node: None,
        };
    }
    let per_node = (1..=gpus.min(ranks))
        .rev()
        .find(|g| ranks.is_multiple_of(*g))
        .unwrap_or(1);
    Layout {
        nodes: ranks / per_node,
        tasks_per_node: per_node,
        gpus_per_node: Some(per_node),
    }
}

impl HandOff {
    /// The batch script of run `run_id` on `ranks` ranks talking over `backend`:
    /// each rank runs `ddsas train --resume --config` on the run's stored config
    /// (written beside the script by [`HandOff::submit`]), which resolves to
    /// the run's own fingerprint, so rank 0 records into this run.
    pub fn script(&self, run_id: i64, ranks: u32, backend: DistBackend) -> TrainScript {
        let at = layout(ranks, self.gpus_per_node);
        let dir = self.run_dir(run_id);
        let mut rank_command = vec![
            self.exe.display().to_string(),
            "train".to_owned(),
            // From its last checkpoint when an earlier job or worker left
            // one (without, `train` would start it afresh); none: from
            // the start.
            "--resume".to_owned(),
            "--config".to_owned(),
            config_path(&dir).display().to_string(),
            "--device".to_owned(),
            if at.gpus_per_node.is_some() {
                "cuda"
            } else {
                "cpu"
            }
            .to_owned(),
        ];
        if backend != DistBackend::Auto {
            rank_command.extend([
                "--set".to_owned(),
                format!("dist_backend={}", backend.name()),
            ]);
        }
        TrainScript {
            run_id,
            db: self.db.clone(),
            workdir: self.workdir.clone(),
            script_name: next_script_name(&dir),
            script_dir: dir,
            data_dir: crate::data::home::data_home().map(|home| home.dir),
            nodes: at.nodes,
            tasks_per_node: at.tasks_per_node,
            gpus_per_node: at.gpus_per_node,
            sbatch: SbatchOptions {
                cpus_per_task: Some(self.cpus_per_rank.max(1)),
                ..self.sbatch.clone()
            },
            rank_command,
        }
    }

    /// Writes the run's config and its batch script and submits the
    /// script held ([`HandOff::release`] lets it start); returns the job id
    /// and the script's path, or a one-line reason.
    pub fn submit(
        &self,
        run: &RunRow,
        ranks: u32,
        backend: DistBackend,
    ) -> Result<(String, PathBuf), String> {
        let script = self.script(run.id, ranks, backend);
        let path = script.path();
        write_files(&script, &run.config_json).map_err(|e| {
            format!(
                "cannot write the batch script of its Slurm job in {}: {e}",
                script.script_dir.display()
            )
        })?;
        let job = super::submit_held(&path)
            .map_err(|e| format!("cannot submit {} to Slurm: {e}", path.display()))?;
        Ok((job, path))
    }

    /// Lets the job submitted by [`HandOff::submit`] start, once the run is
    /// held for it (its rank 0 could not take it over before), or a
    /// one-line reason.
    pub fn release(&self, job: &str) -> Result<(), String> {
        super::release(job).map_err(|e| {
            format!("cannot release Slurm job {job}, submitted held ({e}): run `scontrol release {job}`")
        })
    }

    fn run_dir(&self, run_id: i64) -> PathBuf {
        self.script_dir.join(format!("train-{run_id}"))
    }
}

/// The run's config, as the ranks read it (`--config`: JSON is YAML).
fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

/// `submit-N.sh` with the first N not taken in `dir`: every submission
/// keeps its own script.
fn next_script_name(dir: &Path) -> String {
    (1..)
        .map(|n| format!("submit-{n}.sh"))
        .find(|name| !dir.join(name).exists())
        .expect("an unused number")
}

/// The folder, the config and the script (readable by its owner only: the
/// database URL in it may hold a password).
fn write_files(script: &TrainScript, config_json: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(&script.script_dir)?;
    std::fs::write(config_path(&script.script_dir), config_json)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(script.path())?;
    std::io::Write::write_all(&mut file, script.text().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranks fill nodes evenly, one per GPU; on CPU they share a node.
    #[test]
    fn ranks_are_laid_out_evenly_on_the_nodes() {
        let at = |ranks, gpus| {
            let l = layout(ranks, gpus);
            (l.nodes, l.tasks_per_node, l.gpus_per_node)
        };
        assert_eq!(at(2, 0), (1, 2, None));
        assert_eq!(at(8, 4), (2, 4, Some(4)));
        assert_eq!(at(8, 8), (1, 8, Some(8)));
        assert_eq!(at(2, 8), (1, 2, Some(2)));
        assert_eq!(at(6, 4), (2, 3, Some(3)));
        assert_eq!(at(7, 4), (7, 1, Some(1)));
        assert_eq!(at(0, 0), (1, 1, None));
    }

    /// The ranks train the stored config on the job's devices, with the
    /// entry's backend when it named one.
    #[test]
    fn the_job_trains_the_stored_config_on_its_ranks() {
        let hand = HandOff {
            db: "postgres://me@db/ddsas".into(),
            workdir: "/exp".into(),
            script_dir: "/exp/slurm/s".into(),
            exe: "/opt/ddsas".into(),
            gpus_per_node: 0,
            cpus_per_rank: 2,
            sbatch: SbatchOptions {
                partition: Some("cpu".into()),
                signal_before_s: 120,
                ..SbatchOptions::default()
            },
        };
        let script = hand.script(5, 2, DistBackend::Gloo);
        assert_eq!(script.script_dir, PathBuf::from("/exp/slurm/s/train-5"));
        assert_eq!((script.nodes, script.tasks_per_node), (1, 2));
        let text = script.text();
        for part in [
            "#SBATCH --partition=cpu",
            "#SBATCH --requeue",
            "srun --ntasks=2 --ntasks-per-node=2 --cpus-per-task=2 /opt/ddsas train --resume --config /exp/slurm/s/train-5/config.json --device cpu --set dist_backend=gloo",
        ] {
            assert!(text.contains(part), "no {part:?} in\n{text}");
        }
        let auto = hand.script(5, 2, DistBackend::Auto).text();
        assert!(!auto.contains("dist_backend"), "{auto}");
    }
}
