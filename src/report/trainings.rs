//! Which trainings give a search its test accuracy. A search's
//! cell may be trained under several train configs (the sweep's
//! `evaluate:`, a `ddsas train --from-run` with other keys); a mean over
//! all of them would mix 1-epoch and 600-epoch networks. So a figure or
//! table uses the trainings of one config only, and says which: the
//! sweep's `evaluate:` config when the sweep has one, else the most recent
//! config if every trained search's latest training used it. Otherwise
//! the choice is ambiguous and no test accuracy is used (figures fall back
//! to the labelled proxy, or refuse); `report results` and `runs show`
//! list every config.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::labels::{plural, runs_text};
use crate::config::train::{train_config_keys, TrainConfig};
use crate::data::DatasetKind;
use crate::store::{ReportRun, ReportTraining};
use crate::sweep::Evaluate;

/// Train config keys that do not tell two trainings' configs apart: the
/// cell (each search has its own), the seed (trainings of one config are
/// its seeds), and where the data lives or how it is fetched.
const NOT_A_TRAIN_SETTING: [&str; 4] = ["genotype", "seed", "data_dir", "download"];

/// A train config as it tells trainings apart: its keys but those of
/// [`NOT_A_TRAIN_SETTING`], and `dataset` only where it is not the
/// search's own (a cell trained on the data it was searched on, as
/// `evaluate:` does by default, has no `dataset` here).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSetting {
    keys: Map<String, Value>,
}

impl TrainSetting {
    /// The setting of a stored train config (`runs.config_json` of a train
    /// run) that trained a cell searched on `search_dataset`.
    pub fn of_json(config_json: &str, search_dataset: DatasetKind) -> TrainSetting {
        let keys = match serde_json::from_str(config_json) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        TrainSetting::of_map(keys, search_dataset)
    }

    /// The setting a sweep's `evaluate:` trains a search of
    /// `search_dataset` under (its dataset unless the file names one).
    pub fn of_evaluate(plan: &Evaluate, search_dataset: DatasetKind) -> TrainSetting {
        let mut config = plan.config.clone();
        if !plan.own_data {
            config.dataset = search_dataset;
        }
        let mut keys = match config.canonical_value() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        if !plan.own_data {
            keys.remove("dataset");
        }
        TrainSetting::of_map(keys, search_dataset)
    }

    fn of_map(mut keys: Map<String, Value>, search_dataset: DatasetKind) -> TrainSetting {
        for key in NOT_A_TRAIN_SETTING {
            keys.remove(key);
        }
        if keys.get("dataset").and_then(Value::as_str) == Some(search_dataset.name()) {
            keys.remove("dataset");
        }
        TrainSetting { keys }
    }

    /// Canonical text: equal for equal settings.
    pub fn key(&self) -> String {
        Value::Object(self.keys.clone()).to_string()
    }

    /// Whether its trainings are on ImageNet (transfers: no search runs
    /// there, so the setting names the dataset).
    pub fn on_imagenet(&self) -> bool {
        self.keys.get("dataset").and_then(Value::as_str) == Some(DatasetKind::ImageNet.name())
    }

    /// Epochs of the trainings.
    pub fn epochs(&self) -> Option<i64> {
        self.keys.get("epochs").and_then(Value::as_i64)
    }

    /// How people read it: `epochs` first, then every key whose value is
    /// not the appendix's (B.1, `ddsas train`'s defaults), in the order
    /// `ddsas train --print-config` lists them: "epochs=1 layers=3
    /// cutout=0"; with nothing but the appendix's values "appendix B.1
    /// (epochs=600)".
    pub fn label(&self) -> String {
        let recipe = TrainConfig {
            dataset: self
                .keys
                .get("dataset")
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or(crate::data::DatasetKind::Digits),
            ..TrainConfig::default()
        };
        let defaults = match recipe.canonical_value() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let epochs = self.keys.get("epochs").map_or("?".into(), text);
        let differing: Vec<String> = train_config_keys()
            .iter()
            .filter(|k| k.as_str() != "epochs")
            .filter_map(|k| {
                let v = self.keys.get(k.as_str())?;
                (k == "dataset" || defaults.get(k.as_str()) != Some(v))
                    .then(|| format!("{k}={}", text(v)))
            })
            .collect();
        if differing.is_empty() && self.epochs() == Some(i64::from(recipe.epochs())) {
            format!("appendix B.1 (epochs={epochs})")
        } else {
            std::iter::once(format!("epochs={epochs}"))
                .chain(differing)
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

/// The trainings of a search under one setting: `(setting, trainings)`
/// per distinct setting, in the order each first appears (by train run).
pub fn by_setting(
    trainings: &[ReportTraining],
    search_dataset: DatasetKind,
) -> Vec<(TrainSetting, Vec<&ReportTraining>)> {
    let mut out: Vec<(TrainSetting, Vec<&ReportTraining>)> = Vec::new();
    for t in trainings {
        let setting = TrainSetting::of_json(&t.config_json, search_dataset);
        match out.iter_mut().find(|(s, _)| *s == setting) {
            Some((_, ts)) => ts.push(t),
            None => out.push((setting, vec![t])),
        }
    }
    out
}

/// How the trainings a report uses were chosen.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Choice {
    /// No search shown has a done training.
    #[default]
    Untrained,
    /// The trainings under one setting.
    One {
        /// The setting (as the first search that has it sees it).
        setting: TrainSetting,
        /// Whether it is the sweep's `evaluate:` (else the most recent).
        evaluate: bool,
        /// Done trainings of the searches shown under other settings.
        left_out: usize,
    },
    /// No `evaluate:`, and the trained searches' latest trainings are
    /// under different settings: each with the searches it is the latest of.
    Ambiguous(Vec<(TrainSetting, Vec<i64>)>),
}

impl Choice {
    /// Picks the setting for `runs` (the sweep's `evaluate:` if any, else
    /// the most recent if unambiguous) and sets each run's `test_acc`,
    /// `test_epochs` and `test_params` from its trainings under it (none
    /// for a run without one, and for every run when ambiguous).
    pub fn apply(runs: &mut [ReportRun], evaluate: Option<&Evaluate>) -> Choice {
        let choice = Choice::of(runs, evaluate);
        for run in runs.iter_mut() {
            let picked: Vec<&ReportTraining> = run
                .trainings
                .iter()
                .filter(|t| choice.uses(t, run.dataset, evaluate))
                .collect();
            let mean =
                |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            run.test_acc = mean(picked.iter().map(|t| t.test_acc).collect());
            run.test_epochs = picked.first().map(|t| t.epochs);
            run.test_params = mean(
                picked
                    .iter()
                    .filter_map(|t| t.params)
                    .map(|p| p as f64)
                    .collect(),
            );
        }
        choice
    }

    fn of(runs: &[ReportRun], evaluate: Option<&Evaluate>) -> Choice {
        let trained: Vec<&ReportRun> = runs.iter().filter(|r| !r.trainings.is_empty()).collect();
        let Some(first) = trained.first() else {
            return Choice::Untrained;
        };
        let setting = match evaluate {
            Some(plan) => TrainSetting::of_evaluate(plan, first.dataset),
            None => {
                let mut latest: Vec<(TrainSetting, Vec<i64>)> = Vec::new();
                for run in &trained {
                    let newest = run
                        .trainings
                        .iter()
                        .max_by_key(|t| t.train_run_id)
                        .expect("trained runs have a training");
                    let setting = TrainSetting::of_json(&newest.config_json, run.dataset);
                    match latest.iter_mut().find(|(s, _)| *s == setting) {
                        Some((_, ids)) => ids.push(run.id),
                        None => latest.push((setting, vec![run.id])),
                    }
                }
                if latest.len() > 1 {
                    return Choice::Ambiguous(latest);
                }
                latest.remove(0).0
            }
        };
        let mut choice = Choice::One {
            setting,
            evaluate: evaluate.is_some(),
            left_out: 0,
        };
        let left: usize = trained
            .iter()
            .map(|r| {
                r.trainings
                    .iter()
                    .filter(|t| !choice.uses(t, r.dataset, evaluate))
                    .count()
            })
            .sum();
        if let Choice::One { left_out, .. } = &mut choice {
            *left_out = left;
        }
        choice
    }

    /// Whether training `t` of a search on `search_dataset` is one this
    /// choice uses (`evaluate`: the sweep's, as the choice was made with).
    pub fn uses(
        &self,
        t: &ReportTraining,
        search_dataset: DatasetKind,
        evaluate: Option<&Evaluate>,
    ) -> bool {
        let Choice::One { setting, .. } = self else {
            return false;
        };
        let own = TrainSetting::of_json(&t.config_json, search_dataset);
        match evaluate {
            Some(plan) => own == TrainSetting::of_evaluate(plan, search_dataset),
            None => own == *setting,
        }
    }

    /// What the test accuracy of a caption is, e.g. "test accuracy after
    /// training the searched cell from scratch under the sweep's
    /// `evaluate:` config (appendix B.1 (epochs=600))"; `None` unless one
    /// setting was chosen.
    pub fn test_words(&self) -> Option<String> {
        let Choice::One {
            setting,
            evaluate,
            left_out,
        } = self
        else {
            return None;
        };
        let which = if *evaluate {
            "the sweep's `evaluate:` config"
        } else {
            "the most recent training config"
        };
        let left = match left_out {
            0 => String::new(),
            n => format!(
                "; {} under other configs left out (`report results` lists every config)",
                plural(*n, "training")
            ),
        };
        Some(format!(
            "test accuracy after training the searched cell from scratch under {which} ({}){left}",
            setting.label()
        ))
    }

    /// Why no test accuracy is used although cells were trained, for
    /// captions and refusals; `None` unless ambiguous.
    pub fn ambiguity(&self) -> Option<String> {
        let Choice::Ambiguous(latest) = self else {
            return None;
        };
        let each: Vec<String> = latest
            .iter()
            .map(|(s, ids)| format!("{} for {}", s.label(), runs_text(ids)))
            .collect();
        Some(format!(
            "the searches' latest trainings are under {} train configs ({}) and the sweep has no `evaluate:` saying which is its own; put the one to use under `evaluate:` in the sweep file and run it again (that trains every cell not yet trained under it), or pick searches of one config with `--where`",
            latest.len(),
            each.join("; ")
        ))
    }
}

/// Each training setting of `runs` with the runs trained under it, in the
/// order each first appears: what `report results` makes a row of.
pub fn settings_of<'a>(
    runs: &[&'a ReportRun],
) -> Vec<(TrainSetting, BTreeMap<i64, Vec<&'a ReportTraining>>)> {
    let mut out: Vec<(TrainSetting, BTreeMap<i64, Vec<&ReportTraining>>)> = Vec::new();
    for run in runs {
        for (setting, ts) in by_setting(&run.trainings, run.dataset) {
            let slot = match out.iter().position(|(s, _)| *s == setting) {
                Some(i) => i,
                None => {
                    out.push((setting, BTreeMap::new()));
                    out.len() - 1
                }
            };
            out[slot].1.insert(run.id, ts);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::run;

    fn evaluate(epochs: u32) -> Evaluate {
        Evaluate {
            config: TrainConfig {
                epochs: Some(epochs),
                ..TrainConfig::default()
            },
            own_data: false,
            seeds: vec![0],
            nproc: 1,
        }
    }

    #[test]
    fn a_setting_ignores_the_cell_seed_and_own_dataset_and_names_what_differs() {
        let a = TrainSetting::of_json(
            r#"{"genotype":"x","seed":0,"dataset":"cifar10","data_dir":null,"epochs":600,"layers":20}"#,
            DatasetKind::Cifar10,
        );
        let b = TrainSetting::of_json(
            r#"{"genotype":"y","seed":3,"dataset":"cifar10","data_dir":"/d","epochs":600,"layers":20}"#,
            DatasetKind::Cifar10,
        );
        assert_eq!(a, b);
        let transfer = TrainSetting::of_json(
            r#"{"genotype":"x","seed":0,"dataset":"cifar100","epochs":600,"layers":20}"#,
            DatasetKind::Cifar10,
        );
        assert_ne!(a, transfer);
        let full = |sets: &[(&str, Value)]| {
            let mut v = TrainConfig::default().canonical_value();
            for (k, x) in sets {
                v[*k] = x.clone();
            }
            TrainSetting::of_json(&v.to_string(), DatasetKind::Digits)
        };
        assert_eq!(full(&[]).label(), "appendix B.1 (epochs=600)");
        assert_eq!(
            full(&[
                ("epochs", 1.into()),
                ("cutout", 0.into()),
                ("layers", 3.into())
            ])
            .label(),
            "epochs=1 layers=3 cutout=0"
        );
        assert_eq!(
            full(&[("dataset", "cifar10".into())]).label(),
            "epochs=600 dataset=cifar10"
        );
        assert_eq!(
            full(&[]),
            TrainSetting::of_evaluate(&evaluate(600), DatasetKind::Digits)
        );
    }

    /// A search trained under two configs: the most recent is used when
    /// every trained search's latest agrees, the sweep's `evaluate:` one
    /// whenever the sweep has it; disagreeing latest trainings leave no
    /// test accuracy and say why.
    #[test]
    fn one_config_is_used_the_evaluate_one_or_the_unambiguous_latest() {
        let mut runs = vec![
            run(1, "ddsas")
                .trained(10, 0.90, &[("epochs", 600.into())])
                .trained(11, 0.50, &[("epochs", 1.into())])
                .trained(12, 0.70, &[("epochs", 1.into()), ("seed", 1.into())])
                .build(),
            run(2, "ddsas")
                .trained(13, 0.40, &[("epochs", 1.into())])
                .build(),
            run(3, "ddsas").build(),
        ];
        let choice = Choice::apply(&mut runs, None);
        let words = choice.test_words().unwrap();
        assert!(
            words.contains("most recent training config (epochs=1)"),
            "{words}"
        );
        assert!(
            words.contains("1 training under other configs left out"),
            "{words}"
        );
        assert!((runs[0].test_acc.unwrap() - 0.60).abs() < 1e-12);
        assert_eq!(runs[0].test_epochs, Some(1));
        assert_eq!(runs[1].test_acc, Some(0.40));
        assert_eq!(runs[2].test_acc, None);

        let choice = Choice::apply(&mut runs, Some(&evaluate(600)));
        let words = choice.test_words().unwrap();
        assert!(
            words.contains("the sweep's `evaluate:` config (appendix B.1 (epochs=600))"),
            "{words}"
        );
        assert!(words.contains("3 trainings under other configs"), "{words}");
        assert_eq!(runs[0].test_acc, Some(0.90));
        assert_eq!(runs[0].test_epochs, Some(600));
        assert_eq!(runs[1].test_acc, None);

        runs[1].trainings[0].train_run_id = 9; // run 1's latest is now epochs=1 only
        runs[0].trainings.retain(|t| t.train_run_id == 10);
        let choice = Choice::apply(&mut runs, None);
        assert!(matches!(choice, Choice::Ambiguous(_)), "{choice:?}");
        let why = choice.ambiguity().unwrap();
        assert!(
            why.contains("appendix B.1 (epochs=600) for run 1; epochs=1 for run 2")
                && why.contains("`evaluate:`"),
            "{why}"
        );
        assert!(runs.iter().all(|r| r.test_acc.is_none()));
        assert_eq!(choice.test_words(), None);
    }
}
