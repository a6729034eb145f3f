//! The sweep file as written: parsed with `serde_yaml` (unknown keys and
//! wrong types carry their line and column), then checked key by key into a
//! [`Spec`] whose axes are plain lists, ready to expand.

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use super::keys::{is_config_key, locate, suggestion};
use super::SweepError;

/// Resource hints of a sweep, used by `ddsas sweep run` when its flags do
/// not say otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Default of `--runs-per-gpu` (1 when unset).
    #[serde(default)]
    pub runs_per_gpu: Option<u32>,
    /// GPU memory one run needs, in GB, for `--runs-per-gpu auto`
    /// (docs/design.md §6: DDSAS needs about 4 GB at the paper's settings).
    #[serde(default)]
    pub gpu_mem_gb_per_run: Option<f64>,
    /// libtorch threads of each CPU worker (default: cores / workers); when
    /// set, `--cpu-workers` defaults to cores / this on a machine without GPU.
    #[serde(default)]
    pub cpu_threads_per_run: Option<u32>,
    /// `data: {download: true}`: fetch the datasets the runs need into the
    /// data folder before they start (as `download: true` in `base` and
    /// `evaluate` would).
    #[serde(default)]
    pub data: Option<DataResources>,
}

/// The `data:` entry of a sweep's `resources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataResources {
    /// Fetch a missing dataset on first use (`ddsas data get`'s download,
    /// once, under a lock).
    #[serde(default)]
    pub download: bool,
}

impl Resources {
    /// Whether `data: {download: true}` is set.
    pub fn download(&self) -> bool {
        self.data.as_ref().is_some_and(|d| d.download)
    }
}

/// What `serde_yaml` reads; `Option`s so that an explicit `null` works too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    base: Option<Mapping>,
    #[serde(default)]
    grid: Option<Mapping>,
    #[serde(default)]
    zip: Option<Mapping>,
    #[serde(default)]
    runs: Option<Vec<Mapping>>,
    #[serde(default)]
    seeds: Option<Vec<u64>>,
    #[serde(default)]
    exclude: Option<Vec<Mapping>>,
    #[serde(default)]
    resources: Option<Resources>,
    #[serde(default)]
    evaluate: Option<Value>,
}

/// One varied key and its values.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub key: String,
    pub values: Vec<Value>,
}

/// One `runs:` entry: fixed keys plus its own axes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub set: Vec<(String, Value)>,
    pub grid: Vec<Axis>,
    pub zip: Option<Vec<Axis>>,
}

/// A checked sweep file.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub name: String,
    pub description: Option<String>,
    pub base: Mapping,
    pub grid: Vec<Axis>,
    pub zip: Vec<Axis>,
    pub runs: Vec<Entry>,
    pub seeds: Option<Vec<u64>>,
    pub exclude: Vec<Vec<(String, Value)>>,
    pub resources: Resources,
    pub evaluate: Vec<Evaluate>,
}

/// One evaluation of `evaluate:` (a mapping, or each entry of a list):
/// every search of the sweep that finishes has its final cell trained from
/// scratch with these train keys, once per seed. A list trains each cell
/// once per entry, e.g. on CIFAR-10 and transferred to ImageNet.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluate {
    /// The train keys; the genotype, and unless given the dataset and data
    /// folder, come from each search.
    pub config: crate::config::train::TrainConfig,
    /// Whether the file set `dataset` / `data_dir` (else the search's).
    pub own_data: bool,
    /// Seeds of the train runs of each search (default `[0]`).
    pub seeds: Vec<u64>,
    /// Processes each training runs in, data-parallel (`nproc`, default
    /// 1), as `ddsas train --nproc` does. Not part of the train run's
    /// config: how a run is executed never changes what it is.
    pub nproc: u32,
}

impl Evaluate {
    /// What the evaluation trains, for `sweep plan`: the keys the file
    /// set (the others are the dataset's defaults) and its seeds, e.g.
    /// "with dataset=imagenet epochs=250, seeds [0]".
    pub fn describe(&self) -> String {
        let defaults =
            serde_json::to_value(crate::config::train::TrainConfig::default()).unwrap_or_default();
        let set = serde_json::to_value(&self.config).unwrap_or_default();
        let keys: Vec<String> = crate::config::train::train_config_keys()
            .iter()
            .filter(|k| !matches!(k.as_str(), "genotype" | "download"))
            .filter(|k| set[k.as_str()] != defaults[k.as_str()])
            .map(|k| match &set[k.as_str()] {
                serde_json::Value::String(v) => format!("{k}={v}"),
                v => format!("{k}={v}"),
            })
            .collect();
        let data = if self.own_data {
            "with "
        } else {
            "on each search's dataset with "
        };
        let keys = if keys.is_empty() {
            "the dataset's defaults".to_owned()
        } else {
            keys.join(" ")
        };
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let nproc = if self.nproc > 1 {
            format!(", {} processes each", self.nproc)
        } else {
            String::new()
        };
        format!("{data}{keys}, seeds [{}]{nproc}", seeds.join(", "))
    }

    /// Refuses an evaluation that asks for data-parallel training
    /// (`nproc` above 1) in a sweep submitted to Slurm by a ddsas built
    /// without `dist`: its pull workers hand such a training to a Slurm job
    /// of its own (`exec::slurm::handoff`), whose ranks need that feature.
    /// `position` names the entry (1-based) in the line.
    pub fn refuse_on_slurm(&self, position: usize) -> Result<(), String> {
        if self.nproc <= 1 || cfg!(feature = "dist") {
            return Ok(());
        }
        Err(format!(
            "entry {position} of `evaluate` asks for nproc: {n}, and this ddsas was built without data-parallel training (the cargo feature `dist`), which the {n} ranks of each training's Slurm job need: build with `cargo build --release --features dist` (needs Gloo's headers: apt-get install libgloo-dev), or leave nproc out",
            n = self.nproc
        ))
    }
}

/// The `nproc` of an evaluation's mapping (removed from it; default 1), or
/// why it is not a positive count.
fn take_nproc(mapping: &mut Mapping) -> Result<u32, ()> {
    match mapping.remove("nproc") {
        None => Ok(1),
        Some(value) => serde_yaml::from_value::<u32>(value)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or(()),
    }
}

/// Parses and checks a sweep file's text; `file` names it in messages.
pub(crate) fn parse(text: &str, file: &str) -> Result<Spec, SweepError> {
    let raw: RawSweep = serde_yaml::from_str(text).map_err(|e| syntax_error(file, &e))?;
    let ctx = Ctx { text, file };
    check_name(&ctx, &raw.name)?;
    let mut base = raw.base.unwrap_or_default();
    for key in string_keys(&ctx, "base", &base)? {
        ctx.check_key("base", &key)?;
    }
    let download = raw.resources.as_ref().is_some_and(Resources::download);
    if download && !base.contains_key("download") {
        // Not in the fingerprint: the runs stay the ones planned without it.
        base.insert("download".into(), Value::Bool(true));
    }
    let grid = ctx.axes("grid", raw.grid.unwrap_or_default(), false)?;
    let zip = ctx.axes("zip", raw.zip.unwrap_or_default(), true)?;
    let runs = runs_of(&ctx, raw.runs)?;
    if raw.seeds.is_some() {
        seed_set_once(&ctx, &base, &grid, &zip, &runs)?;
    }
    let exclude = exclude_of(&ctx, raw.exclude)?;
    let resources = raw.resources.unwrap_or_default();
    check_resources(&ctx, &resources)?;
    let evaluate = evaluations_of(&ctx, raw.evaluate, download)?;
    Ok(Spec {
        evaluate,
        name: raw.name,
        description: raw.description,
        base,
        grid,
        zip,
        runs,
        seeds: raw.seeds,
        exclude,
        resources,
    })
}

/// A sweep's name names its runs in figures and `runs list --sweep`, and
/// its report folder: letters, digits, `_`, `-` and `.` only.
fn check_name(ctx: &Ctx<'_>, name: &str) -> Result<(), SweepError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ctx.spec(
            "name",
            "name",
            format!(
                "sweep name `{name}` must be non-empty and use only letters, digits, `_`, `-` and `.`"
            ),
        ));
    }
    Ok(())
}

/// The checked `runs:` entries; an empty list is refused, since it would
/// plan nothing where leaving `runs` out plans `base` alone.
fn runs_of(ctx: &Ctx<'_>, raw: Option<Vec<Mapping>>) -> Result<Vec<Entry>, SweepError> {
    if raw.as_ref().is_some_and(Vec::is_empty) {
        return Err(SweepError::Spec {
            file: ctx.file.to_owned(),
            location: ctx
                .text
                .lines()
                .position(|l| l.starts_with("runs:"))
                .map(|i| (i + 1, 1)),
            message: "`runs` is an empty list; list at least one entry, or leave `runs` out to run `base` alone".into(),
        });
    }
    raw.unwrap_or_default()
        .into_iter()
        .map(|entry| ctx.entry(entry))
        .collect()
}

/// The `exclude:` entries as (key, value) pairs, every key checked.
fn exclude_of(
    ctx: &Ctx<'_>,
    raw: Option<Vec<Mapping>>,
) -> Result<Vec<Vec<(String, Value)>>, SweepError> {
    let mut exclude = Vec::new();
    for entry in raw.unwrap_or_default() {
        let mut pairs = Vec::new();
        for (k, v) in entry {
            let key = ctx.key_string("exclude", &k)?;
            ctx.check_key("exclude", &key)?;
            pairs.push((key, v));
        }
        exclude.push(pairs);
    }
    Ok(exclude)
}

/// `resources:` values that would plan nothing or divide by zero.
fn check_resources(ctx: &Ctx<'_>, resources: &Resources) -> Result<(), SweepError> {
    if resources.runs_per_gpu == Some(0) {
        return Err(ctx.spec(
            "resources",
            "runs_per_gpu",
            "`runs_per_gpu` must be at least 1".into(),
        ));
    }
    if resources.cpu_threads_per_run == Some(0) {
        return Err(ctx.spec(
            "resources",
            "cpu_threads_per_run",
            "`cpu_threads_per_run` must be at least 1".into(),
        ));
    }
    if let Some(gb) = resources.gpu_mem_gb_per_run {
        if !(gb > 0.0 && gb.is_finite()) {
            return Err(ctx.spec(
                "resources",
                "gpu_mem_gb_per_run",
                format!("`gpu_mem_gb_per_run` must be a positive number of GB, not {gb}"),
            ));
        }
    }
    Ok(())
}

/// Checks `evaluate:`: one mapping of train keys, or a list of them (each
/// an evaluation of every search's cell); messages about a list's entry
/// name it by its position.
fn evaluations_of(
    ctx: &Ctx<'_>,
    raw: Option<Value>,
    download: bool,
) -> Result<Vec<Evaluate>, SweepError> {
    let with_download = |mut mapping: Mapping| {
        if download && !mapping.contains_key("download") {
            mapping.insert("download".into(), Value::Bool(true));
        }
        mapping
    };
    let not_a_mapping = |what: &str| SweepError::Spec {
        file: ctx.file.to_owned(),
        location: None,
        message: format!(
            "{what} must be a mapping of train keys, e.g. {{dataset: imagenet, epochs: 250}}"
        ),
    };
    match raw {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Mapping(mapping)) => Ok(vec![evaluate_of(ctx, with_download(mapping), "")?]),
        Some(Value::Sequence(entries)) if entries.is_empty() => Err(SweepError::Spec {
            file: ctx.file.to_owned(),
            location: None,
            message: "`evaluate` lists no evaluation; leave it out, or give train keys, e.g. [{epochs: 600}]".into(),
        }),
        Some(Value::Sequence(entries)) => entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let which = format!("entry {} of `evaluate`", i + 1);
                match entry {
                    Value::Mapping(mapping) => {
                        evaluate_of(ctx, with_download(mapping), &format!("{which}: "))
                    }
                    other => Err(not_a_mapping(&format!("{which} ({})", short_value(&other)))),
                }
            })
            .collect(),
        Some(other) => Err(not_a_mapping(&format!(
            "`evaluate` ({}) must be a list of evaluations or one; each",
            short_value(&other)
        ))),
    }
}

/// A YAML value in a few words, for messages.
fn short_value(value: &Value) -> String {
    let text = serde_yaml::to_string(value).unwrap_or_default();
    let text = text.trim();
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(40).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// Checks one evaluation: train keys (as `ddsas train --print-config`
/// lists them) plus `seeds`, without `genotype` (each search gives its
/// own); `which` starts its messages ("entry 2 of `evaluate`: ", or
/// nothing for the single mapping).
fn evaluate_of(ctx: &Ctx<'_>, mut mapping: Mapping, which: &str) -> Result<Evaluate, SweepError> {
    if mapping.contains_key("genotype") {
        return Err(ctx.spec(
            "evaluate",
            "genotype",
            format!(
                "{which}`evaluate` trains each search's own final cell, so it takes no `genotype`"
            ),
        ));
    }
    let seeds = match mapping.remove("seeds") {
        None => vec![0],
        Some(value) => serde_yaml::from_value::<Vec<u64>>(value)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ctx.spec(
                    "evaluate",
                    "seeds",
                    format!("{which}`evaluate.seeds` must be a non-empty list of seeds, e.g. [0]"),
                )
            })?,
    };
    let nproc = take_nproc(&mut mapping).map_err(|()| {
        ctx.spec(
            "evaluate",
            "nproc",
            format!("{which}`evaluate.nproc` must be a whole number of processes, at least 1, e.g. 8 (one per GPU)"),
        )
    })?;
    let own_data = mapping.contains_key("dataset") || mapping.contains_key("data_dir");
    let config = crate::config::train::TrainConfig::from_yaml_value(
        Value::Mapping(mapping),
        &format!("{}: evaluate", ctx.file),
    )
    .map_err(|e| SweepError::Spec {
        file: ctx.file.to_owned(),
        location: None,
        message: format!("{which}{e}"),
    })?;
    let probe = crate::config::train::TrainConfig {
        genotype: "darts_v2".into(),
        ..config.clone()
    };
    if let Err(e) = probe.resolve() {
        return Err(SweepError::Spec {
            file: ctx.file.to_owned(),
            location: None,
            message: if which.is_empty() {
                format!("evaluate: {e}")
            } else {
                format!("{which}{e}")
            },
        });
    }
    Ok(Evaluate {
        config,
        own_data,
        seeds,
        nproc,
    })
}

/// The first evaluation of a sweep file's text as it was registered
/// (`sweeps.spec_yaml`): the one whose train config the figures and Table
/// 5 use, read without checking the rest of the file or resolving
/// anything, so that a report on any machine knows which train config is
/// the sweep's own: `None` when the text has none or this ddsas cannot
/// read it.
pub fn stored_evaluate(text: &str) -> Option<Evaluate> {
    let raw: Value = serde_yaml::from_str(text).ok()?;
    let first = match raw.get("evaluate")? {
        Value::Sequence(entries) => entries.first()?.clone(),
        single => single.clone(),
    };
    let Value::Mapping(mut mapping) = first else {
        return None;
    };
    if mapping.contains_key("genotype") {
        return None;
    }
    let seeds = match mapping.remove("seeds") {
        None => vec![0],
        Some(value) => serde_yaml::from_value::<Vec<u64>>(value).ok()?,
    };
    let nproc = take_nproc(&mut mapping).ok()?;
    let own_data = mapping.contains_key("dataset") || mapping.contains_key("data_dir");
    let config =
        crate::config::train::TrainConfig::from_yaml_value(Value::Mapping(mapping), "evaluate")
            .ok()?;
    Some(Evaluate {
        config,
        own_data,
        seeds,
        nproc,
    })
}

/// With `seeds:` the seed of every run comes from that list, so a `seed`
/// key anywhere else would be silently overridden: refused instead.
fn seed_set_once(
    ctx: &Ctx<'_>,
    base: &Mapping,
    grid: &[Axis],
    zip: &[Axis],
    runs: &[Entry],
) -> Result<(), SweepError> {
    let in_axes = |axes: &[Axis]| axes.iter().any(|a| a.key == "seed");
    let section = if base.contains_key("seed") {
        Some("base")
    } else if in_axes(grid) {
        Some("grid")
    } else if in_axes(zip) {
        Some("zip")
    } else if runs.iter().any(|e| {
        e.set.iter().any(|(k, _)| k == "seed")
            || in_axes(&e.grid)
            || e.zip.as_deref().is_some_and(in_axes)
    }) {
        Some("runs")
    } else {
        None
    };
    match section {
        Some(section) => Err(ctx.spec(
            section,
            "seed",
            format!("`seed` is set in `{section}` and by `seeds:`, which would override it; keep one of the two"),
        )),
        None => Ok(()),
    }
}

/// `file:line:column: message` from a serde_yaml error (its message without
/// the trailing "at line L column C", which the prefix already says).
fn syntax_error(file: &str, e: &serde_yaml::Error) -> SweepError {
    let text = e.to_string();
    let location = e.location().map(|l| (l.line(), l.column()));
    let message = match text.rsplit_once(" at line ") {
        Some((head, _)) if location.is_some() => head.to_owned(),
        _ => text,
    }
    .replace(
        "expected struct RawSweep",
        "expected a mapping with `name:` and the sweep's sections (`ddsas sweep plan --help`)",
    );
    SweepError::Spec {
        file: file.to_owned(),
        location,
        message,
    }
}

fn string_keys(ctx: &Ctx<'_>, section: &str, map: &Mapping) -> Result<Vec<String>, SweepError> {
    map.keys().map(|k| ctx.key_string(section, k)).collect()
}

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Ctx<'_> {
    fn spec(&self, section: &str, key: &str, message: String) -> SweepError {
        SweepError::Spec {
            file: self.file.to_owned(),
            location: locate(self.text, section, key),
            message,
        }
    }

    fn key_string(&self, section: &str, key: &Value) -> Result<String, SweepError> {
        key.as_str().map(str::to_owned).ok_or_else(|| SweepError::Spec {
            file: self.file.to_owned(),
            location: None,
            message: format!("`{section}` has a key {} that is not a string; keys are config names such as `L`", short(key)),
        })
    }

    fn check_key(&self, section: &str, key: &str) -> Result<(), SweepError> {
        if is_config_key(key) {
            Ok(())
        } else {
            Err(self.spec(
                section,
                key,
                format!(
                    "unknown config key `{key}` in `{section}`; {}",
                    suggestion(key)
                ),
            ))
        }
    }

    /// The axes of a `grid` or `zip` mapping (every value a list; zip lists
    /// of one length).
    fn axes(&self, section: &str, map: Mapping, zip: bool) -> Result<Vec<Axis>, SweepError> {
        let mut axes = Vec::new();
        for (k, v) in map {
            let key = self.key_string(section, &k)?;
            self.check_key(section, &key)?;
            let Value::Sequence(values) = v else {
                return Err(self.spec(
                    section,
                    &key,
                    format!("`{section}` axis `{key}` must be a list of values, e.g. `{key}: [{}]`, not {}", short(&v), short(&v)),
                ));
            };
            axes.push(Axis { key, values });
        }
        if zip {
            if let Some(first) = axes.first() {
                if let Some(other) = axes.iter().find(|a| a.values.len() != first.values.len()) {
                    return Err(self.spec(
                        section,
                        &other.key,
                        format!(
                            "`zip` varies its lists together, so they must have one length: `{}` has {} values but `{}` has {}",
                            first.key,
                            first.values.len(),
                            other.key,
                            other.values.len()
                        ),
                    ));
                }
            }
        }
        Ok(axes)
    }

    fn entry(&self, map: Mapping) -> Result<Entry, SweepError> {
        let mut entry = Entry::default();
        for (k, v) in map {
            let key = self.key_string("runs", &k)?;
            match key.as_str() {
                "grid" | "zip" => {
                    let Value::Mapping(inner) = v else {
                        return Err(self.spec(
                            "runs",
                            &key,
                            format!(
                                "`{key}` inside a `runs` entry must be a mapping of key: [values]"
                            ),
                        ));
                    };
                    let axes = self.axes("runs", inner, key == "zip")?;
                    if key == "grid" {
                        entry.grid = axes;
                    } else {
                        entry.zip = Some(axes);
                    }
                }
                _ => {
                    self.check_key("runs", &key)?;
                    entry.set.push((key, v));
                }
            }
        }
        Ok(entry)
    }
}

/// A YAML value on one line, for messages and tables.
pub(crate) fn short(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("{other:?}")),
    }
}
