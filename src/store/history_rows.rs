//! Typed rows of the history questions that `runs show`, `sweep status`
//! and the web pages ask ([`ReadOnlyDb`](super::ReadOnlyDb)): the commands
//! and the pages format these, never columns picked by name.
//!
//! They are read through the read-only connection's free-form rows (so
//! PostgreSQL's `numeric` and timestamps read back, and a database older
//! than the newest migration, which a read never migrates, still answers)
//! and decoded here, once, by column name: a column that an old schema
//! lacks reads as NULL.
//!
//! Adding a column to an epoch table: one line in its `table_line!`
//! below (the field is named as the column); the SQL, `runs show` and
//! the run page follow. Adding one to [`RunCard`]: a field here and one
//! line in [`RunCard::read`]; to [`RunRow`], one line in `run_row`
//! (`run_card` selects every column of `runs`).

use serde_json::Value;

use super::queries::{QueryError, QueryRows};
use super::rows::{StoredText, TRAIN_METHOD_TEXT};
use super::{Nb201Accuracy, RunKind, RunRow, RunStatus};
use crate::config::Method;

/// One row of a [`QueryRows`], its cells found by column name (the one
/// place that picks a history row's cells by name).
pub struct Cells<'a> {
    columns: &'a [String],
    row: &'a [Value],
}

impl QueryRows {
    /// Each row with its column names.
    pub(super) fn cells(&self) -> impl Iterator<Item = Cells<'_>> {
        self.rows.iter().map(|row| Cells {
            columns: &self.columns,
            row,
        })
    }

    /// Every row decoded by `read`.
    pub(super) fn decode<T>(
        &self,
        read: impl Fn(&Cells<'_>) -> Result<T, QueryError>,
    ) -> Result<Vec<T>, QueryError> {
        self.cells().map(|c| read(&c)).collect()
    }
}

impl Cells<'_> {
    /// The cell of column `name`; NULL if there is no such column.
    fn value(&self, name: &str) -> &Value {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.row.get(i))
            .unwrap_or(&Value::Null)
    }

    /// The cell of column `name` as a `T`.
    pub(super) fn get<T: Column>(&self, name: &str) -> Result<T, QueryError> {
        T::from_cell(self.value(name)).map_err(|why| QueryError::Sql {
            message: format!("reading column `{name}` of the run history: {why}"),
        })
    }
}

/// A Rust type one cell decodes into.
pub(super) trait Column: Sized {
    /// The value of `cell`, or why it cannot be one.
    fn from_cell(cell: &Value) -> Result<Self, String>;
}

impl Column for Option<i64> {
    fn from_cell(cell: &Value) -> Result<Self, String> {
        match cell {
            Value::Null => Ok(None),
            // A whole real (PostgreSQL sends `3.0` of a numeric as 3.0).
            v => v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| format!("{v} is not an integer")),
        }
    }
}

impl Column for Option<f64> {
    fn from_cell(cell: &Value) -> Result<Self, String> {
        match cell {
            Value::Null => Ok(None),
            v => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("{v} is not a number")),
        }
    }
}

impl Column for Option<String> {
    fn from_cell(cell: &Value) -> Result<Self, String> {
        Ok(match cell {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            // A list like `parent` is text on one backend, a number when
            // it has one member on the other.
            other => Some(other.to_string()),
        })
    }
}

/// A cell that must not be NULL.
fn required<T>(value: Option<T>) -> Result<T, String> {
    value.ok_or_else(|| "it is NULL or missing".to_owned())
}

impl Column for i64 {
    fn from_cell(cell: &Value) -> Result<Self, String> {
        required(Option::<i64>::from_cell(cell)?)
    }
}

impl Column for f64 {
    fn from_cell(cell: &Value) -> Result<Self, String> {
        required(Option::<f64>::from_cell(cell)?)
    }
}

impl Column for String {
    fn from_cell(cell: &Value) -> Result<Self, String> {
        required(Option::<String>::from_cell(cell)?)
    }
}

impl Column for bool {
    fn from_cell(cell: &Value) -> Result<Self, String> {
        match cell {
            Value::Bool(b) => Ok(*b),
            other => Ok(Option::<i64>::from_cell(other)?.is_some_and(|v| v != 0)),
        }
    }
}

impl<T: StoredText> Column for T {
    fn from_cell(cell: &Value) -> Result<Self, String> {
        T::from_stored(&String::from_cell(cell)?)
    }
}

/// A row type of a table shown column by column (`runs show`'s epochs,
/// the run page's): its columns are its fields, in order.
pub trait TableLine: Sized {
    /// Column names, in order; the SQL selects them by these names.
    const COLUMNS: &'static [&'static str];
    /// The cells, in [`COLUMNS`](Self::COLUMNS) order, as a table shows them.
    fn cells(&self) -> Vec<Value>;
    /// Decodes one row.
    #[doc(hidden)]
    fn read(cells: &Cells<'_>) -> Result<Self, QueryError>;
}

/// Rows of a [`TableLine`] type as a table (columns and cells), for the
/// table printers of the terminal and the web page.
pub fn table_of<T: TableLine>(lines: &[T]) -> QueryRows {
    QueryRows {
        columns: T::COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        rows: lines.iter().map(TableLine::cells).collect(),
    }
}

/// Declares a [`TableLine`] struct whose fields are its columns.
macro_rules! table_line {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl TableLine for $name {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn cells(&self) -> Vec<Value> {
                vec![$(Value::from(self.$field)),*]
            }

            fn read(cells: &Cells<'_>) -> Result<Self, QueryError> {
                Ok($name { $($field: cells.get(stringify!($field))?,)* })
            }
        }
    };
}

table_line! {
    /// One epoch of a search as `runs show` tabulates it.
    SearchEpochLine {
        /// Epoch number, from 1.
        epoch: i64,
        /// Training (weight half) accuracy, 0..1.
        train_acc: f64,
        /// Training loss.
        train_loss: f64,
        /// Accuracy on the architecture half, 0..1.
        valid_acc: f64,
        /// Loss on the architecture half.
        valid_loss: f64,
        /// Weight learning rate.
        lr: f64,
        /// Gumbel temperature (GDAS only).
        tau: Option<f64>,
        /// `skip_connect` among the kept edges of the normal cell.
        skip_normal: i64,
        /// Same for the reduce cell (DARTS space).
        skip_reduce: Option<i64>,
        /// Cosine distance to the previous epoch's architecture.
        cosine_distance: Option<f64>,
        /// Wall seconds of the epoch.
        wall_s: f64,
        /// Images per second through search steps.
        images_per_s: f64,
    }
}

table_line! {
    /// One epoch of a train run as `runs show` tabulates it.
    TrainEpochLine {
        /// Epoch number, from 1.
        epoch: i64,
        /// Training accuracy, 0..1.
        train_acc: f64,
        /// Training loss.
        train_loss: f64,
        /// Test accuracy, 0..1.
        test_acc: f64,
        /// Test loss.
        test_loss: f64,
        /// Training top-5 accuracy, 0..1 (none with fewer than 5 classes).
        train_top5: Option<f64>,
        /// Test top-5 accuracy, 0..1.
        test_top5: Option<f64>,
        /// Learning rate.
        lr: f64,
        /// Drop-path probability.
        drop_path_prob: f64,
        /// Wall seconds of the epoch.
        wall_s: f64,
        /// Images per second through training steps.
        images_per_s: f64,
        /// Unreadable images skipped (ImageNet's folder loader only).
        skipped_images: Option<i64>,
    }
}

/// The `SELECT` list of a [`TableLine`] read from a table whose `epoch`
/// counts from 0: the lines count from 1, as people do.
pub(super) fn epoch_columns<T: TableLine>() -> String {
    T::COLUMNS
        .iter()
        .map(|c| match *c {
            "epoch" => "epoch + 1 AS epoch".to_owned(),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run's recorded epochs, of the table its kind records into.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEpochs {
    /// A search's epochs.
    Search(Vec<SearchEpochLine>),
    /// A train run's epochs.
    Train(Vec<TrainEpochLine>),
}

impl RunEpochs {
    /// How many epochs are recorded.
    pub fn len(&self) -> usize {
        match self {
            RunEpochs::Search(lines) => lines.len(),
            RunEpochs::Train(lines) => lines.len(),
        }
    }

    /// Whether no epoch is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The epochs as a table (columns and cells).
    pub fn table(&self) -> QueryRows {
        match self {
            RunEpochs::Search(lines) => table_of(lines),
            RunEpochs::Train(lines) => table_of(lines),
        }
    }
}

/// Everything the history holds about one run (its `runs` row, its sweeps,
/// its last skip count, the search it trains, its times as UTC text), as
/// `runs show` and the run page show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCard {
    /// Its row of `runs`.
    pub row: RunRow,
    /// The sweeps it is in, comma-separated.
    pub sweeps: Option<String>,
    /// `skip_connect` in the normal cell at the last recorded epoch.
    pub skip_normal: Option<i64>,
    /// Train runs: the searches whose cell it trains, comma-separated.
    pub parent: Option<String>,
    /// Registered (UTC text).
    pub created: Option<String>,
    /// First claimed (UTC text).
    pub started: Option<String>,
    /// Finished (UTC text).
    pub finished: Option<String>,
    /// Last heartbeat (UTC text).
    pub heartbeat: Option<String>,
    /// NAS-Bench-201 runs: the benchmark's accuracy of its architecture.
    pub nb201: Nb201Accuracy,
}

impl RunCard {
    /// Decodes the row of [`ReadOnlyDb::run_card`](super::ReadOnlyDb::run_card).
    pub(super) fn read(c: &Cells<'_>) -> Result<RunCard, QueryError> {
        Ok(RunCard {
            row: run_row(c)?,
            sweeps: c.get("sweep")?,
            skip_normal: c.get("skip_normal")?,
            parent: c.get("parent")?,
            created: c.get("created")?,
            started: c.get("started")?,
            finished: c.get("finished")?,
            heartbeat: c.get("heartbeat")?,
            nb201: Nb201Accuracy {
                nb201_cifar10: c.get("nb201_cifar10")?,
                nb201_cifar100: c.get("nb201_cifar100")?,
                nb201_imagenet16: c.get("nb201_imagenet16")?,
            },
        })
    }

    /// The method as stored and shown: a search method's name, or
    /// `train` for a run that searches nothing.
    pub fn method_text(&self) -> &'static str {
        super::rows::method_text(self.row.method)
    }
}

/// A row of `runs` (`SELECT *`) from the read-only connection. Columns an
/// older schema lacks read as their migration's default: NULL, and 1 for
/// `definitions`.
fn run_row(c: &Cells<'_>) -> Result<RunRow, QueryError> {
    let method_text: String = c.get("method")?;
    Ok(RunRow {
        id: c.get("id")?,
        fingerprint: c.get("fingerprint")?,
        kind: read_kind(c, &method_text)?,
        method: match method_text.as_str() {
            TRAIN_METHOD_TEXT => None,
            text => Some(Method::from_stored(text).map_err(|message| QueryError::Sql { message })?),
        },
        space: c.get("space")?,
        dataset: c.get("dataset")?,
        seed: c.get("seed")?,
        config_json: c.get("config_json")?,
        status: c.get("status")?,
        device: c.get("device")?,
        owner: c.get("owner")?,
        pid: c.get("pid")?,
        attempts: c.get("attempts")?,
        epochs_total: c.get("epochs_total")?,
        epochs_done: c.get("epochs_done")?,
        created_at: c.get("created_at")?,
        started_at: c.get("started_at")?,
        finished_at: c.get("finished_at")?,
        heartbeat_at: c.get("heartbeat_at")?,
        wall_s: c.get("wall_s")?,
        final_genotype: c.get("final_genotype")?,
        final_valid_acc: c.get("final_valid_acc")?,
        best_valid_acc: c.get("best_valid_acc")?,
        error: c.get("error")?,
        checkpoint_path: c.get("checkpoint_path")?,
        definitions: c.get::<Option<i64>>("definitions")?.unwrap_or(1),
        params: c.get("params")?,
        final_test_acc: c.get("final_test_acc")?,
        best_test_acc: c.get("best_test_acc")?,
        world_size: c.get("world_size")?,
        dist_backend: c.get("dist_backend")?,
    })
}

/// The kind of a run's row. A database older than migration 0007 that is
/// only read is never migrated, so it has no `kind` column: its train runs
/// are known by their method text.
pub(super) fn read_kind(c: &Cells<'_>, method_text: &str) -> Result<RunKind, QueryError> {
    match c.get::<Option<String>>("kind")? {
        Some(_) => c.get("kind"),
        None if method_text == TRAIN_METHOD_TEXT => Ok(RunKind::Train),
        None => Ok(RunKind::Search),
    }
}

/// A train run of a search's cell (`runs show` of the search).
#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    /// The train run's id.
    pub train_run_id: i64,
    /// Where it is in its life cycle.
    pub status: RunStatus,
    /// Its config (the train setting it trains under).
    pub config_json: String,
    /// Its final test accuracy, once done.
    pub test_acc: Option<f64>,
}

impl Training {
    /// Decodes a row of [`ReadOnlyDb::trainings_of`](super::ReadOnlyDb::trainings_of).
    pub(super) fn read(c: &Cells<'_>) -> Result<Training, QueryError> {
        Ok(Training {
            train_run_id: c.get("train_run_id")?,
            status: c.get("status")?,
            config_json: c.get("config_json")?,
            test_acc: c.get("test_acc")?,
        })
    }
}

/// Where a run stands, as a live page refreshes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    /// Run id.
    pub id: i64,
    /// Where it is in its life cycle.
    pub status: RunStatus,
    /// Epochs recorded.
    pub epochs_done: i64,
    /// Epochs asked for.
    pub epochs_total: i64,
    /// Claims so far.
    pub attempts: i64,
    /// Last failure message.
    pub error: Option<String>,
    /// Valid accuracy at the end of the search.
    pub final_valid_acc: Option<f64>,
    /// Best valid accuracy over the epochs.
    pub best_valid_acc: Option<f64>,
    /// Device of the last claim.
    pub device: Option<String>,
}

impl RunState {
    /// Decodes the row of [`ReadOnlyDb::run_state`](super::ReadOnlyDb::run_state).
    pub(super) fn read(c: &Cells<'_>) -> Result<RunState, QueryError> {
        Ok(RunState {
            id: c.get("id")?,
            status: c.get("status")?,
            epochs_done: c.get("epochs_done")?,
            epochs_total: c.get("epochs_total")?,
            attempts: c.get("attempts")?,
            error: c.get("error")?,
            final_valid_acc: c.get("final_valid_acc")?,
            best_valid_acc: c.get("best_valid_acc")?,
            device: c.get("device")?,
        })
    }
}

/// A sweep's own row (`sweep status`).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepHeader {
    /// Sweep name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// The sweep file it was registered from.
    pub file: Option<String>,
    /// Registered (UTC text).
    pub created: Option<String>,
    /// Whether `sweep cancel` stopped it.
    pub cancelled: bool,
}

impl SweepHeader {
    /// Decodes the row of [`ReadOnlyDb::sweep_header`](super::ReadOnlyDb::sweep_header).
    pub(super) fn read(c: &Cells<'_>) -> Result<SweepHeader, QueryError> {
        Ok(SweepHeader {
            name: c.get("name")?,
            description: c.get("description")?,
            file: c.get("file")?,
            created: c.get("created")?,
            cancelled: c.get("cancelled")?,
        })
    }
}

/// One run of a sweep, in plan order, with its progress (`sweep status`,
/// the sweep API).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRunProgress {
    /// Position in the sweep's plan; `None` for the runs its `evaluate:`
    /// stage queued, which the plan does not list.
    pub position: Option<i64>,
    /// Run id.
    pub id: i64,
    /// Where it is in its life cycle.
    pub status: RunStatus,
    /// Epochs recorded.
    pub epochs_done: i64,
    /// Epochs asked for.
    pub epochs_total: i64,
    /// Valid accuracy at the end of the search.
    pub final_valid_acc: Option<f64>,
    /// Best valid accuracy over the epochs.
    pub best_valid_acc: Option<f64>,
    /// Valid accuracy of the last recorded epoch.
    pub last_acc: Option<f64>,
    /// Claims so far.
    pub attempts: i64,
    /// Device of the last claim.
    pub device: Option<String>,
    /// Wall seconds of the finished run.
    pub wall_s: Option<f64>,
    /// Last failure message.
    pub error: Option<String>,
    /// Canonical JSON of the resolved config.
    pub config_json: String,
}

impl SweepRunProgress {
    /// Decodes a row of [`ReadOnlyDb::sweep_progress`](super::ReadOnlyDb::sweep_progress).
    pub(super) fn read(c: &Cells<'_>) -> Result<SweepRunProgress, QueryError> {
        Ok(SweepRunProgress {
            position: c.get("position")?,
            id: c.get("id")?,
            status: c.get("status")?,
            epochs_done: c.get("epochs_done")?,
            epochs_total: c.get("epochs_total")?,
            final_valid_acc: c.get("final_valid_acc")?,
            best_valid_acc: c.get("best_valid_acc")?,
            last_acc: c.get("last_acc")?,
            attempts: c.get("attempts")?,
            device: c.get("device")?,
            wall_s: c.get("wall_s")?,
            error: c.get("error")?,
            config_json: c.get("config_json")?,
        })
    }
}
