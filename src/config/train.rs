//! The config of a train run: a searched cell trained from
//! scratch by the DARTS protocol, appendix B.1. Its keys have the paper's
//! values as defaults; the cell itself is the `genotype` key, so that a
//! stored config says everything a run needs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    apply_overrides, canonical_json_without, check, commented_yaml, config_from_yaml,
    friendly_among, resolve_data_dir, ConfigError,
};
use crate::arch::genotype;
use crate::arch::shape::{EvalShape, Stem};
use crate::arch::trained::TrainedGenotype;
use crate::data::DatasetKind;

/// A train config as written by the user; every field but the genotype
/// has the appendix's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The cell: ddsas's genotype text, DARTS's `[NAME =] Genotype(...)`,
    /// `@FILE` / `@FILE:NAME` (a file, or one genotype of a genotypes.py),
    /// or a published name (`darts_v1`, `darts_v2`). Stored in ddsas's text.
    pub genotype: String,
    /// `digits` (bundled), `cifar10` or `cifar100`.
    pub dataset: DatasetKind,
    /// Folder holding the CIFAR files (either layout); unused for digits.
    /// Unset: the data folder (`DDSAS_DATA`, else `~/.cache/ddsas/data`).
    pub data_dir: Option<PathBuf>,
    /// Fetch a missing CIFAR dataset into the data folder before the run;
    /// not part of the canonical config (see `SearchConfig::download`).
    pub download: bool,
    /// Cells of the network (20).
    pub layers: u32,
    /// Channels of the first cells (36).
    pub init_channels: u32,
    /// Training epochs (600).
    pub epochs: u32,
    /// Minibatch size (96).
    pub batch_size: u32,
    /// Initial SGD learning rate, cosine-annealed (0.025).
    pub lr: f64,
    /// Final learning rate (0).
    pub lr_min: f64,
    /// SGD momentum (0.9).
    pub momentum: f64,
    /// L2 weight decay (3e-4).
    pub weight_decay: f64,
    /// Gradient-norm clip (5).
    pub grad_clip: f64,
    /// Weight of the auxiliary head's loss (0.4; 0: no auxiliary head).
    pub auxiliary_weight: f64,
    /// Drop-path probability, raised linearly from 0 over the epochs (0.3).
    pub drop_path_prob: f64,
    /// Side of the cutout square in pixels (16; 0: no cutout).
    pub cutout: u32,
    /// Seed of every random source.
    pub seed: u64,
    /// Cap on training steps per epoch (None: one pass over the training set).
    pub steps_per_epoch: Option<u32>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            genotype: String::new(),
            dataset: DatasetKind::Digits,
            data_dir: None,
            download: false,
            layers: 20,
            init_channels: 36,
            epochs: 600,
            batch_size: 96,
            lr: 0.025,
            lr_min: 0.0,
            momentum: 0.9,
            weight_decay: 3e-4,
            grad_clip: 5.0,
            auxiliary_weight: 0.4,
            drop_path_prob: 0.3,
            cutout: 16,
            seed: 0,
            steps_per_epoch: None,
        }
    }
}

/// One line on each key, for `ddsas train --print-config`.
pub const TRAIN_KEY_DOCS: &[(&str, &str)] = &[
    (
        "genotype",
        "the cell: ddsas's genotype text, DARTS's [NAME =] Genotype(...), @FILE or @FILE:NAME (a genotypes.py), darts_v1, darts_v2, nasnet_a or amoebanet_a",
    ),
    ("dataset", "digits (bundled) | cifar10 | cifar100"),
    (
        "data_dir",
        "folder holding the CIFAR files (either layout); null = the data folder (DDSAS_DATA, else ~/.cache/ddsas/data); unused for digits",
    ),
    (
        "download",
        "fetch a missing CIFAR dataset into the data folder first (once, under a lock); not part of the run's identity",
    ),
    (
        "layers",
        "cells; reductions at layers/3 and 2*layers/3 (paper: 20)",
    ),
    ("init_channels", "channels of the first cells (paper: 36)"),
    ("epochs", "training epochs (paper: 600)"),
    ("batch_size", "minibatch (paper: 96)"),
    (
        "lr",
        "SGD learning rate, cosine-annealed to lr_min (paper: 0.025)",
    ),
    ("lr_min", "final learning rate (paper: 0)"),
    ("momentum", "SGD momentum (paper: 0.9)"),
    ("weight_decay", "L2 weight decay (paper: 3e-4)"),
    ("grad_clip", "gradient-norm clip (paper: 5)"),
    (
        "auxiliary_weight",
        "weight of the auxiliary head's loss; 0 = no head (paper: 0.4)",
    ),
    (
        "drop_path_prob",
        "drop-path probability, raised linearly from 0 over the epochs (paper: 0.3)",
    ),
    (
        "cutout",
        "side of the cutout square in pixels; 0 = none (paper: 16)",
    ),
    ("seed", "seed of every random source"),
    (
        "steps_per_epoch",
        "cap on training steps per epoch; null = one pass over the training set",
    ),
];

/// The keys of a train config, in declaration order.
pub fn train_config_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        TRAIN_KEY_DOCS
            .iter()
            .map(|(k, _)| (*k).to_owned())
            .collect()
    })
}

impl TrainConfig {
    /// Reads a YAML config file (keys checked, with line and column).
    pub fn from_yaml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        if text.trim().is_empty() {
            return Ok(TrainConfig::default());
        }
        serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
            file: path.display().to_string(),
            message: friendly_among(&e.to_string(), train_config_keys()),
        })
    }

    /// Builds a config from a YAML mapping (an empty document gives defaults).
    pub fn from_yaml_value(value: serde_yaml::Value, origin: &str) -> Result<Self, ConfigError> {
        config_from_yaml(value, origin, train_config_keys())
    }

    /// Applies `key=value` overrides (`--set`), each value parsed as YAML.
    pub fn with_overrides(self, overrides: &[String]) -> Result<Self, ConfigError> {
        apply_overrides(self, overrides, train_config_keys())
    }

    /// Every key with its value and a comment, as YAML that reads back.
    pub fn commented_yaml(&self) -> String {
        let value = serde_json::to_value(self).expect("a config always serializes");
        commented_yaml(&value, TRAIN_KEY_DOCS)
    }

    /// Validates every value, reads the genotype and finds the data.
    pub fn resolve(self) -> Result<ResolvedTrain, ConfigError> {
        let genotype = self.checked()?;
        let data = resolve_data_dir(self.dataset, self.data_dir.as_deref(), self.download)?;
        let download = self.download;
        let mut config = self;
        // Stored in one form, so that the ways of writing a cell (a name,
        // either text, a file) give one fingerprint.
        config.genotype = genotype.to_text();
        config.data_dir = data.written;
        config.download = false;
        Ok(ResolvedTrain {
            config,
            genotype,
            data_dir: data.folder,
            download,
        })
    }

    /// The network this config trains, every value checked as
    /// [`resolve`](Self::resolve) checks it, but the data folder left
    /// alone: a dry run builds the network from the dataset's shape and
    /// reads no image, so it works before the data is downloaded.
    pub fn network(&self) -> Result<TrainNetwork, ConfigError> {
        Ok(TrainNetwork {
            genotype: self.checked()?,
            dataset: self.dataset,
            shape: self.eval_shape(),
        })
    }

    /// The shape of the network this config trains: the cells and channels
    /// it sets, the image channels and classes of its dataset.
    pub fn eval_shape(&self) -> EvalShape {
        let image = self.dataset.shape();
        EvalShape {
            layers: i64::from(self.layers),
            channels: i64::from(self.init_channels),
            in_channels: image.channels,
            classes: image.classes,
            auxiliary: self.auxiliary_weight > 0.0,
            // The dataset decides: ImageNet takes `Stem::ImageNet` and its
            // crop size here.
            stem: Stem::Cifar,
            image_size: image.size,
        }
    }

    /// Validates every value but the data folder; reads the genotype
    /// (`@FILE[:NAME]` included).
    fn checked(&self) -> Result<TrainedGenotype, ConfigError> {
        if self.genotype.trim().is_empty() {
            return Err(super::invalid(
                "genotype",
                "no cell to train: give `--genotype TEXT` (or darts_v1, darts_v2), `--from-run ID`, or `genotype:` in the config",
            ));
        }
        let genotype = genotype::read_trained(&self.genotype)
            .map_err(|e| super::invalid("genotype", e.to_string()))?;
        check(
            (3..=64).contains(&self.layers),
            "layers",
            "must lie in 3..=64 (two reduction cells and one normal cell at least; the paper uses 20)",
        )?;
        check(
            (1..=512).contains(&self.init_channels),
            "init_channels",
            "must lie in 1..=512 (the paper uses 36)",
        )?;
        check(self.epochs >= 1, "epochs", "must be at least 1")?;
        check(
            (2..=4096).contains(&self.batch_size),
            "batch_size",
            "must lie in 2..=4096 (batch norm needs two images; the paper uses 96)",
        )?;
        check(
            self.lr > 0.0 && self.lr.is_finite(),
            "lr",
            "must be a positive number",
        )?;
        check(
            (0.0..=self.lr).contains(&self.lr_min),
            "lr_min",
            "must lie in 0..=lr",
        )?;
        check(
            (0.0..1.0).contains(&self.momentum),
            "momentum",
            "must lie in [0, 1)",
        )?;
        check(
            self.weight_decay >= 0.0,
            "weight_decay",
            "must be non-negative",
        )?;
        check(self.grad_clip > 0.0, "grad_clip", "must be positive")?;
        check(
            self.auxiliary_weight >= 0.0,
            "auxiliary_weight",
            "must be non-negative (0 turns the auxiliary head off)",
        )?;
        check(
            (0.0..1.0).contains(&self.drop_path_prob),
            "drop_path_prob",
            "is a probability and must lie in [0, 1)",
        )?;
        Ok(genotype)
    }
}

/// Version of what a training's numbers mean, as `config::definitions` is
/// for searches; it enters the fingerprint and is stored with the run.
/// Version 2: weights start as PyTorch initialises them (tch's
/// defaults had made the network learn far slower than the reference).
pub const TRAIN_DEFINITIONS: u32 = 2;

/// What a dry run builds: a checked config's cell and network shape, its
/// data not looked for.
#[derive(Debug, Clone)]
pub struct TrainNetwork {
    /// The cell.
    pub genotype: TrainedGenotype,
    /// The dataset whose shape the network takes.
    pub dataset: DatasetKind,
    /// Cells, channels, image channels and classes.
    pub shape: EvalShape,
}

/// A validated train config: the only form the trainer accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTrain {
    config: TrainConfig,
    genotype: TrainedGenotype,
    /// The folder to read: `data_dir`, or the data folder.
    data_dir: Option<PathBuf>,
    /// Fetch a missing dataset into `data_dir` before the run.
    download: bool,
}

impl ResolvedTrain {
    /// The checked config, every default filled in, the genotype in
    /// ddsas's text.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The cell.
    pub fn genotype(&self) -> &TrainedGenotype {
        &self.genotype
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

    /// Canonical JSON (sorted keys): what the database stores; without
    /// `download`, which says how to get the data, not what is trained.
    pub fn canonical_json(&self) -> String {
        canonical_json_without(&self.config, &["download"])
    }

    /// The run's identity: genotype, train config and the
    /// [`TRAIN_DEFINITIONS`] it is trained under, so that a cell that two
    /// searches found is trained once per train config, and a training of
    /// older definitions is never taken for a new one.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(
            format!("train {TRAIN_DEFINITIONS}\n{}", self.canonical_json()).as_bytes(),
        );
        hex::encode(&digest[..12])
    }

    /// The definitions version stored with the run (`runs.definitions`).
    pub fn definitions(&self) -> u32 {
        TRAIN_DEFINITIONS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(sets: &[&str]) -> Result<ResolvedTrain, ConfigError> {
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        TrainConfig::default().with_overrides(&sets)?.resolve()
    }

    #[test]
    fn defaults_are_the_appendixs() {
        let r = resolve(&["genotype=darts_v2"]).unwrap();
        let c = r.config();
        assert_eq!(
            (c.layers, c.init_channels, c.epochs, c.batch_size),
            (20, 36, 600, 96)
        );
        assert_eq!(
            (c.lr, c.lr_min, c.momentum, c.weight_decay),
            (0.025, 0.0, 0.9, 3e-4)
        );
        assert_eq!(
            (c.grad_clip, c.auxiliary_weight, c.drop_path_prob, c.cutout),
            (5.0, 0.4, 0.3, 16)
        );
    }

    #[test]
    fn one_cell_written_three_ways_is_one_run() {
        let by_name = resolve(&["genotype=darts_v2"]).unwrap();
        let text = by_name.genotype().to_text();
        let by_text = resolve(&[&format!("genotype={text}")]).unwrap();
        assert_eq!(by_name.fingerprint(), by_text.fingerprint());
        let other = resolve(&["genotype=darts_v1"]).unwrap();
        assert_ne!(other.fingerprint(), by_name.fingerprint());
        let seed = resolve(&["genotype=darts_v2", "seed=1"]).unwrap();
        assert_ne!(seed.fingerprint(), by_name.fingerprint());
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = resolve(&[]).unwrap_err().to_string();
        assert!(e.contains("`genotype`") && e.contains("--from-run"), "{e}");
        let e = resolve(&["genotype=darts_v2", "layers=2"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`layers`"), "{e}");
        let e = resolve(&["genotype=darts_v2", "drop_path_prob=1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`drop_path_prob`"), "{e}");
        let e = resolve(&["genotype=darts_v2", "lr_min=1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`lr_min`"), "{e}");
        let e = TrainConfig::default()
            .with_overrides(&["learning_rate=0.1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("learning_rate") && e.contains(", lr, "), "{e}");
        let e = resolve(&["genotype=normal=[(conv_9x9,0)]"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`genotype`") && e.contains("conv_9x9"), "{e}");
    }

    /// The fingerprint of a train config, pinned at train definitions 2
    /// (the definitions of PyTorch's initialisation): a change of the
    /// canonical config must not move it. (`download` was added later
    /// without moving it.)
    #[test]
    fn fingerprint_of_an_existing_config_is_unchanged() {
        let sets = [
            "genotype=darts_v2",
            "epochs=1",
            "layers=3",
            "init_channels=4",
            "steps_per_epoch=1",
            "batch_size=8",
        ];
        let r = resolve(&sets).unwrap();
        assert_eq!(r.fingerprint(), "824709170bddb67187e8bb90");
        let mut with = sets.to_vec();
        with.push("download=true");
        let w = resolve(&with).unwrap();
        assert_eq!(w.fingerprint(), r.fingerprint());
        assert!(w.download() && !w.canonical_json().contains("download"));
    }

    /// A dry run's network is checked as a run's config is, but
    /// its data is not looked for.
    #[test]
    fn the_network_of_a_config_needs_no_data() {
        let sets = [
            "genotype=darts_v2",
            "dataset=cifar100",
            "data_dir=/no/such/folder",
        ];
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        let c = TrainConfig::default().with_overrides(&sets).unwrap();
        let net = c.network().unwrap();
        let s = net.shape;
        assert_eq!(
            (s.layers, s.channels, s.in_channels, s.classes, s.auxiliary),
            (20, 36, 3, 100, true)
        );
        assert_eq!(net.genotype, genotype::parse_trained("darts_v2").unwrap());
        let e = c.clone().resolve().unwrap_err().to_string();
        assert!(e.contains("`data_dir`"), "{e}");
        let bad = c.with_overrides(&["layers=2".into()]).unwrap();
        let e = bad.network().unwrap_err().to_string();
        assert!(e.contains("`layers`"), "{e}");
    }

    #[test]
    fn printed_config_reads_back() {
        let c = TrainConfig {
            genotype: "darts_v2".into(),
            ..TrainConfig::default()
        };
        let text = c.commented_yaml();
        let back =
            TrainConfig::from_yaml_value(serde_yaml::from_str(&text).unwrap(), "printed").unwrap();
        assert_eq!(back, c);
        assert_eq!(text.lines().count(), TRAIN_KEY_DOCS.len());
    }
}
