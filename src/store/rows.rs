//! Rows as read back from the run history, and the claim a worker makes.
//!
//! Field names are the column names of `migrations/*/0001_schema_v1.sql`, so a
//! `SELECT *` maps onto them with `FromRow`.

use crate::arch::space::SpaceKind;
use crate::config::train::DistBackend;
use crate::config::Method;
use crate::data::DatasetKind;

/// Life cycle of a run (the `runs.status` CHECK constraint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Registered, never claimed.
    Queued,
    /// Claimed by an owner that heartbeats.
    Running,
    /// Finished; never run again (docs/design.md §5).
    Done,
    /// Ended with an error; may be retried from its checkpoint.
    Failed,
    /// Stopped cleanly (Ctrl-C); resumes from its checkpoint.
    Interrupted,
}

impl RunStatus {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Its stored text, as messages name it.
impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_stored(text)
    }
}

/// An enum stored as one of a fixed set of texts (a `CHECK`ed column, or
/// one the code writes only from that enum), so that rows decode straight
/// into it and code compares variants rather than strings.
pub(crate) trait StoredText: Sized + Copy + 'static {
    /// Every variant: parsing searches them.
    const ALL: &'static [Self];
    /// What it is, for the message about an unknown text.
    const WHAT: &'static str;
    /// The text stored in the database.
    fn stored(self) -> &'static str;

    /// The variant stored as `text`.
    fn from_stored(text: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.stored() == text)
            .ok_or_else(|| format!("unknown {} {text:?}", Self::WHAT))
    }
}

/// Implements sqlx `Type`, `Decode` and `Encode` for `Any` through
/// [`StoredText`] (a blanket impl over the trait is not allowed: the sqlx
/// traits are foreign).
macro_rules! stored_as_text {
    ($($ty:ty),* $(,)?) => {$(
        impl sqlx::Type<sqlx::Any> for $ty {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $ty {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<sqlx::Any>>::decode(value)?;
                Ok(<$ty as StoredText>::from_stored(&text)?)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Any>>::encode(StoredText::stored(*self), buf)
            }
        }
    )*};
}

stored_as_text!(RunStatus, RunKind, Method, SpaceKind, DatasetKind);

impl StoredText for RunStatus {
    const ALL: &'static [Self] = &[
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Done,
        RunStatus::Failed,
        RunStatus::Interrupted,
    ];
    const WHAT: &'static str = "run status";
    fn stored(self) -> &'static str {
        self.as_str()
    }
}

/// What a run does (the `runs.kind` CHECK constraint). Claims, heartbeats,
/// retries and the orchestrator treat every kind alike; the worker and the
/// evaluation stage branch on it. Room for more: ImageNet transfer and
/// data-parallel training are coming, each a kind of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// An architecture search (`ddsas search`, a sweep's runs).
    Search,
    /// A searched cell trained from scratch by the DARTS protocol
    /// (`ddsas train`, a sweep's `evaluate:` stage).
    Train,
}

impl RunKind {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Search => "search",
            RunKind::Train => "train",
        }
    }

    /// How messages name a run of the kind ("run", "train run").
    pub fn noun(self) -> &'static str {
        match self {
            RunKind::Search => "run",
            RunKind::Train => "train run",
        }
    }
}

/// Its stored text, as messages name it.
impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_stored(text)
    }
}

impl StoredText for RunKind {
    const ALL: &'static [Self] = &[RunKind::Search, RunKind::Train];
    const WHAT: &'static str = "run kind";
    fn stored(self) -> &'static str {
        self.as_str()
    }
}

impl StoredText for Method {
    const ALL: &'static [Self] = &[Method::Ddsas, Method::Darts, Method::Gdas];
    const WHAT: &'static str = "search method";
    fn stored(self) -> &'static str {
        self.name()
    }
}

impl StoredText for SpaceKind {
    const ALL: &'static [Self] = &[SpaceKind::Darts, SpaceKind::Nb201];
    const WHAT: &'static str = "search space";
    fn stored(self) -> &'static str {
        self.name()
    }
}

impl StoredText for DatasetKind {
    const ALL: &'static [Self] = &[
        DatasetKind::Digits,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
        DatasetKind::ImageNet,
    ];
    const WHAT: &'static str = "dataset";
    fn stored(self) -> &'static str {
        self.name()
    }
}

/// The method text train runs carry in `runs.method` (they have no search
/// method; SQL written against the history finds them by it).
pub(super) const TRAIN_METHOD_TEXT: &str = "train";

/// `runs.method` as stored and shown for a run's method: a search
/// method's name, or `train` for a run that searches nothing.
pub fn method_text(method: Option<Method>) -> &'static str {
    method.map_or(TRAIN_METHOD_TEXT, Method::name)
}

/// `runs.method` as read: a search method, or [`TRAIN_METHOD_TEXT`] for a
/// run that searches nothing.
#[derive(Debug, Clone, Copy)]
pub struct StoredMethod(Option<Method>);

impl From<StoredMethod> for Option<Method> {
    fn from(method: StoredMethod) -> Self {
        method.0
    }
}

impl sqlx::Type<sqlx::Any> for StoredMethod {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for StoredMethod {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<sqlx::Any>>::decode(value)?;
        if text == TRAIN_METHOD_TEXT {
            return Ok(StoredMethod(None));
        }
        Ok(StoredMethod(Some(Method::from_stored(&text)?)))
    }
}

/// A 0/1 flag column (`sweeps.cancelled`): both databases store it as an
/// integer, and the `Any` driver decodes a `bool` only from a boolean.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag(bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

impl sqlx::Type<sqlx::Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Flag(<i64 as sqlx::Decode<sqlx::Any>>::decode(value)? != 0))
    }
}

/// One row of `runs`. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RunRow {
    /// Row id, stable for the life of the database.
    pub id: i64,
    /// Hash of `config_json` (`ResolvedConfig::fingerprint`).
    pub fingerprint: String,
    /// The search method; `None` for a run that searches nothing (a train
    /// run, whose stored method text is `train`).
    #[sqlx(try_from = "StoredMethod")]
    pub method: Option<Method>,
    /// The search space (train runs: the DARTS space their cell is from).
    pub space: SpaceKind,
    /// The dataset it runs on.
    pub dataset: DatasetKind,
    /// Seed of the run.
    pub seed: i64,
    /// Canonical JSON of the resolved config.
    pub config_json: String,
    /// Where the run is in its life cycle.
    pub status: RunStatus,
    /// Device of the last claim (`cpu`, `cuda:0`, ...).
    pub device: Option<String>,
    /// Orchestrator/worker id of the last claim.
    pub owner: Option<String>,
    /// Worker process id of the last claim.
    pub pid: Option<i64>,
    /// Number of claims so far.
    pub attempts: i64,
    /// Epochs the config asks for.
    pub epochs_total: i64,
    /// Epochs recorded (the next epoch to run).
    pub epochs_done: i64,
    /// When the run was registered.
    pub created_at: f64,
    /// First claim.
    pub started_at: Option<f64>,
    /// When it became done, failed or interrupted.
    pub finished_at: Option<f64>,
    /// Last sign of life of the owner.
    pub heartbeat_at: Option<f64>,
    /// Search wall seconds of the finished run.
    pub wall_s: Option<f64>,
    /// Genotype text at the end of the search.
    pub final_genotype: Option<String>,
    /// Valid accuracy at the end of the search.
    pub final_valid_acc: Option<f64>,
    /// Best valid accuracy over the recorded epochs.
    pub best_valid_acc: Option<f64>,
    /// Last failure message (cleared by the next claim).
    pub error: Option<String>,
    /// Latest epoch checkpoint of the run.
    pub checkpoint_path: Option<String>,
    /// Definitions version it was registered under
    /// (`config::definitions`; 1 for runs registered before L counted
    /// `none`).
    pub definitions: i64,
    /// Train runs: parameters of the network without the auxiliary head.
    pub params: Option<i64>,
    /// Train runs: test accuracy after the last epoch.
    pub final_test_acc: Option<f64>,
    /// Train runs: best test accuracy over the epochs.
    pub best_test_acc: Option<f64>,
    /// Search or train run.
    pub kind: RunKind,
    /// Train runs: ranks of the last claim's data-parallel run (1 for one
    /// process); `None` for searches and runs claimed before it was kept.
    pub world_size: Option<i64>,
    /// Train runs: the backend of the last claim's collectives (`gloo`,
    /// `nccl`); `None` for one process.
    pub dist_backend: Option<String>,
}

impl RunRow {
    /// How a train run was last run, as `runs show` and the run page say
    /// it: `2 (gloo)`, `1` for one process; `None` where nothing was kept.
    pub fn ranks_text(&self) -> Option<String> {
        let size = self.world_size?;
        Some(match &self.dist_backend {
            Some(backend) => format!("{size} ({backend})"),
            None => size.to_string(),
        })
    }

    /// Whether the run was made under older definitions than this ddsas
    /// runs its method under (`config::definitions`): its numbers mean
    /// something else, so figures leave it out and a sweep does not count it.
    pub fn outdated(&self) -> bool {
        self.method.is_some_and(|method| {
            self.definitions < i64::from(crate::config::definitions(method, self.space))
        })
    }
}

/// One row of `epochs`: the scalars of an `EpochRecord`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EpochRow {
    /// Run the epoch belongs to.
    pub run_id: i64,
    /// Epoch number, from 0.
    pub epoch: i64,
    /// Training (weight half) accuracy, 0..1.
    pub train_acc: f64,
    /// Training loss.
    pub train_loss: f64,
    /// Accuracy on the architecture half, 0..1.
    pub valid_acc: f64,
    /// Loss on the architecture half.
    pub valid_loss: f64,
    /// Weight learning rate of the epoch.
    pub lr: f64,
    /// Gumbel temperature (GDAS only).
    pub tau: Option<f64>,
    /// Derived genotype text.
    pub genotype: String,
    /// `skip_connect` among the kept edges of the normal (or only) cell.
    pub skip_normal: i64,
    /// Same for the reduce cell (DARTS space).
    pub skip_reduce: Option<i64>,
    /// Cosine distance to the previous epoch's derived architecture.
    pub cosine_distance: Option<f64>,
    /// Wall seconds of the epoch.
    pub wall_s: f64,
    /// Images per second through search steps.
    pub images_per_s: f64,
    /// Peak resident host memory (RSS) in bytes, if known.
    pub peak_mem_bytes: Option<i64>,
    /// When the row was written (unix seconds).
    pub recorded_at: f64,
}

/// Who wants to run a run, and on what; see `Store::claim_run`.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Orchestrator/worker id, stored in `runs.owner`.
    pub owner: String,
    /// Device the run will use (`cpu`, `cuda:0`, ...).
    pub device: String,
    /// Worker process id.
    pub pid: i64,
    /// `Some(age)`: also take over a `running` run whose heartbeat is older
    /// than `age` seconds (its owner died). `None`: never take over.
    pub stale_after_s: Option<f64>,
    /// The processes that will run it; recorded on a train run only (a
    /// search is one process whatever claims it).
    pub ranks: Ranks,
}

/// How many processes run a run and how they talk, as a claim records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranks {
    /// Ranks of a data-parallel run; 1 for one process.
    pub world_size: u32,
    /// The backend of its collectives; `None` for one process.
    pub backend: Option<DistBackend>,
}

impl Ranks {
    /// One process: no collectives.
    pub const ONE: Ranks = Ranks {
        world_size: 1,
        backend: None,
    };
}
