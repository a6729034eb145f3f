//! A sweep's `evaluate:`: the train runs of a finished search's
//! cell, registered once per fingerprint, linked to the search, made
//! members of the sweep, and handed back to be scheduled like searches.

use super::sweep_run::SweepRun;
use crate::arch::space::SpaceKind;
use crate::config::train::TrainConfig;
use crate::store::{RunKind, RunRow, RunStatus, Store};
use crate::sweep::Evaluate;

/// The train runs `plan` asks for the cell of `search`, which are not done
/// yet (to schedule). Registers, links and adds to `sweep` every one, done
/// or not. A search that is not a done DARTS-space search has none (NB201
/// cells take their accuracy from the benchmark table).
pub async fn evaluations(
    store: &Store,
    sweep: &str,
    plan: &Evaluate,
    search: &RunRow,
) -> anyhow::Result<Vec<SweepRun>> {
    let genotype = match (&search.final_genotype, search.status) {
        (Some(g), RunStatus::Done)
            if search.kind == RunKind::Search && search.space == SpaceKind::Darts =>
        {
            g
        }
        _ => return Ok(Vec::new()),
    };
    let searched: serde_json::Value = serde_json::from_str(&search.config_json)?;
    let mut todo = Vec::new();
    for &seed in &plan.seeds {
        let mut config = TrainConfig {
            genotype: genotype.clone(),
            seed,
            ..plan.config.clone()
        };
        if !plan.own_data {
            config.dataset = serde_json::from_value(searched["dataset"].clone())?;
            config.data_dir = searched["data_dir"].as_str().map(Into::into);
        }
        let cfg = config
            .resolve()
            .map_err(|e| anyhow::anyhow!("evaluating run {}: {e}", search.id))?;
        let row = store.ensure_train_run(&cfg).await?;
        store.link_evaluation(search.id, row.id).await?;
        store.add_to_sweep(sweep, row.id).await?;
        if row.status != RunStatus::Done {
            todo.push(SweepRun {
                run_id: row.id,
                position: usize::MAX,
                label: format!("train of run {} seed {seed}", search.id),
                epochs: cfg.config().epochs,
            });
        }
    }
    Ok(todo)
}
