//! `ddsas search`: one search from a config, recorded in the database, with
//! a progress bar per epoch, checkpoints, `--resume` and a clean Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use tokio::runtime::Runtime;

use crate::cli::{DbArgs, EXIT_INTERRUPTED};
use crate::config::{ResolvedConfig, SearchConfig};
use crate::exec::device::{device_name, parse_device, set_threads};
use crate::exec::process::{dead_search_owner, search_owner_id, watch_stop_signals};
use crate::exec::{default_checkpoint_dir, execute, Display, Job, RunEnd};
use crate::nas::search::SearchOutcome;
use crate::store::{Claim, RunStatus, Store};

/// Run one search.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ddsas search --set epochs=3 --set L=28 --set M=10\n  ddsas search --config search.yaml --device cuda:0 --db results.db\n  ddsas search --config search.yaml --resume\n  ddsas search --print-config > search.yaml     # a template with every key"
)]
pub struct SearchCmd {
    /// YAML search config; missing keys take the paper's defaults (`--print-config` lists every key).
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
    /// Print every config key with its value (after --config and --set)
    /// and what it means, as YAML that --config reads back; run nothing.
    #[arg(long)]
    print_config: bool,
}

impl SearchCmd {
    /// Runs the command.
    pub fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        let base = match &self.config {
            Some(path) => SearchConfig::from_yaml_file(path)?,
            None => SearchConfig::default(),
        };
        let merged = base.with_overrides(&self.overrides)?;
        if self.print_config {
            crate::outln!("{}", merged.commented_yaml().trim_end());
            return Ok(ExitCode::SUCCESS);
        }
        let cfg = merged.resolve()?;
        let device = parse_device(&self.device)?;
        set_threads(self.threads)?;
        let store = self.db.open(rt)?;
        let checkpoint_dir = self
            .checkpoint_dir
            .clone()
            .unwrap_or_else(|| default_checkpoint_dir(&self.db.db, &cfg));
        // A folder that cannot hold checkpoints is the machine's problem, not
        // the run's: said now, before the run is claimed and could fail.
        std::fs::create_dir_all(&checkpoint_dir).with_context(|| {
            format!(
                "cannot use {} for checkpoints; point --checkpoint-dir at a writable folder",
                checkpoint_dir.display()
            )
        })?;
        let run = rt.block_on(store.ensure_run(&cfg))?;
        if run.status == RunStatus::Done {
            crate::outln!(
                "run {} ({}) is already done: valid acc {:.2}%, genotype {}\n(a done config is never run again; change a key, e.g. the seed, for a new run)",
                run.id,
                run.fingerprint,
                100.0 * run.final_valid_acc.unwrap_or(f64::NAN),
                run.final_genotype.as_deref().unwrap_or("-")
            );
            return Ok(ExitCode::SUCCESS);
        }
        let claim = Claim {
            owner: search_owner_id(),
            device: device_name(device),
            pid: i64::from(std::process::id()),
            stale_after_s: Some(120.0),
        };
        if !rt.block_on(claim_or_take_over(&store, run.id, &claim))? {
            anyhow::bail!(
                "run {} is being run by {} (heartbeat within the last 2 minutes); wait for it or stop that process",
                run.id,
                run.owner.as_deref().unwrap_or("another process")
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        watch_stop_signals(rt, stop.clone(), "")?;
        let job = Job {
            run_id: run.id,
            cfg: &cfg,
            device,
            checkpoint_dir,
            resume: self.resume,
            stop,
            display: if self.quiet {
                Display::Quiet
            } else {
                Display::Bar
            },
        };
        match execute(rt, &store, job)? {
            RunEnd::Done(outcome) => {
                print_summary(run.id, &cfg, &outcome);
                Ok(ExitCode::SUCCESS)
            }
            RunEnd::Interrupted { epoch } => {
                crate::errln!("interrupted during epoch {}; run {} kept its finished epochs and checkpoint.\nresume with the same command plus --resume", epoch + 1, run.id);
                Ok(ExitCode::from(EXIT_INTERRUPTED))
            }
            RunEnd::Failed(message) => Err(anyhow::anyhow!("run {} failed: {message}", run.id)),
        }
    }
}

/// Claims the run, or takes it over from a `ddsas search` of this host that
/// died without releasing it (a crash, `kill -9`): waiting two minutes for
/// its heartbeat to go stale would only hold the user up.
pub(crate) async fn claim_or_take_over(
    store: &Store,
    id: i64,
    claim: &Claim,
) -> anyhow::Result<bool> {
    if store.claim_run(id, claim).await? {
        return Ok(true);
    }
    let Some(row) = store.run(id).await? else {
        return Ok(false);
    };
    if row.status != RunStatus::Running || !dead_search_owner(row.owner.as_deref()) {
        return Ok(false);
    }
    Ok(store
        .take_over_run(id, claim, row.owner.as_deref(), row.pid)
        .await?)
}

fn print_summary(run_id: i64, cfg: &ResolvedConfig, outcome: &SearchOutcome) {
    let c = cfg.config();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "run",
        "method",
        "space",
        "dataset",
        "L",
        "M",
        "epochs",
        "valid acc",
        "wall",
    ]);
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
    crate::outln!("{table}");
    crate::outln!("genotype: {}", outcome.genotype);
}
