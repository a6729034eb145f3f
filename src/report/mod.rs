//! The paper's figures and tables, drawn from the run history only
//! (docs/design.md §4): Figs. 7, 8, 9, 10 and 12 as PNG + SVG with a
//! JSON sidecar of the numbers drawn, Table 5 as Markdown, CSV, LaTeX and
//! JSON, pictures of the searched cells as Fig. 11 draws them ([`cells`]),
//! and an `index.html` that shows them all.
//!
//! Each figure is made in three steps: the tables it draws are loaded into
//! [`SweepData`] ([`records`]), a pure `compute` turns the runs into a
//! [`Figure`] (its [`Heading`] and its numbers, a `#[derive(Serialize)]`
//! struct that *is* the JSON sidecar), and [`Draw::draw`] arranges the
//! numbers with the widgets of [`draw`]. The numbers are thus unit-tested
//! on hand-made runs, and the sidecar can never disagree with the drawing.
//!
//! Every figure works on the `done` runs of one sweep. When the sweep cannot
//! support a figure (no runs of the right kind, a metric that is not
//! recorded), the figure is not drawn: [`ReportError::CannotDraw`] says what
//! is missing and which command would produce it, because an empty or
//! half-filled image would be read as a result.

#![deny(missing_docs)]

pub mod cell_layout;
pub mod cells;
pub mod columns;
pub mod data;
pub mod draw;
pub mod escape;
pub mod fig10;
pub mod fig12;
pub mod fig7;
pub mod fig8;
pub mod fig9;
pub mod index;
pub mod labels;
pub mod nb201;
pub mod records;
pub mod results;
pub mod run_curves;
pub mod stats;
pub mod table5;
pub mod trainings;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::store::{Store, StoreError};
use records::Table;

pub use data::SweepData;
pub use labels::runs_text;

/// What can stop a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The sweep name is not in the database.
    #[error("sweep `{sweep}` is not in {db}: {known}")]
    UnknownSweep {
        /// The name asked for.
        sweep: String,
        /// The database file.
        db: String,
        /// The sweeps that exist, or how to make one.
        known: String,
    },
    /// The sweep's runs cannot support a figure (or any figure).
    #[error("{figure}: sweep `{sweep}` {missing}; {hint}")]
    CannotDraw {
        /// Which figure (`fig7`, `table5`, `report`).
        figure: String,
        /// The sweep.
        sweep: String,
        /// What is missing, in words.
        missing: String,
        /// The command that would produce it.
        hint: String,
    },
    /// Reading the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The output folder cannot be created or written into.
    #[error("cannot write figures into {path}: {source}; choose another folder with --out")]
    OutDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// plotters failed to draw or encode a figure.
    #[error("drawing {figure} failed: {message}")]
    Draw {
        /// Which figure.
        figure: String,
        /// plotters' message.
        message: String,
    },
    /// A NAS-Bench-201 table could not be imported.
    #[error("{0}")]
    Nb201(String),
}

impl ReportError {
    /// A `CannotDraw` for `figure` of `sweep`.
    pub fn cannot(
        figure: &str,
        sweep: &str,
        missing: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ReportError::CannotDraw {
            figure: figure.into(),
            sweep: sweep.into(),
            missing: missing.into(),
            hint: hint.into(),
        }
    }
}

/// Which figure or table to make: its entry in [`FIGURES`].
pub type Kind = &'static Spec;

/// One figure or table as the report knows it: its names, its files, the
/// recorded tables it reads, and how it is made. Each figure's module
/// defines its own, and [`FIGURES`] lists them, so that adding a figure is
/// a module and one line there; nothing else matches on which figure it is.
pub struct Spec {
    /// Short name used in messages (`fig7`, `fig10 --per step`, `table5`).
    pub name: &'static str,
    /// What its sidecar calls it (`fig7`, ..., `fig12`, `table5`).
    pub figure: &'static str,
    /// File name of its outputs, without extension.
    pub stem: &'static str,
    /// Extensions of the files it writes under [`stem`](Self::stem).
    pub extensions: &'static [&'static str],
    /// The recorded tables it draws, besides the runs.
    pub tables: &'static [Table],
    /// Its name in the URLs of a sweep's page (`ddsas serve`); `None` when
    /// the page does not offer it.
    pub page: Option<&'static str>,
    /// A table: a page shows it as HTML rather than as a picture.
    pub is_table: bool,
    /// Computes it from data holding its tables and writes its files.
    pub make: fn(&SweepData, &Options) -> Result<Output, ReportError>,
    /// Computes it and draws it in memory, for a web page.
    pub draw: fn(&SweepData, &Options) -> Result<Drawn, ReportError>,
    /// Removes the files it writes under other names than its stem (the
    /// cells' pictures are named after their runs), when it is skipped.
    pub remove_more: Option<fn(&Path)>,
}

/// The files of a figure drawn as a picture: PNG, SVG and the JSON sidecar.
pub const PICTURE_FILES: &[&str] = &["png", "svg", "json"];

impl Spec {
    /// The files this figure or table writes under fixed names (the
    /// cells' pictures are named after their runs: [`cells::remove_pictures`]).
    pub fn files(&self) -> Vec<String> {
        self.extensions
            .iter()
            .map(|e| format!("{}.{e}", self.stem))
            .collect()
    }
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Serialize for Spec {
    /// As its sidecar names it ([`Spec::figure`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.figure)
    }
}

/// Every figure and table, in the order `report all` makes them and a
/// sweep's page shows them.
pub static FIGURES: &[Kind] = &[
    &fig7::SPEC,
    &fig8::SPEC,
    &fig9::SPEC,
    &fig10::PER_STEP,
    &fig10::PER_EPOCH,
    &fig12::SPEC,
    &table5::SPEC,
    &results::SPEC,
    &cells::SPEC,
];

/// The figures and tables a sweep's page offers, in `report all`'s order
/// (the cells have their own pictures on each run's page).
pub fn page_kinds() -> impl Iterator<Item = Kind> {
    FIGURES.iter().copied().filter(|k| k.page.is_some())
}

/// Options every figure shares.
#[derive(Debug, Clone)]
pub struct Options {
    /// Output folder (created if missing).
    pub out: PathBuf,
    /// Fig. 7 metric: `valid_acc` or `test_acc`.
    pub metric: String,
    /// Fig. 9: draw this one run instead of each setting's mean; cells:
    /// draw this run's cells only.
    pub run: Option<i64>,
    /// Cells: how many of the best runs of each setting to draw.
    pub top: usize,
}

/// One picture of an output, as the index shows it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The PNG, shown.
    pub png: PathBuf,
    /// The SVG, linked from it.
    pub svg: PathBuf,
    /// Canvas size.
    pub size: (u32, u32),
    /// Its own caption when an output has several pictures.
    pub caption: Option<String>,
}

/// What one figure or table produced, for the summary and `index.html`.
#[derive(Debug, Clone)]
pub struct Output {
    /// Which figure.
    pub kind: Kind,
    /// Title as drawn.
    pub title: String,
    /// Which runs, how many seeds, which metric (the index caption).
    pub caption: String,
    /// Files written, PNG first for figures.
    pub files: Vec<PathBuf>,
    /// Canvas size of a figure (its first picture's).
    pub size: Option<(u32, u32)>,
    /// Its pictures (none for tables).
    pub images: Vec<Image>,
    /// An HTML fragment to show instead of an image (tables).
    pub html: Option<String>,
    /// Text to print on the terminal (tables).
    pub printed: Option<String>,
    /// A line to print under the summary: what a figure left off its page.
    pub note: Option<String>,
    /// Seconds spent on it: reading the tables only it needed, computing
    /// and drawing.
    pub seconds: f64,
}

/// Makes one figure or table of `data` under `opts.out`, first reading
/// the recorded tables it draws that `data` does not hold yet.
pub async fn render(
    store: &Store,
    data: &SweepData,
    kind: Kind,
    opts: &Options,
) -> Result<Output, ReportError> {
    prepare_out_dir(&opts.out)?;
    let start = Instant::now();
    let data = with_tables(store, data, kind).await?;
    let mut out = (kind.make)(&data, opts)?;
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// `data` with the recorded tables `kind` draws, read if it lacks them.
async fn with_tables<'a>(
    store: &Store,
    data: &'a SweepData,
    kind: Kind,
) -> Result<std::borrow::Cow<'a, SweepData>, ReportError> {
    let missing: Vec<Table> = kind
        .tables
        .iter()
        .copied()
        .filter(|t| !data.records.has(*t))
        .collect();
    if missing.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(data));
    }
    let mut more = data.clone();
    more.records
        .load(store, &more.name, &data.runs, &missing)
        .await?;
    Ok(std::borrow::Cow::Owned(more))
}

/// A figure or table drawn for a web page instead of files (`ddsas serve`):
/// the same numbers and the same drawing as the files, as SVG text or, for
/// a table, the HTML fragment `index.html` shows.
#[derive(Debug, Clone)]
pub struct Drawn {
    /// Title as drawn.
    pub title: String,
    /// Which runs, how many seeds, which metric.
    pub caption: String,
    /// The drawing.
    pub body: DrawnBody,
}

/// What a [`Drawn`] holds.
#[derive(Debug, Clone)]
pub enum DrawnBody {
    /// A figure, as a standalone SVG document.
    Svg(String),
    /// A table, as an HTML fragment.
    Html(String),
}

/// Draws one figure or table of `data` in memory (no file written),
/// first reading the recorded tables it draws that `data` lacks. Cells
/// are drawn per run ([`cells::of_run`], [`cells::svg`]).
pub async fn draw_in_memory(
    store: &Store,
    data: &SweepData,
    kind: Kind,
    opts: &Options,
) -> Result<Drawn, ReportError> {
    let data = with_tables(store, data, kind).await?;
    (kind.draw)(&data, opts)
}

/// A table as a web page shows it: its HTML fragment.
pub(crate) fn drawn_table<T: Serialize>(table: TableFiles<'_, T>) -> Drawn {
    Drawn {
        title: table.title,
        caption: table.caption,
        body: DrawnBody::Html(table.html),
    }
}

/// A figure's drawing as SVG text, with its title and caption.
pub(crate) fn drawn_figure<N: Draw>(fig: &Figure<N>) -> Result<Drawn, ReportError> {
    let plot = fig.numbers.draw(&fig.heading);
    let svg = draw::svg_text(&plot).map_err(|e| ReportError::Draw {
        figure: fig.heading.kind.stem.into(),
        message: e.0,
    })?;
    Ok(Drawn {
        title: fig.heading.title.clone(),
        caption: fig.heading.caption.clone(),
        body: DrawnBody::Svg(svg),
    })
}

/// Draws cells that were not chosen from a sweep (`report cells --run ID`
/// without `--sweep`, or `--genotype`) under `opts.out`.
pub fn render_cells(fig: &Figure<cells::Cells>, opts: &Options) -> Result<Output, ReportError> {
    prepare_out_dir(&opts.out)?;
    let start = Instant::now();
    let mut out = cells::write(fig, opts)?;
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// What `ddsas report all` did: the figures made and the ones skipped.
#[derive(Debug, Clone)]
pub struct AllOutput {
    /// Figures and tables written.
    pub made: Vec<Output>,
    /// `(figure, why it was not drawn)`.
    pub skipped: Vec<(String, String)>,
    /// The index page.
    pub index: PathBuf,
}

/// Every figure and table the sweep can support, plus `index.html`. A
/// figure the runs cannot support is skipped with its reason; any other
/// error stops. Fails if nothing at all can be drawn. Each recorded table
/// is read once, for all the figures.
pub async fn render_all(
    store: &Store,
    data: &SweepData,
    opts: &Options,
) -> Result<AllOutput, ReportError> {
    let mut tables: Vec<Table> = FIGURES.iter().flat_map(|k| k.tables).copied().collect();
    tables.sort_unstable();
    tables.dedup();
    let mut data = data.clone();
    data.records
        .load(store, &data.name, &data.runs, &tables)
        .await?;
    let mut made = Vec::new();
    let mut skipped = Vec::new();
    for &kind in FIGURES {
        match render(store, &data, kind, opts).await {
            Ok(out) => made.push(out),
            Err(ReportError::CannotDraw { missing, hint, .. }) => {
                // A file left by an earlier report would now be stale.
                for name in kind.files() {
                    let _ = std::fs::remove_file(opts.out.join(name));
                }
                if let Some(remove) = kind.remove_more {
                    remove(&opts.out);
                }
                skipped.push((
                    kind.name.to_owned(),
                    format!("sweep `{}` {missing}; {hint}", data.name),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    if made.is_empty() {
        return Err(ReportError::cannot(
            "report all",
            &data.name,
            "supports none of the figures",
            skipped
                .iter()
                .map(|(k, why)| format!("{k}: {why}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    let index = index::write(&data, &made, &skipped, &opts.out)?;
    Ok(AllOutput {
        made,
        skipped,
        index,
    })
}

/// A table's files: `texts` (extension, content), then its JSON, under
/// `opts.out` with stem `kind.stem`; the `Output` shows `html` in the
/// index and prints `printed`.
pub(crate) struct TableFiles<'a, T: Serialize> {
    /// Which table.
    pub kind: Kind,
    /// Its title.
    pub title: String,
    /// Its caption.
    pub caption: String,
    /// `(extension, text)` of each text file.
    pub texts: Vec<(&'static str, String)>,
    /// The numbers, written as `<stem>.json`.
    pub json: &'a T,
    /// The index's HTML fragment.
    pub html: String,
    /// What the terminal shows.
    pub printed: String,
}

/// Writes a table's files ([`TableFiles`]).
pub(crate) fn write_table<T: Serialize>(
    table: TableFiles<'_, T>,
    opts: &Options,
) -> Result<Output, ReportError> {
    let stem = table.kind.stem;
    let mut files = Vec::new();
    for (ext, text) in &table.texts {
        let path = opts.out.join(format!("{stem}.{ext}"));
        write_file(&path, text)?;
        files.push(path);
    }
    let path = opts.out.join(format!("{stem}.json"));
    write_json(&path, table.json)?;
    files.push(path);
    Ok(Output {
        kind: table.kind,
        title: table.title,
        caption: table.caption,
        files,
        size: None,
        images: Vec::new(),
        html: Some(table.html),
        printed: Some(table.printed),
        note: None,
        seconds: 0.0,
    })
}

/// Writes `text` to `path`, mapping the error to [`ReportError::Write`].
/// Creates `--out` and checks that files can be written into it, so that a
/// wrong folder is named once, before any drawing (plotters reports a
/// failed PNG write only as a debug dump of its error).
fn prepare_out_dir(out: &Path) -> Result<(), ReportError> {
    let failed = |source: std::io::Error| ReportError::OutDir {
        path: out.to_owned(),
        source,
    };
    if out.exists() && !out.is_dir() {
        return Err(failed(std::io::Error::other("it is a file, not a folder")));
    }
    std::fs::create_dir_all(out).map_err(failed)?;
    let probe = out.join(".ddsas-write-test");
    std::fs::write(&probe, b"").map_err(failed)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` as pretty JSON (a sidecar: the numbers drawn), objects'
/// keys in sorted order, so that a file does not change when a struct's
/// fields are reordered and two reports diff cleanly.
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ReportError> {
    let failed = |e: serde_json::Error| ReportError::Write {
        path: path.to_owned(),
        source: e.into(),
    };
    let sorted = serde_json::to_value(value).map_err(failed)?;
    let text = serde_json::to_string_pretty(&sorted).map_err(failed)?;
    write_file(path, &(text + "\n"))
}

/// What a figure is: which one, of which sweep (both in its sidecar), and
/// the words shown with it.
#[derive(Debug, Clone, Serialize)]
pub struct Heading {
    /// Which figure; the sidecar's `figure`.
    #[serde(rename = "figure")]
    pub kind: Kind,
    /// Sweep name.
    pub sweep: String,
    /// Title, as drawn.
    #[serde(skip)]
    pub title: String,
    /// The index caption: which runs, seeds and metric.
    #[serde(skip)]
    pub caption: String,
}

/// A computed figure: its heading and its numbers `N`, serialised together
/// (with the canvas size) as its JSON sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct Figure<N> {
    /// Which figure, title and caption.
    #[serde(flatten)]
    pub heading: Heading,
    /// What it draws.
    #[serde(flatten)]
    pub numbers: N,
}

/// How a figure's numbers are laid out with the widgets of [`draw`].
pub trait Draw {
    /// The drawing.
    type Plot: draw::Plot;
    /// Lays out the figure titled as `heading` says.
    fn draw(&self, heading: &Heading) -> Self::Plot;

    /// A line for the command's output beside the figure's row (what it
    /// left off the page), if any.
    fn note(&self) -> Option<String> {
        None
    }
}

/// The sidecar of a figure: its numbers with the canvas size.
#[derive(Serialize)]
struct Sidecar<'a, N> {
    #[serde(flatten)]
    figure: &'a Figure<N>,
    width: u32,
    height: u32,
}

/// Saves a figure as PNG + SVG plus its JSON sidecar, so that every number
/// drawn can be checked or re-plotted without the database.
pub(crate) fn save_figure<N: Draw + Serialize>(
    fig: &Figure<N>,
    opts: &Options,
) -> Result<Output, ReportError> {
    use draw::Plot as _;
    let heading = &fig.heading;
    let stem = heading.kind.stem;
    let plot = fig.numbers.draw(heading);
    let mut files = draw::save(&plot, &opts.out, stem).map_err(|e| ReportError::Draw {
        figure: stem.into(),
        message: e.0,
    })?;
    let (width, height) = plot.size();
    let images = vec![Image {
        png: files[0].clone(),
        svg: files[1].clone(),
        size: (width, height),
        caption: None,
    }];
    let path = opts.out.join(format!("{stem}.json"));
    write_json(
        &path,
        &Sidecar {
            figure: fig,
            width,
            height,
        },
    )?;
    files.push(path);
    Ok(Output {
        kind: heading.kind,
        title: heading.title.clone(),
        caption: heading.caption.clone(),
        files,
        size: Some((width, height)),
        images,
        html: None,
        printed: None,
        note: fig.numbers.note(),
        seconds: 0.0,
    })
}
