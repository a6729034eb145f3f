//! CIFAR-10 and CIFAR-100 in the binary layout (`cifar-10-batches-bin`,
//! `cifar-100-binary`) and in the Python pickle layout
//! (`cifar-10-batches-py`, `cifar-100-python`), the two that torchvision
//! users already have on disk.
//!
//! Both layouts store an image as 3072 bytes: the red, green and blue
//! 32x32 planes, row-major, which is exactly `[3, 32, 32]`, so both give
//! identical tensors. Every file is checked whole (size, labels, array
//! shape) before its images are kept: a bad file is an error naming it and
//! the byte offset, never a partial load.

use std::path::{Path, PathBuf};

use super::pickle::{self, Array, Obj, Value};
use super::{DataError, DatasetKind, RawSplits};

/// Bytes of pixels per image.
const PIXELS: usize = 3 * 32 * 32;

/// One on-disk layout of one dataset.
struct Layout {
    /// The folder the archive extracts to.
    folder: &'static str,
    /// "binary" or "Python", for messages.
    name: &'static str,
    /// Training files, in order.
    train: &'static [&'static str],
    /// Test file.
    test: &'static str,
    /// Binary: record size and the position of the label byte used.
    /// Python: the dict key of the labels used. (Both layouts per dataset.)
    format: Format,
}

enum Format {
    Binary { record: usize, label_at: usize },
    Pickle { labels_key: &'static str },
}

const CIFAR10_BIN: Layout = Layout {
    folder: "cifar-10-batches-bin",
    name: "binary",
    train: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test: "test_batch.bin",
    format: Format::Binary {
        record: 1 + PIXELS,
        label_at: 0,
    },
};
const CIFAR10_PY: Layout = Layout {
    folder: "cifar-10-batches-py",
    name: "Python",
    train: &[
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
    ],
    test: "test_batch",
    format: Format::Pickle {
        labels_key: "labels",
    },
};
/// CIFAR-100 records are coarse label, fine label, pixels; the fine labels
/// (100 classes) are the ones used.
const CIFAR100_BIN: Layout = Layout {
    folder: "cifar-100-binary",
    name: "binary",
    train: &["train.bin"],
    test: "test.bin",
    format: Format::Binary {
        record: 2 + PIXELS,
        label_at: 1,
    },
};
const CIFAR100_PY: Layout = Layout {
    folder: "cifar-100-python",
    name: "Python",
    train: &["train"],
    test: "test",
    format: Format::Pickle {
        labels_key: "fine_labels",
    },
};

impl Layout {
    fn files(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.train.iter().copied().chain(std::iter::once(self.test))
    }
}

fn layouts(kind: DatasetKind) -> [&'static Layout; 2] {
    match kind {
        DatasetKind::Cifar100 => [&CIFAR100_BIN, &CIFAR100_PY],
        _ => [&CIFAR10_BIN, &CIFAR10_PY],
    }
}

/// Finds the layout: for each layout in order of preference (binary
/// first), `dir` itself, then `dir/<layout folder>`; the first folder that
/// holds any file of the layout wins, and must then hold all of them.
fn locate(kind: DatasetKind, dir: &Path) -> Result<(&'static Layout, PathBuf), DataError> {
    for layout in layouts(kind) {
        for folder in [dir.to_path_buf(), dir.join(layout.folder)] {
            if layout.files().any(|f| folder.join(f).is_file()) {
                if let Some(missing) = layout
                    .files()
                    .map(|f| folder.join(f))
                    .find(|p| !p.is_file())
                {
                    return Err(DataError::MissingFile {
                        path: missing,
                        dataset: kind.display_name(),
                        layout: layout.name,
                        dir: folder,
                        needs: layout.files().collect::<Vec<_>>().join(", "),
                    });
                }
                return Ok((layout, folder));
            }
        }
    }
    let looked_for = layouts(kind)
        .iter()
        .map(|l| format!("{}/ (or its files {}, ... directly)", l.folder, l.train[0]))
        .collect::<Vec<_>>()
        .join(" and ");
    Err(DataError::NotFound {
        dataset: kind.display_name(),
        name: kind.name(),
        dir: dir.to_path_buf(),
        looked_for,
    })
}

/// Where a dataset lies in a data folder, found from file names alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// "binary" or "Python".
    pub layout: &'static str,
    /// The folder the official archive of this layout extracts to
    /// (`cifar-10-batches-bin`, ...).
    pub folder_name: &'static str,
    /// The folder holding the files: the data folder itself or its
    /// `folder_name` subfolder.
    pub folder: PathBuf,
    /// Total size of the layout's files.
    pub bytes: u64,
}

/// [`Found`] for `kind` in `dir`, as [`load`] would read it.
pub(super) fn find(kind: DatasetKind, dir: &Path) -> Result<Found, DataError> {
    let (layout, folder) = locate(kind, dir)?;
    let bytes = layout
        .files()
        .filter_map(|f| std::fs::metadata(folder.join(f)).ok())
        .map(|m| m.len())
        .sum();
    Ok(Found {
        layout: layout.name,
        folder_name: layout.folder,
        folder,
        bytes,
    })
}

pub(super) fn load(kind: DatasetKind, data_dir: Option<&Path>) -> Result<RawSplits, DataError> {
    let Some(dir) = data_dir else {
        return Err(DataError::NoDataDir {
            dataset: kind.display_name(),
            name: kind.name(),
            folder: layouts(kind)[0].folder,
        });
    };
    let (layout, folder) = locate(kind, dir)?;
    let classes = kind.shape().classes;
    let read_all = |names: &[&str]| -> Result<(Vec<u8>, Vec<i64>), DataError> {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for name in names {
            let path = folder.join(name);
            let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
                path: path.clone(),
                source,
            })?;
            match layout.format {
                Format::Binary { record, label_at } => read_binary(
                    kind,
                    &path,
                    &bytes,
                    record,
                    label_at,
                    classes,
                    &mut pixels,
                    &mut labels,
                )?,
                Format::Pickle { labels_key } => read_pickle(
                    kind,
                    &path,
                    &bytes,
                    labels_key,
                    classes,
                    &mut pixels,
                    &mut labels,
                )?,
            }
        }
        Ok((pixels, labels))
    };
    let (train_pixels, train_labels) = read_all(layout.train)?;
    let (test_pixels, test_labels) = read_all(&[layout.test])?;
    Ok(RawSplits {
        train_pixels,
        train_labels,
        test_pixels,
        test_labels,
    })
}

const FIX: &str =
    "the file is damaged or is not from the official archive: re-download and extract it";

fn corrupt(path: &Path, offset: u64, detail: String) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        offset,
        detail,
        fix: FIX.to_string(),
    }
}

/// Reads one binary batch: whole records of label byte(s) + 3072 pixels.
#[allow(clippy::too_many_arguments)]
fn read_binary(
    kind: DatasetKind,
    path: &Path,
    bytes: &[u8],
    record: usize,
    label_at: usize,
    classes: i64,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<i64>,
) -> Result<(), DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            record: record as u64,
            offset: (bytes.len() - bytes.len() % record) as u64,
            dataset: kind.display_name(),
        });
    }
    let n = bytes.len() / record;
    pixels.reserve(n * PIXELS);
    labels.reserve(n);
    let start = labels.len();
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[label_at] as i64;
        if label >= classes {
            // Roll back this file's images: nothing partial is kept.
            labels.truncate(start);
            pixels.truncate(start * PIXELS);
            return Err(corrupt(
                path,
                (i * record + label_at) as u64,
                format!("label {label} of image {i} is out of range 0..{classes}"),
            ));
        }
        labels.push(label);
        pixels.extend_from_slice(&rec[record - PIXELS..]);
    }
    Ok(())
}

/// Reads one pickled batch: a dict with `data` (uint8 `[N, 3072]`) and the
/// labels list under `labels_key`.
fn read_pickle(
    kind: DatasetKind,
    path: &Path,
    bytes: &[u8],
    labels_key: &str,
    classes: i64,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<i64>,
) -> Result<(), DataError> {
    let top = pickle::parse(bytes).map_err(|e| DataError::Corrupt {
        path: path.to_path_buf(),
        offset: e.offset,
        detail: format!("cannot read the pickle: {}", e.detail),
        fix: FIX.to_string(),
    })?;
    let what = format!("a {} Python batch", kind.display_name());
    if !matches!(top.obj, Obj::Dict(_)) {
        return Err(corrupt(
            path,
            top.at,
            format!(
                "the pickle holds a {}, not a dict ({what})",
                top.type_name()
            ),
        ));
    }
    let array = pixel_array(path, &top, &what)?;
    let n = array.shape[0] as usize;
    let file_labels = batch_labels(path, &top, labels_key, classes, n, &what)?;
    labels.extend_from_slice(&file_labels);
    pixels.extend_from_slice(&array.data);
    Ok(())
}

/// The batch's `data`: a uint8 numpy array of `[N, 3072]` pixels, N > 0.
fn pixel_array(path: &Path, top: &Value, what: &str) -> Result<Array, DataError> {
    let data = top
        .dict_get("data")
        .ok_or_else(|| corrupt(path, top.at, format!("the dict has no 'data' key ({what})")))?;
    let array = match &data.obj {
        Obj::Array(a) => a.borrow().clone(),
        _ => None,
    };
    let Some(array) = array else {
        return Err(corrupt(
            path,
            data.at,
            format!("'data' is a {}, not a numpy array", data.type_name()),
        ));
    };
    if array.dtype != "u1"
        || array.shape.len() != 2
        || array.shape[1] != PIXELS as i64
        || array.shape[0] == 0
    {
        return Err(corrupt(
            path,
            data.at,
            format!(
                "'data' is a {} array of shape {:?}, expected uint8 [N, {PIXELS}] with N > 0",
                array.dtype, array.shape
            ),
        ));
    }
    Ok(array)
}

/// The batch's `n` labels under `labels_key`, each an int in `0..classes`.
fn batch_labels(
    path: &Path,
    top: &Value,
    labels_key: &str,
    classes: i64,
    n: usize,
    what: &str,
) -> Result<Vec<i64>, DataError> {
    let list = top.dict_get(labels_key).ok_or_else(|| {
        corrupt(
            path,
            top.at,
            format!("the dict has no '{labels_key}' key ({what})"),
        )
    })?;
    let Obj::List(items) = &list.obj else {
        return Err(corrupt(
            path,
            list.at,
            format!("'{labels_key}' is a {}, not a list", list.type_name()),
        ));
    };
    let items = items.borrow();
    if items.len() != n {
        return Err(corrupt(
            path,
            list.at,
            format!("'{labels_key}' has {} labels for {n} images", items.len()),
        ));
    }
    let mut file_labels = Vec::with_capacity(n);
    for (i, item) in items.iter().enumerate() {
        match item.obj {
            Obj::Int(v) if (0..classes).contains(&v) => file_labels.push(v),
            _ => {
                let got = match item.obj {
                    Obj::Int(v) => v.to_string(),
                    _ => format!("a {}", item.type_name()),
                };
                return Err(corrupt(
                    path,
                    item.at,
                    format!(
                        "label {i} of '{labels_key}' is {got}, expected an int in 0..{classes}"
                    ),
                ));
            }
        }
    }
    Ok(file_labels)
}

#[cfg(test)]
mod tests {
    use super::super::{read, DataError, DatasetKind};
    use super::find;
    use std::path::{Path, PathBuf};

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar")
    }

    /// Copies one layout folder of the fixtures into a fresh temp dir.
    fn copy_layout(folder: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let dst = tmp.path().join(folder);
        std::fs::create_dir(&dst).unwrap();
        for e in std::fs::read_dir(fixtures().join(folder)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        tmp
    }

    /// Compares the tensors, so in the `engine` build only.
    #[cfg(feature = "engine")]
    #[test]
    fn cifar10_binary_and_python_agree() {
        use crate::data::load;
        let bin = copy_layout("cifar-10-batches-bin");
        let py = copy_layout("cifar-10-batches-py");
        let a = load(DatasetKind::Cifar10, Some(bin.path())).unwrap();
        // The Python layout, with data_dir pointing at the layout folder itself.
        let b = load(
            DatasetKind::Cifar10,
            Some(&py.path().join("cifar-10-batches-py")),
        )
        .unwrap();
        for ds in [&a, &b] {
            assert_eq!((ds.classes, ds.channels, ds.size), (10, 3, 32));
            assert_eq!(ds.train.images.size(), vec![50, 3, 32, 32]);
            assert_eq!(ds.test.images.size(), vec![10, 3, 32, 32]);
            assert_eq!(ds.train.images.kind(), tch::Kind::Uint8);
            // Each fixture batch holds every class once.
            let counts = ds.train.labels.bincount::<tch::Tensor>(None, 10);
            assert!(counts.eq(5).all().int64_value(&[]) == 1);
            assert_eq!(ds.mean.len(), 3);
            assert!(
                ds.mean.iter().all(|m| (100.0..155.0).contains(m)),
                "{:?}",
                ds.mean
            );
        }
        assert!(a.train.images.equal(&b.train.images));
        assert!(a.train.labels.equal(&b.train.labels));
        assert!(a.test.images.equal(&b.test.images));
        assert!(a.test.labels.equal(&b.test.labels));
        assert_eq!(a.mean, b.mean);
        assert_eq!(a.std, b.std);
        // Pixel layout: image 0 of test_batch.bin, red plane, row 0 col 1 is
        // byte 1 + 1 of the file.
        let raw = std::fs::read(fixtures().join("cifar-10-batches-bin/test_batch.bin")).unwrap();
        assert_eq!(a.test.images.int64_value(&[0, 0, 0, 1]), raw[2] as i64);
        assert_eq!(a.test.images.int64_value(&[0, 2, 31, 31]), raw[3072] as i64);
        assert_eq!(a.test.labels.int64_value(&[0]), raw[0] as i64);
    }

    /// Compares the tensors, so in the `engine` build only.
    #[cfg(feature = "engine")]
    #[test]
    fn cifar100_binary_and_python_agree() {
        use crate::data::load;
        // data_dir = the fixtures folder, which holds both layouts (and
        // CIFAR-10's): binary is preferred, the Python one loads when alone.
        let a = load(DatasetKind::Cifar100, Some(&fixtures())).unwrap();
        let py = copy_layout("cifar-100-python");
        let b = load(DatasetKind::Cifar100, Some(py.path())).unwrap();
        for ds in [&a, &b] {
            assert_eq!((ds.classes, ds.channels, ds.size), (100, 3, 32));
            assert_eq!(ds.train.images.size(), vec![20, 3, 32, 32]);
            assert_eq!(ds.test.labels.size(), vec![10]);
            // Fine labels (the fixtures set 0 and 99 in each split).
            assert_eq!(ds.test.labels.max().int64_value(&[]), 99);
            assert_eq!(ds.train.labels.min().int64_value(&[]), 0);
        }
        assert!(a.train.images.equal(&b.train.images));
        assert!(a.train.labels.equal(&b.train.labels));
        assert!(a.test.images.equal(&b.test.images));
        assert!(a.test.labels.equal(&b.test.labels));
        let raw = std::fs::read(fixtures().join("cifar-100-binary/test.bin")).unwrap();
        assert_eq!(a.test.labels.int64_value(&[1]), raw[3074 + 1] as i64);
    }

    fn truncate(path: &Path, len: u64) {
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(len).unwrap();
    }

    #[test]
    fn truncated_files_name_file_and_offset() {
        let cases = [
            (
                DatasetKind::Cifar10,
                "cifar-10-batches-bin",
                "data_batch_3.bin",
                3073 * 4 + 100,
                "byte offset 12292",
            ),
            (
                DatasetKind::Cifar10,
                "cifar-10-batches-py",
                "data_batch_2",
                20_000,
                "byte offset 20000",
            ),
            (
                DatasetKind::Cifar10,
                "cifar-10-batches-py",
                "test_batch",
                31_100,
                "byte offset",
            ),
            (
                DatasetKind::Cifar100,
                "cifar-100-binary",
                "test.bin",
                3074 * 2 + 1,
                "byte offset 6148",
            ),
            (
                DatasetKind::Cifar100,
                "cifar-100-python",
                "train",
                50,
                "byte offset",
            ),
            (
                DatasetKind::Cifar100,
                "cifar-100-python",
                "test",
                46_000,
                "byte offset",
            ),
        ];
        for (kind, folder, file, len, want) in cases {
            let tmp = copy_layout(folder);
            truncate(&tmp.path().join(folder).join(file), len);
            let e = read(kind, Some(tmp.path()))
                .expect_err("truncated file must not load")
                .to_string();
            assert!(
                e.contains(file) && e.contains(want) && e.contains("re-download"),
                "{folder}/{file}: {e}"
            );
        }
        // An empty binary file is an error too.
        let tmp = copy_layout("cifar-10-batches-bin");
        truncate(&tmp.path().join("cifar-10-batches-bin/test_batch.bin"), 0);
        let e = read(DatasetKind::Cifar10, Some(tmp.path())).unwrap_err();
        assert!(matches!(e, DataError::Truncated { offset: 0, .. }), "{e}");
    }

    #[test]
    fn bad_content_is_located() {
        // A label byte out of range.
        let tmp = copy_layout("cifar-10-batches-bin");
        let p = tmp.path().join("cifar-10-batches-bin/data_batch_1.bin");
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[3073 * 2] = 10;
        std::fs::write(&p, &bytes).unwrap();
        let e = read(DatasetKind::Cifar10, Some(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_batch_1.bin")
                && e.contains("byte offset 6146")
                && e.contains("label 10"),
            "{e}"
        );
        // A wrong magic: not a pickle at all.
        let tmp = copy_layout("cifar-10-batches-py");
        let p = tmp.path().join("cifar-10-batches-py/data_batch_4");
        std::fs::write(&p, b"PK\x03\x04 this is a zip file").unwrap();
        let e = read(DatasetKind::Cifar10, Some(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_batch_4") && e.contains("byte offset 0") && e.contains("0x50"),
            "{e}"
        );
        // A pickled label out of range (the first label's BININT1 argument
        // is byte 58 of the Python 2 style fixture).
        let tmp = copy_layout("cifar-10-batches-py");
        let p = tmp.path().join("cifar-10-batches-py/test_batch");
        let mut bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[56..58], b"(K");
        bytes[58] = 200;
        std::fs::write(&p, &bytes).unwrap();
        let e = read(DatasetKind::Cifar10, Some(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test_batch: at byte offset 57") && e.contains("is 200"),
            "{e}"
        );
        // A CIFAR-10 batch where CIFAR-100 is expected: no fine_labels.
        let tmp = copy_layout("cifar-100-python");
        std::fs::copy(
            fixtures().join("cifar-10-batches-py/test_batch"),
            tmp.path().join("cifar-100-python/test"),
        )
        .unwrap();
        let e = read(DatasetKind::Cifar100, Some(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fine_labels") && e.contains("byte offset 2"),
            "{e}"
        );
    }

    #[test]
    fn missing_files_and_dirs() {
        let tmp = copy_layout("cifar-10-batches-bin");
        std::fs::remove_file(tmp.path().join("cifar-10-batches-bin/data_batch_5.bin")).unwrap();
        let e = read(DatasetKind::Cifar10, Some(tmp.path())).unwrap_err();
        assert!(matches!(e, DataError::MissingFile { .. }), "{e}");
        assert!(e.to_string().contains("data_batch_5.bin is missing"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = read(DatasetKind::Cifar100, Some(empty.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cifar-100-binary") && e.contains("cifar-100-python"),
            "{e}"
        );
        let e = read(DatasetKind::Cifar10, None).unwrap_err().to_string();
        assert!(e.contains("data_dir"), "{e}");
        // A directory that does not exist is "not found", not a panic.
        let e = read(DatasetKind::Cifar10, Some(Path::new("/nonexistent/cifar"))).unwrap_err();
        assert!(matches!(e, DataError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("ddsas data get cifar10"), "{e}");
    }

    #[test]
    fn find_names_the_layout_folder_and_size_without_reading() {
        let f = find(DatasetKind::Cifar10, &fixtures()).unwrap();
        assert_eq!(
            (f.layout, f.folder_name),
            ("binary", "cifar-10-batches-bin")
        );
        assert_eq!(f.folder, fixtures().join("cifar-10-batches-bin"));
        assert_eq!(f.bytes, 6 * 30730);
        // The layout folder itself, and the Python layout alone.
        let tmp = copy_layout("cifar-100-python");
        let f = find(DatasetKind::Cifar100, &tmp.path().join("cifar-100-python")).unwrap();
        assert_eq!((f.layout, f.folder_name), ("Python", "cifar-100-python"));
        assert_eq!(f.folder, tmp.path().join("cifar-100-python"));
        assert!(find(DatasetKind::Cifar10, tmp.path()).is_err());
    }
}
