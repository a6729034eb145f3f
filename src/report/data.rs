//! The runs of one sweep as the figures see them (with what they recorded,
//! [`Records`]), names for people, and the split of runs into *settings*,
//! the series of Figs. 8, 9, 10 and the columns of Table 5.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::arch::space::SpaceKind;
use crate::config::Method;
use crate::data::DatasetKind;
use crate::store::{DbLocation, ReportRun, RunStatus, Store};

use super::labels::{group_label, method_label, plural, runs_text};
use super::records::Records;
use super::trainings::Choice;
use super::ReportError;
use crate::sweep::Evaluate;

/// How runs made under older definitions are counted among those not drawn.
pub const OUTDATED: &str = "under older definitions";

/// The runs of one sweep that figures draw: the `done` ones. Runs still
/// queued, running, failed or interrupted are counted (for the notes) but
/// never drawn, because a partial run would bias every mean it enters.
#[derive(Debug, Clone)]
pub struct SweepData {
    /// Sweep name.
    pub name: String,
    /// Sweep file, if the sweep recorded it (for "run `ddsas sweep run FILE`").
    pub file: Option<String>,
    /// Done runs, by id.
    pub runs: Vec<ReportRun>,
    /// Status → count of the sweep's runs that are not done.
    pub not_done: BTreeMap<String, usize>,
    /// The `--where` condition the runs were picked by, if any.
    pub condition: Option<String>,
    /// What the runs recorded, for the tables loaded so far.
    pub records: Records,
    /// The sweep's `evaluate:`, as registered (the train config that is
    /// the sweep's own), if it has one.
    pub evaluate: Option<Evaluate>,
    /// Which trainings give the runs their `test_acc`, so that trainings
    /// under different configs are never averaged.
    pub training: Choice,
}

impl SweepData {
    /// Loads sweep `name` from `store` (whose file is `db`, for messages).
    ///
    /// Errors: the sweep does not exist (the message lists those that do),
    /// it has no runs, or none of them is done.
    pub async fn load(
        store: &Store,
        db: &DbLocation,
        name: &str,
    ) -> Result<SweepData, ReportError> {
        let sweeps = store.sweep_infos().await?;
        let Some(info) = sweeps.iter().find(|s| s.name == name) else {
            let known = if sweeps.is_empty() {
                "the database has no sweeps yet; run one first, e.g. `ddsas sweep run sweeps/demo.yaml`".to_string()
            } else {
                format!(
                    "known sweeps: {}",
                    sweeps
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(ReportError::UnknownSweep {
                sweep: name.into(),
                db: db.to_string(),
                known,
            });
        };
        let all = store.report_runs(name).await?;
        let mut not_done = BTreeMap::new();
        let mut runs = Vec::new();
        for run in all {
            if run.outdated() {
                *not_done.entry(OUTDATED.to_string()).or_insert(0) += 1;
            } else if run.status == RunStatus::Done {
                runs.push(run);
            } else {
                *not_done.entry(run.status.to_string()).or_insert(0) += 1;
            }
        }
        let mut data = SweepData {
            name: name.into(),
            file: info.file.clone(),
            runs,
            not_done,
            condition: None,
            records: Records::default(),
            evaluate: info
                .spec_yaml
                .as_deref()
                .and_then(crate::sweep::stored_evaluate),
            training: Choice::Untrained,
        };
        data.choose_trainings();
        if data.runs.is_empty() {
            let missing = if data.not_done.is_empty() {
                "has no runs".to_string()
            } else {
                format!("has no done runs ({})", data.not_done_text())
            };
            return Err(ReportError::cannot(
                "report",
                name,
                missing,
                data.run_hint(None),
            ));
        }
        Ok(data)
    }

    /// Keeps only the runs in `ids`, picked by `condition` (the user's
    /// `--where`, named in every caption). Errors if no done run is left.
    pub fn restrict(&mut self, ids: &[i64], condition: &str) -> Result<(), ReportError> {
        self.runs.retain(|r| ids.contains(&r.id));
        self.records.retain(ids);
        self.condition = Some(condition.to_string());
        self.choose_trainings();
        if self.runs.is_empty() {
            return Err(ReportError::cannot(
                "report",
                &self.name,
                format!("has no done run where {condition}"),
                "loosen --where; `ddsas runs list --sweep NAME --where ...` shows what it picks",
            ));
        }
        Ok(())
    }

    /// Picks the train config whose trainings give the runs their test
    /// accuracy ([`Choice::apply`]), for the runs shown.
    pub fn choose_trainings(&mut self) {
        self.training = Choice::apply(&mut self.runs, self.evaluate.as_ref());
    }

    /// "2 queued, 1 failed".
    pub fn not_done_text(&self) -> String {
        let counts: Vec<String> = self
            .not_done
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        counts.join(", ")
    }

    /// "run `ddsas sweep run FILE`" with the sweep's own file, else the
    /// paper's sweep file for the figure (`paper_file`), else a generic one.
    pub fn run_hint(&self, paper_file: Option<&str>) -> String {
        match (paper_file, &self.file) {
            (Some(paper), _) => format!(
                "run `ddsas sweep run {paper}` (or a sweep like it) and report on that sweep"
            ),
            (None, Some(file)) => format!("run `ddsas sweep run {file}` to finish its runs"),
            (None, None) => "run the sweep's searches first (`ddsas sweep run FILE`)".into(),
        }
    }

    /// The error of a figure these runs cannot support: what is `missing`,
    /// and the paper's sweep (`paper_sweep`) that would produce it.
    pub fn cannot(
        &self,
        figure: &str,
        missing: impl Into<String>,
        paper_sweep: &str,
    ) -> ReportError {
        ReportError::cannot(
            figure,
            &self.name,
            missing,
            self.run_hint(Some(paper_sweep)),
        )
    }

    /// The done runs with `method`.
    pub fn with_method(&self, method: Method) -> impl Iterator<Item = &ReportRun> + '_ {
        self.runs.iter().filter(move |r| r.method == Some(method))
    }

    /// A note on the runs picked by `--where` and those left out because
    /// they are not done (empty if neither).
    pub fn not_done_note(&self) -> String {
        let picked = match &self.condition {
            Some(c) => format!(" Runs where {c}."),
            None => String::new(),
        };
        if self.not_done.is_empty() {
            picked
        } else {
            format!("{picked} Runs left out: {}.", self.not_done_text())
        }
    }
}

/// Which of `n` rows (settings, in figure order) a page shows when it shows
/// at most `limit`: all of them when they fit, else `limit` spread evenly
/// from the first to the last, so that a grid's corners and middle are
/// compared rather than its first corner only. Indices in order.
pub fn page_rows(n: usize, limit: usize) -> Vec<usize> {
    if n <= limit {
        return (0..n).collect();
    }
    match limit {
        0 => Vec::new(),
        1 => vec![0],
        _ => (0..limit).map(|i| i * (n - 1) / (limit - 1)).collect(),
    }
}

/// The settings a figure left off its page, for its caption, its sidecar
/// and the command's output: how many there were, who they are, and how
/// to draw them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LeftOut {
    /// Settings in the figure before the limit.
    pub settings: usize,
    /// Those drawn.
    pub drawn: usize,
    /// One caption per setting not drawn ("DDSAS L=28 M=12 on Digits,
    /// DARTS space: run 7 (1 seed)").
    pub not_drawn: Vec<String>,
}

impl LeftOut {
    /// Whether every setting was drawn.
    pub fn is_empty(&self) -> bool {
        self.not_drawn.is_empty()
    }

    /// The sentence for a caption (empty when nothing was left out).
    pub fn sentence(&self, figure: &str) -> String {
        if self.is_empty() {
            return String::new();
        }
        format!(
            " Drawn: {} of {} settings (a page); not drawn: {}. Draw others with `ddsas report {figure} --where CONDITION` (e.g. \"L = 28 and M = 12\").",
            self.drawn,
            self.settings,
            self.not_drawn.join("; ")
        )
    }

    /// The line the command prints under its table (none when nothing was
    /// left out).
    pub fn note(&self, figure: &str) -> Option<String> {
        (!self.is_empty()).then(|| {
            format!(
                "{figure}: drew {} of {} settings; pick others with --where (the {} not drawn are listed in the caption and the sidecar's `left_out`)",
                self.drawn,
                self.settings,
                self.not_drawn.len()
            )
        })
    }
}

/// A dataset and search space: what one panel (or column of panels) of a
/// figure covers, since runs on different data or in different spaces are
/// never drawn on one axis. Ordered by dataset, then space, each by its
/// stored name (`cifar10` before `digits`), the order figures have always
/// put their panels and columns in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Group {
    /// The dataset of its runs.
    pub dataset: DatasetKind,
    /// The search space of its runs.
    pub space: SpaceKind,
}

impl Group {
    /// The group of `run`.
    pub fn of(run: &ReportRun) -> Group {
        Group {
            dataset: run.dataset,
            space: run.space,
        }
    }

    /// "CIFAR-10, DARTS space".
    pub fn label(&self) -> String {
        group_label(self.dataset, self.space)
    }

    /// What it is ordered by: the names of its dataset and space.
    fn order_key(&self) -> (&'static str, &'static str) {
        (self.dataset.name(), self.space.name())
    }
}

impl Ord for Group {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for Group {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A value for each of the two DDSAS knobs the paper sweeps: L, the
/// subspace size (ops sampled per subspace), and M, the weight steps per
/// subspace. Serialised under the paper's names, `L` and `M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Lm<T> {
    /// For L.
    #[serde(rename = "L")]
    pub l: T,
    /// For M.
    #[serde(rename = "M")]
    pub m: T,
}

/// Methods in the order the paper lists them.
pub const METHOD_ORDER: [Method; 3] = [Method::Darts, Method::Gdas, Method::Ddsas];

/// Position of `method` in [`METHOD_ORDER`] (a run that searches nothing
/// last).
pub fn method_rank(method: Option<Method>) -> usize {
    METHOD_ORDER
        .iter()
        .position(|m| Some(*m) == method)
        .unwrap_or(METHOD_ORDER.len())
}

/// Runs grouped by (dataset, space), in a stable order.
pub fn by_dataset_space<'a>(
    runs: impl Iterator<Item = &'a ReportRun>,
) -> BTreeMap<Group, Vec<&'a ReportRun>> {
    let mut groups: BTreeMap<Group, Vec<&ReportRun>> = BTreeMap::new();
    for run in runs {
        groups.entry(Group::of(run)).or_default().push(run);
    }
    groups
}

/// Number of distinct seeds among `runs`.
pub fn seed_count(runs: &[&ReportRun]) -> usize {
    let mut seeds: Vec<i64> = runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    seeds.len()
}

/// The config of a run without the keys that `drop` names, as canonical
/// text: two runs with equal keys differ only in those keys.
pub fn config_key(run: &ReportRun, drop: &[&str]) -> String {
    match serde_json::from_str::<serde_json::Value>(&run.config_json) {
        Ok(serde_json::Value::Object(mut map)) => {
            for key in drop {
                map.remove(*key);
            }
            serde_json::Value::Object(map).to_string()
        }
        _ => run.config_json.clone(),
    }
}

/// The runs of one series of a figure: one method at one setting of the
/// config keys that vary among the runs the figure shows.
#[derive(Debug, Clone)]
pub struct Setting<'a> {
    /// The method of its runs (`None` for runs that search nothing).
    pub method: Option<Method>,
    /// `(key, value)` of every key that varies among the runs shown and
    /// that this method uses, in config order; empty when nothing varies.
    pub keys: Vec<(String, String)>,
    /// The runs (seeds) of the setting, by id.
    pub runs: Vec<&'a ReportRun>,
}

impl Setting<'_> {
    /// "L=28 M=12", or "" when nothing varies.
    pub fn keys_text(&self) -> String {
        self.keys
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// "DDSAS L=28 M=12", or just "DARTS".
    pub fn label(&self) -> String {
        let keys = self.keys_text();
        if keys.is_empty() {
            method_label(self.method).to_string()
        } else {
            format!("{} {keys}", method_label(self.method))
        }
    }

    /// Ids of its runs.
    pub fn ids(&self) -> Vec<i64> {
        self.runs.iter().map(|r| r.id).collect()
    }

    /// Its keys and values, as a sidecar's `setting` object.
    pub fn keys_map(&self) -> BTreeMap<String, String> {
        self.keys.iter().cloned().collect()
    }

    /// Who the series of this setting is, as sidecars list it.
    pub fn info(&self) -> SeriesInfo {
        SeriesInfo {
            method: self.method,
            setting: self.keys_map(),
            label: self.label(),
            runs: self.ids(),
            seeds: seed_count(&self.runs),
        }
    }
}

/// One series of a figure as its sidecar names it: the setting's method,
/// keys and label, its runs and how many seeds they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesInfo {
    /// The setting's method, written as stored (`ddsas`, `darts`, `gdas`).
    #[serde(serialize_with = "stored_method")]
    pub method: Option<Method>,
    /// The keys that vary among the runs shown, with this setting's values.
    pub setting: BTreeMap<String, String>,
    /// "DDSAS L=28 M=12", as legends show it.
    pub label: String,
    /// Run ids.
    pub runs: Vec<i64>,
    /// Distinct seeds among the runs.
    pub seeds: usize,
}

impl SeriesInfo {
    /// "DDSAS M=24 on Digits, DARTS space: runs 3, 4 (2 seeds)", for captions.
    pub fn caption(&self, group: &Group) -> String {
        format!(
            "{} on {}: {} ({})",
            self.label,
            group.label(),
            runs_text(&self.runs),
            plural(self.seeds, "seed")
        )
    }
}

/// What a panel title says about its series: each label with its run
/// count (as `count` writes it), or with more than three series (named in
/// the legend) how many settings and runs.
pub fn panel_counts(series: &[&SeriesInfo], count: impl Fn(usize) -> String) -> String {
    if series.len() <= 3 {
        let each: Vec<String> = series
            .iter()
            .map(|s| format!("{} {}", s.label, count(s.runs.len())))
            .collect();
        return each.join(", ");
    }
    let runs: usize = series.iter().map(|s| s.runs.len()).sum();
    format!("{} settings, {}", series.len(), plural(runs, "run"))
}

/// The settings of each `(dataset, space)` group of runs, a panel each
/// (dataset and space never split a panel's runs further).
pub fn panel_settings<'a>(groups: &BTreeMap<Group, Vec<&'a ReportRun>>) -> Vec<Vec<Setting<'a>>> {
    groups
        .values()
        .map(|runs| settings(runs, &["dataset", "space"]))
        .collect()
}

/// Keys never used to split runs into settings: the seed (a setting's runs
/// are its seeds), where the data lives, and whether steps are logged
/// (what is recorded, not what is run); the method is split on anyway.
const NOT_A_SETTING: &[&str] = &["seed", "data_dir", "log_steps", "method"];

/// Splits `runs` into settings: one per method and distinct value of every
/// config key that varies among `runs` (seed and data folder excluded, and
/// `fixed`, the keys a figure already separates into panels). A key a
/// method ignores (L for DARTS) never splits that method's runs. Ordered
/// by method as the paper lists them, then by the keys' values.
pub fn settings<'a>(runs: &[&'a ReportRun], fixed: &[&str]) -> Vec<Setting<'a>> {
    let configs: Vec<serde_json::Map<String, serde_json::Value>> =
        runs.iter().map(|r| config_map(r)).collect();
    let varying: Vec<String> = crate::config::config_keys()
        .iter()
        .filter(|k| !NOT_A_SETTING.contains(&k.as_str()) && !fixed.contains(&k.as_str()))
        .filter(|k| {
            let mut values = configs.iter().zip(runs).filter_map(|(c, r)| {
                let used = r.method.is_none_or(|m| m.uses(k.as_str()));
                used.then(|| c.get(k.as_str()))
            });
            let first = values.next();
            values.any(|v| Some(v) != first)
        })
        .cloned()
        .collect();
    let mut groups: Vec<(Vec<serde_json::Value>, Setting<'a>)> = Vec::new();
    for (run, config) in runs.iter().zip(&configs) {
        let method = run.method;
        let used: Vec<&String> = varying
            .iter()
            .filter(|k| method.is_none_or(|m| m.uses(k.as_str())))
            .collect();
        let values: Vec<serde_json::Value> = used
            .iter()
            .map(|k| config.get(k.as_str()).cloned().unwrap_or_default())
            .collect();
        match groups
            .iter_mut()
            .find(|(v, s)| s.method == method && *v == values)
        {
            Some((_, setting)) => setting.runs.push(run),
            None => groups.push((
                values.clone(),
                Setting {
                    method,
                    keys: used
                        .iter()
                        .zip(&values)
                        .map(|(k, v)| (k.to_string(), value_text(v)))
                        .collect(),
                    runs: vec![run],
                },
            )),
        }
    }
    groups.sort_by(|(a, x), (b, y)| {
        method_rank(x.method)
            .cmp(&method_rank(y.method))
            .then_with(|| compare_values(a, b))
    });
    groups.into_iter().map(|(_, s)| s).collect()
}

/// Writes a setting's method as the database stores it.
fn stored_method<S: serde::Serializer>(
    method: &Option<Method>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(crate::store::method_text(*method))
}

/// The parsed config of a run (empty if it does not parse).
fn config_map(run: &ReportRun) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(&run.config_json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// A config value as a label shows it: strings without quotes.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Orders value lists numerically where both are numbers, else as text.
fn compare_values(a: &[serde_json::Value], b: &[serde_json::Value]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            _ => value_text(x).cmp(&value_text(y)),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Hand-made runs and sweeps for the figures' unit tests: no database, no
/// search.
#[cfg(test)]
pub(crate) mod test_runs {
    use super::*;

    /// A done run being described; [`RunBuilder::build`] makes it.
    pub(crate) struct RunBuilder {
        run: ReportRun,
        config: serde_json::Map<String, serde_json::Value>,
    }

    /// Run `id` of `method`, on digits in the DARTS space, seed `id`.
    pub(crate) fn run(id: i64, method: &str) -> RunBuilder {
        let builder = RunBuilder {
            run: ReportRun {
                id,
                status: RunStatus::Done,
                method: Method::parse(method),
                space: SpaceKind::Darts,
                dataset: DatasetKind::Digits,
                seed: 0,
                l: None,
                m: None,
                approximation: None,
                epochs_done: 0,
                valid_acc: None,
                genotype: None,
                config_json: String::new(),
                definitions: 0,
                test_acc: None,
                test_epochs: None,
                test_params: None,
                trainings: Vec::new(),
                wall_s: None,
            },
            config: serde_json::Map::new(),
        };
        builder.set("method", method).on("digits", "darts").seed(id)
    }

    impl RunBuilder {
        /// On `dataset` in `space`.
        pub(crate) fn on(self, dataset: &str, space: &str) -> RunBuilder {
            let mut b = self.set("dataset", dataset).set("space", space);
            b.run.dataset = serde_json::from_value(dataset.into()).expect("a dataset name");
            b.run.space = SpaceKind::parse(space).expect("a space name");
            b
        }

        /// With seed `seed`.
        pub(crate) fn seed(mut self, seed: i64) -> RunBuilder {
            self.run.seed = seed;
            self.set("seed", seed)
        }

        /// With config key `key` = `value` (`L`, `M` and `approximation`
        /// also fill the run's columns of the same name).
        pub(crate) fn set(mut self, key: &str, value: impl Into<serde_json::Value>) -> RunBuilder {
            let value = value.into();
            match key {
                "L" => self.run.l = value.as_i64(),
                "M" => self.run.m = value.as_i64(),
                "approximation" => self.run.approximation = value.as_bool().map(i64::from),
                _ => {}
            }
            self.config.insert(key.into(), value);
            self
        }

        /// With final valid accuracy `acc` (0..1).
        pub(crate) fn acc(mut self, acc: f64) -> RunBuilder {
            self.run.valid_acc = Some(acc);
            self
        }

        /// With a done training of its cell: train run `train_run_id`,
        /// test accuracy `acc`, under the appendix's train config with
        /// `sets` (`epochs`, `seed`, ...) changed and the run's dataset.
        pub(crate) fn trained(
            mut self,
            train_run_id: i64,
            acc: f64,
            sets: &[(&str, serde_json::Value)],
        ) -> RunBuilder {
            let mut config = crate::config::train::TrainConfig::default().canonical_value();
            config["genotype"] = format!("cell of run {}", self.run.id).into();
            config["dataset"] = self.run.dataset.name().into();
            for (k, v) in sets {
                config[*k] = v.clone();
            }
            self.run.trainings.push(crate::store::ReportTraining {
                search_run_id: self.run.id,
                train_run_id,
                epochs: config["epochs"].as_i64().unwrap_or(0),
                config_json: config.to_string(),
                test_acc: acc,
                params: Some(3_300_000),
                test_top5: None,
                madds: None,
            });
            self
        }

        /// With a done transfer of its cell to ImageNet under the ImageNet
        /// recipe: train run `train_run_id`, top-1 and top-5 test accuracy,
        /// multiply-adds.
        pub(crate) fn on_imagenet(
            mut self,
            train_run_id: i64,
            (top1, top5): (f64, f64),
            madds: i64,
        ) -> RunBuilder {
            let mut config = crate::config::train::TrainConfig {
                dataset: crate::data::DatasetKind::ImageNet,
                ..Default::default()
            }
            .canonical_value();
            config["genotype"] = format!("cell of run {}", self.run.id).into();
            self.run.trainings.push(crate::store::ReportTraining {
                search_run_id: self.run.id,
                train_run_id,
                epochs: config["epochs"].as_i64().unwrap_or(0),
                config_json: config.to_string(),
                test_acc: top1,
                params: Some(4_700_000),
                test_top5: Some(top5),
                madds: Some(madds),
            });
            self
        }

        /// The run.
        pub(crate) fn build(mut self) -> ReportRun {
            self.run.config_json = serde_json::Value::Object(self.config).to_string();
            self.run
        }
    }

    /// Sweep `test` of `runs` (all done), with no records and no
    /// `evaluate:`; test accuracies come from the runs' trainings.
    pub(crate) fn sweep(runs: Vec<ReportRun>) -> SweepData {
        let mut data = SweepData {
            name: "test".into(),
            file: None,
            runs,
            not_done: BTreeMap::new(),
            condition: None,
            records: Records::default(),
            evaluate: None,
            training: Choice::Untrained,
        };
        data.choose_trainings();
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_spreads_its_rows_from_the_first_to_the_last() {
        assert_eq!(page_rows(3, 5), [0, 1, 2]);
        assert_eq!(page_rows(10, 5), [0, 2, 4, 6, 9]);
        assert_eq!(page_rows(64, 5), [0, 15, 31, 47, 63]);
        assert_eq!(page_rows(4, 1), [0]);
        let none = LeftOut::default();
        assert!(none.is_empty() && none.sentence("fig9").is_empty() && none.note("fig9").is_none());
    }

    #[test]
    fn settings_split_on_the_keys_that_vary_and_a_method_uses() {
        use super::test_runs::run;
        let runs = [
            run(1, "ddsas").set("L", 28).set("M", 12).build(),
            run(2, "ddsas").set("L", 28).set("M", 24).build(),
            run(3, "ddsas").set("L", 28).set("M", 12).seed(9).build(),
            run(4, "darts").set("L", 28).set("M", 36).build(),
            run(5, "gdas").build(),
        ];
        let refs: Vec<&ReportRun> = runs.iter().collect();
        let split = settings(&refs, &[]);
        let labels: Vec<String> = split.iter().map(Setting::label).collect();
        // L never varies; M is a DDSAS key, so it splits neither baseline.
        assert_eq!(labels, ["DARTS", "GDAS", "DDSAS M=12", "DDSAS M=24"]);
        assert_eq!(split[2].ids(), [1, 3]);
        let info = split[2].info();
        assert_eq!(
            info.setting,
            BTreeMap::from([("M".to_string(), "12".to_string())])
        );
        assert_eq!(info.seeds, 2);
        assert_eq!(
            info.caption(&Group::of(&runs[0])),
            "DDSAS M=12 on Digits, DARTS space: runs 1, 3 (2 seeds)"
        );
    }

    #[test]
    fn restricting_keeps_the_picked_runs_and_names_the_condition() {
        use super::test_runs::{run, sweep};
        let mut data = sweep(vec![run(1, "ddsas").build(), run(2, "darts").build()]);
        data.records.epochs.insert(2, Vec::new());
        data.restrict(&[1], "method = 'ddsas'").unwrap();
        assert_eq!(data.runs.len(), 1);
        assert!(data.records.epochs.is_empty());
        assert_eq!(data.not_done_note(), " Runs where method = 'ddsas'.");
        assert!(data.restrict(&[7], "id = 7").is_err());
    }
}
