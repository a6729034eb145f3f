//! Table 5 (appendix A.1): error of DDSAS with and without the
//! approximation, mean ± std over seeds, per dataset — as Markdown, CSV,
//! LaTeX and JSON, and printed.
//!
//! Like with like: runs are compared only within a group whose configs
//! differ in nothing but the seed and the approximation, and only groups
//! that have both variants make a column. Error = 100 − accuracy (%). The
//! accuracy is the paper's, the test accuracy of the searched cell trained
//! from scratch (a sweep's `evaluate:` or `ddsas train --from-run`; the
//! trainings of one train config, `report::trainings`), when every search
//! in the table has one; otherwise the search's final valid accuracy, a
//! proxy that every output names as such, with how many searches lack a
//! trained cell.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

use super::data::{config_key, Group, Lm, SweepData};
use super::escape::{self, csv_field};
use super::labels::{dataset_label, runs_text, space_label};
use super::stats::mean_std;
use super::trainings::Choice;
use super::{drawn_table, write_table, Options, Output, ReportError, Spec, TableFiles};
use crate::arch::space::SpaceKind;
use crate::config::Method;
use crate::data::DatasetKind;
use crate::store::ReportRun;

/// File name of its outputs, without extension.
pub const STEM: &str = "table5";

/// Table 5 in the report's table of figures.
pub static SPEC: Spec = Spec {
    name: "table5",
    figure: "table5",
    stem: STEM,
    extensions: &["md", "csv", "tex", "json"],
    tables: &[],
    page: Some("table5"),
    is_table: true,
    make: |data, opts| write(&compute(data)?, opts),
    draw: |data, _| Ok(drawn_table(files(&compute(data)?))),
    remove_more: None,
};
/// The paper's sweep for this table.
pub const PAPER_SWEEP: &str = "sweeps/table5_approximation.yaml";
/// Config keys that do not make two runs different configs here.
const NOT_CONFIG: [&str; 4] = ["seed", "approximation", "log_steps", "data_dir"];
/// Which error the table shows: the paper's (test error of the cell
/// trained from scratch) when every search in it has an evaluation, else
/// the search's own valid error, labelled as a proxy.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// Test error after training, under the train config in `words`
    /// ("test accuracy after training ... under ...").
    Test {
        /// What the accuracy is, in words (`Choice::test_words`).
        words: String,
    },
    /// 100 − final valid accuracy of the search.
    Proxy {
        /// Searches of the table that have an evaluation.
        evaluated: usize,
        /// Searches of the table.
        total: usize,
        /// Why cells that were trained give no test error, if they do not.
        ambiguity: Option<String>,
    },
}

impl Source {
    /// Test error when every run has one, else the proxy.
    fn of(runs: &[&ReportRun], training: &Choice) -> Source {
        let evaluated = runs.iter().filter(|r| r.test_acc.is_some()).count();
        match training.test_words() {
            Some(words) if evaluated == runs.len() && !runs.is_empty() => Source::Test { words },
            _ => Source::Proxy {
                evaluated,
                total: runs.len(),
                ambiguity: training.ambiguity(),
            },
        }
    }

    /// The accuracy of a run this table reads.
    fn accuracy(&self, run: &ReportRun) -> f64 {
        match self {
            Source::Test { .. } => run.test_acc,
            Source::Proxy { .. } => run.valid_acc,
        }
        .unwrap_or(f64::NAN)
    }

    /// What the CSV's `metric` column says.
    fn csv_metric(&self) -> String {
        match self {
            Source::Test { words } => format!("100 - {words} (%)"),
            Source::Proxy { .. } => {
                "100 - final search valid accuracy (%); not the test error of a trained cell".into()
            }
        }
    }

    /// What the JSON's `metric` says.
    fn json_metric(&self) -> String {
        match self {
            Source::Test { words } => format!("error_pct = 100 * (1 - {words})"),
            Source::Proxy { .. } => "error_pct = 100 * (1 - final valid accuracy)".into(),
        }
    }

    /// The sentence every caption carries.
    fn note(&self) -> String {
        let stats = "Mean ± population std (ddof = 0) over seeds.";
        match self {
            Source::Test { words } => format!(
                "Error = 100 − {words} (%), as the paper reports it. {stats}"
            ),
            Source::Proxy {
                ambiguity: Some(why),
                ..
            } => format!(
                "Error = 100 − final valid accuracy of the search (%), a proxy: {why}; so this is not the paper's test error. {stats}"
            ),
            Source::Proxy { evaluated: 0, .. } => format!(
                "Error = 100 − final valid accuracy of the search (%), a proxy: no search here has an evaluation yet (`ddsas train --from-run ID` trains one), so this is not the paper's test error. {stats}"
            ),
            Source::Proxy {
                evaluated, total, ..
            } => format!(
                "Error = 100 − final valid accuracy of the search (%), a proxy: only {evaluated} of the {total} searches here have an evaluation under one train config (`ddsas train --from-run ID` trains the rest), so this is not the paper's test error. {stats}"
            ),
        }
    }
}
/// What a sweep lacks that has no column.
const MISSING: &str =
    "has no DDSAS config that was run (and done) both with and without the approximation";
/// The row names, without and with the approximation.
const ROWS: [&str; 2] = ["w/o approximation", "w/ approximation"];

/// Table 5's numbers (its JSON) and captions.
#[derive(Debug, Clone, Serialize)]
pub struct Table5 {
    table: &'static str,
    /// Sweep name.
    pub sweep: String,
    metric: String,
    std: &'static str,
    /// The CSV's `metric` column.
    #[serde(skip)]
    csv_metric: String,
    /// Which error this is, in words (every caption carries it).
    #[serde(skip)]
    error_note: String,
    /// One per config that has both variants.
    pub columns: Vec<Column>,
    /// The table's caption.
    #[serde(skip)]
    pub caption: String,
    /// The runs of every column, in words.
    #[serde(skip)]
    pub runs_line: String,
    /// What `--where` picked and which runs are left out.
    #[serde(skip)]
    pub note: String,
}

/// One column: a dataset (and config) with both variants.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// Dataset and space.
    #[serde(flatten)]
    pub group: Group,
    /// The column header: the dataset, with the config if needed.
    pub header: String,
    /// The config's L and M.
    #[serde(flatten)]
    pub config: Lm<Option<i64>>,
    /// Without the approximation.
    pub without: Variant,
    /// With the approximation.
    pub with: Variant,
}

/// One variant (with or without the approximation) of a column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// Run ids.
    pub runs: Vec<i64>,
    /// Their seeds.
    pub seeds: Vec<i64>,
    /// Their errors, in percent.
    pub errors: Vec<f64>,
    /// Mean error.
    pub mean: f64,
    /// Population std of the error.
    pub std: f64,
}

impl Variant {
    fn new(runs: &[&ReportRun], source: &Source) -> Variant {
        let errors: Vec<f64> = runs
            .iter()
            .map(|r| 100.0 * (1.0 - source.accuracy(r)))
            .collect();
        let (mean, std) = mean_std(&errors);
        Variant {
            runs: runs.iter().map(|r| r.id).collect(),
            seeds: runs.iter().map(|r| r.seed).collect(),
            errors,
            mean,
            std,
        }
    }

    /// "4.31 ± 0.14 (n = 2)".
    fn cell(&self) -> String {
        format!(
            "{:.2} ± {:.2} (n = {})",
            self.mean,
            self.std,
            self.errors.len()
        )
    }

    /// "$4.31 \pm 0.14$".
    fn tex(&self) -> String {
        format!("${:.2} \\pm {:.2}$", self.mean, self.std)
    }
}

/// Where a dataset's columns go: the paper's datasets in its order, then
/// any other.
fn dataset_rank(d: DatasetKind) -> usize {
    match d {
        DatasetKind::Digits => 0,
        DatasetKind::Cifar10 => 1,
        DatasetKind::Cifar100 => 2,
        DatasetKind::ImageNet => 3,
    }
}

/// The DDSAS runs with a final accuracy, by config without the seed and
/// the approximation: `(without, with)`.
fn groups(data: &SweepData) -> BTreeMap<String, (Vec<&ReportRun>, Vec<&ReportRun>)> {
    let mut groups: BTreeMap<String, (Vec<&ReportRun>, Vec<&ReportRun>)> = BTreeMap::new();
    for run in data
        .with_method(Method::Ddsas)
        .filter(|r| r.valid_acc.is_some())
    {
        let entry = groups.entry(config_key(run, &NOT_CONFIG)).or_default();
        match run.approximation {
            Some(0) => entry.0.push(run),
            _ => entry.1.push(run),
        }
    }
    groups
}

/// Table 5 of `data`.
pub fn compute(data: &SweepData) -> Result<Table5, ReportError> {
    let groups = groups(data);
    let paired: Vec<&(Vec<&ReportRun>, Vec<&ReportRun>)> = groups
        .values()
        .filter(|(without, with)| !without.is_empty() && !with.is_empty())
        .collect();
    let all: Vec<&ReportRun> = paired
        .iter()
        .flat_map(|(without, with)| without.iter().chain(with).copied())
        .collect();
    let source = Source::of(&all, &data.training);
    let mut columns: Vec<Column> = paired
        .into_iter()
        .map(|(without, with)| Column {
            group: Group::of(with[0]),
            config: Lm {
                l: with[0].l,
                m: with[0].m,
            },
            header: String::new(),
            without: Variant::new(without, &source),
            with: Variant::new(with, &source),
        })
        .collect();
    if columns.is_empty() {
        return Err(data.cannot("table5", MISSING, PAPER_SWEEP));
    }
    columns.sort_by_key(|c| {
        let first = c.with.runs.first().copied();
        (
            dataset_rank(c.group.dataset),
            c.group.space.name(),
            c.config,
            first,
        )
    });
    name_columns(&mut columns);
    let runs_line = columns
        .iter()
        .map(|c| {
            format!(
                "{}: w/o {}, w/ {}",
                c.header.trim_end_matches(" (%)"),
                runs_text(&c.without.runs),
                runs_text(&c.with.runs)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Table5 {
        table: "table5",
        sweep: data.name.clone(),
        metric: source.json_metric(),
        std: "population (ddof = 0)",
        csv_metric: source.csv_metric(),
        error_note: source.note(),
        columns,
        caption: format!(
            "Table 5: error of DDSAS without and with the approximation (sweep {}). {}",
            data.name,
            source.note()
        ),
        runs_line,
        note: data.not_done_note(),
    })
}

/// Headers: the dataset alone where it has one DARTS-space column, else
/// with the space, L and M.
fn name_columns(columns: &mut [Column]) {
    let mut per_dataset: BTreeMap<DatasetKind, usize> = BTreeMap::new();
    for c in columns.iter() {
        *per_dataset.entry(c.group.dataset).or_insert(0) += 1;
    }
    for c in columns.iter_mut() {
        let Group { dataset, space } = c.group;
        c.header = if per_dataset.get(&dataset) == Some(&1) && space == SpaceKind::Darts {
            format!("{} (%)", dataset_label(dataset))
        } else {
            format!(
                "{}, {}, L = {}, M = {} (%)",
                dataset_label(dataset),
                space_label(space),
                c.config.l.unwrap_or_default(),
                c.config.m.unwrap_or_default()
            )
        };
    }
}

impl Table5 {
    /// The header row (`Method` and each column's header, through `head`)
    /// and a row per variant (its name and each column's variant, through
    /// `cell`): what every format lays out.
    fn grid(
        &self,
        head: impl Fn(&str) -> String,
        cell: impl Fn(&Variant) -> String,
    ) -> [Vec<String>; 3] {
        let row = |name: &str, pick: fn(&Column) -> &Variant| {
            let mut row = vec![name.to_string()];
            row.extend(self.columns.iter().map(|c| cell(pick(c))));
            row
        };
        let mut header = vec!["Method".to_string()];
        header.extend(self.columns.iter().map(|c| head(&c.header)));
        [
            header,
            row(ROWS[0], |c| &c.without),
            row(ROWS[1], |c| &c.with),
        ]
    }

    /// The Markdown table under its caption, with the runs.
    pub fn markdown(&self) -> String {
        let [header, without, with] = self.grid(str::to_string, Variant::cell);
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        format!(
            "**{}**\n\n{}\n|---|{}\n{}\n{}\n\nRuns: {}.\n",
            self.caption,
            line(&header),
            "---|".repeat(self.columns.len()),
            line(&without),
            line(&with),
            self.runs_line
        )
    }

    /// One CSV row per (column, variant), the metric named in each.
    pub fn csv(&self) -> String {
        let mut csv = String::from(
            "dataset,space,L,M,approximation,metric,n,seeds,mean_error_pct,std_error_pct,runs\n",
        );
        let words = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
        for c in &self.columns {
            for (approx, v) in [(false, &c.without), (true, &c.with)] {
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{},{},{},{},{:.6},{:.6},{}",
                    csv_field(c.group.dataset.name()),
                    csv_field(c.group.space.name()),
                    c.config.l.map_or(String::new(), |v| v.to_string()),
                    c.config.m.map_or(String::new(), |v| v.to_string()),
                    approx,
                    csv_field(&self.csv_metric),
                    v.errors.len(),
                    csv_field(&words(&v.seeds)),
                    v.mean,
                    v.std,
                    csv_field(&words(&v.runs)),
                );
            }
        }
        csv
    }

    /// A LaTeX `table` environment with the caption.
    pub fn tex(&self) -> String {
        let [header, without, with] = self.grid(|h| h.replace('%', "\\%"), Variant::tex);
        let caption = self
            .caption
            .trim_start_matches("Table 5: ")
            .replace('%', "\\%")
            .replace('±', "$\\pm$")
            .replace('−', "$-$")
            .replace('_', "\\_");
        format!(
            "\\begin{{table}}[t]\n\\centering\n\\begin{{tabular}}{{l{}}}\n\\hline\n{} \\\\\n\\hline\n{} \\\\\n{} \\\\\n\\hline\n\\end{{tabular}}\n\\caption{{{caption}}}\n\\label{{tab:approximation}}\n\\end{{table}}\n",
            "c".repeat(self.columns.len()),
            header.join(" & "),
            without.join(" & "),
            with.join(" & "),
        )
    }

    /// The table as printed on the terminal, with caption and runs.
    pub fn printed(&self) -> String {
        let [header, without, with] = self.grid(str::to_string, Variant::cell);
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(header);
        table.add_row(without);
        table.add_row(with);
        format!("{}\n{table}\nRuns: {}.", self.caption, self.runs_line)
    }

    /// The table as an HTML fragment for `index.html`.
    pub fn html(&self) -> String {
        let [header, without, with] = self.grid(escape::html, |v| escape::html(&v.cell()));
        let row = |tag: &str, cells: &[String]| {
            let cells: String = cells
                .iter()
                .map(|c| format!("<{tag}>{c}</{tag}>"))
                .collect();
            format!("<tr>{cells}</tr>\n")
        };
        format!(
            "<table>\n{}{}{}</table>\n",
            row("th", &header),
            row("td", &without),
            row("td", &with)
        )
    }
}

/// Writes Table 5 as Markdown, CSV, LaTeX and JSON under `opts.out`.
pub fn write(table: &Table5, opts: &Options) -> Result<Output, ReportError> {
    write_table(files(table), opts)
}

/// Table 5's title, caption and texts (the files, the index's and the
/// served page's HTML).
pub(crate) fn files(table: &Table5) -> TableFiles<'_, Table5> {
    TableFiles {
        kind: &SPEC,
        title: "Table 5 — error with and without the approximation".into(),
        caption: format!(
            "{} Runs: {}.{}",
            table.error_note, table.runs_line, table.note
        ),
        texts: vec![
            ("md", table.markdown()),
            ("csv", table.csv()),
            ("tex", table.tex()),
        ],
        json: table,
        html: table.html(),
        printed: table.printed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::{run, sweep};

    fn ddsas(id: i64, approximation: bool, acc: f64) -> ReportRun {
        run(id, "ddsas")
            .set("L", 28)
            .set("M", 12)
            .set("approximation", approximation)
            .acc(acc)
            .build()
    }

    fn table() -> Table5 {
        let data = sweep(vec![
            ddsas(1, true, 0.40),
            ddsas(2, true, 0.30),
            ddsas(3, false, 0.50),
            ddsas(4, false, 0.20),
            // No partner without the approximation: no column.
            run(5, "ddsas")
                .set("L", 56)
                .set("approximation", true)
                .acc(0.9)
                .build(),
        ]);
        compute(&data).unwrap()
    }

    #[test]
    fn a_column_is_the_mean_and_population_std_of_each_variant() {
        let t = table();
        assert_eq!(t.columns.len(), 1);
        let c = &t.columns[0];
        assert_eq!(c.header, "Digits (%)");
        assert_eq!(
            (c.with.runs.clone(), c.without.runs.clone()),
            (vec![1, 2], vec![3, 4])
        );
        assert!((c.with.mean - 65.0).abs() < 1e-9 && (c.with.std - 5.0).abs() < 1e-9);
        assert!((c.without.mean - 65.0).abs() < 1e-9 && (c.without.std - 15.0).abs() < 1e-9);
        assert_eq!(t.runs_line, "Digits: w/o runs 3, 4, w/ runs 1, 2");
    }

    #[test]
    fn every_format_shows_the_same_cells() {
        let t = table();
        let md = t.markdown();
        assert!(md.contains(
            "| Method | Digits (%) |\n|---|---|\n| w/o approximation | 65.00 ± 15.00 (n = 2) |"
        ));
        assert!(md.ends_with("\n\nRuns: Digits: w/o runs 3, 4, w/ runs 1, 2.\n"));
        let csv = t.csv();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(2).unwrap().starts_with(
            "digits,darts,28,12,true,100 - final search valid accuracy (%); not the test error of a trained cell,2,1 2,65.000000,5.000000,1 2"
        ));
        let tex = t.tex();
        assert!(tex.contains("\\begin{tabular}{lc}\n\\hline\nMethod & Digits (\\%) \\\\\n"));
        assert!(tex.contains("w/ approximation & $65.00 \\pm 5.00$ \\\\\n\\hline\n"));
        assert!(t
            .html()
            .contains("<tr><th>Method</th><th>Digits (%)</th></tr>\n"));
        assert!(t.printed().contains("65.00 ± 5.00 (n = 2)"));
    }

    /// With an evaluation for every search, the table is the paper's: the
    /// test error of the trained cells, and says so; with some missing it
    /// stays the labelled proxy and says how many are missing.
    #[test]
    fn test_error_replaces_the_proxy_once_every_search_is_evaluated() {
        let evaluated = |id, approximation: bool, acc, test: f64| {
            run(id, "ddsas")
                .set("L", 28)
                .set("M", 12)
                .set("approximation", approximation)
                .acc(acc)
                .trained(10 + id, test, &[])
                .build()
        };
        let data = sweep(vec![
            evaluated(1, true, 0.40, 0.97),
            evaluated(2, true, 0.30, 0.975),
            evaluated(3, false, 0.50, 0.96),
            evaluated(4, false, 0.20, 0.97),
        ]);
        let t = compute(&data).unwrap();
        let c = &t.columns[0];
        assert!((c.with.mean - 2.75).abs() < 1e-9, "{}", c.with.mean);
        assert!((c.without.mean - 3.5).abs() < 1e-9, "{}", c.without.mean);
        assert!(
            t.caption.contains(
                "test accuracy after training the searched cell from scratch under the most recent training config (appendix B.1 (epochs=600))"
            ),
            "{}",
            t.caption
        );
        assert!(!t.caption.contains("proxy"));
        assert!(t.csv().contains("100 - test accuracy after training"));
        let mut partly = data.clone();
        partly.runs[0].trainings.clear();
        partly.choose_trainings();
        let t = compute(&partly).unwrap();
        assert!(
            t.caption.contains("proxy") && t.caption.contains("only 3 of the 4"),
            "{}",
            t.caption
        );
        assert!((t.columns[0].with.mean - 65.0).abs() < 1e-9);
    }

    #[test]
    fn a_config_without_both_variants_is_refused() {
        let data = sweep(vec![ddsas(1, true, 0.4)]);
        let e = compute(&data).unwrap_err().to_string();
        assert!(e.contains("both with and without the approximation"), "{e}");
    }
}
