//! `ddsas report` and `ddsas nb201`: figures and tables from the database (issue 4).
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
use crate::report::{self, fig10::Per, Kind, Options, Output, SweepData};
use crate::store::QueryError;

/// Report commands: each reads the runs of one sweep and writes under `--out`.
#[derive(Debug, clap::Subcommand)]
#[command(
    after_help = "Examples:\n  ddsas report all --sweep demo\n  ddsas report fig7 --sweep fig7_lm_grid --out figs/\n  ddsas report fig10 --sweep fig10_explore --per epoch\n  ddsas report fig8 --sweep demo --where \"M = 24 or method != 'ddsas'\"\n  ddsas report fig9 --sweep fig8_fig9_skip --run 12"
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
        let mut run = None;
        let (kind, args, metric) = match self {
            ReportCmd::Fig7(a) => (
                Some(Kind::Fig7),
                a.common,
                match a.metric {
                    Metric::Auto => "auto",
                    Metric::ValidAcc => "valid_acc",
                    Metric::TestAcc => "test_acc",
                },
            ),
            ReportCmd::Fig8(a) => (Some(Kind::Fig8), a, "auto"),
            ReportCmd::Fig9(a) => {
                run = a.run;
                (Some(Kind::Fig9), a.common, "auto")
            }
            ReportCmd::Fig10(a) => (
                Some(Kind::Fig10(match a.per {
                    PerArg::Step => Per::Step,
                    PerArg::Epoch => Per::Epoch,
                })),
                a.common,
                "auto",
            ),
            ReportCmd::Fig12(a) => (Some(Kind::Fig12), a, "auto"),
            ReportCmd::Table5(a) => (Some(Kind::Table5), a, "auto"),
            ReportCmd::Results(a) => (Some(Kind::Results), a, "auto"),
            ReportCmd::All(a) => (None, a, "auto"),
        };
        let opts = Options {
            out: args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("reports").join(&args.sweep)),
            metric: metric.into(),
            run,
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
        let mut data = rt.block_on(SweepData::load(&store, &args.db.db, &args.sweep))?;
        if let Some(condition) = &args.condition {
            let mut db = args.db.open_read_only(rt)?;
            let ids = rt.block_on(db.sweep_runs_where(&args.sweep, condition));
            let ids = match ids {
                Ok(ids) => ids,
                Err(QueryError::Sql { message }) => anyhow::bail!(
                    "bad --where clause `{condition}`: {message}\nthe clause is SQL over the columns of run_summary (`ddsas runs list --format csv` shows them)"
                ),
                Err(other) => return Err(other.into()),
            };
            data.restrict(&ids, condition)?;
        }
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
        for (figure, why) in &skipped {
            crate::outln!("skipped {figure}: {why}");
        }
        if let Some(index) = index {
            crate::outln!("index: {}", index.display());
        }
        crate::outln!(
            "{} output(s) in {} ({:.2} s in all)",
            made.len(),
            opts.out.display(),
            start.elapsed().as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    }
}

fn print_summary(made: &[Output], verbose: bool) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["figure", "files", "size", "render"]);
    for out in made {
        let files: Vec<String> = out
            .files
            .iter()
            .map(|f| {
                f.file_name().map_or_else(
                    || f.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect();
        table.add_row(vec![
            out.kind.name(),
            files.join(" "),
            out.size.map_or("-".into(), |(w, h)| format!("{w}×{h}")),
            format!("{:.3} s", out.seconds),
        ]);
    }
    crate::outln!("{table}");
    if verbose {
        for out in made {
            crate::outln!("{}: {}\n  {}", out.kind.name(), out.title, out.caption);
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
