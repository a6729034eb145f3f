//! Read queries for `ddsas report` (docs/design.md §4): everything a figure draws comes from here, one query per table,
//! scoped to the runs of one sweep.
//!
//! Per-epoch tables are read whole for the sweep's runs and grouped in Rust:
//! a paper-sized sweep is a few hundred runs × 50 epochs, which SQLite hands
//! over in milliseconds, and the report code stays free of SQL.

#![deny(missing_docs)]

use super::error::Context;
use super::rows::StoredMethod;
use super::{RunStatus, Store, StoreError};
use crate::arch::space::SpaceKind;
use crate::config::Method;
use crate::data::DatasetKind;

/// One run of a sweep as the report sees it: identity, the knobs the figures
/// group by (NULL for the baselines, as in `run_summary`) and the result.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ReportRun {
    /// Run id.
    pub id: i64,
    /// Where it is in its life cycle.
    pub status: RunStatus,
    /// Its search method; `None` for a run that searches nothing (a train
    /// run, which `report cells --run ID` may be asked about).
    #[sqlx(try_from = "StoredMethod")]
    pub method: Option<Method>,
    /// Its search space.
    pub space: SpaceKind,
    /// The dataset it searched on.
    pub dataset: DatasetKind,
    /// Seed of the run.
    pub seed: i64,
    /// DDSAS subspace size (NULL for the baselines).
    #[sqlx(rename = "L")]
    pub l: Option<i64>,
    /// DDSAS weight steps per subspace (NULL for the baselines).
    #[sqlx(rename = "M")]
    pub m: Option<i64>,
    /// DDSAS approximation of Eq. 7 on (1) or off (0); NULL for the baselines.
    pub approximation: Option<i64>,
    /// Epochs recorded.
    pub epochs_done: i64,
    /// Final valid accuracy of the search (0..1), once done.
    pub valid_acc: Option<f64>,
    /// Final genotype text, once done.
    pub genotype: Option<String>,
    /// Canonical JSON of the resolved config (to compare configs).
    pub config_json: String,
    /// Definitions version it was made under (`config::definitions`).
    pub definitions: i64,
    /// Test accuracy (0..1) of its cell trained from scratch: the mean
    /// over its done trainings under the one train config a report uses
    /// (`report::trainings`); none without one. Not read from the
    /// database: set from [`trainings`](Self::trainings).
    #[sqlx(skip)]
    pub test_acc: Option<f64>,
    /// Epochs of those trainings.
    #[sqlx(skip)]
    pub test_epochs: Option<i64>,
    /// Parameters of those trainings' network (the mean).
    #[sqlx(skip)]
    pub test_params: Option<f64>,
    /// Every done training of its cell (train runs linked to it through
    /// `evaluations`), whatever their train config, by train run id.
    #[sqlx(skip)]
    pub trainings: Vec<ReportTraining>,
    /// Search wall seconds.
    pub wall_s: Option<f64>,
}

impl ReportRun {
    /// Whether it was made under older definitions than this ddsas uses
    /// for its method (figures leave it out: its numbers mean something else).
    pub fn outdated(&self) -> bool {
        self.method.is_some_and(|method| {
            self.definitions < i64::from(crate::config::definitions(method, self.space))
        })
    }
}

/// One done training of a search's cell: a train run linked to the search
/// (`evaluations`), with its config and result.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ReportTraining {
    /// The search whose cell it trained.
    pub search_run_id: i64,
    /// The train run.
    pub train_run_id: i64,
    /// Its canonical train config (`config::train`), genotype included.
    pub config_json: String,
    /// Test accuracy after its last epoch (0..1).
    pub test_acc: f64,
    /// Parameters of its network (without the auxiliary head).
    pub params: Option<i64>,
    /// Epochs it trained.
    pub epochs: i64,
    /// Top-5 test accuracy after its last epoch (0..1); read for ImageNet
    /// trainings only (see [`Store::imagenet_figures`]).
    #[sqlx(skip)]
    pub test_top5: Option<f64>,
    /// Multiply-adds of its network on one image; ImageNet trainings only.
    #[sqlx(skip)]
    pub madds: Option<i64>,
}

impl ReportTraining {
    /// Whether it trained on ImageNet (its stored config says so).
    pub fn on_imagenet(&self) -> bool {
        serde_json::from_str::<serde_json::Value>(&self.config_json)
            .is_ok_and(|c| c["dataset"] == "imagenet")
    }
}

/// The per-epoch scalars a figure draws (Figs. 8, 10).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EpochPoint {
    /// Run id.
    pub run_id: i64,
    /// Epoch, from 0.
    pub epoch: i64,
    /// Valid accuracy of the search (0..1).
    pub valid_acc: f64,
    /// `skip_connect` among the kept edges of the normal (or only) cell.
    pub skip_normal: i64,
    /// Cosine distance to the previous epoch's architecture (NULL at epoch 0).
    pub cosine_distance: Option<f64>,
    /// Derived genotype (the NB201 arch string in that space).
    pub genotype: String,
}

/// Consecutive steps of one run summed into one point (Fig. 10 per step):
/// a long search logs more steps than the picture has pixels, so the
/// database adds them up and the report reads one row per pixel column
/// rather than every step. With a width of one step a bucket is a step.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepBucket {
    /// Run id.
    pub run_id: i64,
    /// First step of the bucket, from 0.
    pub step: i64,
    /// Steps in the bucket.
    pub steps: i64,
    /// Steps in it that recorded a cosine distance (all but step 0).
    pub distances: i64,
    /// Sum of those distances (NULL when there are none).
    pub distance_sum: Option<f64>,
    /// Sum of the steps' weight-minibatch accuracies (0..1 each).
    pub acc_sum: f64,
}

impl StepBucket {
    /// The mean cosine distance of its steps, if any recorded one.
    pub fn distance(&self) -> Option<f64> {
        self.distance_sum
            .filter(|_| self.distances > 0)
            .map(|sum| sum / self.distances as f64)
    }

    /// The mean minibatch accuracy of its steps (0..1).
    pub fn accuracy(&self) -> f64 {
        self.acc_sum / self.steps as f64
    }
}

/// One cumulative sampling count at its run's last recorded epoch (Fig. 9).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SamplingPoint {
    /// Run id.
    pub run_id: i64,
    /// `normal`, `reduce` or `cell`.
    pub cell: String,
    /// Edge index in `SearchSpace` order.
    pub edge: i64,
    /// `(from,to)`.
    pub edge_label: String,
    /// Op name.
    pub op: String,
    /// Subspaces that contained (cell, edge, op) over the whole run.
    pub count: i64,
}

/// One sampled subspace of one cell type (Fig. 12 a/c).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SubspacePoint {
    /// Run id.
    pub run_id: i64,
    /// Subspace number within the run, from 0.
    pub iteration: i64,
    /// `normal`, `reduce` or `cell`.
    pub cell: String,
    /// `sum_c y_c^2` of that subspace.
    pub combinations: i64,
}

/// One bin of a run's ratio histogram at its last recorded epoch (Fig. 12 b).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RatioPoint {
    /// Run id.
    pub run_id: i64,
    /// `normal`, `reduce` or `cell`.
    pub cell: String,
    /// Index into `metrics::RATIO_BINS`.
    pub bin_index: i64,
    /// Count of ratios in the bin over the whole run.
    pub count: i64,
}

/// A sweep's row of `sweeps`, for messages that name the file to run.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SweepInfo {
    /// Sweep name.
    pub name: String,
    /// Path the sweep was read from, if recorded.
    pub file: Option<String>,
    /// The file's text when it was registered, if recorded.
    pub spec_yaml: Option<String>,
}

/// The columns of a [`ReportRun`], from `run_summary s` and `runs r`
/// (its trainings are read by [`TRAININGS`]).
const REPORT_RUN_COLUMNS: &str =
    "SELECT s.id, s.status, s.method, s.space, s.dataset, s.seed, s.L AS \"L\", s.M AS \"M\",
                    s.approximation, s.epochs_done, s.valid_acc, s.genotype, r.config_json,
                    r.definitions, s.wall_s";

/// The done trainings of searches, by search and train run, joined to a
/// `FROM`/`WHERE` that names the searches `e.search_run_id`. Trainings of
/// older train definitions (`TRAIN_DEFINITIONS`) are left out: their
/// config reads the same, but their numbers mean something else.
const TRAININGS: &str =
    "SELECT e.search_run_id, e.train_run_id, t.config_json, t.final_test_acc AS test_acc,
                    t.params, t.epochs_total AS epochs
             FROM evaluations e JOIN runs t ON t.id = e.train_run_id
             WHERE t.status = 'done' AND t.final_test_acc IS NOT NULL
               AND t.definitions = {definitions}";

/// [`TRAININGS`] with this ddsas's train definitions filled in.
fn trainings_sql() -> String {
    TRAININGS.replace(
        "{definitions}",
        &crate::config::train::TRAIN_DEFINITIONS.to_string(),
    )
}

/// `runs` with each one's trainings of `trainings` attached.
fn attach(mut runs: Vec<ReportRun>, trainings: Vec<ReportTraining>) -> Vec<ReportRun> {
    for t in trainings {
        if let Some(run) = runs.iter_mut().find(|r| r.id == t.search_run_id) {
            run.trainings.push(t);
        }
    }
    runs
}

impl Store {
    /// Every sweep, by name (for "unknown sweep; known sweeps are ..." messages).
    pub async fn sweep_infos(&self) -> Result<Vec<SweepInfo>, StoreError> {
        sqlx::query_as("SELECT name, file, spec_yaml FROM sweeps ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .ctx(|| "listing the sweeps".into())
    }

    /// The runs of sweep `sweep` (any status), by run id, each with its
    /// done trainings.
    pub async fn report_runs(&self, sweep: &str) -> Result<Vec<ReportRun>, StoreError> {
        let runs = sqlx::query_as(&format!(
            "{REPORT_RUN_COLUMNS}
             FROM sweep_runs w
             JOIN run_summary s ON s.id = w.run_id
             JOIN runs r ON r.id = w.run_id
             WHERE w.sweep = $1
             ORDER BY s.id"
        ))
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the runs of sweep {sweep}"))?;
        let trainings = sqlx::query_as(&format!(
            "{}
               AND e.search_run_id IN (SELECT run_id FROM sweep_runs WHERE sweep = $1)
             ORDER BY e.search_run_id, e.train_run_id",
            trainings_sql()
        ))
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the trainings of sweep {sweep}'s searches"))?;
        let trainings = self.imagenet_figures(trainings).await?;
        Ok(attach(runs, trainings))
    }

    /// Run `id` as the report sees it, whatever sweep it is in (none if
    /// there is no such run), with its done trainings, for `report cells
    /// --run ID` without a sweep.
    pub async fn report_run(&self, id: i64) -> Result<Option<ReportRun>, StoreError> {
        let run: Option<ReportRun> = sqlx::query_as(&format!(
            "{REPORT_RUN_COLUMNS}
             FROM run_summary s
             JOIN runs r ON r.id = s.id
             WHERE s.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading run {id}"))?;
        let Some(run) = run else {
            return Ok(None);
        };
        let trainings = sqlx::query_as(&format!(
            "{} AND e.search_run_id = $1 ORDER BY e.train_run_id",
            trainings_sql()
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the trainings of run {id}"))?;
        let trainings = self.imagenet_figures(trainings).await?;
        Ok(attach(vec![run], trainings).pop())
    }

    /// `trainings` with the top-5 accuracy and multiply-adds of those on
    /// ImageNet read in. Only theirs: ImageNet trainings exist only in a
    /// database migrated to the columns, while a database of older
    /// trainings that is only read (`ddsas serve`) lacks them.
    async fn imagenet_figures(
        &self,
        mut trainings: Vec<ReportTraining>,
    ) -> Result<Vec<ReportTraining>, StoreError> {
        for t in trainings.iter_mut().filter(|t| t.on_imagenet()) {
            let id = t.train_run_id;
            let (madds, top5): (Option<i64>, Option<f64>) = sqlx::query_as(
                "SELECT r.madds,
                        (SELECT e.test_top5 FROM train_epochs e
                          WHERE e.run_id = r.id ORDER BY e.epoch DESC LIMIT 1) AS test_top5
                 FROM runs r WHERE r.id = $1",
            )
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .ctx(|| format!("reading the ImageNet figures of train run {id}"))?;
            t.madds = madds;
            t.test_top5 = top5;
        }
        Ok(trainings)
    }

    /// The epochs of the sweep's runs, by run and epoch.
    pub async fn report_epochs(&self, sweep: &str) -> Result<Vec<EpochPoint>, StoreError> {
        sqlx::query_as(
            "SELECT e.run_id, e.epoch, e.valid_acc, e.skip_normal, e.cosine_distance, e.genotype
             FROM epochs e JOIN sweep_runs w ON w.run_id = e.run_id
             WHERE w.sweep = $1
             ORDER BY e.run_id, e.epoch",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the epochs of sweep {sweep}"))
    }

    /// How many steps each of the sweep's runs logged (its last step + 1:
    /// steps count from 0 without gaps), by run, leaving out runs that
    /// logged none: it sets how many steps a point of
    /// [`report_step_buckets`](Self::report_step_buckets) sums. Read
    /// through the key's last entry of each run, not by counting a
    /// million rows.
    pub async fn report_step_counts(&self, sweep: &str) -> Result<Vec<(i64, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT run_id, n FROM
                (SELECT w.run_id,
                        (SELECT max(x.step) + 1 FROM steps x WHERE x.run_id = w.run_id) AS n
                 FROM sweep_runs w WHERE w.sweep = $1) l
             WHERE n IS NOT NULL
             ORDER BY run_id",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("counting the steps of sweep {sweep}"))
    }

    /// The per-step records of the sweep's runs summed over buckets of
    /// `width` steps (1: every step), by run and step. Summed here rather
    /// than in the report so that a long search's million rows never
    /// leave the database.
    pub async fn report_step_buckets(
        &self,
        sweep: &str,
        width: i64,
    ) -> Result<Vec<StepBucket>, StoreError> {
        sqlx::query_as(
            "SELECT s.run_id, min(s.step) AS step, count(*) AS steps,
                    count(s.cosine_distance) AS distances,
                    sum(s.cosine_distance) AS distance_sum,
                    sum(s.minibatch_acc) AS acc_sum
             FROM steps s JOIN sweep_runs w ON w.run_id = s.run_id
             WHERE w.sweep = $1
             GROUP BY s.run_id, s.step / $2
             ORDER BY s.run_id, step",
        )
        .bind(sweep)
        .bind(width.max(1))
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the steps of sweep {sweep}"))
    }

    /// The sampling counts of each of the sweep's runs at that run's last
    /// recorded epoch (the counts are cumulative, so that is the whole run).
    pub async fn report_final_sampling(
        &self,
        sweep: &str,
    ) -> Result<Vec<SamplingPoint>, StoreError> {
        sqlx::query_as(
            "SELECT c.run_id, c.cell, c.edge, c.edge_label, c.op, c.count
             FROM (SELECT w.run_id,
                          (SELECT max(x.epoch) FROM sampling_counts x WHERE x.run_id = w.run_id) AS epoch
                   FROM sweep_runs w WHERE w.sweep = $1) l
             JOIN sampling_counts c ON c.run_id = l.run_id AND c.epoch = l.epoch
             ORDER BY c.run_id, c.cell, c.edge, c.op",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the sampling counts of sweep {sweep}"))
    }

    /// Every sampled subspace of the sweep's runs, by run, cell and iteration.
    pub async fn report_subspaces(&self, sweep: &str) -> Result<Vec<SubspacePoint>, StoreError> {
        sqlx::query_as(
            "SELECT s.run_id, s.iteration, s.cell, s.combinations
             FROM subspaces s JOIN sweep_runs w ON w.run_id = s.run_id
             WHERE w.sweep = $1
             ORDER BY s.run_id, s.cell, s.iteration",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the subspaces of sweep {sweep}"))
    }

    /// The ratio histogram of each of the sweep's runs at that run's last
    /// recorded epoch (cumulative, so the whole run).
    pub async fn report_final_ratio_hist(
        &self,
        sweep: &str,
    ) -> Result<Vec<RatioPoint>, StoreError> {
        sqlx::query_as(
            "SELECT h.run_id, h.cell, h.bin_index, h.count
             FROM (SELECT w.run_id,
                          (SELECT max(x.epoch) FROM ratio_hist x WHERE x.run_id = w.run_id) AS epoch
                   FROM sweep_runs w WHERE w.sweep = $1) l
             JOIN ratio_hist h ON h.run_id = l.run_id AND h.epoch = l.epoch
             ORDER BY h.run_id, h.cell, h.bin_index",
        )
        .bind(sweep)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("reading the ratio histograms of sweep {sweep}"))
    }
}
