//! Per-epoch records of every kind of run (docs/design.md §3), written in
//! one transaction so that a crash leaves either the whole epoch or none: a
//! search's `EpochRecord` becomes rows of `epochs`, `sampling_counts`,
//! `subspaces`, `ratio_hist` and `steps`, a train run's `TrainEpoch` a row
//! of `train_epochs`.

use sqlx::AnyConnection;

use super::error::Context;
use super::values::Values;
use super::{EpochRow, RunKind, Store, StoreError};
use crate::arch::metrics::{EpochRecord, TrainEpoch, RATIO_BINS};
use crate::arch::space::SearchSpace;

/// Rows per multi-row `INSERT`: few statements per epoch (a DARTS epoch has
/// 224 sampling counts), far below SQLite's limit of 32766 bound values.
const ROWS_PER_INSERT: usize = 128;

/// One finished epoch of a run, as the store writes it. The kinds differ
/// in their tables and columns (and a search's rows name cells, edges and
/// ops by its space); the steps around them are [`Store::record_epoch`]'s.
#[derive(Debug, Clone, Copy)]
pub enum EpochOf<'a> {
    /// An epoch of a search, with the space its indices refer to.
    Search(&'a SearchSpace, &'a EpochRecord),
    /// An epoch of a train run.
    Train(&'a TrainEpoch),
}

impl EpochOf<'_> {
    /// The kind of run the epoch belongs to.
    pub fn kind(self) -> RunKind {
        match self {
            EpochOf::Search(..) => RunKind::Search,
            EpochOf::Train(_) => RunKind::Train,
        }
    }

    /// The epoch's number (0-based).
    fn number(self) -> i64 {
        match self {
            EpochOf::Search(_, rec) => i64::from(rec.epoch),
            EpochOf::Train(rec) => rec.epoch,
        }
    }
}

/// What a kind of run keeps per epoch: the tables a redone or dropped
/// epoch is deleted from, and how the run's best accuracy is recomputed
/// from what remains. One row per kind, so that the write and the
/// truncation have one body each.
struct EpochTables {
    /// Deletes every per-epoch row of run `$1` from epoch `$2` on.
    delete: &'static [&'static str],
    /// Sets `epochs_done` (`$2`), the heartbeat (`$3`) and the best
    /// accuracy of run `$1`.
    progress: &'static str,
}

const SEARCH_TABLES: EpochTables = EpochTables {
    delete: &[
        "DELETE FROM epochs WHERE run_id = $1 AND epoch >= $2",
        "DELETE FROM sampling_counts WHERE run_id = $1 AND epoch >= $2",
        "DELETE FROM subspaces WHERE run_id = $1 AND epoch >= $2",
        "DELETE FROM ratio_hist WHERE run_id = $1 AND epoch >= $2",
        "DELETE FROM steps WHERE run_id = $1 AND epoch >= $2",
    ],
    progress: "UPDATE runs SET epochs_done = $2, heartbeat_at = $3,
                    best_valid_acc = (SELECT max(valid_acc) FROM epochs WHERE run_id = $1)
             WHERE id = $1",
};

const TRAIN_TABLES: EpochTables = EpochTables {
    delete: &["DELETE FROM train_epochs WHERE run_id = $1 AND epoch >= $2"],
    progress: "UPDATE runs SET epochs_done = $2, heartbeat_at = $3,
                    best_test_acc = (SELECT max(test_acc) FROM train_epochs WHERE run_id = $1)
             WHERE id = $1",
};

/// The per-epoch tables of `kind`.
fn tables(kind: RunKind) -> &'static EpochTables {
    match kind {
        RunKind::Search => &SEARCH_TABLES,
        RunKind::Train => &TRAIN_TABLES,
    }
}

impl Store {
    /// Writes one epoch of a run of any kind and everything it carries in
    /// one transaction.
    ///
    /// First deletes this run's rows from the epoch on in every per-epoch
    /// table of its kind, so that redoing an epoch after a crash replaces
    /// it and never duplicates; then inserts (for a search, with the
    /// NAS-Bench-201 accuracy of the epoch's architecture in the NB201
    /// space); then moves `runs.epochs_done`, the best accuracy and the
    /// heartbeat. A search's cell, edge and op indices are checked against
    /// its space and stored as names.
    pub async fn record_epoch(&self, run_id: i64, epoch: EpochOf<'_>) -> Result<(), StoreError> {
        self.reconnecting(|| self.record_epoch_once(run_id, epoch))
            .await
    }

    async fn record_epoch_once(&self, run_id: i64, epoch: EpochOf<'_>) -> Result<(), StoreError> {
        let (kind, number) = (epoch.kind(), epoch.number());
        let what = || format!("recording epoch {number} of {} {run_id}", kind.noun());
        let rows =
            match epoch {
                EpochOf::Search(space, rec) => Some(NamedRows::new(space, rec).map_err(
                    |message| StoreError::Invalid {
                        what: format!("epoch {number} of run {run_id}"),
                        message,
                    },
                )?),
                EpochOf::Train(_) => None,
            };
        let mut tx = self.begin_write().await.ctx(what)?;
        require_in(&mut tx, run_id).await?;
        delete_from_epoch(&mut tx, kind, run_id, number)
            .await
            .ctx(what)?;
        match epoch {
            EpochOf::Search(_, rec) => {
                insert_epoch(&mut tx, run_id, rec, self.now())
                    .await
                    .ctx(what)?;
                super::nb201::fill_epoch(&mut tx, run_id, number)
                    .await
                    .ctx(what)?;
            }
            EpochOf::Train(rec) => super::train::insert_epoch(&mut tx, run_id, rec)
                .await
                .ctx(what)?,
        }
        if let Some(rows) = rows {
            rows.insert(&mut tx, run_id, number).await.ctx(what)?;
        }
        update_progress(&mut tx, kind, run_id, number + 1, self.now())
            .await
            .ctx(what)?;
        tx.commit().await.ctx(what)
    }

    /// Drops every record of a run of `kind` after `last_kept_epoch` (all
    /// of them for `None`) and rewinds `epochs_done` and the best accuracy
    /// to match: used when a run resumes from a checkpoint older than the
    /// database. Repeated while the connection is lost, like an epoch
    /// record.
    pub async fn truncate_after(
        &self,
        run_id: i64,
        kind: RunKind,
        last_kept_epoch: Option<u32>,
    ) -> Result<(), StoreError> {
        self.reconnecting(|| self.truncate_after_once(run_id, kind, last_kept_epoch))
            .await
    }

    async fn truncate_after_once(
        &self,
        run_id: i64,
        kind: RunKind,
        last_kept_epoch: Option<u32>,
    ) -> Result<(), StoreError> {
        let noun = kind.noun();
        let what = || match last_kept_epoch {
            Some(e) => format!(
                "dropping the records of {noun} {run_id} after epoch {}",
                e + 1
            ),
            None => format!("dropping the records of {noun} {run_id}"),
        };
        let first_dropped = last_kept_epoch.map_or(0, |e| i64::from(e) + 1);
        let mut tx = self.begin_write().await.ctx(what)?;
        require_in(&mut tx, run_id).await?;
        delete_from_epoch(&mut tx, kind, run_id, first_dropped)
            .await
            .ctx(what)?;
        update_progress(&mut tx, kind, run_id, first_dropped, self.now())
            .await
            .ctx(what)?;
        tx.commit().await.ctx(what)
    }

    /// The recorded epochs of a run, in order.
    pub async fn epochs(&self, run_id: i64) -> Result<Vec<EpochRow>, StoreError> {
        sqlx::query_as("SELECT * FROM epochs WHERE run_id = $1 ORDER BY epoch")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("reading the epochs of run {run_id}"))
    }
}

/// `RunNotFound` unless the run exists (checked inside the write
/// transaction, before a foreign-key error could say it less clearly).
async fn require_in(conn: &mut AnyConnection, run_id: i64) -> Result<(), StoreError> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM runs WHERE id = $1")
        .bind(run_id)
        .fetch_optional(conn)
        .await
        .ctx(|| format!("looking up run {run_id}"))?;
    exists.map(|_| ()).ok_or(StoreError::RunNotFound(run_id))
}

async fn delete_from_epoch(
    conn: &mut AnyConnection,
    kind: RunKind,
    run_id: i64,
    first: i64,
) -> Result<(), sqlx::Error> {
    for sql in tables(kind).delete {
        sqlx::query(sql)
            .bind(run_id)
            .bind(first)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_epoch(
    conn: &mut AnyConnection,
    run_id: i64,
    rec: &EpochRecord,
    now: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO epochs (run_id, epoch, train_acc, train_loss, valid_acc, valid_loss, lr, tau,
                             genotype, skip_normal, skip_reduce, cosine_distance, wall_s,
                             images_per_s, peak_mem_bytes, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(run_id)
    .bind(i64::from(rec.epoch))
    .bind(rec.train_acc)
    .bind(rec.train_loss)
    .bind(rec.valid_acc)
    .bind(rec.valid_loss)
    .bind(rec.lr)
    .bind(rec.tau)
    .bind(&rec.genotype)
    .bind(i64::from(rec.skip_normal))
    .bind(rec.skip_reduce.map(i64::from))
    .bind(rec.cosine_distance)
    .bind(rec.wall_s)
    .bind(rec.images_per_s)
    .bind(rec.peak_mem_bytes)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets `epochs_done` and recomputes the run's best accuracy from the
/// epochs of its kind that remain (a redo or truncation may have removed
/// the best one); the write is also a sign of life.
async fn update_progress(
    conn: &mut AnyConnection,
    kind: RunKind,
    run_id: i64,
    epochs_done: i64,
    now: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(tables(kind).progress)
        .bind(run_id)
        .bind(epochs_done)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The list rows of one epoch with indices turned into names, built (and
/// checked) before the write lock is taken.
struct NamedRows<'a> {
    edge_labels: Vec<String>,
    sampling: Vec<SamplingRow>,
    subspaces: Vec<SubspaceRow>,
    ratios: Vec<RatioRow>,
    rec: &'a EpochRecord,
}

struct SamplingRow {
    cell: &'static str,
    edge: usize,
    op: &'static str,
    count: i64,
}

struct SubspaceRow {
    iteration: i64,
    cell: &'static str,
    size: i64,
    combinations: i64,
}

struct RatioRow {
    cell: &'static str,
    bin_index: usize,
    count: i64,
}

impl<'a> NamedRows<'a> {
    fn new(space: &SearchSpace, rec: &'a EpochRecord) -> Result<Self, String> {
        Ok(NamedRows {
            edge_labels: (0..space.edges()).map(|e| space.edge_label(e)).collect(),
            sampling: sampling_rows(space, rec)?,
            subspaces: subspace_rows(space, rec)?,
            ratios: ratio_rows(space, rec)?,
            rec,
        })
    }

    async fn insert(
        &self,
        conn: &mut AnyConnection,
        run_id: i64,
        epoch: i64,
    ) -> Result<(), sqlx::Error> {
        let labels = &self.edge_labels;
        insert_rows(
            conn,
            "INSERT INTO sampling_counts (run_id, epoch, cell, edge, edge_label, op, count) ",
            &self.sampling,
            |b, r| {
                b.bind(run_id).bind(epoch).bind(r.cell).bind(r.edge as i64);
                b.bind(labels[r.edge].as_str()).bind(r.op).bind(r.count);
            },
        )
        .await?;
        insert_rows(
            conn,
            "INSERT INTO subspaces (run_id, iteration, epoch, cell, size, combinations) ",
            &self.subspaces,
            |b, r| {
                b.bind(run_id).bind(r.iteration).bind(epoch).bind(r.cell);
                b.bind(r.size).bind(r.combinations);
            },
        )
        .await?;
        insert_rows(
            conn,
            "INSERT INTO ratio_hist (run_id, epoch, cell, bin, bin_index, count) ",
            &self.ratios,
            |b, r| {
                b.bind(run_id).bind(epoch).bind(r.cell);
                b.bind(RATIO_BINS[r.bin_index])
                    .bind(r.bin_index as i64)
                    .bind(r.count);
            },
        )
        .await?;
        insert_rows(
            conn,
            "INSERT INTO steps (run_id, step, epoch, cosine_distance, minibatch_acc) ",
            &self.rec.steps,
            |b, s| {
                b.bind(run_id).bind(int(s.step)).bind(epoch);
                b.bind(s.cosine_distance).bind(s.minibatch_acc);
            },
        )
        .await
    }
}

/// Inserts `rows` with multi-row `VALUES` lists of at most
/// `ROWS_PER_INSERT` rows. Each distinct statement text is prepared once
/// per connection and reused from sqlx's statement cache.
async fn insert_rows<'r, T>(
    conn: &mut AnyConnection,
    head: &'static str,
    rows: &'r [T],
    mut push: impl FnMut(&mut Values<'r>, &'r T),
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut values = Values::new(head);
        for row in chunk {
            push(values.row(), row);
        }
        values.execute("", &mut *conn).await?;
    }
    Ok(())
}

fn cell_name(space: &SearchSpace, cell: usize) -> Result<&'static str, String> {
    space.cell_types().get(cell).copied().ok_or_else(|| {
        format!(
            "cell index {cell} is outside the {} space, which has {} cell type(s)",
            space.kind.name(),
            space.cell_types().len()
        )
    })
}

fn sampling_rows(space: &SearchSpace, rec: &EpochRecord) -> Result<Vec<SamplingRow>, String> {
    rec.sampling_counts
        .iter()
        .map(|s| {
            if s.edge >= space.edges() {
                return Err(format!(
                    "edge index {} is outside the {} edges of a cell",
                    s.edge,
                    space.edges()
                ));
            }
            let op = space.ops().get(s.op).ok_or_else(|| {
                format!(
                    "op index {} is outside the {} ops of the space",
                    s.op,
                    space.num_ops()
                )
            })?;
            Ok(SamplingRow {
                cell: cell_name(space, s.cell)?,
                edge: s.edge,
                op,
                count: int(s.count),
            })
        })
        .collect()
}

fn subspace_rows(space: &SearchSpace, rec: &EpochRecord) -> Result<Vec<SubspaceRow>, String> {
    rec.subspaces
        .iter()
        .map(|s| {
            Ok(SubspaceRow {
                iteration: int(s.iteration),
                cell: cell_name(space, s.cell)?,
                size: i64::from(s.size),
                combinations: int(s.combinations),
            })
        })
        .collect()
}

fn ratio_rows(space: &SearchSpace, rec: &EpochRecord) -> Result<Vec<RatioRow>, String> {
    let mut rows = Vec::with_capacity(rec.ratio_hist.len() * RATIO_BINS.len());
    for (cell, hist) in rec.ratio_hist.iter().enumerate() {
        let cell = cell_name(space, cell)?;
        for (bin_index, &count) in hist.iter().enumerate() {
            rows.push(RatioRow {
                cell,
                bin_index,
                count: int(count),
            });
        }
    }
    Ok(rows)
}

/// A count as a SQLite integer; counts never come near `i64::MAX`, and
/// saturating beats failing an epoch over it.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
