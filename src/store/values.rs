//! Multi-row inserts with numbered parameters, which the epoch records and
//! the NAS-Bench-201 import both write in chunks.

use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection, Arguments, Encode, Type};

/// A multi-row `INSERT ... VALUES` with numbered parameters (`$1, $2,
/// ...`), which both databases accept; sqlx's `QueryBuilder` writes `?`
/// for the `Any` driver, which PostgreSQL does not.
pub(crate) struct Values<'q> {
    sql: String,
    args: AnyArguments<'q>,
    bound: usize,
    rows: usize,
    first_in_row: bool,
}

impl<'q> Values<'q> {
    /// An insert starting with `head` (`INSERT INTO t (a, b) `).
    pub(crate) fn new(head: &str) -> Self {
        Values {
            sql: format!("{head}VALUES "),
            args: AnyArguments::default(),
            bound: 0,
            rows: 0,
            first_in_row: true,
        }
    }

    /// Starts the next row.
    pub(crate) fn row(&mut self) -> &mut Self {
        self.sql.push_str(if self.rows == 0 { "(" } else { "), (" });
        self.rows += 1;
        self.first_in_row = true;
        self
    }

    /// Binds the next value of the current row.
    pub(crate) fn bind<V: Encode<'q, Any> + Type<Any> + 'q>(&mut self, value: V) -> &mut Self {
        if !self.first_in_row {
            self.sql.push_str(", ");
        }
        self.first_in_row = false;
        self.bound += 1;
        self.sql.push_str(&format!("${}", self.bound));
        // Adding to `AnyArguments` only stores the value; it cannot fail.
        let _ = self.args.add(value);
        self
    }

    /// Runs the insert with `tail` (`ON CONFLICT ...`) after the values;
    /// returns the rows written. Nothing is run for no rows.
    pub(crate) async fn execute(
        self,
        tail: &str,
        conn: &mut AnyConnection,
    ) -> Result<u64, sqlx::Error> {
        if self.rows == 0 {
            return Ok(0);
        }
        let sql = format!("{}){tail}", self.sql);
        Ok(sqlx::query_with(&sql, self.args)
            .execute(conn)
            .await?
            .rows_affected())
    }
}
