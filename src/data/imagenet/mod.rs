//! ImageNet (ILSVRC2012) in the folder layout its users already have:
//! `DIR/train/<wnid>/*.JPEG` and `DIR/val/<wnid>/*.JPEG`, the validation
//! images sorted into class folders like the training ones.
//!
//! 1.28 M photographs (about 140 GB) do not fit in memory the way CIFAR
//! does, so ImageNet is not a [`super::Dataset`]: the folder is listed here
//! (no decoding, no libtorch, so the light build's `ddsas data list` can
//! show it) and the engine build's [`ImageNetLoader`] reads, decodes and
//! augments the images on worker threads while the network trains.
//!
//! The classes are the sorted folder names (the wnids), so class `k` is the
//! same folder whatever machine lists it, and train and val must name the
//! same folders: a model trained on one numbering and scored on another
//! would report chance accuracy without an error.

use std::path::{Path, PathBuf};

use super::{DataError, Found};

#[cfg(feature = "engine")]
mod decode;
#[cfg(feature = "engine")]
mod loader;
#[cfg(feature = "engine")]
mod transform;

#[cfg(feature = "engine")]
pub use decode::{decode_rgb, Jpeg, Rgb, DECODER};
#[cfg(feature = "engine")]
pub use loader::{Batches, ImageNetLoader, Mode};
#[cfg(feature = "engine")]
pub use transform::{eval_image, train_image, ColorJitter, Source, Transforms, MEAN, STD};

/// The recipe's crop side: RandomResizedCrop(224) in training, a 224
/// centre crop of the image resized to 256 in evaluation.
pub const DEFAULT_CROP: i64 = 224;

/// The recipe's evaluation resize (shorter side) for a centre crop of
/// `crop`: 256 for 224, in proportion for other crops.
pub fn eval_resize_for(crop: usize) -> usize {
    (crop * 256 + 112) / 224
}

/// The name of the ImageNet folder inside the data folder.
pub const FOLDER: &str = "imagenet";

/// How to lay ImageNet out, for the errors and `ddsas data get imagenet`.
pub const LAYOUT_HELP: &str = "put the training images in DIR/train/<wnid>/*.JPEG (untar \
     ILSVRC2012_img_train.tar, then each of its 1000 class tars into a folder named after it) \
     and the validation images in DIR/val/<wnid>/*.JPEG (untar ILSVRC2012_img_val.tar into \
     DIR/val and sort it into class folders, e.g. with the well-known valprep.sh or the \
     devkit's ground truth), where DIR is the data folder's `imagenet` folder or data_dir";

/// One split's images: file paths, sorted by class then name, and the
/// class index of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// The image files.
    pub files: Vec<PathBuf>,
    /// The class index of each file (into [`Folder::classes`]).
    pub labels: Vec<i64>,
}

impl Split {
    /// Images in the split.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the split has no image.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// A listed ImageNet folder: its classes and both splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The folder holding `train/` and `val/`.
    pub root: PathBuf,
    /// The class folder names (wnids), sorted: class `k` is `classes[k]`.
    pub classes: Vec<String>,
    /// The training images.
    pub train: Split,
    /// The validation images.
    pub val: Split,
}

/// Where ImageNet lies under the data folder `dir`: `dir/imagenet` or
/// `dir` itself, whichever holds `train/` and `val/` folders. Cheap (two
/// `stat`s each), for config resolution and `ddsas data list`; the sizes
/// are not summed (1.28 M files), so `bytes` is 0.
pub fn find(dir: &Path) -> Result<Found, DataError> {
    let candidates = [dir.join(FOLDER), dir.to_path_buf()];
    let is_layout = |d: &Path| d.join("train").is_dir() && d.join("val").is_dir();
    match candidates.into_iter().find(|d| is_layout(d)) {
        Some(folder) => Ok(Found {
            layout: "folders",
            folder_name: FOLDER,
            folder,
            bytes: 0,
        }),
        None => Err(DataError::NoImageNet {
            dir: dir.to_path_buf(),
            looked_for: format!(
                "{FOLDER}/train and {FOLDER}/val, or train and val ({LAYOUT_HELP})"
            ),
        }),
    }
}

impl Folder {
    /// Lists `dir` (found as [`find`] looks: `dir/imagenet` or `dir`),
    /// checking the layout as the module docs describe: an error names the
    /// folder at fault and says how to fix it.
    pub fn open(dir: &Path) -> Result<Folder, DataError> {
        let root = find(dir)?.folder;
        let train_dir = root.join("train");
        let val_dir = root.join("val");
        let classes = class_folders(&train_dir)?;
        if classes.is_empty() {
            return Err(layout(
                &train_dir,
                "has no class folders",
                "it must hold one folder per class (the wnids, e.g. n01440764)",
            ));
        }
        let val_classes = class_folders(&val_dir)?;
        let loose = image_files(&val_dir)?;
        if !loose.is_empty() {
            return Err(flat_val(&val_dir, loose.len(), val_classes.len()));
        }
        check_same_classes(&root, &classes, &val_classes)?;
        Ok(Folder {
            train: list_split(&train_dir, &classes)?,
            val: list_split(&val_dir, &classes)?,
            classes,
            root,
        })
    }
}

/// The sorted names of `dir`'s subfolders.
fn class_folders(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let is_dir = entry
            .file_type()
            .map(|t| t.is_dir() || (t.is_symlink() && entry.path().is_dir()))
            .map_err(|e| io(&entry.path(), e))?;
        if is_dir {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The JPEG files directly in `dir`, sorted by name.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    for entry in read_dir(dir)? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if is_jpeg_name(&path) && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `.JPEG` (ImageNet's spelling), `.jpeg` or `.jpg`, any case.
fn is_jpeg_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpeg") || e.eq_ignore_ascii_case("jpg"))
}

fn list_split(dir: &Path, classes: &[String]) -> Result<Split, DataError> {
    let mut split = Split::default();
    for (k, class) in classes.iter().enumerate() {
        let folder = dir.join(class);
        let files = image_files(&folder)?;
        if files.is_empty() {
            return Err(layout(
                &folder,
                "is an empty class folder (no .JPEG/.jpg file)",
                "every class needs images: re-extract that class's archive, or remove the \
                 class from both train and val",
            ));
        }
        split
            .labels
            .extend(std::iter::repeat_n(k as i64, files.len()));
        split.files.extend(files);
    }
    Ok(split)
}

/// The class lists of train and val must be equal; the error lists what
/// each has that the other lacks (the first few, then a count).
fn check_same_classes(root: &Path, train: &[String], val: &[String]) -> Result<(), DataError> {
    if train == val {
        return Ok(());
    }
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|c| b.binary_search(c).is_err())
            .cloned()
            .collect()
    };
    let (only_train, only_val) = (only(train, val), only(val, train));
    Err(layout(
        root,
        &format!(
            "train/ and val/ have different class folders: only in train ({}): {}; only in val \
             ({}): {}",
            only_train.len(),
            some(&only_train),
            only_val.len(),
            some(&only_val)
        ),
        "the classes are the sorted folder names, so both splits must hold the same folders",
    ))
}

/// The first ten names, then how many more.
fn some(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let shown = names
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len() {
        n if n > 10 => format!("{shown} and {} more", n - 10),
        _ => shown,
    }
}

fn flat_val(dir: &Path, loose: usize, folders: usize) -> DataError {
    layout(
        dir,
        &format!(
            "is flat: {loose} images lie directly in it ({folders} class folders beside them), \
             but the validation images must be sorted into class folders like train/"
        ),
        "sort them into val/<wnid>/ with the devkit's ground truth \
         (ILSVRC2012_validation_ground_truth.txt, whose class ids map to wnids through the \
         devkit's meta.mat) or the well-known valprep.sh script, which moves each \
         ILSVRC2012_val_*.JPEG into its wnid folder",
    )
}

fn layout(dir: &Path, detail: &str, fix: &str) -> DataError {
    DataError::Layout {
        dir: dir.to_path_buf(),
        detail: detail.to_owned(),
        fix: fix.to_owned(),
    }
}

fn read_dir(dir: &Path) -> Result<std::fs::ReadDir, DataError> {
    std::fs::read_dir(dir).map_err(|e| io(dir, e))
}

fn io(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests;
