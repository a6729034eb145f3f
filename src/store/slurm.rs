//! The Slurm jobs of sweeps and of train runs: `sweep submit --slurm`
//! records the job arrays it submits, `sweep status` asks squeue about
//! them, `sweep cancel` scancels them, and the pull workers of a job read
//! the sweep they serve. `train --slurm` records its job with the run (no
//! sweep), for `runs show` and `runs cancel`.
//!
//! Every statement uses `$1`-style placeholders, which both SQLite and
//! PostgreSQL accept, and only integer, real and text columns.

use super::error::Context;
use super::queries::{QueryError, QueryRows, ReadOnlyDb};
use super::{Backend, Store, StoreError};

/// A job array submitted for a sweep, or the job of a `train --slurm`
/// run, as recorded in `slurm_jobs`.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmJob {
    /// Slurm's id of the job (array) (what `sbatch --parsable` printed).
    pub job_id: String,
    /// The sweep its tasks work on; `None` for a train run's job.
    pub sweep: Option<String>,
    /// The train run its ranks train; `None` for a sweep's job array.
    pub run_id: Option<i64>,
    /// Array tasks (pull workers) asked for, or the ranks of a train run.
    pub tasks: i64,
    /// The batch script it ran, kept for the user to read or resubmit.
    pub script_path: String,
    /// When it was submitted (unix seconds, the database's clock, like
    /// the runs' times it is compared with).
    pub submitted_at: f64,
}

/// A row of `slurm_jobs` as read.
type JobRow = (String, Option<String>, Option<i64>, i64, String, f64);

fn slurm_job(row: JobRow) -> SlurmJob {
    let (job_id, sweep, run_id, tasks, script_path, submitted_at) = row;
    SlurmJob {
        job_id,
        sweep,
        run_id,
        tasks,
        script_path,
        submitted_at,
    }
}

/// What a pull worker needs of its sweep: the file it came from and its
/// text as registered, to plan its slots and its `evaluate:`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// Path the sweep was read from.
    pub file: String,
    /// The file's text at registration.
    pub text: String,
}

impl Store {
    /// Records a job array submitted for `sweep` (which must be registered).
    pub async fn record_slurm_job(
        &self,
        job_id: &str,
        sweep: &str,
        tasks: i64,
        script_path: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO slurm_jobs (job_id, sweep, tasks, script_path, submitted_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(job_id)
        .bind(sweep)
        .bind(tasks)
        .bind(script_path)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .ctx(|| format!("recording Slurm job {job_id} of sweep {sweep}"))?;
        Ok(())
    }

    /// Records the job that `train --slurm` submitted for train run
    /// `run_id` (which must exist), its `ranks` and its batch script.
    pub async fn record_run_slurm_job(
        &self,
        job_id: &str,
        run_id: i64,
        ranks: i64,
        script_path: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO slurm_jobs (job_id, run_id, tasks, script_path, submitted_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(job_id)
        .bind(run_id)
        .bind(ranks)
        .bind(script_path)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .ctx(|| format!("recording Slurm job {job_id} of train run {run_id}"))?;
        Ok(())
    }

    /// The job arrays submitted for `sweep`, oldest first.
    pub async fn slurm_jobs(&self, sweep: &str) -> Result<Vec<SlurmJob>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT job_id, sweep, run_id, tasks, script_path, submitted_at FROM slurm_jobs
             WHERE sweep = $1 ORDER BY submitted_at, job_id",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the Slurm jobs of sweep {sweep}"))?;
        Ok(rows.into_iter().map(slurm_job).collect())
    }

    /// The jobs `train --slurm` submitted for train run `run_id`, oldest
    /// first (a resume submits another).
    pub async fn run_slurm_jobs(&self, run_id: i64) -> Result<Vec<SlurmJob>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT job_id, sweep, run_id, tasks, script_path, submitted_at FROM slurm_jobs
             WHERE run_id = $1 ORDER BY submitted_at, job_id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the Slurm jobs of train run {run_id}"))?;
        Ok(rows.into_iter().map(slurm_job).collect())
    }

    /// The jobs of the runs of `sweep` (its trainings of several ranks,
    /// each handed to a job of its own by a pull worker), oldest first:
    /// `sweep cancel` stops them with the sweep's own jobs.
    pub async fn sweep_run_slurm_jobs(&self, sweep: &str) -> Result<Vec<SlurmJob>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT job_id, sweep, run_id, tasks, script_path, submitted_at FROM slurm_jobs
             WHERE run_id IN (SELECT run_id FROM sweep_runs WHERE sweep = $1)
             ORDER BY submitted_at, job_id",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the Slurm jobs of the runs of sweep {sweep}"))?;
        Ok(rows.into_iter().map(slurm_job).collect())
    }

    /// The file and text a sweep was registered from; `None` if no sweep
    /// has that name (or it was registered without its text).
    pub async fn sweep_spec(&self, name: &str) -> Result<Option<SweepSpec>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT file, spec_yaml FROM sweeps WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .ctx(|| format!("reading sweep {name}"))?;
        Ok(row.and_then(|(file, text)| {
            text.map(|text| SweepSpec {
                file: file.unwrap_or_else(|| format!("sweep {name}")),
                text,
            })
        }))
    }
}

impl ReadOnlyDb {
    /// The ids of the job arrays submitted for `sweep`, oldest first
    /// (`sweep status`); none in a database no submit has opened yet.
    pub async fn slurm_job_ids(&mut self, sweep: &str) -> Result<Vec<String>, QueryError> {
        if !self.has_slurm_jobs().await? {
            return Ok(Vec::new());
        }
        let rows: QueryRows = self
            .query(
                "SELECT job_id FROM slurm_jobs WHERE sweep = $1 ORDER BY submitted_at, job_id",
                &[sweep.into()],
            )
            .await?;
        Ok(rows
            .rows
            .iter()
            .filter_map(|r| r[0].as_str().map(str::to_owned))
            .collect())
    }
}

impl ReadOnlyDb {
    /// The ids of the jobs `train --slurm` submitted for train run
    /// `run_id`, oldest first (`runs show`, `runs cancel`); none in a
    /// database older than migration 0010, which a read-only connection
    /// does not migrate.
    pub async fn run_slurm_job_ids(&mut self, run_id: i64) -> Result<Vec<String>, QueryError> {
        if !self.has_run_slurm_jobs().await? {
            return Ok(Vec::new());
        }
        let rows: QueryRows = self
            .query(
                "SELECT job_id FROM slurm_jobs WHERE run_id = $1 ORDER BY submitted_at, job_id",
                &[run_id.into()],
            )
            .await?;
        Ok(rows
            .rows
            .iter()
            .filter_map(|r| r[0].as_str().map(str::to_owned))
            .collect())
    }

    /// Whether `slurm_jobs` has the `run_id` of migration 0010.
    async fn has_run_slurm_jobs(&mut self) -> Result<bool, QueryError> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT count(*) FROM pragma_table_info('slurm_jobs') WHERE name = 'run_id'"
            }
            Backend::Postgres => {
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'slurm_jobs' AND column_name = 'run_id'"
            }
        };
        let rows = self.query(sql, &[]).await?;
        Ok(rows.rows.first().and_then(|r| r[0].as_i64()).unwrap_or(0) > 0)
    }

    /// Whether the schema has `slurm_jobs` (a read-only connection never
    /// migrates, and a database older than migration 0006 has none).
    async fn has_slurm_jobs(&mut self) -> Result<bool, QueryError> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'slurm_jobs'"
            }
            Backend::Postgres => {
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'slurm_jobs'"
            }
        };
        let rows = self.query(sql, &[]).await?;
        Ok(rows.rows.first().and_then(|r| r[0].as_i64()).unwrap_or(0) > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_postgres::TestDatabase;
    use crate::store::DbLocation;

    /// Each test on a fresh SQLite file and on a fresh PostgreSQL database.
    macro_rules! on_both_backends {
        ($($name:ident),* $(,)?) => {
            mod sqlite {
                $(
                    #[tokio::test]
                    async fn $name() {
                        let dir = tempfile::tempdir().unwrap();
                        let location = crate::store::DbLocation::File(dir.path().join("results.db"));
                        super::$name(location).await;
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test]
                    async fn $name() {
                        let Some(db) = super::TestDatabase::create().await else {
                            return;
                        };
                        super::$name(super::DbLocation::Postgres(db.url().to_owned())).await;
                        db.drop_now().await;
                    }
                )*
            }
        };
    }

    on_both_backends!(
        jobs_are_recorded_per_sweep_and_go_with_it,
        a_sweep_spec_is_read_back,
        the_read_only_view_lists_job_ids,
        a_train_runs_job_is_recorded_with_the_run_and_no_sweep,
    );

    async fn a_train_runs_job_is_recorded_with_the_run_and_no_sweep(location: DbLocation) {
        let store = Store::connect(&location).await.unwrap();
        store
            .register_sweep("grid", None, "grid.yaml", "name: grid\n", &[])
            .await
            .unwrap();
        store
            .record_slurm_job("7", "grid", 2, "grid.sh")
            .await
            .unwrap();
        let run = store
            .ensure_train_run(&crate::store::tests::train_cfg())
            .await
            .unwrap();
        store
            .record_run_slurm_job("8", run.id, 4, "/w/slurm/train-1/submit-1.sh")
            .await
            .unwrap();
        store
            .record_run_slurm_job("9", run.id, 4, "/w/slurm/train-1/submit-2.sh")
            .await
            .unwrap();
        let jobs = store.run_slurm_jobs(run.id).await.unwrap();
        let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["8", "9"]);
        assert_eq!(
            (jobs[0].sweep.as_deref(), jobs[0].run_id, jobs[0].tasks),
            (None, Some(run.id), 4)
        );
        assert_eq!(jobs[1].script_path, "/w/slurm/train-1/submit-2.sh");
        let sweep_jobs = store.slurm_jobs("grid").await.unwrap();
        assert_eq!(sweep_jobs.len(), 1, "a run's jobs are not the sweep's");
        assert!(store.sweep_run_slurm_jobs("grid").await.unwrap().is_empty());
        store.add_to_sweep("grid", run.id).await.unwrap();
        let of_members = store.sweep_run_slurm_jobs("grid").await.unwrap();
        let ids: Vec<&str> = of_members.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["8", "9"], "the jobs of the sweep's trainings");
        assert!(store.run_slurm_jobs(run.id + 1).await.unwrap().is_empty());
        let unknown = store
            .record_run_slurm_job("10", run.id + 1, 1, "x.sh")
            .await;
        assert!(unknown.is_err(), "a job of a run that does not exist");
        let both = sqlx::query(
            "INSERT INTO slurm_jobs (job_id, sweep, run_id, tasks, script_path) VALUES ('11', 'grid', $1, 1, 'x.sh')",
        )
        .bind(run.id)
        .execute(&store.pool)
        .await;
        assert!(both.is_err(), "a job is a sweep's or a run's, not both");
        store.close().await;
        let mut db = ReadOnlyDb::open(location).await.unwrap();
        assert_eq!(db.run_slurm_job_ids(run.id).await.unwrap(), ["8", "9"]);
        assert!(db.run_slurm_job_ids(run.id + 1).await.unwrap().is_empty());
        assert_eq!(db.slurm_job_ids("grid").await.unwrap(), ["7"]);
    }

    async fn jobs_are_recorded_per_sweep_and_go_with_it(location: DbLocation) {
        let store = Store::connect(&location).await.unwrap();
        for name in ["grid", "other"] {
            let text = format!("name: {name}\n");
            store
                .register_sweep(name, None, &format!("{name}.yaml"), &text, &[])
                .await
                .unwrap();
        }
        let before = store.now();
        store
            .record_slurm_job("41", "grid", 3, "/w/slurm/grid/submit-1.sh")
            .await
            .unwrap();
        store
            .record_slurm_job("42", "grid", 2, "/w/slurm/grid/submit-2.sh")
            .await
            .unwrap();
        store
            .record_slurm_job("43", "other", 1, "/w/slurm/other/submit-1.sh")
            .await
            .unwrap();
        let jobs = store.slurm_jobs("grid").await.unwrap();
        let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["41", "42"]);
        assert_eq!((jobs[0].tasks, jobs[0].sweep.as_deref()), (3, Some("grid")));
        assert_eq!(jobs[0].run_id, None);
        assert_eq!(jobs[1].script_path, "/w/slurm/grid/submit-2.sh");
        assert!(
            jobs[0].submitted_at >= before - 1.0 && jobs[0].submitted_at <= store.now() + 1.0,
            "the database's clock"
        );
        assert!(store.slurm_jobs("missing").await.unwrap().is_empty());
        let unknown = store.record_slurm_job("44", "missing", 1, "x.sh").await;
        assert!(unknown.is_err(), "a job of an unregistered sweep");
        let twice = store.record_slurm_job("41", "grid", 1, "x.sh").await;
        assert!(twice.is_err(), "a job id is recorded once");
        store.close().await;
    }

    async fn a_sweep_spec_is_read_back(location: DbLocation) {
        let store = Store::connect(&location).await.unwrap();
        store
            .register_sweep("grid", Some("d"), "sweeps/grid.yaml", "name: grid\n", &[])
            .await
            .unwrap();
        let spec = store.sweep_spec("grid").await.unwrap().unwrap();
        assert_eq!(
            (spec.file.as_str(), spec.text.as_str()),
            ("sweeps/grid.yaml", "name: grid\n")
        );
        assert_eq!(store.sweep_spec("missing").await.unwrap(), None);
        store.close().await;
    }

    async fn the_read_only_view_lists_job_ids(location: DbLocation) {
        let store = Store::connect(&location).await.unwrap();
        store
            .register_sweep("grid", None, "grid.yaml", "name: grid\n", &[])
            .await
            .unwrap();
        store
            .record_slurm_job("7", "grid", 2, "s.sh")
            .await
            .unwrap();
        store.close().await;
        let mut db = ReadOnlyDb::open(location).await.unwrap();
        assert_eq!(db.slurm_job_ids("grid").await.unwrap(), ["7"]);
        assert!(db.slurm_job_ids("other").await.unwrap().is_empty());
    }
}
