//! The batch script of `ddsas train --slurm`: one job of `nodes` nodes
//! whose batch step `exec`s `srun`, which starts every rank of one
//! data-parallel training (`ddsas train` without the Slurm options) and
//! passes Slurm's SIGUSR2 on to each of them.
//!
//! The ranks meet on the first node of the job: the script exports its name
//! as [`MASTER_VARIABLE`], and each rank derives the port from the job id
//! ([`rendezvous_port`]) and its rank, world size and local rank from
//! srun's `SLURM_PROCID`, `SLURM_NTASKS` and `SLURM_LOCALID`.
//!
//! Built as text from plain data, like [`super::script`], so that the unit
//! tests see exactly what sbatch receives.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::script::{shell_quote, SbatchOptions};
use crate::store::DB_VARIABLE;

/// The host rank 0 of a `train --slurm` job listens on, exported by its
/// batch script; its presence tells a `ddsas train` that srun started it as
/// one rank of such a job.
pub const MASTER_VARIABLE: &str = "DDSAS_DIST_MASTER";

/// First port of the range rendezvous ports are taken from.
pub const PORT_BASE: u16 = 20000;
/// How many ports the range holds: [`PORT_BASE`] to 29999, below Linux's
/// ephemeral ports (32768 on), which outgoing connections take at random.
pub const PORT_SPAN: u16 = 10000;

/// The rendezvous port of job `job_id`: every rank computes the same one
/// without talking to the others, and two jobs on one node collide only
/// when their ids are [`PORT_SPAN`] apart.
pub fn rendezvous_port(job_id: u64) -> u16 {
    let offset = u16::try_from(job_id % u64::from(PORT_SPAN)).expect("below PORT_SPAN");
    PORT_BASE + offset
}

/// The file name of job `%j`'s output, in the script folder.
pub const TRAIN_OUTPUT_PATTERN: &str = "%j.out";

/// Everything the batch script of one data-parallel training says.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainScript {
    /// The train run (job name, header).
    pub run_id: i64,
    /// The `--db` value, exported as [`DB_VARIABLE`].
    pub db: String,
    /// The working folder, absolute: the ranks run there, so relative
    /// paths (checkpoints, data folders, `--config`) mean what they meant
    /// at submit.
    pub workdir: PathBuf,
    /// Where the script and the job's output go, absolute.
    pub script_dir: PathBuf,
    /// The script's file name in `script_dir` (`submit-1.sh`).
    pub script_name: String,
    /// The data folder, exported as `DDSAS_DATA` (a cluster may not pass
    /// the submit environment on).
    pub data_dir: Option<PathBuf>,
    /// Nodes of the job.
    pub nodes: u32,
    /// Ranks per node (one per GPU when `gpus_per_node` is set).
    pub tasks_per_node: u32,
    /// GPUs per node; `None` on a cluster without GPUs.
    pub gpus_per_node: Option<u32>,
    /// The sbatch options (`gpus_per_task` and `array_parallelism` do not
    /// apply to one training and are not written).
    pub sbatch: SbatchOptions,
    /// One rank's command line (unquoted words): the ddsas binary, `train`
    /// and its options.
    pub rank_command: Vec<String>,
}

impl TrainScript {
    /// Ranks of the job: the world size.
    pub fn world(&self) -> u32 {
        self.nodes * self.tasks_per_node
    }

    /// Where the script is written.
    pub fn path(&self) -> PathBuf {
        self.script_dir.join(&self.script_name)
    }

    /// The script's text.
    pub fn text(&self) -> String {
        let mut out = String::from("#!/bin/bash\n");
        self.header(&mut out);
        for directive in self.directives() {
            let _ = writeln!(out, "#SBATCH {directive}");
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "cd {} || exit 1",
            shell_quote(&self.workdir.display().to_string())
        );
        if let Some(data) = &self.data_dir {
            let _ = writeln!(
                out,
                "export DDSAS_DATA={}",
                shell_quote(&data.display().to_string())
            );
        }
        out.push_str(
            "# In the environment, not on the command line: argv is readable by every\n\
             # user of the node (ps), a password in the URL included.\n",
        );
        let _ = writeln!(out, "export {DB_VARIABLE}={}", shell_quote(&self.db));
        let _ = writeln!(
            out,
            "# Rank 0 runs on the job's first node; every rank meets it there.\n\
             export {MASTER_VARIABLE}=\"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\""
        );
        out.push_str(
            "# exec: srun is the batch step, gets Slurm's SIGUSR2 and passes it on to every rank.\n",
        );
        let words: Vec<String> = self.srun_command().iter().map(|w| shell_quote(w)).collect();
        let _ = writeln!(out, "exec {}", words.join(" "));
        out
    }

    fn header(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# Train run {} data-parallel on {} rank(s) ({} node(s) x {}), written by\n\
             # `ddsas train --slurm`. srun starts every rank; rank 0 records the run and\n\
             # writes its checkpoints. {}s before the time limit Slurm sends SIGUSR2:\n\
             # every rank stops at the same step, rank 0 checkpoints there and requeues\n\
             # the job, which resumes from that step. Resubmit by hand with `sbatch {}`.",
            self.run_id,
            self.world(),
            self.nodes,
            self.tasks_per_node,
            self.sbatch.signal_before_s,
            self.path().display()
        );
    }

    /// The `#SBATCH` options, in order: ours first, the user's extra ones
    /// last (Slurm takes the last of a repeated option).
    pub fn directives(&self) -> Vec<String> {
        let s = &self.sbatch;
        let mut lines = vec![
            format!("--job-name=ddsas-train-{}", self.run_id),
            format!("--nodes={}", self.nodes),
            format!("--ntasks-per-node={}", self.tasks_per_node),
        ];
        if let Some(gpus) = self.gpus_per_node {
            lines.push(format!("--gpus-per-node={gpus}"));
        }
        lines.extend(s.common_directives(&self.script_dir.join(TRAIN_OUTPUT_PATTERN), false));
        lines
    }

    /// The srun line (unquoted words). The task counts and CPUs are
    /// repeated: srun of some Slurm versions (22.05) does not take
    /// `--cpus-per-task` from the batch allocation.
    pub fn srun_command(&self) -> Vec<String> {
        let mut words = vec![
            "srun".to_owned(),
            format!("--ntasks={}", self.world()),
            format!("--ntasks-per-node={}", self.tasks_per_node),
        ];
        if let Some(cpus) = self.sbatch.cpus_per_task {
            words.push(format!("--cpus-per-task={cpus}"));
        }
        words.extend(self.rank_command.iter().cloned());
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> TrainScript {
        TrainScript {
            run_id: 7,
            db: "postgres://me@db.lab/ddsas".into(),
            workdir: "/home/me/exp".into(),
            script_dir: "/home/me/exp/slurm/train-7".into(),
            script_name: "submit-1.sh".into(),
            data_dir: None,
            nodes: 2,
            tasks_per_node: 4,
            gpus_per_node: Some(4),
            sbatch: SbatchOptions {
                signal_before_s: 120,
                ..SbatchOptions::default()
            },
            rank_command: vec![
                "/opt/ddsas".into(),
                "train".into(),
                "--genotype".into(),
                "darts_v2".into(),
                "--device".into(),
                "cuda".into(),
            ],
        }
    }

    fn sbatch_lines(text: &str) -> Vec<&str> {
        text.lines()
            .filter_map(|l| l.strip_prefix("#SBATCH "))
            .collect()
    }

    #[test]
    fn a_gpu_job_runs_one_rank_per_gpu_of_each_node() {
        let text = script().text();
        assert_eq!(
            sbatch_lines(&text),
            [
                "--job-name=ddsas-train-7",
                "--nodes=2",
                "--ntasks-per-node=4",
                "--gpus-per-node=4",
                "--output=/home/me/exp/slurm/train-7/%j.out",
                "--open-mode=append",
                "--requeue",
                "--signal=B:USR2@120",
            ]
        );
        assert!(text.contains("8 rank(s) (2 node(s) x 4)"), "{text}");
        assert!(
            text.contains("\nexport DDSAS_DB=postgres://me@db.lab/ddsas\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nexport DDSAS_DIST_MASTER=\"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\"\n"
            ),
            "{text}"
        );
        assert_eq!(
            text.lines().last().unwrap(),
            "exec srun --ntasks=8 --ntasks-per-node=4 /opt/ddsas train --genotype darts_v2 --device cuda"
        );
        let syntax = std::process::Command::new("bash")
            .args(["-n", "-c", &text])
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{text}");
    }

    #[test]
    fn a_cpu_job_names_no_gpus_and_gives_srun_the_cpus() {
        let mut s = script();
        s.nodes = 1;
        s.tasks_per_node = 2;
        s.gpus_per_node = None;
        s.data_dir = Some("/data/ddsas".into());
        s.sbatch = SbatchOptions {
            partition: Some("cpu".into()),
            time: Some("30".into()),
            cpus_per_task: Some(3),
            gpus_per_task: Some(9),
            array_parallelism: Some(9),
            signal_before_s: 60,
            extra: vec!["--qos=long".into()],
            ..SbatchOptions::default()
        };
        let text = s.text();
        assert_eq!(
            sbatch_lines(&text),
            [
                "--job-name=ddsas-train-7",
                "--nodes=1",
                "--ntasks-per-node=2",
                "--output=/home/me/exp/slurm/train-7/%j.out",
                "--open-mode=append",
                "--requeue",
                "--signal=B:USR2@60",
                "--partition=cpu",
                "--time=30",
                "--cpus-per-task=3",
                "--qos=long",
            ]
        );
        assert!(text.contains("\nexport DDSAS_DATA=/data/ddsas\n"), "{text}");
        assert!(
            text.ends_with("exec srun --ntasks=2 --ntasks-per-node=2 --cpus-per-task=3 /opt/ddsas train --genotype darts_v2 --device cuda\n"),
            "{text}"
        );
    }

    #[test]
    fn ports_stay_in_their_range_and_follow_the_job_id() {
        assert_eq!(rendezvous_port(0), 20000);
        assert_eq!(rendezvous_port(4242), 24242);
        assert_eq!(rendezvous_port(14242), 24242);
        assert_eq!(
            rendezvous_port(u64::MAX),
            PORT_BASE + (u64::MAX % 10000) as u16
        );
        assert!((0..30000).all(|id| (20000..30000).contains(&rendezvous_port(id))));
    }
}
