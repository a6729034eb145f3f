//! What `ddsas search` runs (`engine` build only).

use crate::arch::space::SpaceKind;
use crate::config::{ResolvedConfig, SearchConfig};
use crate::exec::default_checkpoint_dir;
use crate::exec::search::Search;
use crate::nas::search::SearchOutcome;
use crate::store::{RunStatus, Store};
use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::process::ExitCode;
use tokio::runtime::Runtime;

use super::SearchCmd;
use crate::cli::launch::Launch;

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
        let data = (cfg.config().dataset, cfg.data_dir(), cfg.download());
        let (device, store) = self.job.set_up(rt, data)?;
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
        let launch = Launch {
            run: &run,
            cfg: &cfg,
            device,
            checkpoint_dir,
        };
        self.job
            .claim_and_execute::<Search>(rt, &store, launch, |outcome| {
                print_summary(run.id, &cfg, outcome);
                if cfg.config().space == SpaceKind::Nb201 {
                    crate::outln!("{}", rt.block_on(nb201_summary(&store, run.id))?);
                }
                Ok(())
            })
    }
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
