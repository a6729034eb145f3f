//! Train runs in the run history: registered once per fingerprint
//! (genotype + train config) in `runs` as kind `train`, one `train_epochs`
//! row per epoch, and linked to the searches whose cell they train.
//! Claims, heartbeats, epoch records and the end states are the runs' own
//! (`Store::record_epoch`, `Store::finish_run`, generic over the kind).

use sqlx::AnyConnection;

use super::error::Context;
use super::runs::NewRun;
use super::{RunKind, RunRow, Store, StoreError};
use crate::arch::metrics::TrainEpoch;
use crate::arch::space::SpaceKind;
use crate::config::train::ResolvedTrain;

impl Store {
    /// Registers the train run of a config (or returns the existing row:
    /// a done one is never trained again).
    pub async fn ensure_train_run(&self, cfg: &ResolvedTrain) -> Result<RunRow, StoreError> {
        let c = cfg.config();
        self.register(NewRun {
            fingerprint: cfg.fingerprint(),
            kind: RunKind::Train,
            method: None,
            space: SpaceKind::Darts,
            dataset: c.dataset,
            seed: c.seed,
            config_json: cfg.canonical_json(),
            epochs_total: c.epochs(),
            genotype: Some(&c.genotype),
            definitions: cfg.definitions(),
        })
        .await
    }

    /// Links train run `train` to the search run whose cell it trains.
    pub async fn link_evaluation(&self, search: i64, train: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO evaluations (search_run_id, train_run_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(search)
        .bind(train)
        .execute(&self.pool)
        .await
        .ctx(|| format!("linking train run {train} to search run {search}"))?;
        Ok(())
    }

    /// Stores the network's size once it is built.
    pub async fn set_params(&self, run_id: i64, params: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET params = $2 WHERE id = $1")
            .bind(run_id)
            .bind(params)
            .execute(&self.pool)
            .await
            .ctx(|| format!("storing the size of run {run_id}"))?;
        Ok(())
    }

    /// Stores the multiply-adds of the network's forward pass on one image
    /// (at the crop size), which DARTS-family ImageNet tables report
    /// beside the parameters.
    pub async fn set_madds(&self, run_id: i64, madds: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET madds = $2 WHERE id = $1")
            .bind(run_id)
            .bind(madds)
            .execute(&self.pool)
            .await
            .ctx(|| format!("storing the multiply-adds of run {run_id}"))?;
        Ok(())
    }

    /// The multiply-adds stored for run `run_id` (`None` when not stored,
    /// or no such run).
    pub async fn madds(&self, run_id: i64) -> Result<Option<i64>, StoreError> {
        let row: Option<(Option<i64>,)> = sqlx::query_as("SELECT madds FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("reading the multiply-adds of run {run_id}"))?;
        Ok(row.and_then(|(m,)| m))
    }

    /// The recorded epochs of a train run, in order.
    pub async fn train_epochs(&self, run_id: i64) -> Result<Vec<TrainEpoch>, StoreError> {
        sqlx::query_as(
            "SELECT epoch, train_acc, train_loss, test_acc, test_loss, train_top5, test_top5,
                    skipped_images, lr, drop_path_prob, wall_s, images_per_s, peak_mem_bytes
             FROM train_epochs WHERE run_id = $1 ORDER BY epoch",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the epochs of train run {run_id}"))
    }
}

/// Inserts the row of one train epoch (inside [`Store::record_epoch`]'s
/// transaction).
pub(super) async fn insert_epoch(
    conn: &mut AnyConnection,
    run_id: i64,
    rec: &TrainEpoch,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO train_epochs (run_id, epoch, train_acc, train_loss, test_acc, test_loss, lr,
                                   drop_path_prob, wall_s, images_per_s, peak_mem_bytes,
                                   train_top5, test_top5, skipped_images)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(run_id)
    .bind(rec.epoch)
    .bind(rec.train_acc)
    .bind(rec.train_loss)
    .bind(rec.test_acc)
    .bind(rec.test_loss)
    .bind(rec.lr)
    .bind(rec.drop_path_prob)
    .bind(rec.wall_s)
    .bind(rec.images_per_s)
    .bind(rec.peak_mem_bytes)
    .bind(rec.train_top5)
    .bind(rec.test_top5)
    .bind(rec.skipped_images)
    .execute(conn)
    .await?;
    Ok(())
}
