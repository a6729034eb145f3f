//! The questions `ddsas runs` and `ddsas sweep plan/status` ask of the run
//! history, on the read-only connection. The SQL lives here, next to the
//! schema it depends on; the commands only format what comes back. Rows
//! whose columns are the user's to pick (`run_summary`, whose every column
//! `runs list --format csv` prints and `--where` and `--sort` name) come
//! back as [`QueryRows`]; fixed shapes as the typed rows of
//! [`history_rows`](super::history_rows).

use std::collections::HashMap;

use super::history_rows::{
    epoch_columns, RunCard, RunEpochs, RunState, SearchEpochLine, SweepHeader, SweepRunProgress,
    TableLine, Training,
};
use super::queries::{Budget, Cut, QueryError, QueryRows, ReadOnlyDb};
use super::{RunKind, RunStatus};

/// Which runs `runs list` shows, in which order.
#[derive(Debug, Clone, Default)]
pub struct RunFilter<'a> {
    /// Only the runs of this sweep.
    pub sweep: Option<&'a str>,
    /// Only runs with this status.
    pub status: Option<&'a str>,
    /// A SQL condition over the columns of `run_summary`, checked by
    /// [`sql_text::one_condition`](super::sql_text::one_condition) first.
    pub condition: Option<&'a str>,
    /// A column of `run_summary` to sort by (checked by the caller).
    pub sort: &'a str,
    /// Highest first.
    pub descending: bool,
    /// At most this many rows.
    pub limit: Option<u32>,
}

/// What the database knows of a planned run (`sweep plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownRun {
    /// Run id.
    pub id: i64,
    /// Where it is in its life cycle.
    pub status: RunStatus,
    /// Epochs recorded.
    pub epochs_done: i64,
    /// Epochs asked for.
    pub epochs_total: i64,
}

impl ReadOnlyDb {
    /// Names of the sweeps, oldest first.
    pub async fn sweep_names(&mut self) -> Result<Vec<String>, QueryError> {
        let rows = self
            .query("SELECT name FROM sweeps ORDER BY created_at", &[])
            .await?;
        Ok(rows
            .rows
            .iter()
            .filter_map(|r| r[0].as_str().map(str::to_owned))
            .collect())
    }

    /// Ids of the runs of `sweep` for which `condition`, SQL over the
    /// columns of `run_summary` (as `runs list --where` takes it), holds.
    pub async fn sweep_runs_where(
        &mut self,
        sweep: &str,
        condition: &str,
    ) -> Result<Vec<i64>, QueryError> {
        super::sql_text::one_condition(condition).map_err(|message| QueryError::Sql { message })?;
        let sql = format!(
            "SELECT id FROM run_summary
             WHERE id IN (SELECT run_id FROM sweep_runs WHERE sweep = $1) AND ({condition}\n)"
        );
        let rows = self.query(&sql, &[sweep.into()]).await?;
        Ok(rows.rows.iter().filter_map(|r| r[0].as_i64()).collect())
    }

    /// The rows of `run_summary` that `filter` picks, every column.
    pub async fn run_listing(&mut self, filter: &RunFilter<'_>) -> Result<QueryRows, QueryError> {
        Ok(self.run_listing_within(filter, Budget::UNBOUNDED).await?.0)
    }

    /// [`ReadOnlyDb::run_listing`] within `budget` (the web view's table),
    /// and what it cut.
    pub async fn run_listing_within(
        &mut self,
        filter: &RunFilter<'_>,
        budget: Budget,
    ) -> Result<(QueryRows, Cut), QueryError> {
        let mut sql = String::from("SELECT * FROM run_summary WHERE TRUE");
        let mut params: Vec<serde_json::Value> = Vec::new();
        if let Some(sweep) = filter.sweep {
            params.push(sweep.into());
            sql.push_str(&format!(
                " AND id IN (SELECT run_id FROM sweep_runs WHERE sweep = ${})",
                params.len()
            ));
        }
        if let Some(status) = filter.status {
            params.push(status.into());
            sql.push_str(&format!(" AND status = ${}", params.len()));
        }
        if let Some(condition) = filter.condition {
            super::sql_text::one_condition(condition)
                .map_err(|message| QueryError::Sql { message })?;
            sql.push_str(&format!(" AND ({condition}\n)"));
        }
        sql.push_str(&format!(
            " ORDER BY \"{}\" {} NULLS LAST, id",
            self.backend().stored_name(filter.sort),
            if filter.descending { "DESC" } else { "ASC" }
        ));
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        self.query_within(&sql, &params, budget).await
    }

    /// One run's row of `runs` with its sweeps, last skip count and times
    /// as UTC text (`runs show`, the run page); `None` if there is no such
    /// run.
    pub async fn run_card(&mut self, id: i64) -> Result<Option<RunCard>, QueryError> {
        let b = self.backend();
        let sql = format!(
            "SELECT r.*, s.sweep, s.skip_normal, s.parent,
                    {} AS created, {} AS started, {} AS finished, {} AS heartbeat
             FROM runs r JOIN run_summary s ON s.id = r.id WHERE r.id = $1",
            b.datetime("r.created_at"),
            b.datetime("r.started_at"),
            b.datetime("r.finished_at"),
            b.datetime("r.heartbeat_at"),
        );
        let rows = self.query(&sql, &[id.into()]).await?;
        Ok(rows.decode(RunCard::read)?.pop())
    }

    /// A run's epochs from the table of its `kind`, as `runs show`
    /// tabulates them (epochs counted from 1).
    pub async fn run_epochs(&mut self, id: i64, kind: RunKind) -> Result<RunEpochs, QueryError> {
        Ok(match kind {
            RunKind::Search => RunEpochs::Search(self.search_epochs(id).await?),
            RunKind::Train => RunEpochs::Train(self.epoch_lines(id, "train_epochs").await?),
        })
    }

    /// A search's epochs (none for a run of another kind), from 1.
    pub async fn search_epochs(&mut self, id: i64) -> Result<Vec<SearchEpochLine>, QueryError> {
        self.epoch_lines(id, "epochs").await
    }

    /// The rows of `table` (an epoch table) of run `id` as `T`s.
    async fn epoch_lines<T: TableLine>(
        &mut self,
        id: i64,
        table: &str,
    ) -> Result<Vec<T>, QueryError> {
        let sql = format!(
            "SELECT {} FROM {table} WHERE run_id = $1 ORDER BY epoch",
            epoch_columns::<T>()
        );
        self.query(&sql, &[id.into()]).await?.decode(T::read)
    }

    /// The last recorded epoch of a run and its genotype.
    pub async fn last_genotype(&mut self, id: i64) -> Result<Option<(i64, String)>, QueryError> {
        let rows = self
            .query(
                "SELECT epoch, genotype FROM epochs WHERE run_id = $1 ORDER BY epoch DESC LIMIT 1",
                &[id.into()],
            )
            .await?;
        Ok(rows
            .rows
            .first()
            .and_then(|r| Some((r[0].as_i64()?, r[1].as_str()?.to_owned()))))
    }

    /// Where a run stands, as a live page refreshes it: status, progress,
    /// attempts, error, accuracies, device; `None` if there is no such run.
    pub async fn run_state(&mut self, id: i64) -> Result<Option<RunState>, QueryError> {
        let rows = self
            .query(
                "SELECT id, status, epochs_done, epochs_total, attempts, error, final_valid_acc, best_valid_acc, device
                 FROM runs WHERE id = $1",
                &[id.into()],
            )
            .await?;
        Ok(rows.decode(RunState::read)?.pop())
    }

    /// The `limit` done runs of `sweep` ranked by `metric` (a column of
    /// `run_summary`, checked by the caller), every column.
    pub async fn best_runs(
        &mut self,
        sweep: &str,
        metric: &str,
        highest: bool,
        limit: u32,
    ) -> Result<QueryRows, QueryError> {
        self.query(
            &format!(
                "SELECT * FROM run_summary
                 WHERE id IN (SELECT run_id FROM sweep_runs WHERE sweep = $1) AND status = 'done' AND \"{metric}\" IS NOT NULL
                 ORDER BY \"{metric}\" {}, id LIMIT $2",
                if highest { "DESC" } else { "ASC" }
            ),
            &[sweep.into(), i64::from(limit).into()],
        )
        .await
    }

    /// One run's `run_summary` row with its stored config (`runs compare`).
    pub async fn run_with_config(&mut self, id: i64) -> Result<QueryRows, QueryError> {
        self.query(
            "SELECT s.*, r.config_json, r.epochs_total FROM run_summary s JOIN runs r ON r.id = s.id WHERE s.id = $1",
            &[id.into()],
        )
        .await
    }

    /// The runs the database knows among `fingerprints`, by fingerprint.
    pub async fn known_runs(
        &mut self,
        fingerprints: &[&str],
    ) -> Result<HashMap<String, KnownRun>, QueryError> {
        let list = serde_json::to_string(fingerprints).unwrap_or_else(|_| "[]".into());
        let sql = format!(
            "SELECT fingerprint, id, status, epochs_done, epochs_total FROM runs
             WHERE fingerprint IN ({})",
            self.backend().json_list("$1", false)
        );
        let rows = self.query(&sql, &[list.into()]).await?;
        Ok(rows
            .rows
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap_or_default().to_owned(),
                    KnownRun {
                        id: r[1].as_i64().unwrap_or(0),
                        // The CHECK constraint on `runs.status` allows no other text.
                        status: r[2]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(RunStatus::Queued),
                        epochs_done: r[3].as_i64().unwrap_or(0),
                        epochs_total: r[4].as_i64().unwrap_or(0),
                    },
                )
            })
            .collect())
    }

    /// A sweep's row (name, description, file, created, cancelled); `None`
    /// if there is no such sweep.
    pub async fn sweep_header(&mut self, name: &str) -> Result<Option<SweepHeader>, QueryError> {
        let sql = format!(
            "SELECT name, description, file, {} AS created, cancelled FROM sweeps WHERE name = $1",
            self.backend().datetime("created_at")
        );
        let rows = self.query(&sql, &[name.into()]).await?;
        Ok(rows.decode(SweepHeader::read)?.pop())
    }

    /// A sweep's runs in plan order with their progress (`sweep status`).
    pub async fn sweep_progress(
        &mut self,
        name: &str,
    ) -> Result<Vec<SweepRunProgress>, QueryError> {
        self.query(
            "SELECT s.position, r.id, r.status, r.epochs_done, r.epochs_total, r.final_valid_acc, r.best_valid_acc,
                    (SELECT e.valid_acc FROM epochs e WHERE e.run_id = r.id ORDER BY e.epoch DESC LIMIT 1) AS last_acc,
                    r.attempts, r.device, r.wall_s, r.error, r.config_json
             FROM sweep_runs s JOIN runs r ON r.id = s.run_id WHERE s.sweep = $1 ORDER BY s.position, r.id",
            &[name.into()],
        )
        .await?
        .decode(SweepRunProgress::read)
    }
}

/// A sweep at a glance (`ddsas serve`): its runs counted by status, the
/// epochs done and still to run, its epochs' mean wall time and when it
/// last changed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SweepGlance {
    /// Sweep name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Whether `sweep cancel` stopped it.
    pub cancelled: bool,
    /// Registered, UTC text.
    pub created: String,
    /// Runs in the sweep.
    pub runs: i64,
    /// Runs done.
    pub done: i64,
    /// Runs running.
    pub running: i64,
    /// Runs queued.
    pub queued: i64,
    /// Runs failed.
    pub failed: i64,
    /// Runs interrupted (resumed by the next `sweep run`).
    pub interrupted: i64,
    /// Epochs recorded, over the runs.
    pub epochs_done: i64,
    /// Epochs asked for, over the runs.
    pub epochs_total: i64,
    /// Epochs the queued, running and interrupted runs still have to run.
    pub epochs_left: i64,
    /// Mean wall seconds of the sweep's recorded epochs.
    pub epoch_seconds: Option<f64>,
    /// Unix seconds of the last change: an epoch recorded, a run
    /// registered, started or finished.
    pub changed_at: Option<f64>,
}

impl ReadOnlyDb {
    /// Every sweep at a glance, oldest first, or only sweep `only`.
    pub async fn sweep_glances(
        &mut self,
        only: Option<&str>,
    ) -> Result<Vec<SweepGlance>, QueryError> {
        let b = self.backend();
        let sql = format!(
            "WITH ep AS (
                SELECT s.sweep, CAST(avg(e.wall_s) AS DOUBLE PRECISION) AS seconds, max(e.recorded_at) AS last
                FROM sweep_runs s JOIN epochs e ON e.run_id = s.run_id
                WHERE CAST($1 AS TEXT) IS NULL OR s.sweep = CAST($1 AS TEXT) GROUP BY s.sweep)
             SELECT sw.name, sw.description, sw.cancelled, {created},
                count(r.id),
                count(CASE WHEN r.status = 'done' THEN 1 END),
                count(CASE WHEN r.status = 'running' THEN 1 END),
                count(CASE WHEN r.status = 'queued' THEN 1 END),
                count(CASE WHEN r.status = 'failed' THEN 1 END),
                count(CASE WHEN r.status = 'interrupted' THEN 1 END),
                CAST(coalesce(sum(r.epochs_done), 0) AS BIGINT), CAST(coalesce(sum(r.epochs_total), 0) AS BIGINT),
                CAST(coalesce(sum(CASE WHEN r.status IN ('queued', 'running', 'interrupted')
                             THEN {max}(r.epochs_total - r.epochs_done, 0) END), 0) AS BIGINT),
                (SELECT seconds FROM ep WHERE ep.sweep = sw.name),
                CAST({max}(coalesce((SELECT last FROM ep WHERE ep.sweep = sw.name), 0),
                    coalesce(max({max}(r.created_at, coalesce(r.started_at, 0), coalesce(r.finished_at, 0))), 0),
                    sw.created_at) AS DOUBLE PRECISION)
             FROM sweeps sw
             LEFT JOIN sweep_runs s ON s.sweep = sw.name
             LEFT JOIN runs r ON r.id = s.run_id
             WHERE CAST($1 AS TEXT) IS NULL OR sw.name = CAST($1 AS TEXT)
             GROUP BY sw.name ORDER BY sw.created_at, sw.name",
            created = b.datetime("sw.created_at"),
            max = b.greatest(),
        );
        let rows = self
            .query(&sql, &[only.map_or(serde_json::Value::Null, Into::into)])
            .await?;
        let int = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
        Ok(rows
            .rows
            .iter()
            .map(|r| SweepGlance {
                name: r[0].as_str().unwrap_or_default().to_owned(),
                description: r[1].as_str().map(str::to_owned),
                cancelled: int(&r[2]) != 0,
                created: r[3].as_str().unwrap_or_default().to_owned(),
                runs: int(&r[4]),
                done: int(&r[5]),
                running: int(&r[6]),
                queued: int(&r[7]),
                failed: int(&r[8]),
                interrupted: int(&r[9]),
                epochs_done: int(&r[10]),
                epochs_total: int(&r[11]),
                epochs_left: int(&r[12]),
                epoch_seconds: r[13].as_f64(),
                changed_at: r[14].as_f64().filter(|t| *t > 0.0),
            })
            .collect())
    }

    /// A text that changes whenever a run of `sweep` changes status,
    /// records an epoch or is retried (cheap: the runs table only), so a
    /// page can wait for news without re-reading everything.
    pub async fn sweep_stamp(&mut self, sweep: &str) -> Result<String, QueryError> {
        let rows = self
            .query(
                "SELECT count(*), CAST(coalesce(sum(epochs_done), 0) AS BIGINT), CAST(coalesce(sum(attempts), 0) AS BIGINT),
                        count(CASE WHEN status = 'done' THEN 1 END),
                        count(CASE WHEN status = 'running' THEN 1 END),
                        count(CASE WHEN status = 'failed' THEN 1 END),
                        count(CASE WHEN status = 'interrupted' THEN 1 END),
                        CAST(coalesce(max(finished_at), 0) AS DOUBLE PRECISION)
                 FROM runs WHERE id IN (SELECT run_id FROM sweep_runs WHERE sweep = $1)",
                &[sweep.into()],
            )
            .await?;
        Ok(stamp_text(rows.rows.first()))
    }

    /// [`sweep_stamp`](Self::sweep_stamp) for one run.
    pub async fn run_stamp(&mut self, id: i64) -> Result<String, QueryError> {
        let rows = self
            .query(
                "SELECT status, epochs_done, attempts, CAST(coalesce(finished_at, 0) AS DOUBLE PRECISION) FROM runs WHERE id = $1",
                &[id.into()],
            )
            .await?;
        Ok(stamp_text(rows.rows.first()))
    }

    /// The train runs that evaluated search `id` (its cell trained from
    /// scratch), oldest first.
    pub async fn evaluations_of(&mut self, id: i64) -> Result<Vec<i64>, QueryError> {
        let rows = self
            .query(
                "SELECT train_run_id FROM evaluations WHERE search_run_id = $1 ORDER BY train_run_id",
                &[id.into()],
            )
            .await?;
        Ok(rows.rows.iter().filter_map(|r| r[0].as_i64()).collect())
    }

    /// The train runs of search `id`'s cell, oldest first, for `runs
    /// show`.
    pub async fn trainings_of(&mut self, id: i64) -> Result<Vec<Training>, QueryError> {
        self.query(
            "SELECT e.train_run_id, t.status, t.config_json, t.final_test_acc AS test_acc
             FROM evaluations e JOIN runs t ON t.id = e.train_run_id
             WHERE e.search_run_id = $1 ORDER BY e.train_run_id",
            &[id.into()],
        )
        .await?
        .decode(Training::read)
    }
}

fn stamp_text(row: Option<&Vec<serde_json::Value>>) -> String {
    row.map(|r| {
        r.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("/")
    })
    .unwrap_or_default()
}
