//! The process's memory allocator, tuned per kind of run.
//!
//! The binary's allocator is jemalloc (`src/main.rs`). By default jemalloc
//! hands freed pages back to the kernel over the following seconds, and
//! every later allocation of them faults them in again. A step frees and
//! re-allocates the same activation blocks every step: on CPU about 30 % of
//! an evaluation-training step and 41 % of a search step at the paper
//! config went to those page faults and to zeroing the fresh pages.
//! Keeping freed pages (`dirty_decay_ms:-1`) made the training step 1.4x
//! faster at both the small and the paper config for 5-19 % more peak
//! memory (BENCHMARKS.md).
//!
//! A search step kept growing with that setting alone (about 1.2 GB more
//! resident every step at the paper config, the same shapes every step):
//! jemalloc refuses by default to split a freed extent for a request under
//! 1/64 of its size (`lg_extent_max_active_fit:6`), so the step's smaller
//! blocks were cut from fresh address space while the large freed extents
//! waited, and the next step's large blocks no longer fitted anywhere. With
//! any split allowed (`lg_extent_max_active_fit:16`, above the 2^16 ratio
//! between a 16 KiB block and a 1 GiB extent) the resident set stays at
//! the first step's and the step is 0.6x the default's CPU time. A search
//! whose shapes change could still pile up kept pages, so its steps also
//! pass a [`StepPages`] bound that purges them when the resident set
//! outgrows the recent steps'.
//!
//! jemalloc reads its settings once, when the first allocation happens
//! (libtorch's static initialisers, before `main`); switched on later
//! through `mallctl`, the same setting helped a training step a third as
//! much. So a process is started with them in its environment: the
//! orchestrator gives them to its workers, and `ddsas train`, `ddsas
//! search`, `ddsas bench train` and `ddsas bench step` start themselves
//! again with them. A `MALLOC_CONF` the user set is never replaced.
//!
//! The same start-up environment bounds how long libtorch's OpenMP threads
//! (libgomp) spin at a barrier before they sleep ([`OMP_SPIN_COUNT`]).
//! libgomp spins 300,000 rounds by default: on an idle machine that is
//! free, but when another process holds a core (a sweep's other workers, a
//! build) a thread that spins keeps its partner from running, and a step
//! has thousands of parallel regions. Under a load of 10 on 2 cores a
//! paper-config search step at 2 threads took 184 s with the default, 41-44
//! s with 10,000 rounds and 44-49 s with `OMP_WAIT_POLICY=PASSIVE`; passive
//! waiting costs an idle machine about 50 % (a futex wake per region),
//! which a short spin does not (BENCHMARKS.md). A `GOMP_SPINCOUNT` or
//! `OMP_WAIT_POLICY` the user set wins.

use std::ffi::OsStr;

/// jemalloc's settings for a training process.
pub const TRAINING_MALLOC_CONF: &str = "dirty_decay_ms:-1";

/// jemalloc's settings for a search process: freed pages kept, and freed
/// extents split for any smaller request so that the kept pages are reused
/// (the module's documentation says why both).
pub const SEARCH_MALLOC_CONF: &str = "dirty_decay_ms:-1,lg_extent_max_active_fit:16";

/// libgomp's spin rounds at a barrier before a thread sleeps, for every
/// process that computes (the module's documentation says why).
pub const OMP_SPIN_COUNT: &str = "10000";

/// What a process computes, which chooses its allocator settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Trains an evaluation network (`ddsas train`, train workers).
    Training,
    /// Searches a supernet (`ddsas search`, search workers).
    Search,
}

impl Workload {
    /// jemalloc's `MALLOC_CONF` for this workload.
    pub fn malloc_conf(self) -> &'static str {
        match self {
            Workload::Training => TRAINING_MALLOC_CONF,
            Workload::Search => SEARCH_MALLOC_CONF,
        }
    }
}

/// The environment a process of `workload` should start with: its
/// `MALLOC_CONF` and the OpenMP spin bound, each unless the environment
/// already says (the user's choice wins). Empty when nothing is missing.
pub fn env_for(workload: Workload) -> Vec<(&'static str, &'static str)> {
    env_missing(workload, |name| std::env::var_os(name).is_some())
}

/// [`env_for`] for an environment in which `is_set` tells which variables
/// are set.
fn env_missing(
    workload: Workload,
    is_set: impl Fn(&str) -> bool,
) -> Vec<(&'static str, &'static str)> {
    let mut env = Vec::new();
    if !is_set("MALLOC_CONF") {
        env.push(("MALLOC_CONF", workload.malloc_conf()));
    }
    if !is_set("GOMP_SPINCOUNT") && !is_set("OMP_WAIT_POLICY") {
        env.push(("GOMP_SPINCOUNT", OMP_SPIN_COUNT));
    }
    env
}

/// Starts this process again with [`env_for`] when it lacks some of it
/// (same program, same arguments); returns only if that is not needed or
/// the restart failed (the run then goes on, slower). Call it first thing
/// in a command that trains or searches, before any thread or file is
/// opened.
pub fn restart_with(workload: Workload) {
    let env = env_for(workload);
    if env.is_empty() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let err = std::process::Command::new(exe)
        .args(&args)
        .envs(env.iter().map(|&(k, v)| (k, OsStr::new(v))))
        .exec();
    tracing::warn!("could not restart with {env:?} ({err}); going on with the default allocator and OpenMP settings");
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

/// jemalloc's `lg_extent_max_active_fit` (None: not jemalloc): the log of
/// how much larger than a request a freed extent split for it may be.
pub fn lg_extent_max_active_fit() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a documented size_t option read as usize.
        unsafe { tikv_jemalloc_ctl::raw::read::<usize>(b"opt.lg_extent_max_active_fit\0").ok() }
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Resident memory of this process in bytes, from `/proc/self/statm`
/// (None where there is no such file).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Hands every arena's kept freed pages back to the kernel now
/// (`arena.<MALLCTL_ARENAS_ALL>.purge`); false when jemalloc refused or is
/// not the allocator.
pub fn purge_freed_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        // jemalloc's own entry point, exported unprefixed by the
        // `unprefixed_malloc_on_supported_platforms` feature; the ctl crate
        // has no call for a setting that is neither read nor written.
        extern "C" {
            fn mallctl(
                name: *const libc::c_char,
                oldp: *mut libc::c_void,
                oldlenp: *mut libc::size_t,
                newp: *mut libc::c_void,
                newlen: libc::size_t,
            ) -> libc::c_int;
        }
        // 4096 is MALLCTL_ARENAS_ALL: every arena at once.
        let name = c"arena.4096.purge";
        // SAFETY: a documented mallctl that reads and writes nothing, so
        // every pointer is null.
        let rc = unsafe {
            mallctl(
                name.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        rc == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// How far the resident set may outgrow its baseline before kept pages
/// are purged: 1.5x a step's own footprint stays under the PyTorch
/// reference's peak at the paper config (BENCHMARKS.md) and leaves room for
/// a search's subspace to change.
pub const RESIDENT_GROWTH_LIMIT: f64 = 1.5;

/// The decision of [`StepPages`], apart from the system calls: the first
/// step after a start or a purge sets the baseline, and a later step whose
/// resident set passes `limit` times it asks for a purge (after which the
/// next step sets the baseline again, so that a search whose steps
/// legitimately grow is purged once, not at every step).
#[derive(Debug, Clone)]
pub struct ResidentBound {
    baseline: Option<u64>,
    limit: f64,
}

impl ResidentBound {
    /// A bound of `limit` times the baseline, no baseline yet.
    pub fn new(limit: f64) -> Self {
        ResidentBound {
            baseline: None,
            limit,
        }
    }

    /// Whether a step that ended with `resident` bytes should purge.
    pub fn over(&mut self, resident: u64) -> bool {
        match self.baseline {
            None => {
                self.baseline = Some(resident);
                false
            }
            Some(base) if resident as f64 > base as f64 * self.limit => {
                self.baseline = None;
                true
            }
            Some(_) => false,
        }
    }
}

/// The step boundary of a search: with freed pages kept
/// ([`SEARCH_MALLOC_CONF`]) the resident set could still pile up when the
/// shapes change, so after each step it is checked against a
/// [`ResidentBound`] and the kept pages purged when it passes it.
#[derive(Debug, Clone)]
pub struct StepPages {
    bound: ResidentBound,
    purges: u64,
}

impl Default for StepPages {
    fn default() -> Self {
        StepPages {
            bound: ResidentBound::new(RESIDENT_GROWTH_LIMIT),
            purges: 0,
        }
    }
}

impl StepPages {
    /// Call once a step's temporaries are freed; purges when the bound says.
    pub fn step_done(&mut self) {
        let Some(resident) = resident_bytes() else {
            return;
        };
        if self.bound.over(resident) && purge_freed_pages() {
            self.purges += 1;
            tracing::debug!(
                resident_mb = resident >> 20,
                purges = self.purges,
                "purged the kept freed pages"
            );
        }
    }

    /// Purges done so far.
    pub fn purges(&self) -> u64 {
        self.purges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    #[test]
    fn the_start_up_environment_fills_in_only_what_the_user_left_unset() {
        let none = env_missing(Workload::Search, |_| false);
        assert_eq!(
            none,
            [
                ("MALLOC_CONF", SEARCH_MALLOC_CONF),
                ("GOMP_SPINCOUNT", OMP_SPIN_COUNT)
            ]
        );
        let malloc_set = env_missing(Workload::Training, |n| n == "MALLOC_CONF");
        assert_eq!(malloc_set, [("GOMP_SPINCOUNT", OMP_SPIN_COUNT)]);
        let passive = env_missing(Workload::Training, |n| n == "OMP_WAIT_POLICY");
        assert_eq!(passive, [("MALLOC_CONF", TRAINING_MALLOC_CONF)]);
        let all = |n: &str| n == "MALLOC_CONF" || n == "GOMP_SPINCOUNT";
        assert!(env_missing(Workload::Training, all).is_empty());
    }

    #[test]
    fn the_first_step_sets_the_baseline_and_growth_past_the_limit_purges() {
        let mut bound = ResidentBound::new(1.5);
        assert!(!bound.over(2 * GB), "the first step only sets the baseline");
        assert!(!bound.over(3 * GB), "1.5x the baseline is still within");
        assert!(!bound.over(2 * GB));
        assert!(bound.over(3 * GB + 1), "past 1.5x the baseline: purge");
    }

    #[test]
    fn after_a_purge_the_next_step_is_the_new_baseline() {
        let mut bound = ResidentBound::new(1.5);
        assert!(!bound.over(GB));
        assert!(bound.over(2 * GB));
        // Steps that legitimately grew: one purge, then the new size holds.
        assert!(
            !bound.over(2 * GB),
            "the step after a purge sets the baseline"
        );
        assert!(!bound.over(2 * GB));
        assert!(!bound.over(3 * GB));
        assert!(bound.over(3 * GB + 1));
    }

    /// Sets this thread's arena's `dirty_decay_ms`, returning the old one.
    fn set_thread_arena_decay(ms: isize) -> isize {
        // SAFETY: documented mallctls of the types jemalloc gives them.
        unsafe {
            let arena = tikv_jemalloc_ctl::raw::read::<u32>(b"thread.arena\0").unwrap();
            let name = format!("arena.{arena}.dirty_decay_ms\0");
            tikv_jemalloc_ctl::raw::update::<isize>(name.as_bytes(), ms).unwrap()
        }
    }

    #[test]
    fn purging_hands_kept_freed_pages_back() {
        const BLOCK: usize = 1 << 20;
        // Freed pages kept, as in a search process; 1 MiB blocks stay under
        // jemalloc's 8 MiB threshold for returning a freed block at once.
        // The purge hands back about 80 of the 256 MiB here (the rest
        // is not resident when it runs, for reasons not traced), so the
        // test asks for 32.
        let old = set_thread_arena_decay(-1);
        let blocks: Vec<Vec<u8>> = (0..256).map(|_| vec![1u8; BLOCK]).collect();
        drop(blocks);
        let before = resident_bytes().expect("Linux has /proc/self/statm");
        let purged = purge_freed_pages();
        let after = resident_bytes().expect("Linux has /proc/self/statm");
        set_thread_arena_decay(old);
        assert!(purged, "jemalloc accepted the purge");
        assert!(
            before.saturating_sub(after) >= 32 * BLOCK as u64,
            "resident {} MB before the purge, {} MB after",
            before >> 20,
            after >> 20
        );
    }

    #[test]
    fn every_workload_has_its_own_settings() {
        assert_eq!(Workload::Training.malloc_conf(), TRAINING_MALLOC_CONF);
        assert_eq!(Workload::Search.malloc_conf(), SEARCH_MALLOC_CONF);
        assert!(SEARCH_MALLOC_CONF.contains("dirty_decay_ms:-1"));
    }
}
