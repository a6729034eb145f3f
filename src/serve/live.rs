//! The JSON the pages refresh themselves from, and the ETA.
//!
//! `/api/sweep/NAME?since=STAMP&wait=S` is a long poll: it answers at once
//! when the sweep's stamp ([`ReadOnlyDb::sweep_stamp`], a cheap summary of
//! its runs' statuses and epochs) differs from `since`, else waits up to
//! `S` seconds (at most [`MAX_WAIT`]) for it to change, looking once a
//! second. A page thus hears of a finished run within a second without
//! asking every second, and a client without `since` gets an answer at once.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{error_page, PageError};
use super::Shared;
use crate::store::{QueryError, RunState, RunStatus, SweepGlance, SweepRunProgress};

/// The longest a long poll waits.
pub const MAX_WAIT: u64 = 25;

/// `?since=&wait=` of a long poll.
#[derive(Debug, Default, Deserialize)]
pub struct Wait {
    /// The stamp the page has.
    pub since: Option<String>,
    /// Seconds to wait for another.
    pub wait: Option<u64>,
}

/// Seconds until the sweep's remaining epochs are done at the pace of its
/// recorded epochs, shared among its running runs; none when nothing runs
/// or no epoch has been recorded.
pub fn eta_seconds(g: &SweepGlance) -> Option<f64> {
    if g.running == 0 || g.epochs_left == 0 {
        return None;
    }
    g.epoch_seconds
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s * g.epochs_left as f64 / g.running as f64)
}

/// "45 s", "12 min", "3 h 05 min", "2 d 4 h".
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A sweep at a glance with its ETA and whether it is live.
#[derive(Debug, Serialize)]
pub struct Glance {
    /// The counts.
    #[serde(flatten)]
    pub glance: SweepGlance,
    /// ETA in seconds.
    pub eta_s: Option<f64>,
    /// ETA in words ("" when there is none).
    pub eta: String,
    /// Percent of the epochs done.
    pub percent: f64,
    /// Whether runs are queued or running (the page keeps refreshing).
    pub live: bool,
}

impl Glance {
    /// Adds the ETA and the rest to `g`.
    pub fn of(g: SweepGlance) -> Glance {
        let eta_s = eta_seconds(&g);
        Glance {
            eta: eta_s.map(duration_text).unwrap_or_default(),
            eta_s,
            percent: if g.epochs_total > 0 {
                100.0 * g.epochs_done as f64 / g.epochs_total as f64
            } else {
                0.0
            },
            live: g.running + g.queued > 0,
            glance: g,
        }
    }
}

/// Waits, as [`Wait`] asks, until `stamp()` differs from `since`; returns
/// the last stamp seen.
async fn wait_for_news<F, Fut>(wait: &Wait, mut stamp: F) -> Result<String, QueryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, QueryError>>,
{
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(wait.wait.unwrap_or(0).min(MAX_WAIT));
    loop {
        let now = stamp().await?;
        if wait.since.as_deref() != Some(now.as_str()) || tokio::time::Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `/api/sweeps`: every sweep at a glance.
pub async fn sweeps(State(state): State<Shared>) -> Response {
    match state.db.ro().await.sweep_glances(None).await {
        Ok(all) => Json(all.into_iter().map(Glance::of).collect::<Vec<_>>()).into_response(),
        Err(e) => error_page(PageError::from(e)),
    }
}

/// `/api/sweep/NAME`: the sweep at a glance and each run's status,
/// epochs and accuracy (a long poll with `?since=&wait=`).
pub async fn sweep(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(wait): Query<Wait>,
) -> Response {
    let db = &state.db;
    let result = async {
        let stamp =
            wait_for_news(&wait, || async { db.ro().await.sweep_stamp(&name).await }).await?;
        let mut ro = db.ro().await;
        let Some(glance) = ro.sweep_glances(Some(&name)).await?.pop() else {
            return Ok(None);
        };
        let runs: Vec<Value> = ro
            .sweep_progress(&name)
            .await?
            .iter()
            .map(run_progress_json)
            .collect();
        Ok::<_, QueryError>(Some(serde_json::json!({
            "stamp": stamp,
            "sweep": Glance::of(glance),
            "runs": runs,
        })))
    }
    .await;
    match result {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error_page(PageError::NotFound(format!("no sweep named `{name}`"))),
        Err(e) => error_page(PageError::from(e)),
    }
}

/// `/api/run/ID`: a run's status, epochs, attempts and error (a long poll
/// with `?since=&wait=`).
pub async fn run(
    State(state): State<Shared>,
    Path(id): Path<i64>,
    Query(wait): Query<Wait>,
) -> Response {
    let db = &state.db;
    let result = async {
        let stamp = wait_for_news(&wait, || async { db.ro().await.run_stamp(id).await }).await?;
        let Some(state) = db.ro().await.run_state(id).await? else {
            return Ok(None);
        };
        let mut map = run_state_json(&state);
        let live = matches!(state.status, RunStatus::Queued | RunStatus::Running);
        map.insert("stamp".into(), stamp.into());
        map.insert("live".into(), live.into());
        Ok::<_, QueryError>(Some(Value::Object(map)))
    }
    .await;
    match result {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error_page(PageError::NotFound(format!("there is no run {id}"))),
        Err(e) => error_page(PageError::from(e)),
    }
}

/// A sweep's run as `/api/sweep/NAME` lists it.
fn run_progress_json(r: &SweepRunProgress) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("id".into(), r.id.into());
    map.insert("status".into(), r.status.as_str().into());
    map.insert("epochs_done".into(), r.epochs_done.into());
    map.insert("epochs_total".into(), r.epochs_total.into());
    map.insert("final_valid_acc".into(), r.final_valid_acc.into());
    map.insert("attempts".into(), r.attempts.into());
    Value::Object(map)
}

/// A run's state as `/api/run/ID` answers it (before its stamp and
/// liveness).
fn run_state_json(s: &RunState) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("id".into(), s.id.into());
    map.insert("status".into(), s.status.as_str().into());
    map.insert("epochs_done".into(), s.epochs_done.into());
    map.insert("epochs_total".into(), s.epochs_total.into());
    map.insert("attempts".into(), s.attempts.into());
    map.insert("error".into(), s.error.clone().into());
    map.insert("final_valid_acc".into(), s.final_valid_acc.into());
    map.insert("best_valid_acc".into(), s.best_valid_acc.into());
    map.insert("device".into(), s.device.clone().into());
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glance(running: i64, left: i64, secs: Option<f64>) -> SweepGlance {
        SweepGlance {
            name: "s".into(),
            description: None,
            cancelled: false,
            created: String::new(),
            runs: 10,
            done: 5,
            running,
            queued: 2,
            failed: 0,
            interrupted: 0,
            epochs_done: 50,
            epochs_total: 100,
            epochs_left: left,
            epoch_seconds: secs,
            changed_at: None,
        }
    }

    #[test]
    fn eta_shares_the_epochs_left_among_the_running_runs() {
        assert_eq!(eta_seconds(&glance(2, 50, Some(4.0))), Some(100.0));
        assert_eq!(eta_seconds(&glance(0, 50, Some(4.0))), None);
        assert_eq!(eta_seconds(&glance(2, 0, Some(4.0))), None);
        assert_eq!(eta_seconds(&glance(2, 50, None)), None);
        let g = Glance::of(glance(1, 50, Some(60.0)));
        assert_eq!(g.eta, "50 min");
        assert!(g.live);
        assert_eq!(g.percent, 50.0);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_text(42.4), "42 s");
        assert_eq!(duration_text(125.0), "2 min");
        assert_eq!(duration_text(3.0 * 3600.0 + 5.0 * 60.0), "3 h 05 min");
        assert_eq!(duration_text(2.0 * 86_400.0 + 4.0 * 3600.0), "2 d 4 h");
    }
}
