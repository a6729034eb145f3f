//! The ImageNet loader: worker threads read, decode and transform images
//! ahead of the training step, into batches handed out in order.
//!
//! Why it looks like this: a GPU training DARTS's ImageNet network at batch
//! 1024 eats a few thousand images a second, and every image costs a
//! millisecond or two of decoding, so the decoding must run on several
//! cores, ahead of the step, and never in the training thread. Threads (not
//! processes, as PyTorch's DataLoader needs for Python's lock) share the
//! file list and write each image once, straight to its place.
//!
//! Determinism: the epoch's order is a shuffle drawn from the seed (as the
//! CIFAR loader's), and each image's random draws (crop, flip, jitter) come
//! from its own ChaCha stream, numbered by its position in the epoch. So
//! which thread decodes an image, and when, changes nothing: the same seed
//! gives the same batches with one thread or sixteen, and a run resumed at
//! batch `k` sees exactly the batches an uninterrupted epoch would have.
//!
//! Bounded: workers take images (not whole batches, which at 1024 images
//! of 224 px are 600 MB each) in epoch order, and stop while the batch they
//! would start is `prefetch` batches ahead of the one the training step
//! wants; finished batches wait in a small ordered buffer.
//!
//! An unreadable or truncated image is skipped with a warning naming it
//! and counted ([`Batches::skipped`], [`ImageNetLoader::skipped`]); its
//! batch comes out one image smaller (not refilled, so that every other
//! batch stays what the seed says). A training batch left with fewer than
//! two images (batch norm needs two) or an evaluation batch left with none
//! is dropped: the iterator then yields fewer batches than
//! [`ImageNetLoader::batches_per_epoch`], and `first` in
//! [`ImageNetLoader::epoch_from`] still counts it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::{eval_image, train_image, Jpeg, Split, Transforms};

/// Which transforms a pass applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Random resized crop, flip and the jitter, if any.
    Train,
    /// Resize and centre crop.
    Eval,
}

/// Batches of one ImageNet split, decoded on worker threads.
#[derive(Debug)]
pub struct ImageNetLoader {
    split: Arc<Split>,
    crop: usize,
    batch_size: usize,
    threads: usize,
    prefetch: usize,
    transforms: Transforms,
    /// The unreadable-image count of the latest pass.
    skipped: Mutex<Arc<AtomicUsize>>,
}

impl ImageNetLoader {
    /// A loader of `split` at `crop` pixels with `threads` decoding
    /// workers, the recipe's transforms ([`Transforms::RECIPE`]), and two
    /// batches decoded ahead.
    ///
    /// # Panics
    /// If `crop`, `batch_size` or `threads` is below 1 (programming errors:
    /// configs reject them first).
    pub fn new(split: Split, crop: i64, batch_size: i64, threads: usize) -> ImageNetLoader {
        assert!(crop >= 1, "ImageNet crop must be at least 1, got {crop}");
        assert!(
            batch_size >= 1,
            "ImageNet batch size must be at least 1, got {batch_size}"
        );
        assert!(threads >= 1, "ImageNet loader needs at least one thread");
        ImageNetLoader {
            split: Arc::new(split),
            crop: crop as usize,
            batch_size: batch_size as usize,
            threads,
            prefetch: 2,
            transforms: Transforms::RECIPE,
            skipped: Mutex::new(Arc::default()),
        }
    }

    /// The transforms of its images (a config's jitter, flip,
    /// normalisation and evaluation resize).
    pub fn with_transforms(mut self, transforms: Transforms) -> ImageNetLoader {
        self.transforms = transforms;
        self
    }

    /// How many batches the workers may decode ahead of the one asked for
    /// (at least 1): memory against smoothing out slow images.
    pub fn with_prefetch(mut self, batches: usize) -> ImageNetLoader {
        self.prefetch = batches.max(1);
        self
    }

    /// Images in the split.
    pub fn len(&self) -> usize {
        self.split.len()
    }

    /// Whether the split has no image.
    pub fn is_empty(&self) -> bool {
        self.split.is_empty()
    }

    /// The batch size an epoch uses: the asked one, or the whole split
    /// when it is smaller (as the CIFAR loader).
    fn epoch_batch(&self) -> usize {
        self.batch_size.min(self.len()).max(1)
    }

    /// Batches in one [`ImageNetLoader::epoch_from`]: full batches only
    /// (drop_last, as the CIFAR loader); fewer than 2 images give none.
    pub fn batches_per_epoch(&self) -> usize {
        if self.len() < 2 {
            return 0;
        }
        self.len() / self.epoch_batch()
    }

    /// Shuffled, augmented batches of one epoch, from batch `first`
    /// (0-based) on: a pure function of `seed` (see the module docs).
    /// Yields f32 `[B, 3, crop, crop]` normalised and int64 `[B]`, on the
    /// CPU.
    pub fn epoch_from(&self, seed: u64, first: usize) -> Batches {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let b = self.epoch_batch();
        let end = self.batches_per_epoch();
        order.truncate(end * b);
        self.start(Plan {
            order,
            batch: b,
            first: first.min(end),
            end,
            mode: Mode::Train,
            transforms: self.transforms,
            seed,
            crop: self.crop,
        })
    }

    /// [`ImageNetLoader::epoch_from`] from the first batch.
    pub fn epoch(&self, seed: u64) -> Batches {
        self.epoch_from(seed, 0)
    }

    /// Every image once, in folder order, resized and centre-cropped
    /// (evaluation); the last batch may be smaller.
    pub fn ordered(&self) -> Batches {
        let n = self.len();
        let b = self.batch_size;
        self.start(Plan {
            order: (0..n as u32).collect(),
            batch: b,
            first: 0,
            end: n.div_ceil(b),
            mode: Mode::Eval,
            transforms: self.transforms,
            seed: 0,
            crop: self.crop,
        })
    }

    /// Images skipped as unreadable in the batches of the latest pass
    /// (epoch or ordered) handed out so far: what the training stage logs
    /// and records per epoch.
    pub fn skipped(&self) -> usize {
        lock(&self.skipped).load(Ordering::Relaxed)
    }

    fn start(&self, plan: Plan) -> Batches {
        let counter = Arc::new(AtomicUsize::new(0));
        *lock(&self.skipped) = counter.clone();
        let next = plan.first;
        let end = plan.end;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_pos: 0,
                wanted: next,
                pending: HashMap::new(),
                ready: BTreeMap::new(),
                stop: false,
                workers: self.threads,
            }),
            wake: Condvar::new(),
            total: plan.positions(),
            plan,
            split: self.split.clone(),
            prefetch: self.prefetch,
            skipped: counter,
        });
        let workers = (0..self.threads)
            .map(|_| {
                let s = shared.clone();
                std::thread::spawn(move || s.work())
            })
            .collect();
        Batches {
            shared,
            workers,
            next,
            end,
        }
    }
}

/// What one pass decodes: which images, in which batches, how.
#[derive(Debug)]
struct Plan {
    /// Image indices in pass order (batch `i` is `order[i*batch..]`).
    order: Vec<u32>,
    batch: usize,
    /// Batches `first..end` are built.
    first: usize,
    end: usize,
    mode: Mode,
    transforms: Transforms,
    seed: u64,
    crop: usize,
}

impl Plan {
    /// Images of batch `i`.
    fn size(&self, i: usize) -> usize {
        self.batch.min(self.order.len() - i * self.batch)
    }

    /// Images to decode: batches `first..end`.
    fn positions(&self) -> usize {
        if self.first >= self.end {
            return 0;
        }
        (self.end - 1 - self.first) * self.batch + self.size(self.end - 1)
    }

    /// Batch and slot of the `p`-th image to decode.
    fn slot(&self, p: usize) -> (usize, usize) {
        (self.first + p / self.batch, p % self.batch)
    }

    /// The fewest readable images a batch may keep (module docs).
    fn min_images(&self) -> usize {
        match self.mode {
            Mode::Train => 2.min(self.batch),
            Mode::Eval => 1,
        }
    }
}

/// One image, transformed: its pixels `[3, crop, crop]` and label.
type Image = (Vec<f32>, i64);
/// A finished batch, or `None` when too few of its images were readable.
type Built = Option<(Tensor, Tensor)>;
/// A finished batch and how many of its images were unreadable.
type Finished = (Built, usize);

struct State {
    /// Next image position a worker takes.
    next_pos: usize,
    /// The batch the consumer waits for.
    wanted: usize,
    /// Batches being decoded: their images so far.
    pending: HashMap<usize, Pending>,
    /// Finished batches not yet handed out.
    ready: BTreeMap<usize, Finished>,
    stop: bool,
    /// Workers still running (a panicking one leaves the consumer a note).
    workers: usize,
}

struct Pending {
    images: Vec<Option<Image>>,
    done: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    plan: Plan,
    total: usize,
    split: Arc<Split>,
    prefetch: usize,
    skipped: Arc<AtomicUsize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a worker out when it ends, also by a panic, so that the consumer
/// never waits for a batch nobody will build.
struct Leaving<'a>(&'a Shared);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).workers -= 1;
        self.0.wake.notify_all();
    }
}

impl Shared {
    fn work(&self) {
        let _leaving = Leaving(self);
        while let Some(p) = self.claim() {
            let (i, k) = self.plan.slot(p);
            let image = self.load(self.plan.order[i * self.plan.batch + k] as usize, i, k);
            self.deliver(i, k, image);
        }
    }

    /// The next image position to decode, waiting while its batch is too
    /// far ahead; `None` when the pass is done or dropped.
    fn claim(&self) -> Option<usize> {
        let mut s = lock(&self.state);
        loop {
            if s.stop || s.next_pos >= self.total {
                return None;
            }
            let (i, _) = self.plan.slot(s.next_pos);
            if i < s.wanted + self.prefetch {
                s.next_pos += 1;
                return Some(s.next_pos - 1);
            }
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Reads, decodes and transforms image `index` (slot `k` of batch `i`);
    /// `None`, logged, when it cannot be read (its batch counts it when
    /// handed out).
    fn load(&self, index: usize, i: usize, k: usize) -> Option<Image> {
        let path = &self.split.files[index];
        let crop = self.plan.crop;
        let mut out = vec![0f32; 3 * crop * crop];
        let done = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let jpeg = Jpeg::open(&bytes)?;
                let t = &self.plan.transforms;
                match self.plan.mode {
                    Mode::Train => {
                        let mut rng = ChaCha8Rng::seed_from_u64(self.plan.seed);
                        rng.set_stream((i * self.plan.batch + k) as u64);
                        train_image(&jpeg, crop, t, &mut rng, &mut out)
                    }
                    Mode::Eval => eval_image(&jpeg, crop, t, &mut out),
                }
            });
        if let Err(why) = done {
            tracing::warn!("skipping unreadable image {}: {why}", path.display());
            return None;
        }
        Some((out, self.split.labels[index]))
    }

    /// Puts an image in its batch; the worker that completes a batch builds
    /// its tensors (outside the lock) and hands it to the consumer.
    fn deliver(&self, i: usize, k: usize, image: Option<Image>) {
        let size = self.plan.size(i);
        let complete = {
            let mut s = lock(&self.state);
            let pending = s.pending.entry(i).or_insert_with(|| Pending {
                images: vec![None; size],
                done: 0,
            });
            pending.images[k] = image;
            pending.done += 1;
            if pending.done < size {
                return;
            }
            s.pending.remove(&i).map(|p| p.images)
        };
        let finished = complete.map_or((None, 0), |images| {
            let unreadable = images.iter().filter(|image| image.is_none()).count();
            (self.build(images), unreadable)
        });
        lock(&self.state).ready.insert(i, finished);
        self.wake.notify_all();
    }

    /// The batch's tensors: the images copied once, straight into the
    /// tensor's memory (a concatenated vector handed to `from_slice` would
    /// copy the batch, 600 MB at 1024 x 224 px, twice).
    fn build(&self, images: Vec<Option<Image>>) -> Built {
        let images: Vec<Image> = images.into_iter().flatten().collect();
        if images.len() < self.plan.min_images() {
            return None;
        }
        let c = self.plan.crop as i64;
        let n = images.len() as i64;
        let x = Tensor::empty([n, 3, c, c], (Kind::Float, Device::Cpu));
        let each = (3 * c * c) as usize;
        // SAFETY: `x` is a fresh, contiguous f32 CPU tensor of exactly
        // `n * each` elements that nothing else references yet.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(x.data_ptr() as *mut f32, n as usize * each) };
        for (d, (px, _)) in dst.chunks_exact_mut(each).zip(&images) {
            d.copy_from_slice(px);
        }
        let labels: Vec<i64> = images.iter().map(|(_, l)| *l).collect();
        Some((x, Tensor::from_slice(&labels)))
    }
}

/// The batches of one pass, in order; decoding goes on behind them.
/// Dropping it stops the workers.
pub struct Batches {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
    end: usize,
}

impl Batches {
    /// Images skipped as unreadable in the batches handed out so far (not
    /// in those decoded ahead: a pass resumed at a batch counts each
    /// image once with the part before it).
    pub fn skipped(&self) -> usize {
        self.shared.skipped.load(Ordering::Relaxed)
    }
}

impl Iterator for Batches {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<(Tensor, Tensor)> {
        while self.next < self.end {
            let i = self.next;
            let mut s = lock(&self.shared.state);
            let (built, unreadable) = loop {
                if let Some(b) = s.ready.remove(&i) {
                    break b;
                }
                assert!(
                    s.workers > 0,
                    "the ImageNet loader's workers stopped before batch {i} (a worker panicked)"
                );
                s = self.shared.wake.wait(s).unwrap_or_else(|e| e.into_inner());
            };
            self.next += 1;
            s.wanted = self.next;
            drop(s);
            self.shared.skipped.fetch_add(unreadable, Ordering::Relaxed);
            self.shared.wake.notify_all();
            if built.is_some() {
                return built;
            }
        }
        None
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("next", &self.next)
            .field("end", &self.end)
            .field("skipped", &self.skipped())
            .finish()
    }
}
