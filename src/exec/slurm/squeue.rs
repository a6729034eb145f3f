//! What `squeue -h -r --states=all -o '%i|%T|%M|%R'` says about a sweep's
//! jobs, parsed into one row per array task (`sweep status`).

/// The squeue output format these functions parse: job id, state, time
/// used, and the reason it waits or the node it runs on.
pub const SQUEUE_FORMAT: &str = "%i|%T|%M|%R";

/// One array task (or job) as squeue lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTask {
    /// The job array's id (`4242` of `4242_7`).
    pub job: String,
    /// The task index (`7` of `4242_7`); `None` for a job that is no array,
    /// or `[3-5]` for pending tasks squeue did not expand.
    pub task: Option<String>,
    /// Slurm's state: `PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`...
    pub state: String,
    /// Time used, as squeue writes it (`1:02:03`).
    pub elapsed: String,
    /// The node it runs on, or why it waits (`(Priority)`).
    pub where_or_why: String,
}

/// Slurm's states of a job that has ended (what `squeue --states=all`
/// still lists for `MinJobAge` after the end).
const ENDED: [&str; 9] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
];

impl QueuedTask {
    /// Whether it has ended: nothing is left to cancel.
    pub fn ended(&self) -> bool {
        ENDED.contains(&self.state.as_str())
    }
}

/// Jobs `jobs` each with its state as squeue's `queue` answer lists it
/// (`41 (ended: squeue no longer lists it), 42 RUNNING 1:02 node7`), or
/// the ids and why squeue could not tell: what `runs show` and the run
/// page say of a run's jobs.
pub fn jobs_text(jobs: &[String], queue: Result<Vec<QueuedTask>, super::ClientError>) -> String {
    let tasks = match queue {
        Ok(tasks) => tasks,
        Err(e) => return format!("{} (squeue cannot tell their state: {e})", jobs.join(", ")),
    };
    let each: Vec<String> = jobs
        .iter()
        .map(|job| match tasks.iter().find(|t| &t.job == job) {
            Some(t) => format!("{job} {} {} {}", t.state, t.elapsed, t.where_or_why),
            None => format!("{job} (ended: squeue no longer lists it)"),
        })
        .collect();
    each.join(", ")
}

/// The tasks in squeue's output; lines that do not have the four fields
/// are skipped (squeue prints nothing else with `-h`).
pub fn parse_squeue(output: &str) -> Vec<QueuedTask> {
    output.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<QueuedTask> {
    let mut fields = line.trim().splitn(4, '|');
    let id = fields.next()?.trim();
    let state = fields.next()?.trim();
    let elapsed = fields.next()?.trim();
    let where_or_why = fields.next()?.trim();
    if id.is_empty() || state.is_empty() {
        return None;
    }
    let (job, task) = match id.split_once('_') {
        Some((job, task)) => (job.to_owned(), Some(task.to_owned())),
        None => (id.to_owned(), None),
    };
    Some(QueuedTask {
        job,
        task,
        state: state.to_owned(),
        elapsed: elapsed.to_owned(),
        where_or_why: where_or_why.to_owned(),
    })
}

/// `3 RUNNING, 2 PENDING, 1 COMPLETED`: the tasks counted by state, most
/// frequent first (ties by name).
pub fn state_counts(tasks: &[QueuedTask]) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for t in tasks {
        *counts.entry(t.state.as_str()).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether squeue failed only because none of the ids is known to it any
/// more (finished jobs stay listed for `MinJobAge` seconds).
pub fn says_unknown_jobs(stderr: &str) -> bool {
    stderr.contains("Invalid job id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_tasks_plain_jobs_and_pending_ranges_parse() {
        let out = "41_0|RUNNING|1:02:03|node7\n\
                   41_2|PENDING|0:00|(Priority)\n\
                   41_[3-5]|PENDING|0:00|(JobArrayTaskLimit)\n\
                   42|COMPLETED|0:04|node1\n\
                   \n\
                   garbage line\n\
                   43_1|CANCELLED|0:01|node|with|bars\n";
        let tasks = parse_squeue(out);
        assert_eq!(tasks.len(), 5, "{tasks:?}");
        assert_eq!(
            tasks[0],
            QueuedTask {
                job: "41".into(),
                task: Some("0".into()),
                state: "RUNNING".into(),
                elapsed: "1:02:03".into(),
                where_or_why: "node7".into(),
            }
        );
        assert_eq!(tasks[1].where_or_why, "(Priority)");
        assert_eq!(tasks[2].task.as_deref(), Some("[3-5]"));
        assert_eq!(
            (tasks[3].job.as_str(), tasks[3].task.as_deref()),
            ("42", None)
        );
        assert_eq!(tasks[4].where_or_why, "node|with|bars");
        assert_eq!(
            state_counts(&tasks),
            "2 PENDING, 1 CANCELLED, 1 COMPLETED, 1 RUNNING"
        );
        assert!(parse_squeue("").is_empty());
    }

    #[test]
    fn unknown_job_ids_are_told_apart_from_failures() {
        assert!(says_unknown_jobs(
            "slurm_load_jobs error: Invalid job id specified\n"
        ));
        assert!(!says_unknown_jobs(
            "squeue: error: Unable to contact slurm controller (connect failure)"
        ));
    }
}
