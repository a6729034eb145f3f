//! Datasets: the bundled UCI digits, CIFAR-10 and CIFAR-100 (binary and
//! Python-pickle layouts), the two search halves and the augmenting loader.
//!
//! With the `engine` feature everything is loaded whole into memory as
//! `uint8` tensors (CIFAR-10 is 150 MB), because the `Loader` then builds
//! each batch from memory on its device in one go (no per-image work, no
//! files read during a search), which keeps data loading far below the
//! cost of a search step. A malformed or truncated file is a [`DataError`]
//! naming the file and the byte offset, never a panic or a silent partial
//! load.
//!
//! What needs no tensor (the dataset kinds, finding and fetching the files,
//! reading them into plain vectors with [`read`]) is here in every build;
//! the tensors, the splits and the loader are in the `engine` build only,
//! so that `ddsas data`, config resolution and the reports build without
//! libtorch.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod cifar;
mod digits;
pub mod fetch;
pub mod home;
#[cfg(feature = "engine")]
mod loader;
pub mod pickle;
#[cfg(feature = "engine")]
mod tensors;

pub use cifar::Found;
#[cfg(feature = "engine")]
pub use loader::{Augment, Loader};
#[cfg(feature = "engine")]
pub use tensors::{load, Dataset, ImageSet};

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
    /// ImageNet (ILSVRC-2012), RGB, 1000 classes, from `data_dir`.
    #[serde(rename = "imagenet")]
    ImageNet,
}

impl DatasetKind {
    /// The lowercase name used in configs and the database.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Digits => "digits",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::ImageNet => "imagenet",
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
            DatasetKind::ImageNet => "ImageNet",
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
            DatasetKind::ImageNet => ImageShape {
                channels: 3,
                size: 224,
                classes: 1000,
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

/// Where a CIFAR dataset lies in the data folder `dir` (`dir` itself or
/// its layout subfolder, binary preferred, as [`read`] looks), found from
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

/// Reads a dataset's two splits into plain vectors, checking every file
/// as [`DataError`] describes; where CIFAR is looked for is as for `find`.
/// Digits come from the copy compiled into the binary (`data_dir` is
/// ignored). The tensor loader builds on it; it needs no libtorch itself.
pub fn read(kind: DatasetKind, data_dir: Option<&std::path::Path>) -> Result<RawSplits, DataError> {
    match kind {
        DatasetKind::Digits => digits::load(),
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => cifar::load(kind, data_dir),
        DatasetKind::ImageNet => Err(DataError::NotFound {
            dataset: kind.display_name(),
            name: kind.name(),
            dir: data_dir.map(ToOwned::to_owned).unwrap_or_default(),
            looked_for: "train/ and val/ class folders (this build has no ImageNet reader)".into(),
        }),
    }
}

/// Pixels and labels as plain vectors, before they become tensors: the
/// common output of the format readers, in the shape of
/// [`DatasetKind::shape`] (images one after the other, each channel-major:
/// `[N, C, H, W]` flattened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSplits {
    /// Pixels of the training split.
    pub train_pixels: Vec<u8>,
    /// Class indices of the training split, one per image.
    pub train_labels: Vec<i64>,
    /// Pixels of the test split.
    pub test_pixels: Vec<u8>,
    /// Class indices of the test split, one per image.
    pub test_labels: Vec<i64>,
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
}
