//! What `ddsas search` runs (`engine` build only).

use std::process::ExitCode;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use tokio::runtime::Runtime;

use super::SearchCmd;
use crate::arch::space::SpaceKind;
use crate::cli::EXIT_INTERRUPTED;
use crate::config::{ResolvedConfig, SearchConfig};
use crate::exec::device::{device_name, parse_device, set_threads};
use crate::exec::process::{dead_search_owner, search_owner_id};
use crate::exec::{default_checkpoint_dir, execute, RunEnd, EXIT_NO_SPACE};
use crate::nas::search::{interrupted_text, SearchOutcome};
use crate::store::{Claim, RunStatus, Store};

impl SearchCmd {
    /// Runs the command.
    pub fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        let base = match &self.job.config {
            Some(path) => SearchConfig::from_yaml_file(path)?,
            None => SearchConfig::default(),
        };
        let merged = base.with_overrides(&self.job.overrides)?;
        if self.job.print_config {
            crate::outln!("{}", merged.commented_yaml().trim_end());
            return Ok(ExitCode::SUCCESS);
        }
        let cfg = merged.resolve()?;
        let device = parse_device(&self.job.device)?;
        crate::cli::data::fetch_if_missing(
            cfg.config().dataset,
            cfg.data_dir(),
            cfg.download(),
            self.job.quiet,
        )?;
        set_threads(self.job.threads)?;
        let store = self.job.db.open(rt)?;
        let checkpoint_dir = self
            .job
            .checkpoint_dir
            .clone()
            .unwrap_or_else(|| default_checkpoint_dir(&self.job.db.db, &cfg));
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
            let genotype = run.final_genotype.as_deref().unwrap_or("-");
            let acc = 100.0 * run.final_valid_acc.unwrap_or(f64::NAN);
            crate::cli::say_already_done(
                "run",
                &run,
                &format!("valid acc {acc:.2}%, genotype {genotype}"),
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
        let job = self.job.job(rt, run.id, &cfg, device, checkpoint_dir)?;
        match execute(rt, &store, job)? {
            RunEnd::Done(outcome) => {
                print_summary(run.id, &cfg, &outcome);
                if cfg.config().space == SpaceKind::Nb201 {
                    crate::outln!("{}", rt.block_on(nb201_summary(&store, run.id))?);
                }
                Ok(ExitCode::SUCCESS)
            }
            RunEnd::Interrupted { epoch, step } => {
                crate::errln!("run {}: {}; its finished epochs are stored.\nresume with the same command plus --resume", run.id, interrupted_text(epoch, step));
                Ok(ExitCode::from(EXIT_INTERRUPTED))
            }
            RunEnd::NoSpace(message) => {
                crate::errln!("error: run {} stopped: {message}\nit is `interrupted`: once space is freed, resume with the same command plus --resume", run.id);
                Ok(ExitCode::from(EXIT_NO_SPACE))
            }
            RunEnd::Failed(message) => Err(anyhow::anyhow!("run {} failed: {message}", run.id)),
        }
    }
}

/// Claims the run, or takes it over from a `ddsas search` of this host that
/// died without releasing it (a crash, `kill -9`): waiting two minutes for
/// its heartbeat to go stale would only hold the user up. This process runs
/// the run itself, so a claim it gets is confirmed at once as its next
/// attempt.
pub(crate) async fn claim_or_take_over(
    store: &Store,
    id: i64,
    claim: &Claim,
) -> anyhow::Result<bool> {
    let claimed =
        store.claim_run(id, claim).await? || take_over_dead_search(store, id, claim).await?;
    if !claimed {
        return Ok(false);
    }
    let attempt = store.run(id).await?.map_or(0, |row| row.attempts) + 1;
    Ok(store
        .confirm_claim(id, &claim.owner, claim.pid, attempt)
        .await?)
}

/// Takes the run over when a dead `ddsas search` of this host holds it.
async fn take_over_dead_search(store: &Store, id: i64, claim: &Claim) -> anyhow::Result<bool> {
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

/// The benchmark test accuracy of a finished NB201 run's architecture, or
/// what to do when no table has been imported to look it up in.
async fn nb201_summary(store: &Store, run_id: i64) -> anyhow::Result<String> {
    let imported = store.nb201_imported().await?;
    if imported.is_empty() {
        return Ok("NAS-Bench-201: no benchmark table imported, so the test accuracy of this architecture is not known yet; `ddsas nb201 import FILE --dataset cifar10` (and cifar100, ImageNet16-120) adds it, for this run and every earlier one".into());
    }
    let acc = store.nb201_of_run(run_id).await?;
    let parts: Vec<String> = acc
        .by_dataset()
        .iter()
        .map(|(dataset, value)| match value {
            Some(v) => format!("{dataset} {v:.2}%"),
            None if imported.contains(dataset) => format!("{dataset} (not in the table)"),
            None => format!("{dataset} (no table imported)"),
        })
        .collect();
    Ok(format!("NAS-Bench-201 test accuracy: {}", parts.join(", ")))
}
