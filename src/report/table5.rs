//! Table 5 (appendix A.1): error of DDSAS with and without the
//! approximation, mean ± std over seeds, per dataset — as Markdown, CSV,
//! LaTeX and JSON, and printed.
//!
//! Like with like: runs are compared only within a group whose configs
//! differ in nothing but the seed and the approximation, and only groups
//! that have both variants make a column. Error = 100 − accuracy (%), where
//! the accuracy is the final valid accuracy of the search: no evaluation
//! stage (retraining the derived cell) exists yet, and every output says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::json;

use super::data::{config_key, dataset_label, runs_text, space_label, SweepData};
use super::draw::mean_std;
use super::escape::{self, csv_field};
use super::{write_file, write_json, Kind, Options, Output, ReportError};
use crate::store::ReportRun;

/// The paper's sweep for this table.
pub const PAPER_SWEEP: &str = "sweeps/table5_approximation.yaml";
/// Config keys that do not make two runs different configs here.
const NOT_CONFIG: [&str; 4] = ["seed", "approximation", "log_steps", "data_dir"];
/// What the accuracy is, for every caption.
/// What the CSV's error is, in its `metric` column (the Markdown and LaTeX
/// say it in their caption).
const CSV_METRIC: &str =
    "100 - final search valid accuracy (%); not the test error of a trained cell";
const ACCURACY_NOTE: &str = "Error = 100 − final valid accuracy of the search (%); no evaluation stage exists yet, so this is not the paper's test error. Mean ± population std (ddof = 0) over seeds.";

/// One variant (with or without the approximation) of a group.
#[derive(Debug, Clone)]
struct Variant {
    runs: Vec<i64>,
    seeds: Vec<i64>,
    errors: Vec<f64>,
    mean: f64,
    std: f64,
}

impl Variant {
    fn new(runs: &[&ReportRun]) -> Variant {
        let errors: Vec<f64> = runs
            .iter()
            .map(|r| 100.0 * (1.0 - r.valid_acc.unwrap_or(f64::NAN)))
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

    fn cell(&self) -> String {
        format!(
            "{:.2} ± {:.2} (n = {})",
            self.mean,
            self.std,
            self.errors.len()
        )
    }

    fn tex(&self) -> String {
        format!("${:.2} \\pm {:.2}$", self.mean, self.std)
    }
}

/// One column: a dataset (and config) with both variants.
#[derive(Debug, Clone)]
struct Column {
    dataset: String,
    space: String,
    l: Option<i64>,
    m: Option<i64>,
    header: String,
    without: Variant,
    with: Variant,
}

fn dataset_rank(d: &str) -> usize {
    ["digits", "cifar10", "cifar100"]
        .iter()
        .position(|x| *x == d)
        .unwrap_or(3)
}

/// Writes Table 5 of `data`.
pub async fn render(data: &SweepData, opts: &Options) -> Result<Output, ReportError> {
    let mut groups: BTreeMap<String, (Vec<&ReportRun>, Vec<&ReportRun>)> = BTreeMap::new();
    for run in data.with_method("ddsas").filter(|r| r.valid_acc.is_some()) {
        let entry = groups.entry(config_key(run, &NOT_CONFIG)).or_default();
        match run.approximation {
            Some(0) => entry.0.push(run),
            _ => entry.1.push(run),
        }
    }
    let mut columns: Vec<Column> = groups
        .values()
        .filter(|(without, with)| !without.is_empty() && !with.is_empty())
        .map(|(without, with)| {
            let r = with[0];
            Column {
                dataset: r.dataset.clone(),
                space: r.space.clone(),
                l: r.l,
                m: r.m,
                header: String::new(),
                without: Variant::new(without),
                with: Variant::new(with),
            }
        })
        .collect();
    if columns.is_empty() {
        return Err(ReportError::cannot(
            "table5",
            &data.name,
            "has no DDSAS config that was run (and done) both with and without the approximation",
            data.run_hint(Some(PAPER_SWEEP)),
        ));
    }
    columns.sort_by_key(|c| {
        (
            dataset_rank(&c.dataset),
            c.space.clone(),
            c.l,
            c.m,
            c.with.runs[0],
        )
    });
    let mut per_dataset: BTreeMap<String, usize> = BTreeMap::new();
    for c in &columns {
        *per_dataset.entry(c.dataset.clone()).or_insert(0) += 1;
    }
    for c in &mut columns {
        c.header = if per_dataset[&c.dataset] == 1 && c.space == "darts" {
            format!("{} (%)", dataset_label(&c.dataset))
        } else {
            format!(
                "{}, {}, L = {}, M = {} (%)",
                dataset_label(&c.dataset),
                space_label(&c.space),
                c.l.unwrap_or_default(),
                c.m.unwrap_or_default()
            )
        };
    }
    let caption = format!(
        "Table 5: error of DDSAS without and with the approximation (sweep {}). {ACCURACY_NOTE}",
        data.name
    );
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

    // Markdown.
    let mut md = format!("**{caption}**\n\n| Method |");
    for c in &columns {
        let _ = write!(md, " {} |", c.header);
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(columns.len()));
    md.push_str("\n| w/o approximation |");
    for c in &columns {
        let _ = write!(md, " {} |", c.without.cell());
    }
    md.push_str("\n| w/ approximation |");
    for c in &columns {
        let _ = write!(md, " {} |", c.with.cell());
    }
    let _ = writeln!(md, "\n\nRuns: {runs_line}.");

    // CSV: one row per (column, variant).
    let mut csv = String::from(
        "dataset,space,L,M,approximation,metric,n,seeds,mean_error_pct,std_error_pct,runs\n",
    );
    for c in &columns {
        for (approx, v) in [(false, &c.without), (true, &c.with)] {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{:.6},{:.6},{}",
                csv_field(&c.dataset),
                csv_field(&c.space),
                c.l.map_or(String::new(), |v| v.to_string()),
                c.m.map_or(String::new(), |v| v.to_string()),
                approx,
                csv_field(CSV_METRIC),
                v.errors.len(),
                csv_field(
                    &v.seeds
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                v.mean,
                v.std,
                csv_field(
                    &v.runs
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
        }
    }

    // LaTeX.
    let mut tex = String::from("\\begin{table}[t]\n\\centering\n\\begin{tabular}{l");
    tex.push_str(&"c".repeat(columns.len()));
    tex.push_str("}\n\\hline\nMethod");
    for c in &columns {
        let _ = write!(tex, " & {}", c.header.replace('%', "\\%"));
    }
    tex.push_str(" \\\\\n\\hline\nw/o approximation");
    for c in &columns {
        let _ = write!(tex, " & {}", c.without.tex());
    }
    tex.push_str(" \\\\\nw/ approximation");
    for c in &columns {
        let _ = write!(tex, " & {}", c.with.tex());
    }
    let tex_caption = caption
        .trim_start_matches("Table 5: ")
        .replace('%', "\\%")
        .replace('±', "$\\pm$")
        .replace('−', "$-$")
        .replace('_', "\\_");
    let _ = write!(
        tex,
        " \\\\\n\\hline\n\\end{{tabular}}\n\\caption{{{tex_caption}}}\n\\label{{tab:approximation}}\n\\end{{table}}\n"
    );

    // Terminal and HTML.
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["Method".to_string()];
    header.extend(columns.iter().map(|c| c.header.clone()));
    table.set_header(header);
    let mut row = vec!["w/o approximation".to_string()];
    row.extend(columns.iter().map(|c| c.without.cell()));
    table.add_row(row);
    let mut row = vec!["w/ approximation".to_string()];
    row.extend(columns.iter().map(|c| c.with.cell()));
    table.add_row(row);
    let printed = format!("{caption}\n{table}\nRuns: {runs_line}.");
    let mut html = String::from("<table>\n<tr><th>Method</th>");
    for c in &columns {
        let _ = write!(html, "<th>{}</th>", escape::html(&c.header));
    }
    html.push_str("</tr>\n<tr><td>w/o approximation</td>");
    for c in &columns {
        let _ = write!(html, "<td>{}</td>", escape::html(&c.without.cell()));
    }
    html.push_str("</tr>\n<tr><td>w/ approximation</td>");
    for c in &columns {
        let _ = write!(html, "<td>{}</td>", escape::html(&c.with.cell()));
    }
    html.push_str("</tr>\n</table>\n");

    let json = json!({
        "table": "table5",
        "sweep": data.name,
        "metric": "error_pct = 100 * (1 - final valid accuracy)",
        "std": "population (ddof = 0)",
        "columns": columns.iter().map(|c| json!({
            "dataset": c.dataset, "space": c.space, "L": c.l, "M": c.m, "header": c.header,
            "without": {"runs": c.without.runs, "seeds": c.without.seeds, "errors": c.without.errors, "mean": c.without.mean, "std": c.without.std},
            "with": {"runs": c.with.runs, "seeds": c.with.seeds, "errors": c.with.errors, "mean": c.with.mean, "std": c.with.std},
        })).collect::<Vec<_>>(),
    });
    let mut files = Vec::new();
    for (name, text) in [("table5.md", md), ("table5.csv", csv), ("table5.tex", tex)] {
        let path = opts.out.join(name);
        write_file(&path, &text)?;
        files.push(path);
    }
    let path = opts.out.join("table5.json");
    write_json(&path, &json)?;
    files.push(path);
    Ok(Output {
        kind: Kind::Table5,
        title: "Table 5 — error with and without the approximation".into(),
        caption: format!("{ACCURACY_NOTE} Runs: {runs_line}.{}", data.not_done_note()),
        files,
        size: None,
        html: Some(html),
        printed: Some(printed),
        seconds: 0.0,
    })
}
