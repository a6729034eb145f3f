//! The life cycle of a run (docs/design.md §5, §6): registered once per
//! fingerprint, claimed atomically by one owner, kept alive by heartbeats,
//! and ended as done, failed or interrupted.

use super::error::Context;
use super::rows::{StoredText, TRAIN_METHOD_TEXT};
use super::{Claim, RunKind, RunRow, Store, StoreError};
use crate::arch::space::SpaceKind;
use crate::config::train::DistBackend;
use crate::config::Method;
use crate::config::ResolvedConfig;
use crate::data::DatasetKind;

/// What registering a run writes, whatever its kind.
pub(super) struct NewRun<'a> {
    /// The run's identity.
    pub fingerprint: String,
    /// Search or train.
    pub kind: RunKind,
    /// The search method; none for a kind that searches nothing (stored as
    /// `'train'`, which SQL written against the history finds).
    pub method: Option<Method>,
    /// The space its cells come from.
    pub space: SpaceKind,
    /// The dataset it runs on.
    pub dataset: DatasetKind,
    /// The run's seed.
    pub seed: u64,
    /// Its canonical config.
    pub config_json: String,
    /// Epochs it will run.
    pub epochs_total: u32,
    /// The cell a train run trains, known from the start; none for a
    /// search, whose cell comes at its end.
    pub genotype: Option<&'a str>,
    /// The definitions version of its method.
    pub definitions: u32,
}

/// How a finished run ended, as the store writes it: the kinds differ in
/// the columns of their result.
#[derive(Debug, Clone, Copy)]
pub enum RunResult<'a> {
    /// A search's cell and the validation accuracy at its end.
    Search {
        /// The derived genotype.
        genotype: &'a str,
        /// Validation accuracy of the last epoch (0..1).
        final_valid_acc: f64,
        /// Seconds the search took.
        wall_s: f64,
    },
    /// A train run's test accuracy at its end.
    Train {
        /// Test accuracy of the last epoch (0..1).
        final_test_acc: f64,
        /// Seconds the training took.
        wall_s: f64,
    },
}

impl RunResult<'_> {
    /// The kind of run that ended so.
    pub fn kind(self) -> RunKind {
        match self {
            RunResult::Search { .. } => RunKind::Search,
            RunResult::Train { .. } => RunKind::Train,
        }
    }
}

/// What every claim statement sets besides its owner: the world size and
/// backend of `claim.ranks`, bound at `$first` and `$first + 1`, kept on a
/// train run only (a search is one process, whoever claims it).
pub(super) fn ranks_set(first: usize) -> String {
    let second = first + 1;
    format!(
        "world_size = CASE WHEN kind = 'train' THEN CAST(${first} AS BIGINT) END,
         dist_backend = CASE WHEN kind = 'train' THEN CAST(${second} AS TEXT) END"
    )
}

impl Store {
    /// Registers a run for a resolved config; returns the existing row if the
    /// fingerprint is known, whatever its status, so that a `done` run is
    /// never run again from any sweep.
    pub async fn ensure_run(&self, cfg: &ResolvedConfig) -> Result<RunRow, StoreError> {
        let c = cfg.config();
        self.register(NewRun {
            fingerprint: cfg.fingerprint(),
            kind: RunKind::Search,
            method: Some(c.method),
            space: c.space,
            dataset: c.dataset,
            seed: c.seed,
            config_json: cfg.canonical_json(),
            epochs_total: c.epochs,
            genotype: None,
            definitions: cfg.definitions(),
        })
        .await
    }

    /// Registers a run of any kind once per fingerprint (or finds the
    /// existing row, whatever its status): the one body behind
    /// [`Store::ensure_run`] and [`Store::ensure_train_run`].
    pub(super) async fn register(&self, run: NewRun<'_>) -> Result<RunRow, StoreError> {
        let fingerprint = &run.fingerprint;
        let label = run.kind.noun();
        let what = || format!("{label} {fingerprint}");
        let seed = i64::try_from(run.seed).map_err(|_| StoreError::Invalid {
            what: what(),
            message: format!(
                "seed {} does not fit a SQLite integer (max {})",
                run.seed,
                i64::MAX
            ),
        })?;
        sqlx::query(
            "INSERT INTO runs (fingerprint, kind, method, space, dataset, seed, config_json, epochs_total, created_at, final_genotype, definitions)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (fingerprint) DO NOTHING",
        )
        .bind(fingerprint)
        .bind(run.kind)
        .bind(run.method.map_or(TRAIN_METHOD_TEXT, StoredText::stored))
        .bind(run.space)
        .bind(run.dataset)
        .bind(seed)
        .bind(&run.config_json)
        .bind(i64::from(run.epochs_total))
        .bind(self.now())
        .bind(run.genotype)
        .bind(i64::from(run.definitions))
        .execute(&self.pool)
        .await
        .ctx(|| format!("registering {}", what()))?;
        self.run_by_fingerprint(fingerprint)
            .await?
            .ok_or_else(|| StoreError::Invalid {
                what: what(),
                message: "it vanished right after it was registered".into(),
            })
    }

    /// The run with row id `id`; read again while the connection is lost
    /// (an orchestrator reads it when a worker ends, and that moment
    /// comes once).
    pub async fn run(&self, id: i64) -> Result<Option<RunRow>, StoreError> {
        self.reconnecting(|| self.run_once(id)).await
    }

    async fn run_once(&self, id: i64) -> Result<Option<RunRow>, StoreError> {
        sqlx::query_as("SELECT * FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("reading run {id}"))
    }

    /// The run of a config fingerprint.
    pub async fn run_by_fingerprint(&self, fp: &str) -> Result<Option<RunRow>, StoreError> {
        sqlx::query_as("SELECT * FROM runs WHERE fingerprint = $1")
            .bind(fp)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("reading run {fp}"))
    }

    /// Atomically moves a run that is not done and not held by a live owner
    /// to `running` for `claim.owner`; returns whether this caller got it.
    ///
    /// One `UPDATE ... WHERE status IN (...)` decides, so two orchestrators
    /// on one database never both get a run (docs/design.md §6). Claimable:
    /// `queued`, `interrupted`, `failed` (retry limits are the caller's
    /// business), and — only with `stale_after_s` — a `running` run whose
    /// heartbeat is older than that, i.e. whose owner died. Clears the
    /// previous error and end time. A claim does not count an attempt:
    /// `attempts` counts started workers, which [`Store::confirm_claim`]
    /// records once the worker exists, so an orchestrator that dies
    /// between its claim and its worker's start leaves the count alone.
    pub async fn claim_run(&self, id: i64, claim: &Claim) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE runs SET status = 'running', owner = $2, device = $3, pid = $4,
                    started_at = COALESCE(started_at, $5),
                    heartbeat_at = $5, finished_at = NULL, error = NULL, {}
             WHERE id = $1
               AND (status IN ('queued', 'interrupted', 'failed')
                    OR ($6 IS NOT NULL AND status = 'running'
                        AND COALESCE(heartbeat_at, started_at, 0) < $5 - $6))
             RETURNING id",
            ranks_set(7)
        );
        let claimed: Option<i64> = sqlx::query_scalar(&sql)
            .bind(id)
            .bind(&claim.owner)
            .bind(&claim.device)
            .bind(claim.pid)
            .bind(self.now())
            .bind(claim.stale_after_s)
            .bind(i64::from(claim.ranks.world_size))
            .bind(claim.ranks.backend.map(DistBackend::name))
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("claiming run {id} for {}", claim.owner))?;
        if claimed.is_none() {
            self.require(id).await?;
        }
        Ok(claimed.is_some())
    }

    /// Claims the first claimable run of sweep `sweep` in plan order, as
    /// [`Store::claim_run`] would, in one statement: what many pull workers
    /// sharing one database call. The caller is the process that runs the
    /// claimed run, already started, so this claim also counts the attempt. On PostgreSQL the candidate row is picked
    /// with `FOR UPDATE SKIP LOCKED`, so concurrent callers each get a
    /// different run without waiting on each other's row locks; on SQLite
    /// the write lock serializes them. `None` when nothing is claimable.
    pub async fn claim_next(&self, sweep: &str, claim: &Claim) -> Result<Option<i64>, StoreError> {
        let now = self.now();
        let sql = format!(
            "UPDATE runs SET status = 'running', owner = $2, device = $3, pid = $4,
                    attempts = attempts + 1, started_at = COALESCE(started_at, $5),
                    heartbeat_at = $5, finished_at = NULL, error = NULL, {}
             WHERE id = (
                SELECT r.id FROM runs r JOIN sweep_runs s ON s.run_id = r.id
                WHERE s.sweep = $1
                  AND (r.status IN ('queued', 'interrupted', 'failed')
                       OR (CAST($6 AS DOUBLE PRECISION) IS NOT NULL AND r.status = 'running'
                           AND COALESCE(r.heartbeat_at, r.started_at, 0) < $5 - $6))
                ORDER BY s.position, r.id
                LIMIT 1 {})
             RETURNING id",
            ranks_set(7),
            self.backend.skip_locked("r")
        );
        sqlx::query_scalar(&sql)
            .bind(sweep)
            .bind(&claim.owner)
            .bind(&claim.device)
            .bind(claim.pid)
            .bind(now)
            .bind(claim.stale_after_s)
            .bind(i64::from(claim.ranks.world_size))
            .bind(claim.ranks.backend.map(DistBackend::name))
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("claiming the next run of sweep {sweep} for {}", claim.owner))
    }

    /// Records that the owner of a run is alive (see `Claim::stale_after_s`).
    pub async fn heartbeat(&self, id: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE runs SET heartbeat_at = $2 WHERE id = $1")
            .bind(id)
            .bind(self.now())
            .execute(&self.pool)
            .await
            .ctx(|| format!("heartbeat of run {id}"))?;
        found(id, done.rows_affected())
    }

    /// Every `running` run, for finding those whose owner is gone.
    pub async fn running_runs(&self) -> Result<Vec<RunRow>, StoreError> {
        sqlx::query_as("SELECT * FROM runs WHERE status = 'running' ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing the running runs".to_owned())
    }

    /// Marks a run of any kind done with its result (for a search in the
    /// NB201 space, with the benchmark's accuracies of its cell).
    pub async fn finish_run(&self, id: i64, result: RunResult<'_>) -> Result<(), StoreError> {
        self.reconnecting(|| self.finish_run_once(id, result)).await
    }

    async fn finish_run_once(&self, id: i64, result: RunResult<'_>) -> Result<(), StoreError> {
        let what = || format!("finishing {} {id}", result.kind().noun());
        let now = self.now();
        let mut tx = self.begin_write().await.ctx(what)?;
        let done = match result {
            RunResult::Search {
                genotype,
                final_valid_acc,
                wall_s,
            } => sqlx::query(
                "UPDATE runs SET status = 'done', final_genotype = $2, final_valid_acc = $3,
                        wall_s = $4, finished_at = $5, heartbeat_at = $5, error = NULL
                 WHERE id = $1",
            )
            .bind(id)
            .bind(genotype)
            .bind(final_valid_acc)
            .bind(wall_s)
            .bind(now),
            RunResult::Train {
                final_test_acc,
                wall_s,
            } => sqlx::query(
                "UPDATE runs SET status = 'done', final_test_acc = $2, wall_s = $3,
                        finished_at = $4, heartbeat_at = $4, error = NULL
                 WHERE id = $1",
            )
            .bind(id)
            .bind(final_test_acc)
            .bind(wall_s)
            .bind(now),
        }
        .execute(&mut *tx)
        .await
        .ctx(what)?;
        if result.kind() == RunKind::Search {
            super::nb201::fill_run(&mut tx, id).await.ctx(what)?;
        }
        tx.commit().await.ctx(what)?;
        found(id, done.rows_affected())
    }

    /// Marks a run failed with its error. A `done` run stays done: its
    /// result is complete, whatever failed afterwards.
    pub async fn fail_run(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.reconnecting(|| self.fail_run_once(id, error)).await
    }

    async fn fail_run_once(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'failed', error = $2, finished_at = $3
             WHERE id = $1 AND status <> 'done'",
        )
        .bind(id)
        .bind(error)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .ctx(|| format!("marking run {id} failed"))?;
        if done.rows_affected() == 0 {
            self.require(id).await?;
        }
        Ok(())
    }

    /// Marks a running run interrupted (Ctrl-C), so that it resumes from its
    /// checkpoint later. Only `running` changes: a queued, done or failed
    /// run keeps its status.
    pub async fn interrupt_run(&self, id: i64) -> Result<(), StoreError> {
        self.reconnecting(|| self.interrupt_run_once(id)).await
    }

    async fn interrupt_run_once(&self, id: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'interrupted', finished_at = $2
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .ctx(|| format!("marking run {id} interrupted"))?;
        if done.rows_affected() == 0 {
            self.require(id).await?;
        }
        Ok(())
    }

    /// Remembers where the run's latest epoch checkpoint is.
    pub async fn set_checkpoint_path(&self, id: i64, path: &str) -> Result<(), StoreError> {
        self.reconnecting(|| self.set_checkpoint_path_once(id, path))
            .await
    }

    async fn set_checkpoint_path_once(&self, id: i64, path: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE runs SET checkpoint_path = $2 WHERE id = $1")
            .bind(id)
            .bind(path)
            .execute(&self.pool)
            .await
            .ctx(|| format!("setting the checkpoint of run {id}"))?;
        found(id, done.rows_affected())
    }

    /// `RunNotFound` unless run `id` exists.
    async fn require(&self, id: i64) -> Result<(), StoreError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("looking up run {id}"))?;
        exists.map(|_| ()).ok_or(StoreError::RunNotFound(id))
    }
}

/// `RunNotFound` when an update by id touched no row.
fn found(id: i64, rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::RunNotFound(id))
    } else {
        Ok(())
    }
}
