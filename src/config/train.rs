//! The config of a train run: a searched cell trained from
//! scratch by the DARTS protocol, appendix B.1. Its keys have the paper's
//! values as defaults; the cell itself is the `genotype` key, so that a
//! stored config says everything a run needs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    apply_overrides, check, commented_yaml, config_from_yaml, friendly_among, resolve_data_dir,
    ConfigError,
};
use crate::arch::genotype;
use crate::arch::shape::{EvalShape, Stem};
use crate::arch::trained::TrainedGenotype;
use crate::data::{imagenet, DatasetKind};

/// A train config as written by the user. The keys whose default
/// depends on the dataset (the appendix's CIFAR recipe, or the ImageNet
/// recipe of DARTS-family evaluation code) are `Option`s: `None` means
/// "the dataset's default", so that `--set dataset=imagenet` on top of a
/// default config takes ImageNet's values, and a key the user set keeps
/// its value whatever the dataset. [`TrainConfig::filled`] (and a resolved
/// config) has every default written in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The cell: ddsas's genotype text, DARTS's `[NAME =] Genotype(...)`,
    /// `@FILE` / `@FILE:NAME` (a file, or one genotype of a genotypes.py),
    /// or a published name (`darts_v1`, `darts_v2`). Stored in ddsas's text.
    pub genotype: String,
    /// `digits` (bundled), `cifar10`, `cifar100` or `imagenet`.
    pub dataset: DatasetKind,
    /// Folder holding the dataset's files; unused for digits.
    /// Unset: the data folder (`DDSAS_DATA`, else `~/.cache/ddsas/data`).
    pub data_dir: Option<PathBuf>,
    /// Fetch a missing CIFAR dataset into the data folder before the run;
    /// not part of the canonical config (see `SearchConfig::download`).
    pub download: bool,
    /// Cells of the network (20; ImageNet 14).
    pub layers: Option<u32>,
    /// Channels of the first cells (36; ImageNet 48).
    pub init_channels: Option<u32>,
    /// Training epochs (600; ImageNet 250).
    pub epochs: Option<u32>,
    /// Minibatch size (96; ImageNet 1024).
    pub batch_size: Option<u32>,
    /// Initial SGD learning rate (0.025; ImageNet 0.5).
    pub lr: Option<f64>,
    /// Final learning rate (0).
    pub lr_min: f64,
    /// SGD momentum (0.9).
    pub momentum: f64,
    /// L2 weight decay (3e-4; ImageNet 3e-5).
    pub weight_decay: Option<f64>,
    /// Gradient-norm clip (5).
    pub grad_clip: f64,
    /// Weight of the auxiliary head's loss (0.4; 0: no auxiliary head).
    pub auxiliary_weight: f64,
    /// Drop-path probability, raised linearly from 0 over the epochs (0.3;
    /// ImageNet 0).
    pub drop_path_prob: Option<f64>,
    /// Side of the cutout square in pixels (16; ImageNet 0: no cutout).
    pub cutout: Option<u32>,
    /// Seed of every random source.
    pub seed: u64,
    /// Cap on training steps per epoch (None: one pass over the training set).
    pub steps_per_epoch: Option<u32>,
    /// Side of the training crop and of the evaluation's centre crop
    /// (ImageNet 224; the final pooling adapts, so small runs can use small
    /// images). Unused by the other datasets, which refuse it.
    pub crop_size: Option<u32>,
    /// Label smoothing ε of the cross-entropy (0; ImageNet 0.1).
    pub label_smoothing: Option<f64>,
    /// How the learning rate falls after the warm-up (cosine; ImageNet linear).
    pub lr_schedule: Option<LrSchedule>,
    /// Epochs of linear warm-up from lr/5 to lr (0; ImageNet 5 when the
    /// batch exceeds 256, as in DARTS-family ImageNet code).
    pub warmup_epochs: Option<u32>,
    /// Colour jitter of the training images: brightness (ImageNet 0.4).
    pub jitter_brightness: Option<f64>,
    /// Colour jitter: contrast (ImageNet 0.4).
    pub jitter_contrast: Option<f64>,
    /// Colour jitter: saturation (ImageNet 0.4).
    pub jitter_saturation: Option<f64>,
    /// Colour jitter: hue (ImageNet 0.2).
    pub jitter_hue: Option<f64>,
    /// Whether training images are mirrored at random (ImageNet true).
    pub hflip: Option<bool>,
    /// Per-channel (RGB) mean that normalises images (ImageNet's).
    pub normalize_mean: Option<[f64; 3]>,
    /// Per-channel (RGB) standard deviation that normalises images.
    pub normalize_std: Option<[f64; 3]>,
    /// Shorter side of the evaluation resize before the centre crop
    /// (None: `crop_size * 256 / 224`, 256 at 224).
    pub eval_resize: Option<u32>,
    /// The collectives of a data-parallel run (`--nproc N`): how the ranks
    /// talk, not what they train, so it is not part of the run's identity.
    pub dist_backend: DistBackend,
    /// Batch norm with the statistics of the whole global batch in a
    /// data-parallel run (`--nproc`), instead of each rank's shard's;
    /// ignored by one process, whose batch norm sees the whole batch.
    pub sync_bn: bool,
}

/// The learning-rate schedule after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// Cosine annealing from lr to lr_min (DARTS's CIFAR recipe).
    Cosine,
    /// Linear decay from lr to lr_min (DARTS-family ImageNet code).
    Linear,
}

/// The engine of a data-parallel run's collectives, as c10d names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistBackend {
    /// NCCL on CUDA devices, Gloo on CPU: what PyTorch's DDP users pick.
    #[default]
    Auto,
    /// Gloo: CPU tensors (and CUDA tensors, slower than NCCL).
    Gloo,
    /// NCCL: CUDA devices only, in a build that compiled its path.
    Nccl,
}

impl DistBackend {
    /// The name stored with a run and shown by `runs show`.
    pub fn name(self) -> &'static str {
        match self {
            DistBackend::Auto => "auto",
            DistBackend::Gloo => "gloo",
            DistBackend::Nccl => "nccl",
        }
    }

    /// The backend the ranks use on `cuda` (or CPU) devices, in a build
    /// that has (`nccl_built`) or lacks the NCCL path: `auto` picked, and
    /// NCCL refused where it cannot run, in one line saying what it needs.
    pub fn for_device(self, cuda: bool, nccl_built: bool) -> Result<DistBackend, ConfigError> {
        let nccl_refused = |why: &str| super::invalid("dist_backend", format!("nccl {why}"));
        match self {
            DistBackend::Auto if cuda && nccl_built => Ok(DistBackend::Nccl),
            DistBackend::Auto | DistBackend::Gloo => Ok(DistBackend::Gloo),
            DistBackend::Nccl if !cuda => Err(nccl_refused(
                "needs CUDA devices (--device cuda); on CPU use gloo or auto",
            )),
            DistBackend::Nccl if !nccl_built => Err(nccl_refused(
                "needs a ddsas built with NCCL: nccl.h and the CUDA runtime headers (crt/host_defines.h) where build.rs looks (the torch venv's nvidia/ folders, or DDSAS_CUDA_INCLUDE), then rebuild; or use gloo",
            )),
            DistBackend::Nccl => Ok(DistBackend::Nccl),
        }
    }
}

/// A backend by its name (`auto`, `gloo`, `nccl`), as `ddsas worker
/// --dist-backend` takes it from the orchestrator.
impl std::str::FromStr for DistBackend {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [DistBackend::Auto, DistBackend::Gloo, DistBackend::Nccl]
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| format!("unknown backend {name:?}: use auto, gloo or nccl"))
    }
}

/// The values a dataset gives the keys its user left unset.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recipe {
    layers: u32,
    init_channels: u32,
    epochs: u32,
    batch_size: u32,
    lr: f64,
    weight_decay: f64,
    drop_path_prob: f64,
    cutout: u32,
    crop_size: Option<u32>,
    label_smoothing: f64,
    lr_schedule: LrSchedule,
    /// Brightness, contrast, saturation, hue.
    jitter: Option<[f64; 4]>,
}

/// The appendix's recipe (B.1) for the CIFAR-sized datasets, and the
/// ImageNet recipe of DARTS-family evaluation code that the appendix's
/// ImageNet numbers (lr 0.5, batch 1024, weight decay 3e-5) match.
fn recipe(dataset: DatasetKind) -> Recipe {
    match dataset {
        DatasetKind::ImageNet => Recipe {
            layers: 14,
            init_channels: 48,
            epochs: 250,
            batch_size: 1024,
            lr: 0.5,
            weight_decay: 3e-5,
            drop_path_prob: 0.0,
            cutout: 0,
            crop_size: Some(224),
            label_smoothing: 0.1,
            lr_schedule: LrSchedule::Linear,
            jitter: Some([0.4, 0.4, 0.4, 0.2]),
        },
        _ => Recipe {
            layers: 20,
            init_channels: 36,
            epochs: 600,
            batch_size: 96,
            lr: 0.025,
            weight_decay: 3e-4,
            drop_path_prob: 0.3,
            cutout: 16,
            crop_size: None,
            label_smoothing: 0.0,
            lr_schedule: LrSchedule::Cosine,
            jitter: None,
        },
    }
}

/// ImageNet's input keys added after its recipe: each is left out of the
/// canonical config at its dataset's default (what ImageNet runs did
/// before the key existed; unset on the other datasets), so that no
/// stored run's identity moves.
const INPUT_KEYS: [&str; 4] = ["hflip", "normalize_mean", "normalize_std", "eval_resize"];

/// The recipe's evaluation resize for a crop ([`imagenet::eval_resize_for`]).
fn resize_for(crop: u32) -> u32 {
    imagenet::eval_resize_for(crop as usize) as u32
}

/// ImageNet's per-channel mean and standard deviation (RGB, on [0, 1]).
const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Keys added with the ImageNet recipe. A run's identity must not move for
/// a config that does not use them, so the canonical config leaves one out
/// where its value is the behaviour from before it existed (and that is
/// also the dataset's default, so that reading the config back gives the
/// same value).
const RECIPE_KEYS: [&str; 8] = [
    "crop_size",
    "label_smoothing",
    "lr_schedule",
    "warmup_epochs",
    "jitter_brightness",
    "jitter_contrast",
    "jitter_saturation",
    "jitter_hue",
];

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            genotype: String::new(),
            dataset: DatasetKind::Digits,
            data_dir: None,
            download: false,
            layers: None,
            init_channels: None,
            epochs: None,
            batch_size: None,
            lr: None,
            lr_min: 0.0,
            momentum: 0.9,
            weight_decay: None,
            grad_clip: 5.0,
            auxiliary_weight: 0.4,
            drop_path_prob: None,
            cutout: None,
            seed: 0,
            steps_per_epoch: None,
            crop_size: None,
            label_smoothing: None,
            lr_schedule: None,
            warmup_epochs: None,
            jitter_brightness: None,
            jitter_contrast: None,
            jitter_saturation: None,
            jitter_hue: None,
            hflip: None,
            normalize_mean: None,
            normalize_std: None,
            eval_resize: None,
            dist_backend: DistBackend::Auto,
            sync_bn: false,
        }
    }
}

/// One line on each key, for `ddsas train --print-config`.
pub const TRAIN_KEY_DOCS: &[(&str, &str)] = &[
    (
        "genotype",
        "the cell: ddsas's genotype text, DARTS's [NAME =] Genotype(...), @FILE or @FILE:NAME (a genotypes.py), darts_v1, darts_v2, nasnet_a or amoebanet_a",
    ),
    ("dataset", "digits (bundled) | cifar10 | cifar100 | imagenet"),
    (
        "data_dir",
        "folder holding the dataset's files; null = the data folder (DDSAS_DATA, else ~/.cache/ddsas/data); unused for digits",
    ),
    (
        "download",
        "fetch a missing CIFAR dataset into the data folder first (once, under a lock); not part of the run's identity",
    ),
    (
        "layers",
        "cells; reductions at layers/3 and 2*layers/3 (paper: 20; ImageNet 14)",
    ),
    (
        "init_channels",
        "channels of the first cells (paper: 36; ImageNet 48)",
    ),
    ("epochs", "training epochs (paper: 600; ImageNet 250)"),
    ("batch_size", "minibatch (paper: 96; ImageNet 1024)"),
    (
        "lr",
        "SGD learning rate, annealed to lr_min by lr_schedule (paper: 0.025; ImageNet 0.5)",
    ),
    ("lr_min", "final learning rate (paper: 0)"),
    ("momentum", "SGD momentum (paper: 0.9)"),
    ("weight_decay", "L2 weight decay (paper: 3e-4; ImageNet 3e-5)"),
    ("grad_clip", "gradient-norm clip (paper: 5)"),
    (
        "auxiliary_weight",
        "weight of the auxiliary head's loss; 0 = no head (paper: 0.4)",
    ),
    (
        "drop_path_prob",
        "drop-path probability, raised linearly from 0 over the epochs (paper: 0.3; ImageNet 0)",
    ),
    (
        "cutout",
        "side of the cutout square in pixels; 0 = none (paper: 16; ImageNet 0)",
    ),
    ("seed", "seed of every random source"),
    (
        "steps_per_epoch",
        "cap on training steps per epoch; null = one pass over the training set",
    ),
    (
        "crop_size",
        "side of the training and evaluation crops (ImageNet 224); ImageNet only",
    ),
    (
        "label_smoothing",
        "label smoothing of the cross-entropy, in [0, 1) (0; ImageNet 0.1)",
    ),
    (
        "lr_schedule",
        "cosine | linear: the learning rate's fall to lr_min after the warm-up (cosine; ImageNet linear)",
    ),
    (
        "warmup_epochs",
        "epochs of linear warm-up from lr/5 to lr (0; ImageNet 5 when batch_size > 256)",
    ),
    (
        "jitter_brightness",
        "colour jitter of training images: brightness (ImageNet 0.4); ImageNet only",
    ),
    (
        "jitter_contrast",
        "colour jitter: contrast (ImageNet 0.4); ImageNet only",
    ),
    (
        "jitter_saturation",
        "colour jitter: saturation (ImageNet 0.4); ImageNet only",
    ),
    (
        "jitter_hue",
        "colour jitter: hue, in [0, 0.5] (ImageNet 0.2); ImageNet only",
    ),
    (
        "hflip",
        "mirror training images at random, half of them (ImageNet true); ImageNet only",
    ),
    (
        "normalize_mean",
        "per-channel RGB mean subtracted from pixels on [0, 1] (ImageNet [0.485, 0.456, 0.406]); ImageNet only",
    ),
    (
        "normalize_std",
        "per-channel RGB standard deviation pixels are divided by (ImageNet [0.229, 0.224, 0.225]); ImageNet only",
    ),
    (
        "eval_resize",
        "shorter side of the evaluation resize before the centre crop; null = crop_size * 256 / 224 (256 at 224); ImageNet only",
    ),
    (
        "dist_backend",
        "auto | gloo | nccl: the collectives of --nproc N (auto: NCCL on CUDA devices, Gloo on CPU); ignored by one process; not part of the run's identity",
    ),
    (
        "sync_bn",
        "batch norm over the whole global batch across the ranks of --nproc (false: each rank's shard, as DDP); ignored by one process",
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
    /// The dataset-dependent keys the user left unset show their
    /// dataset's default.
    pub fn commented_yaml(&self) -> String {
        let value = serde_json::to_value(self.filled()).expect("a config always serializes");
        commented_yaml(&value, TRAIN_KEY_DOCS)
    }

    /// The config as a run stores it, keys sorted: every default filled in,
    /// without `download` and `dist_backend` (how to get the data and how
    /// the ranks talk, not what is trained; the run records its backend in
    /// its own column), and
    /// without the keys of the ImageNet recipe whose value is what ddsas
    /// did before they existed where that is also the dataset's default
    /// (so an older config keeps its fingerprint, and the stored config
    /// reads back to the same values), and without `sync_bn` when it is
    /// off, for the same reason.
    pub fn canonical_value(&self) -> serde_json::Value {
        let filled = self.filled();
        let defaults = TrainConfig {
            dataset: self.dataset,
            batch_size: Some(filled.batch_size()),
            ..TrainConfig::default()
        }
        .filled();
        let defaults = serde_json::to_value(defaults).expect("a config always serializes");
        let mut value = serde_json::to_value(&filled).expect("a config always serializes");
        if let Some(map) = value.as_object_mut() {
            map.remove("download");
            map.remove("dist_backend");
            // Stored runs, all without synchronised batch norm, keep
            // their identity; a run that asks for it is another run.
            if !self.sync_bn {
                map.remove("sync_bn");
            }
            for key in INPUT_KEYS {
                if map.get(key) == defaults.get(key) {
                    map.remove(key);
                }
            }
            // `eval_resize` written out at the value its crop implies.
            if self.eval_resize.is_some() && self.eval_resize == self.crop_size().map(resize_for) {
                map.remove("eval_resize");
            }
            for key in RECIPE_KEYS {
                let unused = map
                    .get(key)
                    .is_some_and(|v| v == &defaults[key] && v == &recipe_neutral(key));
                if unused {
                    map.remove(key);
                }
            }
        }
        value
    }

    /// Validates every value, reads the genotype and finds the data.
    pub fn resolve(self) -> Result<ResolvedTrain, ConfigError> {
        let genotype = self.checked()?;
        let data = resolve_data_dir(self.dataset, self.data_dir.as_deref(), self.download)?;
        let download = self.download;
        let mut config = self.filled();
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
        let (stem, image_size) = match self.crop_size() {
            Some(crop) => (Stem::ImageNet, i64::from(crop)),
            None => (Stem::Cifar, image.size),
        };
        EvalShape {
            layers: i64::from(self.layers()),
            channels: i64::from(self.init_channels()),
            in_channels: image.channels,
            classes: image.classes,
            auxiliary: self.auxiliary_weight > 0.0,
            stem,
            image_size,
        }
    }

    /// The config with every dataset-dependent key its user left unset
    /// written in (the ImageNet-only keys stay unset for other datasets).
    pub fn filled(&self) -> TrainConfig {
        TrainConfig {
            layers: Some(self.layers()),
            init_channels: Some(self.init_channels()),
            epochs: Some(self.epochs()),
            batch_size: Some(self.batch_size()),
            lr: Some(self.lr()),
            weight_decay: Some(self.weight_decay()),
            drop_path_prob: Some(self.drop_path_prob()),
            cutout: Some(self.cutout()),
            crop_size: self.crop_size(),
            label_smoothing: Some(self.label_smoothing()),
            lr_schedule: Some(self.lr_schedule()),
            warmup_epochs: Some(self.warmup_epochs()),
            jitter_brightness: self.jitter().map(|j| j[0]),
            jitter_contrast: self.jitter().map(|j| j[1]),
            jitter_saturation: self.jitter().map(|j| j[2]),
            jitter_hue: self.jitter().map(|j| j[3]),
            hflip: self.hflip(),
            normalize_mean: self.normalization().map(|(mean, _)| mean),
            normalize_std: self.normalization().map(|(_, std)| std),
            ..self.clone()
        }
    }

    fn recipe(&self) -> Recipe {
        recipe(self.dataset)
    }

    /// Cells of the network.
    pub fn layers(&self) -> u32 {
        self.layers.unwrap_or(self.recipe().layers)
    }

    /// Channels of the first cells.
    pub fn init_channels(&self) -> u32 {
        self.init_channels.unwrap_or(self.recipe().init_channels)
    }

    /// Training epochs.
    pub fn epochs(&self) -> u32 {
        self.epochs.unwrap_or(self.recipe().epochs)
    }

    /// Minibatch size.
    pub fn batch_size(&self) -> u32 {
        self.batch_size.unwrap_or(self.recipe().batch_size)
    }

    /// Initial learning rate (after the warm-up).
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(self.recipe().lr)
    }

    /// L2 weight decay.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay.unwrap_or(self.recipe().weight_decay)
    }

    /// Final drop-path probability.
    pub fn drop_path_prob(&self) -> f64 {
        self.drop_path_prob.unwrap_or(self.recipe().drop_path_prob)
    }

    /// Side of the cutout square (0: none).
    pub fn cutout(&self) -> u32 {
        self.cutout.unwrap_or(self.recipe().cutout)
    }

    /// Side of the crops: ImageNet's; `None` for the other datasets,
    /// whose images are used whole.
    pub fn crop_size(&self) -> Option<u32> {
        self.recipe().crop_size.map(|d| self.crop_size.unwrap_or(d))
    }

    /// Label smoothing ε.
    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
            .unwrap_or(self.recipe().label_smoothing)
    }

    /// The schedule after the warm-up.
    pub fn lr_schedule(&self) -> LrSchedule {
        self.lr_schedule.unwrap_or(self.recipe().lr_schedule)
    }

    /// Warm-up epochs: the user's, else 5 on ImageNet at batches over 256
    /// (a large batch's first steps at the full rate diverge), else 0.
    pub fn warmup_epochs(&self) -> u32 {
        self.warmup_epochs.unwrap_or(
            if self.dataset == DatasetKind::ImageNet && self.batch_size() > 256 {
                5
            } else {
                0
            },
        )
    }

    /// Colour jitter (brightness, contrast, saturation, hue) of ImageNet's
    /// training images; `None` for the other datasets.
    pub fn jitter(&self) -> Option<[f64; 4]> {
        let d = self.recipe().jitter?;
        Some([
            self.jitter_brightness.unwrap_or(d[0]),
            self.jitter_contrast.unwrap_or(d[1]),
            self.jitter_saturation.unwrap_or(d[2]),
            self.jitter_hue.unwrap_or(d[3]),
        ])
    }

    /// Whether ImageNet's training images are flipped at random; `None`
    /// for the other datasets (their augmentation is the CIFAR recipe's).
    pub fn hflip(&self) -> Option<bool> {
        self.recipe().crop_size?;
        Some(self.hflip.unwrap_or(true))
    }

    /// ImageNet's normalisation, mean and standard deviation; `None` for
    /// the other datasets.
    pub fn normalization(&self) -> Option<([f64; 3], [f64; 3])> {
        self.recipe().crop_size?;
        Some((
            self.normalize_mean.unwrap_or(IMAGENET_MEAN),
            self.normalize_std.unwrap_or(IMAGENET_STD),
        ))
    }

    /// The shorter side of ImageNet's evaluation resize: the user's, else
    /// `crop_size * 256 / 224`; `None` for the other datasets.
    pub fn eval_resize(&self) -> Option<u32> {
        let crop = self.crop_size()?;
        Some(self.eval_resize.unwrap_or(resize_for(crop)))
    }

    /// Refuses the ImageNet-only keys on another dataset, where they
    /// would change the run's identity without changing the run.
    fn check_imagenet_only(&self) -> Result<(), ConfigError> {
        if self.dataset == DatasetKind::ImageNet {
            return Ok(());
        }
        let set = [
            ("crop_size", self.crop_size.is_some()),
            ("jitter_brightness", self.jitter_brightness.is_some()),
            ("jitter_contrast", self.jitter_contrast.is_some()),
            ("jitter_saturation", self.jitter_saturation.is_some()),
            ("jitter_hue", self.jitter_hue.is_some()),
            ("hflip", self.hflip.is_some()),
            ("normalize_mean", self.normalize_mean.is_some()),
            ("normalize_std", self.normalize_std.is_some()),
            ("eval_resize", self.eval_resize.is_some()),
        ];
        match set.into_iter().find(|(_, is_set)| *is_set) {
            Some((key, _)) => Err(super::invalid(
                key,
                format!(
                    "applies to ImageNet only; {} images are used whole, without colour jitter (leave it unset)",
                    self.dataset.display_name()
                ),
            )),
            None => Ok(()),
        }
    }

    /// Checks the keys of the ImageNet recipe.
    fn check_recipe(&self) -> Result<(), ConfigError> {
        self.check_imagenet_only()?;
        if let Some(crop) = self.crop_size() {
            check(
                (32..=1024).contains(&crop) && crop % 32 == 0,
                "crop_size",
                "must be a multiple of 32 in 32..=1024 pixels (the stem divides the side by 8 and the two reductions halve it; ImageNet's recipe uses 224)",
            )?;
        }
        check(
            (0.0..1.0).contains(&self.label_smoothing()),
            "label_smoothing",
            "must lie in [0, 1)",
        )?;
        check(
            self.warmup_epochs() < self.epochs(),
            "warmup_epochs",
            "must be fewer than the epochs",
        )?;
        if let Some([b, c, s, h]) = self.jitter() {
            for (key, v) in [
                ("jitter_brightness", b),
                ("jitter_contrast", c),
                ("jitter_saturation", s),
            ] {
                check(
                    v.is_finite() && v >= 0.0,
                    key,
                    "must be a non-negative number",
                )?;
            }
            check(
                (0.0..=0.5).contains(&h),
                "jitter_hue",
                "must lie in [0, 0.5]",
            )?;
        }
        if let Some((mean, std)) = self.normalization() {
            check(
                mean.iter().all(|m| m.is_finite()),
                "normalize_mean",
                "must be three finite numbers, one per RGB channel",
            )?;
            check(
                std.iter().all(|s| s.is_finite() && *s > 0.0),
                "normalize_std",
                "must be three positive numbers, one per RGB channel",
            )?;
        }
        if let (Some(crop), Some(resize)) = (self.crop_size(), self.eval_resize()) {
            check(
                (crop..=4 * crop).contains(&resize),
                "eval_resize",
                &format!("must lie in crop_size..=4*crop_size ({crop}..={}): the centre crop is taken from the resized image (the recipe resizes to 256 for 224)", 4 * crop),
            )?;
        }
        Ok(())
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
            (3..=64).contains(&self.layers()),
            "layers",
            "must lie in 3..=64 (two reduction cells and one normal cell at least; the paper uses 20)",
        )?;
        check(
            (1..=512).contains(&self.init_channels()),
            "init_channels",
            "must lie in 1..=512 (the paper uses 36)",
        )?;
        check(self.epochs() >= 1, "epochs", "must be at least 1")?;
        check(
            (2..=4096).contains(&self.batch_size()),
            "batch_size",
            "must lie in 2..=4096 (batch norm needs two images; the paper uses 96)",
        )?;
        check(
            self.lr() > 0.0 && self.lr().is_finite(),
            "lr",
            "must be a positive number",
        )?;
        check(
            (0.0..=self.lr()).contains(&self.lr_min),
            "lr_min",
            "must lie in 0..=lr",
        )?;
        check(
            (0.0..1.0).contains(&self.momentum),
            "momentum",
            "must lie in [0, 1)",
        )?;
        check(
            self.weight_decay() >= 0.0,
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
            (0.0..1.0).contains(&self.drop_path_prob()),
            "drop_path_prob",
            "is a probability and must lie in [0, 1)",
        )?;
        self.check_recipe()?;
        Ok(genotype)
    }
}

/// The value of a key of [`RECIPE_KEYS`] that means what ddsas did before
/// the key existed.
fn recipe_neutral(key: &str) -> serde_json::Value {
    match key {
        "label_smoothing" => serde_json::json!(0.0),
        "lr_schedule" => serde_json::json!("cosine"),
        "warmup_epochs" => serde_json::json!(0),
        _ => serde_json::Value::Null,
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
    /// The keys of the ImageNet recipe are left out where a config does
    /// not use them (see [`TrainConfig::canonical_value`]), so that the
    /// runs of older configs keep their fingerprints.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(&self.config.canonical_value())
            .expect("a JSON value always serializes")
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
            (c.layers(), c.init_channels(), c.epochs(), c.batch_size()),
            (20, 36, 600, 96)
        );
        assert_eq!(
            (c.lr(), c.lr_min, c.momentum, c.weight_decay()),
            (0.025, 0.0, 0.9, 3e-4)
        );
        assert_eq!(
            (
                c.grad_clip,
                c.auxiliary_weight,
                c.drop_path_prob(),
                c.cutout()
            ),
            (5.0, 0.4, 0.3, 16)
        );
        assert_eq!(
            (c.label_smoothing(), c.lr_schedule(), c.warmup_epochs()),
            (0.0, LrSchedule::Cosine, 0)
        );
        assert_eq!((c.crop_size(), c.jitter()), (None, None));
    }

    /// `dataset: imagenet` takes the ImageNet recipe for every key its
    /// user left unset, shown by `--print-config`; a key set keeps its
    /// value whichever way round the two are given.
    #[test]
    fn imagenet_takes_its_recipe_where_keys_are_unset() {
        let c = TrainConfig::default()
            .with_overrides(&["genotype=darts_v2".into(), "dataset=imagenet".into()])
            .unwrap();
        assert_eq!(
            (c.layers(), c.init_channels(), c.epochs(), c.batch_size()),
            (14, 48, 250, 1024)
        );
        assert_eq!(
            (c.lr(), c.weight_decay(), c.momentum, c.grad_clip),
            (0.5, 3e-5, 0.9, 5.0)
        );
        assert_eq!(
            (c.auxiliary_weight, c.drop_path_prob(), c.cutout()),
            (0.4, 0.0, 0)
        );
        assert_eq!(
            (c.label_smoothing(), c.lr_schedule(), c.warmup_epochs()),
            (0.1, LrSchedule::Linear, 5)
        );
        assert_eq!(c.crop_size(), Some(224));
        assert_eq!(c.jitter(), Some([0.4, 0.4, 0.4, 0.2]));
        let printed = c.commented_yaml();
        for line in [
            "layers: 14",
            "crop_size: 224",
            "lr_schedule: linear",
            "warmup_epochs: 5",
            "jitter_hue: 0.2",
            "hflip: true",
            "normalize_mean:",
            "eval_resize: null",
        ] {
            assert!(
                printed.lines().any(|l| l.starts_with(line)),
                "{line}\n{printed}"
            );
        }
        // No warm-up at batches of 256 or less; keys set first survive
        // the dataset set after them.
        let small = TrainConfig::default()
            .with_overrides(&[
                "layers=8".into(),
                "dataset=imagenet".into(),
                "batch_size=256".into(),
            ])
            .unwrap();
        assert_eq!(
            (small.layers(), small.warmup_epochs(), small.epochs()),
            (8, 0, 250)
        );
        let back = TrainConfig::from_yaml_value(serde_yaml::from_str(&printed).unwrap(), "printed")
            .unwrap();
        assert_eq!(back, c.filled());
    }

    /// The ImageNet-only keys are refused on other datasets, naming the
    /// key; the recipe's values are checked.
    #[test]
    fn recipe_keys_are_checked() {
        let e = resolve(&["genotype=darts_v2", "crop_size=32"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`crop_size`") && e.contains("ImageNet only"),
            "{e}"
        );
        let e = resolve(&["genotype=darts_v2", "jitter_hue=0.1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`jitter_hue`"), "{e}");
        let e = resolve(&["genotype=darts_v2", "label_smoothing=1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`label_smoothing`"), "{e}");
        let e = resolve(&["genotype=darts_v2", "epochs=3", "warmup_epochs=3"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`warmup_epochs`"), "{e}");
        let e = TrainConfig::default()
            .with_overrides(&["lr_schedule=step".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lr_schedule") || e.contains("cosine"), "{e}");
        let imagenet = ["genotype=darts_v2", "dataset=imagenet", "crop_size=8"];
        let sets: Vec<String> = imagenet.iter().map(|s| (*s).to_owned()).collect();
        let e = TrainConfig::default()
            .with_overrides(&sets)
            .unwrap()
            .network()
            .unwrap_err()
            .to_string();
        assert!(e.contains("`crop_size`"), "{e}");
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
        // Nor did the keys of the ImageNet recipe, at their old values.
        let mut neutral = sets.to_vec();
        neutral.extend(["label_smoothing=0", "lr_schedule=cosine", "warmup_epochs=0"]);
        assert_eq!(resolve(&neutral).unwrap().fingerprint(), r.fingerprint());
    }

    /// The canonical config of a CIFAR-recipe run has the keys it had
    /// before the ImageNet recipe, so stored runs keep their identity;
    /// a recipe key that is used enters it, and every stored config reads
    /// back to its own fingerprint (a worker checks that).
    #[test]
    fn the_canonical_config_has_the_old_keys_unless_a_recipe_key_is_used() {
        let r = resolve(&["genotype=darts_v2"]).unwrap();
        let value: serde_json::Value = serde_json::from_str(&r.canonical_json()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "auxiliary_weight",
                "batch_size",
                "cutout",
                "data_dir",
                "dataset",
                "drop_path_prob",
                "epochs",
                "genotype",
                "grad_clip",
                "init_channels",
                "layers",
                "lr",
                "lr_min",
                "momentum",
                "seed",
                "steps_per_epoch",
                "weight_decay"
            ]
        );
        let smoothed = resolve(&["genotype=darts_v2", "label_smoothing=0.1"]).unwrap();
        assert_ne!(smoothed.fingerprint(), r.fingerprint());
        assert!(smoothed
            .canonical_json()
            .contains("\"label_smoothing\":0.1"));
        let data = tempfile::tempdir().unwrap();
        let dir = format!("data_dir={}", data.path().display());
        let imagenet = resolve(&["genotype=darts_v2", "dataset=imagenet", &dir]).unwrap();
        let zero = resolve(&[
            "genotype=darts_v2",
            "dataset=imagenet",
            &dir,
            "label_smoothing=0",
        ])
        .unwrap();
        assert_ne!(imagenet.fingerprint(), zero.fingerprint());
        let synced = resolve(&["genotype=darts_v2", "sync_bn=true"]).unwrap();
        assert_ne!(synced.fingerprint(), r.fingerprint());
        for cfg in [&r, &smoothed, &imagenet, &zero, &synced] {
            let stored: TrainConfig = serde_json::from_str(&cfg.canonical_json()).unwrap();
            assert_eq!(stored.resolve().unwrap().fingerprint(), cfg.fingerprint());
        }
    }

    /// ImageNet's input keys (flip, normalisation, evaluation resize) read
    /// the recipe where unset, enter a run's identity only when they
    /// differ from it, read back to the same fingerprint, are refused on
    /// other datasets and checked.
    #[test]
    fn imagenet_input_keys_enter_the_identity_only_when_changed() {
        let data = tempfile::tempdir().unwrap();
        let dir = format!("data_dir={}", data.path().display());
        let with = |extra: &[&str]| {
            let mut sets = vec!["genotype=darts_v2", "dataset=imagenet", &dir];
            sets.extend(extra);
            resolve(&sets)
        };
        let recipe = with(&[]).unwrap();
        let c = recipe.config();
        assert_eq!(c.hflip(), Some(true));
        assert_eq!(c.normalization(), Some((IMAGENET_MEAN, IMAGENET_STD)));
        assert_eq!(c.eval_resize(), Some(256));
        let small = with(&["crop_size=64"]).unwrap();
        assert_eq!(small.config().eval_resize(), Some(73), "64 * 256 / 224");
        for key in INPUT_KEYS {
            assert!(!recipe.canonical_json().contains(key), "{key}");
        }
        let explicit = with(&[
            "hflip=true",
            "normalize_mean=[0.485, 0.456, 0.406]",
            "normalize_std=[0.229, 0.224, 0.225]",
            "eval_resize=256",
        ])
        .unwrap();
        assert_eq!(explicit.fingerprint(), recipe.fingerprint());
        let small_explicit = with(&["crop_size=64", "eval_resize=73"]).unwrap();
        assert_eq!(small_explicit.fingerprint(), small.fingerprint());
        for set in [
            "hflip=false",
            "normalize_mean=[0.5, 0.5, 0.5]",
            "normalize_std=[0.5, 0.5, 0.5]",
            "eval_resize=224",
        ] {
            let changed = with(&[set]).unwrap();
            assert_ne!(changed.fingerprint(), recipe.fingerprint(), "{set}");
            let stored: TrainConfig = serde_json::from_str(&changed.canonical_json()).unwrap();
            assert_eq!(
                stored.resolve().unwrap().fingerprint(),
                changed.fingerprint()
            );
        }
        let e = resolve(&["genotype=darts_v2", "hflip=false"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`hflip`") && e.contains("ImageNet only"), "{e}");
        for (set, key) in [
            ("eval_resize=100", "`eval_resize`"),
            ("normalize_std=[0.2, 0, 0.2]", "`normalize_std`"),
        ] {
            let e = with(&[set]).unwrap_err().to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
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

    /// `dist_backend` is a setting of `--set` and YAML, shown by
    /// `--print-config`, outside the run's identity; `auto` picks NCCL on
    /// CUDA devices where the build has it, and NCCL is refused where it
    /// cannot run, naming the key and what it needs.
    #[test]
    fn dist_backend_is_a_setting_outside_the_identity() {
        let plain = resolve(&["genotype=darts_v2"]).unwrap();
        assert_eq!(plain.config().dist_backend, DistBackend::Auto);
        let gloo = resolve(&["genotype=darts_v2", "dist_backend=gloo"]).unwrap();
        assert_eq!(gloo.config().dist_backend, DistBackend::Gloo);
        assert_eq!(gloo.fingerprint(), plain.fingerprint());
        assert!(!gloo.canonical_json().contains("dist_backend"));
        let yaml: serde_yaml::Value = serde_yaml::from_str("dist_backend: nccl").unwrap();
        let c = TrainConfig::from_yaml_value(yaml, "test").unwrap();
        assert_eq!(c.dist_backend, DistBackend::Nccl);
        assert!(c
            .commented_yaml()
            .lines()
            .any(|l| l.starts_with("dist_backend: nccl")));
        let e = TrainConfig::default()
            .with_overrides(&["dist_backend=mpi".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("dist_backend") || e.contains("gloo"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        use DistBackend::*;
        assert_eq!(Auto.for_device(false, true).unwrap(), Gloo);
        assert_eq!(Auto.for_device(true, true).unwrap(), Nccl);
        assert_eq!(Auto.for_device(true, false).unwrap(), Gloo);
        assert_eq!(Gloo.for_device(true, true).unwrap(), Gloo);
        let cpu = Nccl.for_device(false, true).unwrap_err().to_string();
        assert!(
            cpu.contains("`dist_backend`") && cpu.contains("CUDA"),
            "{cpu}"
        );
        let unbuilt = Nccl.for_device(true, false).unwrap_err().to_string();
        assert!(
            unbuilt.contains("nccl.h") && !unbuilt.contains('\n'),
            "{unbuilt}"
        );
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
        assert_eq!(back, c.filled());
        assert_eq!(text.lines().count(), TRAIN_KEY_DOCS.len());
    }
}
