//! The batch loader: shuffling, augmentation (random crop after zero
//! padding, horizontal flip) and per-channel normalisation.
//!
//! Why it looks like this: a search step at batch 64 costs ~100 ms on a CPU
//! and a few ms on a GPU, and data loading must stay far below that, with
//! no per-image host round trip. The host draws the random numbers (with
//! ChaCha, so an epoch is a pure function of its seed and a resumed run sees
//! exactly the same data); how a batch is then built depends on the device:
//!
//! - **GPU** (any non-CPU device): the whole set lives on the device as
//!   `uint8`; a batch is one small upload of indices, one `index_select`,
//!   one conversion to float and normalisation, and the crop and flip of all
//!   its images are a single `gather` over the zero-padded batch, whose
//!   indices are computed from per-image offsets.
//! - **CPU**: the loader keeps the pixels as a plain `Vec<u8>` and builds
//!   the normalised, cropped and flipped batch in one pass of Rust, then
//!   hands it to libtorch with one copy (on the CPU the "device" is this
//!   memory, so the set is still held where the batches are used). The
//!   tensor recipe above is six libtorch ops per batch, each split across
//!   libtorch's intra-op threads; when the cores are shared (a sweep runs
//!   several CPU workers) every op waits for a descheduled thread. On a
//!   2-core machine, an augmented CIFAR batch of 64 took 0.44 ms by tensor
//!   ops when idle but 2-30 ms while other processes competed; the one pass
//!   takes 0.17 ms idle and under 1 ms loaded. The price is a copy of the
//!   set's pixels in the loader (75 MB per CIFAR search half).
//!
//! Both paths give the same batches for the same seed (a test checks it).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::{Dataset, DatasetKind, ImageSet};

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Zero padding (after normalisation, so it is the channel mean) added
    /// on every side before a random crop back to the original size; 0
    /// turns cropping off.
    pub pad: i64,
    /// Whether to flip images horizontally with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// The augmentation of the paper for CIFAR (random crop with 4-pixel
    /// padding and horizontal flip, docs/design.md §2), and a milder one for digits:
    /// a 1-pixel pad and no flip. A flipped digit is often another digit (or
    /// no digit at all), and a 4-pixel shift of an 8x8 image moves half the
    /// digit out of the frame, so the CIFAR recipe would teach the network
    /// noise rather than invariance.
    pub fn for_dataset(kind: DatasetKind) -> Augment {
        match kind {
            DatasetKind::Digits => Augment {
                pad: 1,
                flip: false,
            },
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => Augment { pad: 4, flip: true },
            // Its own loader crops and flips (imagenet::Transform); this
            // one never sees ImageNet, so nothing to pad.
            DatasetKind::ImageNet => Augment { pad: 0, flip: true },
        }
    }
}

/// The crop offsets and flips of one batch of `b` images, drawn in the
/// order an epoch has always drawn them: per image dy, dx, then the flip.
fn draw_crops(aug: Augment, b: usize, rng: &mut ChaCha8Rng) -> Vec<Crop> {
    let p = aug.pad;
    let draw = |rng: &mut ChaCha8Rng| if p > 0 { rng.gen_range(0..=2 * p) } else { p };
    (0..b)
        .map(|_| {
            let dy = draw(rng);
            let dx = draw(rng);
            Crop {
                dy,
                dx,
                flip: aug.flip && rng.gen_bool(0.5),
            }
        })
        .collect()
}

/// One image's augmentation draw: top-left corner of the crop in the
/// padded image, and whether to flip it.
#[derive(Debug, Clone, Copy)]
struct Crop {
    dy: i64,
    dx: i64,
    flip: bool,
}

/// Where the set lives and so how batches are built (see the module docs).
enum Store {
    /// CPU: pixels (`[N, C, H, W]` row-major) and labels as plain vectors.
    Host { pixels: Vec<u8>, labels: Vec<i64> },
    /// Other devices: uint8 `[N, C, H, W]` and int64 `[N]` on the device.
    Device { images: Tensor, labels: Tensor },
}

/// Batches of one [`ImageSet`], ready for the network: float, normalised,
/// on the loader's device.
pub struct Loader {
    store: Store,
    /// Images in the set.
    n: i64,
    /// Image shape.
    c: i64,
    h: i64,
    w: i64,
    /// Per-channel mean (pixel units) and 1/std, for the host path...
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// ...and as f32 `[1, C, 1, 1]` on the device, for the tensor path.
    mean_t: Tensor,
    inv_std_t: Tensor,
    augment: Option<Augment>,
    batch_size: i64,
    device: Device,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("images", &[self.n, self.c, self.h, self.w])
            .field("device", &self.device)
            .field("host_path", &matches!(self.store, Store::Host { .. }))
            .field("batch_size", &self.batch_size)
            .field("augment", &self.augment)
            .finish()
    }
}

impl Loader {
    /// Copies `set` to `device` once (on the CPU: into a plain vector, see
    /// the module docs) and remembers `ds`'s train-set mean/std for
    /// normalisation. `augment` applies to [`Loader::epoch`] only; pass
    /// `None` for un-augmented training batches.
    ///
    /// # Panics
    /// If `batch_size < 1` or `augment.pad < 0` (programming errors: configs
    /// reject them first).
    pub fn new(
        set: &ImageSet,
        ds: &Dataset,
        device: Device,
        batch_size: i64,
        augment: Option<Augment>,
    ) -> Loader {
        Loader::build(set, ds, device, batch_size, augment, device == Device::Cpu)
    }

    /// [`Loader::new`] with the batch-building path chosen explicitly (the
    /// tests compare the two on the CPU).
    fn build(
        set: &ImageSet,
        ds: &Dataset,
        device: Device,
        batch_size: i64,
        augment: Option<Augment>,
        host: bool,
    ) -> Loader {
        assert!(
            batch_size >= 1,
            "Loader batch size must be at least 1, got {batch_size}"
        );
        if let Some(a) = augment {
            assert!(
                a.pad >= 0,
                "Augment pad must be non-negative, got {}",
                a.pad
            );
        }
        let size = set.images.size();
        let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
        let mean: Vec<f32> = ds.mean.iter().map(|&m| m as f32).collect();
        // A constant channel (std 0) is left unscaled rather than divided by 0.
        let inv_std: Vec<f32> = ds
            .std
            .iter()
            .map(|&s| if s > 0.0 { (1.0 / s) as f32 } else { 1.0 })
            .collect();
        let store = if host {
            let flat = |t: &Tensor| t.reshape([-1]).to_device(Device::Cpu);
            Store::Host {
                pixels: Vec::try_from(&flat(&set.images)).expect("ImageSet images are uint8"),
                labels: Vec::try_from(&flat(&set.labels)).expect("ImageSet labels are int64"),
            }
        } else {
            Store::Device {
                images: set.images.to_device(device).contiguous(),
                labels: set
                    .labels
                    .to_device(device)
                    .to_kind(Kind::Int64)
                    .contiguous(),
            }
        };
        Loader {
            store,
            n,
            c,
            h,
            w,
            mean_t: Tensor::from_slice(&mean)
                .view([1, c, 1, 1])
                .to_device(device),
            inv_std_t: Tensor::from_slice(&inv_std)
                .view([1, c, 1, 1])
                .to_device(device),
            mean,
            inv_std,
            augment: augment.filter(|a| a.pad > 0 || a.flip),
            batch_size,
            device,
        }
    }

    /// The batch size an epoch actually uses: the asked one, or the whole set
    /// when it is smaller (so a tiny set still trains).
    fn epoch_batch(&self) -> i64 {
        self.batch_size.min(self.n)
    }

    /// Images in the set.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Whether the set has no image.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Batches in one [`Loader::epoch`]: full batches only (drop_last),
    /// because a batch of one image breaks batch norm in training mode and
    /// a ragged last batch would weigh a few images more than the others. A
    /// set smaller than the batch size gives one batch of the whole set;
    /// fewer than 2 images give none.
    pub fn batches_per_epoch(&self) -> usize {
        if self.n < 2 {
            return 0;
        }
        (self.n / self.epoch_batch()) as usize
    }

    /// Shuffled batches of one epoch; order, crops and flips are a pure
    /// function of `seed` (rand_chacha), so a resumed run sees the same data.
    ///
    /// Yields `(images, labels)`: f32 `[B, C, H, W]` normalised and
    /// augmented, and int64 `[B]`, both on the loader's device.
    pub fn epoch(&self, seed: u64) -> impl Iterator<Item = (Tensor, Tensor)> + '_ {
        self.epoch_from(seed, 0)
    }

    /// The batches of [`Loader::epoch`] from batch `first` (0-based) on,
    /// for a run resumed part-way through an epoch: those before `first`
    /// are drawn, so the crops and flips after them are the same, but never
    /// built.
    pub fn epoch_from(
        &self,
        seed: u64,
        first: usize,
    ) -> impl Iterator<Item = (Tensor, Tensor)> + '_ {
        self.epoch_shard_from(seed, first, (0, 1))
    }

    /// Rank `rank`'s shard, of `size` ranks, of every batch of
    /// [`Loader::epoch_from`]: rows rank, rank + size... of each global
    /// batch, with their crops and flips, so that the shards of a
    /// data-parallel run are disjoint and together the one-process batch.
    pub fn epoch_shard_from(
        &self,
        seed: u64,
        first: usize,
        (rank, size): (usize, usize),
    ) -> impl Iterator<Item = (Tensor, Tensor)> + '_ {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<i64> = (0..self.n).collect();
        order.shuffle(&mut rng);
        let b = self.epoch_batch().max(1) as usize;
        (0..self.batches_per_epoch()).filter_map(move |i| {
            let crops = self.augment.map(|aug| draw_crops(aug, b, &mut rng));
            let rows = &order[i * b..(i + 1) * b];
            (i >= first).then(|| {
                if size == 1 {
                    return self.batch(rows, crops.as_deref());
                }
                let idx: Vec<i64> = rows.iter().copied().skip(rank).step_by(size).collect();
                let crops: Option<Vec<Crop>> =
                    crops.map(|c| c.into_iter().skip(rank).step_by(size).collect());
                self.batch(&idx, crops.as_deref())
            })
        })
    }

    /// Un-augmented, unshuffled batches (evaluation), last partial batch
    /// included, so every image is seen exactly once.
    pub fn ordered(&self) -> impl Iterator<Item = (Tensor, Tensor)> + '_ {
        self.ordered_shard((0, 1))
    }

    /// Batches rank, rank + size... of [`Loader::ordered`]: the ranks of a
    /// data-parallel evaluation see every image once between them.
    pub fn ordered_shard(
        &self,
        (rank, size): (usize, usize),
    ) -> impl Iterator<Item = (Tensor, Tensor)> + '_ {
        let n = self.n;
        let starts = (0..n).step_by(self.batch_size as usize);
        starts.skip(rank).step_by(size).map(move |start| {
            let len = self.batch_size.min(n - start);
            match &self.store {
                Store::Host { .. } => {
                    let idx: Vec<i64> = (start..start + len).collect();
                    self.batch(&idx, None)
                }
                Store::Device { images, labels } => (
                    self.normalise(&images.narrow(0, start, len)),
                    labels.narrow(0, start, len),
                ),
            }
        })
    }

    /// Images `idx` (with the given crops, if any) and their labels.
    fn batch(&self, idx: &[i64], crops: Option<&[Crop]>) -> (Tensor, Tensor) {
        match &self.store {
            Store::Host { pixels, labels } => {
                let x = self.host_batch(pixels, idx, crops);
                let y: Vec<i64> = idx.iter().map(|&i| labels[i as usize]).collect();
                (x, Tensor::from_slice(&y))
            }
            Store::Device { images, labels } => self.device_batch(images, labels, idx, crops),
        }
    }

    /// The CPU path: one pass over the batch's pixels in Rust.
    fn host_batch(&self, pixels: &[u8], idx: &[i64], crops: Option<&[Crop]>) -> Tensor {
        let (c, h, w) = (self.c as usize, self.h as usize, self.w as usize);
        let (plane, image) = (h * w, c * h * w);
        let p = self.augment.map_or(0, |a| a.pad);
        let mut out = vec![0f32; idx.len() * image];
        for (k, (&i, dst)) in idx.iter().zip(out.chunks_exact_mut(image)).enumerate() {
            let src = &pixels[i as usize * image..(i as usize + 1) * image];
            for ch in 0..c {
                let (m, s) = (self.mean[ch], self.inv_std[ch]);
                let src = &src[ch * plane..(ch + 1) * plane];
                let dst = &mut dst[ch * plane..(ch + 1) * plane];
                let Some(crops) = crops else {
                    for (o, &v) in dst.iter_mut().zip(src) {
                        *o = (v as f32 - m) * s;
                    }
                    continue;
                };
                let Crop { dy, dx, flip } = crops[k];
                // Output (y, x) reads input row y + dy - p and column
                // x + off (or, flipped, w - 1 - x + off), off = dx - p;
                // outside the image it stays 0 (the zero padding of the
                // normalised image, i.e. the mean). Per row, the valid
                // columns are one contiguous run, copied by a plain loop.
                let (wi, off) = (w as i64, dx - p);
                let (x0, x1) = if flip {
                    (off.max(0), wi.min(wi + off))
                } else {
                    ((-off).max(0), wi.min(wi - off))
                };
                if x0 >= x1 {
                    continue;
                }
                let (s0, s1) = if flip {
                    (wi - x1 + off, wi - x0 + off)
                } else {
                    (x0 + off, x1 + off)
                };
                let (x0, x1, s0, s1) = (x0 as usize, x1 as usize, s0 as usize, s1 as usize);
                for (y, row) in dst.chunks_exact_mut(w).enumerate() {
                    let sy = y as i64 + dy - p;
                    if !(0..h as i64).contains(&sy) {
                        continue;
                    }
                    let srow = &src[sy as usize * w..(sy as usize + 1) * w][s0..s1];
                    let row = &mut row[x0..x1];
                    if flip {
                        for (o, &v) in row.iter_mut().zip(srow.iter().rev()) {
                            *o = (v as f32 - m) * s;
                        }
                    } else {
                        for (o, &v) in row.iter_mut().zip(srow) {
                            *o = (v as f32 - m) * s;
                        }
                    }
                }
            }
        }
        Tensor::from_slice(&out).view([idx.len() as i64, self.c, self.h, self.w])
    }

    /// uint8 `[B, C, H, W]` → normalised f32 (tensor path).
    fn normalise(&self, x: &Tensor) -> Tensor {
        (x.to_kind(Kind::Float) - &self.mean_t) * &self.inv_std_t
    }

    /// The device path: gather, normalise, then crop and flip every image
    /// with one `gather` over the zero-padded batch.
    fn device_batch(
        &self,
        images: &Tensor,
        labels: &Tensor,
        idx: &[i64],
        crops: Option<&[Crop]>,
    ) -> (Tensor, Tensor) {
        let b = idx.len() as i64;
        let (c, h, w) = (self.c, self.h, self.w);
        let Some(crops) = crops else {
            let idx = Tensor::from_slice(idx).to_device(self.device);
            return (
                self.normalise(&images.index_select(0, &idx)),
                labels.index_select(0, &idx),
            );
        };
        let p = self.augment.map_or(0, |a| a.pad);
        let pw = w + 2 * p;
        // One upload: batch indices, then per image the padded-row offset of
        // each output row (H values), then the padded column of each output
        // column (W values; reversed for a flipped image).
        let mut host = Vec::with_capacity(idx.len() * (1 + (h + w) as usize));
        host.extend_from_slice(idx);
        for cr in crops {
            host.extend((0..h).map(|r| (cr.dy + r) * pw));
        }
        for cr in crops {
            host.extend((0..w).map(|j| cr.dx + if cr.flip { w - 1 - j } else { j }));
        }
        let all = Tensor::from_slice(&host).to_device(self.device);
        let idx = all.narrow(0, 0, b);
        let rows = all.narrow(0, b, b * h).view([b, h, 1]);
        let cols = all.narrow(0, b + b * h, b * w).view([b, 1, w]);
        // Flat index into each padded [H+2p, W+2p] plane, shared by channels.
        let flat = (rows + cols)
            .view([b, 1, h * w])
            .expand([b, c, h * w], false);
        let x = self.normalise(&images.index_select(0, &idx));
        let x = if p > 0 {
            x.constant_pad_nd([p, p, p, p])
        } else {
            x
        };
        let x = x
            .view([b, c, -1])
            .gather(2, &flat, false)
            .view([b, c, h, w]);
        (x, labels.index_select(0, &idx))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{load, DatasetKind};
    use super::*;

    fn digits() -> Dataset {
        load(DatasetKind::Digits, None).unwrap()
    }

    /// The same loader on the CPU twice: the host path (what `new` picks on
    /// the CPU) and the tensor path (what a GPU uses).
    fn both(set: &ImageSet, ds: &Dataset, bs: i64, aug: Option<Augment>) -> [Loader; 2] {
        [true, false].map(|host| Loader::build(set, ds, Device::Cpu, bs, aug, host))
    }

    fn cifar_aug() -> Option<Augment> {
        Some(Augment::for_dataset(DatasetKind::Cifar10))
    }

    #[test]
    fn new_picks_the_host_path_on_cpu() {
        let ds = digits();
        let l = Loader::new(&ds.train, &ds, Device::Cpu, 64, None);
        assert!(matches!(l.store, Store::Host { .. }));
        assert!(format!("{l:?}").contains("host_path: true"));
    }

    #[test]
    fn same_seed_same_batches_different_seed_different() {
        let ds = digits();
        for l in both(&ds.train, &ds, 64, Some(Augment::for_dataset(ds.kind))) {
            let a: Vec<_> = l.epoch(7).collect();
            let b: Vec<_> = l.epoch(7).collect();
            let c: Vec<_> = l.epoch(8).collect();
            assert_eq!(a.len(), l.batches_per_epoch());
            for ((xa, ya), (xb, yb)) in a.iter().zip(&b) {
                assert!(xa.equal(xb) && ya.equal(yb));
            }
            assert!(!a[0].1.equal(&c[0].1));
            assert!(!a[0].0.equal(&c[0].0));
            // Resuming part-way through the epoch gives the rest of it.
            let rest: Vec<_> = l.epoch_from(7, 3).collect();
            assert_eq!(rest.len(), a.len() - 3);
            for ((xa, ya), (xr, yr)) in a[3..].iter().zip(&rest) {
                assert!(xa.equal(xr) && ya.equal(yr));
            }
        }
    }

    #[test]
    fn host_and_tensor_paths_agree() {
        // CIFAR-shaped (pad 4 + flip) and digits (pad 1), epochs and ordered.
        let cifar = cifar_like(200);
        let digits = digits();
        for (ds, aug) in [
            (&cifar, cifar_aug()),
            (&digits, Some(Augment::for_dataset(digits.kind))),
        ] {
            let [host, tensor] = both(&ds.train, ds, 64, aug);
            let mut batches = 0;
            for ((xh, yh), (xt, yt)) in host.epoch(11).zip(tensor.epoch(11)) {
                assert!(yh.equal(&yt));
                assert!(xh.allclose(&xt, 1e-5, 1e-5, false));
                batches += 1;
            }
            assert_eq!(batches, host.batches_per_epoch());
            for ((xh, yh), (xt, yt)) in host.ordered().zip(tensor.ordered()) {
                assert!(yh.equal(&yt));
                assert!(xh.allclose(&xt, 1e-5, 1e-5, false));
            }
        }
    }

    #[test]
    fn shapes_normalisation_and_drop_last() {
        let ds = digits();
        let n = ds.train.len();
        let aug = Some(Augment::for_dataset(ds.kind));
        for l in both(&ds.train, &ds, 64, aug) {
            assert_eq!(l.batches_per_epoch(), n / 64);
            let batches: Vec<_> = l.epoch(0).collect();
            assert_eq!(batches.len(), n / 64);
            for (x, y) in &batches {
                assert_eq!(x.size(), vec![64, 1, 8, 8]);
                assert_eq!(x.kind(), Kind::Float);
                assert_eq!(y.size(), vec![64]);
                assert_eq!(y.kind(), Kind::Int64);
            }
        }
        for host in [true, false] {
            let plain = Loader::build(&ds.train, &ds, Device::Cpu, 1024, None, host);
            let augmented = Loader::build(&ds.train, &ds, Device::Cpu, 1024, aug, host);
            // Un-augmented batch of most of the train set: mean 0, std 1.
            let (x, _) = plain.epoch(3).next().unwrap();
            assert!(x.mean(Kind::Double).double_value(&[]).abs() < 0.1);
            assert!((x.std(false).double_value(&[]) - 1.0).abs() < 0.1);
            // Augmented: padding adds zeros (= the mean), so still about 0.
            let (x, _) = augmented.epoch(3).next().unwrap();
            assert!(x.mean(Kind::Double).double_value(&[]).abs() < 0.1);
        }
        // drop_last: 10 images at batch 4 → 2 batches; 3 images at batch 64
        // → 1 batch of 3; 1 image → none.
        for (len, bs, want, bsz) in [(10, 4, 2, 4), (3, 64, 1, 3), (1, 64, 0, 0)] {
            let set = ds.train.narrow(0, len);
            for l in both(&set, &ds, bs, aug) {
                assert_eq!(l.batches_per_epoch(), want);
                let got: Vec<_> = l.epoch(1).collect();
                assert_eq!(got.len(), want);
                assert!(got.iter().all(|(x, _)| x.size()[0] == bsz));
            }
        }
        // An epoch draws each image at most once: with distinct labels,
        // 100 images at batch 32 give 96 distinct labels.
        let set = ImageSet {
            images: ds.train.images.narrow(0, 0, 100),
            labels: Tensor::arange(100, (Kind::Int64, Device::Cpu)),
        };
        for l in both(&set, &ds, 32, aug) {
            let mut seen: Vec<i64> = l
                .epoch(9)
                .flat_map(|(_, y)| Vec::<i64>::try_from(&y).unwrap())
                .collect();
            assert_eq!(seen.len(), 96);
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 96);
        }
    }

    #[test]
    fn ordered_covers_every_image_once() {
        let ds = digits();
        for l in both(&ds.test, &ds, 64, Some(Augment::for_dataset(ds.kind))) {
            let batches: Vec<_> = l.ordered().collect();
            assert_eq!(batches.len(), ds.test.len().div_ceil(64));
            assert_eq!(
                batches.last().unwrap().0.size()[0],
                (ds.test.len() % 64) as i64
            );
            let x = Tensor::cat(&batches.iter().map(|b| &b.0).collect::<Vec<_>>(), 0);
            let y = Tensor::cat(&batches.iter().map(|b| &b.1).collect::<Vec<_>>(), 0);
            assert!(y.equal(&ds.test.labels));
            // Un-normalising gives back the exact pixels: no augmentation.
            let back = x * ds.std[0] + ds.mean[0];
            let diff = (back - ds.test.images.to_kind(Kind::Float))
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff < 1e-4, "{diff}");
        }
    }

    /// Builds a CIFAR-shaped dataset of random pixels in memory.
    fn cifar_like(n: i64) -> Dataset {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(0);
        let images = Tensor::randint(256, [n, 3, 32, 32], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
        let set = ImageSet { images, labels };
        Dataset {
            kind: DatasetKind::Cifar10,
            test: set.narrow(0, 0),
            train: set,
            classes: 10,
            channels: 3,
            size: 32,
            mean: vec![125.0, 123.0, 114.0],
            std: vec![63.0, 62.0, 66.0],
        }
    }

    #[test]
    fn crop_and_flip_move_pixels_not_values() {
        // With pad 4 each output image must be a shifted (maybe flipped)
        // window of the zero-padded normalised input: find it by brute force.
        let ds = cifar_like(16);
        for l in both(&ds.train, &ds, 16, cifar_aug()) {
            let (x, y) = l.epoch(5).next().unwrap();
            let (mut shifted, mut flipped) = (0, 0);
            for i in 0..16 {
                let label = y.int64_value(&[i]);
                let src = (0..16)
                    .filter(|&j| ds.train.labels.int64_value(&[j]) == label)
                    .find_map(|j| {
                        let img = l
                            .normalise(&ds.train.images.get(j).unsqueeze(0))
                            .constant_pad_nd([4, 4, 4, 4]);
                        for dy in 0..=8 {
                            for dx in 0..=8 {
                                let win = img.narrow(2, dy, 32).narrow(3, dx, 32).squeeze_dim(0);
                                for f in [false, true] {
                                    let win = if f {
                                        win.flip([2])
                                    } else {
                                        win.shallow_clone()
                                    };
                                    if win.allclose(&x.get(i), 1e-6, 1e-6, false) {
                                        return Some((dy, dx, f));
                                    }
                                }
                            }
                        }
                        None
                    })
                    .expect("every output is a crop (maybe flipped) of an input");
                shifted += i32::from(src.0 != 4 || src.1 != 4);
                flipped += i32::from(src.2);
            }
            assert!(
                shifted > 8 && flipped > 2 && flipped < 14,
                "shifted {shifted} flipped {flipped}"
            );
        }
    }

    /// Loader throughput at batch 64 on CIFAR-shaped data (prints images/s),
    /// for both paths on the CPU and on the GPU when there is one. Each
    /// number is the best of 5 epochs: on a shared machine the others mostly
    /// measure the neighbours. Run:
    /// `cargo test --release --lib data::loader::tests::throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn throughput() {
        let ds = cifar_like(10_000);
        let mut setups = vec![
            ("cpu, host path", Device::Cpu, true),
            ("cpu, tensor path", Device::Cpu, false),
        ];
        if tch::Cuda::is_available() {
            setups.push(("cuda", Device::Cuda(0), false));
        }
        for (name, device, host) in setups {
            for (what, aug) in [("augmented", cifar_aug()), ("plain", None)] {
                let l = Loader::build(&ds.train, &ds, device, 64, aug, host);
                let _ = l.epoch(0).take(5).count();
                let mut best = f64::INFINITY;
                for epoch in 1..=5 {
                    let t = std::time::Instant::now();
                    let n = l.epoch(epoch).map(|(x, _)| x.size()[0]).sum::<i64>();
                    if let Device::Cuda(_) = device {
                        tch::Cuda::synchronize(0);
                    }
                    best = best.min(t.elapsed().as_secs_f64() / n as f64);
                }
                crate::outln!(
                    "{name}, {what}: {:.0} images/s, {:.3} ms per batch of 64 (best of 5 epochs)",
                    1.0 / best,
                    64e3 * best
                );
            }
        }
    }
}
