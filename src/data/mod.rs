//! Datasets: the bundled UCI digits, CIFAR-10 and CIFAR-100 (binary and
//! Python-pickle layouts), the two search halves and the augmenting loader.
//!
//! Everything is loaded whole into memory as `uint8` tensors (CIFAR-10 is
//! 150 MB), because the [`Loader`] then builds each batch from memory on
//! its device in one go (no per-image work, no files read during a search),
//! which keeps data loading far below the cost of a search step. A malformed or truncated file is a [`DataError`] naming the
//! file and the byte offset, never a panic or a silent partial load.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tch::Tensor;

mod cifar;
mod digits;
pub mod fetch;
pub mod home;
mod loader;
pub mod pickle;

pub use cifar::Found;
pub use loader::{Augment, Loader};

/// Which dataset a search runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// UCI handwritten digits, 8x8 grey, 10 classes, bundled in the binary.
    Digits,
    /// CIFAR-10, 32x32 RGB, 10 classes, from `data_dir`.
    Cifar10,
    /// CIFAR-100, 32x32 RGB, 100 fine classes, from `data_dir`.
    Cifar100,
}

impl DatasetKind {
    /// The lowercase name used in configs and the database.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Digits => "digits",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        }
    }

    /// The datasets `ddsas data get` fetches (the digits are bundled).
    pub const FETCHABLE: [DatasetKind; 2] = [DatasetKind::Cifar10, DatasetKind::Cifar100];

    /// The name people know the dataset by, for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            DatasetKind::Digits => "UCI digits",
            DatasetKind::Cifar10 => "CIFAR-10",
            DatasetKind::Cifar100 => "CIFAR-100",
        }
    }

    /// The shape of its images and its number of classes: all a network
    /// needs to be built, known without reading a file, so that a dry run
    /// works before the data is downloaded. The loaders use it too, so the
    /// two cannot disagree.
    pub fn shape(self) -> ImageShape {
        match self {
            DatasetKind::Digits => ImageShape {
                channels: 1,
                size: 8,
                classes: 10,
            },
            DatasetKind::Cifar10 => ImageShape {
                channels: 3,
                size: 32,
                classes: 10,
            },
            DatasetKind::Cifar100 => ImageShape {
                channels: 3,
                size: 32,
                classes: 100,
            },
        }
    }
}

/// Channels and side of a dataset's (square) images, and its classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    /// Image channels (1 for digits, 3 for CIFAR).
    pub channels: i64,
    /// Image side in pixels (8 for digits, 32 for CIFAR).
    pub size: i64,
    /// Number of classes (10 or 100).
    pub classes: i64,
}

impl std::fmt::Display for ImageShape {
    /// `3x32x32, 10 classes`: channels x height x width, as PyTorch orders them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{}x{}, {} classes",
            self.channels, self.size, self.size, self.classes
        )
    }
}

/// Why a dataset could not be loaded. Every message names the file (or
/// folder) concerned, gives the byte offset for bad content, and says what
/// to do about it, because the person reading it is usually starting a long
/// sweep and needs to fix the data, not debug the loader.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A CIFAR dataset was asked for without saying where it is.
    #[error(
        "{dataset} needs a data directory: run `ddsas data get {name}` (it lands in the data \
         folder, where searches look when data_dir is not set), or download the binary (or \
         Python) version from https://www.cs.toronto.edu/~kriz/cifar.html, extract it, and set \
         data_dir to the folder that holds {folder} (or to {folder} itself)"
    )]
    NoDataDir {
        /// Dataset name, e.g. "CIFAR-10".
        dataset: &'static str,
        /// Its name in configs and commands, e.g. "cifar10".
        name: &'static str,
        /// The folder name of its binary layout.
        folder: &'static str,
    },
    /// Neither layout of the dataset is in the data directory.
    #[error(
        "no {dataset} data in {dir}: looked for {looked_for}; run `ddsas data get {name} --to \
         {dir}`, or download the binary (or Python) version from \
         https://www.cs.toronto.edu/~kriz/cifar.html and extract it into {dir}, or point data_dir \
         at the folder that holds it"
    )]
    NotFound {
        /// Dataset name, e.g. "CIFAR-10".
        dataset: &'static str,
        /// Its name in configs and commands, e.g. "cifar10".
        name: &'static str,
        /// The data directory searched.
        dir: PathBuf,
        /// The folders and files looked for, in words.
        looked_for: String,
    },
    /// A layout was found but one of its files is missing.
    #[error(
        "{path} is missing: the {dataset} {layout} layout in {dir} is incomplete (it needs \
         {needs}); re-download and extract the archive"
    )]
    MissingFile {
        /// The missing file.
        path: PathBuf,
        /// Dataset name.
        dataset: &'static str,
        /// "binary" or "Python".
        layout: &'static str,
        /// The folder holding the layout.
        dir: PathBuf,
        /// All the files the layout needs, in words.
        needs: String,
    },
    /// A file could not be read at all.
    #[error("cannot read {path}: {source}; check that it exists and is readable")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A binary file whose size is not a whole number of records (or is 0).
    #[error(
        "{path}: size {size} bytes is not a whole, non-zero number of {record}-byte {dataset} \
         records; the data is cut short at byte offset {offset}; the file is truncated or is not \
         a {dataset} binary file: re-download and extract it"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The record size (3073 or 3074).
        record: u64,
        /// Where the incomplete record (or the missing first record) starts.
        offset: u64,
        /// Dataset name.
        dataset: &'static str,
    },
    /// Bad content at a known place in a file (a label out of range, a
    /// pickle cut in the middle, an unsupported pickle opcode...).
    #[error("{path}: at byte offset {offset}: {detail}; {fix}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the fault.
        offset: u64,
        /// What is wrong there.
        detail: String,
        /// What to do about it.
        fix: String,
    },
    /// The digits table compiled into the binary is damaged.
    #[error(
        "{path} (compiled into this binary), line {line} (byte offset {offset} of the \
         uncompressed text): {detail}; rebuild ddsas from a clean checkout"
    )]
    Digits {
        /// The file it was compiled from.
        path: &'static str,
        /// 1-based line number.
        line: usize,
        /// Byte offset of the line in the uncompressed CSV.
        offset: u64,
        /// What is wrong there.
        detail: String,
    },
}

/// Images and labels of one split, kept as whole tensors (not a list of
/// samples) so that batches are one `index_select` away.
#[derive(Debug)]
pub struct ImageSet {
    /// uint8 `[N, C, H, W]`, raw pixel values.
    pub images: Tensor,
    /// int64 `[N]`, class indices.
    pub labels: Tensor,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images `start .. start + len` (a view sharing storage, no copy).
    ///
    /// # Panics
    /// If the range is outside the set, like [`Tensor::narrow`].
    pub fn narrow(&self, start: i64, len: i64) -> ImageSet {
        ImageSet {
            images: self.images.narrow(0, start, len),
            labels: self.labels.narrow(0, start, len),
        }
    }
}

/// A loaded dataset: both splits and what a network and the loader need to
/// know about them.
#[derive(Debug)]
pub struct Dataset {
    /// Which dataset this is.
    pub kind: DatasetKind,
    /// Training split (the search splits it in two, see
    /// [`Dataset::search_halves`]).
    pub train: ImageSet,
    /// Test split.
    pub test: ImageSet,
    /// Number of classes (10 or 100).
    pub classes: i64,
    /// Image channels (1 for digits, 3 for CIFAR).
    pub channels: i64,
    /// Image side in pixels (8 for digits, 32 for CIFAR).
    pub size: i64,
    /// Per-channel mean of the training images, in pixel units (0..255 for
    /// CIFAR, 0..16 for digits); computed here rather than hard-coded so
    /// digits and CIFAR-100 get their own.
    pub mean: Vec<f64>,
    /// Per-channel (population) standard deviation of the training images,
    /// in pixel units.
    pub std: Vec<f64>,
}

impl Dataset {
    /// The two search halves (DARTS protocol): first `portion` of `train`
    /// for weight steps, the rest for architecture steps.
    ///
    /// The split is by position (the train set is already in a fixed order:
    /// file order for CIFAR, a seeded shuffle for digits), so it is the same
    /// on every run. `portion` is clamped to `[0, 1]` (NaN counts as 0.5,
    /// the DARTS default); the first half gets `floor(len * portion)` images.
    pub fn search_halves(&self, portion: f64) -> (ImageSet, ImageSet) {
        let n = self.train.len() as i64;
        let p = if portion.is_nan() {
            0.5
        } else {
            portion.clamp(0.0, 1.0)
        };
        let first = ((n as f64) * p).floor() as i64;
        let first = first.clamp(0, n);
        (
            self.train.narrow(0, first),
            self.train.narrow(first, n - first),
        )
    }
}

/// Loads a dataset whole into memory (CPU tensors).
///
/// Digits come from the copy compiled into the binary (`data_dir` is
/// ignored). CIFAR is looked for in `data_dir` itself or in its layout
/// subfolder (`cifar-10-batches-bin`, `cifar-10-batches-py`,
/// `cifar-100-binary`, `cifar-100-python`), so `data_dir` may point at either
/// the extracted folder or its parent; the binary layout is preferred when
/// both exist because it is faster to read.
pub fn load(kind: DatasetKind, data_dir: Option<&std::path::Path>) -> Result<Dataset, DataError> {
    let raw = match kind {
        DatasetKind::Digits => digits::load()?,
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => cifar::load(kind, data_dir)?,
    };
    Ok(raw.into_dataset(kind))
}

/// Where a CIFAR dataset lies in the data folder `dir` (`dir` itself or
/// its layout subfolder, binary preferred, as [`load`] looks), found from
/// the file names alone: cheap enough for config resolution and `ddsas
/// data list`. An incomplete layout is a [`DataError::MissingFile`]; the
/// digits, bundled, are never in a folder ([`DataError::NotFound`]).
pub fn find(kind: DatasetKind, dir: &std::path::Path) -> Result<Found, DataError> {
    if kind == DatasetKind::Digits {
        return Err(DataError::NotFound {
            dataset: kind.display_name(),
            name: kind.name(),
            dir: dir.to_path_buf(),
            looked_for: "nothing: the digits are compiled into ddsas".into(),
        });
    }
    cifar::find(kind, dir)
}

/// Pixels and labels as plain vectors, before they become tensors: the
/// common output of the format readers, in the shape of
/// [`DatasetKind::shape`].
struct RawSplits {
    train_pixels: Vec<u8>,
    train_labels: Vec<i64>,
    test_pixels: Vec<u8>,
    test_labels: Vec<i64>,
}

impl RawSplits {
    fn into_dataset(self, kind: DatasetKind) -> Dataset {
        let ImageShape {
            channels,
            size,
            classes,
        } = kind.shape();
        let plane = (size * size) as usize;
        let (mean, std) = channel_stats(&self.train_pixels, channels as usize, plane);
        let set = |pixels: &[u8], labels: &[i64]| {
            let n = labels.len() as i64;
            ImageSet {
                images: Tensor::from_slice(pixels).view([n, channels, size, size]),
                labels: Tensor::from_slice(labels),
            }
        };
        Dataset {
            kind,
            train: set(&self.train_pixels, &self.train_labels),
            test: set(&self.test_pixels, &self.test_labels),
            classes,
            channels,
            size,
            mean,
            std,
        }
    }
}

/// Exact per-channel mean and population std of image-major `[N, C, plane]`
/// pixels, from a histogram per channel: one pass over the bytes and no
/// float copy of the whole set (which for CIFAR would be 1.2 GB in f64).
/// An empty set gives mean 0 and std 1 (normalisation then does nothing).
fn channel_stats(pixels: &[u8], channels: usize, plane: usize) -> (Vec<f64>, Vec<f64>) {
    let mut hist = vec![[0u64; 256]; channels];
    if channels > 0 && plane > 0 {
        for image in pixels.chunks_exact(channels * plane) {
            for (c, run) in image.chunks_exact(plane).enumerate() {
                let h = &mut hist[c];
                for &p in run {
                    h[p as usize] += 1;
                }
            }
        }
    }
    let mut mean = vec![0.0; channels];
    let mut std = vec![1.0; channels];
    for (c, h) in hist.iter().enumerate() {
        let n: u64 = h.iter().sum();
        if n == 0 {
            continue;
        }
        let m = h
            .iter()
            .enumerate()
            .map(|(v, &k)| v as f64 * k as f64)
            .sum::<f64>()
            / n as f64;
        let var = h
            .iter()
            .enumerate()
            .map(|(v, &k)| (v as f64 - m).powi(2) * k as f64)
            .sum::<f64>()
            / n as f64;
        mean[c] = m;
        std[c] = var.sqrt();
    }
    (mean, std)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dry run builds the network from the shape alone, so it needs no
    /// downloaded data.
    #[test]
    fn each_kind_knows_its_shape_without_reading_data() {
        let shown = [
            DatasetKind::Digits,
            DatasetKind::Cifar10,
            DatasetKind::Cifar100,
        ]
        .map(|k| format!("{}: {}", k.name(), k.shape()));
        assert_eq!(
            shown,
            [
                "digits: 1x8x8, 10 classes",
                "cifar10: 3x32x32, 10 classes",
                "cifar100: 3x32x32, 100 classes"
            ]
        );
    }

    #[test]
    fn digits_loads_and_splits() {
        let ds = load(DatasetKind::Digits, None).unwrap();
        assert_eq!(ds.kind, DatasetKind::Digits);
        assert_eq!((ds.classes, ds.channels, ds.size), (10, 1, 8));
        assert_eq!(ds.train.len() + ds.test.len(), 1797);
        assert!(
            (1430..=1445).contains(&ds.train.len()),
            "{}",
            ds.train.len()
        );
        assert_eq!(ds.train.images.size(), vec![ds.train.len() as i64, 1, 8, 8]);
        assert_eq!(ds.train.images.kind(), tch::Kind::Uint8);
        assert_eq!(ds.train.labels.kind(), tch::Kind::Int64);
        for set in [&ds.train, &ds.test] {
            assert!(
                set.labels.min().int64_value(&[]) == 0 && set.labels.max().int64_value(&[]) == 9
            );
            assert!(set.images.max().int64_value(&[]) <= 16);
            // Class balance: every class has 8%..12% of each split.
            let counts = set.labels.bincount::<Tensor>(None, 10);
            let share = counts.to_kind(tch::Kind::Double) / set.len() as f64;
            assert!(share.min().double_value(&[]) > 0.08 && share.max().double_value(&[]) < 0.12);
        }
        assert_eq!(ds.mean.len(), 1);
        assert!(ds.mean[0] > 3.0 && ds.mean[0] < 7.0, "{:?}", ds.mean);
        assert!(ds.std[0] > 3.0 && ds.std[0] < 8.0, "{:?}", ds.std);
        let (a, b) = ds.search_halves(0.5);
        assert_eq!(a.len(), ds.train.len() / 2);
        assert_eq!(a.len() + b.len(), ds.train.len());
        let (a, b) = ds.search_halves(1.0);
        assert_eq!((a.len(), b.len()), (ds.train.len(), 0));
        assert!(b.is_empty());
        // The halves are disjoint, consecutive views of the train set.
        let (a, b) = ds.search_halves(0.25);
        assert_eq!(a.len(), (ds.train.len() as f64 * 0.25).floor() as usize);
        assert!(b.images.get(0).equal(&ds.train.images.get(a.len() as i64)));
    }

    #[test]
    fn digits_split_is_deterministic() {
        let a = load(DatasetKind::Digits, None).unwrap();
        let b = load(
            DatasetKind::Digits,
            Some(std::path::Path::new("/nonexistent")),
        )
        .unwrap();
        assert!(a.train.images.equal(&b.train.images));
        assert!(a.test.labels.equal(&b.test.labels));
        assert_eq!(a.mean, b.mean);
    }

    #[test]
    fn channel_stats_are_exact() {
        // Two 1x2 images with 2 channels: c0 = {0, 2, 4, 6}, c1 = {1, 1, 1, 1}.
        let px = [0u8, 2, 1, 1, 4, 6, 1, 1];
        let (mean, std) = channel_stats(&px, 2, 2);
        assert_eq!(mean, vec![3.0, 1.0]);
        assert!((std[0] - 5f64.sqrt()).abs() < 1e-12);
        assert_eq!(std[1], 0.0);
    }
}
