//! Sweeps and the orchestrator's side of a run's life cycle (docs/design.md §5,
//! §6): registering a sweep and its runs, cancelling it, and the
//! owner-checked updates that let several orchestrators and their workers
//! share one database without ever running a run twice.
//!
//! Every update here that touches a claimed run says `WHERE owner = $N` (a
//! compare-and-swap on the claim), so a process that lost its claim can
//! never overwrite the new owner's state.

use std::collections::HashMap;

use super::error::Context;
use super::{Claim, RunRow, RunStatus, Store, StoreError};
use crate::config::train::DistBackend;

/// A sweep as registered in `sweeps`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SweepRow {
    /// The sweep's name (its key).
    pub name: String,
    /// Description from the file.
    pub description: Option<String>,
    /// Path it was last read from.
    pub file: Option<String>,
    /// When it was first registered (unix seconds).
    pub created_at: f64,
    /// Whether `ddsas sweep cancel` asked its orchestrators to stop.
    #[sqlx(try_from = "super::rows::Flag")]
    pub cancelled: bool,
}

/// Where a run stands, as the orchestrator's live display needs it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RunProgress {
    /// Run id.
    pub id: i64,
    /// Current status.
    pub status: RunStatus,
    /// Epochs recorded.
    pub epochs_done: i64,
    /// Epochs the config asks for.
    pub epochs_total: i64,
    /// Valid accuracy of the last recorded epoch (searches).
    pub last_valid_acc: Option<f64>,
    /// Test accuracy of the last recorded epoch (train runs).
    pub last_test_acc: Option<f64>,
    /// Mean wall seconds of the recorded epochs (for an ETA).
    pub mean_epoch_s: Option<f64>,
    /// Last sign of life of its worker (unix seconds).
    pub heartbeat_at: Option<f64>,
    /// Batches its worker had done at that heartbeat.
    pub steps_done: Option<i64>,
}

impl Store {
    /// Registers (or updates) a sweep and links it to its runs, replacing
    /// the links of an earlier version of the same sweep, in one
    /// transaction. A new `sweep run` clears an earlier cancellation: the
    /// user asked to run it again.
    pub async fn register_sweep(
        &self,
        name: &str,
        description: Option<&str>,
        file: &str,
        spec_yaml: &str,
        runs: &[(i64, i64)],
    ) -> Result<(), StoreError> {
        let what = || format!("registering sweep {name}");
        let mut tx = self.begin_write().await.ctx(what)?;
        sqlx::query(
            "INSERT INTO sweeps (name, description, file, spec_yaml, created_at, cancelled)
             VALUES ($1, $2, $3, $4, $5, 0)
             ON CONFLICT (name) DO UPDATE SET description = excluded.description,
                 file = excluded.file, spec_yaml = excluded.spec_yaml, cancelled = 0",
        )
        .bind(name)
        .bind(description)
        .bind(file)
        .bind(spec_yaml)
        .bind(self.now())
        .execute(&mut *tx)
        .await
        .ctx(what)?;
        sqlx::query("DELETE FROM sweep_runs WHERE sweep = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .ctx(what)?;
        for (run_id, position) in runs {
            sqlx::query(
                "INSERT INTO sweep_runs (sweep, run_id, position) VALUES ($1, $2, $3)
                 ON CONFLICT (sweep, run_id) DO UPDATE SET position = excluded.position",
            )
            .bind(name)
            .bind(run_id)
            .bind(position)
            .execute(&mut *tx)
            .await
            .ctx(what)?;
        }
        tx.commit().await.ctx(what)
    }

    /// Makes run `run_id` a member of sweep `name` (after its planned
    /// runs: a train run a sweep's `evaluate:` queued).
    pub async fn add_to_sweep(&self, name: &str, run_id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sweep_runs (sweep, run_id, position) VALUES ($1, $2, NULL)
             ON CONFLICT (sweep, run_id) DO NOTHING",
        )
        .bind(name)
        .bind(run_id)
        .execute(&self.pool)
        .await
        .ctx(|| format!("adding run {run_id} to sweep {name}"))?;
        Ok(())
    }

    /// The sweep called `name`, if registered.
    pub async fn sweep(&self, name: &str) -> Result<Option<SweepRow>, StoreError> {
        sqlx::query_as(
            "SELECT name, description, file, created_at, cancelled FROM sweeps WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading sweep {name}"))
    }

    /// Every registered sweep, oldest first (for hints and listings).
    pub async fn sweeps(&self) -> Result<Vec<SweepRow>, StoreError> {
        sqlx::query_as("SELECT name, description, file, created_at, cancelled FROM sweeps ORDER BY created_at, name")
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing sweeps".to_owned())
    }

    /// Marks a sweep cancelled; its orchestrators notice within a second or
    /// two, launch nothing more and interrupt its workers. False when no
    /// sweep has that name.
    pub async fn cancel_sweep(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE sweeps SET cancelled = 1 WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .ctx(|| format!("cancelling sweep {name}"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether a sweep was cancelled (false for an unknown sweep).
    pub async fn sweep_cancelled(&self, name: &str) -> Result<bool, StoreError> {
        let cancelled: Option<i64> =
            sqlx::query_scalar("SELECT cancelled FROM sweeps WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .ctx(|| format!("reading sweep {name}"))?;
        Ok(cancelled.is_some_and(|c| c != 0))
    }

    /// The runs of a sweep with their positions, in expansion order.
    pub async fn sweep_runs(&self, name: &str) -> Result<Vec<(i64, RunRow)>, StoreError> {
        let positions: Vec<(i64, i64)> =
            sqlx::query_as("SELECT run_id, COALESCE(position, -1) FROM sweep_runs WHERE sweep = $1 ORDER BY position, run_id")
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .ctx(|| format!("reading the runs of sweep {name}"))?;
        let rows: Vec<RunRow> = sqlx::query_as(
            "SELECT r.* FROM runs r JOIN sweep_runs s ON s.run_id = r.id WHERE s.sweep = $1",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the runs of sweep {name}"))?;
        let mut by_id: HashMap<i64, RunRow> = rows.into_iter().map(|r| (r.id, r)).collect();
        Ok(positions
            .into_iter()
            .filter_map(|(id, pos)| by_id.remove(&id).map(|r| (pos, r)))
            .collect())
    }

    /// Progress of the given runs (one query, for the live display).
    pub async fn run_progress(&self, ids: &[i64]) -> Result<Vec<RunProgress>, StoreError> {
        let list = serde_json::to_string(ids).expect("integers always serialize");
        let sql = format!(
            "SELECT r.id, r.status, r.epochs_done, r.epochs_total,
                    (SELECT e.valid_acc FROM epochs e WHERE e.run_id = r.id ORDER BY e.epoch DESC LIMIT 1) AS last_valid_acc,
                    (SELECT t.test_acc FROM train_epochs t WHERE t.run_id = r.id ORDER BY t.epoch DESC LIMIT 1) AS last_test_acc,
                    CAST(COALESCE((SELECT avg(e.wall_s) FROM epochs e WHERE e.run_id = r.id),
                             (SELECT avg(t.wall_s) FROM train_epochs t WHERE t.run_id = r.id)) AS DOUBLE PRECISION) AS mean_epoch_s,
                    r.heartbeat_at, r.steps_done
             FROM runs r WHERE r.id IN ({})",
            self.backend.json_list("$1", true)
        );
        sqlx::query_as(&sql)
            .bind(list)
            .fetch_all(&self.pool)
            .await
            .ctx(|| "reading run progress".to_owned())
    }

    /// A started worker confirming its claim: records its pid, a heartbeat
    /// and its `attempt` number (the run's attempts before the claim, plus
    /// one) if `owner` still holds the run. False when the claim was lost
    /// (another orchestrator took the run over), in which case the worker
    /// must not touch the run.
    ///
    /// `attempts` counts started workers, and both the orchestrator (right
    /// after it spawned the worker) and the worker itself confirm with the
    /// same number, so whichever of the two survives to confirm counts the
    /// attempt, and the second confirm does not count it again.
    pub async fn confirm_claim(
        &self,
        id: i64,
        owner: &str,
        pid: i64,
        attempt: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET pid = $3, heartbeat_at = $4,
                    attempts = CASE WHEN attempts < $5 THEN $5 ELSE attempts END
             WHERE id = $1 AND owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(pid)
        .bind(self.now())
        .bind(attempt)
        .execute(&self.pool)
        .await
        .ctx(|| format!("confirming the claim on run {id}"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the processes that run a claimed train run, once rank 0 of
    /// its group knows them (the orchestrator's claim counted the ranks but
    /// could not know the backend they settle on); a search keeps NULL.
    /// False when `owner` no longer holds the run.
    pub async fn record_ranks(
        &self,
        id: i64,
        owner: &str,
        ranks: super::Ranks,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE runs SET {} WHERE id = $1 AND owner = $2 AND status = 'running'",
            super::runs::ranks_set(3)
        );
        let done = sqlx::query(&sql)
            .bind(id)
            .bind(owner)
            .bind(i64::from(ranks.world_size))
            .bind(ranks.backend.map(DistBackend::name))
            .execute(&self.pool)
            .await
            .ctx(|| format!("recording the ranks of run {id}"))?;
        Ok(done.rows_affected() == 1)
    }

    /// A heartbeat that also checks the claim and carries the batches the
    /// worker has done (`steps_done`, for stall detection): false when
    /// `owner` no longer holds the run (it finished, or another owner took
    /// it over).
    pub async fn heartbeat_owned(
        &self,
        id: i64,
        owner: &str,
        steps_done: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET heartbeat_at = $3, steps_done = $4
             WHERE id = $1 AND owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(self.now())
        .bind(i64::try_from(steps_done).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .ctx(|| format!("heartbeat of run {id}"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes over a `running` run whose owner is gone (stale heartbeat,
    /// dead processes), as a compare-and-swap on the owner and pid that were
    /// seen: of several orchestrators trying at once, exactly one wins. Like
    /// a claim, it counts no attempt until a worker confirms.
    pub async fn take_over_run(
        &self,
        id: i64,
        claim: &Claim,
        seen_owner: Option<&str>,
        seen_pid: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let sql = format!(
            "UPDATE runs SET owner = $2, device = $3, pid = $4,
                    started_at = COALESCE(started_at, $5), heartbeat_at = $5,
                    finished_at = NULL, error = NULL, {}
             WHERE id = $1 AND status = 'running' AND owner IS NOT DISTINCT FROM $6 AND pid IS NOT DISTINCT FROM $7
             RETURNING id",
            super::runs::ranks_set(8)
        );
        let claimed: Option<i64> = sqlx::query_scalar(&sql)
            .bind(id)
            .bind(&claim.owner)
            .bind(&claim.device)
            .bind(claim.pid)
            .bind(now)
            .bind(seen_owner)
            .bind(seen_pid)
            .bind(i64::from(claim.ranks.world_size))
            .bind(claim.ranks.backend.map(DistBackend::name))
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("taking over run {id} for {}", claim.owner))?;
        Ok(claimed.is_some())
    }

    /// Puts a run this owner holds back to `interrupted` with a message
    /// (its worker died, or the sweep stopped): it resumes from its
    /// checkpoint on the next claim. False when `owner` does not hold it.
    pub async fn release_run(
        &self,
        id: i64,
        owner: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'interrupted', error = $3, finished_at = $4
             WHERE id = $1 AND owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(error)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .ctx(|| format!("releasing run {id}"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a run this owner holds (or held last, if it stopped since)
    /// `failed`: retries used up. False when another owner has it, or it is
    /// done.
    pub async fn fail_owned_run(
        &self,
        id: i64,
        owner: &str,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'failed', error = $3, finished_at = $4
             WHERE id = $1 AND owner = $2 AND status IN ('running', 'interrupted')",
        )
        .bind(id)
        .bind(owner)
        .bind(error)
        .bind(self.now())
        .execute(&self.pool)
        .await
        .ctx(|| format!("marking run {id} failed"))?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SearchConfig;

    fn cfg(seed: u64) -> crate::config::ResolvedConfig {
        SearchConfig {
            seed,
            ..SearchConfig::default()
        }
        .resolve()
        .unwrap()
    }

    fn claim(owner: &str) -> Claim {
        Claim {
            owner: owner.into(),
            device: "cpu".into(),
            pid: 1,
            stale_after_s: None,
            ranks: super::super::Ranks::ONE,
        }
    }

    #[tokio::test]
    async fn sweeps_register_relink_and_cancel() {
        let store = Store::open_in_memory().await.unwrap();
        let a = store.ensure_run(&cfg(1)).await.unwrap();
        let b = store.ensure_run(&cfg(2)).await.unwrap();
        store
            .register_sweep("s", Some("d"), "s.yaml", "name: s", &[(a.id, 0), (b.id, 1)])
            .await
            .unwrap();
        assert_eq!(store.sweep_runs("s").await.unwrap().len(), 2);
        store
            .register_sweep("s", None, "s.yaml", "name: s", &[(b.id, 0)])
            .await
            .unwrap();
        let runs = store.sweep_runs("s").await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].1.id, b.id);
        assert!(!store.sweep_cancelled("s").await.unwrap());
        assert!(store.cancel_sweep("s").await.unwrap());
        assert!(store.sweep_cancelled("s").await.unwrap());
        assert!(!store.cancel_sweep("nope").await.unwrap());
        store
            .register_sweep("s", None, "s.yaml", "name: s", &[(b.id, 0)])
            .await
            .unwrap();
        assert!(
            !store.sweep_cancelled("s").await.unwrap(),
            "a new sweep run clears the cancel"
        );
    }

    #[tokio::test]
    async fn owner_checked_updates_never_touch_another_owners_run() {
        let store = Store::open_in_memory().await.unwrap();
        let run = store.ensure_run(&cfg(3)).await.unwrap();
        assert!(store.claim_run(run.id, &claim("a")).await.unwrap());
        assert!(store.confirm_claim(run.id, "a", 42, 1).await.unwrap());
        assert!(!store.confirm_claim(run.id, "b", 43, 1).await.unwrap());
        assert!(!store.heartbeat_owned(run.id, "b", 0).await.unwrap());
        // b takes over only with what it saw (owner a, pid 42); a second try fails.
        assert!(!store
            .take_over_run(run.id, &claim("b"), Some("a"), Some(7))
            .await
            .unwrap());
        assert!(store
            .take_over_run(run.id, &claim("b"), Some("a"), Some(42))
            .await
            .unwrap());
        assert!(!store
            .take_over_run(run.id, &claim("c"), Some("a"), Some(42))
            .await
            .unwrap());
        assert!(!store.release_run(run.id, "a", Some("x")).await.unwrap());
        assert!(!store.heartbeat_owned(run.id, "a", 0).await.unwrap());
        assert!(store
            .release_run(run.id, "b", Some("worker died"))
            .await
            .unwrap());
        let row = store.run(run.id).await.unwrap().unwrap();
        assert_eq!(row.status, RunStatus::Interrupted);
        assert_eq!(row.attempts, 1, "b took over but started no worker");
        assert!(store.claim_run(run.id, &claim("b")).await.unwrap());
        assert!(store.fail_owned_run(run.id, "b", "gave up").await.unwrap());
        let progress = store.run_progress(&[run.id]).await.unwrap();
        assert_eq!(progress[0].status, RunStatus::Failed);
    }

    /// `attempts` counts started workers: not claims, not takeovers, and a
    /// worker confirmed by both its orchestrator and itself counts once
    /// (otherwise an orchestrator killed between its claim and its
    /// worker's start would count an attempt that no worker made).
    #[tokio::test]
    async fn attempts_count_started_workers_once() {
        let store = Store::open_in_memory().await.unwrap();
        let id = store.ensure_run(&cfg(3)).await.unwrap().id;
        let attempts = || async { store.run(id).await.unwrap().unwrap().attempts };
        assert!(store.claim_run(id, &claim("a")).await.unwrap());
        assert_eq!(attempts().await, 0, "claimed, no worker yet");
        assert!(store.confirm_claim(id, "a", 42, 1).await.unwrap());
        assert!(store.confirm_claim(id, "a", 42, 1).await.unwrap());
        assert_eq!(attempts().await, 1, "orchestrator and worker confirm once");
        assert!(store.release_run(id, "a", Some("killed")).await.unwrap());
        // Orchestrator a claims again and dies before starting a worker.
        assert!(store.claim_run(id, &claim("a")).await.unwrap());
        assert!(store
            .take_over_run(id, &claim("b"), Some("a"), Some(1))
            .await
            .unwrap());
        assert_eq!(attempts().await, 1, "a claim and a takeover count nothing");
        assert!(store.confirm_claim(id, "b", 43, 2).await.unwrap());
        assert_eq!(attempts().await, 2);
        assert!(!store.confirm_claim(id, "a", 44, 3).await.unwrap());
        assert_eq!(attempts().await, 2, "a lost claim's worker counts nothing");
    }
}
