//! Search configuration: what a user types (`SearchConfig`, YAML or `--set`)
//! and what the engine runs (`ResolvedConfig`, validated once).
//!
//! Defaults are the paper's (docs/design.md §2, appendix B.1). The fingerprint of a
//! run is a hash of the canonical JSON of the resolved config, so two configs
//! that resolve to the same search share one fingerprint.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::arch::space::SpaceKind;
use crate::data::DatasetKind;

pub mod train;

/// Search method: the paper's DDSAS or one of the two baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Dynamic and differentiable space-architecture search (UCB subspaces).
    Ddsas,
    /// First-order DARTS: every op on every edge.
    Darts,
    /// GDAS: one op per edge drawn by hard Gumbel-softmax.
    Gdas,
}

impl Method {
    /// The method of a lowercase name (`ddsas`, `darts`, `gdas`).
    pub fn parse(name: &str) -> Option<Method> {
        [Method::Ddsas, Method::Darts, Method::Gdas]
            .into_iter()
            .find(|m| m.name() == name)
    }

    /// Whether a config key changes what this method does. The DDSAS-only
    /// and GDAS-only keys are pinned to their defaults in the other
    /// methods' resolved configs, so they say nothing about those runs.
    pub fn uses(self, key: &str) -> bool {
        match self {
            Method::Ddsas => !GDAS_ONLY_KEYS.contains(&key),
            Method::Gdas => !DDSAS_ONLY_KEYS.contains(&key),
            Method::Darts => !DDSAS_ONLY_KEYS.contains(&key) && !GDAS_ONLY_KEYS.contains(&key),
        }
    }

    /// The lowercase name used in configs and the database.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ddsas => "ddsas",
            Method::Darts => "darts",
            Method::Gdas => "gdas",
        }
    }
}

/// Keys only DDSAS uses (pinned to their defaults for the baselines).
pub const DDSAS_ONLY_KEYS: &[&str] = &[
    "L",
    "M",
    "approximation",
    "ucb_c",
    "begin",
    "random_prob",
    "space_schedule",
];

/// Keys only GDAS uses.
pub const GDAS_ONLY_KEYS: &[&str] = &["tau_max", "tau_min"];

/// One step of the elastic space schedule that shrinks the space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShrinkStep {
    /// Epoch (0-based) at whose start the ops are removed.
    pub epoch: u32,
    /// How many available ops (per cell type) with the lowest saliency to remove.
    pub remove: u32,
}

/// One step of the elastic space schedule that expands the space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpandStep {
    /// Epoch (0-based) at whose start the ops become available.
    pub epoch: u32,
    /// Op names made available on every edge.
    pub ops: Vec<String>,
}

/// Elastic space schedule (reference design option): which ops are available
/// at the start, and when the space shrinks or expands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SpaceSchedule {
    /// Op names available at the start (default: every op of the space).
    #[serde(default)]
    pub initial: Option<Vec<String>>,
    /// Steps that remove the lowest-saliency ops.
    #[serde(default)]
    pub shrink: Vec<ShrinkStep>,
    /// Steps that make more ops available.
    #[serde(default)]
    pub expand: Vec<ExpandStep>,
}

/// A search config as written by the user; every field has the paper's default.
#[allow(non_snake_case)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// `ddsas`, `darts` or `gdas`.
    pub method: Method,
    /// `darts` or `nb201`.
    pub space: SpaceKind,
    /// `digits` (bundled), `cifar10` or `cifar100`.
    pub dataset: DatasetKind,
    /// Folder holding the CIFAR files (either layout); unused for digits.
    /// Unset: the data folder (`DDSAS_DATA`, else `~/.cache/ddsas/data`),
    /// where `ddsas data get` puts them.
    pub data_dir: Option<PathBuf>,
    /// Fetch a missing CIFAR dataset into the data folder before the run
    /// (under a lock, once). How the data is got does not change what a
    /// run measures, so the key is left out of the canonical config and
    /// the fingerprint.
    pub download: bool,
    /// Search epochs (paper: 50).
    pub epochs: u32,
    /// Minibatch size of both halves (paper: 64).
    pub batch_size: u32,
    /// DARTS space: number of cells (8); NB201: cells per stage (5).
    pub layers: Option<u32>,
    /// Channels of the first stage (16).
    pub init_channels: u32,
    /// Seed of every random source; the per-epoch streams derive from it.
    pub seed: u64,
    /// Share of the training set used for weight steps (the rest: arch steps).
    pub train_portion: f64,
    /// Cap on search steps per epoch (None: one pass over the smaller half).
    pub steps_per_epoch: Option<u32>,
    /// Weight SGD: initial learning rate (0.025).
    pub w_lr: f64,
    /// Weight SGD: final cosine learning rate (0.001).
    pub w_lr_min: f64,
    /// Weight SGD momentum (0.9).
    pub w_momentum: f64,
    /// Weight SGD weight decay (3e-4).
    pub w_weight_decay: f64,
    /// Gradient-norm clip of the weights (5).
    pub grad_clip: f64,
    /// Architecture Adam learning rate (3e-4).
    pub arch_lr: f64,
    /// Architecture Adam betas (0.5, 0.999).
    pub arch_betas: (f64, f64),
    /// Architecture Adam weight decay (1e-4).
    pub arch_weight_decay: f64,
    /// DDSAS: subspace size per cell type, every op counted, `none` included
    /// (DARTS space 14..=112, NB201 6..=30; the largest is the whole space).
    pub L: u32,
    /// DDSAS: weight steps between subspace updates.
    pub M: u32,
    /// DDSAS: mixture weights with the approximation of Eq. 7 (true) or the
    /// exact normalized Eq. 9 (false).
    pub approximation: bool,
    /// DDSAS: UCB exploration constant c.
    pub ucb_c: f64,
    /// DDSAS: epochs of uniformly random subspaces before UCB starts.
    pub begin: u32,
    /// DDSAS: chance of drawing a random subspace instead of the UCB one.
    pub random_prob: f64,
    /// DDSAS: elastic space schedule (shrink / expand).
    pub space_schedule: SpaceSchedule,
    /// GDAS: initial Gumbel temperature.
    pub tau_max: f64,
    /// GDAS: final Gumbel temperature.
    pub tau_min: f64,
    /// Record per-step cosine distance and minibatch accuracy (Fig. 10).
    pub log_steps: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            method: Method::Ddsas,
            space: SpaceKind::Darts,
            dataset: DatasetKind::Digits,
            data_dir: None,
            download: false,
            epochs: 50,
            batch_size: 64,
            layers: None,
            init_channels: 16,
            seed: 0,
            train_portion: 0.5,
            steps_per_epoch: None,
            w_lr: 0.025,
            w_lr_min: 0.001,
            w_momentum: 0.9,
            w_weight_decay: 3e-4,
            grad_clip: 5.0,
            arch_lr: 3e-4,
            arch_betas: (0.5, 0.999),
            arch_weight_decay: 1e-4,
            L: 28,
            M: 50,
            approximation: true,
            ucb_c: 1.44,
            begin: 0,
            random_prob: 0.0,
            space_schedule: SpaceSchedule::default(),
            tau_max: 10.0,
            tau_min: 0.1,
            log_steps: false,
        }
    }
}

/// A config rejected before anything runs; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// YAML that does not parse, or a key that does not exist / has a wrong type.
    #[error("{file}: {message}")]
    Parse {
        /// File (or `--set`) the text came from.
        file: String,
        /// serde_yaml's message, with line and column.
        message: String,
    },
    /// A value outside its range.
    #[error("invalid value for `{key}`: {message}")]
    Invalid {
        /// The offending key.
        key: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The config file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// Path of the file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// serde_yaml's message in the user's terms: an unknown key gets the keys
/// near it instead of the list of all 29, and Rust type names go.
fn friendly(message: &str) -> String {
    friendly_among(message, config_keys())
}

/// [`friendly`] for a config whose keys are `keys`.
pub(crate) fn friendly_among(message: &str, keys: &[String]) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, tail)) = rest.split_once('`') {
            let at = tail
                .rfind(" at line ")
                .map_or(String::new(), |i| format!(" ({})", tail[i + 4..].trim()));
            return format!("unknown key `{key}`{at}; {}", suggestion_among(key, keys));
        }
    }
    message
        .replace(
            "expected struct SearchConfig",
            "expected a mapping of config keys such as `epochs: 3`",
        )
        .replace(
            "expected struct TrainConfig",
            "expected a mapping of config keys such as `epochs: 3`",
        )
        .replace("unknown variant", "unknown value")
}

/// A config of type `T` from a YAML mapping (an empty document gives the
/// defaults); unknown keys get the nearest of `keys`.
pub(crate) fn config_from_yaml<T: DeserializeOwned>(
    value: serde_yaml::Value,
    origin: &str,
    keys: &[String],
) -> Result<T, ConfigError> {
    let value = match value {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        v => v,
    };
    serde_yaml::from_value(value).map_err(|e| ConfigError::Parse {
        file: origin.to_owned(),
        message: friendly_among(&e.to_string(), keys),
    })
}

/// `config` with `key=value` overrides (`--set`), each value parsed as
/// YAML and checked at once, so that the message names the key.
pub(crate) fn apply_overrides<T: Serialize + DeserializeOwned>(
    config: T,
    overrides: &[String],
    keys: &[String],
) -> Result<T, ConfigError> {
    if overrides.is_empty() {
        return Ok(config);
    }
    let mut value = serde_yaml::to_value(&config).expect("a config always serializes");
    for item in overrides {
        let (key, raw) = item.split_once('=').ok_or_else(|| ConfigError::Parse {
            file: "--set".into(),
            message: format!("`{item}` is not of the form key=value"),
        })?;
        let parsed: serde_yaml::Value =
            serde_yaml::from_str(raw).map_err(|e| ConfigError::Parse {
                file: format!("--set {key}"),
                message: e.to_string(),
            })?;
        set_path(&mut value, key.trim(), parsed);
        config_from_yaml::<T>(value.clone(), &format!("--set {item}"), keys)?;
    }
    config_from_yaml(value, "--set", keys)
}

/// A sweep file handed to `ddsas search --config`.
fn looks_like_a_sweep(text: &str) -> bool {
    let top: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with([' ', '\t', '#', '-']))
        .filter_map(|l| l.split(':').next())
        .collect();
    top.contains(&"name")
        && ["base", "grid", "zip", "runs", "seeds"]
            .iter()
            .any(|k| top.contains(k))
}

pub(crate) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl SearchConfig {
    /// Reads a YAML config file; unknown keys and wrong types are errors
    /// that carry the file, line and column.
    pub fn from_yaml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        if text.trim().is_empty() {
            return Ok(SearchConfig::default());
        }
        // Deserialising from the text (not a Value) keeps serde_yaml's
        // key path and line:column in the message.
        serde_yaml::from_str(&text).map_err(|e| {
            let mut message = friendly(&e.to_string());
            if looks_like_a_sweep(&text) {
                message.push_str(&format!(
                    "\nhint: this looks like a sweep file (it has `name:` and sweep sections); run it with `ddsas sweep run {}`",
                    path.display()
                ));
            }
            ConfigError::Parse {
                file: path.display().to_string(),
                message,
            }
        })
    }

    /// Builds a config from a YAML mapping (an empty document gives defaults).
    pub fn from_yaml_value(value: serde_yaml::Value, origin: &str) -> Result<Self, ConfigError> {
        config_from_yaml(value, origin, config_keys())
    }

    /// Applies `key=value` overrides (`--set`), the value parsed as YAML.
    pub fn with_overrides(self, overrides: &[String]) -> Result<Self, ConfigError> {
        apply_overrides(self, overrides, config_keys())
    }

    /// Validates every value and fills the space-dependent defaults.
    pub fn resolve(self) -> Result<ResolvedConfig, ConfigError> {
        let space = crate::arch::space::SearchSpace::new(self.space);
        let layers = self.layers.unwrap_or(match self.space {
            SpaceKind::Darts => 8,
            SpaceKind::Nb201 => 5,
        });
        self.check_sizes(layers)?;
        self.check_optimisers()?;
        self.check_subspaces(&space)?;
        let schedule = resolve_schedule(&space, &self.space_schedule, self.epochs)?;
        let data = resolve_data_dir(self.dataset, self.data_dir.as_deref(), self.download)?;
        let download = self.download;
        let mut config = self;
        config.layers = Some(layers);
        config.data_dir = data.written;
        config.download = false;
        config.pin_unused_keys();
        Ok(ResolvedConfig {
            config,
            layers,
            data_dir: data.folder,
            download,
            initial_ops: schedule,
        })
    }

    /// Sizes, seed and data split: what the network and the batches need.
    fn check_sizes(&self, layers: u32) -> Result<(), ConfigError> {
        check(self.epochs >= 1, "epochs", "must be at least 1")?;
        check(
            self.batch_size >= 2,
            "batch_size",
            "must be at least 2 (batch norm needs two images)",
        )?;
        check(
            (1..=MAX_LAYERS).contains(&layers),
            "layers",
            &format!("must lie in 1..={MAX_LAYERS} (the paper searches with 8 cells, NB201 with 5 per stage)"),
        )?;
        check(
            self.init_channels <= MAX_INIT_CHANNELS,
            "init_channels",
            &format!("must be at most {MAX_INIT_CHANNELS} (the paper uses 16)"),
        )?;
        check(
            self.batch_size <= MAX_BATCH_SIZE,
            "batch_size",
            &format!("must be at most {MAX_BATCH_SIZE} (the paper uses 64)"),
        )?;
        check(
            i64::try_from(self.seed).is_ok(),
            "seed",
            "must be at most 2^63 - 1 (it is stored as an SQLite integer)",
        )?;
        check(
            self.init_channels >= 2 && self.init_channels.is_multiple_of(2),
            "init_channels",
            "must be an even number of at least 2",
        )?;
        check(
            self.train_portion > 0.05 && self.train_portion < 0.95,
            "train_portion",
            "must lie in (0.05, 0.95)",
        )?;
        check(
            self.steps_per_epoch != Some(0),
            "steps_per_epoch",
            "must be at least 1 when set",
        )?;
        Ok(())
    }

    /// Learning rates, momentum, clipping, betas and decays.
    fn check_optimisers(&self) -> Result<(), ConfigError> {
        check(
            self.w_lr > 0.0 && self.w_lr_min >= 0.0 && self.w_lr_min <= self.w_lr,
            "w_lr",
            "needs 0 <= w_lr_min <= w_lr and w_lr > 0",
        )?;
        check(
            (0.0..1.0).contains(&self.w_momentum),
            "w_momentum",
            "must lie in [0, 1)",
        )?;
        check(self.grad_clip > 0.0, "grad_clip", "must be positive")?;
        check(self.arch_lr > 0.0, "arch_lr", "must be positive")?;
        let (b1, b2) = self.arch_betas;
        check(
            (0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2),
            "arch_betas",
            "both betas must lie in [0, 1)",
        )?;
        check(
            self.w_weight_decay >= 0.0 && self.arch_weight_decay >= 0.0,
            "w_weight_decay",
            "weight decays must be non-negative",
        )?;
        Ok(())
    }

    /// DDSAS's subspace keys (L, M, UCB, warm-up) and GDAS's temperature.
    fn check_subspaces(&self, space: &crate::arch::space::SearchSpace) -> Result<(), ConfigError> {
        let (lowest, whole) = (space.edges() as u32, space.ops_per_cell() as u32);
        if !(lowest..=whole).contains(&self.L) {
            return Err(invalid(
                "L",
                format!(
                    "L = {} is outside {lowest}..={whole} for the {} space: L counts every op of a cell type's subspace, `none` included; every one of the {lowest} edges keeps at least one op, and L = {whole} ({lowest} edges x {} ops) is the whole space",
                    self.L,
                    self.space.name(),
                    space.num_ops()
                ),
            ));
        }
        check(
            self.M >= 1,
            "M",
            "M is the number of weight steps between subspace updates and must be at least 1",
        )?;
        check(
            self.ucb_c >= 0.0 && self.ucb_c.is_finite(),
            "ucb_c",
            "must be a finite non-negative number",
        )?;
        check(
            (0.0..=1.0).contains(&self.random_prob),
            "random_prob",
            "is a probability and must lie in [0, 1]",
        )?;
        check(
            self.begin < self.epochs || self.begin == 0,
            "begin",
            "random-subspace warm-up must be shorter than the search",
        )?;
        check(
            self.tau_max > 0.0 && self.tau_min > 0.0 && self.tau_min <= self.tau_max,
            "tau_max",
            "needs 0 < tau_min <= tau_max",
        )?;
        Ok(())
    }

    /// Keys a method does not use take their defaults, so that they do not
    /// split the fingerprints of runs that are the same search.
    fn pin_unused_keys(&mut self) {
        if self.method != Method::Ddsas {
            // DDSAS-only knobs do not change a baseline run: pin them so that
            // they do not split fingerprints.
            let d = SearchConfig::default();
            self.L = d.L;
            self.M = d.M;
            self.approximation = d.approximation;
            self.ucb_c = d.ucb_c;
            self.begin = d.begin;
            self.random_prob = d.random_prob;
            self.space_schedule = d.space_schedule;
        }
        if self.method != Method::Gdas {
            let d = SearchConfig::default();
            self.tau_max = d.tau_max;
            self.tau_min = d.tau_min;
        }
    }
}

/// Upper bounds that catch a typo (`layers: 800`) before it allocates the
/// machine's memory away; far above anything the paper or NB201 uses.
const MAX_LAYERS: u32 = 64;
const MAX_INIT_CHANNELS: u32 = 1024;
const MAX_BATCH_SIZE: u32 = 65_536;

/// Where a run reads its CIFAR files from, and what its config records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataDir {
    /// `data_dir` as the canonical config keeps it: the given folder made
    /// absolute, or none when the data folder is used (so a run's identity
    /// does not depend on where a machine keeps its cache).
    pub written: Option<PathBuf>,
    /// The folder to read, absolute; none for the digits.
    pub folder: Option<PathBuf>,
}

/// The data folder of `dataset`: `data_dir` made absolute (so that a
/// fingerprint does not depend on the folder a run is started from), or,
/// when unset, the data folder of [`crate::data::home`] if the dataset is
/// there or `download` will fetch it there; none for the digits.
pub(crate) fn resolve_data_dir(
    dataset: DatasetKind,
    data_dir: Option<&Path>,
    download: bool,
) -> Result<DataDir, ConfigError> {
    resolve_data_dir_in(dataset, data_dir, download, crate::data::home::data_home())
}

/// [`resolve_data_dir`] with the data folder given.
fn resolve_data_dir_in(
    dataset: DatasetKind,
    data_dir: Option<&Path>,
    download: bool,
    home: Option<crate::data::home::DataHome>,
) -> Result<DataDir, ConfigError> {
    if dataset == DatasetKind::Digits {
        return Ok(DataDir {
            written: None,
            folder: None,
        });
    }
    let Some(dir) = data_dir else {
        return data_folder_of(dataset, download, home);
    };
    if !dir.is_dir() {
        return Err(invalid(
            "data_dir",
            format!(
                "{} is not a directory; point it at the folder holding {}",
                dir.display(),
                if dataset == DatasetKind::ImageNet {
                    "ImageNet's train/ and val/ class folders"
                } else {
                    "the CIFAR files"
                }
            ),
        ));
    }
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    Ok(DataDir {
        written: Some(dir.clone()),
        folder: Some(dir),
    })
}

/// The data folder, for a config without `data_dir`: it must hold the
/// dataset already, or `download` fetches it there before the run.
fn data_folder_of(
    dataset: DatasetKind,
    download: bool,
    home: Option<crate::data::home::DataHome>,
) -> Result<DataDir, ConfigError> {
    if dataset == DatasetKind::ImageNet {
        return imagenet_folder_of(download, home);
    }
    let name = dataset.name();
    let folders = "cifar-10-batches-bin / cifar-10-batches-py (or the CIFAR-100 equivalents)";
    let Some(home) = home else {
        return Err(invalid(
            "data_dir",
            format!(
                "dataset {name} needs `data_dir`, the folder holding {folders}, and there is no data folder to look in (neither DDSAS_DATA nor HOME is set); set DDSAS_DATA and run `ddsas data get {name}`, or set --set data_dir=/path/to/cifar"
            ),
        ));
    };
    let found = crate::data::find(dataset, &home.dir);
    match found {
        Ok(_) => {}
        Err(_) if download => {}
        Err(crate::data::DataError::NotFound { .. }) => {
            return Err(invalid(
                "data_dir",
                format!(
                    "dataset {name} is not in the data folder {} (from {}): run `ddsas data get {name}` to fetch it there, or add --set download=true to fetch it on first use, or set `data_dir` to the folder holding {folders}",
                    home.dir.display(),
                    home.from
                ),
            ));
        }
        Err(e) => {
            return Err(invalid(
                "data_dir",
                format!(
                    "{e} (the data folder, from {}; `ddsas data get {name} --force` fetches it again)",
                    home.from
                ),
            ));
        }
    }
    Ok(DataDir {
        written: None,
        folder: Some(home.dir),
    })
}

/// ImageNet's folder in the data folder, for a config without `data_dir`.
/// Nothing fetches ImageNet (its licence asks every user to download it
/// from image-net.org), so `download` is refused and a missing folder
/// points at `ddsas data get imagenet`, which says how to lay one out.
fn imagenet_folder_of(
    download: bool,
    home: Option<crate::data::home::DataHome>,
) -> Result<DataDir, ConfigError> {
    let how = "`ddsas data get imagenet` says where to download it and how to lay it out";
    if download {
        return Err(invalid(
            "download",
            format!("ImageNet cannot be fetched by ddsas; {how}, then set `data_dir` to it or put it in the data folder's `imagenet` folder"),
        ));
    }
    let Some(home) = home else {
        return Err(invalid(
            "data_dir",
            format!("dataset imagenet needs `data_dir`, the folder holding train/ and val/, and there is no data folder to look in (neither DDSAS_DATA nor HOME is set); {how}"),
        ));
    };
    match crate::data::imagenet::find(&home.dir) {
        Ok(found) => Ok(DataDir {
            written: None,
            folder: Some(found.folder),
        }),
        Err(_) => Err(invalid(
            "data_dir",
            format!(
                "ImageNet is not in the data folder {} (from {}); {how}, or set `data_dir` to the folder holding train/ and val/",
                home.dir.display(),
                home.from
            ),
        )),
    }
}

pub(crate) fn check(ok: bool, key: &'static str, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, message))
    }
}

fn resolve_schedule(
    space: &crate::arch::space::SearchSpace,
    schedule: &SpaceSchedule,
    epochs: u32,
) -> Result<Vec<bool>, ConfigError> {
    let lookup = |name: &str| {
        space.op_index(name).ok_or_else(|| {
            invalid(
                "space_schedule",
                format!(
                    "unknown op `{name}`; the ops of this space are {}",
                    space.ops().join(", ")
                ),
            )
        })
    };
    let mut available = vec![schedule.initial.is_none(); space.ops().len()];
    if let Some(initial) = &schedule.initial {
        for name in initial {
            available[lookup(name)?] = true;
        }
        if !available.iter().skip(1).any(|&a| a) {
            return Err(invalid(
                "space_schedule",
                "`initial` must contain at least one op other than `none`",
            ));
        }
    }
    for step in &schedule.expand {
        for name in &step.ops {
            lookup(name)?;
        }
    }
    let steps = schedule
        .shrink
        .iter()
        .map(|s| s.epoch)
        .chain(schedule.expand.iter().map(|s| s.epoch));
    if let Some(late) = steps.filter(|&e| e >= epochs).max() {
        return Err(invalid(
            "space_schedule",
            format!("a step at epoch {late} never happens in a search of {epochs} epochs (epochs count from 0)"),
        ));
    }
    let countable = space.runnable_ops() as u32;
    if let Some(step) = schedule
        .shrink
        .iter()
        .find(|s| s.remove == 0 || s.remove >= countable)
    {
        return Err(invalid(
            "space_schedule",
            format!(
                "shrink at epoch {} removes {} ops; remove between 1 and {} (the space has {countable} ops besides `none`, and every edge keeps one)",
                step.epoch,
                step.remove,
                countable - 1
            ),
        ));
    }
    Ok(available)
}

/// Sets `a.b.c = value` inside a YAML mapping, creating the mappings on the
/// way: the `--set` semantics, shared with sweep expansion.
pub(crate) fn set_path(root: &mut serde_yaml::Value, key: &str, value: serde_yaml::Value) {
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_mapping() {
            *node = serde_yaml::Value::Mapping(Default::default());
        }
        let map = node.as_mapping_mut().expect("just made a mapping");
        let k = serde_yaml::Value::String((*part).to_owned());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return;
        }
        node = map.entry(k).or_insert(serde_yaml::Value::Null);
    }
}

/// The top-level keys of a search config, in declaration order (taken from
/// the serialized default config, so it can never drift from `SearchConfig`):
/// what sweep files may vary, and the row order of config comparisons.
pub fn config_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let value =
            serde_yaml::to_value(SearchConfig::default()).expect("a config always serializes");
        value
            .as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Whether a (possibly dotted) key starts with a real config key.
pub fn is_config_key(key: &str) -> bool {
    let head = key.split('.').next().unwrap_or(key);
    config_keys().iter().any(|k| k == head)
}

/// "did you mean ..." for an unknown key: the config keys within a small
/// edit distance, or sharing a case-insensitive prefix; else every key.
pub fn key_suggestion(key: &str) -> String {
    suggestion_among(key, config_keys())
}

/// "did you mean `x`? (the config keys are ...)" among `keys`.
pub(crate) fn suggestion_among(key: &str, keys: &[String]) -> String {
    let head = key.split('.').next().unwrap_or(key);
    let lower = head.to_lowercase();
    let near: Vec<&str> = keys
        .iter()
        .filter(|k| {
            let kl = k.to_lowercase();
            kl == lower
                || strsim::levenshtein(&kl, &lower) <= (head.len() / 3).max(1)
                || (lower.len() >= 3
                    && (kl.starts_with(&lower) || lower.starts_with(&kl) && kl.len() >= 3))
                || (lower.len() >= 2 && kl.ends_with(&format!("_{lower}")))
        })
        .map(String::as_str)
        .collect();
    if near.is_empty() {
        format!("the config keys are {}", keys.join(", "))
    } else {
        format!(
            "did you mean {}? (the config keys are {})",
            near.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            keys.join(", ")
        )
    }
}

/// One line on each key of a search config, in the struct's order, for
/// `ddsas search --print-config` (a test keeps it in step with the struct).
pub const KEY_DOCS: &[(&str, &str)] = &[
    ("method", "ddsas | darts | gdas"),
    ("space", "darts | nb201"),
    ("dataset", "digits (bundled) | cifar10 | cifar100"),
    ("data_dir", "folder holding the CIFAR files (either layout); null = the data folder (DDSAS_DATA, else ~/.cache/ddsas/data; `ddsas data get` fills it); unused for digits"),
    ("download", "fetch a missing CIFAR dataset into the data folder first (once, under a lock); not part of the run's identity"),
    ("epochs", "search epochs (paper: 50)"),
    ("batch_size", "minibatch of both halves (paper: 64)"),
    ("layers", "DARTS: cells (8); NB201: cells per stage (5); null = the space's default"),
    ("init_channels", "channels of the first stage (16)"),
    ("seed", "seed of every random source"),
    ("train_portion", "share of the training set for weight steps; the rest drives arch steps"),
    ("steps_per_epoch", "cap on search steps per epoch; null = one pass over the smaller half"),
    ("w_lr", "weight SGD learning rate, cosine-annealed"),
    ("w_lr_min", "weight SGD final learning rate"),
    ("w_momentum", "weight SGD momentum"),
    ("w_weight_decay", "weight SGD weight decay"),
    ("grad_clip", "gradient-norm clip of the weights"),
    ("arch_lr", "architecture Adam learning rate"),
    ("arch_betas", "architecture Adam betas"),
    ("arch_weight_decay", "architecture Adam weight decay"),
    ("L", "DDSAS: ops per cell type in a subspace, none included (DARTS 14..=112, NB201 6..=30; the top = whole space)"),
    ("M", "DDSAS: weight steps between subspace updates"),
    ("approximation", "DDSAS: Eq. 7 approximation (true), or exact Eq. 9 normalised per edge (false): its product is equal for every op of an edge, so it cancels: the space parameters get no gradient and p stays near 0.5 (only weight decay moves beta)"),
    ("ucb_c", "DDSAS: UCB exploration constant c"),
    ("begin", "DDSAS: epochs of uniformly random subspaces before UCB"),
    ("random_prob", "DDSAS: chance of a random subspace instead of the UCB one"),
    ("space_schedule", "DDSAS: elastic space {initial: [ops], shrink: [{epoch, remove}], expand: [{epoch, ops}]}"),
    ("tau_max", "GDAS: initial Gumbel temperature"),
    ("tau_min", "GDAS: final Gumbel temperature"),
    ("log_steps", "record per-step cosine distance and minibatch accuracy (Fig. 10)"),
];

impl SearchConfig {
    /// Every key with its value and a comment: valid YAML that `--config`
    /// reads back, so it doubles as a template.
    pub fn commented_yaml(&self) -> String {
        let value = serde_json::to_value(self).expect("a config always serializes");
        commented_yaml(&value, KEY_DOCS)
    }
}

/// Every key of `value` (a config as JSON) with its value and the comment
/// `docs` gives it: valid YAML that reads back, so it doubles as a template.
pub(crate) fn commented_yaml(value: &serde_json::Value, docs: &[(&str, &str)]) -> String {
    let lines: Vec<(String, &str)> = docs
        .iter()
        .map(|(key, doc)| {
            let text = match &value[*key] {
                // Names such as `ddsas` need no quotes.
                serde_json::Value::String(s)
                    if s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c)) =>
                {
                    s.clone()
                }
                // JSON is YAML flow syntax: one line for lists and maps too.
                v => serde_json::to_string(v).expect("a JSON value always serializes"),
            };
            (format!("{key}: {text}"), *doc)
        })
        .collect();
    // Comments line up, except after the odd long value.
    let width = lines
        .iter()
        .map(|(l, _)| l.len())
        .filter(|&n| n <= 32)
        .max()
        .unwrap_or(0);
    lines
        .iter()
        .map(|(line, doc)| format!("{line:<width$}  # {doc}\n"))
        .collect()
}

/// `config` as canonical JSON (sorted keys) without the top-level `keys`:
/// keys that say how to run, not what is measured.
pub(crate) fn canonical_json_without<T: Serialize>(config: &T, keys: &[&str]) -> String {
    let mut value = serde_json::to_value(config).expect("a config always serializes");
    if let Some(map) = value.as_object_mut() {
        for key in keys {
            map.remove(*key);
        }
    }
    serde_json::to_string(&value).expect("a JSON value always serializes")
}

/// Version of the definitions a method's runs are made under in `space`.
/// It grows when a change makes the same config measure something else,
/// and enters the fingerprint; [`definitions_change`] says what changed.
pub fn definitions(method: Method, space: SpaceKind) -> u32 {
    definitions_history(method, space)
        .last()
        .map_or(1, |(version, _)| *version)
}

/// What changed at each version of [`definitions`] after the first, oldest
/// first. Version 2 of DDSAS and GDAS: L counts `none`; GDAS
/// adds the unpicked ops' hard weights (its authors' form in their
/// NAS-Bench-201 cell). Version 3 of DDSAS and GDAS, 2 of DARTS:
/// the networks' weights start as PyTorch initialises them, where tch's
/// defaults had drawn conv and linear weights sqrt(6) times as large and
/// batch-norm scales from U(0, 1); and GDAS in the DARTS space drops the
/// unpicked ops' terms again, as its authors' DARTS-space cell returns the
/// picked op times its weight alone.
fn definitions_history(method: Method, space: SpaceKind) -> &'static [(u32, &'static str)] {
    const INIT: &str = "weights start as PyTorch initialises them (conv and linear within ±1/sqrt(fan_in), batch-norm scale 1)";
    match (method, space) {
        (Method::Ddsas, _) => &[(2, "L counts `none` like any other op"), (3, INIT)],
        (Method::Gdas, SpaceKind::Nb201) => &[
            (2, "the unpicked ops' hard weights enter the forward pass (as in its authors' NAS-Bench-201 cell)"),
            (3, INIT),
        ],
        (Method::Gdas, SpaceKind::Darts) => &[
            (2, "the unpicked ops' hard weights enter the forward pass"),
            (3, "a DARTS-space node adds only the picked ops times their weights, as its authors' DARTS-space cell does, and weights start as PyTorch initialises them (conv and linear within ±1/sqrt(fan_in), batch-norm scale 1)"),
        ],
        (Method::Darts, _) => &[(2, INIT)],
    }
}

/// [`definitions`] of a run as the database names its method and space
/// (`None` for a name this ddsas does not know, e.g. `train`).
pub fn definitions_named(method: &str, space: &str) -> Option<u32> {
    Some(definitions(
        Method::parse(method)?,
        SpaceKind::parse(space)?,
    ))
}

/// What changed at each version of [`definitions`], for messages.
pub fn definitions_change(method: Method, space: SpaceKind) -> String {
    let changes: Vec<String> = definitions_history(method, space)
        .iter()
        .map(|(version, what)| format!("since version {version}, {what}"))
        .collect();
    changes.join("; ")
}

/// A validated config: the only form the engine accepts.
#[derive(Debug, Clone, PartialEq)]
///
/// Built only by [`SearchConfig::resolve`], and read-only: a change of a
/// key goes through `resolve` again, so no unchecked value can reach the
/// engine (as ripgrep keeps its parsed arguments apart from the low-level
/// ones). The checked values that `SearchConfig` keeps optional have their
/// resolved types here.
pub struct ResolvedConfig {
    /// The config with every default filled in, in its canonical form
    /// (what the fingerprint hashes and the database stores).
    config: SearchConfig,
    /// Cells (DARTS space) or cells per stage (NB201).
    layers: u32,
    /// The CIFAR folder, absolute (none for the bundled digits): the
    /// config's `data_dir`, or the data folder.
    data_dir: Option<PathBuf>,
    /// Whether a missing dataset is fetched into `data_dir` before the run
    /// (the `download` key, kept out of the canonical config).
    download: bool,
    /// Ops available at the start (index = op of the space), from the schedule.
    initial_ops: Vec<bool>,
}

impl ResolvedConfig {
    /// Canonical JSON (sorted keys): what the fingerprint hashes and the
    /// database stores. `download` is left out: how the data is got does
    /// not change the run, and configs written before the key existed keep
    /// their fingerprints.
    pub fn canonical_json(&self) -> String {
        canonical_json_without(&self.config, &["download"])
    }

    /// Hash of the canonical config and, from version 2 on, of the
    /// [`definitions`](Self::definitions) it is run under: the identity of a
    /// run across sweeps. A run recorded under older definitions of its
    /// method has another fingerprint, so a new sweep never takes it for
    /// "already done".
    pub fn fingerprint(&self) -> String {
        let canonical = self.canonical_json();
        let digest = match self.definitions() {
            1 => Sha256::digest(canonical.as_bytes()),
            v => Sha256::digest(format!("definitions {v}\n{canonical}").as_bytes()),
        };
        hex::encode(&digest[..12])
    }

    /// Version of what this ddsas's numbers mean for the config's method;
    /// stored with every run (`runs.definitions`).
    pub fn definitions(&self) -> u32 {
        definitions(self.config.method, self.config.space)
    }

    /// The checked config, every default filled in.
    pub fn config(&self) -> &SearchConfig {
        &self.config
    }

    /// Number of cells (DARTS space) or cells per stage (NB201).
    pub fn layers(&self) -> u32 {
        self.layers
    }

    /// The folder holding the CIFAR files, absolute; `None` for digits.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Whether a missing dataset is to be fetched into
    /// [`data_dir`](Self::data_dir) before the run (`download: true`).
    pub fn download(&self) -> bool {
        self.download
    }

    /// Ops available at the start of the search (index = op of the space).
    pub fn initial_ops(&self) -> &[bool] {
        &self.initial_ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(yaml: &str) -> Result<ResolvedConfig, ConfigError> {
        SearchConfig::from_yaml_value(serde_yaml::from_str(yaml).unwrap(), "test")?.resolve()
    }

    #[test]
    fn defaults_are_the_papers() {
        let r = resolve("{}").unwrap();
        assert_eq!(r.config.L, 28);
        assert_eq!(r.config.batch_size, 64);
        assert_eq!(r.layers(), 8);
        assert_eq!(r.config.arch_betas, (0.5, 0.999));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = resolve("method: ddsas\nlearning_rate: 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("learning_rate"), "{err}");
    }

    #[test]
    fn l_outside_the_space_is_rejected_with_the_range() {
        for (yaml, range) in [
            ("L: 13", "14..=112"),
            ("L: 113", "14..=112"),
            ("space: nb201\nL: 5", "6..=30"),
            ("space: nb201\nL: 31", "6..=30"),
        ] {
            let err = resolve(yaml).unwrap_err().to_string();
            assert!(err.contains("`L`") && err.contains(range), "{yaml}: {err}");
            assert!(err.contains("none"), "{err}");
        }
        for ok in [
            "L: 14",
            "L: 112",
            "space: nb201\nL: 6",
            "space: nb201\nL: 30",
        ] {
            assert!(resolve(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn m_below_one_and_unknown_method_are_rejected() {
        assert!(resolve("M: 0").unwrap_err().to_string().contains("`M`"));
        let err = resolve("method: enas").unwrap_err().to_string();
        assert!(err.contains("enas") && err.contains("ddsas"), "{err}");
        let err = resolve("space: nasnet").unwrap_err().to_string();
        assert!(err.contains("nasnet"), "{err}");
    }

    fn home(dir: &Path) -> Option<crate::data::home::DataHome> {
        Some(crate::data::home::DataHome {
            dir: dir.to_owned(),
            from: "DDSAS_DATA",
        })
    }

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar")
    }

    #[test]
    fn cifar_without_data_dir_looks_in_the_data_folder() {
        let empty = tempfile::tempdir().unwrap();
        let err = resolve_data_dir_in(DatasetKind::Cifar10, None, false, home(empty.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`data_dir`")
                && err.contains("ddsas data get cifar10")
                && err.contains("download=true")
                && err.contains(&empty.path().display().to_string()),
            "{err}"
        );
        let err = resolve_data_dir_in(DatasetKind::Cifar10, None, false, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_dir") && err.contains("DDSAS_DATA"),
            "{err}"
        );
        // There: read from the data folder, recorded as no data_dir.
        let found =
            resolve_data_dir_in(DatasetKind::Cifar100, None, false, home(&fixtures())).unwrap();
        assert_eq!(found.written, None);
        assert_eq!(found.folder, Some(fixtures()));
        // Missing, but `download` fetches it there first.
        let later =
            resolve_data_dir_in(DatasetKind::Cifar10, None, true, home(empty.path())).unwrap();
        assert_eq!(later.folder.as_deref(), Some(empty.path()));
        // A given data_dir is used (and recorded) as before.
        let given =
            resolve_data_dir_in(DatasetKind::Cifar10, Some(&fixtures()), false, None).unwrap();
        assert_eq!(given.written, given.folder);
        assert!(given.folder.unwrap().is_absolute());
    }

    #[test]
    fn imagenet_without_data_dir_points_at_data_get_and_refuses_download() {
        let empty = tempfile::tempdir().unwrap();
        let err = resolve_data_dir_in(DatasetKind::ImageNet, None, false, home(empty.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ddsas data get imagenet") && err.contains("train/ and val/"),
            "{err}"
        );
        assert!(
            !err.contains("--force") && !err.contains("download=true"),
            "{err}"
        );
        let err = resolve_data_dir_in(DatasetKind::ImageNet, None, true, home(empty.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`download`") && err.contains("cannot be fetched"),
            "{err}"
        );
        let imagenet = empty.path().join("imagenet");
        for split in ["train", "val"] {
            std::fs::create_dir_all(imagenet.join(split)).unwrap();
        }
        let found =
            resolve_data_dir_in(DatasetKind::ImageNet, None, false, home(empty.path())).unwrap();
        assert_eq!((found.written, found.folder), (None, Some(imagenet)));
    }

    /// Fingerprints pinned at the current definitions (DDSAS and GDAS
    /// 3, DARTS 2): a change of the canonical config must not move them,
    /// or done runs would no longer be found done. (`download` and the
    /// data folder were added later without moving them.)
    #[test]
    fn fingerprints_of_existing_configs_are_unchanged() {
        let prefix = |yaml: &str| resolve(yaml).unwrap().fingerprint()[..10].to_owned();
        let yamls = [
            "{}",
            "method: darts",
            "method: gdas\nepochs: 3",
            "method: gdas\nspace: nb201\nepochs: 3",
            "dataset: cifar10\ndata_dir: /",
        ];
        let got: Vec<String> = yamls.iter().map(|y| prefix(y)).collect();
        assert_eq!(
            got,
            [
                "2aa5800567",
                "f901b72b40",
                "641b850468",
                "b3518e1a64",
                "bd37b7e414"
            ]
        );
        // `download` never enters the identity or the stored config.
        let with = resolve("dataset: cifar10\ndata_dir: /\ndownload: true").unwrap();
        assert_eq!(with.fingerprint()[..10], got[4]);
        assert!(with.download());
        assert!(!with.canonical_json().contains("download"));
    }

    /// GDAS's DARTS-space form changed at version 3 (no unpicked terms):
    /// version 3 there, a new identity; its NB201 form did not, so NB201
    /// GDAS runs keep version 2 and their fingerprints.
    #[test]
    fn gdas_definitions_follow_its_form_per_space() {
        assert_eq!(definitions(Method::Gdas, SpaceKind::Darts), 3);
        assert_eq!(definitions(Method::Gdas, SpaceKind::Nb201), 3);
        assert_eq!(definitions(Method::Ddsas, SpaceKind::Darts), 3);
        assert_eq!(definitions(Method::Darts, SpaceKind::Nb201), 2);
        let darts_space = definitions_change(Method::Gdas, SpaceKind::Darts);
        assert!(darts_space.contains("only the picked ops"), "{darts_space}");
        let nb201 = definitions_change(Method::Gdas, SpaceKind::Nb201);
        assert!(!nb201.contains("only the picked ops"), "{nb201}");
        assert_eq!(definitions_named("gdas", "darts"), Some(3));
        assert_eq!(definitions_named("train", "darts"), None);
        let darts = resolve("method: gdas\nepochs: 3").unwrap();
        assert_eq!(darts.definitions(), 3);
        assert!(definitions_change(Method::Gdas, SpaceKind::Darts).contains("version 3"));
    }

    #[test]
    fn overrides_apply_and_fingerprint_follows() {
        let a = SearchConfig::default().resolve().unwrap();
        let b = SearchConfig::default()
            .with_overrides(&[
                "L=42".into(),
                "space_schedule.shrink=[{epoch: 3, remove: 2}]".into(),
            ])
            .unwrap();
        assert_eq!(b.L, 42);
        assert_eq!(b.space_schedule.shrink[0].remove, 2);
        let b = b.resolve().unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            SearchConfig::default().resolve().unwrap().fingerprint()
        );
    }

    #[test]
    fn absurd_sizes_and_seeds_are_refused_by_name() {
        for (yaml, key) in [
            ("layers: 100000", "layers"),
            ("init_channels: 100000", "init_channels"),
            ("batch_size: 1000000", "batch_size"),
            ("seed: 18446744073709551615", "seed"),
        ] {
            let err = resolve(yaml).unwrap_err().to_string();
            assert!(err.contains(key), "{yaml}: {err}");
        }
        assert!(resolve("seed: 9223372036854775807").is_ok());
    }

    #[test]
    fn schedule_steps_must_happen_and_leave_ops() {
        let err = resolve("epochs: 2\nspace_schedule: {shrink: [{epoch: 50, remove: 1}]}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epoch 50 never happens"), "{err}");
        let err = resolve("space_schedule: {shrink: [{epoch: 3, remove: 1000}]}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("removes 1000 ops"), "{err}");
        assert!(resolve("space_schedule: {shrink: [{epoch: 3, remove: 2}]}").is_ok());
    }

    #[test]
    fn data_dir_is_made_absolute_for_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let abs = format!("dataset: cifar10\ndata_dir: {}", dir.path().display());
        let dotted = format!("dataset: cifar10\ndata_dir: {}/./", dir.path().display());
        let a = resolve(&abs).unwrap();
        assert_eq!(a.fingerprint(), resolve(&dotted).unwrap().fingerprint());
        assert!(a.config.data_dir.unwrap().is_absolute());
    }

    #[test]
    fn printed_config_documents_every_key_and_reads_back() {
        let value = serde_json::to_value(SearchConfig::default()).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        let documented: Vec<&str> = KEY_DOCS.iter().map(|(k, _)| *k).collect();
        for key in &keys {
            assert!(documented.contains(&key.as_str()), "KEY_DOCS lacks `{key}`");
        }
        assert_eq!(
            keys.len(),
            documented.len(),
            "KEY_DOCS has a key the config lacks"
        );
        let cfg = SearchConfig::default()
            .with_overrides(&["L=42".into(), "arch_betas=[0.4, 0.9]".into()])
            .unwrap();
        let text = cfg.commented_yaml();
        let back =
            SearchConfig::from_yaml_value(serde_yaml::from_str(&text).unwrap(), "printed").unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn typos_get_the_nearest_keys_and_sweep_files_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "epochs: 2\nepoch: 3\n").unwrap();
        let err = SearchConfig::from_yaml_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("unknown key `epoch` (line 2 column 1); did you mean `epochs`"),
            "{err}"
        );
        let err = SearchConfig::default()
            .with_overrides(&["lr=0.1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`w_lr`") && err.contains("`arch_lr`"), "{err}");
        std::fs::write(&file, "name: s\nbase: {epochs: 2}\nseeds: [1]\n").unwrap();
        let err = SearchConfig::from_yaml_file(&file).unwrap_err().to_string();
        assert!(err.contains("ddsas sweep run"), "{err}");
        std::fs::write(&file, "- a\n- b\n").unwrap();
        let err = SearchConfig::from_yaml_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("mapping of config keys") && !err.contains("struct"),
            "{err}"
        );
    }

    #[test]
    fn baselines_ignore_ddsas_knobs_in_the_fingerprint() {
        let a = resolve("method: darts\nL: 40").unwrap();
        let b = resolve("method: darts\nL: 50").unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
    }
}
