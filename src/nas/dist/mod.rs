//! Data-parallel collectives on libtorch's own distributed engine, c10d:
//! a `TCPStore` rendezvous on rank 0's host and a `ProcessGroupGloo`, the
//! engine PyTorch's DDP runs on CPUs (or a `ProcessGroupNCCL` on CUDA
//! devices, where build.rs found NCCL's and CUDA's headers), reached
//! through the C++ shim that build.rs compiles (`shim.cpp`; feature `dist`). What training needs:
//! the initial weights broadcast from rank 0, gradients summed or averaged
//! in flat buckets, a barrier. Every failure is one line; a peer that dies
//! or hangs ends the collective within the group's timeout, and the line
//! names the rank (and host) that stopped answering, never a hang.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;
use std::time::Duration;

use tch::Tensor;

use crate::config::train::DistBackend;

mod nccl;
#[cfg(test)]
pub(crate) mod tests;

pub use nccl::LIBRARY_ENV as NCCL_LIBRARY_ENV;

/// Whether build.rs built the shim's NCCL half, `libddsas_nccl.so` (it
/// does where it finds `nccl.h` and the CUDA runtime headers); without it
/// only Gloo runs.
pub const NCCL_BUILT: bool = cfg!(ddsas_nccl);

/// DDP's default bucket: large enough that Gloo's per-call cost is small
/// against the bytes, small enough that a bucket's copy stays cheap.
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// The bucket of the gradients averaged during the backward pass
/// ([`Reducer`]): the paper's networks have 13 MB (CIFAR) and 19 MB
/// (ImageNet) of gradients, which DDP's 25 MB would make one bucket that
/// starts only when the pass ends; 4 MB makes four or five, the first
/// starting while most of the pass is still to run.
pub const OVERLAP_BUCKET_BYTES: usize = 4 << 20;

mod ffi {
    use super::*;

    extern "C" {
        pub fn ddsas_dist_free_str(s: *mut c_char);
        pub fn ddsas_dist_new(
            addr: *const c_char,
            port: u16,
            rank: c_int,
            size: c_int,
            timeout_ms: i64,
            nccl_factory: *mut c_void,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn ddsas_dist_drop(group: *mut c_void);
        pub fn ddsas_dist_broadcast(
            group: *mut c_void,
            ts: *const *const c_void,
            n: usize,
            root: c_int,
            bucket_bytes: i64,
        ) -> *mut c_char;
        pub fn ddsas_dist_all_reduce(
            group: *mut c_void,
            ts: *const *const c_void,
            n: usize,
            average: c_int,
            bucket_bytes: i64,
        ) -> *mut c_char;
        pub fn ddsas_dist_barrier(group: *mut c_void) -> *mut c_char;
        pub fn ddsas_dist_reducer_new(
            group: *mut c_void,
            ps: *const *const c_void,
            n: usize,
            bucket_bytes: i64,
            out: *mut *mut c_void,
        ) -> *mut c_char;
        pub fn ddsas_dist_reducer_arm(reducer: *mut c_void);
        pub fn ddsas_dist_reducer_finish(
            reducer: *mut c_void,
            grads: *const *const c_void,
            n: usize,
        ) -> *mut c_char;
        pub fn ddsas_dist_reducer_overlapped(reducer: *mut c_void) -> usize;
        pub fn ddsas_dist_reducer_drop(reducer: *mut c_void);
        pub fn ddsas_dist_sum_differentiable(
            group: *mut c_void,
            x: *const c_void,
            out: *mut *mut c_void,
        ) -> *mut c_char;
    }
}

/// A collective that failed, or a rank that could not join: one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DistError(pub String);

/// Where and how the ranks meet: rank 0 serves the store at
/// `master_addr:master_port`, the others connect to it.
#[derive(Debug, Clone)]
pub struct Rendezvous {
    pub master_addr: String,
    pub master_port: u16,
    pub rank: usize,
    pub world_size: usize,
    /// How long a rendezvous or a collective waits for the other ranks.
    pub timeout: Duration,
    /// Gloo or NCCL (`auto` is resolved before: it is taken as Gloo).
    pub backend: DistBackend,
    /// The device of this rank's tensors: NCCL's collectives run there.
    pub device: tch::Device,
}

/// How an all-reduce combines the ranks' tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    /// The sum divided by the world size (floor division for integers):
    /// DDP's gradient averaging.
    Average,
}

/// One rank's membership of the process group. Dropping it leaves the
/// group (rank 0 also stops the store, so it should leave last).
pub struct ProcessGroup {
    raw: NonNull<c_void>,
    rank: usize,
    world_size: usize,
    backend: DistBackend,
    /// NCCL's device, through which tensors elsewhere (the counts and
    /// flags of a step, on the CPU) are staged; `None` for Gloo.
    staging: Option<tch::Device>,
}

// SAFETY: the shim's group may move between threads (c10d's objects are
// not tied to the thread that made them); it is not `Sync`, so one thread
// at a time issues collectives, in the same order on every rank.
unsafe impl Send for ProcessGroup {}

/// Takes over an error string from the shim: `None` for success.
fn take_error(s: *mut c_char) -> Result<(), DistError> {
    if s.is_null() {
        return Ok(());
    }
    // SAFETY: the shim hands out a NUL-terminated malloc'ed string that we
    // own from here on.
    let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    unsafe { ffi::ddsas_dist_free_str(s) };
    Err(DistError(text))
}

fn tensor_ptrs(tensors: &[Tensor]) -> Vec<*const c_void> {
    tensors
        .iter()
        .map(|t| t.as_ptr() as *const c_void)
        .collect()
}

impl ProcessGroup {
    /// Joins the group: blocks until every rank has joined or the timeout
    /// has passed.
    pub fn connect(rv: &Rendezvous) -> Result<Self, DistError> {
        let addr = CString::new(rv.master_addr.as_str())
            .map_err(|_| DistError("the master address contains a NUL byte".into()))?;
        if rv.rank >= rv.world_size {
            return Err(DistError(format!(
                "rank {} is outside a world of {}",
                rv.rank, rv.world_size
            )));
        }
        let nccl = rv.backend == DistBackend::Nccl;
        if nccl && !NCCL_BUILT {
            return Err(DistError(
                "this ddsas was built without NCCL (build.rs found no nccl.h or CUDA runtime headers): use dist_backend=gloo".into(),
            ));
        }
        if nccl && !rv.device.is_cuda() {
            return Err(DistError(format!(
                "NCCL needs a CUDA device; rank {} is on {:?}",
                rv.rank, rv.device
            )));
        }
        let factory = if nccl {
            nccl::factory()?
        } else {
            std::ptr::null_mut()
        };
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: `addr` outlives the call; `out` is written on success;
        // `factory` is null or shim_nccl.cpp's `ddsas_nccl_group`.
        let err = unsafe {
            ffi::ddsas_dist_new(
                addr.as_ptr(),
                rv.master_port,
                rv.rank as c_int,
                rv.world_size as c_int,
                rv.timeout.as_millis().min(i64::MAX as u128) as i64,
                factory,
                &mut out,
            )
        };
        take_error(err)?;
        let raw = NonNull::new(out).ok_or_else(|| DistError("the shim made no group".into()))?;
        Ok(ProcessGroup {
            raw,
            rank: rv.rank,
            world_size: rv.world_size,
            backend: if nccl {
                DistBackend::Nccl
            } else {
                DistBackend::Gloo
            },
            staging: nccl.then_some(rv.device),
        })
    }

    /// Runs `op` on `tensors`, or for NCCL, which reduces tensors of its
    /// device only, on copies there of tensors elsewhere, copied back after.
    fn staged(
        &self,
        tensors: &mut [Tensor],
        op: impl FnOnce(&mut [Tensor]) -> Result<(), DistError>,
    ) -> Result<(), DistError> {
        let Some(device) = self.staging else {
            return op(tensors);
        };
        if tensors.iter().all(|t| t.device() == device) {
            return op(tensors);
        }
        let mut copies: Vec<Tensor> = tensors.iter().map(|t| t.to_device(device)).collect();
        op(&mut copies)?;
        tch::no_grad(|| {
            for (t, c) in tensors.iter_mut().zip(&copies) {
                t.copy_(c);
            }
        });
        Ok(())
    }

    /// The backend its collectives run on (Gloo or NCCL).
    pub fn backend(&self) -> DistBackend {
        self.backend
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Overwrites every rank's tensors with rank `root`'s (the initial
    /// weights), in place, `bucket_bytes` at a time.
    pub fn broadcast(
        &self,
        tensors: &mut [Tensor],
        root: usize,
        bucket_bytes: usize,
    ) -> Result<(), DistError> {
        self.staged(tensors, |tensors| {
            let ptrs = tensor_ptrs(tensors);
            // SAFETY: the tensors stay alive and unaliased during the call.
            take_error(unsafe {
                ffi::ddsas_dist_broadcast(
                    self.raw.as_ptr(),
                    ptrs.as_ptr(),
                    ptrs.len(),
                    root as c_int,
                    bucket_bytes as i64,
                )
            })
        })
    }

    /// Sums or averages each tensor across the ranks, in place: the
    /// tensors are flattened into one buffer per bucket of `bucket_bytes`
    /// (consecutive tensors of one dtype), one Gloo all-reduce each.
    pub fn all_reduce(
        &self,
        tensors: &mut [Tensor],
        op: Reduce,
        bucket_bytes: usize,
    ) -> Result<(), DistError> {
        self.staged(tensors, |tensors| {
            let ptrs = tensor_ptrs(tensors);
            // SAFETY: as in `broadcast`.
            take_error(unsafe {
                ffi::ddsas_dist_all_reduce(
                    self.raw.as_ptr(),
                    ptrs.as_ptr(),
                    ptrs.len(),
                    c_int::from(op == Reduce::Average),
                    bucket_bytes as i64,
                )
            })
        })
    }

    /// The sum of `x` over the ranks, as a new tensor inside autograd: the
    /// gradient that reaches an input is the sum over the ranks of the
    /// gradients their outputs received, all-reduced in the backward pass
    /// (synchronised batch norm's statistics). A failure in either pass
    /// breaks the group: its line is answered here (forward) or by the next
    /// collective (backward, which goes on with this rank's own gradient),
    /// and every later collective answers it at once.
    pub fn sum_differentiable(&self, x: &Tensor) -> Result<Tensor, DistError> {
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: `x` stays alive during the call; `out` is a new
        // heap-allocated `at::Tensor` or null.
        let err = unsafe {
            ffi::ddsas_dist_sum_differentiable(
                self.raw.as_ptr(),
                x.as_ptr() as *const c_void,
                &mut out,
            )
        };
        // SAFETY: a non-null `out` is ours to own and free, as tch's own
        // functions hand out tensors.
        let sum = (!out.is_null()).then(|| unsafe { Tensor::from_ptr(out.cast()) });
        take_error(err)?;
        sum.ok_or_else(|| DistError("the shim made no sum".into()))
    }

    /// Waits until every rank has reached the same barrier.
    pub fn barrier(&self) -> Result<(), DistError> {
        // SAFETY: the group is alive.
        take_error(unsafe { ffi::ddsas_dist_barrier(self.raw.as_ptr()) })
    }
}

/// Gradients averaged across the ranks while the backward pass runs, as
/// DDP's reducer does: hooks on the parameters start each bucket's
/// all-reduce (on the backend's own threads) as soon as the backward pass
/// has made the bucket's gradients, so the transfer of the late layers'
/// gradients overlaps the backward pass of the early ones.
/// [`arm`](Self::arm) before the pass, [`finish`](Self::finish) after it.
///
/// It uses the group by pointer: it must not outlive it (the training's
/// group lives as long as the process).
#[derive(Debug)]
pub struct Reducer {
    raw: NonNull<c_void>,
    params: usize,
    /// The first parameter's data, which tells its parameters from others.
    first: Option<usize>,
}

// SAFETY: as for `ProcessGroup`: used from one thread at a time.
unsafe impl Send for Reducer {}

impl ProcessGroup {
    /// A reducer for `params` (in the order their gradients will be
    /// given), buckets of `bucket_bytes`: its hooks stay on them until it
    /// is dropped.
    pub fn reducer(&self, params: &[Tensor], bucket_bytes: usize) -> Result<Reducer, DistError> {
        let ptrs = tensor_ptrs(params);
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: the parameters stay alive during the call (the shim
        // keeps its own references to them); `out` is written on success.
        take_error(unsafe {
            ffi::ddsas_dist_reducer_new(
                self.raw.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len(),
                bucket_bytes as i64,
                &mut out,
            )
        })?;
        let raw = NonNull::new(out).ok_or_else(|| DistError("the shim made no reducer".into()))?;
        Ok(Reducer {
            raw,
            params: params.len(),
            first: params.first().map(|p| p.data_ptr() as usize),
        })
    }
}

impl Reducer {
    /// Whether its hooks are on `params` (the same count, the first one's
    /// data where it was): a training makes its reducer once.
    pub fn watches(&self, params: &[Tensor]) -> bool {
        self.params == params.len() && self.first == params.first().map(|p| p.data_ptr() as usize)
    }

    /// Starts counting the gradients of the coming backward pass.
    pub fn arm(&self) {
        // SAFETY: the reducer is alive.
        unsafe { ffi::ddsas_dist_reducer_arm(self.raw.as_ptr()) }
    }

    /// Waits for the all-reduces the backward pass started, reduces what
    /// it did not start, and writes the average over the ranks into
    /// `grads` (the pass's gradients, aligned with the parameters), in
    /// place.
    pub fn finish(&self, grads: &mut [Tensor]) -> Result<(), DistError> {
        let ptrs = tensor_ptrs(grads);
        // SAFETY: the gradients stay alive and unaliased during the call.
        take_error(unsafe {
            ffi::ddsas_dist_reducer_finish(self.raw.as_ptr(), ptrs.as_ptr(), ptrs.len())
        })
    }
}

impl Reducer {
    /// How many buckets of the last pass started their all-reduce during
    /// it (the others were reduced by [`finish`](Self::finish)).
    pub fn overlapped(&self) -> usize {
        // SAFETY: the reducer is alive.
        unsafe { ffi::ddsas_dist_reducer_overlapped(self.raw.as_ptr()) }
    }
}

impl Drop for Reducer {
    fn drop(&mut self) {
        // SAFETY: made by `ddsas_dist_reducer_new`, dropped once.
        unsafe { ffi::ddsas_dist_reducer_drop(self.raw.as_ptr()) }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: made by `ddsas_dist_new`, dropped once.
        unsafe { ffi::ddsas_dist_drop(self.raw.as_ptr()) }
    }
}
