//! Registering a sweep and its runs, what `sweep run` and `sweep submit`
//! share before they hand the runs on (to the orchestrator here, to Slurm
//! job arrays there).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::exec::evaluate;
use crate::exec::sweep_run::SweepRun;
use crate::store::{RunStatus, Store};
use crate::sweep::Sweep;

/// What registering a sweep left to do.
pub(crate) struct Registered {
    /// The runs that are not done, in sweep order, then the trainings of
    /// searched cells that `evaluate:` asks for.
    pub todo: Vec<SweepRun>,
    /// Planned runs done before.
    pub done_before: usize,
    /// How many of `todo` are trainings `evaluate:` added.
    pub evaluations: usize,
}

/// Registers a sweep and its runs (what `sweep run` and `sweep submit`
/// share): kills the silent orphan workers of this host first (a frozen one
/// may hold SQLite's write lock), refuses to drop runs of a sweep of the
/// same name unless `replace`, registers every planned run, links them to
/// the sweep (clearing an earlier cancellation), and registers the
/// trainings `evaluate:` asks for of searches done before.
pub(crate) async fn register(
    store: &Store,
    sweep: &Sweep,
    replace: bool,
    stale_after: f64,
) -> anyhow::Result<Registered> {
    for line in crate::exec::orchestrator::reap_orphans(store, stale_after).await? {
        crate::outln!("{line}");
    }
    if !replace {
        refuse_dropping_runs(store, sweep).await?;
    }
    let mut links = Vec::with_capacity(sweep.runs.len());
    let mut todo = Vec::new();
    let mut done_before = 0;
    for run in &sweep.runs {
        let row = store.ensure_run(&run.cfg).await?;
        links.push((row.id, run.position as i64));
        if row.status == RunStatus::Done {
            done_before += 1;
        } else {
            todo.push(SweepRun {
                run_id: row.id,
                position: run.position,
                label: run.label(&sweep.columns),
                epochs: run.cfg.config().epochs,
                ranks: 1,
                backend: crate::config::train::DistBackend::Auto,
            });
        }
    }
    store
        .register_sweep(
            &sweep.name,
            sweep.description.as_deref(),
            &sweep.file,
            &sweep.text,
            &links,
        )
        .await?;
    // Searches done before this session: their cells' train runs (the
    // orchestrator queues those of searches that finish now).
    let mut evaluations = 0;
    if !sweep.evaluate.is_empty() {
        for (id, _) in &links {
            let Some(row) = store.run(*id).await? else {
                continue;
            };
            for run in evaluate::evaluations(store, &sweep.name, &sweep.evaluate, &row).await? {
                // A cell two searches found is one train run.
                if !todo.iter().any(|t: &SweepRun| t.run_id == run.run_id) {
                    evaluations += 1;
                    todo.push(run);
                }
            }
        }
    }
    Ok(Registered {
        todo,
        done_before,
        evaluations,
    })
}

/// ` (3 of them trainings of searched cells)`, or nothing.
pub(crate) fn evaluations_text(evaluations: usize) -> String {
    if evaluations > 0 {
        format!(" ({evaluations} of them trainings of searched cells)")
    } else {
        String::new()
    }
}

/// Downloads on first use, here and once, before any worker starts (the
/// lock keeps orchestrators that start together to one download).
pub(crate) async fn fetch_datasets(sweep: &Sweep) -> anyhow::Result<()> {
    let needs = datasets_to_fetch(sweep);
    if needs.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        needs.iter().try_for_each(|(kind, dir)| {
            crate::cli::data::fetch_if_missing(*kind, Some(dir), true, false)
        })
    })
    .await
    .context("fetching the sweep's datasets")?
}

/// The datasets and folders the sweep's runs (and its `evaluate:`) read
/// and may fetch on first use (`download: true`), each once.
fn datasets_to_fetch(sweep: &Sweep) -> Vec<(crate::data::DatasetKind, PathBuf)> {
    let mut needs = Vec::new();
    let mut add = |kind, dir: Option<&Path>, download: bool| {
        if let (true, Some(dir)) = (download, dir) {
            let need = (kind, dir.to_path_buf());
            if !needs.contains(&need) {
                needs.push(need);
            }
        }
    };
    for run in &sweep.runs {
        add(
            run.cfg.config().dataset,
            run.cfg.data_dir(),
            run.cfg.download(),
        );
    }
    for plan in sweep.evaluate.iter().filter(|p| p.own_data) {
        let probe = crate::config::train::TrainConfig {
            genotype: "darts_v2".into(),
            ..plan.config.clone()
        };
        if let Ok(cfg) = probe.resolve() {
            add(cfg.config().dataset, cfg.data_dir(), cfg.download());
        }
    }
    needs
}

/// A sweep's name is how figures and `runs list --sweep` find its runs, so
/// a file that reuses the name of another sweep must not silently take
/// runs out of it: adding runs (more seeds, a wider grid) is fine; leaving
/// some out needs `--replace` or another name.
async fn refuse_dropping_runs(store: &Store, sweep: &Sweep) -> anyhow::Result<()> {
    let Some(existing) = store.sweep(&sweep.name).await? else {
        return Ok(());
    };
    let planned: std::collections::HashSet<String> =
        sweep.runs.iter().map(|r| r.cfg.fingerprint()).collect();
    let dropped: Vec<i64> = store
        .sweep_runs(&sweep.name)
        .await?
        .into_iter()
        // Runs made under older definitions cannot be planned again; they
        // stay in the sweep, and in the database, and figures leave them out.
        .filter(|(_, row)| {
            !planned.contains(&row.fingerprint)
                && !row.outdated()
                && row.kind == crate::store::RunKind::Search
        })
        .map(|(_, row)| row.id)
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    bail!(
        "sweep `{}` (from {}) already holds {} that {} does not plan; give this file another `name:`, or pass --replace to make `{}` follow it (those runs stay in the database, in no sweep)",
        sweep.name,
        existing.file.as_deref().unwrap_or("another file"),
        crate::report::runs_text(&dropped),
        sweep.file,
        sweep.name
    )
}
