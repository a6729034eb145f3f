//! `ddsas report cells`: pictures of searched cells, as the appendix's
//! Fig. 11 shows the best cells DDSAS found: one picture per cell type
//! (normal and reduction in the DARTS space, the one cell of NB201), each
//! a left-to-right graph from the inputs c_{k-2}, c_{k-1} through
//! intermediate nodes 0..3 to the output c_{k}, every op edge labelled.
//!
//! Which cells: by default the best run of every setting of a sweep (the
//! runs split per (dataset, space) and setting as the other figures split
//! them), or the best `top` of each, ranked by the metric of Table 5 and
//! Fig. 7: the test accuracy of the cell trained from scratch where the
//! search has a done train run, else the search's final valid accuracy (a
//! proxy; trained runs rank first). Or one run (`--run`), or any genotype
//! text (`--genotype darts_v2`), with no sweep needed; `--genotype` also
//! draws the cells from the literature that `ddsas train` builds
//! (`nasnet_a`, `amoebanet_a`: five nodes, their own concat lists), so a
//! searched cell can be set beside them.
//!
//! Like the other figures: a pure compute (which runs, their genotypes,
//! the layout as data; the sidecar `cells.json`) and a drawing with the
//! widget kit ([`super::draw::dag`]), PNG and SVG from the same code.

use std::path::Path;

use serde::Serialize;

use super::cell_layout::{layout, CellGraph, CellLayout, DARTS_INPUTS, OUTPUT};
use super::data::{by_dataset_space, method_rank, page_rows, settings, Group, LeftOut, Setting};
use super::data::{SweepData, METHOD_ORDER};
use super::draw::dag::CellPicture;
use super::draw::Plot as _;
use super::labels::{method_label, plural, runs_text};
use super::{write_json, Figure, Heading, Image, Options, Output, ReportError, Spec};
use crate::arch::genotype::{self, parse_any};
use crate::arch::metrics::Genotype;
use crate::arch::space::{SearchSpace, SpaceKind};
use crate::arch::trained::TrainedGenotype;
use crate::config::Method;
use crate::store::{ReportRun, RunStatus};

/// File stem of the sidecar of a sweep's cells (pictures are
/// `cells_<run>_<cell>`).
pub const STEM: &str = "cells";

/// The cells (Fig. 11) in the report's table of figures. A sweep's page
/// draws them on each run's page instead.
pub static SPEC: Spec = Spec {
    name: "cells",
    figure: "cells",
    stem: STEM,
    extensions: &["json"],
    tables: &[],
    page: None,
    is_table: false,
    make: |data, opts| write(&compute(data, opts.run, opts.top)?, opts),
    draw: |data, _| {
        Err(ReportError::cannot(
            "cells",
            &data.name,
            "draws its cells on each run's page",
            "open a run",
        ))
    },
    remove_more: Some(remove_pictures),
};
/// Width and height of the graph in a picture of a DARTS cell (two
/// inputs, four intermediate nodes), pixels.
const DARTS_GRAPH: (f64, f64) = (1300.0, 540.0);
/// The same for an NB201 cell (one input, two intermediate nodes).
const NB201_GRAPH: (f64, f64) = (1300.0, 400.0);

/// What `report cells` draws (with its [`Heading`], the sidecar).
#[derive(Debug, Clone, Serialize)]
pub struct Cells {
    /// One per cell type of each cell drawn.
    pub pictures: Vec<Picture>,
    /// Stem of the sidecar: `cells`, `cells_<run>` or `cells_<name>`.
    #[serde(skip)]
    pub stem: String,
    /// Whether these are a sweep's cells, which replace the pictures of an
    /// earlier `report cells` in the folder (another best run would leave
    /// the old one's files behind).
    #[serde(skip)]
    pub replaces: bool,
    /// The settings whose cells were left off (a sweep's cells only).
    #[serde(skip_serializing_if = "LeftOut::is_empty")]
    pub left_out: LeftOut,
}

/// Settings whose cells a sweep's report draws at most: 12 settings are
/// 24 pictures of a DARTS-space sweep, what an index page shows at a
/// glance; a grid of 64 settings would be 128.
pub const PAGE_SETTINGS: usize = 12;

/// How well a drawn cell did, as its run is ranked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// `test_acc` (the trained cell) or `valid_acc` (the search, a proxy).
    pub metric: &'static str,
    /// Accuracy, 0..1.
    pub value: f64,
    /// Epochs the cell was trained for (test accuracy only).
    pub trained_epochs: Option<i64>,
}

impl Score {
    /// The score `run` is ranked by: test accuracy of its trained cell,
    /// else its final valid accuracy; none without either.
    pub fn of(run: &ReportRun) -> Option<Score> {
        match (run.test_acc, run.valid_acc) {
            (Some(value), _) => Some(Score {
                metric: "test_acc",
                value,
                trained_epochs: run.test_epochs,
            }),
            (None, Some(value)) => Some(Score {
                metric: "valid_acc",
                value,
                trained_epochs: None,
            }),
            (None, None) => None,
        }
    }

    /// "test accuracy 97.56 % (cell trained 600 epochs)".
    pub fn text(&self) -> String {
        let pct = 100.0 * self.value;
        match self.metric {
            "test_acc" => format!(
                "test accuracy {pct:.2} % (cell trained {})",
                plural(self.trained_epochs.unwrap_or(0).max(0) as usize, "epoch")
            ),
            _ => format!("final valid accuracy {pct:.2} % (search; cell not trained)"),
        }
    }

    /// Trained cells first, then by value, best first.
    fn rank_key(s: Option<&Score>) -> (u8, f64) {
        match s {
            Some(s) if s.metric == "test_acc" => (0, -s.value),
            Some(s) => (1, -s.value),
            None => (2, 0.0),
        }
    }
}

/// Where a drawn genotype comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// The search run, if any.
    pub run: Option<i64>,
    /// Its method (none for a genotype given as text).
    pub method: Option<Method>,
    /// Its setting's label (`DDSAS L=28 M=50`), or the genotype's name.
    pub label: String,
    /// Its dataset and space.
    pub group: Option<Group>,
    /// Its seed.
    pub seed: Option<i64>,
    /// What it is ranked by.
    pub score: Option<Score>,
    /// `(place, runs)`: its place among its setting's runs (1 = best) and
    /// how many there are.
    pub rank: Option<(usize, usize)>,
    /// The whole genotype text.
    pub genotype: String,
}

impl Source {
    /// "DDSAS run 12" or "darts_v2".
    fn name(&self) -> String {
        match (self.run, &self.method) {
            (Some(id), Some(m)) => format!("{} run {id}", method_label(Some(*m))),
            (Some(id), None) => format!("run {id}"),
            _ => self.label.clone(),
        }
    }

    /// The picture's subtitle: who (dataset and space, setting, seed) and
    /// how good (score, place among its setting's runs), a line each.
    fn subtitle(&self) -> Vec<String> {
        let mut who = Vec::new();
        if let Some(g) = &self.group {
            who.push(g.label());
        }
        if self.run.is_some() {
            who.push(self.label.clone());
        }
        if let Some(seed) = self.seed {
            who.push(format!("seed {seed}"));
        }
        let mut how = Vec::new();
        if let Some(s) = &self.score {
            how.push(s.text());
        }
        match self.rank {
            Some((1, 1)) => how.push("its setting's only run".into()),
            Some((1, n)) => how.push(format!("best of {n} runs")),
            Some((k, n)) => how.push(format!("no. {k} of {n} runs")),
            None => {}
        }
        if who.is_empty() && how.is_empty() {
            who.push(published_by(&self.label).into());
        }
        [who, how]
            .into_iter()
            .filter(|parts| !parts.is_empty())
            .map(|parts| parts.join(" · "))
            .collect()
    }

    /// The subtitle on one line, for captions.
    fn summary(&self) -> String {
        self.subtitle().join(" · ")
    }
}

/// Who published the cell called `label`, for a picture's subtitle (a
/// cell from the literature says it is drawn as DARTS's evaluation code
/// lists it, the form `ddsas train` builds).
fn published_by(label: &str) -> &'static str {
    match label {
        "darts_v1" | "darts_v2" => "a published DARTS cell (Liu et al., 2019)",
        "nasnet_a" => "NASNet-A (Zoph et al., 2018), as DARTS's genotypes.py lists it",
        "amoebanet_a" => "AmoebaNet-A (Real et al., 2019), as DARTS's genotypes.py lists it",
        _ => "given on the command line",
    }
}

/// One picture: one cell type of one genotype, laid out.
#[derive(Debug, Clone, Serialize)]
pub struct Picture {
    /// File stem: `cells_<run>_<cell>` or `cells_<name>_<cell>`.
    pub stem: String,
    /// Where the genotype comes from.
    #[serde(flatten)]
    pub source: Source,
    /// `normal`, `reduce` or `cell`.
    pub cell: &'static str,
    /// This cell type's part of the genotype text.
    pub cell_genotype: String,
    /// Where its nodes, edges and labels go.
    pub layout: CellLayout,
}

impl Picture {
    /// "Normal cell of DDSAS run 12".
    pub fn title(&self) -> String {
        let cell = match self.cell {
            "normal" => "Normal cell",
            "reduce" => "Reduction cell",
            _ => "Cell",
        };
        format!("{cell} of {}", self.source.name())
    }

    /// Lines under the legend: the cell's genotype text, how its input
    /// numbers map to the nodes drawn, and the `none` edges left out.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![self.cell_genotype.clone()];
        if self.cell != "cell" {
            notes.push(format!(
                "In the text, input 0 is {}, 1 is {} and n ≥ 2 is node n − 2; {} concatenates nodes {}.",
                DARTS_INPUTS[0],
                DARTS_INPUTS[1],
                OUTPUT,
                self.layout.concat_text()
            ));
        }
        if !self.layout.omitted.is_empty() {
            let edges: Vec<String> = self
                .layout
                .omitted
                .iter()
                .map(|(a, b)| format!("{a} → {b}"))
                .collect();
            notes.push(format!(
                "Not drawn: the `none` (zero) op on {}.",
                edges.join(", ")
            ));
        }
        notes
    }

    /// The drawing.
    pub fn plot(&self) -> CellPicture {
        CellPicture {
            title: self.title(),
            subtitle: self.source.subtitle(),
            layout: self.layout.clone(),
            notes: self.notes(),
        }
    }
}

/// The pictures of `genotype`, one per cell type, named `cells_<name>_<cell>`.
fn pictures(source: Source, genotype: &Genotype, name: &str) -> Vec<Picture> {
    let space = SearchSpace::new(genotype.space);
    let text = genotype.to_text();
    let parts: Vec<String> = match genotype.space {
        SpaceKind::Darts => text.split(' ').map(str::to_string).collect(),
        SpaceKind::Nb201 => vec![text],
    };
    space
        .cell_types()
        .iter()
        .zip(&genotype.cells)
        .zip(parts)
        .map(|((&cell, g), part)| Picture {
            stem: format!("{STEM}_{name}_{cell}"),
            source: source.clone(),
            cell,
            cell_genotype: part,
            layout: layout(
                &CellGraph::of(genotype.space, g),
                match genotype.space {
                    SpaceKind::Darts => DARTS_GRAPH,
                    SpaceKind::Nb201 => NB201_GRAPH,
                },
            ),
        })
        .collect()
}

/// The pictures of a cell to train that is outside the search spaces (a
/// cell from the literature: other node counts, concat lists and ops),
/// normal then reduction, named `cells_<name>_<cell>`; cells with more
/// than four nodes get a taller picture so their labels keep room.
fn trained_pictures(source: Source, genotype: &TrainedGenotype, name: &str) -> Vec<Picture> {
    let text = genotype.to_text();
    let (normal, reduce) = text
        .split_once(" reduce=")
        .map(|(n, r)| (n.to_string(), format!("reduce={r}")))
        .unwrap_or_else(|| (text.clone(), String::new()));
    [
        ("normal", &genotype.normal, normal),
        ("reduce", &genotype.reduce, reduce),
    ]
    .into_iter()
    .map(|(cell, c, part)| {
        let height = DARTS_GRAPH.1 * c.nodes().max(4) as f64 / 4.0;
        Picture {
            stem: format!("{STEM}_{name}_{cell}"),
            source: source.clone(),
            cell,
            cell_genotype: part,
            layout: layout(&CellGraph::of_trained(c), (DARTS_GRAPH.0, height)),
        }
    })
    .collect()
}

/// A search method's run, not a train run.
fn is_search(run: &ReportRun) -> bool {
    method_rank(run.method) < METHOD_ORDER.len()
}

/// The genotype of a done search `run`, read back from its text.
fn genotype_of(run: &ReportRun) -> Option<Genotype> {
    run.genotype.as_deref().and_then(|t| parse_any(t).ok())
}

/// The cells of `data`: the best `top` runs of every setting per (dataset,
/// space), or only `run` (a done search of the sweep).
pub fn compute(
    data: &SweepData,
    run: Option<i64>,
    top: usize,
) -> Result<Figure<Cells>, ReportError> {
    let drawable = drawable_runs(data, run)?;
    let groups = by_dataset_space(drawable.into_iter());
    let mut rows: Vec<(&Group, Setting)> = Vec::new();
    for (group, runs) in &groups {
        for setting in settings(runs, &["dataset", "space"]) {
            if run.is_none_or(|id| setting.runs.iter().any(|r| r.id == id)) {
                rows.push((group, setting));
            }
        }
    }
    let shown = page_rows(rows.len(), PAGE_SETTINGS);
    let mut left_out = LeftOut {
        settings: rows.len(),
        drawn: shown.len(),
        not_drawn: Vec::new(),
    };
    let mut pics = Vec::new();
    let mut caption = Vec::new();
    for (k, (group, setting)) in rows.iter().enumerate() {
        if !shown.contains(&k) {
            left_out.not_drawn.push(setting.info().caption(group));
            continue;
        }
        let ranked = ranked(&setting.runs);
        let n = ranked.len();
        let chosen: Vec<(usize, &ReportRun)> = ranked
            .into_iter()
            .enumerate()
            .filter(|(k, r)| match run {
                Some(id) => r.id == id,
                None => *k < top.max(1),
            })
            .collect();
        let label = setting.label();
        let ids: Vec<String> = chosen.iter().map(|(_, r)| r.id.to_string()).collect();
        caption.push(format!(
            "{label} on {}: run {} of {}",
            group.label(),
            ids.join(", "),
            runs_text(&setting.ids())
        ));
        for (k, r) in chosen {
            let g = genotype_of(r).expect("drawable runs have a genotype");
            let source = run_source(r, label.clone(), Some((k + 1, n)));
            pics.extend(pictures(source, &g, &r.id.to_string()));
        }
    }
    let which = match (run, top.max(1)) {
        (Some(id), _) => format!("Run {id}"),
        (None, 1) => "The best run of each setting".to_string(),
        (None, k) => format!("The best {k} runs of each setting"),
    };
    let heading = Heading {
        kind: &SPEC,
        sweep: data.name.clone(),
        title: format!("Cells — the searched cells as graphs (sweep {})", data.name),
        caption: format!(
            "{which}, ranked by the test accuracy of its cell trained from scratch where the search has one (trained cells first), else by the search's final valid accuracy (a proxy); each picture says which. {}.{}{}",
            caption.join("; "),
            left_out.sentence("cells"),
            data.not_done_note()
        ),
    };
    Ok(Figure {
        heading,
        numbers: Cells {
            pictures: pics,
            stem: STEM.into(),
            replaces: run.is_none(),
            left_out,
        },
    })
}

/// The done searches of `data` with a final genotype; refused when there
/// are none, or when `run` is given and is not one of them.
fn drawable_runs(data: &SweepData, run: Option<i64>) -> Result<Vec<&ReportRun>, ReportError> {
    let drawable: Vec<&ReportRun> = data
        .runs
        .iter()
        .filter(|r| is_search(r) && genotype_of(r).is_some())
        .collect();
    if drawable.is_empty() {
        return Err(ReportError::cannot(
            "cells",
            &data.name,
            "has no done search with a final genotype",
            data.run_hint(None),
        ));
    }
    if let Some(id) = run {
        if !drawable.iter().any(|r| r.id == id) {
            let ids: Vec<i64> = drawable.iter().map(|r| r.id).collect();
            return Err(ReportError::cannot(
                "cells",
                &data.name,
                format!("has no done search run {id} with a final genotype"),
                format!(
                    "pick one of its {} (`ddsas runs list --sweep {}`)",
                    runs_text(&ids),
                    data.name
                ),
            ));
        }
    }
    Ok(drawable)
}

/// The runs of a setting, best first ([`Score::rank_key`]), ties by id.
fn ranked<'a>(runs: &[&'a ReportRun]) -> Vec<&'a ReportRun> {
    let mut ranked = runs.to_vec();
    ranked.sort_by(|a, b| {
        let (ka, kb) = (
            Score::rank_key(Score::of(a).as_ref()),
            Score::rank_key(Score::of(b).as_ref()),
        );
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(a.id.cmp(&b.id))
    });
    ranked
}

/// The source of a drawn search `run` of setting `label`.
fn run_source(run: &ReportRun, label: String, rank: Option<(usize, usize)>) -> Source {
    Source {
        run: Some(run.id),
        method: run.method,
        label,
        group: Some(Group::of(run)),
        seed: Some(run.seed),
        score: Score::of(run),
        rank,
        genotype: run.genotype.clone().unwrap_or_default(),
    }
}

/// How one run is named without its sweep's settings: the method, with
/// DDSAS's L and M.
fn run_label(run: &ReportRun) -> String {
    match (run.l, run.m) {
        (Some(l), Some(m)) => format!("{} L={l} M={m}", method_label(run.method)),
        _ => method_label(run.method).to_string(),
    }
}

/// The cells of one run, `found` by id `id` in the database (any sweep):
/// refused when there is no such run, it is not a done search, or its
/// genotype cannot be read.
pub fn of_run(id: i64, found: Option<&ReportRun>) -> Result<Figure<Cells>, ReportError> {
    let refuse = |missing: String, hint: String| ReportError::cannot("cells", "", missing, hint);
    let Some(run) = found else {
        return Err(refuse(
            format!("there is no run {id} in the database"),
            "`ddsas runs list` shows the runs".into(),
        ));
    };
    if !is_search(run) {
        return Err(refuse(
            format!(
                "run {id} is a `{}` run, not a search",
                crate::store::method_text(run.method)
            ),
            format!("draw the search it trained (`ddsas runs show {id}` names it)"),
        ));
    }
    if run.status != RunStatus::Done {
        return Err(refuse(
            format!("run {id} is {}, not done: a search records its final genotype when it finishes", run.status),
            format!("finish it (`ddsas search --resume ...` or `ddsas sweep run`), or look at it with `ddsas runs show {id}`"),
        ));
    }
    // Without a sweep, its trainings of its most recent train config.
    let mut run = run.clone();
    super::trainings::Choice::apply(std::slice::from_mut(&mut run), None);
    let run = &run;
    let text = run.genotype.clone().unwrap_or_default();
    let g = parse_any(&text).map_err(|e| {
        refuse(
            format!("run {id}'s final genotype `{text}` cannot be read ({e})"),
            "report it as a bug".into(),
        )
    })?;
    let source = run_source(run, run_label(run), None);
    let heading = Heading {
        kind: &SPEC,
        sweep: String::new(),
        title: format!("Cells — {}", source.name()),
        caption: format!(
            "The final genotype of {} ({}), drawn as graphs.",
            source.name(),
            source.summary()
        ),
    };
    Ok(Figure {
        heading,
        numbers: Cells {
            pictures: pictures(source, &g, &id.to_string()),
            stem: format!("{STEM}_{id}"),
            replaces: false,
            left_out: LeftOut::default(),
        },
    })
}

/// The cells of search `run` as they stand: its final genotype once done
/// ([`of_run`]), else the genotype of its last recorded epoch `latest`
/// (epoch from 0, text), so that a page can show a search while it runs.
pub fn of_run_now(
    run: &ReportRun,
    latest: Option<(i64, &str)>,
) -> Result<Figure<Cells>, ReportError> {
    if run.status == RunStatus::Done || !is_search(run) {
        return of_run(run.id, Some(run));
    }
    let id = run.id;
    let Some((epoch, text)) = latest else {
        return Err(ReportError::cannot(
            "cells",
            "",
            format!("run {id} is {} and has recorded no epoch yet", run.status),
            "its cells appear after its first epoch",
        ));
    };
    let g = parse_any(text).map_err(|e| {
        ReportError::cannot(
            "cells",
            "",
            format!(
                "run {id}'s genotype at epoch {} `{text}` cannot be read ({e})",
                epoch + 1
            ),
            "report it as a bug",
        )
    })?;
    let mut source = run_source(
        run,
        format!("{} at epoch {}", run_label(run), epoch + 1),
        None,
    );
    source.genotype = g.to_text();
    let heading = Heading {
        kind: &SPEC,
        sweep: String::new(),
        title: format!("Cells — {}", source.name()),
        caption: format!(
            "The genotype of {} after epoch {} ({}), drawn as graphs.",
            source.name(),
            epoch + 1,
            run.status
        ),
    };
    Ok(Figure {
        heading,
        numbers: Cells {
            pictures: pictures(source, &g, &id.to_string()),
            stem: format!("{STEM}_{id}"),
            replaces: false,
            left_out: LeftOut::default(),
        },
    })
}

/// One picture as SVG text, as [`write`] draws its `.svg` file.
pub fn picture_svg(p: &Picture) -> Result<String, ReportError> {
    super::draw::svg_text(&p.plot()).map_err(|e| ReportError::Draw {
        figure: p.stem.clone(),
        message: e.0,
    })
}

/// The cells of a genotype given as text (any form [`parse_any`] reads,
/// a published name such as `darts_v2`, or a cell to train from the
/// literature such as `nasnet_a`, as [`genotype::parse_trained`] reads
/// it) or as `@FILE[:NAME]`.
pub fn of_genotype(text: &str) -> Result<Figure<Cells>, ReportError> {
    let drawn = read_drawable(text)?;
    let name = published_name(text.trim())
        .unwrap_or("genotype")
        .to_string();
    let genotype_text = match &drawn {
        Drawable::Space(g) => g.to_text(),
        Drawable::Trained(t) => t.to_text(),
    };
    let source = Source {
        run: None,
        method: None,
        label: if name == "genotype" {
            "the given genotype".into()
        } else {
            name.clone()
        },
        group: None,
        seed: None,
        score: None,
        rank: None,
        genotype: genotype_text.clone(),
    };
    let heading = Heading {
        kind: &SPEC,
        sweep: String::new(),
        title: format!("Cells — {}", source.label),
        caption: format!("The genotype {genotype_text}, drawn as graphs."),
    };
    let pictures = match &drawn {
        Drawable::Space(g) => pictures(source, g, &name),
        Drawable::Trained(t) => trained_pictures(source, t, &name),
    };
    Ok(Figure {
        heading,
        numbers: Cells {
            pictures,
            stem: format!("{STEM}_{name}"),
            replaces: false,
            left_out: LeftOut::default(),
        },
    })
}

/// A genotype `--genotype` draws.
enum Drawable {
    /// A cell of a search space.
    Space(Genotype),
    /// A cell to train outside the spaces (from the literature).
    Trained(TrainedGenotype),
}

/// A genotype of a search space, or else a cell to train from the
/// literature; when neither reads, the search spaces' error (a typo in a
/// DARTS cell reads best as the DARTS parser says it).
fn read_drawable(text: &str) -> Result<Drawable, ReportError> {
    match genotype::read_any(text) {
        Ok(g) => Ok(Drawable::Space(g)),
        Err(e) => genotype::read_trained(text).map(Drawable::Trained).map_err(|_| {
            ReportError::cannot(
                "cells",
                "",
                format!("--genotype cannot be read: {e}"),
                "give a genotype as `ddsas runs show` prints it, DARTS's `[NAME =] Genotype(...)`, an NB201 arch string, a published name (darts_v1, darts_v2, nasnet_a, amoebanet_a), or `@FILE` / `@FILE:NAME` for a file or a genotypes.py",
            )
        }),
    }
}

/// The published cell `text` names, by its own name (an alias such as
/// `nasnet` gives `nasnet_a`), if it names one.
fn published_name(text: &str) -> Option<&'static str> {
    genotype::PUBLISHED
        .iter()
        .map(|(n, _)| *n)
        .find(|n| *n == text)
        .or_else(|| {
            genotype::LITERATURE
                .iter()
                .find(|(own, _, aliases)| *own == text || aliases.contains(&text))
                .map(|(own, _, _)| *own)
        })
}

/// Removes the pictures (`cells_*.png`, `cells_*.svg`) and the sweep
/// sidecar an earlier `report cells` left in `out`.
pub fn remove_pictures(out: &Path) {
    let _ = std::fs::remove_file(out.join(format!("{STEM}.json")));
    let Ok(dir) = std::fs::read_dir(out) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{STEM}_"))
            && (name.ends_with(".png") || name.ends_with(".svg"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A picture in the sidecar, with its canvas size.
#[derive(Serialize)]
struct SidecarPicture<'a> {
    #[serde(flatten)]
    picture: &'a Picture,
    width: u32,
    height: u32,
}

/// The sidecar: heading and every picture with its size.
#[derive(Serialize)]
struct Sidecar<'a> {
    #[serde(flatten)]
    heading: &'a Heading,
    pictures: Vec<SidecarPicture<'a>>,
    #[serde(skip_serializing_if = "LeftOut::is_empty")]
    left_out: &'a LeftOut,
}

/// Draws every picture of `fig` as PNG + SVG under `opts.out` and writes
/// the sidecar; a sweep's cells first remove an earlier report's pictures.
pub fn write(fig: &Figure<Cells>, opts: &Options) -> Result<Output, ReportError> {
    let cells = &fig.numbers;
    if cells.replaces {
        remove_pictures(&opts.out);
    }
    let mut files = Vec::new();
    let mut images = Vec::new();
    let mut sides = Vec::new();
    for p in &cells.pictures {
        let plot = p.plot();
        let written =
            super::draw::save(&plot, &opts.out, &p.stem).map_err(|e| ReportError::Draw {
                figure: p.stem.clone(),
                message: e.0,
            })?;
        let size = plot.size();
        images.push(Image {
            png: written[0].clone(),
            svg: written[1].clone(),
            size,
            caption: Some(format!("{}: {}", p.title(), p.source.summary())),
        });
        files.extend(written);
        sides.push(SidecarPicture {
            picture: p,
            width: size.0,
            height: size.1,
        });
    }
    let path = opts.out.join(format!("{}.json", cells.stem));
    write_json(
        &path,
        &Sidecar {
            heading: &fig.heading,
            pictures: sides,
            left_out: &cells.left_out,
        },
    )?;
    files.push(path);
    Ok(Output {
        kind: &SPEC,
        title: fig.heading.title.clone(),
        caption: fig.heading.caption.clone(),
        size: images.first().map(|i| i.size),
        files,
        images,
        html: None,
        printed: None,
        note: cells.left_out.note("cells"),
        seconds: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::{run, sweep};

    const V1: &str = "normal=[(sep_conv_3x3,1),(sep_conv_3x3,0),(skip_connect,0),(sep_conv_3x3,1),(skip_connect,0),(sep_conv_3x3,1),(sep_conv_3x3,0),(skip_connect,2)] reduce=[(max_pool_3x3,0),(max_pool_3x3,1),(skip_connect,2),(max_pool_3x3,0),(max_pool_3x3,0),(skip_connect,2),(skip_connect,2),(avg_pool_3x3,0)]";
    const NB: &str =
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|";

    fn searched(id: i64, method: &str, acc: f64, genotype: &str) -> ReportRun {
        let mut r = run(id, method).acc(acc).build();
        r.genotype = Some(genotype.into());
        r
    }

    fn data() -> SweepData {
        let mut trained = run(3, "ddsas").acc(0.50).trained(30, 0.97, &[]).build();
        trained.genotype = Some(V1.into());
        let mut nb = searched(5, "ddsas", 0.6, NB);
        nb.space = SpaceKind::Nb201;
        nb.config_json = nb.config_json.replace("\"darts\"", "\"nb201\"");
        let mut no_genotype = run(6, "gdas").acc(0.9).build();
        no_genotype.genotype = None;
        sweep(vec![
            searched(1, "ddsas", 0.80, V1),
            searched(2, "ddsas", 0.90, V1),
            trained,
            searched(4, "darts", 0.70, "darts_v2"),
            nb,
            no_genotype,
        ])
    }

    #[test]
    fn a_grid_draws_a_page_of_settings_and_lists_the_rest() {
        let runs: Vec<ReportRun> = (1..=PAGE_SETTINGS as i64 + 2)
            .map(|id| {
                let mut r = run(id, "ddsas").set("M", id).acc(0.5).build();
                r.genotype = Some(V1.into());
                r
            })
            .collect();
        let fig = compute(&sweep(runs), None, 1).unwrap();
        let c = &fig.numbers;
        assert_eq!(c.left_out.settings, PAGE_SETTINGS + 2);
        assert_eq!(c.left_out.drawn, PAGE_SETTINGS);
        assert_eq!(c.left_out.not_drawn.len(), 2);
        assert_eq!(c.pictures.len(), 2 * PAGE_SETTINGS);
        // The first and the last setting are always on the page.
        assert_eq!(c.pictures[0].source.run, Some(1));
        assert_eq!(
            c.pictures.last().unwrap().source.run,
            Some(PAGE_SETTINGS as i64 + 2)
        );
        assert!(fig.heading.caption.contains("Drawn: 12 of 14 settings"));
        assert!(c.left_out.note("cells").unwrap().contains("drew 12 of 14"));
        // One run asked for is drawn whatever the page.
        let one = compute(&sweep(vec![searched(1, "ddsas", 0.5, V1)]), Some(1), 1).unwrap();
        assert!(one.numbers.left_out.is_empty());
    }

    fn runs_drawn(c: &Cells) -> Vec<(Option<i64>, &str)> {
        c.pictures.iter().map(|p| (p.source.run, p.cell)).collect()
    }

    #[test]
    fn the_best_run_of_each_setting_trained_cells_first() {
        let fig = compute(&data(), None, 1).unwrap();
        let c = &fig.numbers;
        // DARTS, then DDSAS (3: trained, beats 2's higher valid accuracy),
        // then NB201's DDSAS; the GDAS run has no genotype.
        assert_eq!(
            runs_drawn(c),
            [
                (Some(4), "normal"),
                (Some(4), "reduce"),
                (Some(3), "normal"),
                (Some(3), "reduce"),
                (Some(5), "cell")
            ]
        );
        let p = &c.pictures[2];
        assert_eq!(p.stem, "cells_3_normal");
        assert_eq!(p.source.rank, Some((1, 3)));
        assert_eq!(p.title(), "Normal cell of DDSAS run 3");
        let sub = p.source.summary();
        assert!(
            sub.contains("Digits, DARTS space")
                && sub.contains("seed 3")
                && sub.contains("test accuracy 97.00 % (cell trained 600 epochs)")
                && sub.contains("best of 3 runs"),
            "{sub}"
        );
        assert!(p.cell_genotype.starts_with("normal=[(sep_conv_3x3,1)"));
        assert!(c.replaces);
        assert!(fig
            .heading
            .caption
            .contains("DDSAS on Digits, DARTS space: run 3 of runs 1–3"));
        let nb = &c.pictures[4];
        assert_eq!(nb.layout.omitted.len(), 1);
        assert!(nb
            .notes()
            .iter()
            .any(|n| n.contains("`none` (zero) op on c_{k-1} → 2")));
        assert!(c.pictures[0]
            .source
            .summary()
            .contains("final valid accuracy 70.00 % (search; cell not trained)"));
    }

    #[test]
    fn top_k_and_one_run() {
        let c = compute(&data(), None, 2).unwrap().numbers;
        let ddsas: Vec<i64> = c
            .pictures
            .iter()
            .filter(|p| p.cell == "normal" && p.source.method == Some(Method::Ddsas))
            .filter_map(|p| p.source.run)
            .collect();
        assert_eq!(ddsas, [3, 2]);
        let one = compute(&data(), Some(1), 1).unwrap().numbers;
        assert_eq!(runs_drawn(&one), [(Some(1), "normal"), (Some(1), "reduce")]);
        assert_eq!(one.pictures[0].source.rank, Some((3, 3)));
        assert!(!one.replaces);
        let e = compute(&data(), Some(6), 1).unwrap_err().to_string();
        assert!(
            e.contains("no done search run 6 with a final genotype") && e.contains("runs 1–5"),
            "{e}"
        );
    }

    #[test]
    fn one_run_must_exist_be_a_done_search_and_have_a_genotype() {
        let e = of_run(9, None).unwrap_err().to_string();
        assert!(e.contains("no run 9") && e.contains("runs list"), "{e}");
        let mut r = searched(2, "ddsas", 0.9, V1);
        r.status = RunStatus::Running;
        let e = of_run(2, Some(&r)).unwrap_err().to_string();
        assert!(e.contains("run 2 is running, not done"), "{e}");
        let t = searched(7, "train", 0.9, V1);
        let e = of_run(7, Some(&t)).unwrap_err().to_string();
        assert!(e.contains("a `train` run, not a search"), "{e}");
        let ok = of_run(2, Some(&searched(2, "gdas", 0.9, V1))).unwrap();
        assert_eq!(ok.numbers.stem, "cells_2");
        assert_eq!(
            ok.numbers.pictures[1].title(),
            "Reduction cell of GDAS run 2"
        );
    }

    #[test]
    fn a_genotype_by_name_or_text() {
        let c = of_genotype("darts_v2").unwrap().numbers;
        assert_eq!(c.stem, "cells_darts_v2");
        assert_eq!(c.pictures[0].stem, "cells_darts_v2_normal");
        assert_eq!(c.pictures[0].title(), "Normal cell of darts_v2");
        let nb = of_genotype(NB).unwrap().numbers;
        assert_eq!(nb.pictures.len(), 1);
        assert_eq!(nb.pictures[0].stem, "cells_genotype_cell");
        assert_eq!(nb.pictures[0].title(), "Cell of the given genotype");
        let e = of_genotype("darts_v9").unwrap_err().to_string();
        assert!(e.contains("--genotype cannot be read"), "{e}");
    }

    #[test]
    fn cells_from_the_literature_are_drawn_to_files() {
        let fig = of_genotype("nasnet").unwrap();
        let c = &fig.numbers;
        assert_eq!(c.stem, "cells_nasnet_a");
        assert_eq!(c.pictures.len(), 2);
        let (normal, reduce) = (&c.pictures[0], &c.pictures[1]);
        assert_eq!(normal.title(), "Normal cell of nasnet_a");
        assert!(normal
            .source
            .summary()
            .contains("NASNet-A (Zoph et al., 2018)"));
        assert!(normal.cell_genotype.ends_with("normal_concat=[2,3,4,5,6]"));
        assert!(reduce.cell_genotype.starts_with("reduce=[(sep_conv_5x5,1)"));
        assert!(reduce
            .notes()
            .iter()
            .any(|n| n.ends_with("c_{k} concatenates nodes 2–4.")));
        let out = tempfile::tempdir().unwrap();
        let opts = Options {
            out: out.path().to_path_buf(),
            metric: "valid_acc".into(),
            run: None,
            top: 1,
        };
        let written = write(&fig, &opts).unwrap();
        assert_eq!(written.images.len(), 2);
        let svg = std::fs::read_to_string(out.path().join("cells_nasnet_a_reduce.svg")).unwrap();
        assert!(svg.contains("sep_conv_7x7") && svg.contains("max_pool_3x3"));
        let png = std::fs::read(out.path().join("cells_nasnet_a_normal.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        assert!(out.path().join("cells_nasnet_a.json").exists());
        let amoeba = of_genotype("amoebanet_a").unwrap().numbers;
        let svg = picture_svg(&amoeba.pictures[1]).unwrap();
        assert!(
            svg.contains("conv_7x1_1x7"),
            "the reduction cell's 7x1/1x7 op is drawn"
        );
        // A cell of the DARTS space still reads as one, with its old notes.
        let v2 = of_genotype("darts_v2").unwrap().numbers;
        assert!(v2.pictures[0]
            .notes()
            .iter()
            .any(|n| n.ends_with("c_{k} concatenates nodes 0–3.")));
    }
}
