//! The datasets as tensors (`engine` build only): the splits a search and
//! a training read their batches from, made from [`read`]'s plain vectors.

use tch::Tensor;

use super::{read, DataError, DatasetKind, ImageShape, RawSplits};

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
    Ok(read(kind, data_dir)?.into_dataset(kind))
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
