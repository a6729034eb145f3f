//! `ddsas report` and `ddsas nb201`: figures and tables from the database.
//!
//! Thin: parse, open the database once, call `crate::report`, print what was
//! written and how long each figure took.

#![deny(missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use tokio::runtime::Runtime;

use crate::cli::DbArgs;
use crate::report::{self, fig10::Per, Options, Output, SweepData};
use crate::store::QueryError;

/// Report commands: each reads the runs of one sweep and writes under `--out`.
#[derive(Debug, clap::Subcommand)]
#[command(
    after_help = "Examples:\n  ddsas report all --sweep demo\n  ddsas report fig7 --sweep fig7_lm_grid --out figs/\n  ddsas report fig10 --sweep fig10_explore --per epoch\n  ddsas report fig8 --sweep demo --where \"M = 24 or method != 'ddsas'\"\n  ddsas report fig9 --sweep fig8_fig9_skip --run 12\n  ddsas report cells --sweep demo --top 2\n  ddsas report cells --run 12\n  ddsas report cells --genotype darts_v2 --out figs/"
)]
pub enum ReportCmd {
    /// Fig. 7: best accuracy of DDSAS over the L × M grid (heat map).
    Fig7(Fig7Args),
    /// Fig. 8: normal-cell skip count per epoch, mean ± std over seeds, per method.
    Fig8(FigArgs),
    /// Fig. 9: how often each (edge, op) was in a sampled subspace, per run (heat map).
    Fig9(Fig9Args),
    /// Fig. 10: cosine distance between adjacent steps or epochs, and accuracy.
    Fig10(Fig10Args),
    /// Fig. 12: combinations per sampled subspace and the ratio histogram.
    Fig12(FigArgs),
    /// Table 5: error with and without the approximation (Markdown, CSV, LaTeX).
    Table5(FigArgs),
    /// Test error of the trained cells, parameters and search cost per method (Markdown, CSV).
    Results(FigArgs),
    /// Fig. 11: the best searched cells of each setting as graphs (PNG + SVG per cell type).
    Cells(CellsArgs),
    /// Every figure the sweep's runs support, plus index.html.
    All(FigArgs),
}

/// Arguments every report takes.
#[derive(Debug, Clone, clap::Args)]
pub struct FigArgs {
    /// Sweep whose done runs are drawn.
    #[arg(long)]
    sweep: String,
    /// Output folder (default: reports/<sweep>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
    /// Also print each figure's caption (runs, seeds, metric).
    #[arg(long, short)]
    verbose: bool,
    /// Draw only the sweep's runs for which this SQL condition over the
    /// columns of `run_summary` holds, as `runs list --where` takes it
    /// (e.g. "L = 28 or method != 'ddsas'").
    #[arg(long = "where", value_name = "CONDITION")]
    condition: Option<String>,
    /// Stop the --where query after this many seconds (0: no limit), so
    /// that a runaway condition never hangs the command.
    #[arg(long, value_name = "SECS", default_value_t = super::CLI_QUERY_TIMEOUT)]
    query_timeout: u64,
}

/// Metric of Fig. 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    /// Test accuracy when every search drawn has its cell trained
    /// (`ddsas train --from-run`), else the final valid accuracy.
    #[value(name = "auto")]
    Auto,
    /// Final valid accuracy of the search (a proxy).
    #[value(name = "valid_acc")]
    ValidAcc,
    /// Test accuracy of the searched cell trained from scratch.
    #[value(name = "test_acc")]
    TestAcc,
}

/// `ddsas report fig7`.
#[derive(Debug, Clone, clap::Args)]
pub struct Fig7Args {
    #[command(flatten)]
    common: FigArgs,
    /// Accuracy drawn: the best over seeds of this final metric.
    #[arg(long, value_enum, default_value = "auto")]
    metric: Metric,
}

/// `ddsas report fig9`.
#[derive(Debug, Clone, clap::Args)]
pub struct Fig9Args {
    #[command(flatten)]
    common: FigArgs,
    /// Draw the counts of this one run (a done DDSAS run of the sweep)
    /// instead of the mean over the runs of each setting.
    #[arg(long, value_name = "ID")]
    run: Option<i64>,
}

/// `ddsas report cells`: a sweep's best cells, one run's, or a genotype's.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Which runs: per (dataset, space) and setting (the config keys that vary among the\nruns, as the other figures split them), the best by the test accuracy of the cell\ntrained from scratch where the search has a done train run (trained cells first),\nelse by the search's final valid accuracy. Files: cells_<run>_normal.png/.svg and\ncells_<run>_reduce.png/.svg (DARTS space), cells_<run>_cell.png/.svg (NB201; its\n`none` edges are not drawn, and the picture says which), and a JSON sidecar."
)]
pub struct CellsArgs {
    /// Sweep whose best runs are drawn (not needed with --run or --genotype).
    #[arg(long, required_unless_present_any = ["run", "genotype"])]
    sweep: Option<String>,
    /// Output folder (default: reports/<sweep>; reports/run<ID> for --run
    /// without --sweep; reports/cells for --genotype).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
    /// Also print the caption (which runs, by which metric).
    #[arg(long, short)]
    verbose: bool,
    /// Draw only the sweep's runs for which this SQL condition over the
    /// columns of `run_summary` holds, as `runs list --where` takes it.
    #[arg(long = "where", value_name = "CONDITION", requires = "sweep")]
    condition: Option<String>,
    /// Stop the --where query after this many seconds (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = super::CLI_QUERY_TIMEOUT)]
    query_timeout: u64,
    /// Draw this run's final genotype: a done search (of the sweep, with --sweep).
    #[arg(long, value_name = "ID", conflicts_with = "top")]
    run: Option<i64>,
    /// Draw the best K runs of each setting.
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    top: u32,
    /// Draw this genotype instead of runs: as `ddsas runs show` prints it,
    /// DARTS's `[NAME =] Genotype(...)`, an NB201 arch string, a published
    /// name (darts_v1, darts_v2, nasnet_a, amoebanet_a), a cell from the
    /// literature as `ddsas train` takes it, or `@FILE` / `@FILE:NAME` (a
    /// genotypes.py).
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["sweep", "run", "condition"])]
    genotype: Option<String>,
}

impl CellsArgs {
    /// Draws a run found by id or a genotype (no sweep): the database is
    /// read only for a run.
    fn run_alone(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        let start = Instant::now();
        let (fig, out) = match (&self.genotype, self.run) {
            (Some(text), _) => (
                report::cells::of_genotype(text)?,
                PathBuf::from("reports").join("cells"),
            ),
            (None, Some(id)) => {
                if !self.db.db.exists() {
                    anyhow::bail!(
                        "database {} does not exist: run searches first",
                        self.db.db.display()
                    );
                }
                let store = self.db.open(rt)?;
                let found = rt.block_on(store.report_run(id));
                rt.block_on(store.close());
                (
                    report::cells::of_run(id, found?.as_ref())?,
                    PathBuf::from("reports").join(format!("run{id}")),
                )
            }
            (None, None) => anyhow::bail!("give --sweep, --run or --genotype"),
        };
        let opts = Options {
            out: self.out.clone().unwrap_or(out),
            metric: "auto".into(),
            run: self.run,
            top: 1,
        };
        let made = vec![report::render_cells(&fig, &opts)?];
        print_summary(&made, self.verbose);
        print_total(made.len(), &opts.out, start);
        Ok(ExitCode::SUCCESS)
    }
}

/// The last line of a report: how many outputs, where, in how long.
fn print_total(outputs: usize, out: &std::path::Path, start: Instant) {
    crate::outln!(
        "{outputs} output(s) in {} ({:.2} s in all)",
        out.display(),
        start.elapsed().as_secs_f64()
    );
}

/// Granularity of Fig. 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PerArg {
    /// Adjacent steps (table `steps`; runs with `log_steps: true`).
    Step,
    /// Adjacent epochs.
    Epoch,
}

/// `ddsas report fig10`.
#[derive(Debug, Clone, clap::Args)]
pub struct Fig10Args {
    #[command(flatten)]
    common: FigArgs,
    /// Distance between adjacent steps (the paper's Fig. 10) or epochs (Fig. 5d).
    #[arg(long, value_enum, default_value = "step")]
    per: PerArg,
}

impl ReportCmd {
    /// Runs the command.
    pub fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        let (kind, args, opts) = match self.request() {
            Ok(request) => request,
            Err(cells) => return (*cells).run_alone(rt),
        };
        let start = Instant::now();
        if !args.db.db.exists() {
            anyhow::bail!(
                "database {} does not exist: run searches first, e.g. `ddsas sweep run sweeps/demo.yaml --db {}`",
                args.db.db.display(),
                args.db.db.display()
            );
        }
        let store = args.db.open(rt)?;
        let data = load_sweep(rt, &store, &args)?;
        let (made, skipped, index) = match kind {
            Some(kind) => (
                vec![rt.block_on(report::render(&store, &data, kind, &opts))?],
                Vec::new(),
                None,
            ),
            None => {
                let all = rt.block_on(report::render_all(&store, &data, &opts))?;
                (all.made, all.skipped, Some(all.index))
            }
        };
        rt.block_on(store.close());
        for out in &made {
            if let Some(text) = &out.printed {
                crate::outln!("{text}");
            }
        }
        print_summary(&made, args.verbose);
        for note in made.iter().filter_map(|out| out.note.as_ref()) {
            crate::outln!("{note}");
        }
        for (figure, why) in &skipped {
            crate::outln!("skipped {figure}: {why}");
        }
        if let Some(index) = index {
            crate::outln!("index: {}", index.display());
        }
        print_total(made.len(), &opts.out, start);
        Ok(ExitCode::SUCCESS)
    }

    /// Which figure (`None`: all), of which sweep, with which options; or
    /// the cells of a run or genotype drawn without a sweep.
    fn request(self) -> Result<(Option<report::Kind>, FigArgs, Options), Box<CellsArgs>> {
        let mut run = None;
        let mut top = 1;
        let (kind, args, metric) = match self {
            ReportCmd::Fig7(a) => (
                Some(&report::fig7::SPEC),
                a.common,
                match a.metric {
                    Metric::Auto => "auto",
                    Metric::ValidAcc => "valid_acc",
                    Metric::TestAcc => "test_acc",
                },
            ),
            ReportCmd::Fig8(a) => (Some(&report::fig8::SPEC), a, "auto"),
            ReportCmd::Fig9(a) => {
                run = a.run;
                (Some(&report::fig9::SPEC), a.common, "auto")
            }
            ReportCmd::Fig10(a) => (
                Some(
                    match a.per {
                        PerArg::Step => Per::Step,
                        PerArg::Epoch => Per::Epoch,
                    }
                    .kind(),
                ),
                a.common,
                "auto",
            ),
            ReportCmd::Fig12(a) => (Some(&report::fig12::SPEC), a, "auto"),
            ReportCmd::Table5(a) => (Some(&report::table5::SPEC), a, "auto"),
            ReportCmd::Results(a) => (Some(&report::results::SPEC), a, "auto"),
            ReportCmd::Cells(a) => {
                let Some(sweep) = a.sweep.clone() else {
                    return Err(Box::new(a));
                };
                run = a.run;
                top = a.top as usize;
                let common = FigArgs {
                    sweep,
                    out: a.out,
                    db: a.db,
                    verbose: a.verbose,
                    condition: a.condition,
                    query_timeout: a.query_timeout,
                };
                (Some(&report::cells::SPEC), common, "auto")
            }
            ReportCmd::All(a) => (None, a, "auto"),
        };
        let opts = Options {
            out: args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("reports").join(&args.sweep)),
            metric: metric.into(),
            run,
            top,
        };
        Ok((kind, args, opts))
    }
}

/// The sweep's runs, restricted by `--where` when it is given.
fn load_sweep(
    rt: &Runtime,
    store: &crate::store::Store,
    args: &FigArgs,
) -> anyhow::Result<SweepData> {
    let mut data = rt.block_on(SweepData::load(store, &args.db.db, &args.sweep))?;
    let Some(condition) = &args.condition else {
        return Ok(data);
    };
    let mut db = args.db.open_read_only(rt)?;
    rt.block_on(db.set_time_limit(super::query_limit(args.query_timeout)))?;
    let ids = match rt.block_on(db.sweep_runs_where(&args.sweep, condition)) {
        Ok(ids) => ids,
        Err(QueryError::Sql { message }) => anyhow::bail!(
            "bad --where clause `{condition}`: {message}\nthe clause is SQL over the columns of run_summary (`ddsas runs list --format csv` shows them)"
        ),
        Err(other) => return Err(other.into()),
    };
    data.restrict(&ids, condition)?;
    Ok(data)
}

fn print_summary(made: &[Output], verbose: bool) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["figure", "files", "size", "render"]);
    let name = |f: &PathBuf| {
        f.file_name().map_or_else(
            || f.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    for out in made {
        let files = if out.images.len() > 1 {
            // The cells: a PNG and an SVG per cell type of each run.
            let pictures: Vec<&PathBuf> = out.images.iter().map(|i| &i.png).collect();
            let rest: Vec<String> = out
                .files
                .iter()
                .filter(|f| !out.images.iter().any(|i| &i.png == *f || &i.svg == *f))
                .map(name)
                .collect();
            format!(
                "{} pictures (.png + .svg): {} … {}; {}",
                pictures.len(),
                name(pictures[0]),
                name(pictures[pictures.len() - 1]),
                rest.join(" ")
            )
        } else {
            out.files.iter().map(name).collect::<Vec<_>>().join(" ")
        };
        table.add_row(vec![
            out.kind.name.to_owned(),
            files,
            out.size.map_or("-".into(), |(w, h)| format!("{w}×{h}")),
            format!("{:.3} s", out.seconds),
        ]);
    }
    crate::outln!("{table}");
    if verbose {
        for out in made {
            crate::outln!("{}: {}\n  {}", out.kind.name, out.title, out.caption);
        }
    }
}

/// `ddsas nb201 ...`: NAS-Bench-201 benchmark tables.
#[derive(Debug, clap::Subcommand)]
pub enum Nb201Cmd {
    /// Import a NAS-Bench-201 accuracy table (NASLib's plain pickle,
    /// `{arch_str: {dataset: {'eval_acc1es': [...], ...}}}`) so that NB201
    /// figures show each derived architecture's benchmark accuracy.
    #[command(
        after_help = "Example:\n  ddsas nb201 import nb201_cifar10_full_training.pickle --dataset cifar10\n\nThe accuracy kept per architecture is the last element of `eval_acc1es` (the\nend of training), which is what NASLib's own query returns by default.\nFor --dataset cifar10 the entry `cifar10-valid` is read (as NASLib does),\nfalling back to `cifar10`."
    )]
    Import(Nb201ImportArgs),
}

/// `ddsas nb201 import`.
#[derive(Debug, Clone, clap::Args)]
pub struct Nb201ImportArgs {
    /// The pickle file (e.g. NASLib's nb201_cifar10_full_training.pickle).
    file: PathBuf,
    /// Benchmark dataset to read from the file.
    #[arg(long, value_parser = ["cifar10", "cifar100", "ImageNet16-120"])]
    dataset: String,
    #[command(flatten)]
    db: DbArgs,
}

impl Nb201Cmd {
    /// Runs the command.
    pub fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        match self {
            Nb201Cmd::Import(args) => {
                let start = Instant::now();
                let bytes = std::fs::read(&args.file)
                    .with_context(|| format!("reading {}", args.file.display()))?;
                let table =
                    report::nb201::read_table(&bytes, &args.dataset).with_context(|| {
                        format!("reading {} as a NAS-Bench-201 table", args.file.display())
                    })?;
                let store = args.db.open(rt)?;
                let source = args.file.display().to_string();
                let written =
                    rt.block_on(store.import_nb201(&args.dataset, &source, &table.rows))?;
                rt.block_on(store.close());
                crate::outln!(
                    "imported {written} NAS-Bench-201 {} accuracies (entry `{}`, {}) from {} into {} in {:.1} s",
                    args.dataset,
                    table.entry,
                    table.unit,
                    args.file.display(),
                    args.db.db.display(),
                    start.elapsed().as_secs_f64()
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
