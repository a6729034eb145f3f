//! Reading a DARTS-space cell from text, for training it from scratch:
//! ddsas's own genotype text (`normal=[(sep_conv_3x3,0),...]
//! reduce=[...]`, as `runs.final_genotype` stores it), DARTS's
//! `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
//! reduce=[...], reduce_concat=range(2, 6))`, the line of a `genotypes.py`
//! that holds it (`NAME = Genotype(...)`), or a published name.
//!
//! One small parser reads both text forms: they differ only in quotes,
//! separators and the optional `[NAME =] Genotype(...)` around them. Every
//! error names the character position and what was expected there.
//!
//! What a user types goes through [`read`] (or [`read_any`]), which also
//! takes `@FILE` and `@FILE:NAME` (see [`source`]), so that a genotype from
//! a paper's repository is given without shell quoting.
//!
//! A cell to train goes through [`read_trained`] / [`parse_trained`]
//! instead, which also take cells from the literature (other node counts
//! and concats, `sep_conv_7x7`, `conv_7x1_1x7`; NASNet-A and AmoebaNet-A
//! by name) into a [`TrainedGenotype`]; searches keep to the space's
//! [`Genotype`] (`report cells --genotype` draws either).
//!
//! [`parse_any`] also reads a NAS-Bench-201 arch string
//! (`|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|`, as NB201 searches
//! store their genotype), for `ddsas report cells`, which draws cells of
//! both spaces.

pub mod source;

use crate::arch::metrics::{CellGenotype, Genotype};
use crate::arch::space::{SearchSpace, SpaceKind, NONE};
use crate::arch::trained::{TrainedCell, TrainedGenotype, LITERATURE_OPS};

/// DARTS (Liu et al., 2019): second-order search, 2.76 % on CIFAR-10.
const DARTS_V2: &str = "normal=[(sep_conv_3x3,0),(sep_conv_3x3,1),(sep_conv_3x3,0),(sep_conv_3x3,1),(sep_conv_3x3,1),(skip_connect,0),(skip_connect,0),(dil_conv_3x3,2)] reduce=[(max_pool_3x3,0),(max_pool_3x3,1),(skip_connect,2),(max_pool_3x3,1),(max_pool_3x3,0),(skip_connect,2),(skip_connect,2),(max_pool_3x3,1)]";
/// DARTS (Liu et al., 2019): first-order search, 3.00 % on CIFAR-10.
const DARTS_V1: &str = "normal=[(sep_conv_3x3,1),(sep_conv_3x3,0),(skip_connect,0),(sep_conv_3x3,1),(skip_connect,0),(sep_conv_3x3,1),(sep_conv_3x3,0),(skip_connect,2)] reduce=[(max_pool_3x3,0),(max_pool_3x3,1),(skip_connect,2),(max_pool_3x3,0),(max_pool_3x3,0),(skip_connect,2),(skip_connect,2),(avg_pool_3x3,0)]";

/// Published cells `--genotype` accepts by name.
pub const PUBLISHED: &[(&str, &str)] = &[("darts_v1", DARTS_V1), ("darts_v2", DARTS_V2)];

/// NASNet-A (Zoph et al., 2018) as DARTS's `genotypes.py` lists it: 5
/// nodes, `sep_conv_7x7` in the reduction cell.
const NASNET_A: &str = "normal=[(sep_conv_5x5,1),(sep_conv_3x3,0),(sep_conv_5x5,0),(sep_conv_3x3,0),(avg_pool_3x3,1),(skip_connect,0),(avg_pool_3x3,0),(avg_pool_3x3,0),(sep_conv_3x3,1),(skip_connect,1)] normal_concat=[2,3,4,5,6] reduce=[(sep_conv_5x5,1),(sep_conv_7x7,0),(max_pool_3x3,1),(sep_conv_7x7,0),(avg_pool_3x3,1),(sep_conv_5x5,0),(skip_connect,3),(avg_pool_3x3,2),(sep_conv_3x3,2),(max_pool_3x3,1)] reduce_concat=[4,5,6]";
/// AmoebaNet-A (Real et al., 2019) as DARTS's `genotypes.py` lists it.
const AMOEBANET_A: &str = "normal=[(avg_pool_3x3,0),(max_pool_3x3,1),(sep_conv_3x3,0),(sep_conv_5x5,2),(sep_conv_3x3,0),(avg_pool_3x3,3),(sep_conv_3x3,1),(skip_connect,1),(skip_connect,0),(avg_pool_3x3,1)] normal_concat=[4,5,6] reduce=[(avg_pool_3x3,0),(sep_conv_3x3,1),(max_pool_3x3,0),(sep_conv_7x7,2),(sep_conv_7x7,0),(avg_pool_3x3,1),(max_pool_3x3,0),(max_pool_3x3,1),(conv_7x1_1x7,0),(sep_conv_3x3,5)] reduce_concat=[3,4,6]";

/// Published cells from outside the DARTS space that only training takes
/// by name (searches stay in their spaces); each name is followed by the
/// names it is also known by.
pub const LITERATURE: &[(&str, &str, &[&str])] = &[
    ("nasnet_a", NASNET_A, &["nasnet"]),
    ("amoebanet_a", AMOEBANET_A, &["amoebanet"]),
];

/// Intermediate nodes a trained cell may have, against absurd texts.
const MAX_NODES: usize = 16;

/// Intermediate nodes of a DARTS cell, each fed by two (op, input) pairs.
const NODES: usize = 4;

/// A genotype text that cannot be read; the message says where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("genotype: {0}")]
pub struct GenotypeError(String);

/// Reads a genotype as a user gives it: `@FILE` or `@FILE:NAME` (a file,
/// or one genotype of a `genotypes.py`; see [`source`]), or the text itself
/// in any form [`parse`] reads.
pub fn read(arg: &str) -> Result<Genotype, GenotypeError> {
    source::read_with(arg, parse)
}

/// [`read`] for either space, as [`parse_any`] reads them.
pub fn read_any(arg: &str) -> Result<Genotype, GenotypeError> {
    source::read_with(arg, parse_any)
}

/// [`read`] for a cell to train: a DARTS-space cell or one from the
/// literature, as [`parse_trained`] reads them.
pub fn read_trained(arg: &str) -> Result<TrainedGenotype, GenotypeError> {
    source::read_with(arg, parse_trained)
}

/// Reads a DARTS-space genotype in any of the three forms.
pub fn parse(text: &str) -> Result<Genotype, GenotypeError> {
    let trimmed = text.trim();
    if let Some((_, published)) = PUBLISHED.iter().find(|(name, _)| *name == trimmed) {
        return parse(published);
    }
    if let Some((name, _, _)) = literature_named(trimmed) {
        return Err(GenotypeError(format!(
            "`{name}` is a cell from the literature, outside the DARTS search space: only `ddsas train` takes it"
        )));
    }
    let mut p = Parser::new(trimmed, false);
    let [normal, reduce] = p.genotype()?;
    let trained = TrainedGenotype { normal, reduce };
    Ok(trained
        .to_space()
        .expect("the strict parser reads DARTS-space cells only"))
}

/// Reads a cell to train: anything [`parse`] reads (the same cell), or a
/// cell from the literature in the same forms: other numbers of nodes
/// (two `(op, input)` pairs each), any concat of intermediate nodes (nodes
/// `2..n+2` when none is given) and the ops of [`LITERATURE_OPS`] too, as
/// DARTS's evaluation code builds NASNet-A and AmoebaNet-A; or one of
/// those by name ([`LITERATURE`]).
pub fn parse_trained(text: &str) -> Result<TrainedGenotype, GenotypeError> {
    let trimmed = text.trim();
    if PUBLISHED.iter().any(|(name, _)| *name == trimmed) {
        return parse(trimmed).map(|g| TrainedGenotype::from_space(&g));
    }
    if let Some((_, published, _)) = literature_named(trimmed) {
        return parse_trained(published);
    }
    let mut p = Parser::new(trimmed, true);
    let [normal, reduce] = p.genotype()?;
    Ok(TrainedGenotype { normal, reduce })
}

/// The literature cell called `name` (its own name or an alias).
fn literature_named(
    name: &str,
) -> Option<&'static (&'static str, &'static str, &'static [&'static str])> {
    LITERATURE
        .iter()
        .find(|(own, _, aliases)| *own == name || aliases.contains(&name))
}

/// Reads a genotype of either space: a NAS-Bench-201 arch string (it
/// starts with `|`) or any form [`parse`] reads.
pub fn parse_any(text: &str) -> Result<Genotype, GenotypeError> {
    if text.trim_start().starts_with('|') {
        parse_nb201(text)
    } else {
        parse(text)
    }
}

/// Reads a NAS-Bench-201 arch string: three `+`-separated groups for
/// nodes 1, 2 and 3, group `n` holding `op~input` for inputs `0..n` in
/// order, the inverse of [`Genotype::to_text`]. `none` is an op here.
pub fn parse_nb201(text: &str) -> Result<Genotype, GenotypeError> {
    let space = SearchSpace::new(SpaceKind::Nb201);
    let nodes = space.edge_nodes();
    let groups: Vec<&str> = text.trim().split('+').collect();
    if groups.len() != 3 {
        return Err(GenotypeError(format!(
            "a NAS-Bench-201 arch string has 3 `+`-separated groups (nodes 1, 2, 3), found {} in `{}`",
            groups.len(),
            text.trim()
        )));
    }
    let mut edges = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let to = g + 1;
        let pairs: Vec<&str> = group.split('|').filter(|p| !p.trim().is_empty()).collect();
        if pairs.len() != to {
            return Err(GenotypeError(format!(
                "node {to} of a NAS-Bench-201 cell takes {to} input(s) (`op~0|...`), found `{group}`"
            )));
        }
        for (from, pair) in pairs.iter().enumerate() {
            let expected = format!("`op~{from}` for input {from} of node {to}");
            let (name, input) = pair
                .trim()
                .split_once('~')
                .ok_or_else(|| GenotypeError(format!("expected {expected}, found `{pair}`")))?;
            if input.trim() != from.to_string() {
                return Err(GenotypeError(format!(
                    "expected {expected}, found `{pair}`"
                )));
            }
            let op = space.op_index(name.trim()).ok_or_else(|| {
                GenotypeError(format!(
                    "`{name}` is not a NAS-Bench-201 op; its ops are {}",
                    space.ops().join(", ")
                ))
            })?;
            let edge = nodes
                .iter()
                .position(|&e| e == (to, from))
                .expect("NB201 has every edge from an earlier node");
            edges.push((edge, op));
        }
    }
    Ok(Genotype {
        space: SpaceKind::Nb201,
        cells: vec![CellGenotype { edges }],
    })
}

/// The genotype in DARTS's own notation, which DARTS's code reads back.
pub fn darts_text(g: &Genotype) -> String {
    let space = SearchSpace::new(SpaceKind::Darts);
    let nodes = space.edge_nodes();
    let cell = |c: &CellGenotype| {
        let pairs: Vec<String> = c
            .edges
            .iter()
            .map(|&(edge, op)| format!("('{}', {})", space.ops()[op], nodes[edge].1))
            .collect();
        format!("[{}]", pairs.join(", "))
    };
    format!(
        "Genotype(normal={}, normal_concat=[2, 3, 4, 5], reduce={}, reduce_concat=[2, 3, 4, 5])",
        cell(&g.cells[0]),
        cell(&g.cells[1])
    )
}

/// A cursor over the text.
struct Parser<'a> {
    text: &'a str,
    at: usize,
    /// Whether cells from the literature are read too (other node counts,
    /// concats and ops); otherwise only DARTS-space cells.
    literature: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, literature: bool) -> Self {
        Parser {
            text,
            at: 0,
            literature,
        }
    }

    /// The names a genotype may be given by, for messages.
    fn names(&self) -> String {
        let mut names: Vec<&str> = PUBLISHED.iter().map(|(n, _)| *n).collect();
        if self.literature {
            names.extend(LITERATURE.iter().map(|(n, _, _)| *n));
        }
        names.join(", ")
    }

    fn error(&self, expected: &str) -> GenotypeError {
        let found = match self.rest().chars().next() {
            Some(c) => format!("`{c}`"),
            None => "the end".into(),
        };
        GenotypeError(format!(
            "at character {}: expected {expected}, found {found} (forms: `normal=[(sep_conv_3x3,0),...] reduce=[...]`, DARTS's `[NAME =] Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=range(2, 6))`, `@FILE` or `@FILE:NAME` for a file or a `genotypes.py`, or {})",
            self.at + 1,
            self.names()
        ))
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    /// Skips white space and, with `commas`, commas too.
    fn skip(&mut self, commas: bool) {
        let rest = self.rest();
        let kept = rest.trim_start_matches(|c: char| c.is_whitespace() || (commas && c == ','));
        self.at += rest.len() - kept.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip(false);
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), GenotypeError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("`{token}`")))
        }
    }

    fn word(&mut self) -> &'a str {
        self.skip(false);
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }

    fn number(&mut self) -> Result<usize, GenotypeError> {
        self.skip(false);
        let start = self.at;
        let word = self.word();
        word.parse().map_err(|_| {
            self.at = start;
            self.error("a node number")
        })
    }

    /// `[[NAME =] Genotype(] key=value ... [)]`: both cell types, concats
    /// checked.
    fn genotype(&mut self) -> Result<[TrainedCell; 2], GenotypeError> {
        self.assigned_name();
        let wrapped = self.wrapper();
        let (mut normal, mut reduce) = (None, None);
        let (mut normal_concat, mut reduce_concat) = (None, None);
        loop {
            self.skip(true);
            if self.rest().is_empty() || self.rest().starts_with(')') {
                break;
            }
            let key_at = self.at;
            match self.word() {
                "normal" => normal = Some(self.cell_value()?),
                "reduce" => reduce = Some(self.cell_value()?),
                "normal_concat" => normal_concat = Some(self.concat_value()?),
                "reduce_concat" => reduce_concat = Some(self.concat_value()?),
                _ => {
                    self.at = key_at;
                    return Err(
                        self.error("`normal`, `reduce`, `normal_concat` or `reduce_concat`")
                    );
                }
            }
        }
        if wrapped {
            self.expect(")")?;
        }
        self.skip(false);
        if !self.rest().is_empty() {
            return Err(self.error("the end of the genotype"));
        }
        match (normal, reduce) {
            (Some(n), Some(r)) => Ok([
                with_concat("normal", n, normal_concat)?,
                with_concat("reduce", r, reduce_concat)?,
            ]),
            _ => Err(GenotypeError(
                "it needs both a `normal=[...]` and a `reduce=[...]` cell".into(),
            )),
        }
    }

    /// Skips `NAME =` when `Genotype` follows, as a line of a
    /// `genotypes.py` starts; otherwise leaves the cursor where it was (the
    /// ddsas form starts with `normal=`).
    fn assigned_name(&mut self) {
        let start = self.at;
        let named = !self.word().is_empty() && self.eat("=") && self.word() == "Genotype";
        self.at = if named {
            self.at - "Genotype".len()
        } else {
            start
        };
    }

    /// Eats `Genotype(` (white space allowed before the parenthesis) and
    /// says whether it was there.
    fn wrapper(&mut self) -> bool {
        let start = self.at;
        if self.word() == "Genotype" && self.eat("(") {
            return true;
        }
        self.at = start;
        false
    }

    /// `=[(op, input), ...]`: two pairs per node, inputs below the node;
    /// 8 pairs (nodes 2-5) unless cells from the literature are read.
    fn cell_value(&mut self) -> Result<Vec<(String, usize)>, GenotypeError> {
        self.expect("=")?;
        self.expect("[")?;
        let mut ops = Vec::new();
        loop {
            self.skip(true);
            let full = if self.literature {
                self.eat("]")
            } else {
                ops.len() == 2 * NODES
            };
            if full {
                break;
            }
            let node = 2 + ops.len() / 2;
            let (op, input) = self.pair()?;
            if input >= node {
                return Err(GenotypeError(format!(
                    "before character {}: node {node} takes input {input}, but a node can only take the cell inputs 0, 1 and earlier nodes (< {node})",
                    self.at + 1
                )));
            }
            ops.push((op, input));
        }
        if !self.literature {
            self.skip(true);
            self.expect("]").map_err(|_| {
                self.error("`]` after 8 (op, input) pairs, two for each of nodes 2-5")
            })?;
        } else if ops.is_empty() || ops.len() % 2 == 1 || ops.len() > 2 * MAX_NODES {
            return Err(GenotypeError(format!(
                "before character {}: a cell lists two (op, input) pairs for each of its 1 to {MAX_NODES} nodes; found {} pairs",
                self.at + 1,
                ops.len()
            )));
        }
        Ok(ops)
    }

    /// `(op, input)`, the op quoted or not.
    fn pair(&mut self) -> Result<(String, usize), GenotypeError> {
        self.expect("(")?;
        let quoted = self.eat("'") || self.eat("\"");
        let name_at = self.at;
        let name = self.word();
        if quoted && !(self.eat("'") || self.eat("\"")) {
            return Err(self.error("a closing quote"));
        }
        let space = SearchSpace::new(SpaceKind::Darts);
        let in_space = space.op_index(name).is_some_and(|op| op != NONE);
        if !(in_space || self.literature && LITERATURE_OPS.contains(&name)) {
            self.at = name_at;
            let mut ops = space.ops()[1..].to_vec();
            if self.literature {
                ops.extend(LITERATURE_OPS);
            }
            return Err(GenotypeError(format!(
                "at character {}: `{name}` is not an op of a DARTS cell; its ops are {}",
                name_at + 1,
                ops.join(", ")
            )));
        }
        self.expect(",")?;
        let input = self.number()?;
        self.expect(")")?;
        Ok((name.to_owned(), input))
    }

    /// `=[2, 3, 4, 5]` or `=range(2, 6)`: the nodes the cell's output
    /// concatenates; only nodes 2-5 for a DARTS-space cell, the only
    /// output its network builds.
    fn concat_value(&mut self) -> Result<Vec<usize>, GenotypeError> {
        self.expect("=")?;
        self.skip(false);
        let start = self.at;
        let nodes = self.concat_list()?;
        match nodes {
            Some(nodes) if self.literature || nodes == DARTS_CONCAT => return Ok(nodes),
            _ => {}
        }
        let value: String = self.text[start..self.at]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        self.at = start;
        let wanted = if self.literature {
            format!("at most {MAX_NODES} intermediate nodes")
        } else {
            "nodes 2-5 (`[2, 3, 4, 5]` or `range(2, 6)`), as every DARTS-space cell does".into()
        };
        Err(GenotypeError(format!(
            "at character {}: the cell output must concatenate {wanted}; found `{value}`",
            start + 1
        )))
    }

    /// Reads a concat, `[a, b, ...]` or `range(a, b)`: its nodes, or none
    /// when a range is too long to be a cell's.
    fn concat_list(&mut self) -> Result<Option<Vec<usize>>, GenotypeError> {
        if self.eat("[") {
            let mut nodes = Vec::new();
            while !self.eat("]") {
                nodes.push(self.number()?);
                if !self.eat(",") {
                    self.expect("]")?;
                    break;
                }
            }
            return Ok(Some(nodes));
        }
        let start = self.at;
        if self.word() != "range" || !self.eat("(") {
            self.at = start;
            return Err(self.error("`[2, 3, 4, 5]` or `range(2, 6)`"));
        }
        let from = self.number()?;
        self.expect(",")?;
        let to = self.number()?;
        self.expect(")")?;
        Ok((to <= from.saturating_add(2 + MAX_NODES)).then(|| (from..to).collect()))
    }
}

/// The nodes a DARTS-space cell's output concatenates.
const DARTS_CONCAT: [usize; 4] = [2, 3, 4, 5];

/// The cell `kind` (`normal` or `reduce`) with its concat: the one given,
/// which must name intermediate nodes of the cell, each once, or all of
/// them (`2..n+2`, DARTS's own default) when none is given.
fn with_concat(
    kind: &str,
    ops: Vec<(String, usize)>,
    concat: Option<Vec<usize>>,
) -> Result<TrainedCell, GenotypeError> {
    let states = 2 + ops.len() / 2;
    let concat = concat.unwrap_or_else(|| (2..states).collect());
    let mut seen = concat.clone();
    seen.sort_unstable();
    seen.dedup();
    if concat.is_empty()
        || seen.len() != concat.len()
        || concat.iter().any(|&n| !(2..states).contains(&n))
    {
        return Err(GenotypeError(format!(
            "`{kind}_concat` must list intermediate nodes of the {kind} cell (2 to {}), each once; found {concat:?}",
            states - 1
        )));
    }
    Ok(TrainedCell { ops, concat })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_read_the_same_cell() {
        let by_name = parse("darts_v2").unwrap();
        let ours = parse(&by_name.to_text()).unwrap();
        assert_eq!(ours, by_name);
        let darts = parse(&darts_text(&by_name)).unwrap();
        assert_eq!(darts, by_name);
        let published = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))";
        assert_eq!(parse(published).unwrap(), by_name);
        assert_ne!(parse("darts_v1").unwrap(), by_name);
        assert_eq!(by_name.skip_count(0), 2);
    }

    /// The lines of DARTS's `genotypes.py`, verbatim.
    const PUBLISHED_V1: &str = "DARTS_V1 = Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])";
    const PUBLISHED_V2: &str = "DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

    /// Every way a published line is pasted: as it stands, its concats as
    /// `range(2, 6)`, without spaces, with a trailing newline, without
    /// `NAME = `.
    fn pasted_forms(line: &str) -> Vec<String> {
        let ranged = line.replace("[2, 3, 4, 5]", "range(2, 6)");
        let mut forms = Vec::new();
        for text in [line.to_owned(), ranged] {
            let unnamed = text[text.find("Genotype").unwrap()..].to_owned();
            for t in [text, unnamed] {
                forms.push(t.replace(' ', ""));
                forms.push(format!("{t}\n"));
                forms.push(format!("  {t}\r\n"));
                forms.push(t);
            }
        }
        forms
    }

    /// A published line, pasted whole, is read, its `NAME =` and a
    /// `range` concat followed by more fields included.
    #[test]
    fn published_darts_lines_read_as_the_built_in_cells() {
        for (line, name) in [(PUBLISHED_V1, "darts_v1"), (PUBLISHED_V2, "darts_v2")] {
            let built_in = parse(name).unwrap();
            for form in pasted_forms(line) {
                assert_eq!(parse(&form), Ok(built_in.clone()), "{form}");
                assert_eq!(read(&form), Ok(built_in.clone()), "{form}");
            }
        }
        assert_ne!(parse(PUBLISHED_V1), parse(PUBLISHED_V2));
    }

    /// A published line is read whole, no cut of it is, and none panics.
    #[test]
    fn a_published_line_is_read_whole_and_no_prefix_of_it() {
        let line = PUBLISHED_V2.replace("[2, 3, 4, 5]", "range(2, 6)");
        assert_eq!(parse(&line), parse("darts_v2"));
        for (end, _) in line.char_indices().skip(1) {
            assert!(parse(&line[..end]).is_err(), "{}", &line[..end]);
        }
        for odd in [
            "DARTS_V2 =",
            "= Genotype(",
            "Genotype",
            "é = Genotype(normal=[(é, 0)])",
            "normal_concat=range(2, 99999999999999999999999)",
        ] {
            assert!(parse(odd).is_err(), "{odd}");
        }
    }

    /// The wrong concat is quoted alone, not with the fields after it.
    #[test]
    fn a_wrong_range_concat_is_quoted_alone() {
        let line = PUBLISHED_V2.replacen("[2, 3, 4, 5]", "range(2, 7)", 1);
        let e = parse(&line).unwrap_err().to_string();
        assert!(
            e.contains("concatenate nodes 2-5") && e.ends_with("found `range(2,7)`"),
            "{e}"
        );
        let e = parse(&PUBLISHED_V2.replacen("[2, 3, 4, 5]", "[2, 3, 4, 5, 6]", 1))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("found `[2,3,4,5,6]`"), "{e}");
    }

    /// NASNet-A and AmoebaNet-A as DARTS's `genotypes.py` has them
    /// (there over several lines; pasted here on one).
    const PUBLISHED_NASNET: &str = "NASNet = Genotype(normal = [('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 1),], normal_concat = [2, 3, 4, 5, 6], reduce = [('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), ('avg_pool_3x3', 2), ('sep_conv_3x3', 2), ('max_pool_3x3', 1),], reduce_concat = [4, 5, 6],)";
    const PUBLISHED_AMOEBA: &str = "AmoebaNet = Genotype(normal = [('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 0), ('avg_pool_3x3', 1),], reduce_concat = [3, 4, 6], reduce = [('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_7x7', 2), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('conv_7x1_1x7', 0), ('sep_conv_3x3', 5),], normal_concat = [4, 5, 6])";

    /// The literature's lines read as the built-in cells, by every name;
    /// their stored text reads back; searches' parser refuses them.
    #[test]
    fn literature_cells_read_as_published_and_only_for_training() {
        for (line, names) in [
            (PUBLISHED_NASNET, ["nasnet_a", "nasnet"]),
            (PUBLISHED_AMOEBA, ["amoebanet_a", "amoebanet"]),
        ] {
            let cell = parse_trained(line).unwrap();
            for name in names {
                assert_eq!(parse_trained(name), Ok(cell.clone()), "{name}");
                let e = parse(name).unwrap_err().to_string();
                assert!(e.contains("only `ddsas train`"), "{e}");
            }
            assert_eq!(read_trained(line), Ok(cell.clone()));
            assert!(cell.to_space().is_none());
            assert_eq!(parse_trained(&cell.to_text()), Ok(cell.clone()));
            assert!(parse(line).is_err(), "a search's parser takes {line}");
        }
        let nasnet = parse_trained("nasnet").unwrap();
        assert_eq!(nasnet.normal.nodes(), 5);
        assert_eq!(nasnet.normal.concat, [2, 3, 4, 5, 6]);
        assert_eq!(nasnet.reduce.concat, [4, 5, 6]);
        let amoeba = parse_trained("amoebanet").unwrap();
        assert_eq!(amoeba.normal.concat, [4, 5, 6]);
        assert_eq!(amoeba.reduce.concat, [3, 4, 6]);
        assert_eq!(amoeba.reduce.ops[8], ("conv_7x1_1x7".to_owned(), 0));
    }

    /// A DARTS-space cell read for training is the space's cell, and its
    /// stored text (and hence a train run's fingerprint) is the one runs
    /// stored before cells from the literature existed.
    #[test]
    fn darts_cells_read_for_training_keep_their_stored_text() {
        for (line, name, stored) in [
            (PUBLISHED_V1, "darts_v1", DARTS_V1),
            (PUBLISHED_V2, "darts_v2", DARTS_V2),
        ] {
            let space = parse(name).unwrap();
            for form in pasted_forms(line)
                .iter()
                .map(String::as_str)
                .chain([name, stored])
            {
                let cell = parse_trained(form).unwrap();
                assert_eq!(cell, TrainedGenotype::from_space(&space), "{form}");
                assert_eq!(cell.to_space(), Some(space.clone()));
                assert_eq!(cell.to_text(), stored);
            }
        }
    }

    /// What a trained cell cannot be: an odd number of pairs, a concat
    /// of cell inputs or of nodes it lacks, an unknown op.
    #[test]
    fn trained_cells_are_checked() {
        let pairs = "(sep_conv_7x7,0),(conv_7x1_1x7,1)";
        let cell = format!("normal=[{pairs}] reduce=[{pairs}]");
        let g = parse_trained(&cell).unwrap();
        assert_eq!((g.normal.nodes(), g.normal.concat.clone()), (1, vec![2]));
        for (bad, says) in [
            (
                format!("normal=[(sep_conv_3x3,0)] reduce=[{pairs}]"),
                "two (op, input) pairs",
            ),
            (
                format!("{cell} normal_concat=[0,2]"),
                "`normal_concat` must list",
            ),
            (
                format!("{cell} reduce_concat=[3]"),
                "`reduce_concat` must list",
            ),
            (format!("{cell} reduce_concat=[2,2]"), "each once"),
            (
                "normal=[(conv_9x9,0),(sep_conv_3x3,1)] reduce=[]".to_owned(),
                "conv_9x9",
            ),
            (
                format!("normal=[{pairs},(skip_connect,3),(skip_connect,0)] reduce=[{pairs}]"),
                "node 3 takes input 3",
            ),
        ] {
            let e = parse_trained(&bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = parse(&cell).unwrap_err().to_string();
        assert!(e.contains("`sep_conv_7x7` is not an op"), "{e}");
    }

    /// A `genotypes.py` as DARTS-family repositories keep it: imports, a
    /// list, a NASNet cell over many lines (outside the DARTS space), the
    /// published lines, one cell over several lines with comments and
    /// `range` concats, and an alias.
    const GENOTYPES_PY: &str = r#"from collections import namedtuple

Genotype = namedtuple('Genotype', 'normal normal_concat reduce reduce_concat')

PRIMITIVES = [
    'none',
    'max_pool_3x3',
]

NASNet = Genotype(
  normal = [
    ('sep_conv_5x5', 1),
    ('sep_conv_3x3', 0),
    ('sep_conv_5x5', 0),
    ('sep_conv_3x3', 0),
    ('avg_pool_3x3', 1),
    ('skip_connect', 0),
    ('avg_pool_3x3', 0),
    ('avg_pool_3x3', 0),
    ('sep_conv_3x3', 1),
    ('skip_connect', 1),
  ],
  normal_concat = [2, 3, 4, 5, 6],
  reduce = [
    ('sep_conv_5x5', 1),
  ],
  reduce_concat = [4, 5, 6],
)

@@V1@@
@@V2@@

SPLIT = Genotype(
    normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1),  # node 2
            ('sep_conv_3x3', 0), ('sep_conv_3x3', 1),
            ('sep_conv_3x3', 1), ('skip_connect', 0),
            ('skip_connect', 0), ('dil_conv_3x3', 2)],
    normal_concat=range(2, 6),
    reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), \
('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)],
    reduce_concat=range(2, 6),
)

DARTS = DARTS_V2
"#;

    /// Writes `text` as `name` in `dir`, and gives its path as text.
    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// `@FILE:NAME` takes one genotype of a genotypes.py.
    #[test]
    fn at_file_name_reads_a_genotype_of_a_genotypes_py() {
        let dir = tempfile::tempdir().unwrap();
        let text = GENOTYPES_PY
            .replace("@@V1@@", PUBLISHED_V1)
            .replace("@@V2@@", PUBLISHED_V2);
        let py = write(&dir, "genotypes.py", &text);
        let (v1, v2) = (parse("darts_v1").unwrap(), parse("darts_v2").unwrap());
        for (name, cell) in [
            ("DARTS_V1", &v1),
            ("DARTS_V2", &v2),
            ("SPLIT", &v2),
            ("DARTS", &v2),
        ] {
            assert_eq!(read(&format!("@{py}:{name}")).as_ref(), Ok(cell), "{name}");
        }
        assert_eq!(read_any(&format!("@{py}:DARTS_V1")), Ok(v1.clone()));
        let e = read(&format!("@{py}:PC_DARTS")).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{py} has no genotype `PC_DARTS`"))
                && e.contains("NASNet, DARTS_V1, DARTS_V2, SPLIT, DARTS"),
            "{e}"
        );
        let e = read(&format!("@{py}:PRIMITIVES")).unwrap_err().to_string();
        assert!(
            e.contains("`PRIMITIVES` (line 5 of") && e.contains("not a `Genotype(...)`"),
            "{e}"
        );
        let e = read(&format!("@{py}:NASNet")).unwrap_err().to_string();
        assert!(
            e.contains("`NASNet` (line 10 of") && e.contains("after 8 (op, input) pairs"),
            "{e}"
        );
        let e = read(&format!("@{py}")).unwrap_err().to_string();
        assert!(
            e.contains("holds 4 genotypes") && e.contains(&format!("`@{py}:NASNet`")),
            "{e}"
        );
    }

    /// `@FILE` takes a file holding one genotype, in any form;
    /// a missing, empty or unreadable file is named.
    #[test]
    fn at_file_reads_a_file_holding_one_genotype() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = parse("darts_v2").unwrap();
        let header = "from collections import namedtuple\nGenotype = namedtuple('Genotype', 'normal normal_concat reduce reduce_concat')\n";
        for (i, text) in [
            format!("{PUBLISHED_V2}\n"),
            format!("{header}{PUBLISHED_V2}\n"),
            pasted_forms(PUBLISHED_V2)[5].clone(),
            format!("# DARTS V2\n{}\n", v2.to_text()),
            "darts_v2".into(),
        ]
        .iter()
        .enumerate()
        {
            let file = write(&dir, &format!("g{i}.txt"), text);
            assert_eq!(read(&format!("@{file}")).as_ref(), Ok(&v2), "{text}");
        }
        let nb201 = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|";
        let file = write(&dir, "arch.txt", nb201);
        assert_eq!(read_any(&format!("@{file}")).unwrap().to_text(), nb201);
        let missing = dir.path().join("nowhere.py").display().to_string();
        for arg in [format!("@{missing}"), format!("@{missing}:DARTS_V2")] {
            let e = read(&arg).unwrap_err().to_string();
            assert!(
                e.contains(&format!("cannot read genotype file {missing}:")),
                "{e}"
            );
        }
        let e = read(&format!("@{}", write(&dir, "empty.py", "\n# nothing\n")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is empty"), "{e}");
        let e = read(&format!("@{}", dir.path().display()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a folder"), "{e}");
        let binary = dir.path().join("bin.py");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let e = read(&format!("@{}", binary.display()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        let broken = write(
            &dir,
            "broken.txt",
            &PUBLISHED_V2.replace("skip_connect', 2)", "conv_9x9', 2)"),
        );
        let e = read(&format!("@{broken}")).unwrap_err().to_string();
        assert!(
            e.contains("`DARTS_V2` (line 1 of") && e.contains("`conv_9x9` is not an op"),
            "{e}"
        );
    }

    #[test]
    fn nb201_arch_strings_read_back_what_to_text_writes() {
        let text = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|";
        let g = parse_any(text).unwrap();
        assert_eq!(g.space, SpaceKind::Nb201);
        assert_eq!(g.to_text(), text);
        assert_eq!(g.cells[0].edges[1], (1, NONE));
        assert_eq!(parse_any("darts_v1").unwrap(), parse("darts_v1").unwrap());
        let e = parse_nb201("|nor_conv_3x3~0|+|none~0|")
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 `+`-separated groups"), "{e}");
        let e = parse_nb201(&text.replace("skip_connect~1", "skip_connect~0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`op~1` for input 1 of node 2"), "{e}");
        let e = parse_nb201(&text.replace("none~0", "sep_conv_3x3~0"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`sep_conv_3x3` is not a NAS-Bench-201 op"),
            "{e}"
        );
        let e = parse_nb201(&text.replace("|none~0|", "|"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("node 2 of a NAS-Bench-201 cell takes 2"), "{e}");
    }

    #[test]
    fn errors_name_the_position_and_what_was_expected() {
        let e = parse("normal=[(sep_conv_3x3 0)]").unwrap_err().to_string();
        assert!(
            e.contains("at character 23") && e.contains("expected `,`, found `0`"),
            "{e}"
        );
        let e = parse("normal=[(conv_7x7,0)] reduce=[]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`conv_7x7` is not an op") && e.contains("sep_conv_3x3, sep_conv_5x5"),
            "{e}"
        );
        let e = parse("normal=[(none,0)]").unwrap_err().to_string();
        assert!(e.contains("`none` is not an op"), "{e}");
        let e = parse(&DARTS_V2.replace("(dil_conv_3x3,2)", "(dil_conv_3x3,5)"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("node 5 takes input 5"), "{e}");
        let e = parse(&DARTS_V2.replace(" reduce", ", normal_concat=[2, 3], reduce"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("concatenate nodes 2-5"), "{e}");
        let e = parse(&DARTS_V2[..DARTS_V2.find(" reduce").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("both a `normal=[...]` and a `reduce=[...]`"),
            "{e}"
        );
        let e = parse("darts_v3").unwrap_err().to_string();
        assert!(e.contains("darts_v1, darts_v2"), "{e}");
    }
}
