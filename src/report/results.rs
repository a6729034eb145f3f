//! `report results`: the view of the paper's main tables, per method,
//! (dataset, space) and train config: the test error of the searched cells
//! trained from scratch under that config (mean ± population std over the
//! searches whose cell was trained under it; a search's trainings of one
//! config, its seeds, averaged first), the trained network's parameters,
//! and the search cost. A search trained under two configs is in two rows
//! (two configs are two results, never one mean); the config the figures
//! use is marked. Cells transferred to ImageNet have a table of their own,
//! as DARTS-family papers report them: top-1 and top-5 error, parameters,
//! multiply-adds and the search cost.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

use super::data::{method_rank, Group, SweepData};
use super::escape::{self, csv_field};
use super::labels::runs_text;
use super::stats::mean_std;
use super::trainings::{settings_of, TrainSetting};
use super::{drawn_table, write_table, Options, Output, ReportError, Spec, TableFiles};
use crate::config::Method;
use crate::store::{ReportRun, ReportTraining};

/// File name of the outputs, without extension.
pub const STEM: &str = "results";

/// The results table in the report's table of figures.
pub static SPEC: Spec = Spec {
    name: "results",
    figure: "results",
    stem: STEM,
    extensions: &["md", "csv", "json"],
    tables: &[],
    page: Some("results"),
    is_table: true,
    make: |data, opts| write(&compute(data)?, opts),
    draw: |data, _| Ok(drawn_table(files(&compute(data)?))),
    remove_more: None,
};

/// The table's numbers (its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    table: &'static str,
    /// Sweep name.
    pub sweep: String,
    /// One per method and (dataset, space).
    pub rows: Vec<Row>,
    /// The ImageNet table: one row per method, (dataset, space) of the
    /// search and ImageNet train config; absent without ImageNet trainings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imagenet: Vec<ImageNetRow>,
    /// The caption.
    #[serde(skip)]
    pub caption: String,
}

/// One method on one (dataset, space) and train config.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The search method.
    pub method: Method,
    /// Dataset and space.
    #[serde(flatten)]
    pub group: Group,
    /// The train config ("epochs=1 layers=3", "appendix B.1 (epochs=600)"),
    /// none for a row of searches none of which was trained.
    pub training: Option<String>,
    /// Whether it is the config the figures and Table 5 use.
    pub used: bool,
    /// Done searches.
    pub searches: Vec<i64>,
    /// Those whose cell was trained under this config.
    pub evaluated: Vec<i64>,
    /// Test error (%) of the trained cells: mean and population std.
    pub test_error: Option<(f64, f64)>,
    /// Parameters of the trained networks, millions (mean).
    pub params_m: Option<f64>,
    /// Search wall time, hours on the device it ran on (mean per search).
    pub search_hours: Option<f64>,
}

impl Row {
    fn cells(&self) -> [String; 7] {
        [
            super::labels::method_label(Some(self.method)).to_string(),
            self.group.label(),
            match &self.training {
                Some(t) if self.used => format!("{t} *"),
                Some(t) => t.clone(),
                None => "-".into(),
            },
            self.test_error
                .map_or("-".into(), |(m, s)| format!("{m:.2} ± {s:.2}")),
            self.params_m.map_or("-".into(), |p| format!("{p:.2}")),
            self.search_hours.map_or("-".into(), |h| format!("{h:.3}")),
            format!("{}/{}", self.evaluated.len(), self.searches.len()),
        ]
    }
}

/// One method's cells transferred to ImageNet under one train config.
#[derive(Debug, Clone, Serialize)]
pub struct ImageNetRow {
    /// The search method.
    pub method: Method,
    /// Dataset and space of the searches.
    #[serde(flatten)]
    pub group: Group,
    /// The ImageNet train config ("epochs=250 dataset=imagenet").
    pub training: String,
    /// Done searches.
    pub searches: Vec<i64>,
    /// Those whose cell was trained on ImageNet under this config.
    pub evaluated: Vec<i64>,
    /// Top-1 test error (%): mean and population std over the searches.
    pub top1_error: (f64, f64),
    /// Top-5 test error (%), mean over the searches that have it.
    pub top5_error: Option<f64>,
    /// Parameters, millions (mean).
    pub params_m: Option<f64>,
    /// Multiply-adds on one image, millions (mean).
    pub madds_m: Option<f64>,
    /// Search wall time, days on the device it ran on (mean per search).
    pub search_days: Option<f64>,
}

impl ImageNetRow {
    fn cells(&self) -> [String; 9] {
        let num = |v: Option<f64>, digits: usize| v.map_or("-".into(), |x| format!("{x:.digits$}"));
        [
            super::labels::method_label(Some(self.method)).to_string(),
            self.group.label(),
            self.training.clone(),
            format!("{:.2} ± {:.2}", self.top1_error.0, self.top1_error.1),
            num(self.top5_error, 2),
            num(self.params_m, 2),
            num(self.madds_m, 0),
            num(self.search_days, 3),
            format!("{}/{}", self.evaluated.len(), self.searches.len()),
        ]
    }
}

const IMAGENET_HEADER: [&str; 9] = [
    "Method",
    "Searched on",
    "Training",
    "Top-1 error (%)",
    "Top-5 error (%)",
    "Params (M)",
    "Multiply-adds (M)",
    "Search cost (device-days)",
    "Trained / searches",
];

/// The ImageNet table's caption.
const IMAGENET_CAPTION: &str = "ImageNet (mobile setting): searched cells transferred to ImageNet, a row per method, searched dataset and ImageNet train config; top-1 error mean ± population std and top-5 error mean over the searches (a search's trainings of one config averaged first), parameters without the auxiliary head, multiply-adds of one image at the crop size, and search wall time per search in days.";

const HEADER: [&str; 7] = [
    "Method",
    "Dataset",
    "Training",
    "Test error (%)",
    "Params (M)",
    "Search cost (device-hours)",
    "Trained / searches",
];

/// The table of `data`: every done search, grouped by method and
/// (dataset, space); refused when none has a trained cell.
pub fn compute(data: &SweepData) -> Result<Results, ReportError> {
    let mut groups: BTreeMap<(usize, Method, Group), Vec<&ReportRun>> = BTreeMap::new();
    for run in &data.runs {
        let Some(method) = run.method else {
            continue;
        };
        groups
            .entry((method_rank(run.method), method, Group::of(run)))
            .or_default()
            .push(run);
    }
    let rows: Vec<Row> = groups
        .iter()
        .flat_map(|((_, method, group), runs)| rows(*method, group, runs, data))
        .collect();
    let imagenet: Vec<ImageNetRow> = groups
        .iter()
        .flat_map(|((_, method, group), runs)| imagenet_rows(*method, group, runs))
        .collect();
    if rows.iter().all(|r| r.evaluated.is_empty()) && imagenet.is_empty() {
        return Err(ReportError::cannot(
            "results",
            &data.name,
            "has no search whose cell was trained",
            "train them: `ddsas train --from-run ID`, or `evaluate:` in the sweep file",
        ));
    }
    let mut trained: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.evaluated.clone())
        .chain(imagenet.iter().flat_map(|r| r.evaluated.clone()))
        .collect();
    trained.sort_unstable();
    trained.dedup();
    let used = match (data.training.test_words(), data.training.ambiguity()) {
        (Some(words), _) => {
            format!(" Rows marked * are the config the figures and Table 5 use: {words}.")
        }
        (None, Some(why)) => format!(" The figures and Table 5 use none of them: {why}."),
        (None, None) => String::new(),
    };
    Ok(Results {
        table: "results",
        sweep: data.name.clone(),
        caption: format!(
            "Results of sweep {}: test error of the searched cells trained from scratch, a row per train config (its keys that differ from appendix B.1), mean ± population std over the searches whose cell was trained under it ({}; a search's trainings of one config averaged first), parameters of the trained network, and search wall time per search.{used}{}",
            data.name,
            runs_text(&trained),
            data.not_done_note()
        ),
        rows,
        imagenet,
    })
}

/// The search wall time of `runs` in `unit` seconds (mean per search).
fn mean_wall(runs: &[&ReportRun], unit: f64) -> Option<f64> {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.wall_s)
        .map(|s| s / unit)
        .collect();
    (!v.is_empty()).then(|| mean_std(&v).0)
}

/// The ImageNet rows of one method on one (dataset, space): one per
/// ImageNet train config any of `runs` was transferred under. A search's
/// trainings of one config (its seeds) are averaged first.
fn imagenet_rows(method: Method, group: &Group, runs: &[&ReportRun]) -> Vec<ImageNetRow> {
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| mean_std(&v).0);
    settings_of(runs)
        .into_iter()
        .filter(|(setting, _)| setting.on_imagenet())
        .map(|(setting, trained)| {
            let per_search = |f: &dyn Fn(&ReportTraining) -> Option<f64>| -> Vec<f64> {
                trained
                    .values()
                    .filter_map(|ts| mean(ts.iter().filter_map(|t| f(t)).collect()))
                    .collect()
            };
            let top1 = per_search(&|t| Some(100.0 * (1.0 - t.test_acc)));
            let top5 = per_search(&|t| t.test_top5.map(|a| 100.0 * (1.0 - a)));
            let flat = |f: &dyn Fn(&ReportTraining) -> Option<i64>| -> Vec<f64> {
                trained
                    .values()
                    .flatten()
                    .filter_map(|t| f(t))
                    .map(|v| v as f64 / 1e6)
                    .collect()
            };
            ImageNetRow {
                method,
                group: *group,
                training: setting.label(),
                searches: runs.iter().map(|r| r.id).collect(),
                evaluated: trained.keys().copied().collect(),
                top1_error: mean_std(&top1),
                top5_error: mean(top5),
                params_m: mean(flat(&|t| t.params)),
                madds_m: mean(flat(&|t| t.madds)),
                search_days: mean_wall(runs, 86_400.0),
            }
        })
        .collect()
}

/// The rows of one method on one (dataset, space): one per train config
/// any of `runs` was trained under, or one without a config if none was.
fn rows(method: Method, group: &Group, runs: &[&ReportRun], data: &SweepData) -> Vec<Row> {
    let hours: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.wall_s)
        .map(|s| s / 3600.0)
        .collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| mean_std(v).0);
    let row = |training: Option<(&TrainSetting, bool)>| Row {
        method,
        group: *group,
        training: training.map(|(s, _)| s.label()),
        used: training.is_some_and(|(_, used)| used),
        searches: runs.iter().map(|r| r.id).collect(),
        evaluated: Vec::new(),
        test_error: None,
        params_m: None,
        search_hours: mean(&hours),
    };
    let settings: Vec<_> = settings_of(runs)
        .into_iter()
        .filter(|(setting, _)| !setting.on_imagenet())
        .collect();
    if settings.is_empty() {
        return vec![row(None)];
    }
    settings
        .iter()
        .map(|(setting, trained)| {
            let used = trained
                .values()
                .flatten()
                .all(|t| data.training.uses(t, group.dataset, data.evaluate.as_ref()));
            let errors: Vec<f64> = trained
                .values()
                .map(|ts| {
                    100.0 * (1.0 - ts.iter().map(|t| t.test_acc).sum::<f64>() / ts.len() as f64)
                })
                .collect();
            let params: Vec<f64> = trained
                .values()
                .flatten()
                .filter_map(|t| t.params)
                .map(|p| p as f64)
                .collect();
            Row {
                evaluated: trained.keys().copied().collect(),
                test_error: Some(mean_std(&errors)),
                params_m: mean(&params).map(|p| p / 1e6),
                ..row(Some((setting, used)))
            }
        })
        .collect()
}

impl Results {
    /// Markdown: caption and table.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "{}\n\n| {} |\n|{}\n",
            self.caption,
            HEADER.join(" | "),
            "---|".repeat(HEADER.len())
        );
        for r in &self.rows {
            let _ = writeln!(md, "| {} |", r.cells().join(" | "));
        }
        if !self.imagenet.is_empty() {
            let _ = write!(
                md,
                "\n{}\n\n| {} |\n|{}\n",
                IMAGENET_CAPTION,
                IMAGENET_HEADER.join(" | "),
                "---|".repeat(IMAGENET_HEADER.len())
            );
            for r in &self.imagenet {
                let _ = writeln!(md, "| {} |", r.cells().join(" | "));
            }
        }
        md
    }

    /// The ImageNet table as CSV (written beside the main one when
    /// there is one).
    pub fn imagenet_csv(&self) -> String {
        let mut csv = String::from(
            "method,dataset,space,training,searches,trained,mean_top1_error_pct,std_top1_error_pct,mean_top5_error_pct,params_m,madds_m,search_days\n",
        );
        let num = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.6}"));
        for r in &self.imagenet {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(r.method.name()),
                csv_field(r.group.dataset.name()),
                csv_field(r.group.space.name()),
                csv_field(&r.training),
                r.searches.len(),
                r.evaluated.len(),
                num(Some(r.top1_error.0)),
                num(Some(r.top1_error.1)),
                num(r.top5_error),
                num(r.params_m),
                num(r.madds_m),
                num(r.search_days),
            );
        }
        csv
    }

    /// One CSV row per method and dataset.
    pub fn csv(&self) -> String {
        let mut csv = String::from(
            "method,dataset,space,training,used,searches,trained,mean_test_error_pct,std_test_error_pct,params_m,search_hours\n",
        );
        let num = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.6}"));
        for r in &self.rows {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(r.method.name()),
                csv_field(r.group.dataset.name()),
                csv_field(r.group.space.name()),
                csv_field(r.training.as_deref().unwrap_or("")),
                r.used,
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
        html += "</table>\n";
        if !self.imagenet.is_empty() {
            let _ = write!(
                html,
                "<p>{}</p>\n<table>\n<tr>{}</tr>\n",
                escape::html(IMAGENET_CAPTION),
                cells(
                    "th",
                    IMAGENET_HEADER.iter().map(|h| h.to_string()).collect()
                )
            );
            for r in &self.imagenet {
                let _ = writeln!(html, "<tr>{}</tr>", cells("td", r.cells().to_vec()));
            }
            html += "</table>\n";
        }
        html
    }

    /// The table for the terminal.
    pub fn printed(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(HEADER.to_vec());
        for r in &self.rows {
            table.add_row(r.cells().to_vec());
        }
        let mut printed = format!("{}\n{table}", self.caption);
        if !self.imagenet.is_empty() {
            let mut imagenet = Table::new();
            imagenet.load_preset(UTF8_FULL_CONDENSED);
            imagenet.set_header(IMAGENET_HEADER.to_vec());
            for r in &self.imagenet {
                imagenet.add_row(r.cells().to_vec());
            }
            printed = format!("{printed}\n\n{IMAGENET_CAPTION}\n{imagenet}");
        }
        printed
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
        kind: &SPEC,
        title: "Results — test error, parameters and search cost per method".into(),
        caption: results.caption.clone(),
        texts: {
            let mut texts = vec![("md", results.markdown()), ("csv", results.csv())];
            if !results.imagenet.is_empty() {
                texts.push(("imagenet.csv", results.imagenet_csv()));
            }
            texts
        },
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
            let mut r = run(id, "ddsas")
                .acc(0.5)
                .trained(10 + id, test, &[])
                .build();
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
        assert_eq!((darts.method.name(), darts.evaluated.len()), ("darts", 0));
        assert!(darts.test_error.is_none() && darts.training.is_none());
        let ddsas = &t.rows[1];
        let (mean, std) = ddsas.test_error.unwrap();
        assert!(
            (mean - 2.75).abs() < 1e-9 && (std - 0.25).abs() < 1e-9,
            "{mean} {std}"
        );
        assert_eq!(ddsas.params_m, Some(3.3));
        assert_eq!(ddsas.search_hours, Some(1.0));
        assert!(
            t.markdown().contains(
                "| DDSAS | Digits, DARTS space | appendix B.1 (epochs=600) * | 2.75 ± 0.25 | 3.30 | 1.000 | 2/2 |"
            ),
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

    /// A search trained under two configs is in a row of each, not in one
    /// mean of both; seeds of one config are averaged per search first.
    #[test]
    fn a_search_trained_under_two_configs_is_in_a_row_of_each() {
        let short = [("epochs", serde_json::json!(1))];
        let short_seed_1 = [
            ("epochs", serde_json::json!(1)),
            ("seed", serde_json::json!(1)),
        ];
        let data = sweep(vec![
            run(1, "ddsas")
                .acc(0.5)
                .trained(10, 0.97, &[])
                .trained(11, 0.50, &short)
                .trained(12, 0.70, &short_seed_1)
                .build(),
            run(2, "ddsas").acc(0.5).trained(13, 0.30, &short).build(),
        ]);
        let t = compute(&data).unwrap();
        let labels: Vec<(Option<&str>, bool)> = t
            .rows
            .iter()
            .map(|r| (r.training.as_deref(), r.used))
            .collect();
        assert_eq!(
            labels,
            [
                (Some("appendix B.1 (epochs=600)"), false),
                (Some("epochs=1"), true)
            ]
        );
        assert_eq!(t.rows[0].evaluated, [1]);
        assert_eq!(t.rows[1].evaluated, [1, 2]);
        // Run 1: 100 - mean(50, 70) = 40; run 2: 70; mean 55, std 15.
        let (mean, std) = t.rows[1].test_error.unwrap();
        assert!(
            (mean - 55.0).abs() < 1e-9 && (std - 15.0).abs() < 1e-9,
            "{mean} {std}"
        );
        assert!(
            t.caption
                .contains("Rows marked * are the config the figures"),
            "{}",
            t.caption
        );
        assert!(t
            .csv()
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("ddsas,digits,darts,epochs=1,true,2,2,"));
    }

    /// A search transferred to ImageNet is in the ImageNet table (top-1 and
    /// top-5 error, params, multiply-adds, search days), not the main one;
    /// a sweep without ImageNet trainings has no ImageNet table.
    #[test]
    fn imagenet_transfers_have_a_table_of_their_own() {
        let mut searched = run(1, "ddsas")
            .acc(0.5)
            .trained(10, 0.97, &[])
            .on_imagenet(11, (0.74, 0.92), 574_000_000)
            .build();
        searched.wall_s = Some(43_200.0);
        let t = compute(&sweep(vec![searched])).unwrap();
        assert_eq!(t.rows.len(), 1, "{:?}", t.rows);
        assert_eq!(t.rows[0].evaluated, [1]);
        assert_eq!(t.imagenet.len(), 1);
        let r = &t.imagenet[0];
        assert_eq!(r.training, "epochs=250 dataset=imagenet");
        assert!((r.top1_error.0 - 26.0).abs() < 1e-9, "{:?}", r.top1_error);
        assert!((r.top5_error.unwrap() - 8.0).abs() < 1e-9);
        assert_eq!((r.params_m, r.madds_m), (Some(4.7), Some(574.0)));
        assert_eq!(r.search_days, Some(0.5));
        let md = t.markdown();
        assert!(
            md.contains("| DDSAS | Digits, DARTS space | epochs=250 dataset=imagenet | 26.00 ± 0.00 | 8.00 | 4.70 | 574 | 0.500 | 1/1 |"),
            "{md}"
        );
        assert!(t.printed().contains("Top-5 error (%)"));
        assert!(t
            .imagenet_csv()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("ddsas,digits,darts,"));
        let f = files(&t);
        assert!(f.texts.iter().any(|(ext, _)| *ext == "imagenet.csv"));
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["imagenet"][0]["madds_m"], 574.0);

        let cifar = compute(&sweep(vec![run(2, "ddsas")
            .acc(0.5)
            .trained(12, 0.97, &[])
            .build()]))
        .unwrap();
        assert!(cifar.imagenet.is_empty());
        assert!(!cifar.markdown().contains("ImageNet"));
        assert!(serde_json::to_value(&cifar)
            .unwrap()
            .get("imagenet")
            .is_none());
        assert_eq!(files(&cifar).texts.len(), 2);
    }
}
