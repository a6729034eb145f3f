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
