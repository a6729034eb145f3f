//! A sweep's `evaluate:`: the train runs of a finished search's
//! cell, registered once per fingerprint, linked to the search, made
//! members of the sweep, and handed back to be scheduled like searches.

use super::sweep_run::SweepRun;
use super::ExecError;
use crate::arch::space::SpaceKind;
use crate::config::train::{ResolvedTrain, TrainConfig};
use crate::store::{RunKind, RunRow, RunStatus, Store};
use crate::sweep::Evaluate;

/// The train runs `plans` ask for the cell of `search` (each evaluation in
/// turn, e.g. on CIFAR-10, then transferred to ImageNet), which are not
/// done yet (to schedule). Registers, links and adds to `sweep` every one,
/// done or not. A search that is not a done DARTS-space search has none
/// (NB201 cells take their accuracy from the benchmark table).
pub async fn evaluations(
    store: &Store,
    sweep: &str,
    plans: &[Evaluate],
    search: &RunRow,
) -> Result<Vec<SweepRun>, ExecError> {
    let mut todo = Vec::new();
    for plan in plans {
        for run in evaluation(store, sweep, plan, search).await? {
            // Two evaluations of one config are one train run, in the
            // processes of the first that asks for it.
            if !todo.iter().any(|t: &SweepRun| t.run_id == run.run_id) {
                todo.push(run);
            }
        }
    }
    Ok(todo)
}

/// The train runs of one evaluation of `search`'s cell (see
/// [`evaluations`]).
async fn evaluation(
    store: &Store,
    sweep: &str,
    plan: &Evaluate,
    search: &RunRow,
) -> Result<Vec<SweepRun>, ExecError> {
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
        let cfg = config.resolve().map_err(|problem| ExecError::Evaluation {
            search: search.id,
            problem: Box::new(problem),
        })?;
        let row = store.ensure_train_run(&cfg).await?;
        store.link_evaluation(search.id, row.id).await?;
        store.add_to_sweep(sweep, row.id).await?;
        if row.status != RunStatus::Done {
            todo.push(SweepRun {
                run_id: row.id,
                position: usize::MAX,
                label: train_label(search.id, &cfg, plan, seed),
                epochs: cfg.config().epochs(),
                ranks: plan.nproc,
                backend: plan.config.dist_backend,
            });
        }
    }
    Ok(todo)
}

/// How the orchestrator names a training of search `search`'s cell: with
/// the dataset where the evaluation names its own (a transfer), so that
/// two evaluations of one cell are told apart.
fn train_label(search: i64, cfg: &ResolvedTrain, plan: &Evaluate, seed: u64) -> String {
    if plan.own_data {
        format!(
            "train of run {search} on {} seed {seed}",
            cfg.config().dataset.display_name()
        )
    } else {
        format!("train of run {search} seed {seed}")
    }
}
