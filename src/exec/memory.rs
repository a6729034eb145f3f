//! The process's memory allocator, tuned per kind of run.
//!
//! The binary's allocator is jemalloc (`src/main.rs`). By default jemalloc
//! hands freed pages back to the kernel over the following seconds, and
//! every later allocation of them faults them in again. A training step of
//! the evaluation network frees and re-allocates the same activation blocks
//! every step, and on CPU about 30 % of a step went to those page faults.
//! Keeping freed pages (`dirty_decay_ms:-1`) made the step 1.4x faster at
//! both the small and the paper config for 5-19 % more peak memory
//! (BENCHMARKS.md). A search's subspace changes the shapes it allocates, so
//! kept pages pile up there (2.7x the peak memory for 1.5x the speed at the
//! mid config): searches keep jemalloc's default.
//!
//! jemalloc reads its settings once, when the first allocation happens
//! (libtorch's static initialisers, before `main`); switched on later
//! through `mallctl`, the same setting helped a training step a third as
//! much. So a training process is started with it in its environment: the
//! orchestrator gives it to train workers, and `ddsas train` and `ddsas
//! bench train` start themselves again with it. A `MALLOC_CONF` the user
//! set is never replaced.

use std::ffi::OsStr;

/// jemalloc's settings for a training process.
pub const TRAINING_MALLOC_CONF: &str = "dirty_decay_ms:-1";

/// The `MALLOC_CONF` a process that trains should start with, unless the
/// environment already has one (the user's choice wins).
pub fn training_env() -> Option<(&'static str, &'static str)> {
    std::env::var_os("MALLOC_CONF")
        .is_none()
        .then_some(("MALLOC_CONF", TRAINING_MALLOC_CONF))
}

/// Starts this process again with [`training_env`] when it lacks it (same
/// program, same arguments); returns only if that is not needed or the
/// restart failed (the run then goes on, slower). Call it first thing in a
/// command that trains, before any thread or file is opened.
pub fn restart_for_training() {
    let Some((key, value)) = training_env() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let err = std::process::Command::new(exe)
        .args(&args)
        .env(key, OsStr::new(value))
        .exec();
    tracing::warn!("could not restart with {key}={value} ({err}); training with the default allocator settings");
}

/// jemalloc's current `dirty_decay_ms` for new arenas (None: not jemalloc).
pub fn dirty_decay_ms() -> Option<isize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a documented ssize_t setting read as isize.
        unsafe { tikv_jemalloc_ctl::raw::read::<isize>(b"arenas.dirty_decay_ms\0").ok() }
    }
    #[cfg(not(target_os = "linux"))]
    None
}
