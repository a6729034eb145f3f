//! A look at user-written SQL before SQLite sees it: sqlx runs every
//! statement of a multi-statement string and merges their rows, and a
//! `--where` clause is pasted inside parentheses that it must not close.
//! Only quotes, comments, `;` and parentheses matter, so a small scanner
//! does; SQLite still parses the SQL itself.

/// The characters of `sql` outside string literals, quoted identifiers and
/// comments, each with its byte offset.
fn significant(sql: &str) -> Vec<(usize, char)> {
    let mut out = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                // A doubled quote inside a literal is an escaped quote.
                while let Some((_, d)) = chars.next() {
                    if d == close {
                        if close != ']' && chars.peek().is_some_and(|&(_, n)| n == close) {
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
                out.push((at, 'x'));
            }
            '-' if chars.peek().is_some_and(|&(_, n)| n == '-') => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek().is_some_and(|&(_, n)| n == '*') => {
                chars.next();
                let mut last = ' ';
                for (_, d) in chars.by_ref() {
                    if last == '*' && d == '/' {
                        break;
                    }
                    last = d;
                }
            }
            c => out.push((at, c)),
        }
    }
    out
}

/// Checks that `sql` holds exactly one statement (a trailing `;` is fine).
pub fn one_statement(sql: &str) -> Result<(), String> {
    let chars = significant(sql);
    let mut rest = chars
        .iter()
        .skip_while(|(_, c)| c.is_whitespace() || *c == ';');
    if rest.next().is_none() {
        return Err(
            "the query is empty; write one SQL statement, e.g. `SELECT * FROM run_summary`".into(),
        );
    }
    let end = chars.iter().position(|&(_, c)| c == ';');
    if let Some(end) = end {
        if chars[end..]
            .iter()
            .any(|&(_, c)| !c.is_whitespace() && c != ';')
        {
            return Err(format!(
                "more than one statement (a second starts after the `;` at byte {}); run them one at a time",
                chars[end].0
            ));
        }
    }
    Ok(())
}

/// PRAGMAs that only read, the ones `ddsas sql` lets through (without
/// `=`): a PRAGMA that sets something can change the file (`journal_mode`
/// rewrote it, or failed with "disk I/O error" on a read-only connection).
const READING_PRAGMAS: [&str; 14] = [
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "database_list",
    "collation_list",
    "function_list",
    "user_version",
    "schema_version",
    "integrity_check",
    "quick_check",
];

/// Statement keywords that change a database or its connection.
const WRITING: [&str; 16] = [
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "CREATE",
    "DROP",
    "ALTER",
    "ATTACH",
    "DETACH",
    "VACUUM",
    "REINDEX",
    "ANALYZE",
    "BEGIN",
    "COMMIT",
    "SAVEPOINT",
    "RELEASE",
];

/// Refuses a statement that would change something, with the reason:
/// anything starting with a [`WRITING`] keyword, and a PRAGMA that is not
/// in [`READING_PRAGMAS`] or has `=`. Why not trust the read-only
/// connection alone: SQLite lets `VACUUM INTO 'file'` write a new file from
/// one, and some PRAGMAs fail there with a confusing "disk I/O error".
/// Anything else (a `WITH` hiding a write included) goes to SQLite, which
/// refuses writes on the read-only connection and reports typos itself.
pub fn read_only_statement(sql: &str) -> Result<(), String> {
    let text: String = significant(sql).iter().map(|&(_, c)| c).collect();
    let mut words = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| !w.is_empty());
    let first = words.next().unwrap_or_default().to_ascii_uppercase();
    if first == "PRAGMA" {
        let name = words.next().unwrap_or_default().to_ascii_lowercase();
        let name = name.rsplit('.').next().unwrap_or_default().to_string();
        if text.contains('=') || !READING_PRAGMAS.contains(&name.as_str()) {
            return Err(format!(
                "`PRAGMA {name}` could change the database; the PRAGMAs that only read are {} (without `=`)",
                READING_PRAGMAS.join(", ")
            ));
        }
    } else if first == "VACUUM" {
        return Err("`VACUUM` writes (`VACUUM INTO` a new file); to copy the database use `sqlite3 results.db \".backup copy.db\"`".into());
    } else if WRITING.contains(&first.as_str()) {
        return Err(format!("`{first}` changes the database"));
    }
    Ok(())
}

/// Checks that a `--where` condition cannot leave the parentheses it is
/// put in: balanced parentheses and no `;`.
pub fn one_condition(condition: &str) -> Result<(), String> {
    let mut depth = 0i64;
    for &(at, c) in &significant(condition) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!(
                        "the `)` at byte {at} closes a parenthesis it did not open"
                    ));
                }
            }
            ';' => return Err("it must be one condition, without `;`".into()),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a parenthesis is left open".into());
    }
    if significant(condition)
        .iter()
        .all(|(_, c)| c.is_whitespace())
    {
        return Err("the condition is empty".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reading_statements_pass() {
        for ok in [
            "SELECT 1",
            "  select * from runs -- VACUUM",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "VALUES (1)",
            "EXPLAIN QUERY PLAN SELECT * FROM runs",
            "PRAGMA table_info(runs)",
            "pragma main.table_info('epochs')",
            "/* why */ PRAGMA user_version",
        ] {
            assert_eq!(read_only_statement(ok), Ok(()), "{ok}");
        }
        // Typos are SQLite's to report.
        assert_eq!(read_only_statement("SELEC 1"), Ok(()));
        for (bad, says) in [
            ("VACUUM INTO 'copy.db'", "`VACUUM` writes"),
            (
                "PRAGMA journal_mode=DELETE",
                "`PRAGMA journal_mode` could change",
            ),
            ("PRAGMA user_version = 3", "without `=`"),
            ("delete FROM runs", "`DELETE` changes the database"),
            ("ATTACH 'x.db' AS x", "`ATTACH` changes"),
        ] {
            let err = read_only_statement(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn one_statement_at_a_time() {
        assert!(one_statement("SELECT 1").is_ok());
        assert!(one_statement("SELECT 1;  ;\n").is_ok());
        assert!(one_statement("SELECT ';' AS a, \"x;y\" -- ; comment\n FROM t /* ; */").is_ok());
        assert!(one_statement("SELECT 'it''s; fine'").is_ok());
        let e = one_statement("SELECT 1 AS a; SELECT 'x' AS b").unwrap_err();
        assert!(e.contains("more than one statement"), "{e}");
        assert!(one_statement("").unwrap_err().contains("empty"));
        assert!(one_statement("  ;  ").unwrap_err().contains("empty"));
        assert!(one_statement("-- only a comment")
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn conditions_stay_inside_their_parentheses() {
        assert!(one_condition("L = 28 and (M >= 10 or M = 1)").is_ok());
        assert!(one_condition("genotype LIKE '%)%'").is_ok());
        let e = one_condition("1=0) OR (1=1").unwrap_err();
        assert!(e.contains("closes a parenthesis"), "{e}");
        assert!(one_condition("(L = 28").unwrap_err().contains("left open"));
        assert!(one_condition("L = 28; DROP TABLE runs")
            .unwrap_err()
            .contains(";"));
        assert!(one_condition("  ").unwrap_err().contains("empty"));
    }
}
