//! Expansion: a checked [`Spec`] becomes the ordered list of resolved runs
//! (`seeds` × `runs` entries × grid points × zip rows, minus exclusions and
//! duplicate fingerprints), each validated by `SearchConfig::resolve`.

use std::collections::HashSet;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::keys::locate;
use super::spec::{self, short, Axis, Entry, Resources, Spec};
use super::SweepError;
use crate::config::{set_path, ConfigError, ResolvedConfig, SearchConfig};

/// An expanded sweep: every run it asks for, in its deterministic order.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The sweep's name, its key in the database (`sweeps.name`).
    pub name: String,
    /// Free-text description from the file.
    pub description: Option<String>,
    /// Where the sweep was read from (for messages and `sweeps.file`).
    pub file: String,
    /// The file's text at expansion time (stored in `sweeps.spec_yaml`).
    pub text: String,
    /// Resource hints for the orchestrator.
    pub resources: Resources,
    /// The evaluations of the searches' cells (`evaluate:`; empty if the
    /// sweep has none), in the file's order.
    pub evaluate: Vec<super::spec::Evaluate>,
    /// The runs, in expansion order, one per distinct fingerprint.
    pub runs: Vec<PlannedRun>,
    /// The keys whose values differ between runs: the columns that tell
    /// the runs apart in tables and labels.
    pub columns: Vec<String>,
    /// Runs dropped by `exclude`.
    pub excluded: usize,
    /// Runs dropped because an earlier run has the same fingerprint.
    pub duplicates: usize,
}

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Position in the sweep's expansion, from 0 (`sweep_runs.position`).
    pub position: usize,
    /// The values the sweep chose for this run (entry keys, axes, seed),
    /// as text, in file order.
    pub params: Vec<(String, String)>,
    /// The resolved config the run executes.
    pub cfg: ResolvedConfig,
    /// Its fingerprint (identity across sweeps).
    pub fingerprint: String,
}

impl PlannedRun {
    /// The text of one chosen value, if the sweep set that key for this run.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key=value` for the given columns (the sweep's varied keys): a short
    /// name for progress lines and messages.
    pub fn label(&self, columns: &[String]) -> String {
        let parts: Vec<String> = columns
            .iter()
            .filter_map(|c| self.value(c).map(|v| format!("{c}={v}")))
            .collect();
        if parts.is_empty() {
            format!("#{}", self.position)
        } else {
            parts.join(" ")
        }
    }
}

impl Sweep {
    /// Reads and expands a sweep file; every error names the file, and the
    /// line, column and run where they are known.
    pub fn load(path: &Path) -> Result<Sweep, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Expands a sweep file's text; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<Sweep, SweepError> {
        let spec = spec::parse(text, file)?;
        expand(spec, text, file)
    }
}

/// Where a chosen value was written, for error locations.
#[derive(Clone, Copy)]
enum Origin {
    Entry,
    Grid { in_entry: bool },
    Zip { in_entry: bool },
    Seeds,
}

struct Param {
    key: String,
    value: Value,
    origin: Origin,
}

fn expand(spec: Spec, text: &str, file: &str) -> Result<Sweep, SweepError> {
    let (seeds, entries) = seeds_and_entries(&spec);
    let mut reasons: Vec<String> = Vec::new();
    if seeds.is_empty() {
        reasons.push("`seeds` is an empty list".into());
    }
    let mut runs: Vec<PlannedRun> = Vec::new();
    let mut seen = HashSet::new();
    let (mut candidates, mut excluded, mut duplicates) = (0usize, 0usize, 0usize);
    for seed in &seeds {
        for entry in &entries {
            let (axes, zip) = entry_axes(&spec, entry);
            if let Some(empty) = axes.iter().find(|(a, _)| a.values.is_empty()) {
                let reason = format!("grid axis `{}` is an empty list", empty.0.key);
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
                continue;
            }
            let rows = zip.first().map_or(1, |(a, _)| a.values.len());
            if rows == 0 && !reasons.iter().any(|r| r.contains("zip")) {
                reasons.push("the `zip` lists are empty".into());
            }
            let mut point = vec![0usize; axes.len()];
            loop {
                for row in 0..rows {
                    let params = params_at(entry, &axes, &point, &zip, row, *seed);
                    let index = candidates;
                    candidates += 1;
                    match plan_run(&spec, &params, text, file, index)? {
                        None => excluded += 1,
                        Some(cfg) => {
                            let fingerprint = cfg.fingerprint();
                            if !seen.insert(fingerprint.clone()) {
                                duplicates += 1;
                                continue;
                            }
                            runs.push(PlannedRun {
                                position: runs.len(),
                                params: params
                                    .iter()
                                    .map(|p| (p.key.clone(), short(&p.value)))
                                    .collect(),
                                cfg,
                                fingerprint,
                            });
                        }
                    }
                }
                if !advance(&mut point, &axes) {
                    break;
                }
            }
        }
    }
    if runs.is_empty() {
        return Err(SweepError::Empty {
            file: file.to_owned(),
            name: spec.name,
            reason: empty_reason(candidates, excluded, &reasons),
        });
    }
    let columns = varied_columns(&runs);
    Ok(Sweep {
        name: spec.name,
        description: spec.description,
        file: file.to_owned(),
        text: text.to_owned(),
        resources: spec.resources,
        evaluate: spec.evaluate,
        runs,
        columns,
        excluded,
        duplicates,
    })
}

/// What the expansion loops over: every seed (`None`: the config's own)
/// and every `runs` entry (one empty entry: `base` alone).
fn seeds_and_entries(spec: &Spec) -> (Vec<Option<u64>>, Vec<Entry>) {
    let seeds = match &spec.seeds {
        Some(s) => s.iter().copied().map(Some).collect(),
        None => vec![None],
    };
    let entries = if spec.runs.is_empty() {
        vec![Entry::default()]
    } else {
        spec.runs.clone()
    };
    (seeds, entries)
}

/// The parameters of one candidate run: the entry's fixed keys, the grid
/// point `point` of `axes`, row `row` of the zip columns, and the seed,
/// each with where it came from (for messages).
fn params_at(
    entry: &Entry,
    axes: &[AxisRef<'_>],
    point: &[usize],
    zip: &[AxisRef<'_>],
    row: usize,
    seed: Option<u64>,
) -> Vec<Param> {
    let mut params: Vec<Param> = entry
        .set
        .iter()
        .map(|(k, v)| Param {
            key: k.clone(),
            value: v.clone(),
            origin: Origin::Entry,
        })
        .collect();
    for ((axis, in_entry), &i) in axes.iter().zip(point) {
        params.push(Param {
            key: axis.key.clone(),
            value: axis.values[i].clone(),
            origin: Origin::Grid {
                in_entry: *in_entry,
            },
        });
    }
    for (axis, in_entry) in zip {
        params.push(Param {
            key: axis.key.clone(),
            value: axis.values[row].clone(),
            origin: Origin::Zip {
                in_entry: *in_entry,
            },
        });
    }
    if let Some(seed) = seed {
        params.push(Param {
            key: "seed".into(),
            value: Value::Number(seed.into()),
            origin: Origin::Seeds,
        });
    }
    params
}

/// Why a sweep planned no run: everything excluded, or the empty lists
/// found on the way.
fn empty_reason(candidates: usize, excluded: usize, reasons: &[String]) -> String {
    if candidates > 0 && excluded == candidates {
        format!("all {candidates} runs are excluded by `exclude`")
    } else if reasons.is_empty() {
        "nothing to expand".into()
    } else {
        reasons.join("; ")
    }
}

/// An axis and whether it was written inside a `runs` entry.
type AxisRef<'a> = (&'a Axis, bool);

/// The grid axes and zip columns of one entry, each flagged with whether
/// it was written inside the entry: top-level axes in file order (an entry
/// axis of the same key replaces one in place), then the entry's own new
/// axes; keys the entry fixes drop out.
fn entry_axes<'a>(spec: &'a Spec, entry: &'a Entry) -> (Vec<AxisRef<'a>>, Vec<AxisRef<'a>>) {
    let fixed = |key: &str| entry.set.iter().any(|(k, _)| k == key);
    let mut axes: Vec<(&Axis, bool)> = Vec::new();
    for top in &spec.grid {
        if fixed(&top.key) {
            continue;
        }
        match entry.grid.iter().find(|a| a.key == top.key) {
            Some(own) => axes.push((own, true)),
            None => axes.push((top, false)),
        }
    }
    for own in &entry.grid {
        if !spec.grid.iter().any(|a| a.key == own.key) && !fixed(&own.key) {
            axes.push((own, true));
        }
    }
    let zip: Vec<(&Axis, bool)> = match &entry.zip {
        Some(own) => own.iter().map(|a| (a, true)).collect(),
        None => spec.zip.iter().map(|a| (a, false)).collect(),
    };
    let zip = zip.into_iter().filter(|(a, _)| !fixed(&a.key)).collect();
    (axes, zip)
}

/// Odometer step over the axes, the last axis fastest; false when done.
fn advance(point: &mut [usize], axes: &[AxisRef<'_>]) -> bool {
    for i in (0..point.len()).rev() {
        point[i] += 1;
        if point[i] < axes[i].0.values.len() {
            return true;
        }
        point[i] = 0;
    }
    false
}

/// Builds, filters and resolves one candidate run: `None` when excluded.
fn plan_run(
    spec: &Spec,
    params: &[Param],
    text: &str,
    file: &str,
    index: usize,
) -> Result<Option<ResolvedConfig>, SweepError> {
    let mut merged = Value::Mapping(spec.base.clone());
    for p in params {
        set_path(&mut merged, &p.key, p.value.clone());
    }
    let fail = |err: ConfigError| run_error(spec, params, text, file, index, err);
    let cfg = SearchConfig::from_yaml_value(merged, file).map_err(fail)?;
    if !spec.exclude.is_empty() {
        let full = serde_yaml::to_value(&cfg).expect("a config always serializes");
        let hit = spec.exclude.iter().any(|rule| {
            rule.iter()
                .all(|(k, v)| get_path(&full, k).is_some_and(|x| same_value(x, v)))
        });
        if hit {
            return Ok(None);
        }
    }
    cfg.resolve().map(Some).map_err(fail)
}

/// The error of one run, naming it by its chosen values, and the key (and
/// where the key is written) when the config error allows.
fn run_error(
    spec: &Spec,
    params: &[Param],
    text: &str,
    file: &str,
    index: usize,
    err: ConfigError,
) -> SweepError {
    let (key, message) = match &err {
        ConfigError::Invalid { key, .. } => (Some((*key).to_owned()), err.to_string()),
        ConfigError::Parse { message, .. } => match culprit(spec, params, message) {
            Some(key) if !message.contains(&format!("`{key}`")) => {
                (Some(key.clone()), format!("key `{key}`: {message}"))
            }
            key => (key, message.clone()),
        },
        ConfigError::Io { .. } => (None, err.to_string()),
    };
    let location = key.as_deref().and_then(|key| {
        let param = params
            .iter()
            .find(|p| p.key == key || p.key.split('.').next() == Some(key));
        match param.map(|p| p.origin) {
            Some(Origin::Seeds) => locate_top(text, "seeds"),
            Some(
                Origin::Entry | Origin::Grid { in_entry: true } | Origin::Zip { in_entry: true },
            ) => locate(text, "runs", &param.expect("origin came from a param").key),
            Some(Origin::Grid { in_entry: false }) => locate(text, "grid", key),
            Some(Origin::Zip { in_entry: false }) => locate(text, "zip", key),
            None => locate(text, "base", key).or_else(|| locate_top(text, "base")),
        }
    });
    SweepError::Run {
        file: file.to_owned(),
        location,
        index,
        params: params
            .iter()
            .map(|p| format!("{}={}", p.key, short(&p.value)))
            .collect::<Vec<_>>()
            .join(" "),
        message,
    }
}

/// The key behind a config parse error: the one an "unknown field" names,
/// else the first chosen (or base) key whose value alone does not parse.
fn culprit(spec: &Spec, params: &[Param], message: &str) -> Option<String> {
    let unknown = message
        .split("unknown key `")
        .nth(1)
        .or_else(|| message.split("unknown field `").nth(1));
    if let Some(rest) = unknown {
        return rest.split('`').next().map(str::to_owned);
    }
    let alone = |key: &str, value: &Value| {
        let mut map = Value::Mapping(Mapping::new());
        set_path(&mut map, key, value.clone());
        SearchConfig::from_yaml_value(map, "").is_err()
    };
    params
        .iter()
        .rev()
        .find(|p| alone(&p.key, &p.value))
        .map(|p| p.key.clone())
        .or_else(|| {
            spec.base.iter().find_map(|(k, v)| {
                let key = k.as_str()?;
                alone(key, v).then(|| key.to_owned())
            })
        })
}

/// Place of a top-level `key:` line.
fn locate_top(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map(|i| (i + 1, 1))
}

fn get_path<'v>(root: &'v Value, key: &str) -> Option<&'v Value> {
    key.split('.').try_fold(root, |node, part| node.get(part))
}

/// YAML equality where `28` and `28.0` are the same number.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Keys whose chosen value is not the same for every run (missing counts as
/// different), in order of first appearance.
fn varied_columns(runs: &[PlannedRun]) -> Vec<String> {
    let mut keys: Vec<&str> = Vec::new();
    for run in runs {
        for (k, _) in &run.params {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    keys.into_iter()
        .filter(|k| {
            let first = runs[0].value(k);
            runs.iter().any(|r| r.value(k) != first)
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::arch::space::SpaceKind;
    use crate::config::Method;

    fn plan(text: &str) -> Result<Sweep, SweepError> {
        Sweep::parse(text, "test.yaml")
    }

    /// `evaluate:` as one mapping is one evaluation; as a list, one per
    /// entry (a CIFAR-10 training, then a transfer to ImageNet), each
    /// checked, and a wrong entry is named by its position.
    #[test]
    fn evaluate_takes_one_mapping_or_a_list() {
        let one =
            plan("name: e\nbase: {epochs: 1}\nevaluate: {epochs: 600, seeds: [0, 1]}\n").unwrap();
        assert_eq!(one.evaluate.len(), 1);
        assert_eq!(
            (
                one.evaluate[0].config.epochs,
                one.evaluate[0].seeds.as_slice()
            ),
            (Some(600), &[0, 1][..])
        );
        assert!(!one.evaluate[0].own_data);
        assert_eq!(
            one.evaluate[0].describe(),
            "on each search's dataset with epochs=600, seeds [0, 1]"
        );
        let data = tempfile::tempdir().unwrap();
        let text = format!(
            "name: e\nbase: {{epochs: 1}}\nevaluate:\n  - {{epochs: 600}}\n  - {{dataset: imagenet, data_dir: {}, epochs: 250}}\n",
            data.path().display()
        );
        let two = plan(&text).unwrap();
        assert_eq!(two.evaluate.len(), 2);
        let imagenet = &two.evaluate[1];
        assert!(imagenet.own_data);
        assert_eq!(imagenet.config.dataset, crate::data::DatasetKind::ImageNet);
        assert_eq!(imagenet.config.layers(), 14);
        assert!(
            imagenet
                .describe()
                .starts_with("with dataset=imagenet data_dir="),
            "{}",
            imagenet.describe()
        );
        let stored = crate::sweep::stored_evaluate(&text).unwrap();
        assert_eq!(stored, two.evaluate[0]);
        assert_eq!(plan("name: e\nbase: {epochs: 1}\n").unwrap().evaluate, []);

        let wrong = |evaluate: &str| {
            plan(&format!(
                "name: e\nbase: {{epochs: 1}}\nevaluate: {evaluate}\n"
            ))
            .unwrap_err()
            .to_string()
        };
        let e = wrong("[{epochs: 600}, {epochs: 0}]");
        assert!(
            e.contains("entry 2 of `evaluate`") && e.contains("`epochs`"),
            "{e}"
        );
        let e = wrong("[{epochs: 600}, {epoch: 250}]");
        assert!(
            e.contains("entry 2 of `evaluate`") && e.contains("epoch"),
            "{e}"
        );
        let e = wrong("[{epochs: 600}, 250]");
        assert!(
            e.contains("entry 2 of `evaluate`") && e.contains("mapping"),
            "{e}"
        );
        let e = wrong("[{genotype: darts_v2}]");
        assert!(
            e.contains("entry 1 of `evaluate`") && e.contains("genotype"),
            "{e}"
        );
        let e = wrong("[]");
        assert!(e.contains("lists no evaluation"), "{e}");
        let e = wrong("600");
        assert!(e.contains("`evaluate`") && e.contains("mapping"), "{e}");
    }

    /// `nproc` of an evaluation is how its trainings run, not a train key:
    /// checked, described, kept out of the train config, and refused when
    /// the sweep is submitted to Slurm by a build without `dist`.
    #[test]
    fn evaluate_nproc_is_checked_described_and_refused_on_slurm() {
        let text =
            "name: e\nbase: {epochs: 1}\nevaluate: [{epochs: 600}, {epochs: 600, nproc: 4}]\n";
        let sweep = plan(text).unwrap();
        let (one, four) = (&sweep.evaluate[0], &sweep.evaluate[1]);
        assert_eq!((one.nproc, four.nproc), (1, 4));
        assert_eq!(one.config.epochs, four.config.epochs);
        assert_eq!(
            four.describe(),
            "on each search's dataset with epochs=600, seeds [0], 4 processes each"
        );
        assert_eq!(one.refuse_on_slurm(1), Ok(()));
        if cfg!(feature = "dist") {
            // Its pull workers hand each training to a job of its own.
            assert_eq!(four.refuse_on_slurm(2), Ok(()));
        } else {
            let refused = four.refuse_on_slurm(2).unwrap_err();
            assert!(
                refused.contains("entry 2 of `evaluate`")
                    && refused.contains("nproc: 4")
                    && refused.contains("--features dist"),
                "{refused}"
            );
        }
        assert_eq!(crate::sweep::stored_evaluate(text).unwrap().nproc, 1);
        for bad in ["0", "-2", "two", "1.5"] {
            let e = plan(&format!(
                "name: e\nbase: {{epochs: 1}}\nevaluate: {{epochs: 600, nproc: {bad}}}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("`evaluate.nproc` must be a whole number"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn grid_is_cartesian_in_file_order_with_the_first_axis_slowest() {
        let s =
            plan("name: g\nbase: {epochs: 2}\ngrid:\n  L: [15, 28]\n  M: [1, 5, 10]\n").unwrap();
        assert_eq!(s.runs.len(), 6);
        let lm: Vec<(u32, u32)> = s
            .runs
            .iter()
            .map(|r| (r.cfg.config().L, r.cfg.config().M))
            .collect();
        assert_eq!(
            lm,
            vec![(15, 1), (15, 5), (15, 10), (28, 1), (28, 5), (28, 10)]
        );
        assert_eq!(s.columns, vec!["L", "M"]);
        assert_eq!(s.runs[4].label(&s.columns), "L=28 M=5");
        assert!(s.runs.iter().all(|r| r.cfg.config().epochs == 2));
        // Deterministic: same text, same fingerprints in the same order.
        let again =
            plan("name: g\nbase: {epochs: 2}\ngrid:\n  L: [15, 28]\n  M: [1, 5, 10]\n").unwrap();
        let fps = |s: &Sweep| {
            s.runs
                .iter()
                .map(|r| r.fingerprint.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(fps(&s), fps(&again));
    }

    #[test]
    fn zip_seeds_exclude_and_runs_entries() {
        let s = plan(
            "name: z\nzip:\n  w_lr: [0.025, 0.05]\n  arch_lr: [0.0003, 0.0006]\nseeds: [0, 1]\n\
             runs:\n  - {method: ddsas, grid: {L: [15, 28]}}\n  - {method: darts}\n\
             exclude:\n  - {L: 15, w_lr: 0.05}\n",
        )
        .unwrap();
        // per seed: ddsas 2 L x 2 zip rows - 1 excluded = 3, darts 2 zip rows = 2
        assert_eq!(s.runs.len(), 10);
        assert_eq!(s.excluded, 2);
        assert_eq!(s.runs[0].cfg.config().seed, 0);
        assert_eq!(s.runs[9].cfg.config().seed, 1);
        assert_eq!(s.runs[3].cfg.config().method, Method::Darts);
        assert_eq!(s.runs[3].cfg.config().w_lr, 0.025);
        assert_eq!(s.runs[4].cfg.config().arch_lr, 0.0006);
        assert!(s.columns.contains(&"method".to_owned()) && s.columns.contains(&"seed".to_owned()));
    }

    #[test]
    fn baselines_collapse_over_ddsas_axes() {
        let s = plan(
            "name: c\ngrid: {L: [15, 28], M: [1, 5]}\nruns: [{method: ddsas}, {method: gdas}]\n",
        )
        .unwrap();
        assert_eq!(s.runs.len(), 5);
        assert_eq!(s.duplicates, 3);
    }

    #[test]
    fn an_entry_key_pins_the_top_level_axis() {
        let s = plan("name: p\ngrid: {L: [15, 28, 42]}\nruns: [{method: ddsas}, {approximation: false, L: 28}]\n").unwrap();
        assert_eq!(s.runs.len(), 4);
        assert!(!s.runs[3].cfg.config().approximation);
    }

    #[test]
    fn a_seed_is_set_in_one_place_and_runs_is_never_empty() {
        for text in [
            "name: s\ngrid: {seed: [1, 2]}\nseeds: [0]\n",
            "name: s\nbase: {seed: 3}\nseeds: [0]\n",
            "name: s\nruns: [{method: darts, seed: 4}]\nseeds: [0]\n",
        ] {
            let err = plan(text).unwrap_err().to_string();
            assert!(
                err.contains("`seed` is set in") && err.contains("seeds:"),
                "{text}: {err}"
            );
        }
        assert_eq!(
            plan("name: s\ngrid: {seed: [1, 2]}\n").unwrap().runs.len(),
            2
        );
        let err = plan("name: s\nruns: []\n").unwrap_err().to_string();
        assert!(
            err.contains("test.yaml:2:1") && err.contains("empty list"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_have_file_line_and_column() {
        let err = plan("name: x\ngrid:\n  L: [15, 28\n  M: [1]\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.yaml:"), "{err}");
        let loc: Vec<&str> = err.splitn(4, ':').collect();
        assert!(
            loc[1].parse::<usize>().is_ok() && loc[2].parse::<usize>().is_ok(),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_near_keys() {
        let err = plan("name: x\ngird: {L: [15]}\n").unwrap_err().to_string();
        assert!(
            err.contains("gird") && err.contains("test.yaml:2:1"),
            "{err}"
        );
        let err = plan("name: x\ngrid:\n  LL: [15]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`LL`")
                && err.contains("did you mean `L`")
                && err.contains("test.yaml:3:3"),
            "{err}"
        );
        let err = plan("name: x\nbase: {learnin_rate: 1}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("learnin_rate"), "{err}");
    }

    #[test]
    fn wrong_types_and_bad_values_name_the_run_and_key() {
        let err = plan("name: x\ngrid:\n  M: [1, abc]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`M`") && err.contains("M=abc") && err.contains("test.yaml:3:3"),
            "{err}"
        );
        let err = plan("name: x\ngrid:\n  L: [28, 10]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run 1 (L=10)") && err.contains("`L`") && err.contains("14..=112"),
            "{err}"
        );
        let err = plan("name: x\nbase: {M: 0}\n").unwrap_err().to_string();
        assert!(
            err.contains("`M`") && err.contains("test.yaml:2:8"),
            "{err}"
        );
        let err = plan("name: x\nbase: {dataset: cifar10, data_dir: /no/such/dir}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_dir") && err.contains("/no/such/dir"),
            "{err}"
        );
        let err = plan("name: x\ngrid: {L: 28}\n").unwrap_err().to_string();
        assert!(err.contains("must be a list"), "{err}");
        let err = plan("name: x\nzip: {L: [28, 42], M: [1]}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("one length"), "{err}");
    }

    #[test]
    fn resources_data_download_fetches_without_changing_the_runs() {
        let data = format!("{}/tests/fixtures/cifar", env!("CARGO_MANIFEST_DIR"));
        let base =
            format!("name: x\nbase: {{dataset: cifar10, data_dir: {data}}}\nseeds: [1, 2]\n");
        let without = plan(&base).unwrap();
        let with = plan(&format!("{base}resources: {{data: {{download: true}}}}\n")).unwrap();
        assert!(with.resources.download() && !without.resources.download());
        for (a, b) in without.runs.iter().zip(&with.runs) {
            assert_eq!(a.fingerprint, b.fingerprint);
            assert!(b.cfg.download() && !a.cfg.download());
        }
        // Nothing in the data folder yet: planned all the same.
        let later =
            plan("name: x\nbase: {dataset: cifar100}\nresources: {data: {download: true}}\n")
                .unwrap();
        assert!(later.runs[0].cfg.download());
        let err = plan("name: x\nresources: {data: {fetch: true}}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fetch"), "{err}");
    }

    #[test]
    fn zero_runs_is_an_error_with_a_hint() {
        let err = plan("name: x\ngrid: {L: []}\n").unwrap_err().to_string();
        assert!(
            err.contains("no runs") && err.contains("`L` is an empty list") && err.contains("hint"),
            "{err}"
        );
        let err = plan("name: x\ngrid: {L: [15, 28]}\nexclude: [{method: ddsas}]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("all 2 runs are excluded"), "{err}");
    }

    #[test]
    fn the_shipped_sweep_files_plan_fast() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
        let mut count = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let started = Instant::now();
            let sweep =
                Sweep::parse(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
            let took = started.elapsed();
            // The run counts the appendix's experiments need.
            let expected = match sweep.name.as_str() {
                "fig7_lm_grid" => 64,
                "fig8_fig9_skip" => 2 * 4 + 2 * 6,
                "fig10_explore" => 3 * 4,
                "fig12_combinations" => 4,
                "table5_approximation" => 2 * 2 * 4,
                "demo" => 24,
                other => panic!("no expected run count for shipped sweep {other}"),
            };
            assert_eq!(sweep.runs.len(), expected, "{}", sweep.name);
            // CIFAR comes from the data folder, fetched on first use:
            // `ddsas data get`, then the sweep, or the sweep alone.
            for run in &sweep.runs {
                if run.cfg.config().dataset != crate::data::DatasetKind::Digits {
                    assert!(run.cfg.download(), "{}", sweep.name);
                    assert_eq!(run.cfg.config().data_dir, None, "{}", sweep.name);
                }
            }
            if sweep.name == "fig8_fig9_skip" {
                let seeds = |space: SpaceKind| {
                    sweep
                        .runs
                        .iter()
                        .filter(|r| r.cfg.config().space == space)
                        .map(|r| (r.cfg.config().dataset, r.cfg.config().seed))
                        .collect::<std::collections::BTreeSet<_>>()
                };
                assert!(seeds(SpaceKind::Nb201)
                    .iter()
                    .all(|(d, _)| *d == crate::data::DatasetKind::Cifar10));
                assert_eq!(seeds(SpaceKind::Nb201).len(), 6);
                assert_eq!(seeds(SpaceKind::Darts).len(), 4);
            }
            if sweep.name == "fig12_combinations" {
                // ~700 subspaces a run: 50 epochs of ~390 steps, one every M.
                let c = sweep.runs[0].cfg.config();
                let subspaces = c.epochs as f64 * (25_000.0 / 64.0) / c.M as f64;
                assert!((650.0..750.0).contains(&subspaces), "{subspaces}");
            }
            // The paper's figures of test accuracy (Fig. 7 is "the accuracy
            // obtained by the best cells", Table 5 test errors) train the
            // searched cells by appendix B.1's protocol.
            if matches!(sweep.name.as_str(), "fig7_lm_grid" | "table5_approximation") {
                let [plan] = sweep.evaluate.as_slice() else {
                    panic!("{} has not one evaluate:", sweep.name);
                };
                let appendix = crate::config::train::TrainConfig {
                    download: true,
                    ..Default::default()
                };
                assert_eq!(plan.config.filled(), appendix.filled(), "{}", sweep.name);
                assert_eq!(plan.seeds, [0], "{}", sweep.name);
                assert!(!plan.own_data, "{}", sweep.name);
            }
            if sweep.name == "fig7_lm_grid" {
                assert_eq!(sweep.runs.len(), 64);
                assert!(
                    took.as_millis() < 250,
                    "planning the 64-point grid took {took:?}"
                );
                crate::errln!("fig7_lm_grid: 64 runs planned in {took:?}");
            }
            count += 1;
        }
        assert!(
            count >= 6,
            "expected the six shipped sweep files, found {count}"
        );
    }
}
