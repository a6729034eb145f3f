//! NAS-Bench-201 benchmark accuracy (docs/design.md §3): the imported
//! tables, and the accuracy stored with every NB201 search's epochs and
//! final architecture.
//!
//! A NB201 search trains no cell: the benchmark already knows how well each
//! of its 15,625 architectures trains. So the test accuracy of what a search
//! found is a look-up, stored with the run (columns `nb201_cifar10`,
//! `nb201_cifar100`, `nb201_imagenet16` of `epochs`, `runs` and
//! `run_summary`) when an epoch or the run is recorded, and filled in again
//! for every NB201 run whenever a table is imported, so the order of
//! searching and importing does not matter.

use sqlx::AnyConnection;

use super::error::Context;
use super::{Store, StoreError};

/// The benchmark's datasets, as `(column suffix, dataset name in
/// nb201_accuracy and in `ddsas nb201 import --dataset`)`.
pub const NB201_DATASETS: [(&str, &str); 3] = [
    ("cifar10", "cifar10"),
    ("cifar100", "cifar100"),
    ("imagenet16", "ImageNet16-120"),
];

/// The benchmark accuracy of one architecture, in percent, per dataset of
/// [`NB201_DATASETS`] (None: no table for it, or the architecture is not in
/// it).
#[derive(Debug, Clone, Copy, Default, PartialEq, sqlx::FromRow)]
pub struct Nb201Accuracy {
    /// CIFAR-10 test accuracy (%).
    pub nb201_cifar10: Option<f64>,
    /// CIFAR-100 test accuracy (%).
    pub nb201_cifar100: Option<f64>,
    /// ImageNet16-120 test accuracy (%).
    pub nb201_imagenet16: Option<f64>,
}

impl Nb201Accuracy {
    /// `(dataset name, accuracy)` in [`NB201_DATASETS`] order.
    pub fn by_dataset(&self) -> [(&'static str, Option<f64>); 3] {
        [
            (NB201_DATASETS[0].1, self.nb201_cifar10),
            (NB201_DATASETS[1].1, self.nb201_cifar100),
            (NB201_DATASETS[2].1, self.nb201_imagenet16),
        ]
    }
}

/// `col = (look-up of key_column in dataset's table), ...` for all three
/// datasets: the SET clause of every fill below.
fn set_clause(table: &str, key_column: &str) -> String {
    NB201_DATASETS
        .iter()
        .map(|(col, dataset)| {
            format!(
                "nb201_{col} = (SELECT a.accuracy FROM nb201_accuracy a \
                 WHERE a.arch = {table}.{key_column} AND a.dataset = '{dataset}')"
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fills the benchmark accuracy of one recorded epoch of a NB201 run (a
/// no-op for the DARTS space, whose genotypes are not arch strings).
pub(crate) async fn fill_epoch(
    conn: &mut AnyConnection,
    run_id: i64,
    epoch: i64,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE epochs SET {} WHERE run_id = $1 AND epoch = $2 \
         AND run_id IN (SELECT id FROM runs WHERE space = 'nb201')",
        set_clause("epochs", "genotype")
    );
    sqlx::query(&sql)
        .bind(run_id)
        .bind(epoch)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Fills the benchmark accuracy of a NB201 run's final architecture.
pub(crate) async fn fill_run(conn: &mut AnyConnection, run_id: i64) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE runs SET {} WHERE id = $1 AND space = 'nb201'",
        set_clause("runs", "final_genotype")
    );
    sqlx::query(&sql)
        .bind(run_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Fills every NB201 run's epochs and final architecture (after an import).
async fn fill_all(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let epochs = format!(
        "UPDATE epochs SET {} WHERE run_id IN (SELECT id FROM runs WHERE space = 'nb201')",
        set_clause("epochs", "genotype")
    );
    let runs = format!(
        "UPDATE runs SET {} WHERE space = 'nb201'",
        set_clause("runs", "final_genotype")
    );
    sqlx::query(&epochs).execute(&mut *conn).await?;
    sqlx::query(&runs).execute(conn).await.map(|_| ())
}

impl Store {
    /// The imported NAS-Bench-201 accuracies of one benchmark dataset, as
    /// `(arch string, accuracy in percent)`.
    pub async fn nb201_accuracies(&self, dataset: &str) -> Result<Vec<(String, f64)>, StoreError> {
        sqlx::query_as("SELECT arch, accuracy FROM nb201_accuracy WHERE dataset = $1")
            .bind(dataset)
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("reading the NAS-Bench-201 accuracies of {dataset}"))
    }

    /// The benchmark datasets with an imported table, in
    /// [`NB201_DATASETS`] order.
    pub async fn nb201_imported(&self) -> Result<Vec<&'static str>, StoreError> {
        let present: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT dataset FROM nb201_accuracy")
                .fetch_all(&self.pool)
                .await
                .ctx(|| "listing the imported NAS-Bench-201 tables".to_string())?;
        Ok(NB201_DATASETS
            .iter()
            .map(|(_, d)| *d)
            .filter(|d| present.iter().any(|p| p == d))
            .collect())
    }

    /// The stored benchmark accuracy of a run's final architecture.
    pub async fn nb201_of_run(&self, run_id: i64) -> Result<Nb201Accuracy, StoreError> {
        sqlx::query_as(
            "SELECT nb201_cifar10, nb201_cifar100, nb201_imagenet16 FROM runs WHERE id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading the NAS-Bench-201 accuracy of run {run_id}"))?
        .ok_or(StoreError::RunNotFound(run_id))
    }

    /// Stores NAS-Bench-201 accuracies (percent) of one dataset in one
    /// transaction, replacing earlier imports of the same (arch, dataset),
    /// and fills in the benchmark accuracy of every NB201 run already
    /// recorded; returns how many rows were written.
    pub async fn import_nb201(
        &self,
        dataset: &str,
        source: &str,
        rows: &[(String, f64)],
    ) -> Result<u64, StoreError> {
        let what = || {
            format!(
                "importing {} NAS-Bench-201 accuracies of {dataset}",
                rows.len()
            )
        };
        let mut tx = self.begin_write().await.ctx(what)?;
        let mut written = 0;
        for chunk in rows.chunks(256) {
            let mut values = super::values::Values::new(
                "INSERT INTO nb201_accuracy (arch, dataset, accuracy, source) ",
            );
            for (arch, acc) in chunk {
                values
                    .row()
                    .bind(arch.as_str())
                    .bind(dataset)
                    .bind(*acc)
                    .bind(source);
            }
            written += values
                .execute(
                    " ON CONFLICT (arch, dataset) DO UPDATE SET accuracy = excluded.accuracy, source = excluded.source",
                    &mut tx,
                )
                .await
                .ctx(what)?;
        }
        fill_all(&mut tx).await.ctx(what)?;
        tx.commit().await.ctx(what)?;
        Ok(written)
    }
}
