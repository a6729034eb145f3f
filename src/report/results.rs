//! `report results`: the view of the paper's main tables, per method and
//! (dataset, space): the test error of the searched cells trained from
//! scratch (mean ± population std over the searches whose cell was
//! trained), the trained network's parameters, and the search cost.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

use super::data::{method_rank, runs_text, Group, SweepData};
use super::escape::{self, csv_field};
use super::stats::mean_std;
use super::{write_table, Kind, Options, Output, ReportError, TableFiles};
use crate::store::ReportRun;

/// File name of the outputs, without extension.
pub const STEM: &str = "results";

/// The table's numbers (its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    table: &'static str,
    /// Sweep name.
    pub sweep: String,
    /// One per method and (dataset, space).
    pub rows: Vec<Row>,
    /// The caption.
    #[serde(skip)]
    pub caption: String,
}

/// One method on one (dataset, space).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `ddsas`, `darts` or `gdas`.
    pub method: String,
    /// Dataset and space.
    #[serde(flatten)]
    pub group: Group,
    /// Done searches.
    pub searches: Vec<i64>,
    /// Those whose cell was trained.
    pub evaluated: Vec<i64>,
    /// Test error (%) of the trained cells: mean and population std.
    pub test_error: Option<(f64, f64)>,
    /// Parameters of the trained networks, millions (mean).
    pub params_m: Option<f64>,
    /// Search wall time, hours on the device it ran on (mean per search).
    pub search_hours: Option<f64>,
}

impl Row {
    fn cells(&self) -> [String; 6] {
        [
            super::data::method_label(&self.method).to_string(),
            self.group.label(),
            self.test_error
                .map_or("-".into(), |(m, s)| format!("{m:.2} ± {s:.2}")),
            self.params_m.map_or("-".into(), |p| format!("{p:.2}")),
            self.search_hours.map_or("-".into(), |h| format!("{h:.3}")),
            format!("{}/{}", self.evaluated.len(), self.searches.len()),
        ]
    }
}

const HEADER: [&str; 6] = [
    "Method",
    "Dataset",
    "Test error (%)",
    "Params (M)",
    "Search cost (device-hours)",
    "Trained / searches",
];

/// The table of `data`: every done search, grouped by method and
/// (dataset, space); refused when none has a trained cell.
pub fn compute(data: &SweepData) -> Result<Results, ReportError> {
    let mut groups: BTreeMap<(usize, String, Group), Vec<&ReportRun>> = BTreeMap::new();
    for run in data.runs.iter().filter(|r| method_rank(&r.method) < 3) {
        groups
            .entry((method_rank(&run.method), run.method.clone(), Group::of(run)))
            .or_default()
            .push(run);
    }
    let rows: Vec<Row> = groups
        .into_iter()
        .map(|((_, method, group), runs)| row(method, group, &runs))
        .collect();
    if rows.iter().all(|r| r.evaluated.is_empty()) {
        return Err(ReportError::cannot(
            "results",
            &data.name,
            "has no search whose cell was trained",
            "train them: `ddsas train --from-run ID`, or `evaluate:` in the sweep file",
        ));
    }
    let trained: Vec<i64> = rows.iter().flat_map(|r| r.evaluated.clone()).collect();
    Ok(Results {
        table: "results",
        sweep: data.name.clone(),
        caption: format!(
            "Results of sweep {}: test error of the searched cells trained from scratch (mean ± population std over the searches whose cell was trained: {}), parameters of the trained network, and search wall time per search.{}",
            data.name,
            runs_text(&trained),
            data.not_done_note()
        ),
        rows,
    })
}

fn row(method: String, group: Group, runs: &[&ReportRun]) -> Row {
    let evaluated: Vec<&&ReportRun> = runs.iter().filter(|r| r.test_acc.is_some()).collect();
    let errors: Vec<f64> = evaluated
        .iter()
        .filter_map(|r| r.test_acc)
        .map(|a| 100.0 * (1.0 - a))
        .collect();
    let params: Vec<f64> = evaluated.iter().filter_map(|r| r.test_params).collect();
    let hours: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.wall_s)
        .map(|s| s / 3600.0)
        .collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| mean_std(v).0);
    Row {
        method,
        group,
        searches: runs.iter().map(|r| r.id).collect(),
        evaluated: evaluated.iter().map(|r| r.id).collect(),
        test_error: (!errors.is_empty()).then(|| mean_std(&errors)),
        params_m: mean(&params).map(|p| p / 1e6),
        search_hours: mean(&hours),
    }
}

impl Results {
    /// Markdown: caption and table.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "{}\n\n| {} |\n|{}\n",
            self.caption,
            HEADER.join(" | "),
            "---|".repeat(6)
        );
        for r in &self.rows {
            let _ = writeln!(md, "| {} |", r.cells().join(" | "));
        }
        md
    }

    /// One CSV row per method and dataset.
    pub fn csv(&self) -> String {
        let mut csv = String::from(
            "method,dataset,space,searches,trained,mean_test_error_pct,std_test_error_pct,params_m,search_hours\n",
        );
        let num = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.6}"));
        for r in &self.rows {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{}",
                csv_field(&r.method),
                csv_field(&r.group.dataset),
                csv_field(&r.group.space),
                r.searches.len(),
                r.evaluated.len(),
                num(r.test_error.map(|e| e.0)),
                num(r.test_error.map(|e| e.1)),
                num(r.params_m),
                num(r.search_hours),
            );
        }
        csv
    }

    /// An HTML fragment for `index.html`.
    pub fn html(&self) -> String {
        let cells = |tag: &str, cells: Vec<String>| -> String {
            cells
                .iter()
                .map(|c| format!("<{tag}>{}</{tag}>", escape::html(c)))
                .collect()
        };
        let mut html = format!(
            "<table>\n<tr>{}</tr>\n",
            cells("th", HEADER.iter().map(|h| h.to_string()).collect())
        );
        for r in &self.rows {
            let _ = writeln!(html, "<tr>{}</tr>", cells("td", r.cells().to_vec()));
        }
        html + "</table>\n"
    }

    /// The table for the terminal.
    pub fn printed(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(HEADER.to_vec());
        for r in &self.rows {
            table.add_row(r.cells().to_vec());
        }
        format!("{}\n{table}", self.caption)
    }
}

/// Writes the table as Markdown, CSV and JSON under `opts.out`.
pub fn write(results: &Results, opts: &Options) -> Result<Output, ReportError> {
    write_table(files(results), opts)
}

/// The table's title, caption and texts (the files, the index's and the
/// served page's HTML).
pub(crate) fn files(results: &Results) -> TableFiles<'_, Results> {
    TableFiles {
        kind: Kind::Results,
        title: "Results — test error, parameters and search cost per method".into(),
        caption: results.caption.clone(),
        texts: vec![("md", results.markdown()), ("csv", results.csv())],
        json: results,
        html: results.html(),
        printed: results.printed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::{run, sweep};

    #[test]
    fn rows_are_the_mean_of_the_trained_searches() {
        let trained = |id: i64, test: f64| {
            let mut r = run(id, "ddsas").acc(0.5).build();
            r.test_acc = Some(test);
            r.test_params = Some(3.3e6);
            r.wall_s = Some(3600.0);
            r
        };
        let data = sweep(vec![
            trained(1, 0.97),
            trained(2, 0.975),
            run(3, "darts").acc(0.4).build(),
        ]);
        let t = compute(&data).unwrap();
        assert_eq!(t.rows.len(), 2);
        let darts = &t.rows[0];
        assert_eq!((darts.method.as_str(), darts.evaluated.len()), ("darts", 0));
        assert!(darts.test_error.is_none());
        let ddsas = &t.rows[1];
        let (mean, std) = ddsas.test_error.unwrap();
        assert!(
            (mean - 2.75).abs() < 1e-9 && (std - 0.25).abs() < 1e-9,
            "{mean} {std}"
        );
        assert_eq!(ddsas.params_m, Some(3.3));
        assert_eq!(ddsas.search_hours, Some(1.0));
        assert!(
            t.markdown()
                .contains("| DDSAS | Digits, DARTS space | 2.75 ± 0.25 | 3.30 | 1.000 | 2/2 |"),
            "{}",
            t.markdown()
        );
        let none = sweep(vec![run(3, "darts").acc(0.4).build()]);
        let e = compute(&none).unwrap_err().to_string();
        assert!(
            e.contains("no search whose cell was trained") && e.contains("--from-run"),
            "{e}"
        );
    }
}
