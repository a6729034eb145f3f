//! The HTML pages and pictures of `ddsas serve`: `maud` templates over the
//! `store` queries the commands use (`runs list --where` is
//! [`RunFilter`]'s condition here too) and the `report` drawings.
//!
//! Each page is whole without its script; the script only keeps it
//! current (long polls on [`super::live`]) and sorts the runs table.

use std::fmt::Write as _;
use std::path::PathBuf;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::error::{error_page, PageError};
use super::live::{duration_text, Glance};
use super::Shared;
use crate::report::cells;
use crate::report::run_curves::RunCurves;
use crate::report::{self, DrawnBody, Kind, ReportError, SweepData};
use crate::store::{Budget, Cut, QueryError, QueryRows, RunCard, RunFilter, RunKind, RunStatus};

/// Percent-encodes `s` for a URL path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes a percent-encoded query value (`+` is a space).
pub fn dec(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in a query string, decoded.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (dec(k) == key).then(|| dec(v))
    })
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:8px 20px;display:flex;gap:18px;align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:14px 20px}
h1{font-size:20px;margin:6px 0 10px}
h2{font-size:16px;margin:22px 0 8px}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;white-space:nowrap}
th{background:#f0f2f5;position:sticky;top:0;cursor:pointer}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.long{max-width:260px;overflow:hidden;text-overflow:ellipsis}
.scroll{overflow:auto;max-height:70vh;border:1px solid #ddd}
.bar{background:#e6e6e6;border-radius:4px;height:12px;width:220px;display:inline-block;vertical-align:middle;overflow:hidden}
.bar>span{display:block;height:100%;background:#2a9d5c}
.st-done{color:#1b7f3b}.st-running{color:#0066b3;font-weight:600}.st-failed{color:#c0392b;font-weight:600}
.st-queued{color:#777}.st-interrupted{color:#b26b00}
.counts span{margin-right:14px}
.error{background:#fdecea;border:1px solid #e0a39c;padding:8px 12px;margin:8px 0;white-space:pre-wrap}
.muted{color:#777}
figure{margin:0 0 22px;background:#fff;border:1px solid #ddd;padding:8px;max-width:1250px}
figure img,.svg svg{max-width:100%;height:auto}
pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;max-height:400px}
form input[type=text]{width:480px;font-family:monospace}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px}dt{color:#555}dd{margin:0}
"#;

/// Sorting the runs table and keeping a page current: long polls on the
/// page's `data-api` while it is live, then applies what changed.
const SCRIPT: &str = r#"
(function(){
  const b = document.body.dataset;
  document.querySelectorAll('table.sortable th').forEach((th, i) => {
    th.addEventListener('click', () => {
      const tbody = th.closest('table').tBodies[0];
      const desc = th.dataset.sort === 'asc';
      th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.sort);
      th.dataset.sort = desc ? 'desc' : 'asc';
      const key = r => { const c = r.cells[i]; return c ? (c.dataset.v ?? c.textContent) : ''; };
      const rows = Array.from(tbody.rows);
      rows.sort((x, y) => {
        const a = key(x), z = key(y);
        const na = parseFloat(a), nz = parseFloat(z);
        let o = (a === '' || z === '') ? (a === '' ? 1 : -1) * (desc ? -1 : 1)
              : (!isNaN(na) && !isNaN(nz) && String(na) === a.trim() && String(nz) === z.trim()) ? na - nz
              : a.localeCompare(z);
        return desc ? -o : o;
      });
      rows.forEach(r => tbody.appendChild(r));
    });
  });
  const set = (id, v) => { const e = document.getElementById(id); if (e && e.textContent !== String(v)) e.textContent = v; };
  const pct = v => (v === null || v === undefined) ? '' : (100 * v).toFixed(2) + '%';
  const ago = t => { if (!t) return ''; const s = Math.max(0, Date.now() / 1000 - t);
    return s < 60 ? Math.round(s) + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago'
      : s < 86400 ? (s / 3600).toFixed(1) + ' h ago' : (s / 86400).toFixed(1) + ' d ago'; };
  function glance(g) {
    for (const k of ['runs', 'done', 'running', 'queued', 'failed', 'interrupted']) set('n-' + k, g[k]);
    const bar = document.getElementById('bar'); if (bar) bar.style.width = g.percent.toFixed(1) + '%';
    set('pct', g.percent.toFixed(1) + '%');
    set('eta', g.eta || '–');
    set('changed', ago(g.changed_at));
  }
  function cell(row, col, text, v) {
    const c = row.querySelector('td[data-col="' + col + '"]'); if (!c) return;
    if (c.textContent !== String(text)) c.textContent = text;
    c.dataset.v = v;
  }
  async function refreshCurves() {
    const box = document.getElementById('curves'); if (!box) return;
    const r = await fetch(box.dataset.src, {cache: 'no-store'});
    if (r.ok) box.innerHTML = await r.text();
  }
  const apply = {
    sweep(d) {
      glance(d.sweep);
      for (const r of d.runs) {
        const row = document.getElementById('run-' + r.id); if (!row) continue;
        row.className = 'st-' + r.status;
        cell(row, 'status', r.status, r.status);
        cell(row, 'epochs_done', r.epochs_done, r.epochs_done);
        cell(row, 'valid_acc', pct(r.final_valid_acc), r.final_valid_acc ?? '');
      }
      return d.sweep.live;
    },
    async run(d) {
      const st = document.getElementById('status');
      if (st) { st.textContent = d.status; st.className = 'st-' + d.status; }
      set('attempts', d.attempts); set('device', d.device ?? '');
      set('error', d.error ?? '');
      const ep = document.getElementById('epochs-done');
      if (ep && ep.textContent !== String(d.epochs_done)) {
        ep.textContent = d.epochs_done;
        await refreshCurves();
        document.querySelectorAll('img.live').forEach(i => { i.src = i.dataset.src + '?v=' + encodeURIComponent(d.stamp); });
      }
      return d.live;
    },
    async sweeps() {
      const r = await fetch(b.api, {cache: 'no-store'}); if (!r.ok) return true;
      const all = await r.json(); let live = false;
      for (const g of all) {
        const row = document.querySelector('tr[data-sweep="' + CSS.escape(g.name) + '"]'); if (!row) continue;
        for (const k of ['done', 'running', 'queued', 'failed', 'interrupted']) {
          const c = row.querySelector('[data-col="' + k + '"]'); if (c) c.textContent = g[k];
        }
        const bar = row.querySelector('.bar>span'); if (bar) bar.style.width = g.percent.toFixed(1) + '%';
        const e = row.querySelector('[data-col="eta"]'); if (e) e.textContent = g.eta || '–';
        const ch = row.querySelector('[data-col="changed"]'); if (ch) ch.textContent = ago(g.changed_at);
        live = live || g.live;
      }
      return live;
    },
  };
  document.querySelectorAll('img[data-fallback]').forEach(img => {
    img.addEventListener('error', async () => {
      const r = await fetch(img.src); const t = await r.text();
      const p = document.createElement('div'); p.className = 'muted'; p.textContent = t;
      img.replaceWith(p);
    });
  });
  document.querySelectorAll('div[data-html]').forEach(async div => {
    const r = await fetch(div.dataset.html); const t = await r.text();
    if (r.ok) div.innerHTML = t; else { div.className = 'muted'; div.textContent = t; }
  });
  if (!b.api || b.live !== 'true') return;
  let stamp = b.stamp || '';
  async function tick() {
    let live = true;
    try {
      if (b.kind === 'sweeps') live = await apply.sweeps();
      else {
        const sep = b.api.includes('?') ? '&' : '?';
        const r = await fetch(b.api + sep + 'since=' + encodeURIComponent(stamp) + '&wait=20', {cache: 'no-store'});
        if (r.ok) { const d = await r.json(); stamp = d.stamp; live = await apply[b.kind](d); }
      }
    } catch (e) { }
    if (live) setTimeout(tick, 2000);
  }
  setTimeout(tick, 2000);
})();
"#;

/// The frame of every page: `kind` and `api` tell the script what to keep
/// current (nothing when `live` is false).
struct Frame<'a> {
    title: &'a str,
    kind: &'a str,
    api: Option<String>,
    stamp: String,
    live: bool,
}

fn layout(frame: Frame<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " — ddsas" }
                style { (PreEscaped(CSS)) }
            }
            body data-kind=(frame.kind) data-api=[frame.api] data-stamp=(frame.stamp)
                data-live=(frame.live) data-served-at=(format!("{:.3}", crate::store::unix_now())) {
                header { a href="/" { "ddsas" } span { "read-only view of the run history" } }
                main { (body) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], markup).into_response()
}

fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response()
}

/// "3 min ago (2026-12-01 17:03:12 UTC)".
fn changed_text(t: Option<f64>) -> String {
    let Some(t) = t else {
        return String::new();
    };
    let ago = (crate::store::unix_now() - t).max(0.0);
    format!("{} ago", duration_text(ago))
}

fn progress(g: &Glance) -> Markup {
    html! {
        span.bar title=(format!("{} of {} epochs", g.glance.epochs_done, g.glance.epochs_total)) {
            span #bar style=(format!("width:{:.1}%", g.percent)) {}
        }
        " " span #pct { (format!("{:.1}%", g.percent)) }
    }
}

/// `/`: every sweep with its progress.
pub async fn sweeps(State(state): State<Shared>) -> Response {
    let glances = match state.db.ro().await.sweep_glances(None).await {
        Ok(g) => g,
        Err(e) => return error_page(e.into()),
    };
    let glances: Vec<Glance> = glances.into_iter().map(Glance::of).collect();
    let live = glances.iter().any(|g| g.live);
    let body = html! {
        h1 { "Sweeps in " code { (state.db.path.display()) } }
        @if glances.is_empty() {
            p.muted { "No sweeps yet: run one with " code { "ddsas sweep run FILE" } "." }
        } @else {
            table.sortable {
                thead { tr {
                    th { "sweep" } th { "description" } th { "progress" } th { "runs" }
                    th { "done" } th { "running" } th { "queued" } th { "failed" } th { "interrupted" }
                    th { "ETA" } th { "last change" }
                } }
                tbody {
                    @for g in &glances {
                        @let s = &g.glance;
                        tr data-sweep=(s.name) {
                            td { a href=(format!("/sweep/{}", enc(&s.name))) { (s.name) }
                                @if s.cancelled { " " span.st-failed { "cancelled" } } }
                            td { (s.description.as_deref().unwrap_or("")) }
                            td data-v=(g.percent) {
                                span.bar { span style=(format!("width:{:.1}%", g.percent)) {} }
                                " " (format!("{:.0}%", g.percent))
                            }
                            td.num { (s.runs) }
                            td.num.st-done data-col="done" { (s.done) }
                            td.num.st-running data-col="running" { (s.running) }
                            td.num.st-queued data-col="queued" { (s.queued) }
                            td.num.st-failed data-col="failed" { (s.failed) }
                            td.num.st-interrupted data-col="interrupted" { (s.interrupted) }
                            td data-col="eta" data-v=[g.eta_s] { @if g.eta.is_empty() { "–" } @else { (g.eta) } }
                            td data-col="changed" data-v=[s.changed_at] { (changed_text(s.changed_at)) }
                        }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(
            Frame {
                title: "sweeps",
                kind: "sweeps",
                api: Some("/api/sweeps".into()),
                stamp: String::new(),
                live,
            },
            body,
        ),
    )
}

/// `?where=` of a sweep page and its figures.
#[derive(Debug, Default, serde::Deserialize)]
pub struct WhereQuery {
    /// A SQL condition over `run_summary`, as `runs list --where` takes it.
    #[serde(rename = "where")]
    pub condition: Option<String>,
}

impl WhereQuery {
    fn condition(&self) -> Option<&str> {
        self.condition
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }
}

/// Columns shown cut short (the full text on hover).
const LONG: &[&str] = &["fingerprint", "genotype", "error", "sweep"];

fn value_text(col: &str, v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if is_accuracy(col) && (0.0..=1.0).contains(&f) => {
                format!("{:.2}%", 100.0 * f)
            }
            (None, Some(f)) if col.starts_with("nb201_") => format!("{f:.2}%"),
            (None, Some(f)) if f.abs() >= 100.0 => format!("{f:.0}"),
            (None, Some(f)) => format!("{f:.4}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Whether a column holds an accuracy (0..1), shown as a percentage:
/// top-1 (`*_acc`) and top-5 (`*_top5`) alike.
fn is_accuracy(col: &str) -> bool {
    col.ends_with("acc") || col.ends_with("_top5")
}

fn sort_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn runs_table(rows: &QueryRows) -> Markup {
    html! {
        div.scroll {
            table.sortable #runs {
                thead { tr { @for c in &rows.columns { th { (c) } } } }
                tbody {
                    @for r in &rows.rows {
                        @let id = r.first().and_then(Value::as_i64).unwrap_or(0);
                        @let status = rows.columns.iter().position(|c| c == "status")
                            .and_then(|i| r[i].as_str()).unwrap_or("");
                        tr id=(format!("run-{id}")) class=(format!("st-{status}")) {
                            @for (c, v) in rows.columns.iter().zip(r) {
                                @let text = value_text(c, v);
                                @if c == "id" {
                                    td.num data-col=(c) data-v=(sort_value(v)) { a href=(format!("/run/{id}")) { (text) } }
                                } @else if LONG.contains(&c.as_str()) {
                                    td.long data-col=(c) data-v=(sort_value(v)) title=(text) { (text) }
                                } @else if v.is_number() {
                                    td.num data-col=(c) data-v=(sort_value(v)) { (text) }
                                } @else {
                                    td data-col=(c) data-v=(sort_value(v)) { (text) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The URL name of a figure or table of a sweep's page.
pub fn figure_name(kind: Kind) -> &'static str {
    kind.page.unwrap_or(kind.figure)
}

fn figure_kind(name: &str) -> Option<Kind> {
    report::page_kinds().find(|k| figure_name(k) == name)
}

fn is_table(kind: Kind) -> bool {
    kind.is_table
}

/// `/sweep/NAME?where=...`: the sweep's counts, its runs and figures.
pub async fn sweep(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<WhereQuery>,
) -> Response {
    let _turn = match q.condition() {
        Some(_) => state.db.filter_turn().await,
        None => None,
    };
    let mut ro = state.db.ro().await;
    let glance = match ro.sweep_glances(Some(&name)).await {
        Ok(mut g) => g.pop(),
        Err(e) => return error_page(e.into()),
    };
    let Some(glance) = glance else {
        let known = ro.sweep_names().await.unwrap_or_default();
        return error_page(no_sweep_named(&name, &known));
    };
    let stamp = match ro.sweep_stamp(&name).await {
        Ok(s) => s,
        Err(e) => return error_page(e.into()),
    };
    let condition = q.condition();
    let filter = RunFilter {
        sweep: Some(&name),
        condition,
        sort: "id",
        ..RunFilter::default()
    };
    let listing = ro.run_listing_within(&filter, TABLE_BUDGET).await;
    let (rows, cut, bad_where, status) = match filtered(listing, condition) {
        Ok(listing) => listing,
        Err(e) => return error_page(e.into()),
    };
    drop(ro);
    let g = Glance::of(glance);
    let s = &g.glance;
    let base = format!("/sweep/{}", enc(&name));
    let suffix = condition
        .map(|c| format!("?where={}", enc(c)))
        .unwrap_or_default();
    let body = html! {
        h1 { "Sweep " (name) @if s.cancelled { " " span.st-failed { "(cancelled)" } } }
        @if let Some(d) = &s.description { p { (d) } }
        (sweep_counts(&g))
        h2 { "Runs" }
        form method="get" action=(base) {
            label { "where " input type="text" name="where" value=(condition.unwrap_or(""))
                placeholder="e.g. method = 'ddsas' AND valid_acc > 0.9"; }
            " " button type="submit" { "filter" }
            @if condition.is_some() { " " a href=(base) { "clear" } }
            span.muted { " SQL over the columns below, as " code { "ddsas runs list --where" } " takes it; click a column to sort" }
        }
        @if let Some(e) = &bad_where { div.error #where-error { "--where refused: " (e) } }
        p.muted { (rows.rows.len()) " runs shown" }
        @if let Some(text) = cut_text(cut) { div.error #table-cut { (text) } }
        (runs_table(&rows))
        h2 { "Figures" }
        p.muted { "Drawn from the done runs now in the database, as " code { "ddsas report" } " draws them." }
        (sweep_figures(&base, &suffix))
    };
    html_response(
        status,
        layout(
            Frame {
                title: &name,
                kind: "sweep",
                api: Some(format!("/api/sweep/{}", enc(&name))),
                stamp,
                live: g.live,
            },
            body,
        ),
    )
}

/// How much of a sweep's runs its page shows: enough for any sweep of the
/// paper's, and a page a browser still lays out; a filter that picks more
/// is cut, and the page says so.
pub const TABLE_BUDGET: Budget = Budget {
    rows: 2000,
    bytes: 8 << 20,
};

/// What the page says above a cut table, if it was cut.
fn cut_text(cut: Cut) -> Option<String> {
    match cut {
        Cut::None => None,
        Cut::Rows(more) => Some(format!(
            "{more} more run{} not shown: the table stops at {} rows; narrow the filter (e.g. status = 'done')",
            if more == 1 { "" } else { "s" },
            TABLE_BUDGET.rows
        )),
        Cut::Bytes(limit) => Some(format!(
            "the table stops at {} MiB of values, and the runs after that were not read; narrow the filter (e.g. status = 'done')",
            limit >> 20
        )),
    }
}

/// A sweep page's runs under the user's filter: the rows and what the
/// table's budget cut, or, where the filter itself failed (bad SQL, an
/// attempt to write, a value too big: 400; over its time limit: 503), no
/// rows and the message to show above the empty table. Other errors are
/// the page's.
fn filtered(
    listing: Result<(QueryRows, Cut), QueryError>,
    condition: Option<&str>,
) -> Result<(QueryRows, Cut, Option<String>, StatusCode), QueryError> {
    let refused =
        |e: QueryError, status| Ok((QueryRows::default(), Cut::None, Some(e.to_string()), status));
    match listing {
        Ok((rows, cut)) => Ok((rows, cut, None, StatusCode::OK)),
        Err(
            e @ (QueryError::Sql { .. }
            | QueryError::ReadOnly { .. }
            | QueryError::TooBig
            | QueryError::TooMuchMemory),
        ) if condition.is_some() => refused(e, StatusCode::BAD_REQUEST),
        Err(e @ QueryError::TimedOut { .. }) if condition.is_some() => {
            refused(e, StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(e) => Err(e),
    }
}

/// The 404 of a sweep name that is not there, naming the sweeps that are.
fn no_sweep_named(name: &str, known: &[String]) -> PageError {
    PageError::NotFound(format!(
        "no sweep named `{name}` ({})",
        if known.is_empty() {
            "the database has no sweeps yet".to_owned()
        } else {
            format!("its sweeps: {}", known.join(", "))
        }
    ))
}

/// A sweep page's counts, progress and ETA; the ids are what the page's
/// script refreshes.
fn sweep_counts(g: &Glance) -> Markup {
    let s = &g.glance;
    html! {
        p.counts {
            span { b #n-runs { (s.runs) } " runs" }
            span.st-done { b #n-done { (s.done) } " done" }
            span.st-running { b #n-running { (s.running) } " running" }
            span.st-queued { b #n-queued { (s.queued) } " queued" }
            span.st-failed { b #n-failed { (s.failed) } " failed" }
            span.st-interrupted { b #n-interrupted { (s.interrupted) } " interrupted" }
        }
        p {
            (progress(g))
            " · ETA " span #eta { @if g.eta.is_empty() { "–" } @else { (g.eta) } }
            " · last change " span #changed { (changed_text(s.changed_at)) }
            " · registered " (s.created) " UTC"
        }
    }
}

/// A sweep page's figures and tables, each loaded from its own URL under
/// `base` with the page's `?where=` (`suffix`).
fn sweep_figures(base: &str, suffix: &str) -> Markup {
    html! {
        @for kind in report::page_kinds() {
            @let url = format!("{base}/figure/{}.{}{suffix}", figure_name(kind), if is_table(kind) { "html" } else { "svg" });
            figure id=(format!("fig-{}", figure_name(kind))) {
                figcaption { b { (kind.name) } " " a href=(url) { "open" } }
                @if is_table(kind) {
                    div data-html=(url) { "loading…" }
                } @else {
                    img src=(url) alt=(kind.name) loading="lazy" data-fallback="1";
                }
            }
        }
    }
}

/// `/sweep/NAME/figure/fig8.svg` (or `table5.html`), drawn now from the
/// sweep's done runs by the report code; `?where=` as the page's.
pub async fn figure(
    State(state): State<Shared>,
    Path((name, file)): Path<(String, String)>,
    Query(q): Query<WhereQuery>,
) -> Response {
    let Some((stem, ext)) = file.rsplit_once('.') else {
        return not_found_text(&file);
    };
    let Some(kind) = figure_kind(stem).filter(|k| (ext == "html") == is_table(k)) else {
        return not_found_text(&file);
    };
    let result = async {
        let db = &state.db;
        let mut data = SweepData::load(&db.store, &db.path, &name).await?;
        if let Some(c) = q.condition() {
            let _turn = db.filter_turn().await;
            let ids = db
                .ro()
                .await
                .sweep_runs_where(&name, c)
                .await
                .map_err(|e| match e {
                    e @ QueryError::TimedOut { .. } => PageError::Query(e),
                    e => PageError::BadRequest(format!("--where refused: {e}")),
                })?;
            data.restrict(&ids, c)?;
        }
        let opts = report::Options {
            out: PathBuf::new(),
            metric: "auto".into(),
            run: None,
            top: 1,
        };
        Ok::<_, PageError>(report::draw_in_memory(&db.store, &data, kind, &opts).await?)
    }
    .await;
    match result {
        Ok(drawn) => match drawn.body {
            DrawnBody::Svg(svg) => svg_response(svg),
            DrawnBody::Html(table) => (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html! {
                    h3 { (drawn.title) }
                    (PreEscaped(table))
                    p.muted { (drawn.caption) }
                },
            )
                .into_response(),
        },
        Err(e) => error_page(e),
    }
}

fn not_found_text(what: &str) -> Response {
    let names: Vec<String> = report::page_kinds()
        .map(|k| {
            format!(
                "{}.{}",
                figure_name(k),
                if is_table(k) { "html" } else { "svg" }
            )
        })
        .collect();
    error_page(PageError::NotFound(format!(
        "no figure `{what}`; there are {}",
        names.join(", ")
    )))
}

/// The last `lines` lines of a text file (reading at most its last 64 KiB).
fn tail(path: &std::path::Path, lines: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn run_links(ids: &str) -> Markup {
    html! {
        @for (i, id) in ids.split(',').filter(|s| !s.is_empty()).enumerate() {
            @if i > 0 { ", " }
            a href=(format!("/run/{id}")) { "run " (id) }
        }
    }
}

fn sweep_links(names: &str) -> Markup {
    html! {
        @for (i, s) in names.split(',').filter(|s| !s.is_empty()).enumerate() {
            @if i > 0 { ", " }
            a href=(format!("/sweep/{}", enc(s))) { (s) }
        }
    }
}

/// `/run/ID`: config, status, attempts, errors, log tail, curves, cells,
/// sampling heat map and the runs it is linked to.
pub async fn run(State(state): State<Shared>, Path(id): Path<i64>) -> Response {
    let db = &state.db;
    let mut ro = db.ro().await;
    let (card, evaluations, stamp, jobs) = match async {
        Ok::<_, QueryError>((
            ro.run_card(id).await?,
            ro.evaluations_of(id).await?,
            ro.run_stamp(id).await?,
            ro.run_slurm_job_ids(id).await?,
        ))
    }
    .await
    {
        Ok(x) => x,
        Err(e) => return error_page(e.into()),
    };
    let Some(card) = card else {
        return error_page(PageError::NotFound(format!("there is no run {id}")));
    };
    let epochs = match ro.run_epochs(id, card.row.kind).await {
        Ok(epochs) => epochs,
        Err(e) => return error_page(e.into()),
    };
    drop(ro);
    let live = matches!(card.row.status, RunStatus::Queued | RunStatus::Running);
    let method = card.method_text();
    let is_search = card.row.kind != RunKind::Train;
    let config = serde_json::from_str::<Value>(&card.row.config_json)
        .ok()
        .and_then(|v| serde_yaml::to_string(&v).ok())
        .unwrap_or_else(|| card.row.config_json.clone());
    let curves = if is_search {
        match curves_svg(&state, id).await {
            Ok(svg) => svg,
            Err(e) => format!(
                "<p class=\"muted\">{}</p>",
                report::escape::html(&e.to_string())
            ),
        }
    } else {
        String::new()
    };
    let logs = crate::exec::run_logs(&db.path, id);
    let space = card.row.space.name();
    let jobs = slurm_jobs_text(jobs).await;
    let body = html! {
        h1 { "Run " (id) " — " (method) " on " (card.row.dataset.name()) ", " (space) " space" }
        (run_facts(&card, &evaluations))
        @if let Some(jobs) = jobs {
            p { "Slurm job(s): " span #slurm-jobs { (jobs) } }
        }
        @if is_search {
            (search_pictures(id, method, space, curves, epochs.len()))
        }
        h2 { "Epochs" }
        details {
            summary { (epochs.len()) " epochs" }
            (runs_table_plain(&epochs.table()))
        }
        h2 { "Logs" }
        @if logs.is_empty() { p.muted { "No log files beside the database (a run of " code { "ddsas search" } " logs to its terminal)." } }
        @for log in &logs {
            p { code { (log.display()) } }
            pre { (tail(log, 40)) }
        }
        h2 { "Config" }
        pre { (config) }
    };
    html_response(
        StatusCode::OK,
        layout(
            Frame {
                title: &format!("run {id}"),
                kind: "run",
                api: Some(format!("/api/run/{id}")),
                stamp,
                live,
            },
            body,
        ),
    )
}

/// The run's Slurm jobs (`train --slurm`, or a sweep's training of several
/// ranks) with their states from one squeue call, as `runs show` prints
/// them; `None` for a run without one. squeue runs off the server's
/// threads: it may take seconds on a busy cluster.
async fn slurm_jobs_text(jobs: Vec<String>) -> Option<String> {
    if jobs.is_empty() {
        return None;
    }
    let text = tokio::task::spawn_blocking(move || {
        let queue = crate::exec::slurm::queue(&jobs);
        crate::exec::slurm::squeue::jobs_text(&jobs, queue)
    })
    .await;
    Some(text.unwrap_or_else(|e| format!("(squeue did not answer: {e})")))
}

/// The facts of a run page (`card`, as `runs show` reads it); the ids are
/// what the page's script refreshes.
fn run_facts(card: &RunCard, evaluations: &[i64]) -> Markup {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let acc = |col: &str, v: Option<f64>| value_text(col, &Value::from(v));
    let status = card.row.status.as_str();
    let parent = opt(&card.parent);
    html! {
        dl {
            dt { "status" } dd { span #status class=(format!("st-{status}")) { (status) } }
            dt { "epochs" } dd { span #epochs-done { (card.row.epochs_done) } " of " (card.row.epochs_total) " recorded" }
            dt { "attempts" } dd #attempts { (card.row.attempts) }
            dt { "device" } dd #device { (opt(&card.row.device)) }
            @if let Some(ranks) = card.row.ranks_text() {
                dt { "ranks" } dd #ranks { (ranks) }
            }
            dt { "valid accuracy" } dd { (acc("valid_acc", card.row.final_valid_acc)) " (best " (acc("best_valid_acc", card.row.best_valid_acc)) ")" }
            @if card.row.final_test_acc.is_some() {
                dt { "test accuracy" } dd { (acc("test_acc", card.row.final_test_acc)) }
            }
            dt { "created / started / finished (UTC)" } dd { (opt(&card.created)) " / " (opt(&card.started)) " / " (opt(&card.finished)) }
            dt { "last heartbeat (UTC)" } dd { (opt(&card.heartbeat)) }
            dt { "wall time" } dd { (card.row.wall_s.map(duration_text).unwrap_or_default()) }
            dt { "sweeps" } dd { (sweep_links(&opt(&card.sweeps))) }
            @if !parent.is_empty() { dt { "search it trained" } dd { (run_links(&parent)) } }
            @if !evaluations.is_empty() {
                dt { "evaluation runs" } dd { (run_links(&evaluations.iter().map(i64::to_string).collect::<Vec<_>>().join(","))) }
            }
            dt { "fingerprint" } dd { code { (card.row.fingerprint) } }
            dt { "genotype" } dd { code { (opt(&card.row.final_genotype)) } }
            dt { "error" } dd #error.st-failed { (opt(&card.row.error)) }
        }
    }
}

/// A search's pictures on its run page: its curves (`curves`, drawn
/// already, refreshed by the script as `epochs` grows), its cells in
/// `space`, and for a sampling method its Fig. 9 heat map.
fn search_pictures(id: i64, method: &str, space: &str, curves: String, epochs: usize) -> Markup {
    let cell_names: &[&str] = if space == "nb201" {
        &["cell"]
    } else {
        &["normal", "reduce"]
    };
    html! {
        h2 { "Curves" }
        div.svg #curves data-src=(format!("/run/{id}/curves.svg")) data-epochs=(epochs) {
            (PreEscaped(curves))
        }
        h2 { "Cells" }
        p.muted { "The final genotype once done, else the last epoch's." }
        @for c in cell_names {
            @let url = format!("/run/{id}/cell/{c}.svg");
            figure { img.live src=(url) data-src=(url) alt=(format!("{c} cell")) data-fallback="1"; }
        }
        @if method != "darts" {
            h2 { "Sampling counts (Fig. 9)" }
            figure { img src=(format!("/run/{id}/sampling.svg")) alt="sampling heat map" loading="lazy" data-fallback="1"; }
        }
    }
}

fn runs_table_plain(rows: &QueryRows) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { @for c in &rows.columns { th { (c) } } } }
            tbody { @for r in &rows.rows { tr { @for (c, v) in rows.columns.iter().zip(r) {
                td.num { (value_text(c, v)) }
            } } } }
        } }
    }
}

async fn curves_svg(state: &Shared, id: i64) -> Result<String, PageError> {
    let epochs = state
        .db
        .store
        .epochs(id)
        .await
        .map_err(|e| PageError::Report(e.into()))?;
    let plot = RunCurves::of(format!("Run {id}: {} epochs", epochs.len()), &epochs);
    report::draw::svg_text(&plot).map_err(|e| {
        PageError::Report(ReportError::Draw {
            figure: "curves".into(),
            message: e.0,
        })
    })
}

/// `/run/ID/curves.svg`: the run's per-epoch curves, one circle per
/// recorded epoch on the valid accuracy.
pub async fn curves(State(state): State<Shared>, Path(id): Path<i64>) -> Response {
    match curves_svg(&state, id).await {
        Ok(svg) => svg_response(svg),
        Err(e) => error_page(e),
    }
}

/// `/run/ID/cell/normal.svg` (`reduce`, NB201's `cell`): the run's cell as
/// `report cells` draws it, from its last epoch while it runs.
pub async fn cell(State(state): State<Shared>, Path((id, file)): Path<(i64, String)>) -> Response {
    let which = file.strip_suffix(".svg").unwrap_or(&file).to_owned();
    let result = async {
        let store = &state.db.store;
        let run = store
            .report_run(id)
            .await
            .map_err(|e| PageError::Report(e.into()))?
            .ok_or_else(|| PageError::NotFound(format!("there is no run {id}")))?;
        let latest = state.db.ro().await.last_genotype(id).await?;
        let fig = cells::of_run_now(&run, latest.as_ref().map(|(e, g)| (*e, g.as_str())))?;
        let picture = fig
            .numbers
            .pictures
            .iter()
            .find(|p| p.cell == which)
            .ok_or_else(|| PageError::NotFound(format!("run {id} has no `{which}` cell")))?;
        Ok::<_, PageError>(cells::picture_svg(picture)?)
    }
    .await;
    match result {
        Ok(svg) => svg_response(svg),
        Err(e) => error_page(e),
    }
}

/// `/run/ID/sampling.svg`: Fig. 9 of this run alone (`report fig9 --run`),
/// once it is done.
pub async fn sampling(State(state): State<Shared>, Path(id): Path<i64>) -> Response {
    let result = async {
        let db = &state.db;
        let Some(card) = db.ro().await.run_card(id).await? else {
            return Err(PageError::NotFound(format!("there is no run {id}")));
        };
        let sweeps = card.sweeps.unwrap_or_default();
        let Some(sweep) = sweeps.split(',').find(|s| !s.is_empty()) else {
            return Err(PageError::NotFound(format!(
                "run {id} is in no sweep; `ddsas report fig9` draws the runs of a sweep"
            )));
        };
        if card.row.status != RunStatus::Done {
            return Err(PageError::NotFound(format!(
                "run {id} is not done: its sampling counts are drawn once it is"
            )));
        }
        let data = SweepData::load(&db.store, &db.path, sweep).await?;
        let opts = report::Options {
            out: PathBuf::new(),
            metric: "auto".into(),
            run: Some(id),
            top: 1,
        };
        Ok(report::draw_in_memory(&db.store, &data, &report::fig9::SPEC, &opts).await?)
    }
    .await;
    match result {
        Ok(drawn) => match drawn.body {
            DrawnBody::Svg(svg) => svg_response(svg),
            DrawnBody::Html(h) => (StatusCode::OK, h).into_response(),
        },
        Err(e) => error_page(e),
    }
}

/// Any other path.
pub async fn not_found(RawQuery(_q): RawQuery) -> Response {
    error_page(PageError::NotFound(
        "no such page: try / (sweeps), /sweep/NAME or /run/ID".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip() {
        for s in ["plain", "a b&c=d/é", "L = 28 AND method = 'ddsas'", "100%"] {
            assert_eq!(dec(&enc(s)), s);
        }
        assert_eq!(
            query_value("x=1&where=L+%3D+28&token=a%2Fb", "where").as_deref(),
            Some("L = 28")
        );
        assert_eq!(query_value("token=a%2Fb", "token").as_deref(), Some("a/b"));
        assert_eq!(query_value("a=1", "token"), None);
        assert_eq!(dec("50%"), "50%");
    }

    #[test]
    fn values_read_as_the_terminal_shows_them() {
        assert_eq!(
            value_text("valid_acc", &serde_json::json!(0.91234)),
            "91.23%"
        );
        assert_eq!(
            value_text("test_top5", &serde_json::json!(0.55)),
            "55.00%",
            "top-5 is an accuracy too"
        );
        assert_eq!(value_text("L", &serde_json::json!(28)), "28");
        assert_eq!(value_text("lr", &serde_json::json!(0.025)), "0.0250");
        assert_eq!(value_text("error", &Value::Null), "");
    }
}
