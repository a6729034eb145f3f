//! `ddsas sql "SELECT ..."`: any question about the run history, on a
//! read-only connection (a statement that would write is refused, never
//! executed), printed as a table, CSV or JSON. Also the output formats that
//! `ddsas runs` shares.

use std::io::Write;
use std::process::ExitCode;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use tokio::runtime::Runtime;

use crate::cli::DbArgs;
use crate::report::escape::csv_field;
use crate::store::{Budget, Cut, QueryError, QueryRows};

/// Output format of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// CSV with a header line, for spreadsheets and pandas.
    Csv,
    /// A JSON array of objects (column order kept), for scripts.
    Json,
}

/// Run a read-only SQL query on the run history.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Tables: runs, epochs, sampling_counts, subspaces, ratio_hist, steps, sweeps, sweep_runs, nb201_accuracy; view: run_summary.\nExamples:\n  ddsas sql \"SELECT method, avg(valid_acc) FROM run_summary GROUP BY method\"\n  ddsas sql \"SELECT * FROM epochs WHERE run_id = 3\" --format csv > run3.csv"
)]
pub struct SqlCmd {
    /// One SQL statement (SELECT, WITH, PRAGMA reads, EXPLAIN...).
    query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print at most this many rows, and how many more there were.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Stop the query after this many seconds (0: no limit), so that a
    /// runaway statement never hangs the command.
    #[arg(long, value_name = "SECS", default_value_t = super::CLI_QUERY_TIMEOUT)]
    query_timeout: u64,
    /// Read at most this many MiB of values (text and blobs by their
    /// length, numbers 8 bytes): the rows past it are not read, and the
    /// command says so and fails, so that a cross join or a huge value
    /// never takes the memory.
    #[arg(long, value_name = "MIB", default_value_t = MAX_MIB,
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_mib: u64,
    #[command(flatten)]
    db: DbArgs,
}

/// `--max-mib`'s default: more than any table of runs and epochs, and a
/// fraction of a machine's memory, since the rows are held until printed
/// and a table is laid out whole (measured: 256 MiB of values took 0.7 GB
/// resident as CSV, 2 GB as a table).
const MAX_MIB: u64 = 64;

impl SqlCmd {
    /// Runs the command.
    pub fn run(self, rt: &Runtime) -> anyhow::Result<ExitCode> {
        let mut db = self.db.open_read_only(rt)?;
        rt.block_on(db.set_time_limit(super::query_limit(self.query_timeout)))?;
        let budget = Budget {
            rows: self
                .limit
                .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            bytes: usize::try_from(self.max_mib << 20).unwrap_or(usize::MAX),
        };
        let rows = rt.block_on(db.query_within(&self.query, &[], budget));
        let (rows, cut) = rows.map_err(|e| match e {
            QueryError::ReadOnly { message } => anyhow::anyhow!(
                "ddsas sql is read-only; this statement would change the database ({message}). Runs are changed only by ddsas itself; use the sqlite3 shell on a copy if you really mean to edit it"
            ),
            QueryError::Sql { message } => anyhow::anyhow!("SQL error: {message}"),
            other => other.into(),
        })?;
        print_rows(&rows, self.format)?;
        // On stderr, so that CSV and JSON on stdout stay whole files.
        match cut {
            Cut::None => {}
            Cut::Rows(more) => crate::errln!(
                "{more} more row{} not shown (--limit {})",
                if more == 1 { "" } else { "s" },
                rows.rows.len()
            ),
            Cut::Bytes(_) => {
                crate::errln!("{}", bytes_cut_message(rows.rows.len(), self.max_mib));
                return Ok(ExitCode::FAILURE);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The line that says an answer stopped at `--max-mib`, after `shown` rows.
fn bytes_cut_message(shown: usize, max_mib: u64) -> String {
    format!(
        "the answer was cut at {max_mib} MiB after {shown} row{}; the rows after were not read (--max-mib MIB changes the limit; select fewer columns or rows, or length(x) for a huge value)",
        if shown == 1 { "" } else { "s" }
    )
}

/// Prints query rows in the chosen format on stdout.
pub fn print_rows(rows: &QueryRows, format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table if rows.rows.is_empty() => {
            writeln!(out, "(no rows)")?;
        }
        Format::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            table.set_header(rows.columns.clone());
            for row in &rows.rows {
                table.add_row(row.iter().map(cell_text).collect::<Vec<_>>());
            }
            writeln!(out, "{table}")?;
            writeln!(
                out,
                "({} row{})",
                rows.rows.len(),
                if rows.rows.len() == 1 { "" } else { "s" }
            )?;
        }
        Format::Csv => {
            writeln!(
                out,
                "{}",
                rows.columns
                    .iter()
                    .map(|c| csv_field(c))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
            for row in &rows.rows {
                let fields: Vec<String> = row
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => csv_field(s),
                        other => csv_field(&other.to_string()),
                    })
                    .collect();
                writeln!(out, "{}", fields.join(","))?;
            }
        }
        Format::Json => {
            writeln!(out, "[")?;
            for (i, row) in rows.rows.iter().enumerate() {
                let fields: Vec<String> = rows
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| format!("{}: {}", serde_json::Value::from(c.as_str()), v))
                    .collect();
                let comma = if i + 1 < rows.rows.len() { "," } else { "" };
                writeln!(out, "  {{{}}}{comma}", fields.join(", "))?;
            }
            writeln!(out, "]")?;
        }
    }
    Ok(())
}

/// A value for a table cell: reals rounded for reading, NULL as empty.
pub fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_f64() => real_text(n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

/// A real number as a table cell shows it.
pub fn real_text(x: f64) -> String {
    let a = x.abs();
    // Scientific notation where fixed point would print a wall of
    // digits (1.5e300) or only zeros (3e-9).
    if a >= 1e9 || (a > 0.0 && a < 1e-4) {
        format!("{x:.4e}")
    } else if a >= 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well_at_every_scale() {
        let cell = |x: f64| cell_text(&serde_json::json!(x));
        assert_eq!(cell(0.25), "0.2500");
        assert_eq!(cell(1234.56), "1234.6");
        assert_eq!(cell(1.5e300), "1.5000e300");
        assert_eq!(cell(3e-9), "3.0000e-9");
        assert_eq!(cell(0.0), "0.0000");
        assert_eq!(cell_text(&serde_json::json!(7)), "7");
    }
}
