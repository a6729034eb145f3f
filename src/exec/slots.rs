//! Where the workers of `sweep run` go: worker slots from the user's
//! choices (typed at parse time), the sweep's resources and the machine
//! (`nvidia-smi`, else libtorch, and the CPU cores), with a sentence saying
//! what was chosen and why (docs/design.md §6).

use std::num::NonZeroUsize;
use std::str::FromStr;

use super::check_threads;
use super::orchestrator::{Slot, SlotDevice};
use crate::sweep::{Evaluate, Resources};

/// GPU memory one run needs by default, for `--runs-per-gpu auto`
/// (docs/design.md §6: DDSAS needs ~4 GB at the paper's settings).
const DEFAULT_GPU_MEM_GB: f64 = 4.0;

/// Why no worker slots could be planned; each message names the flag, the
/// sweep key or the variable to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// `resources.runs_per_gpu: 0` in the sweep file.
    #[error("resources.runs_per_gpu is 0 in the sweep file: use at least 1, or leave it out")]
    SweepRunsPerGpuZero,
    /// `--runs-per-gpu 0` (a pull worker's flag).
    #[error("--runs-per-gpu 0: use at least 1")]
    RunsPerGpuZero,
    /// `--threads 0` for a pull worker without a GPU.
    #[error("--threads 0: use at least 1")]
    ThreadsZero,
    /// Neither a GPU nor a CPU worker.
    #[error("no worker slot: --cpu-workers 0 and no GPU; use --cpu-workers 1 or more")]
    NoSlot,
    /// More threads per run than the machine's limit.
    #[error("threads per run: {0}; lower --threads or resources.cpu_threads_per_run")]
    Threads(String),
    /// A `--gpus` index that is not on this machine.
    #[error("--gpus: GPU {gpu} does not exist; the GPUs found (by nvidia-smi, else libtorch) are {found}")]
    NoSuchGpu {
        /// The index asked for.
        gpu: u32,
        /// The indices found, or "none".
        found: String,
    },
    /// A Slurm task's `SLURM_CPUS_PER_TASK` that is not a count.
    #[error("SLURM_CPUS_PER_TASK={0} is not a number of cores")]
    CpusPerTask(String),
    /// An `evaluate:` entry whose trainings need more worker slots at once
    /// than the sweep has (`nproc`: one slot per rank).
    #[error("entry {entry} of `evaluate` asks for nproc: {nproc}, and each rank takes a worker slot of its own ({per_rank}), but this sweep has {most} such slot(s) ({slots}): lower nproc to {most} or less, or {fix}")]
    TooFewSlots {
        /// The entry (1-based).
        entry: usize,
        /// Its `nproc`.
        nproc: u32,
        /// What one rank takes, in words.
        per_rank: &'static str,
        /// The most ranks one training can have here.
        most: usize,
        /// The sweep's slots, in words.
        slots: String,
        /// How to get more.
        fix: String,
    },
    /// An `evaluate:` entry with `nproc` in a build without `dist`.
    #[error("entry {entry} of `evaluate` asks for nproc: {nproc}, and this ddsas was built without data-parallel training (the cargo feature `dist`): build with `cargo build --release --features dist` (needs Gloo's headers: apt-get install libgloo-dev), or leave nproc out")]
    NoDist {
        /// The entry (1-based).
        entry: usize,
        /// Its `nproc`.
        nproc: u32,
    },
    /// A Slurm task's `CUDA_VISIBLE_DEVICES` that is not a list of indices.
    #[error("CUDA_VISIBLE_DEVICES={0} is not a list of GPU indices; ddsas gives each run one index of it (ask Slurm for GPUs with --gpus-per-task, which sets indices)")]
    GpuList(String),
}

/// Which GPUs a sweep may use (`--gpus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuChoice {
    /// Every GPU the machine has, else the CPU.
    All,
    /// No GPU: CPU workers only.
    None,
    /// These GPU indices, each once.
    List(Vec<u32>),
}

impl FromStr for GpuChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "all" => Ok(GpuChoice::All),
            "none" | "cpu" | "" => Ok(GpuChoice::None),
            list => {
                let mut gpus = Vec::new();
                for part in list.split(',') {
                    let g: u32 = part.trim().parse().map_err(|_| {
                        format!("`{part}` is not a GPU index; use all, none or a list such as 0,1")
                    })?;
                    if gpus.contains(&g) {
                        return Err(format!(
                            "GPU {g} is listed twice; use --runs-per-gpu 2 for two runs on one GPU"
                        ));
                    }
                    gpus.push(g);
                }
                Ok(GpuChoice::List(gpus))
            }
        }
    }
}

/// Concurrent runs per GPU (`--runs-per-gpu`, `resources.runs_per_gpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsPerGpu {
    /// As many as the GPU's free memory holds at the sweep's estimate per run.
    Auto,
    /// This many.
    Fixed(NonZeroUsize),
}

impl FromStr for RunsPerGpu {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "auto" => Ok(RunsPerGpu::Auto),
            n => n
                .parse::<NonZeroUsize>()
                .map(RunsPerGpu::Fixed)
                .map_err(|_| format!("`{n}`: use a number of at least 1, or auto")),
        }
    }
}

/// What the user asked for; `None` fields take the sweep's resources or
/// the machine's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    /// `--gpus`.
    pub gpus: GpuChoice,
    /// `--runs-per-gpu`.
    pub runs_per_gpu: Option<RunsPerGpu>,
    /// `--cpu-workers`.
    pub cpu_workers: Option<usize>,
    /// `--threads`.
    pub threads: Option<usize>,
}

/// A GPU to use: its index and free memory in MiB, when known.
type Gpu = (u32, Option<f64>);

/// The worker slots for `request` on this machine, with a sentence saying
/// what was chosen.
pub fn plan(
    request: &SlotRequest,
    resources: &Resources,
) -> Result<(Vec<Slot>, String), SlotError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut detected = nvidia_smi();
    if detected.is_none() && matches!(request.gpus, GpuChoice::List(_)) {
        // No nvidia-smi to check a GPU list against: ask libtorch, as the
        // workers would, rather than start workers that all fail.
        detected = Some(libtorch_gpus().into_iter().map(|i| (i, None)).collect());
    }
    plan_for(request, resources, detected, cores)
}

/// [`plan`] for a given machine: `detected` is what nvidia-smi said
/// (`None`: no nvidia-smi), `cores` the CPUs.
pub fn plan_for(
    request: &SlotRequest,
    resources: &Resources,
    detected: Option<Vec<Gpu>>,
    cores: usize,
) -> Result<(Vec<Slot>, String), SlotError> {
    if resources.runs_per_gpu == Some(0) {
        return Err(SlotError::SweepRunsPerGpuZero);
    }
    let mut notes = Vec::new();
    let gpus = chosen_gpus(&request.gpus, detected.as_deref(), &mut notes)?;
    let mut devices = Vec::new();
    for &gpu in &gpus {
        let n = runs_on(gpu, request, resources, &mut notes);
        devices.extend(std::iter::repeat_n(SlotDevice::Gpu(gpu.0), n));
    }
    // Without a GPU: one worker, or as many as the cores allow when the
    // sweep says how many threads a run wants.
    let cpu_workers =
        request
            .cpu_workers
            .unwrap_or(match (gpus.is_empty(), resources.cpu_threads_per_run) {
                (false, _) => 0,
                (true, Some(t)) => (cores / (t as usize).max(1)).max(1),
                (true, None) => 1,
            });
    let gpu_slots = devices.len();
    devices.extend(std::iter::repeat_n(SlotDevice::Cpu, cpu_workers));
    if devices.is_empty() {
        return Err(SlotError::NoSlot);
    }
    let cpu_threads = request
        .threads
        .or(resources.cpu_threads_per_run.map(|t| t as usize))
        .unwrap_or_else(|| (cores / cpu_workers.max(1)).max(1));
    let gpu_threads = request
        .threads
        .unwrap_or_else(|| (cores / devices.len()).max(1));
    check_threads(cpu_threads.max(gpu_threads), cores).map_err(SlotError::Threads)?;
    let slots = devices
        .into_iter()
        .map(|device| Slot {
            device,
            threads: match device {
                SlotDevice::Cpu => cpu_threads,
                SlotDevice::Gpu(_) => gpu_threads,
            },
        })
        .collect();
    let text = describe(&gpus, gpu_slots, cpu_workers, cpu_threads, &notes);
    Ok((slots, text))
}

/// Checks, before anything is registered, that every training `evaluate`
/// asks for can start on `slots` (what [`plan`] chose, described by `how`):
/// a training with `nproc: N` runs N ranks at once, each on a worker slot
/// of its own (a GPU each, or a CPU worker each), which this build must be
/// able to start.
pub fn check_ranks(slots: &[Slot], how: &str, evaluate: &[Evaluate]) -> Result<(), SlotError> {
    let most = most_ranks(slots);
    let on_gpus = slots.iter().any(|s| matches!(s.device, SlotDevice::Gpu(_)));
    for (i, plan) in evaluate.iter().enumerate() {
        let (entry, nproc) = (i + 1, plan.nproc);
        if nproc <= 1 {
            continue;
        }
        if !cfg!(feature = "dist") {
            return Err(SlotError::NoDist { entry, nproc });
        }
        if nproc as usize > most {
            let (per_rank, fix) = if on_gpus {
                ("a GPU", format!("give the sweep {nproc} GPUs (--gpus with {nproc} indices; two slots of one GPU are one rank's)"))
            } else {
                ("a CPU worker", format!("pass --cpu-workers {nproc} (the cores are shared among the workers; --threads sets each one's)"))
            };
            return Err(SlotError::TooFewSlots {
                entry,
                nproc,
                per_rank,
                most,
                slots: how.to_owned(),
                fix,
            });
        }
    }
    Ok(())
}

/// The most ranks one training can have on `slots`: one per GPU (however
/// many runs a GPU takes), or one per CPU worker.
pub fn most_ranks(slots: &[Slot]) -> usize {
    let mut gpus: Vec<u32> = slots
        .iter()
        .filter_map(|s| match s.device {
            SlotDevice::Gpu(g) => Some(g),
            SlotDevice::Cpu => None,
        })
        .collect();
    gpus.sort_unstable();
    gpus.dedup();
    let cpus = slots.iter().filter(|s| s.device == SlotDevice::Cpu).count();
    gpus.len().max(cpus)
}

/// The slots of `free` (in order) a run of `ranks` processes takes now:
/// the first free slot for one process; for several, one free slot on each
/// of `ranks` different GPUs, else `ranks` free CPU workers. `None` when
/// not enough are free.
pub fn pick_slots(slots: &[Slot], free: &[usize], ranks: usize) -> Option<Vec<usize>> {
    if ranks <= 1 {
        return free.first().map(|&s| vec![s]);
    }
    let mut on_gpus: Vec<usize> = Vec::new();
    for &s in free {
        if let SlotDevice::Gpu(g) = slots[s].device {
            let taken = on_gpus
                .iter()
                .any(|&t| slots[t].device == SlotDevice::Gpu(g));
            if !taken {
                on_gpus.push(s);
            }
        }
    }
    if on_gpus.len() >= ranks {
        on_gpus.truncate(ranks);
        return Some(on_gpus);
    }
    let cpus: Vec<usize> = free
        .iter()
        .copied()
        .filter(|&s| slots[s].device == SlotDevice::Cpu)
        .take(ranks)
        .collect();
    (cpus.len() == ranks).then_some(cpus)
}

/// The GPUs of `choice` on a machine where `detected` were found.
fn chosen_gpus(
    choice: &GpuChoice,
    detected: Option<&[Gpu]>,
    notes: &mut Vec<String>,
) -> Result<Vec<Gpu>, SlotError> {
    match choice {
        GpuChoice::None => Ok(Vec::new()),
        GpuChoice::All => match detected {
            Some(list) if !list.is_empty() => Ok(list.to_vec()),
            Some(_) => {
                notes.push("nvidia-smi lists no GPU, so running on the CPU".to_owned());
                Ok(Vec::new())
            }
            None => {
                notes
                    .push("no GPU found (no working nvidia-smi), so running on the CPU".to_owned());
                Ok(Vec::new())
            }
        },
        GpuChoice::List(list) => {
            let Some(found) = detected else {
                notes.push("nvidia-smi is not available to check the GPUs; trusting --gpus".into());
                return Ok(list.iter().map(|&g| (g, None)).collect());
            };
            list.iter()
                .map(|&g| match found.iter().find(|(i, _)| *i == g) {
                    Some(&gpu) => Ok(gpu),
                    None => Err(SlotError::NoSuchGpu {
                        gpu: g,
                        found: if found.is_empty() {
                            "none".to_owned()
                        } else {
                            found
                                .iter()
                                .map(|(i, _)| i.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                    }),
                })
                .collect()
        }
    }
}

/// How many runs go on `gpu`.
fn runs_on(
    (g, free_mib): Gpu,
    request: &SlotRequest,
    resources: &Resources,
    notes: &mut Vec<String>,
) -> usize {
    let per_run_gb = resources.gpu_mem_gb_per_run.unwrap_or(DEFAULT_GPU_MEM_GB);
    let choice = request.runs_per_gpu.unwrap_or_else(|| {
        resources
            .runs_per_gpu
            .and_then(|n| NonZeroUsize::new(n as usize))
            .map_or(RunsPerGpu::Fixed(NonZeroUsize::MIN), RunsPerGpu::Fixed)
    });
    match (choice, free_mib) {
        (RunsPerGpu::Fixed(n), _) => n.get(),
        (RunsPerGpu::Auto, Some(mib)) => {
            let n = ((mib / 1024.0) / per_run_gb).floor().max(1.0) as usize;
            notes.push(format!(
                "GPU {g}: {:.1} GB free / {per_run_gb} GB per run = {n} run(s)",
                mib / 1024.0
            ));
            n
        }
        (RunsPerGpu::Auto, None) => {
            notes.push(format!("GPU {g}: free memory unknown, 1 run"));
            1
        }
    }
}

/// "2 GPU worker slot(s) on GPU 0,1 + 1 CPU worker(s) x 4 thread(s) (notes)".
fn describe(
    gpus: &[Gpu],
    gpu_slots: usize,
    cpu_workers: usize,
    cpu_threads: usize,
    notes: &[String],
) -> String {
    let mut how = Vec::new();
    if gpu_slots > 0 {
        let list: Vec<String> = gpus.iter().map(|(g, _)| g.to_string()).collect();
        how.push(format!(
            "{gpu_slots} GPU worker slot(s) on GPU {}",
            list.join(",")
        ));
    }
    if cpu_workers > 0 {
        how.push(format!(
            "{cpu_workers} CPU worker(s) x {cpu_threads} thread(s)"
        ));
    }
    let text = how.join(" + ");
    if notes.is_empty() {
        text
    } else {
        format!("{text} ({})", notes.join("; "))
    }
}

/// (index, free MiB) of every GPU nvidia-smi lists; `None` when nvidia-smi
/// is not there or fails.
fn nvidia_smi() -> Option<Vec<Gpu>> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,memory.free",
            "--format=csv,noheader,nounits",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split(',').map(str::trim);
                let index = parts.next()?.parse().ok()?;
                let free = parts.next().and_then(|f| f.parse().ok());
                Some((index, free))
            })
            .collect(),
    )
}

/// The CUDA devices libtorch sees, as the workers would.
#[cfg(feature = "engine")]
fn libtorch_gpus() -> Vec<u32> {
    super::device::cuda_devices()
}

/// No libtorch to ask without the engine; no worker could use a GPU either.
#[cfg(not(feature = "engine"))]
fn libtorch_gpus() -> Vec<u32> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slots of `sweep run` with `gpus`, `runs_per_gpu`, `cpu_workers`,
    /// `threads` as typed, the sweep's `resources` (YAML) and a machine.
    fn plan(
        flags: (&str, Option<&str>, Option<usize>, Option<usize>),
        resources: &str,
        gpus: Option<Vec<Gpu>>,
        cores: usize,
    ) -> Result<(Vec<Slot>, String), String> {
        let request = SlotRequest {
            gpus: flags.0.parse()?,
            runs_per_gpu: flags.1.map(str::parse).transpose()?,
            cpu_workers: flags.2,
            threads: flags.3,
        };
        let sweep =
            crate::sweep::Sweep::parse(&format!("name: s\nresources: {resources}\n"), "s.yaml")
                .unwrap();
        plan_for(&request, &sweep.resources, gpus, cores).map_err(|e| e.to_string())
    }

    fn devices(slots: &[Slot]) -> Vec<SlotDevice> {
        slots.iter().map(|s| s.device).collect()
    }

    #[test]
    fn without_gpu_the_cpu_is_used_and_said_so() {
        let (slots, how) = plan(("all", None, None, None), "{}", None, 8).unwrap();
        assert_eq!(
            slots,
            vec![Slot {
                device: SlotDevice::Cpu,
                threads: 8
            }]
        );
        assert!(how.contains("running on the CPU"), "{how}");
        let (slots, _) = plan(("all", None, Some(4), None), "{}", Some(vec![]), 8).unwrap();
        assert_eq!(slots.len(), 4);
        assert!(slots.iter().all(|s| s.threads == 2));
        let err = plan(("all", None, None, Some(100_000)), "{}", None, 8).unwrap_err();
        assert!(err.to_string().contains("more than 4 per core"), "{err}");
        let (slots, _) = plan(
            ("all", None, None, None),
            "{cpu_threads_per_run: 1}",
            None,
            2,
        )
        .unwrap();
        assert_eq!(slots.len(), 2, "one single-threaded worker per core");
        assert!(plan(("all", None, Some(0), None), "{}", None, 2).is_err());
    }

    #[test]
    fn gpus_get_slots_per_gpu_fixed_or_from_free_memory() {
        let two = Some(vec![(0, Some(40_960.0)), (1, Some(10_240.0))]);
        let (slots, _) = plan(("all", None, None, None), "{}", two.clone(), 16).unwrap();
        assert_eq!(
            devices(&slots),
            vec![SlotDevice::Gpu(0), SlotDevice::Gpu(1)]
        );
        assert!(slots.iter().all(|s| s.threads == 8));
        let (slots, how) = plan(
            ("all", Some("auto"), None, None),
            "{gpu_mem_gb_per_run: 4}",
            two.clone(),
            16,
        )
        .unwrap();
        let on = |g| {
            slots
                .iter()
                .filter(|s| s.device == SlotDevice::Gpu(g))
                .count()
        };
        assert_eq!((on(0), on(1)), (10, 2), "{how}");
        let (slots, _) = plan(("1", Some("3"), Some(1), None), "{}", two.clone(), 16).unwrap();
        assert_eq!(
            devices(&slots),
            vec![
                SlotDevice::Gpu(1),
                SlotDevice::Gpu(1),
                SlotDevice::Gpu(1),
                SlotDevice::Cpu
            ]
        );
        let (slots, _) = plan(
            ("all", None, None, None),
            "{runs_per_gpu: 2}",
            two.clone(),
            16,
        )
        .unwrap();
        assert_eq!(slots.len(), 4);
        let err = plan(("5", None, None, None), "{}", two.clone(), 16)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("GPU 5 does not exist") && err.contains("0, 1"),
            "{err}"
        );
        let (slots, how) = plan(("0", None, None, None), "{}", None, 4).unwrap();
        assert_eq!(devices(&slots), vec![SlotDevice::Gpu(0)]);
        assert!(how.contains("trusting --gpus"), "{how}");
        let err = plan(("3", None, None, None), "{}", Some(vec![]), 4).unwrap_err();
        assert!(err.to_string().contains("GPU 3 does not exist"), "{err}");
    }

    /// The `evaluate:` entries of a sweep whose base is a tiny search.
    fn evaluations(entries: &str) -> Vec<Evaluate> {
        crate::sweep::Sweep::parse(
            &format!("name: s\nbase: {{epochs: 1}}\nevaluate: {entries}\n"),
            "s.yaml",
        )
        .unwrap()
        .evaluate
    }

    /// A training of `nproc` ranks needs that many slots at once (a GPU
    /// each, or a CPU worker each); `sweep run` refuses before it starts
    /// when the sweep has fewer, naming the entry and the flag to change.
    #[test]
    fn an_evaluation_asking_for_more_ranks_than_slots_is_refused_before_the_start() {
        let two = evaluations("[{epochs: 600}, {epochs: 600, nproc: 2}]");
        let (one_cpu, how) = plan(("none", None, None, None), "{}", None, 2).unwrap();
        let err = check_ranks(&one_cpu, &how, &two).unwrap_err().to_string();
        if !cfg!(feature = "dist") {
            assert!(
                err.contains("entry 2 of `evaluate`") && err.contains("--features dist"),
                "{err}"
            );
            return;
        }
        assert!(
            err.contains("entry 2 of `evaluate` asks for nproc: 2")
                && err.contains("a CPU worker")
                && err.contains("this sweep has 1 such slot(s) (1 CPU worker(s) x 2 thread(s))")
                && err.contains("lower nproc to 1 or less, or pass --cpu-workers 2"),
            "{err}"
        );
        let (two_cpus, how) = plan(("none", None, Some(2), None), "{}", None, 2).unwrap();
        assert_eq!(check_ranks(&two_cpus, &how, &two), Ok(()));
        assert_eq!(
            check_ranks(&one_cpu, &how, &evaluations("{epochs: 600}")),
            Ok(())
        );
        // Two runs on one GPU are one GPU: not two ranks.
        let gpus = Some(vec![(0, Some(40_960.0)), (1, Some(40_960.0))]);
        let (on_gpu0, how) = plan(("0", Some("2"), Some(0), None), "{}", gpus.clone(), 8).unwrap();
        let err = check_ranks(&on_gpu0, &how, &two).unwrap_err().to_string();
        assert!(
            err.contains("a GPU") && err.contains("give the sweep 2 GPUs"),
            "{err}"
        );
        let (both, how) = plan(("0,1", None, Some(0), None), "{}", gpus, 8).unwrap();
        assert_eq!(check_ranks(&both, &how, &two), Ok(()));
    }

    /// Ranks take one slot on each of as many GPUs, else as many CPU
    /// workers, and wait while not enough are free together.
    #[test]
    fn a_run_of_several_ranks_takes_free_slots_on_distinct_gpus_or_cpus() {
        let slot = |device| Slot { device, threads: 1 };
        let slots = vec![
            slot(SlotDevice::Gpu(0)),
            slot(SlotDevice::Gpu(0)),
            slot(SlotDevice::Gpu(1)),
            slot(SlotDevice::Cpu),
            slot(SlotDevice::Cpu),
        ];
        assert_eq!(most_ranks(&slots), 2);
        assert_eq!(pick_slots(&slots, &[1, 2, 3], 1), Some(vec![1]));
        assert_eq!(pick_slots(&slots, &[0, 1, 2], 2), Some(vec![0, 2]));
        assert_eq!(pick_slots(&slots, &[0, 1, 3, 4], 2), Some(vec![3, 4]));
        assert_eq!(pick_slots(&slots, &[0, 1, 3], 2), None);
        assert_eq!(pick_slots(&slots, &[], 1), None);
    }

    #[test]
    fn choices_are_checked_when_parsed() {
        assert_eq!("0, 2".parse::<GpuChoice>(), Ok(GpuChoice::List(vec![0, 2])));
        assert_eq!("cpu".parse::<GpuChoice>(), Ok(GpuChoice::None));
        let twice = "0,0".parse::<GpuChoice>().unwrap_err();
        assert!(twice.contains("listed twice"), "{twice}");
        assert!("x"
            .parse::<GpuChoice>()
            .unwrap_err()
            .contains("not a GPU index"));
        assert_eq!("auto".parse::<RunsPerGpu>(), Ok(RunsPerGpu::Auto));
        assert!("0"
            .parse::<RunsPerGpu>()
            .unwrap_err()
            .contains("at least 1"));
    }
}
