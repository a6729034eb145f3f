//! The two search spaces (docs/design.md §2): their ops, edges and cell types.
//!
//! Everything downstream indexes parameters as `[cell type][edge][op]` with
//! the orders defined here, so this file is the one place those orders live.

use serde::{Deserialize, Serialize};

/// Which search space (docs/design.md §2); configs name it in lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum SpaceKind {
    /// The DARTS cell space: normal and reduce cells, 14 edges, 8 ops.
    Darts,
    /// NAS-Bench-201: one cell type, 6 edges, 5 ops.
    Nb201,
}

impl SpaceKind {
    /// The lowercase name used in configs and the database.
    pub fn name(self) -> &'static str {
        match self {
            SpaceKind::Darts => "darts",
            SpaceKind::Nb201 => "nb201",
        }
    }

    /// The space of a lowercase name (`darts`, `nb201`).
    pub fn parse(name: &str) -> Option<SpaceKind> {
        [SpaceKind::Darts, SpaceKind::Nb201]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// DARTS space ops, in the order of the paper's code.
pub const DARTS_OPS: [&str; 8] = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
];

/// NAS-Bench-201 ops, in the benchmark's order.
pub const NB201_OPS: [&str; 5] = [
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

/// Index of `none` in both spaces. It never runs (its output is zero) and
/// every edge keeps at least one other op, but it counts towards L like any
/// op (appendix Eq. 14: `1 <= y_c <= 8` with 8 the DARTS ops, `none` included).
pub const NONE: usize = 0;

/// A search space: ops, edges (with their endpoints) and cell types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSpace {
    /// Which space.
    pub kind: SpaceKind,
}

impl SearchSpace {
    /// The space of the given kind.
    pub fn new(kind: SpaceKind) -> Self {
        SearchSpace { kind }
    }

    /// Op names, index = op id.
    pub fn ops(&self) -> &'static [&'static str] {
        match self.kind {
            SpaceKind::Darts => &DARTS_OPS,
            SpaceKind::Nb201 => &NB201_OPS,
        }
    }

    /// Index of an op name.
    pub fn op_index(&self, name: &str) -> Option<usize> {
        self.ops().iter().position(|&o| o == name)
    }

    /// Number of ops per edge.
    pub fn num_ops(&self) -> usize {
        self.ops().len()
    }

    /// Edges per cell.
    pub fn edges(&self) -> usize {
        match self.kind {
            SpaceKind::Darts => 14,
            SpaceKind::Nb201 => 6,
        }
    }

    /// Every op of one cell type, `none` included: the largest L (the
    /// whole space), 112 in the DARTS space and 30 in NB201.
    pub fn ops_per_cell(&self) -> usize {
        self.edges() * self.num_ops()
    }

    /// The ops of one cell type that run (every op but `none`): what the
    /// elastic schedule can remove from.
    pub fn runnable_ops(&self) -> usize {
        self.edges() * (self.num_ops() - 1)
    }

    /// Cell types: `normal`, `reduce` (DARTS) or just `cell` (NB201).
    pub fn cell_types(&self) -> &'static [&'static str] {
        match self.kind {
            SpaceKind::Darts => &["normal", "reduce"],
            SpaceKind::Nb201 => &["cell"],
        }
    }

    /// `(to, from)` node pairs of every edge, in edge order. DARTS nodes 0,1
    /// are the inputs and 2..=5 the intermediate nodes; NB201 node 0 is the
    /// input and 3 the output.
    pub fn edge_nodes(&self) -> Vec<(usize, usize)> {
        let (first, last) = match self.kind {
            SpaceKind::Darts => (2, 5),
            SpaceKind::Nb201 => (1, 3),
        };
        (first..=last)
            .flat_map(|to| (0..to).map(move |from| (to, from)))
            .collect()
    }

    /// A readable edge label, `(from,to)`.
    pub fn edge_label(&self, edge: usize) -> String {
        let (to, from) = self.edge_nodes()[edge];
        format!("({from},{to})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_orders_match_the_spec() {
        let nb = SearchSpace::new(SpaceKind::Nb201);
        assert_eq!(
            nb.edge_nodes(),
            vec![(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
        );
        let d = SearchSpace::new(SpaceKind::Darts);
        assert_eq!(d.edge_nodes().len(), 14);
        assert_eq!(d.ops_per_cell(), 112);
        assert_eq!(nb.ops_per_cell(), 30);
        assert_eq!(d.runnable_ops(), 98);
        assert_eq!(nb.runnable_ops(), 24);
    }
}
