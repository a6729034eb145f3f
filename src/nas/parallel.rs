//! The data-parallel world of this process, as the training loop sees it:
//! its rank and world size, and the collectives it needs (the initial
//! weights broadcast from rank 0, gradients averaged, counts summed).
//!
//! One process is one rank, so the process group is held process-wide,
//! as torch.distributed's default group is: [`join`] sets it once, and
//! everything here is a no-op in a process that never joined (every
//! one-process run, and every build without the `dist` feature). A
//! collective that fails ends the run with [`RunError::PeerLost`], the
//! group's one line naming the rank that stopped answering.

use tch::Tensor;

use crate::nas::run::{Observer, RecordError, RunError, Started};

/// This process's place in the data-parallel run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct World {
    /// Its rank, 0 for one process.
    pub rank: usize,
    /// Ranks in the run, 1 for one process.
    pub size: usize,
}

impl World {
    /// Whether this rank writes the history and the checkpoints: rank 0
    /// alone does, the others compute the same numbers.
    pub fn writes(&self) -> bool {
        self.rank == 0
    }

    /// The rows of a global batch of `n` that this rank takes: rank r
    /// takes r, r + size, r + 2·size..., so the ranks' shards are disjoint
    /// and together the whole batch.
    pub fn shard<T: Copy>(&self, rows: &[T]) -> Vec<T> {
        rows.iter()
            .copied()
            .skip(self.rank)
            .step_by(self.size)
            .collect()
    }
}

#[cfg(feature = "dist")]
mod group {
    use std::sync::{Mutex, OnceLock};

    use tch::Tensor;

    use crate::nas::dist::{DistError, ProcessGroup, Reducer, Rendezvous, OVERLAP_BUCKET_BYTES};

    static GROUP: OnceLock<Mutex<ProcessGroup>> = OnceLock::new();

    /// Joins the process group of `rv`, once per process.
    pub fn join(rv: &Rendezvous) -> Result<(), DistError> {
        let group = ProcessGroup::connect(rv)?;
        GROUP
            .set(Mutex::new(group))
            .map_err(|_| DistError("this process has already joined a process group".into()))
    }

    /// Runs `f` on the group, if this process joined one.
    pub fn with<R>(f: impl FnOnce(&ProcessGroup) -> R) -> Option<R> {
        let group = GROUP.get()?;
        let guard = group.lock().unwrap_or_else(|e| e.into_inner());
        Some(f(&guard))
    }

    /// The training's gradient reducer, made at its first step; it lives
    /// as long as the group (the process), whose pointer it keeps.
    static REDUCER: Mutex<Option<Reducer>> = Mutex::new(None);

    /// Whether this process joined a group.
    pub fn joined() -> bool {
        GROUP.get().is_some()
    }

    /// Runs `backward` with `params`' gradients averaged across the ranks
    /// as the pass makes them (this process having joined a group).
    pub fn averaged_during<R>(
        params: &[Tensor],
        backward: impl FnOnce() -> (R, Vec<Tensor>),
    ) -> Result<(R, Vec<Tensor>), DistError> {
        let mut held = REDUCER.lock().unwrap_or_else(|e| e.into_inner());
        let reducer = match held.take() {
            Some(r) if r.watches(params) => r,
            _ => with(|g| g.reducer(params, OVERLAP_BUCKET_BYTES))
                .ok_or_else(|| DistError("this process joined no process group".into()))??,
        };
        reducer.arm();
        let (out, mut grads) = backward();
        let done = reducer.finish(&mut grads);
        *held = Some(reducer);
        done.map(|()| (out, grads))
    }
}

#[cfg(feature = "dist")]
pub use group::join;

/// This process's rank and world size.
pub fn world() -> World {
    #[cfg(feature = "dist")]
    if let Some(w) = group::with(|g| World {
        rank: g.rank(),
        size: g.world_size(),
    }) {
        return w;
    }
    World { rank: 0, size: 1 }
}

/// The backend of this process's group (Gloo or NCCL); `None` in one
/// process, which has no collectives.
pub fn backend() -> Option<crate::config::train::DistBackend> {
    #[cfg(feature = "dist")]
    if let Some(backend) = group::with(|g| g.backend()) {
        return Some(backend);
    }
    None
}

/// How a collective combines the ranks' tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Rank 0's tensors everywhere.
    FromRankZero,
    /// The sum over the ranks.
    Sum,
    /// The mean over the ranks.
    Average,
}

/// Combines `tensors` across the ranks, in place (nothing in one process).
pub fn combine(tensors: &mut [Tensor], how: Combine) -> Result<(), RunError> {
    #[cfg(feature = "dist")]
    {
        use crate::nas::dist::{Reduce, DEFAULT_BUCKET_BYTES};
        let done = group::with(|g| match how {
            Combine::FromRankZero => g.broadcast(tensors, 0, DEFAULT_BUCKET_BYTES),
            Combine::Sum => g.all_reduce(tensors, Reduce::Sum, DEFAULT_BUCKET_BYTES),
            Combine::Average => g.all_reduce(tensors, Reduce::Average, DEFAULT_BUCKET_BYTES),
        });
        if let Some(done) = done {
            return done.map_err(|e| RunError::PeerLost(e.0));
        }
    }
    let _ = (tensors, how);
    Ok(())
}

/// Runs `backward`, the pass that makes the gradients of `params` (in
/// their order, returned beside its other results), with the gradients
/// averaged across the ranks while the pass runs: each bucket's
/// all-reduce starts as soon as its gradients are made (DDP's overlap;
/// [`crate::nas::dist::Reducer`]). In one process, the pass alone.
pub fn averaged_gradients<R>(
    params: &[Tensor],
    backward: impl FnOnce() -> (R, Vec<Tensor>),
) -> Result<(R, Vec<Tensor>), RunError> {
    #[cfg(feature = "dist")]
    if group::joined() {
        return group::averaged_during(params, backward).map_err(|e| RunError::PeerLost(e.0));
    }
    let _ = params;
    Ok(backward())
}

/// Turns synchronised batch norm on for this process's training (see
/// [`sync_batch_norm`]); the caller turns it on only in a world of more
/// than one rank.
pub fn set_sync_batch_norm(on: bool) {
    SYNC_BATCH_NORM.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether batch norm in training normalises with the statistics of the
/// whole global batch, summed across the ranks through
/// [`sum_across_ranks`], instead of the rank's shard's. Process-wide, as
/// the group is: the layers read it at every forward pass.
pub fn sync_batch_norm() -> bool {
    SYNC_BATCH_NORM.load(std::sync::atomic::Ordering::Relaxed)
}

static SYNC_BATCH_NORM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `x` summed over the ranks, differentiably: the backward pass sums the
/// ranks' gradients of the sum (itself in one process). A failure ends
/// nothing here (a forward pass cannot fail): the rank goes on with its
/// own `x`, and the next collective ([`combine`]) reports the lost peer.
pub fn sum_across_ranks(x: &Tensor) -> Tensor {
    #[cfg(feature = "dist")]
    if let Some(Ok(sum)) = group::with(|g| g.sum_differentiable(x)) {
        return sum;
    }
    x.shallow_clone()
}

/// Sums counts across the ranks (themselves in one process).
pub fn sum_i64(values: &mut [i64]) -> Result<(), RunError> {
    if world().size == 1 {
        return Ok(());
    }
    let mut t = vec![Tensor::from_slice(values)];
    combine(&mut t, Combine::Sum)?;
    let summed = Vec::<i64>::try_from(&t[0]).map_err(|e| RunError::Internal(e.to_string()))?;
    values.copy_from_slice(&summed);
    Ok(())
}

/// An observer that every rank holds: rank 0's stores the history, the
/// others' keep nothing; a stop asked on any rank (a signal, or the time
/// limit's warning) stops every rank at the same step, agreed by one small
/// all-reduce per poll. A run of one process holds it too, without the
/// all-reduce: it is how the time limit's warning stops that run.
pub struct SharedStop<'o, R> {
    /// The rank's own observer.
    pub inner: &'o mut dyn Observer<R>,
    /// A failed agreement: the run ends with it at the next step.
    pub lost: Option<RunError>,
}

impl<R> Observer<R> for SharedStop<'_, R> {
    fn started(&mut self, at: &Started) {
        self.inner.started(at);
    }

    fn step(&mut self, epoch: u32, step: usize, running: Option<(f64, f64)>) {
        self.inner.step(epoch, step, running);
    }

    fn epoch(&mut self, record: &R) -> Result<(), RecordError> {
        self.inner.epoch(record)
    }

    fn should_stop(&mut self) -> bool {
        let mut asked = [i64::from(self.stop_asked_here())];
        match sum_i64(&mut asked) {
            Ok(()) => asked[0] > 0,
            Err(err) => {
                self.lost = Some(err);
                true
            }
        }
    }

    fn stop_asked_here(&mut self) -> bool {
        self.inner.should_stop() || time_limit_near()
    }
}

/// Tells this rank that the job's time limit is near (Slurm's SIGUSR2):
/// [`SharedStop`] then stops every rank at the next step, checkpointed
/// there.
pub fn warn_time_limit() {
    TIME_LIMIT_NEAR.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether [`warn_time_limit`] was called in this process.
pub fn time_limit_near() -> bool {
    TIME_LIMIT_NEAR.load(std::sync::atomic::Ordering::SeqCst)
}

static TIME_LIMIT_NEAR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The observer of a rank after the first: it keeps nothing (rank 0
/// stores the history) and stops when this process is signalled.
pub struct RankObserver {
    /// Set by the signal handler.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<R> Observer<R> for RankObserver {
    fn epoch(&mut self, _record: &R) -> Result<(), RecordError> {
        Ok(())
    }

    fn should_stop(&mut self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A checksum of `tensors`' bits, the same on every rank exactly when the
/// ranks hold bit-identical tensors (what the data-parallel tests compare).
pub fn checksum(tensors: &[Tensor]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in tensors {
        let flat = t
            .detach()
            .to_device(tch::Device::Cpu)
            .to_kind(tch::Kind::Float)
            .reshape([-1]);
        let values = Vec::<f32>::try_from(&flat).unwrap_or_default();
        for v in values {
            h = (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
