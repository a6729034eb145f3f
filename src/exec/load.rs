//! `ddsas bench store`, the store's load test: many pull workers on
//! one run history, simulated without training, to measure the
//! claim / heartbeat / epoch-record path and to check the two promises the
//! history makes under load: no run is claimed by two workers, and no
//! epoch a worker was told is stored goes missing.
//!
//! Each simulated worker opens its own [`Store`] (its own pool, as a worker
//! process on another node would), claims the next run of a sweep with
//! [`Store::claim_next`], writes a full DARTS-space epoch record every
//! `epoch_every` with heartbeats in between, finishes the run and claims the
//! next, until the deadline. Every operation is timed from the worker's
//! side, the wait for a pooled connection included: what a worker waits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::arch::metrics::{EpochRecord, SamplingCount, SubspaceRecord};
use crate::arch::space::{SearchSpace, SpaceKind};
use crate::config::{ConfigError, ResolvedConfig, SearchConfig};
use crate::exec::process::hostname;
use crate::store::{Backend, Claim, DbLocation, EpochOf, RunResult, RunStatus, Store, StoreError};

/// How much an epoch's length varies either way: real epochs differ a
/// little, so workers that start together (a job array) drift apart
/// rather than all writing in the same instant for the whole test.
const EPOCH_JITTER: f64 = 0.1;

/// How long a worker waits after a failed claim before it tries again, so
/// that a failing database is not hammered by every worker at once.
const ERROR_PAUSE: Duration = Duration::from_millis(500);

/// The cell a simulated search reports each epoch: DARTS's published one,
/// so that the genotype column holds as much text as a real search's.
const GENOTYPE: &str = "normal=[(sep_conv_3x3,0),(sep_conv_3x3,1),(sep_conv_3x3,0),(sep_conv_3x3,1),(sep_conv_3x3,1),(skip_connect,0),(skip_connect,0),(dil_conv_3x3,2)] reduce=[(max_pool_3x3,0),(max_pool_3x3,1),(skip_connect,2),(max_pool_3x3,1),(max_pool_3x3,0),(skip_connect,2),(skip_connect,2),(max_pool_3x3,1)]";

/// What to simulate.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Simulated workers, each with its own store.
    pub workers: usize,
    /// How long workers keep claiming and writing.
    pub duration: Duration,
    /// Runs registered in the sweep the workers pull from.
    pub runs: usize,
    /// Epochs per run (the config's `epochs`, and the records written).
    pub epochs: u32,
    /// Time between two epoch records of a run (zero: back to back).
    pub epoch_every: Duration,
    /// Time between two heartbeats of a run.
    pub heartbeat_every: Duration,
}

/// Latencies of one kind of operation, in seconds, sorted.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<f64>);

impl Latencies {
    fn new(mut seconds: Vec<f64>) -> Latencies {
        seconds.sort_by(f64::total_cmp);
        Latencies(seconds)
    }

    /// How many operations were timed.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (0..=1) by nearest rank; `None` when nothing was
    /// timed.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.0.len();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, n) - 1])
    }
}

/// What the check after the run found in the database.
#[derive(Debug, Clone, Default)]
pub struct Invariants {
    /// Runs that more than one worker was told it claimed.
    pub claimed_twice: usize,
    /// Runs the database counts more than one claim of (`attempts > 1`).
    pub attempted_twice: usize,
    /// Claimed runs whose stored owner is not the worker that claimed them.
    pub wrong_owner: usize,
    /// Epoch writes that returned Ok.
    pub acknowledged: usize,
    /// Acknowledged epochs missing from `epochs`.
    pub lost: usize,
}

impl Invariants {
    /// Runs claimed twice by any of the three counts.
    pub fn double_claims(&self) -> usize {
        self.claimed_twice + self.attempted_twice + self.wrong_owner
    }

    /// Whether no run was claimed twice and no record was lost.
    pub fn hold(&self) -> bool {
        self.double_claims() == 0 && self.lost == 0
    }
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The plan that was run.
    pub plan: LoadPlan,
    /// Which database.
    pub backend: Backend,
    /// The database, without password.
    pub database: String,
    /// The sweep the workers pulled from.
    pub sweep: String,
    /// Workers whose store opened.
    pub connected: usize,
    /// Seconds it took to open every worker's store (not in the window).
    pub connect_s: f64,
    /// Seconds from the start until the last worker stopped claiming and
    /// writing: what the rates are per.
    pub window_s: f64,
    /// Successful claims.
    pub claims: Latencies,
    /// Successful epoch writes.
    pub epoch_writes: Latencies,
    /// Successful heartbeats.
    pub heartbeats: Latencies,
    /// Runs finished (`done`).
    pub finished: usize,
    /// Runs unfinished at the deadline, handed back (`interrupted`) once
    /// every worker had stopped.
    pub left: usize,
    /// Runs given up after a failed epoch write.
    pub abandoned: usize,
    /// Workers that stopped because no run was left to claim.
    pub ran_dry: usize,
    /// Each distinct error (operation and cause) with its count.
    pub errors: BTreeMap<String, u64>,
    /// Database bytes on disk before the workers started.
    pub size_before: u64,
    /// Database bytes on disk after they stopped.
    pub size_after: u64,
    /// The check of the database afterwards.
    pub invariants: Invariants,
}

impl LoadReport {
    /// Database growth per 1,000 epoch records, in bytes (`None` without
    /// records).
    pub fn growth_per_1000_epochs(&self) -> Option<f64> {
        let epochs = self.epoch_writes.count();
        (epochs > 0)
            .then(|| (self.size_after as f64 - self.size_before as f64) / epochs as f64 * 1000.0)
    }

    /// Operations per second of the window.
    pub fn rate(&self, operations: usize) -> f64 {
        if self.window_s > 0.0 {
            operations as f64 / self.window_s
        } else {
            0.0
        }
    }
}

/// Registers a fresh sweep of `plan.runs` runs on `location`, runs
/// `plan.workers` simulated workers against it for `plan.duration`
/// (showing progress on `bar`), then checks the database.
pub async fn run(
    location: &DbLocation,
    plan: LoadPlan,
    bar: ProgressBar,
) -> Result<LoadReport, LoadError> {
    let admin = Store::connect(location).await?;
    bar.set_message(format!("registering {} runs", plan.runs));
    let sweep = register_sweep(&admin, &plan).await?;
    let size_before = admin.size_bytes().await?;
    bar.set_message(format!("opening {} stores", plan.workers));
    let connecting = Instant::now();
    let (stores, mut errors) = connect_workers(location, plan.workers).await;
    let connect_s = connecting.elapsed().as_secs_f64();
    let connected = stores.len();
    if connected == 0 {
        let why = errors.keys().next().cloned().unwrap_or_default();
        return Err(LoadError::NoWorkerConnected {
            workers: plan.workers,
            why,
        });
    }

    let start = Instant::now();
    let shared = Arc::new(Shared {
        sweep: sweep.clone(),
        plan: plan.clone(),
        deadline: start + plan.duration,
        space: SearchSpace::new(SpaceKind::Darts),
        live: LiveCounts::default(),
    });
    let ticker = tokio::spawn(show_progress(bar.clone(), shared.clone(), start));
    let tallies = run_workers(stores, &shared, &mut errors).await;
    ticker.abort();
    bar.finish_and_clear();

    let merged = Tally::merge(tallies, &mut errors);
    let window_s = merged
        .stopped_at
        .map_or(0.0, |t| t.duration_since(start).as_secs_f64());
    let left = hand_back(&admin, &merged.unfinished, &mut errors).await;
    let size_after = admin.size_bytes().await?;
    let invariants = check_invariants(&admin, &sweep, &merged).await?;
    let backend = admin.backend();
    admin.close().await;
    Ok(LoadReport {
        backend,
        database: location.to_string(),
        plan,
        sweep,
        connected,
        connect_s,
        window_s,
        claims: Latencies::new(merged.claim_s),
        epoch_writes: Latencies::new(merged.epoch_s),
        heartbeats: Latencies::new(merged.heartbeat_s),
        finished: merged.finished,
        left,
        abandoned: merged.abandoned,
        ran_dry: merged.ran_dry,
        errors,
        size_before,
        size_after,
        invariants,
    })
}

/// Why a load test could not run (its measurements are a report, not an
/// error).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database failed outside the measured operations.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The simulated searches' config does not resolve.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No simulated worker could open the database.
    #[error("none of the {workers} workers could open the database: {why}")]
    NoWorkerConnected {
        /// Workers asked for.
        workers: usize,
        /// The first error seen.
        why: String,
    },
    /// A run of this test was registered before it, by another one that
    /// started at the same moment.
    #[error("run {id} (seed {seed}) was registered before this test, by another `bench store` started at the same moment; run it again")]
    RegisteredBefore {
        /// The run.
        id: i64,
        /// Its seed.
        seed: u64,
    },
}

/// A simulated search's config: DDSAS on the DARTS space and CIFAR-10, as
/// the paper's grid runs it, with `epochs` and a seed of its own (the seed
/// makes each run's fingerprint distinct). `download` only lets it resolve
/// on a machine without CIFAR (nothing trains, so nothing is fetched); it
/// is not part of the stored config.
fn simulated_config(epochs: u32, seed: u64) -> Result<ResolvedConfig, ConfigError> {
    let overrides = [
        "method=ddsas".to_owned(),
        "space=darts".to_owned(),
        "dataset=cifar10".to_owned(),
        "download=true".to_owned(),
        format!("epochs={epochs}"),
        format!("seed={seed}"),
    ];
    SearchConfig::default()
        .with_overrides(&overrides)?
        .resolve()
}

/// Registers the runs and their sweep, under a name and seeds taken from
/// the clock in microseconds: every test gets runs no earlier test
/// registered (a done run is never claimed again), and a collision with a
/// test started in the same instant is refused rather than measured.
async fn register_sweep(store: &Store, plan: &LoadPlan) -> Result<String, LoadError> {
    let first_seed = (crate::store::unix_now() * 1e6) as u64;
    let name = format!("bench-store-{first_seed}");
    let mut members = Vec::with_capacity(plan.runs);
    for (position, seed) in (first_seed..).take(plan.runs).enumerate() {
        let row = store
            .ensure_run(&simulated_config(plan.epochs, seed)?)
            .await?;
        if row.status != RunStatus::Queued || row.attempts != 0 {
            return Err(LoadError::RegisteredBefore { id: row.id, seed });
        }
        members.push((row.id, i64::try_from(position).unwrap_or(i64::MAX)));
    }
    let spec = format!(
        "# ddsas bench store\nworkers: {}\nseconds: {}\nruns: {}\nepochs: {}\nepoch_every_s: {}\nheartbeat_every_s: {}\n",
        plan.workers,
        plan.duration.as_secs_f64(),
        plan.runs,
        plan.epochs,
        plan.epoch_every.as_secs_f64(),
        plan.heartbeat_every.as_secs_f64()
    );
    let description = "simulated pull workers of `ddsas bench store` (no training)";
    store
        .register_sweep(
            &name,
            Some(description),
            "ddsas bench store",
            &spec,
            &members,
        )
        .await?;
    Ok(name)
}

/// Opens `workers` stores at once, as a job array's tasks would on
/// starting; a store that fails to open is an error of its own.
async fn connect_workers(
    location: &DbLocation,
    workers: usize,
) -> (Vec<Store>, BTreeMap<String, u64>) {
    let mut opening = JoinSet::new();
    for _ in 0..workers {
        let location = location.clone();
        opening.spawn(async move { Store::connect(&location).await });
    }
    let mut stores = Vec::with_capacity(workers);
    let mut errors = BTreeMap::new();
    while let Some(joined) = opening.join_next().await {
        match joined {
            Ok(Ok(store)) => stores.push(store),
            Ok(Err(e)) => *errors.entry(error_key("open", &e)).or_default() += 1,
            Err(e) => *errors.entry(format!("open: {e}")).or_default() += 1,
        }
    }
    (stores, errors)
}

/// Runs one worker per store until the deadline and collects their
/// tallies; a worker task that died is an error (its tally is lost).
async fn run_workers(
    stores: Vec<Store>,
    shared: &Arc<Shared>,
    errors: &mut BTreeMap<String, u64>,
) -> Vec<Tally> {
    let host = hostname();
    let pid = std::process::id();
    let mut running = JoinSet::new();
    for (index, store) in stores.into_iter().enumerate() {
        let worker = Worker {
            store,
            index,
            claim: Claim {
                owner: format!("load:{host}:{pid}:{index}"),
                device: "cpu".into(),
                pid: i64::from(pid),
                stale_after_s: None,
                ranks: crate::store::Ranks::ONE,
            },
            rng: ChaCha8Rng::seed_from_u64(index as u64),
            shared: shared.clone(),
            tally: Tally::default(),
        };
        running.spawn(worker.run());
    }
    let mut tallies = Vec::with_capacity(running.len());
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(tally) => tallies.push(tally),
            Err(e) => *errors.entry(format!("worker: {e}")).or_default() += 1,
        }
    }
    tallies
}

/// Marks the runs the deadline stopped interrupted, as workers at their
/// time limit do, so that the database shows where the test left them;
/// returns how many. Only once every worker has stopped: a run handed back
/// is claimable again, and a worker still claiming would take it, a second
/// claim that the check would rightly count. Errors go to `errors`.
async fn hand_back(store: &Store, runs: &[i64], errors: &mut BTreeMap<String, u64>) -> usize {
    let mut handed_back = 0;
    for &run in runs {
        match store.interrupt_run(run).await {
            Ok(()) => handed_back += 1,
            Err(e) => *errors.entry(error_key("hand back", &e)).or_default() += 1,
        }
    }
    handed_back
}

/// Shows the elapsed seconds and the counts so far until aborted.
async fn show_progress(bar: ProgressBar, shared: Arc<Shared>, start: Instant) {
    bar.set_length(shared.plan.duration.as_secs());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>6} [{bar:30}] {pos}/{len} s  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("load");
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        bar.set_position(
            start
                .elapsed()
                .as_secs()
                .min(shared.plan.duration.as_secs()),
        );
        let live = &shared.live;
        bar.set_message(format!(
            "{} claims, {} epochs, {} errors",
            live.claims.load(Ordering::Relaxed),
            live.epochs.load(Ordering::Relaxed),
            live.errors.load(Ordering::Relaxed)
        ));
    }
}

/// Checks the database against what the workers were told: each claimed
/// run claimed once (in memory, by `attempts`, and by its stored owner),
/// and every acknowledged epoch present.
async fn check_invariants(
    store: &Store,
    sweep: &str,
    tally: &Tally,
) -> Result<Invariants, StoreError> {
    let mut claimers: HashMap<i64, Vec<usize>> = HashMap::new();
    for &(run, worker) in &tally.claimed {
        claimers.entry(run).or_default().push(worker);
    }
    let host = hostname();
    let pid = std::process::id();
    let mut invariants = Invariants {
        claimed_twice: claimers.values().filter(|w| w.len() > 1).count(),
        acknowledged: tally.recorded.len(),
        ..Invariants::default()
    };
    for (_, row) in store.sweep_runs(sweep).await? {
        if row.attempts > 1 {
            invariants.attempted_twice += 1;
        }
        if let Some(&[worker]) = claimers.get(&row.id).map(Vec::as_slice) {
            let owner = format!("load:{host}:{pid}:{worker}");
            if row.owner.as_deref() != Some(owner.as_str()) {
                invariants.wrong_owner += 1;
            }
        }
    }
    let mut acknowledged: HashMap<i64, Vec<u32>> = HashMap::new();
    for &(run, epoch) in &tally.recorded {
        acknowledged.entry(run).or_default().push(epoch);
    }
    for (run, epochs) in acknowledged {
        let stored: HashSet<i64> = store.epochs(run).await?.iter().map(|e| e.epoch).collect();
        invariants.lost += epochs
            .iter()
            .filter(|&&e| !stored.contains(&i64::from(e)))
            .count();
    }
    Ok(invariants)
}

/// What every worker reads.
struct Shared {
    sweep: String,
    plan: LoadPlan,
    /// When workers stop claiming and writing.
    deadline: Instant,
    space: SearchSpace,
    live: LiveCounts,
}

/// Counts so far, for the progress bar.
#[derive(Debug, Default)]
struct LiveCounts {
    claims: AtomicU64,
    epochs: AtomicU64,
    errors: AtomicU64,
}

/// What one worker did, merged into one at the end.
#[derive(Debug, Default)]
struct Tally {
    /// (run, worker) of every successful claim.
    claimed: Vec<(i64, usize)>,
    claim_s: Vec<f64>,
    epoch_s: Vec<f64>,
    heartbeat_s: Vec<f64>,
    /// (run, epoch) of every epoch write that returned Ok.
    recorded: Vec<(i64, u32)>,
    finished: usize,
    /// Runs the deadline stopped, still `running`.
    unfinished: Vec<i64>,
    abandoned: usize,
    /// Workers that found nothing left to claim (0 or 1 per worker).
    ran_dry: usize,
    /// When the worker stopped claiming and writing (the latest, merged).
    stopped_at: Option<Instant>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    /// All workers' tallies as one; their errors go to `errors`.
    fn merge(tallies: Vec<Tally>, errors: &mut BTreeMap<String, u64>) -> Tally {
        let mut all = Tally::default();
        for t in tallies {
            all.claimed.extend(t.claimed);
            all.claim_s.extend(t.claim_s);
            all.epoch_s.extend(t.epoch_s);
            all.heartbeat_s.extend(t.heartbeat_s);
            all.recorded.extend(t.recorded);
            all.finished += t.finished;
            all.unfinished.extend(t.unfinished);
            all.abandoned += t.abandoned;
            all.ran_dry += t.ran_dry;
            all.stopped_at = all.stopped_at.max(t.stopped_at);
            for (error, count) in t.errors {
                *errors.entry(error).or_default() += count;
            }
        }
        all
    }
}

/// One simulated pull worker.
struct Worker {
    store: Store,
    index: usize,
    claim: Claim,
    rng: ChaCha8Rng,
    shared: Arc<Shared>,
    tally: Tally,
}

impl Worker {
    /// Claims and simulates runs until the deadline or until none is left.
    async fn run(mut self) -> Tally {
        while Instant::now() < self.shared.deadline {
            let started = Instant::now();
            match self.store.claim_next(&self.shared.sweep, &self.claim).await {
                Ok(Some(run)) => {
                    self.tally.claim_s.push(started.elapsed().as_secs_f64());
                    self.tally.claimed.push((run, self.index));
                    self.shared.live.claims.fetch_add(1, Ordering::Relaxed);
                    self.simulate_run(run).await;
                }
                Ok(None) => {
                    self.tally.ran_dry = 1;
                    break;
                }
                Err(e) => {
                    self.error("claim", &e);
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
        self.stop();
        self.store.close().await;
        self.tally
    }

    /// Writes a run's epochs at the plan's pace with heartbeats between
    /// them, then finishes it; stops at the deadline; gives it up
    /// after a failed epoch write (a real worker would fail it, and its
    /// retry would be a second claim).
    async fn simulate_run(&mut self, run: i64) {
        let mut due = Instant::now();
        let mut next_heartbeat = due + self.shared.plan.heartbeat_every;
        for epoch in 0..self.shared.plan.epochs {
            due += self.epoch_length();
            if !self.wait_until(run, due, &mut next_heartbeat).await {
                self.stop();
                self.tally.unfinished.push(run);
                return;
            }
            if !self.record(run, epoch).await {
                self.tally.abandoned += 1;
                return;
            }
        }
        self.finish(run).await;
    }

    /// The time from one epoch record to the next, jittered.
    fn epoch_length(&mut self) -> Duration {
        let every = self.shared.plan.epoch_every;
        if every.is_zero() {
            return every;
        }
        every.mul_f64(self.rng.gen_range(1.0 - EPOCH_JITTER..=1.0 + EPOCH_JITTER))
    }

    /// Heartbeats until `due`; false when the deadline comes first.
    async fn wait_until(&mut self, run: i64, due: Instant, next_heartbeat: &mut Instant) -> bool {
        let deadline = self.shared.deadline;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if now >= *next_heartbeat {
                self.heartbeat(run).await;
                *next_heartbeat = Instant::now() + self.shared.plan.heartbeat_every;
                continue;
            }
            if now >= due {
                return true;
            }
            tokio::time::sleep_until(due.min(*next_heartbeat).min(deadline)).await;
        }
    }

    async fn heartbeat(&mut self, run: i64) {
        let started = Instant::now();
        match self.store.heartbeat(run).await {
            Ok(()) => self.tally.heartbeat_s.push(started.elapsed().as_secs_f64()),
            Err(e) => self.error("heartbeat", &e),
        }
    }

    /// Writes epoch `epoch` of `run`; whether it was stored.
    async fn record(&mut self, run: i64, epoch: u32) -> bool {
        let record = simulated_record(epoch, self.shared.plan.epochs);
        let started = Instant::now();
        match self
            .store
            .record_epoch(run, EpochOf::Search(&self.shared.space, &record))
            .await
        {
            Ok(()) => {
                self.tally.epoch_s.push(started.elapsed().as_secs_f64());
                self.tally.recorded.push((run, epoch));
                self.shared.live.epochs.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.error("epoch write", &e);
                false
            }
        }
    }

    async fn finish(&mut self, run: i64) {
        let wall_s =
            self.shared.plan.epoch_every.as_secs_f64() * f64::from(self.shared.plan.epochs);
        match self
            .store
            .finish_run(
                run,
                RunResult::Search {
                    genotype: GENOTYPE,
                    final_valid_acc: 0.88,
                    wall_s,
                },
            )
            .await
        {
            Ok(()) => self.tally.finished += 1,
            Err(e) => self.error("finish", &e),
        }
    }

    /// Notes when this worker stopped working (the first time only).
    fn stop(&mut self) {
        self.tally.stopped_at.get_or_insert_with(Instant::now);
    }

    fn error(&mut self, operation: &str, e: &StoreError) {
        *self
            .tally
            .errors
            .entry(error_key(operation, e))
            .or_default() += 1;
        self.shared.live.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// An error as it is counted: the operation and the root cause, without
/// the run and epoch numbers of the outer message, so that one kind of
/// failure is one line however many runs it hit.
fn error_key(operation: &str, e: &StoreError) -> String {
    let cause = std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string());
    format!("{operation}: {cause}")
}

/// A full DARTS-space DDSAS epoch of a search of `epochs` epochs: 2 x 14 x
/// 8 sampling counts, two subspaces per cell type, a ratio histogram per
/// cell type, no per-step rows (`log_steps` is off by default).
fn simulated_record(epoch: u32, epochs: u32) -> EpochRecord {
    let progress = f64::from(epoch + 1) / f64::from(epochs.max(1));
    let mut sampling_counts = Vec::with_capacity(2 * 14 * 8);
    for cell in 0..2 {
        for edge in 0..14 {
            for op in 0..8 {
                sampling_counts.push(SamplingCount {
                    cell,
                    edge,
                    op,
                    count: u64::from(epoch + 1) * (op as u64 + edge as u64),
                });
            }
        }
    }
    let subspaces = (0..2u64)
        .flat_map(|i| {
            (0..2).map(move |cell| SubspaceRecord {
                iteration: u64::from(epoch) * 2 + i,
                cell,
                size: 28,
                combinations: 60 + i,
            })
        })
        .collect();
    EpochRecord {
        epoch,
        train_acc: 0.5 + 0.4 * progress,
        train_loss: 1.5 - progress,
        valid_acc: 0.45 + 0.4 * progress,
        valid_loss: 1.6 - progress,
        lr: 0.025,
        tau: None,
        genotype: GENOTYPE.to_owned(),
        skip_normal: 2,
        skip_reduce: Some(3),
        cosine_distance: (epoch > 0).then_some(0.1),
        wall_s: 216.0,
        images_per_s: 900.0,
        peak_mem_bytes: Some(1 << 30),
        sampling_counts,
        subspaces,
        ratio_hist: vec![[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]],
        steps: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(f64::from).collect());
        assert_eq!(l.count(), 100);
        assert_eq!(l.quantile(0.5), Some(50.0));
        assert_eq!(l.quantile(0.99), Some(99.0));
        assert_eq!(l.quantile(0.0), Some(1.0));
        assert_eq!(l.quantile(1.0), Some(100.0));
        assert_eq!(Latencies::default().quantile(0.5), None);
    }

    #[test]
    fn simulated_records_fit_the_darts_space() {
        let space = SearchSpace::new(SpaceKind::Darts);
        let record = simulated_record(3, 50);
        assert_eq!(
            record.sampling_counts.len(),
            2 * space.edges() * space.num_ops()
        );
        assert!(record
            .sampling_counts
            .iter()
            .all(|c| c.edge < space.edges() && c.op < space.num_ops()));
        assert!(simulated_config(50, 7).is_ok());
    }

    #[tokio::test]
    async fn a_short_load_on_a_sqlite_file_keeps_both_invariants() {
        let dir = tempfile::tempdir().unwrap();
        let location = DbLocation::File(dir.path().join("load.db"));
        let plan = LoadPlan {
            workers: 3,
            duration: Duration::from_secs(20),
            runs: 4,
            epochs: 3,
            epoch_every: Duration::ZERO,
            heartbeat_every: Duration::from_millis(100),
        };
        let report = run(&location, plan, ProgressBar::hidden()).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(report.invariants.hold(), "{:?}", report.invariants);
        // Four runs of three epochs: every run done, then nothing left to
        // claim, long before the deadline.
        assert_eq!((report.finished, report.ran_dry), (4, 3));
        assert_eq!(report.epoch_writes.count(), 12);
        assert_eq!(report.invariants.acknowledged, 12);
        assert!(report.size_after > report.size_before);
    }
}
