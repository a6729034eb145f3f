//! `ddsas search`: one search from a config, recorded in the database, with
//! a progress bar per epoch, checkpoints, `--resume` and a clean Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::runtime::Runtime;

use crate::cli::{device_name, parse_device, set_threads, DbArgs, EXIT_INTERRUPTED};
use crate::config::{ResolvedConfig, SearchConfig};
use crate::nas::metrics::EpochRecord;
use crate::nas::search::{self, Observer, SearchError, SearchOptions};
use crate::nas::space::SearchSpace;
use crate::store::{Claim, RunStatus, Store};

/// Run one search.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  ddsas search --set epochs=3 --set L=28 --set M=10\n  ddsas search --config search.yaml --device cuda:0 --db results.db\n  ddsas search --config search.yaml --resume")]
pub struct SearchCmd {
    /// YAML search config (keys as in DESIGN.md; missing keys take the paper's defaults).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override a config key, e.g. `--set L=42 --set dataset=cifar10`; values are YAML.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[command(flatten)]
    db: DbArgs,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Continue an interrupted or failed run from its last epoch checkpoint.
    #[arg(long)]
    resume: bool,
    /// Folder for epoch checkpoints (default: `checkpoints/<fingerprint>` beside the database).
    #[arg(long)]
    checkpoint_dir: Option<PathBuf>,
    /// CPU threads for libtorch (0: libtorch's default, all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print only the final summary.
    #[arg(long, short)]
    quiet: bool,
}

impl SearchCmd {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let base = match &self.config {
            Some(path) => SearchConfig::from_yaml_file(path)?,
            None => SearchConfig::default(),
        };
        let cfg = base.with_overrides(&self.overrides)?.resolve()?;
        let device = parse_device(&self.device)?;
        set_threads(self.threads);
        let rt = Runtime::new().context("starting the async runtime")?;
        let store = rt.block_on(Store::open(&self.db.db))?;
        let run = rt.block_on(store.ensure_run(&cfg))?;
        if run.status == RunStatus::Done {
            println!(
                "run {} ({}) is already done: valid acc {:.2}%, genotype {}\n(a done config is never run again; change a key, e.g. the seed, for a new run)",
                run.id,
                run.fingerprint,
                100.0 * run.final_valid_acc.unwrap_or(f64::NAN),
                run.final_genotype.as_deref().unwrap_or("-")
            );
            return Ok(ExitCode::SUCCESS);
        }
        let claim = Claim {
            owner: format!("search:{}", std::process::id()),
            device: device_name(device),
            pid: i64::from(std::process::id()),
            stale_after_s: Some(120.0),
        };
        if !rt.block_on(store.claim_run(run.id, &claim))? {
            anyhow::bail!(
                "run {} is being run by {} (heartbeat within the last 2 minutes); wait for it or stop that process",
                run.id,
                run.owner.as_deref().unwrap_or("another process")
            );
        }
        let checkpoint_dir = self.checkpoint_dir.clone().unwrap_or_else(|| default_checkpoint_dir(&self.db.db, &cfg));
        rt.block_on(store.set_checkpoint_path(run.id, &checkpoint_dir.display().to_string()))?;
        if !self.resume {
            // A fresh start must not mix with an older attempt's epochs.
            let _ = std::fs::remove_dir_all(&checkpoint_dir);
            rt.block_on(store.truncate_after(run.id, None))?;
        } else {
            let kept = checkpoint_epoch(&checkpoint_dir);
            rt.block_on(store.truncate_after(run.id, kept))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
        let mut observer = CliObserver::new(&rt, &store, run.id, &cfg, stop, self.quiet);
        let opts = SearchOptions {
            device,
            checkpoint_dir: Some(checkpoint_dir),
            resume: self.resume,
        };
        let result = search::run(&cfg, &opts, &mut observer);
        observer.finish();
        match result {
            Ok(outcome) => {
                rt.block_on(store.finish_run(run.id, &outcome.genotype, outcome.final_valid_acc, outcome.wall_s))?;
                print_summary(run.id, &cfg, &outcome);
                Ok(ExitCode::SUCCESS)
            }
            Err(SearchError::Interrupted { epoch }) => {
                rt.block_on(store.interrupt_run(run.id))?;
                eprintln!("interrupted during epoch {epoch}; run {} kept its finished epochs and checkpoint.\nresume with the same command plus --resume", run.id);
                Ok(ExitCode::from(EXIT_INTERRUPTED))
            }
            Err(err) => {
                let message = err.to_string();
                rt.block_on(store.fail_run(run.id, &message))?;
                Err(anyhow::anyhow!("run {} failed: {message}", run.id))
            }
        }
    }
}

/// `checkpoints/<fingerprint>` in the database's folder.
pub fn default_checkpoint_dir(db: &Path, cfg: &ResolvedConfig) -> PathBuf {
    let parent = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join("checkpoints").join(cfg.fingerprint())
}

/// Last epoch a checkpoint folder holds, if any (cheap: reads state.json).
pub fn checkpoint_epoch(dir: &Path) -> Option<u32> {
    let text = std::fs::read(dir.join("state.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    value.get("epoch")?.as_u64().map(|e| e as u32)
}

fn print_summary(run_id: i64, cfg: &ResolvedConfig, outcome: &search::SearchOutcome) {
    let c = &cfg.config;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["run", "method", "space", "dataset", "L", "M", "epochs", "valid acc", "wall"]);
    let (l, m) = match c.method {
        crate::config::Method::Ddsas => (c.L.to_string(), c.M.to_string()),
        _ => ("-".into(), "-".into()),
    };
    table.add_row(vec![
        run_id.to_string(),
        c.method.name().into(),
        c.space.name().into(),
        c.dataset.name().into(),
        l,
        m,
        c.epochs.to_string(),
        format!("{:.2}%", 100.0 * outcome.final_valid_acc),
        format!("{:.1} s", outcome.wall_s),
    ]);
    println!("{table}");
    println!("genotype: {}", outcome.genotype);
}

/// Stores each epoch and shows progress.
struct CliObserver<'a> {
    rt: &'a Runtime,
    store: &'a Store,
    run_id: i64,
    space: SearchSpace,
    epochs: u32,
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    quiet: bool,
}

impl<'a> CliObserver<'a> {
    fn new(rt: &'a Runtime, store: &'a Store, run_id: i64, cfg: &ResolvedConfig, stop: Arc<AtomicBool>, quiet: bool) -> Self {
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} steps  {msg}  {per_sec} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        CliObserver {
            rt,
            store,
            run_id,
            space: SearchSpace::new(cfg.config.space),
            epochs: cfg.config.epochs,
            bar,
            stop,
            quiet,
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for CliObserver<'_> {
    fn started(&mut self, first_epoch: u32, epochs: u32, steps: usize) {
        if first_epoch > 0 && !self.quiet {
            eprintln!("resuming at epoch {first_epoch} of {epochs}");
        }
        self.bar.set_length(steps as u64);
    }

    fn step(&mut self, epoch: u32, step: usize, running: Option<(f64, f64)>) {
        if step == 1 {
            self.bar.reset();
            self.bar.set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
            if self.rt.block_on(self.store.heartbeat(self.run_id)).is_err() {
                tracing::warn!("heartbeat of run {} failed", self.run_id);
            }
        }
        if let Some((loss, acc)) = running {
            self.bar.set_message(format!("loss {loss:.3} acc {:.1}%", 100.0 * acc));
        }
        self.bar.set_position(step as u64);
    }

    fn epoch(&mut self, r: &EpochRecord) -> anyhow::Result<()> {
        self.rt.block_on(self.store.record_epoch(self.run_id, &self.space, r))?;
        if !self.quiet {
            let skip = match r.skip_reduce {
                Some(reduce) => format!("{}/{}", r.skip_normal, reduce),
                None => r.skip_normal.to_string(),
            };
            self.bar.suspend(|| {
                println!(
                    "epoch {:>3}/{}  train {:5.1}% ({:.3})  valid {:5.1}% ({:.3})  lr {:.4}  skip {skip}  {:6.1} s  {:7.0} img/s",
                    r.epoch + 1,
                    self.epochs,
                    100.0 * r.train_acc,
                    r.train_loss,
                    100.0 * r.valid_acc,
                    r.valid_loss,
                    r.lr,
                    r.wall_s,
                    r.images_per_s
                )
            });
        }
        Ok(())
    }

    fn should_stop(&mut self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
