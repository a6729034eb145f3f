//! What the runs recorded beyond their final result, as the figures read
//! it: per-epoch points, per-step records, sampling counts, sampled
//! subspaces, ratio histograms (each per run), and the imported
//! NAS-Bench-201 accuracies that turn a derived architecture into benchmark
//! accuracy.
//!
//! Why loaded apart from the runs: each table is read whole for a sweep
//! (`store::report_queries`), and only for the figures that draw it, so a
//! single figure reads what it needs and `report all` reads each table
//! once. The figures' `compute` functions then only look things up here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Serialize, Serializer};

use super::labels::dataset_label;
use super::ReportError;
use crate::arch::space::SpaceKind;
use crate::data::DatasetKind;
use crate::store::SubspacePoint;
use crate::store::{EpochPoint, RatioPoint, ReportRun, SamplingPoint, StepBucket, Store};

/// A table of the run history that some figures draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    /// `epochs` (Figs. 8, 10 per epoch).
    Epochs,
    /// `steps`, summed to at most [`STEP_POINTS`] points per run (Fig. 10
    /// per step).
    Steps,
    /// `sampling_counts` at each run's last epoch (Fig. 9).
    Sampling,
    /// `subspaces` (Fig. 12 a/c).
    Subspaces,
    /// `ratio_hist` at each run's last epoch (Fig. 12 b).
    RatioHist,
    /// `nb201_accuracy` for the sweep's datasets (Figs. 8, 10 per epoch).
    Nb201,
}

/// The recorded tables of a sweep's runs, each per run id and in the
/// order the store returns them (by epoch, step, cell, iteration, bin).
#[derive(Debug, Clone, Default)]
pub struct Records {
    loaded: BTreeSet<Table>,
    /// Per-epoch points.
    pub epochs: BTreeMap<i64, Vec<EpochPoint>>,
    /// Per-step records, summed over [`step_width`](Self::step_width)
    /// steps per point.
    pub steps: BTreeMap<i64, Vec<StepBucket>>,
    /// How many steps each run logged.
    pub step_counts: BTreeMap<i64, usize>,
    /// Steps per point of [`steps`](Self::steps) (1 until a run logged
    /// more steps than [`STEP_POINTS`]).
    pub step_width: usize,
    /// Sampling counts at the run's last epoch (cumulative: the whole run).
    pub sampling: BTreeMap<i64, Vec<SamplingPoint>>,
    /// Every sampled subspace.
    pub subspaces: BTreeMap<i64, Vec<SubspacePoint>>,
    /// Ratio histogram at the run's last epoch (cumulative: the whole run).
    pub ratio_hist: BTreeMap<i64, Vec<RatioPoint>>,
    /// Imported NAS-Bench-201 accuracies.
    pub nb201: Nb201Lookup,
}

/// A row of a per-run table.
trait RunRow {
    /// The run it belongs to.
    fn run_id(&self) -> i64;
}

macro_rules! run_rows {
    ($($t:ty),*) => {
        $(impl RunRow for $t {
            fn run_id(&self) -> i64 {
                self.run_id
            }
        })*
    };
}

run_rows!(
    EpochPoint,
    StepBucket,
    SamplingPoint,
    SubspacePoint,
    RatioPoint
);

/// `rows` per run, keeping only the runs in `keep`.
fn by_run<T: RunRow>(rows: Vec<T>, keep: &BTreeSet<i64>) -> BTreeMap<i64, Vec<T>> {
    let mut map: BTreeMap<i64, Vec<T>> = BTreeMap::new();
    for row in rows.into_iter().filter(|r| keep.contains(&r.run_id())) {
        map.entry(row.run_id()).or_default().push(row);
    }
    map
}

impl Records {
    /// Whether `table` has been loaded.
    pub fn has(&self, table: Table) -> bool {
        self.loaded.contains(&table)
    }

    /// Reads `tables` of sweep `sweep` for `runs` (rows of other runs are
    /// dropped).
    pub async fn load(
        &mut self,
        store: &Store,
        sweep: &str,
        runs: &[ReportRun],
        tables: &[Table],
    ) -> Result<(), ReportError> {
        let keep: BTreeSet<i64> = runs.iter().map(|r| r.id).collect();
        for &table in tables {
            match table {
                Table::Epochs => self.epochs = by_run(store.report_epochs(sweep).await?, &keep),
                Table::Steps => self.load_steps(store, sweep, &keep).await?,
                Table::Sampling => {
                    self.sampling = by_run(store.report_final_sampling(sweep).await?, &keep)
                }
                Table::Subspaces => {
                    self.subspaces = by_run(store.report_subspaces(sweep).await?, &keep)
                }
                Table::RatioHist => {
                    self.ratio_hist = by_run(store.report_final_ratio_hist(sweep).await?, &keep)
                }
                Table::Nb201 => {
                    let datasets: Vec<DatasetKind> = runs.iter().map(|r| r.dataset).collect();
                    self.nb201 = Nb201Lookup::load(store, &datasets).await?;
                }
            }
            self.loaded.insert(table);
        }
        Ok(())
    }

    /// Reads the steps of the runs in `keep`, as many points per run as a
    /// picture has pixel columns at most: one per step for short
    /// searches, sums over equal buckets of steps for long ones.
    async fn load_steps(
        &mut self,
        store: &Store,
        sweep: &str,
        keep: &BTreeSet<i64>,
    ) -> Result<(), ReportError> {
        self.step_counts = store
            .report_step_counts(sweep)
            .await?
            .into_iter()
            .filter(|(id, _)| keep.contains(id))
            .map(|(id, n)| (id, usize::try_from(n).unwrap_or(0)))
            .collect();
        let longest = self.step_counts.values().copied().max().unwrap_or(0);
        self.step_width = step_width(longest);
        let width = i64::try_from(self.step_width).unwrap_or(i64::MAX);
        self.steps = by_run(store.report_step_buckets(sweep, width).await?, keep);
        Ok(())
    }

    /// Drops the records of runs not in `ids`.
    pub fn retain(&mut self, ids: &[i64]) {
        fn keep<T>(map: &mut BTreeMap<i64, Vec<T>>, ids: &[i64]) {
            map.retain(|id, _| ids.contains(id));
        }
        keep(&mut self.epochs, ids);
        keep(&mut self.steps, ids);
        self.step_counts.retain(|id, _| ids.contains(id));
        keep(&mut self.sampling, ids);
        keep(&mut self.subspaces, ids);
        keep(&mut self.ratio_hist, ids);
    }

    /// The epochs of run `id` (none if it recorded none).
    pub fn epochs_of(&self, id: i64) -> &[EpochPoint] {
        self.epochs.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The step points of run `id` (none if it logged none).
    pub fn steps_of(&self, id: i64) -> &[StepBucket] {
        self.steps.get(&id).map_or(&[], Vec::as_slice)
    }

    /// How many steps run `id` logged.
    pub fn step_count(&self, id: i64) -> usize {
        self.step_counts.get(&id).copied().unwrap_or(0)
    }

    /// Every epoch's accuracy (%) of `runs` (one dataset and space), as
    /// `(epoch, accuracy)`, and where it comes from (`None` without runs).
    pub fn epoch_accuracy(&self, runs: &[&ReportRun]) -> (Vec<(i64, f64)>, Option<AccSource>) {
        let mut points = Vec::new();
        let mut source = None;
        for r in runs {
            let (pts, src) = self
                .nb201
                .epoch_accuracy(r.space, r.dataset, self.epochs_of(r.id));
            points.extend(pts.into_iter().filter_map(|(e, a)| a.map(|a| (e, a))));
            AccSource::merge(&mut source, src);
        }
        (points, source)
    }
}

/// The most points a run's per-step line has: a figure's plot is narrower
/// than this many pixels, so more points would draw the same picture at
/// a multiple of the time and the file size.
pub const STEP_POINTS: usize = 1000;

/// Steps per point for runs of at most `longest` steps: 1 up to
/// [`STEP_POINTS`], else the fewest that keep a run under that many points.
pub fn step_width(longest: usize) -> usize {
    longest.div_ceil(STEP_POINTS).max(1)
}

/// Imported NAS-Bench-201 accuracies, per benchmark dataset, in percent.
#[derive(Debug, Clone, Default)]
pub struct Nb201Lookup {
    tables: HashMap<String, HashMap<String, f64>>,
}

/// Which accuracy an accuracy panel shows. Serialised as its words
/// ([`AccSource::text`]), the sidecars' `accuracy_source`.
#[derive(Debug, Clone, PartialEq)]
pub enum AccSource {
    /// The benchmark accuracy of each epoch's derived architecture, from
    /// the table imported for this dataset; `missing` epochs' architectures
    /// were not in it.
    Benchmark {
        /// Benchmark dataset name.
        dataset: String,
        /// Epoch points whose architecture is not in the table.
        missing: usize,
    },
    /// The search's valid accuracy (why: the text).
    Valid(String),
    /// The accuracy of each step's weight minibatch (the only accuracy a
    /// step records).
    Minibatch,
}

impl AccSource {
    /// Adds `src` (of one more run) to what a panel shows so far: the first
    /// run's source, with the benchmark's missing epochs summed.
    pub fn merge(acc: &mut Option<AccSource>, src: AccSource) {
        match (acc, src) {
            (
                Some(AccSource::Benchmark { missing, .. }),
                AccSource::Benchmark { missing: m, .. },
            ) => *missing += m,
            (s @ None, src) => *s = Some(src),
            _ => {}
        }
    }

    /// Words for captions and sidecars.
    pub fn text(&self) -> String {
        match self {
            AccSource::Benchmark { dataset, missing: 0 } => {
                format!("NAS-Bench-201 {dataset} accuracy of each epoch's derived architecture")
            }
            AccSource::Benchmark { dataset, missing } => format!(
                "NAS-Bench-201 {dataset} accuracy of each epoch's derived architecture ({missing} epoch(s) whose architecture is not in the imported table are left out)"
            ),
            AccSource::Valid(why) => why.clone(),
            AccSource::Minibatch => "weight-minibatch accuracy of each step".into(),
        }
    }

    /// The y axis description of its panel.
    pub fn axis(&self) -> &'static str {
        match self {
            AccSource::Benchmark { .. } => "benchmark accuracy (%)",
            AccSource::Valid(_) => "search valid accuracy (%)",
            AccSource::Minibatch => "minibatch accuracy (%)",
        }
    }
}

impl Default for AccSource {
    /// The search's valid accuracy, for a panel without runs to ask.
    fn default() -> Self {
        AccSource::Valid("search valid accuracy".into())
    }
}

impl Serialize for AccSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl Nb201Lookup {
    /// Loads the tables of the benchmark datasets that `datasets` (search
    /// datasets) map to.
    pub async fn load(store: &Store, datasets: &[DatasetKind]) -> Result<Nb201Lookup, ReportError> {
        let mut lookup = Nb201Lookup::default();
        for &d in datasets {
            let Some(bench) = benchmark_dataset(d) else {
                continue;
            };
            if lookup.tables.contains_key(bench) {
                continue;
            }
            let rows = store.nb201_accuracies(bench).await?;
            lookup = lookup.with_table(bench, rows);
        }
        Ok(lookup)
    }

    /// This look-up with `rows` (`(arch string, accuracy in percent)`, as
    /// `nb201_accuracy` holds them) as the table of benchmark dataset
    /// `bench`. No rows, no table.
    pub fn with_table(mut self, bench: &str, rows: Vec<(String, f64)>) -> Nb201Lookup {
        if !rows.is_empty() {
            self.tables
                .insert(bench.to_string(), rows.into_iter().collect());
        }
        self
    }

    /// Per-epoch accuracy in percent of a run in `space` on `dataset`:
    /// the benchmark accuracy of each epoch's derived architecture when a
    /// table for the dataset was imported (NB201 space only), else the
    /// search's valid accuracy.
    pub fn epoch_accuracy(
        &self,
        space: SpaceKind,
        dataset: DatasetKind,
        epochs: &[EpochPoint],
    ) -> (Vec<(i64, Option<f64>)>, AccSource) {
        let table = (space == SpaceKind::Nb201)
            .then(|| benchmark_dataset(dataset))
            .flatten()
            .and_then(|b| self.tables.get(b).map(|t| (b, t)));
        let Some((bench, table)) = table else {
            let points = epochs
                .iter()
                .map(|e| (e.epoch, Some(100.0 * e.valid_acc)))
                .collect();
            return (points, AccSource::Valid(valid_why(space, dataset)));
        };
        let points: Vec<(i64, Option<f64>)> = epochs
            .iter()
            .map(|e| (e.epoch, table.get(&e.genotype).copied()))
            .collect();
        let missing = points.iter().filter(|(_, a)| a.is_none()).count();
        let source = AccSource::Benchmark {
            dataset: bench.into(),
            missing,
        };
        (points, source)
    }
}

/// Why a run's accuracy panel shows the search's valid accuracy.
fn valid_why(space: SpaceKind, dataset: DatasetKind) -> String {
    if space != SpaceKind::Nb201 {
        return "search valid accuracy".to_string();
    }
    match benchmark_dataset(dataset) {
        None => format!(
            "search valid accuracy (NAS-Bench-201 has no {} table)",
            dataset_label(dataset)
        ),
        Some(b) => format!(
            "search valid accuracy (no NAS-Bench-201 table imported for {b}; `ddsas nb201 import FILE --dataset {b}` adds one)"
        ),
    }
}

/// The NAS-Bench-201 dataset a search dataset's architectures are looked up in.
pub fn benchmark_dataset(dataset: DatasetKind) -> Option<&'static str> {
    match dataset {
        DatasetKind::Cifar10 => Some("cifar10"),
        DatasetKind::Cifar100 => Some("cifar100"),
        DatasetKind::Digits | DatasetKind::ImageNet => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::run;

    fn epoch(run_id: i64, epoch: i64, valid_acc: f64, genotype: &str) -> EpochPoint {
        EpochPoint {
            run_id,
            epoch,
            valid_acc,
            skip_normal: 0,
            cosine_distance: None,
            genotype: genotype.into(),
        }
    }

    #[test]
    fn benchmark_accuracy_where_a_table_was_imported() {
        let lookup = Nb201Lookup::default()
            .with_table("cifar10", vec![("a".into(), 90.0), ("b".into(), 80.0)]);
        let epochs = [epoch(1, 0, 0.5, "a"), epoch(1, 1, 0.6, "c")];
        let (pts, src) = lookup.epoch_accuracy(SpaceKind::Nb201, DatasetKind::Cifar10, &epochs);
        assert_eq!(pts, vec![(0, Some(90.0)), (1, None)]);
        assert_eq!(
            src,
            AccSource::Benchmark {
                dataset: "cifar10".into(),
                missing: 1
            }
        );
        assert!(src
            .text()
            .contains("1 epoch(s) whose architecture is not in"));
        // The DARTS space has no benchmark: valid accuracy, in percent.
        let (pts, src) = lookup.epoch_accuracy(SpaceKind::Darts, DatasetKind::Cifar10, &epochs);
        assert_eq!(pts, vec![(0, Some(50.0)), (1, Some(60.0))]);
        assert_eq!(src.text(), "search valid accuracy");
        let (_, src) =
            Nb201Lookup::default().epoch_accuracy(SpaceKind::Nb201, DatasetKind::Cifar100, &epochs);
        assert!(src
            .text()
            .contains("`ddsas nb201 import FILE --dataset cifar100`"));
    }

    #[test]
    fn a_panels_source_sums_the_missing_epochs_of_its_runs() {
        let mut records = Records {
            nb201: Nb201Lookup::default().with_table("cifar10", vec![("a".into(), 91.0)]),
            ..Records::default()
        };
        records
            .epochs
            .insert(1, vec![epoch(1, 0, 0.5, "a"), epoch(1, 1, 0.5, "x")]);
        records.epochs.insert(2, vec![epoch(2, 0, 0.5, "y")]);
        let r1 = run(1, "ddsas").on("cifar10", "nb201").build();
        let r2 = run(2, "ddsas").on("cifar10", "nb201").build();
        let (points, source) = records.epoch_accuracy(&[&r1, &r2]);
        assert_eq!(points, vec![(0, 91.0)]);
        assert_eq!(
            source,
            Some(AccSource::Benchmark {
                dataset: "cifar10".into(),
                missing: 2
            })
        );
        assert_eq!(
            serde_json::to_value(AccSource::Minibatch).ok(),
            Some("weight-minibatch accuracy of each step".into())
        );
    }
}
