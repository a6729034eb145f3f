//! The batch script of `ddsas sweep submit --slurm`: a job array whose
//! every task `exec`s one pull worker (`ddsas worker --sweep`), so that the
//! worker itself receives Slurm's SIGUSR2 before the time limit.
//!
//! Built as text from plain data (no environment is read here), so that the
//! unit tests see exactly what `--dry-run` prints and sbatch receives.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::store::DB_VARIABLE;

/// The sbatch options the user chose; `None` leaves a choice to the
/// cluster's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SbatchOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--time` (Slurm's formats: `MM`, `HH:MM:SS`, `D-HH`...).
    pub time: Option<String>,
    /// `--gpus-per-task`.
    pub gpus_per_task: Option<u32>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// `--mem` (`16G`...).
    pub mem: Option<String>,
    /// Array tasks running at once (`--array=0-(N-1)%K`).
    pub array_parallelism: Option<usize>,
    /// Seconds before the time limit at which Slurm sends SIGUSR2.
    pub signal_before_s: u32,
    /// Anything else, one `#SBATCH` line each, verbatim.
    pub extra: Vec<String>,
}

impl SbatchOptions {
    /// The `#SBATCH` options every ddsas job has after its own: its output
    /// file (`output`, appended to across requeues), requeue on, SIGUSR2
    /// `signal_before_s` early, the options set here (`--gpus-per-task`
    /// only where `per_task_gpus`), and the user's extra ones last (Slurm
    /// takes the last of a repeated option).
    pub(super) fn common_directives(
        &self,
        output: &std::path::Path,
        per_task_gpus: bool,
    ) -> Vec<String> {
        let mut lines = vec![
            format!("--output={}", directive_path(&output.display().to_string())),
            "--open-mode=append".to_owned(),
            "--requeue".to_owned(),
            format!("--signal=B:USR2@{}", self.signal_before_s),
        ];
        let gpus_per_task = self.gpus_per_task.filter(|_| per_task_gpus);
        let optional = [
            ("partition", self.partition.clone()),
            ("account", self.account.clone()),
            ("time", self.time.clone()),
            ("gpus-per-task", gpus_per_task.map(|n| n.to_string())),
            ("cpus-per-task", self.cpus_per_task.map(|n| n.to_string())),
            ("mem", self.mem.clone()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                lines.push(format!("--{name}={value}"));
            }
        }
        lines.extend(self.extra.iter().cloned());
        lines
    }
}

/// What each pull worker is told besides the sweep and the database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullOptions {
    /// Concurrent runs per GPU of the task.
    pub runs_per_gpu: Option<usize>,
    /// libtorch threads per run.
    pub threads: Option<usize>,
    /// Retries of a run whose worker died, per task.
    pub max_retries: u32,
    /// Heartbeat age after which a run is taken over.
    pub stale_after_s: f64,
    /// Seconds without a batch after which a worker counts as hung.
    pub stall_after_s: Option<f64>,
    /// What the Slurm job of a training of several ranks, which a pull
    /// worker hands off (`exec::slurm::handoff`), takes from the array's
    /// own options.
    pub hand_off: HandOffSbatch,
}

/// The sbatch options of `sweep submit` that the Slurm jobs of its
/// trainings of several ranks take too, passed to the pull workers on
/// their command line (a task's own `--time` or `--sbatch-arg` is not in
/// its environment). Partition and account the workers read from their
/// task's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandOffSbatch {
    /// `--time`.
    pub time: Option<String>,
    /// `--mem`.
    pub mem: Option<String>,
    /// Seconds before the time limit at which Slurm sends SIGUSR2 (none:
    /// the default of `train --slurm`).
    pub signal_before_s: Option<u32>,
    /// The user's `--sbatch-arg`s, verbatim.
    pub extra: Vec<String>,
}

impl HandOffSbatch {
    /// The worker options that carry these (`--handoff-time`...).
    fn worker_words(&self) -> Vec<String> {
        let mut words = Vec::new();
        let optional = [
            ("--handoff-time", self.time.clone()),
            ("--handoff-mem", self.mem.clone()),
            (
                "--handoff-signal-before",
                self.signal_before_s.map(|s| s.to_string()),
            ),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                words.extend([flag.to_owned(), value]);
            }
        }
        for arg in &self.extra {
            // `=`: an option that starts with `--` stays the value.
            words.push(format!("--handoff-sbatch-arg={arg}"));
        }
        words
    }
}

/// Everything the batch script says.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchScript {
    /// The sweep's name (job name, worker argument).
    pub sweep: String,
    /// The sweep file, for the header comment.
    pub file: String,
    /// Runs to run when it was written, for the header comment.
    pub runs: usize,
    /// The `--db` value as the user wrote it.
    pub db: String,
    /// The ddsas binary, absolute.
    pub exe: PathBuf,
    /// The working folder, absolute: the workers run there, so relative
    /// paths (checkpoints, data folders) mean what they meant at submit.
    pub workdir: PathBuf,
    /// Where the script, the job's output and the worker logs go, absolute.
    pub script_dir: PathBuf,
    /// The script's file name in `script_dir` (`submit-1.sh`).
    pub script_name: String,
    /// The data folder the runs were registered with, exported as
    /// `DDSAS_DATA` (a cluster may not pass the submit environment on).
    pub data_dir: Option<PathBuf>,
    /// Array tasks, one pull worker each.
    pub tasks: usize,
    /// The sbatch options.
    pub sbatch: SbatchOptions,
    /// The pull workers' options.
    pub pull: PullOptions,
}

/// The file name of the output of array task `%a` of job `%A`, in the
/// script folder.
pub const OUTPUT_PATTERN: &str = "%A_%a.out";

impl BatchScript {
    /// The script's text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        out.push_str("#!/bin/bash\n");
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
        out.push_str("# exec: the worker is the batch step itself and gets Slurm's SIGUSR2.\n");
        let words: Vec<String> = self
            .worker_command()
            .iter()
            .map(|w| shell_quote(w))
            .collect();
        let _ = writeln!(out, "exec {}", words.join(" "));
        out
    }

    fn header(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# Pull workers of sweep `{}` ({}, {} run(s) to run), written by\n\
             # `ddsas sweep submit --slurm`. Each array task runs `ddsas worker --sweep`:\n\
             # it claims runs of the sweep from the database, runs them on the GPUs (or\n\
             # CPU cores) Slurm gave it, and exits when none is left to claim.\n\
             # {}s before the time limit Slurm sends it SIGUSR2: it stops its runs at the\n\
             # next step (each resumes from its last epoch checkpoint), requeues its task\n\
             # and exits. Resubmit by hand with `sbatch {}`.",
            self.sweep,
            self.file,
            self.runs,
            self.sbatch.signal_before_s,
            self.path().display()
        );
    }

    /// Where the script is written.
    pub fn path(&self) -> PathBuf {
        self.script_dir.join(&self.script_name)
    }

    /// The `#SBATCH` options, in order: ours first, the user's extra
    /// ones last (Slurm takes the last of a repeated option).
    pub fn directives(&self) -> Vec<String> {
        let s = &self.sbatch;
        let last = self.tasks.max(1) - 1;
        let mut lines = vec![
            format!("--job-name=ddsas-{}", self.sweep),
            match s.array_parallelism {
                Some(k) => format!("--array=0-{last}%{k}"),
                None => format!("--array=0-{last}"),
            },
            "--ntasks=1".to_owned(),
        ];
        lines.extend(s.common_directives(&self.script_dir.join(OUTPUT_PATTERN), true));
        lines
    }

    /// The pull worker's command line (unquoted words).
    pub fn worker_command(&self) -> Vec<String> {
        let p = &self.pull;
        let mut words = vec![
            self.exe.display().to_string(),
            "worker".to_owned(),
            "--sweep".to_owned(),
            self.sweep.clone(),
            "--log-dir".to_owned(),
            self.script_dir.join("logs").display().to_string(),
            "--max-retries".to_owned(),
            p.max_retries.to_string(),
            "--stale-after".to_owned(),
            p.stale_after_s.to_string(),
        ];
        let optional = [
            ("--runs-per-gpu", p.runs_per_gpu.map(|n| n.to_string())),
            ("--threads", p.threads.map(|n| n.to_string())),
            ("--stall-after", p.stall_after_s.map(|s| s.to_string())),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                words.push(flag.to_owned());
                words.push(value);
            }
        }
        words.extend(p.hand_off.worker_words());
        words
    }
}

/// `text` as one shell word: bare when it holds only safe characters,
/// else in single quotes (a single quote inside written `'\''`).
pub fn shell_quote(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A path in an `#SBATCH` line: sbatch splits those lines at blanks, so a
/// path with one goes in double quotes.
fn directive_path(path: &str) -> String {
    if path.contains(char::is_whitespace) {
        format!("\"{path}\"")
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> BatchScript {
        BatchScript {
            sweep: "grid".into(),
            file: "sweeps/grid.yaml".into(),
            runs: 6,
            db: "postgres://me@db.lab/ddsas".into(),
            exe: "/opt/ddsas/bin/ddsas".into(),
            workdir: "/home/me/exp".into(),
            script_dir: "/home/me/exp/slurm/grid".into(),
            script_name: "submit-1.sh".into(),
            data_dir: None,
            tasks: 3,
            sbatch: SbatchOptions {
                signal_before_s: 120,
                ..SbatchOptions::default()
            },
            pull: PullOptions {
                max_retries: 2,
                stale_after_s: 30.0,
                ..PullOptions::default()
            },
        }
    }

    fn sbatch_lines(text: &str) -> Vec<&str> {
        text.lines()
            .filter_map(|l| l.strip_prefix("#SBATCH "))
            .collect()
    }

    #[test]
    fn the_default_script_is_an_array_of_requeueable_pull_workers() {
        let text = script().text();
        assert!(text.starts_with("#!/bin/bash\n"), "{text}");
        assert_eq!(
            sbatch_lines(&text),
            [
                "--job-name=ddsas-grid",
                "--array=0-2",
                "--ntasks=1",
                "--output=/home/me/exp/slurm/grid/%A_%a.out",
                "--open-mode=append",
                "--requeue",
                "--signal=B:USR2@120",
            ]
        );
        assert!(text.contains("\ncd /home/me/exp || exit 1\n"), "{text}");
        assert!(!text.contains("DDSAS_DATA"), "{text}");
        let exec = text.lines().last().unwrap();
        assert_eq!(
            exec,
            "exec /opt/ddsas/bin/ddsas worker --sweep grid \
             --log-dir /home/me/exp/slurm/grid/logs --max-retries 2 --stale-after 30"
        );
        assert!(
            text.contains("\nexport DDSAS_DB=postgres://me@db.lab/ddsas\n"),
            "{text}"
        );
        // Every #SBATCH line comes before the first command, or sbatch
        // ignores it.
        let first_command = text.lines().position(|l| l.starts_with("cd ")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let last_directive = lines
            .iter()
            .rposition(|l| l.starts_with("#SBATCH"))
            .unwrap();
        assert!(last_directive < first_command);
    }

    #[test]
    fn every_option_reaches_sbatch_or_the_worker() {
        let mut s = script();
        s.tasks = 8;
        s.data_dir = Some("/data/ddsas".into());
        s.sbatch = SbatchOptions {
            partition: Some("gpu".into()),
            account: Some("lab42".into()),
            time: Some("1-00:00:00".into()),
            gpus_per_task: Some(2),
            cpus_per_task: Some(8),
            mem: Some("32G".into()),
            array_parallelism: Some(4),
            signal_before_s: 300,
            extra: vec!["--qos=long".into(), "--constraint=a100".into()],
        };
        s.pull = PullOptions {
            runs_per_gpu: Some(3),
            threads: Some(2),
            max_retries: 5,
            stale_after_s: 90.5,
            stall_after_s: Some(600.0),
            hand_off: HandOffSbatch {
                time: Some("1-00:00:00".into()),
                mem: Some("32G".into()),
                signal_before_s: Some(300),
                extra: vec!["--qos=long".into()],
            },
        };
        let text = s.text();
        assert_eq!(
            sbatch_lines(&text),
            [
                "--job-name=ddsas-grid",
                "--array=0-7%4",
                "--ntasks=1",
                "--output=/home/me/exp/slurm/grid/%A_%a.out",
                "--open-mode=append",
                "--requeue",
                "--signal=B:USR2@300",
                "--partition=gpu",
                "--account=lab42",
                "--time=1-00:00:00",
                "--gpus-per-task=2",
                "--cpus-per-task=8",
                "--mem=32G",
                "--qos=long",
                "--constraint=a100",
            ]
        );
        assert!(text.contains("\nexport DDSAS_DATA=/data/ddsas\n"), "{text}");
        assert!(
            text.ends_with(
                "--max-retries 5 --stale-after 90.5 --runs-per-gpu 3 --threads 2 --stall-after 600 \
                 --handoff-time 1-00:00:00 --handoff-mem 32G --handoff-signal-before 300 \
                 --handoff-sbatch-arg=--qos=long\n"
            ),
            "{text}"
        );
        assert!(text.contains("300s before the time limit"), "{text}");
        assert!(
            text.contains("`sbatch /home/me/exp/slurm/grid/submit-1.sh`"),
            "{text}"
        );
    }

    #[test]
    fn odd_paths_and_urls_stay_one_word() {
        let mut s = script();
        s.workdir = "/home/me/my exps".into();
        s.script_dir = "/home/me/my exps/slurm/grid".into();
        s.db = "postgres://me:pa'ss@db/ddsas?sslmode=require&x=1".into();
        let text = s.text();
        assert!(
            text.contains("\ncd '/home/me/my exps' || exit 1\n"),
            "{text}"
        );
        assert!(
            text.contains("--output=\"/home/me/my exps/slurm/grid/%A_%a.out\""),
            "{text}"
        );
        assert!(
            text.contains(r"export DDSAS_DB='postgres://me:pa'\''ss@db/ddsas?sslmode=require&x=1'"),
            "{text}"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a$b"), "'a$b'");
    }

    #[test]
    fn one_task_is_an_array_of_one() {
        let mut s = script();
        s.tasks = 1;
        assert!(sbatch_lines(&s.text()).contains(&"--array=0-0"));
    }
}
