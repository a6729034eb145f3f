//! Where the parts of a cell picture go (`ddsas report cells`, the
//! appendix's Fig. 11): a cell as a graph of nodes and op edges, laid out
//! left to right in pixels, with a place for every op's label.
//!
//! Layout as data, apart from the drawing, so that what makes a picture
//! readable is tested without looking at it: nodes in columns by depth
//! (inputs left, output right, an intermediate node one column right of
//! its deepest input, so every op edge points right), no edge through a
//! node it does not join, few crossings, and op labels that overlap
//! neither each other nor a node.
//!
//! How: the node heights are chosen among a few slots per column by
//! scoring every combination (at most a few thousand: four intermediate
//! nodes), then the labels are placed greedily at one of several points
//! along their edge; the best-scoring heights whose labels all fit win.

use serde::Serialize;

use super::draw::text::{bold, font, measure};
use crate::arch::metrics::CellGenotype;
use crate::arch::space::{SearchSpace, SpaceKind, NONE};
use crate::arch::trained::TrainedCell;

/// Em size of op labels, pixels.
pub const LABEL_PX: u32 = 19;
/// Em size of node names, pixels.
pub const NODE_PX: u32 = 21;
/// Height of a node box, pixels.
const NODE_H: f64 = 46.0;
/// Height of a label box, pixels.
const LABEL_H: f64 = LABEL_PX as f64 + 9.0;
/// Padding either side of a label's text, pixels.
const LABEL_PAD: f64 = 6.0;
/// Labels closer than this to each other cost more, pixels.
const LABEL_GAP: f64 = 14.0;
/// Room kept free around nodes (arrowheads end there), pixels.
const NODE_CLEARANCE: f64 = 14.0;
/// Heights a node can take in its column.
const SLOTS: usize = 7;
/// How many of the best-scoring heights get their labels placed, the
/// labels' own cost deciding among them.
const FINALISTS: usize = 120;
/// Where along an edge's visible part a label may sit, best first.
const LABEL_AT: [f64; 9] = [0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75, 0.18, 0.82];

/// What a node of a cell is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A cell input: the output of the cell two back (c_{k-2}) or one back
    /// (c_{k-1}).
    Input,
    /// An intermediate node, the sum of its op edges.
    Intermediate,
    /// The cell output c_{k}.
    Output,
}

/// A cell as a graph, before layout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellGraph {
    /// `(name, kind)` of every node, inputs first, output last.
    pub nodes: Vec<(String, NodeKind)>,
    /// `(from, to, op)`: an op edge, or with `op` `None` an edge of the
    /// output's concatenation.
    pub edges: Vec<(usize, usize, Option<String>)>,
    /// `(from, to)` of the edges whose op is `none`, not drawn.
    pub omitted: Vec<(String, String)>,
}

/// Name of DARTS cell input `i` (0: c_{k-2}, 1: c_{k-1}).
pub const DARTS_INPUTS: [&str; 2] = ["c_{k-2}", "c_{k-1}"];
/// Name of a cell's output.
pub const OUTPUT: &str = "c_{k}";

impl CellGraph {
    /// The graph of one cell type of a genotype in `space`: in the DARTS
    /// space inputs c_{k-2}, c_{k-1}, intermediate nodes 0..3 and the
    /// output c_{k} concatenating them; in NB201 input c_{k-1}, nodes 1, 2
    /// and output c_{k} = node 3, with `none` edges left out.
    pub fn of(space: SpaceKind, cell: &CellGenotype) -> CellGraph {
        let s = SearchSpace::new(space);
        let ops = s.ops();
        let ends = s.edge_nodes();
        let (nodes, concat): (Vec<(String, NodeKind)>, bool) = match space {
            SpaceKind::Darts => {
                let mut nodes: Vec<(String, NodeKind)> = DARTS_INPUTS
                    .iter()
                    .map(|n| (n.to_string(), NodeKind::Input))
                    .collect();
                nodes.extend((0..4).map(|i| (i.to_string(), NodeKind::Intermediate)));
                nodes.push((OUTPUT.into(), NodeKind::Output));
                (nodes, true)
            }
            SpaceKind::Nb201 => (
                vec![
                    (DARTS_INPUTS[1].into(), NodeKind::Input),
                    ("1".into(), NodeKind::Intermediate),
                    ("2".into(), NodeKind::Intermediate),
                    (OUTPUT.into(), NodeKind::Output),
                ],
                false,
            ),
        };
        let mut edges = Vec::new();
        let mut omitted = Vec::new();
        for &(edge, op) in &cell.edges {
            let (to, from) = ends[edge];
            if op == NONE {
                omitted.push((nodes[from].0.clone(), nodes[to].0.clone()));
            } else {
                edges.push((from, to, Some(ops[op].to_string())));
            }
        }
        if concat {
            let out = nodes.len() - 1;
            edges.extend((2..out).map(|n| (n, out, None)));
        }
        CellGraph {
            nodes,
            edges,
            omitted,
        }
    }

    /// The graph of a cell to train, which may come from the literature
    /// (NASNet-A, AmoebaNet-A): inputs c_{k-2}, c_{k-1}, one intermediate
    /// node per pair of ops (state `n` is node `n - 2`, as in the genotype
    /// text), and the output c_{k} concatenating only the cell's concat
    /// list, so a node left out of it has no edge to the output.
    pub fn of_trained(cell: &TrainedCell) -> CellGraph {
        let mut nodes: Vec<(String, NodeKind)> = DARTS_INPUTS
            .iter()
            .map(|n| (n.to_string(), NodeKind::Input))
            .collect();
        nodes.extend((0..cell.nodes()).map(|i| (i.to_string(), NodeKind::Intermediate)));
        nodes.push((OUTPUT.into(), NodeKind::Output));
        let out = nodes.len() - 1;
        let mut edges: Vec<(usize, usize, Option<String>)> = cell
            .ops
            .iter()
            .enumerate()
            .map(|(j, (op, input))| (*input, 2 + j / 2, Some(op.clone())))
            .collect();
        edges.extend(cell.concat.iter().map(|&n| (n, out, None)));
        CellGraph {
            nodes,
            edges,
            omitted: Vec::new(),
        }
    }

    /// Column of every node: inputs 0, an intermediate node one right of
    /// its deepest input (at least 1), the output right of them all.
    pub fn columns(&self) -> Vec<usize> {
        let mut col = vec![0usize; self.nodes.len()];
        // Nodes are in topological order (an edge never points back).
        for (n, (_, kind)) in self.nodes.iter().enumerate() {
            col[n] = match kind {
                NodeKind::Input => 0,
                NodeKind::Intermediate => self
                    .edges
                    .iter()
                    .filter(|(_, to, op)| *to == n && op.is_some())
                    .map(|(from, _, _)| col[*from] + 1)
                    .max()
                    .unwrap_or(1),
                NodeKind::Output => 0,
            };
        }
        let last = col.iter().max().copied().unwrap_or(0) + 1;
        for (n, (_, kind)) in self.nodes.iter().enumerate() {
            if *kind == NodeKind::Output {
                col[n] = last;
            }
        }
        col
    }
}

/// An axis-aligned box: centre and size, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rect {
    /// Centre x, y.
    pub center: (f64, f64),
    /// Width, height.
    pub size: (f64, f64),
}

impl Rect {
    /// Left, top, right, bottom.
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        let (hw, hh) = (self.size.0 / 2.0, self.size.1 / 2.0);
        (
            self.center.0 - hw,
            self.center.1 - hh,
            self.center.0 + hw,
            self.center.1 + hh,
        )
    }

    /// This box grown by `by` on every side.
    pub fn grown(&self, by: f64) -> Rect {
        Rect {
            center: self.center,
            size: (self.size.0 + 2.0 * by, self.size.1 + 2.0 * by),
        }
    }

    /// Whether the two boxes share any area.
    pub fn overlaps(&self, other: &Rect) -> bool {
        let (l, t, r, b) = self.bounds();
        let (l2, t2, r2, b2) = other.bounds();
        l < r2 && l2 < r && t < b2 && t2 < b
    }

    /// Where the ray from `from` (inside the box) towards `to` leaves it.
    fn exit_towards_from(&self, from: (f64, f64), to: (f64, f64)) -> (f64, f64) {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let (l, t, r, b) = self.bounds();
        let sx = if dx > 1e-9 {
            (r - from.0) / dx
        } else if dx < -1e-9 {
            (l - from.0) / dx
        } else {
            f64::INFINITY
        };
        let sy = if dy > 1e-9 {
            (b - from.1) / dy
        } else if dy < -1e-9 {
            (t - from.1) / dy
        } else {
            f64::INFINITY
        };
        let s = sx.min(sy).clamp(0.0, 1.0);
        (from.0 + dx * s, from.1 + dy * s)
    }

    /// Whether the segment `a`–`b` passes through the box (Liang–Barsky).
    pub fn crossed_by(&self, a: (f64, f64), b: (f64, f64)) -> bool {
        let (l, t, r, bo) = self.bounds();
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, a.0 - l),
            (dx, r - a.0),
            (-dy, a.1 - t),
            (dy, bo - a.1),
        ] {
            if p.abs() < 1e-12 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let u = q / p;
                if p < 0.0 {
                    t0 = t0.max(u);
                } else {
                    t1 = t1.min(u);
                }
            }
        }
        t0 < t1
    }
}

/// A placed node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// `c_{k-2}`, `0`, ..., `c_{k}`.
    pub name: String,
    /// Input, intermediate or output.
    pub kind: NodeKind,
    /// Column, 0 for the inputs.
    pub column: usize,
    /// Its box.
    #[serde(rename = "box")]
    pub rect: Rect,
}

/// A placed edge: a straight arrow from one node's box to another's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    /// Index of the node it leaves.
    pub from: usize,
    /// Index of the node it enters.
    pub to: usize,
    /// Its op, or `None` for an edge of the output's concatenation.
    pub op: Option<String>,
    /// Where it leaves `from`'s box.
    pub start: (f64, f64),
    /// Where it enters `to`'s box (the arrow's tip).
    pub end: (f64, f64),
    /// Its op label's box.
    pub label: Option<Rect>,
}

/// A laid-out cell: its nodes and edges in pixels of a `size` area.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellLayout {
    /// Width and height of the area laid out, pixels.
    pub size: (f64, f64),
    /// Nodes, in the graph's order.
    pub nodes: Vec<Node>,
    /// Edges, in the graph's order.
    pub edges: Vec<Edge>,
    /// `(from, to)` of the `none` edges left out.
    pub omitted: Vec<(String, String)>,
}

impl CellLayout {
    /// Names of the nodes the output concatenates, as a note says them:
    /// a run of three or more (`0–3`) joined by a dash, else listed.
    pub fn concat_text(&self) -> String {
        let out = self.nodes.len() - 1;
        let names: Vec<&str> = self
            .edges
            .iter()
            .filter(|e| e.to == out && e.op.is_none())
            .map(|e| self.nodes[e.from].name.as_str())
            .collect();
        let numbers: Option<Vec<usize>> = names.iter().map(|n| n.parse().ok()).collect();
        match numbers.as_deref() {
            Some(n @ [first, .., last])
                if n.len() > 2 && n.windows(2).all(|w| w[1] == w[0] + 1) =>
            {
                format!("{first}–{last}")
            }
            _ => names.join(", "),
        }
    }
}

/// Size of a label box for `op`.
fn label_size(op: &str) -> (f64, f64) {
    (
        f64::from(measure(op, &font(LABEL_PX))) + 2.0 * LABEL_PAD,
        LABEL_H,
    )
}

/// Em size of a node name's subscript, pixels.
pub const SUB_PX: u32 = NODE_PX * 3 / 4;

/// Size of `name`'s node box.
fn node_size(name: &str) -> (f64, f64) {
    let (main, sub) = node_parts(name);
    let w = measure(&main, &bold(NODE_PX)) + sub.map_or(0, |s| 2 + measure(&s, &bold(SUB_PX)));
    ((f64::from(w) + 28.0).max(64.0), NODE_H)
}

/// A node's name as drawn: the letter and, for DARTS's `c_{k-2}`, its
/// subscript `k−2` (set smaller and lower, as the paper prints it).
pub fn node_parts(name: &str) -> (String, Option<String>) {
    match name.split_once("_{") {
        Some((main, sub)) => (
            main.to_string(),
            Some(sub.trim_end_matches('}').replace('-', "−")),
        ),
        None => (name.to_string(), None),
    }
}

/// Whether segments `a`–`b` and `c`–`d` cross (strictly inside both).
fn segments_cross(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let orient = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0)
    };
    let (o1, o2) = (orient(a, b, c), orient(a, b, d));
    let (o3, o4) = (orient(c, d, a), orient(c, d, b));
    o1 * o2 < 0.0 && o3 * o4 < 0.0
}

/// The heights (slot per node) tried for one placement.
type Slots = Vec<usize>;

/// Lays out `graph` in an area of `size` pixels: columns spread evenly
/// across, nodes at the best-scoring heights whose labels all fit.
pub fn layout(graph: &CellGraph, size: (f64, f64)) -> CellLayout {
    let columns = graph.columns();
    let candidates = slot_choices(graph, &columns);
    let mut scored: Vec<(f64, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(i, slots)| (score(&place(graph, &columns, slots, size)), i))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut best: Option<(f64, CellLayout)> = None;
    for &(base, i) in scored.iter().take(FINALISTS) {
        let mut placed = place(graph, &columns, &candidates[i], size);
        let Some(labels) = place_labels(&mut placed, false) else {
            continue;
        };
        let total = base + labels;
        if best.as_ref().is_none_or(|(b, _)| total < *b) {
            best = Some((total, placed));
        }
    }
    if let Some((_, mut placed)) = best {
        centre_vertically(&mut placed);
        return placed;
    }
    // No heights let every label fit (never seen for a DARTS or NB201
    // cell): the best heights, labels where they overlap least.
    let i = scored.first().map_or(0, |s| s.1);
    let mut placed = place(graph, &columns, &candidates[i], size);
    place_labels(&mut placed, true);
    placed
}

/// Moves everything up or down so that the nodes and labels sit in the
/// middle of the area (the slots chosen may leave more room below than
/// above).
fn centre_vertically(l: &mut CellLayout) {
    let boxes = l
        .nodes
        .iter()
        .map(|n| n.rect)
        .chain(l.edges.iter().filter_map(|e| e.label));
    let (top, bottom) = boxes.fold((f64::INFINITY, f64::NEG_INFINITY), |(t, b), r| {
        let (_, rt, _, rb) = r.bounds();
        (t.min(rt), b.max(rb))
    });
    if !top.is_finite() {
        return;
    }
    let dy = ((l.size.1 - bottom) - top) / 2.0;
    for n in &mut l.nodes {
        n.rect.center.1 += dy;
    }
    for e in &mut l.edges {
        e.start.1 += dy;
        e.end.1 += dy;
        if let Some(label) = &mut e.label {
            label.center.1 += dy;
        }
    }
}

/// Every assignment of slots to nodes: inputs and the output at fixed
/// choices, each column's intermediate nodes at increasing slots.
fn slot_choices(graph: &CellGraph, columns: &[usize]) -> Vec<Slots> {
    let mid = SLOTS / 2;
    let inputs: Vec<usize> = (0..graph.nodes.len())
        .filter(|&n| graph.nodes[n].1 == NodeKind::Input)
        .collect();
    let input_choices: Vec<Vec<usize>> = match inputs.len() {
        1 => vec![vec![mid]],
        _ => vec![vec![1, SLOTS - 2], vec![2, SLOTS - 3], vec![0, SLOTS - 1]],
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let max_col = columns.iter().max().copied().unwrap_or(0);
    for c in 1..max_col {
        let members: Vec<usize> = (0..graph.nodes.len())
            .filter(|&n| columns[n] == c && graph.nodes[n].1 == NodeKind::Intermediate)
            .collect();
        if !members.is_empty() {
            groups.push(members);
        }
    }
    let mut out = Vec::new();
    for ins in &input_choices {
        let mut base = vec![mid; graph.nodes.len()];
        for (n, s) in inputs.iter().zip(ins) {
            base[*n] = *s;
        }
        extend(&groups, 0, base, &mut out);
    }
    out
}

/// Adds to `out` every way of giving `groups[g..]` increasing slots.
fn extend(groups: &[Vec<usize>], g: usize, base: Slots, out: &mut Vec<Slots>) {
    let Some(members) = groups.get(g) else {
        out.push(base);
        return;
    };
    for combo in increasing(members.len(), SLOTS) {
        let mut next = base.clone();
        for (n, s) in members.iter().zip(combo) {
            next[*n] = s;
        }
        extend(groups, g + 1, next, out);
    }
}

/// Every increasing sequence of `k` numbers below `n`.
fn increasing(k: usize, n: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for rest in increasing(k - 1, n) {
        let from = rest.last().map_or(0, |l| l + 1);
        for s in from..n {
            let mut v = rest.clone();
            v.push(s);
            out.push(v);
        }
    }
    out
}

/// Nodes at `slots`, edges between their boxes, no labels yet.
fn place(graph: &CellGraph, columns: &[usize], slots: &[usize], size: (f64, f64)) -> CellLayout {
    let xs = column_xs(graph, columns);
    let widths: Vec<f64> = graph.nodes.iter().map(|(n, _)| node_size(n).0).collect();
    let left = widths[0] / 2.0 + 12.0;
    let right = size.0 - widths[widths.len() - 1] / 2.0 - 12.0;
    let (top, bottom) = (NODE_H / 2.0 + 8.0, size.1 - NODE_H / 2.0 - 8.0);
    let nodes: Vec<Node> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(n, (name, kind))| Node {
            name: name.clone(),
            kind: *kind,
            column: columns[n],
            rect: Rect {
                center: (
                    left + (right - left) * xs[columns[n]],
                    top + (bottom - top) * slots[n] as f64 / (SLOTS - 1) as f64,
                ),
                size: node_size(name),
            },
        })
        .collect();
    let edges = graph
        .edges
        .iter()
        .enumerate()
        .map(|(i, (from, to, op))| {
            let (a, b) = (&nodes[*from].rect, &nodes[*to].rect);
            // A node that takes one input twice (a hand-written genotype
            // can say so) gets its second edge drawn beside the first.
            let twin = graph.edges[..i]
                .iter()
                .filter(|(f, t, _)| f == from && t == to)
                .count() as f64;
            let (ca, cb) = (
                shifted(a.center, b.center, twin),
                shifted(b.center, a.center, -twin),
            );
            Edge {
                from: *from,
                to: *to,
                op: op.clone(),
                start: a.exit_towards_from(ca, cb),
                end: b.exit_towards_from(cb, ca),
                label: None,
            }
        })
        .collect();
    CellLayout {
        size,
        nodes,
        edges,
        omitted: graph.omitted.clone(),
    }
}

/// Where each column goes across the area, 0..=1: evenly spaced, except
/// that the output's column comes closer when only concatenation edges
/// (which have no label) enter it.
fn column_xs(graph: &CellGraph, columns: &[usize]) -> Vec<f64> {
    let last = columns.iter().max().copied().unwrap_or(1).max(1);
    let out = graph.nodes.len() - 1;
    let labelled_into_output = graph
        .edges
        .iter()
        .any(|(_, to, op)| *to == out && op.is_some());
    let gap = |c: usize| {
        if c == last && !labelled_into_output {
            0.55
        } else {
            1.0
        }
    };
    let total: f64 = (1..=last).map(gap).sum();
    let mut xs = vec![0.0];
    for c in 1..=last {
        xs.push(xs[c - 1] + gap(c) / total);
    }
    xs
}

/// `p` moved `k` times 14 pixels across the line from `p` to `q` (left of
/// it for positive `k`).
fn shifted(p: (f64, f64), q: (f64, f64), k: f64) -> (f64, f64) {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    (p.0 + dy / len * 14.0 * k, p.1 - dx / len * 14.0 * k)
}

/// Badness of a placement: edges through nodes they do not join (never
/// acceptable), crossings (op edges count more than concatenation edges),
/// and slope (flatter edges read more easily).
fn score(l: &CellLayout) -> f64 {
    let mut s = 0.0;
    for e in &l.edges {
        for (n, node) in l.nodes.iter().enumerate() {
            if n != e.from
                && n != e.to
                && node.rect.grown(NODE_CLEARANCE).crossed_by(e.start, e.end)
            {
                s += 1000.0;
            }
        }
        let (dx, dy) = (e.end.0 - e.start.0, e.end.1 - e.start.1);
        s += (dy.abs() / dx.abs().max(1.0)).min(4.0) * if e.op.is_some() { 0.5 } else { 0.1 };
    }
    for (i, e) in l.edges.iter().enumerate() {
        for f in &l.edges[i + 1..] {
            let shared = e.from == f.from || e.from == f.to || e.to == f.from || e.to == f.to;
            if !shared && segments_cross(e.start, e.end, f.start, f.end) {
                s += match (&e.op, &f.op) {
                    (Some(_), Some(_)) => 20.0,
                    (None, None) => 2.0,
                    _ => 6.0,
                };
            }
        }
    }
    s
}

/// Gives every op edge a label box along its visible part, short edges
/// first (they have the fewest places). Without `force`, a label must
/// overlap no other label and no node (with room for arrowheads) and lie
/// inside the area; returns `None` when one cannot. With `force`, each
/// label takes its least bad place. The cost returned grows with labels
/// off their edge's middle, over other edges, or close to each other.
fn place_labels(l: &mut CellLayout, force: bool) -> Option<f64> {
    let mut order: Vec<usize> = (0..l.edges.len())
        .filter(|&i| l.edges[i].op.is_some())
        .collect();
    let length = |e: &Edge| ((e.end.0 - e.start.0).powi(2) + (e.end.1 - e.start.1).powi(2)).sqrt();
    order.sort_by(|&a, &b| length(&l.edges[a]).total_cmp(&length(&l.edges[b])));
    let mut placed: Vec<Rect> = Vec::new();
    let mut total = 0.0;
    for i in order {
        let e = &l.edges[i];
        let size = label_size(e.op.as_deref().unwrap_or(""));
        let mut best: Option<(f64, Rect)> = None;
        for (rank, &at) in LABEL_AT.iter().enumerate() {
            let center = (
                e.start.0 + (e.end.0 - e.start.0) * at,
                e.start.1 + (e.end.1 - e.start.1) * at,
            );
            let rect = Rect { center, size };
            let hard = label_clashes(l, &placed, &rect);
            if hard > 0 && !force {
                continue;
            }
            let hidden = l
                .edges
                .iter()
                .enumerate()
                .filter(|(j, f)| *j != i && rect.crossed_by(f.start, f.end))
                .count();
            let near = placed
                .iter()
                .filter(|p| p.overlaps(&rect.grown(LABEL_GAP)))
                .count();
            let cost = 1000.0 * hard as f64 + 8.0 * hidden as f64 + 6.0 * near as f64 + rank as f64;
            if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                best = Some((cost, rect));
            }
        }
        let (cost, rect) = best?;
        total += cost;
        placed.push(rect);
        l.edges[i].label = Some(rect);
    }
    Some(total)
}

/// How many things a label at `rect` would hide: labels already placed,
/// nodes (with their arrowheads' room), and the area's border.
fn label_clashes(l: &CellLayout, placed: &[Rect], rect: &Rect) -> usize {
    let (left, top, right, bottom) = rect.bounds();
    let outside = usize::from(left < 0.0 || top < 0.0 || right > l.size.0 || bottom > l.size.1);
    let grown = rect.grown(2.0);
    outside
        + placed.iter().filter(|p| p.overlaps(&grown)).count()
        + l.nodes
            .iter()
            .filter(|n| n.rect.grown(NODE_CLEARANCE).overlaps(rect))
            .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::genotype::parse_any;

    const SIZE: (f64, f64) = (1300.0, 560.0);

    fn layouts(text: &str) -> Vec<(CellGraph, CellLayout)> {
        let g = parse_any(text).unwrap();
        g.cells
            .iter()
            .map(|c| {
                let graph = CellGraph::of(g.space, c);
                let l = layout(&graph, SIZE);
                (graph, l)
            })
            .collect()
    }

    /// What every picture must be: each genotype edge drawn once, pointing
    /// right, no edge through a node, no two labels (or a label and a
    /// node) overlapping, everything inside the area.
    fn check(graph: &CellGraph, l: &CellLayout, what: &str) {
        assert_eq!(l.edges.len(), graph.edges.len(), "{what}");
        for (e, (from, to, op)) in l.edges.iter().zip(&graph.edges) {
            assert_eq!((e.from, e.to, &e.op), (*from, *to, op), "{what}");
            assert!(
                l.nodes[e.from].column < l.nodes[e.to].column,
                "{what}: edge {from}->{to} does not point right"
            );
            assert_eq!(e.label.is_some(), op.is_some(), "{what}");
            for (n, node) in l.nodes.iter().enumerate() {
                if n != e.from && n != e.to {
                    assert!(
                        !node.rect.crossed_by(e.start, e.end),
                        "{what}: edge {from}->{to} crosses node {}",
                        node.name
                    );
                }
            }
        }
        let labels: Vec<Rect> = l.edges.iter().filter_map(|e| e.label).collect();
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert!(!a.overlaps(b), "{what}: labels {a:?} and {b:?} overlap");
            }
            for n in &l.nodes {
                assert!(!a.overlaps(&n.rect), "{what}: label {a:?} on {}", n.name);
            }
        }
        for r in labels.iter().chain(l.nodes.iter().map(|n| &n.rect)) {
            let (x0, y0, x1, y1) = r.bounds();
            assert!(
                x0 >= 0.0 && y0 >= 0.0 && x1 <= l.size.0 && y1 <= l.size.1,
                "{what}: {r:?}"
            );
        }
    }

    #[test]
    fn darts_cells_have_inputs_left_nodes_in_order_and_the_output_right() {
        for name in ["darts_v1", "darts_v2"] {
            for (graph, l) in layouts(name) {
                check(&graph, &l, name);
                let x = |n: usize| l.nodes[n].rect.center.0;
                assert_eq!(x(0), x(1), "{name}: inputs share the left column");
                assert!((2..6).all(|n| x(n) > x(0) && x(n) < x(6)), "{name}");
                assert!(l.nodes[0].rect.center.1 < l.nodes[1].rect.center.1);
                // Eight op edges and four concatenation edges, once each.
                assert_eq!(l.edges.iter().filter(|e| e.op.is_some()).count(), 8);
                let mut concat: Vec<usize> = l
                    .edges
                    .iter()
                    .filter(|e| e.op.is_none())
                    .map(|e| e.from)
                    .collect();
                concat.sort_unstable();
                assert_eq!(concat, [2, 3, 4, 5]);
            }
        }
    }

    #[test]
    fn darts_v2_normal_cell_is_ranked_by_depth() {
        // Nodes 0-2 read only the inputs; node 3 reads node 0.
        let (_, l) = &layouts("darts_v2")[0];
        let cols: Vec<usize> = l.nodes.iter().map(|n| n.column).collect();
        assert_eq!(cols, [0, 0, 1, 1, 1, 2, 3]);
        let names: Vec<&str> = l.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"]);
        // Nodes of one column keep their order top to bottom.
        assert!(l.nodes[2].rect.center.1 < l.nodes[3].rect.center.1);
        assert!(l.nodes[3].rect.center.1 < l.nodes[4].rect.center.1);
    }

    /// A small deterministic generator (xorshift), so the test needs no
    /// crate and fails the same way every time.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A random DARTS cell as derivation makes them: two distinct inputs
    /// per node, a non-`none` op on each.
    fn random_darts_cell(rng: &mut Rng) -> String {
        let ops = SearchSpace::new(SpaceKind::Darts).ops();
        let mut pairs = Vec::new();
        for node in 2..6 {
            let a = rng.below(node);
            let b = (a + 1 + rng.below(node - 1)) % node;
            for input in [a.min(b), a.max(b)] {
                pairs.push(format!("({},{input})", ops[1 + rng.below(ops.len() - 1)]));
            }
        }
        format!("[{}]", pairs.join(","))
    }

    #[test]
    fn random_cells_of_both_spaces_lay_out_cleanly() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in 0..60 {
            let text = format!(
                "normal={} reduce={}",
                random_darts_cell(&mut rng),
                random_darts_cell(&mut rng)
            );
            for (graph, l) in layouts(&text) {
                check(&graph, &l, &format!("random {i}: {text}"));
            }
        }
        let ops = SearchSpace::new(SpaceKind::Nb201).ops();
        for i in 0..60 {
            let mut op = || ops[rng.below(ops.len())];
            let text = format!(
                "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|",
                op(),
                op(),
                op(),
                op(),
                op(),
                op()
            );
            for (graph, l) in layouts(&text) {
                check(&graph, &l, &format!("nb201 {i}: {text}"));
            }
        }
    }

    #[test]
    fn an_input_taken_twice_is_two_edges_side_by_side() {
        let text = "normal=[(sep_conv_3x3,0),(skip_connect,0),(sep_conv_3x3,1),(sep_conv_3x3,2),(skip_connect,0),(sep_conv_3x3,1),(sep_conv_3x3,0),(dil_conv_3x3,2)] reduce=[(max_pool_3x3,0),(max_pool_3x3,1),(skip_connect,2),(max_pool_3x3,1),(max_pool_3x3,0),(skip_connect,2),(skip_connect,2),(max_pool_3x3,1)]";
        let (graph, l) = &layouts(text)[0];
        check(graph, l, text);
        let (a, b) = (&l.edges[0], &l.edges[1]);
        assert_eq!((a.from, a.to), (b.from, b.to));
        let gap = ((a.start.0 - b.start.0).powi(2) + (a.start.1 - b.start.1).powi(2)).sqrt();
        assert!(gap > 10.0, "{a:?} {b:?}");
    }

    #[test]
    fn nb201_leaves_none_edges_out_and_says_which() {
        let text =
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|";
        let (graph, l) = &layouts(text)[0];
        check(graph, l, text);
        assert_eq!(l.edges.len(), 4);
        assert_eq!(
            l.omitted,
            [
                ("c_{k-1}".to_string(), "2".to_string()),
                ("2".to_string(), "c_{k}".to_string())
            ]
        );
        let names: Vec<&str> = l.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["c_{k-1}", "1", "2", "c_{k}"]);
        assert_eq!(l.nodes[3].kind, NodeKind::Output);
    }

    #[test]
    fn literature_cells_lay_out_cleanly_with_their_own_nodes_and_concats() {
        use crate::arch::genotype::parse_trained;
        // (name, intermediate nodes, concat of normal and reduce as nodes).
        let cases: [(&str, [&[usize]; 2]); 2] = [
            ("nasnet_a", [&[2, 3, 4, 5, 6], &[4, 5, 6]]),
            ("amoebanet_a", [&[4, 5, 6], &[3, 4, 6]]),
        ];
        for (name, concats) in cases {
            let g = parse_trained(name).unwrap();
            for (cell, concat) in g.cells().into_iter().zip(concats) {
                let graph = CellGraph::of_trained(cell);
                let l = layout(&graph, (1300.0, 675.0));
                check(&graph, &l, name);
                assert_eq!(l.nodes.len(), 2 + 5 + 1, "{name}");
                let ops: Vec<(usize, usize, &str)> = l
                    .edges
                    .iter()
                    .filter_map(|e| Some((e.from, e.to, e.op.as_deref()?)))
                    .collect();
                let want: Vec<(usize, usize, &str)> = cell
                    .ops
                    .iter()
                    .enumerate()
                    .map(|(j, (op, input))| (*input, 2 + j / 2, op.as_str()))
                    .collect();
                assert_eq!(ops, want, "{name}");
                let into_output: Vec<usize> = l
                    .edges
                    .iter()
                    .filter(|e| e.op.is_none())
                    .map(|e| {
                        assert_eq!(e.to, 7, "{name}");
                        e.from
                    })
                    .collect();
                assert_eq!(into_output, concat, "{name}");
            }
        }
        let g = parse_trained("amoebanet_a").unwrap();
        let reduce = layout(&CellGraph::of_trained(&g.reduce), (1300.0, 675.0));
        assert_eq!(reduce.concat_text(), "1, 2, 4");
        assert!(reduce
            .edges
            .iter()
            .any(|e| e.op.as_deref() == Some("conv_7x1_1x7")));
        let nasnet = parse_trained("nasnet_a").unwrap();
        let normal = layout(&CellGraph::of_trained(&nasnet.normal), (1300.0, 675.0));
        assert_eq!(normal.concat_text(), "0–4");
        let (_, darts) = &layouts("darts_v2")[0];
        assert_eq!(darts.concat_text(), "0–3");
    }

    #[test]
    fn node_names_are_a_letter_and_a_subscript() {
        assert_eq!(node_parts("c_{k-2}"), ("c".into(), Some("k−2".into())));
        assert_eq!(node_parts("c_{k}"), ("c".into(), Some("k".into())));
        assert_eq!(node_parts("3"), ("3".into(), None));
        let m = super::super::draw::font::metrics(true);
        assert!(m.has_glyph('−'));
    }

    #[test]
    fn geometry_helpers() {
        let r = Rect {
            center: (10.0, 10.0),
            size: (4.0, 4.0),
        };
        assert!(r.crossed_by((0.0, 10.0), (20.0, 10.0)));
        assert!(!r.crossed_by((0.0, 0.0), (20.0, 0.0)));
        assert!(!r.crossed_by((0.0, 10.0), (7.0, 10.0)));
        assert_eq!(r.exit_towards_from(r.center, (20.0, 10.0)), (12.0, 10.0));
        assert_eq!(r.exit_towards_from((10.0, 9.0), (10.0, 0.0)), (10.0, 8.0));
        assert!(segments_cross(
            (0.0, 0.0),
            (2.0, 2.0),
            (0.0, 2.0),
            (2.0, 0.0)
        ));
        assert!(!segments_cross(
            (0.0, 0.0),
            (1.0, 0.0),
            (0.0, 1.0),
            (1.0, 1.0)
        ));
        assert_eq!(increasing(2, 4).len(), 6);
    }
}
