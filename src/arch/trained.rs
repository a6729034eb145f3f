//! The cell a training builds, as plain data: ops by name, the input of
//! each and the nodes the cell's output concatenates.
//!
//! A search space's [`Genotype`] names edges of its fixed graph (14 edges,
//! 4 nodes, output = nodes 2-5), which is what searches, their records and
//! reports need. Cells from the literature (NASNet-A, AmoebaNet-A as
//! DARTS's `genotypes.py` lists them) have 5 nodes, other concat lists and
//! ops outside the DARTS space, and only the evaluation network builds
//! them; this type holds both, so that the space's type stays as it is.

use crate::arch::metrics::{CellGenotype, Genotype};
use crate::arch::space::{SearchSpace, SpaceKind, NONE};

/// Ops the evaluation network builds beyond the DARTS space's, for cells
/// from the literature.
pub const LITERATURE_OPS: &[&str] = &["sep_conv_7x7", "conv_7x1_1x7"];

/// The concat of every DARTS-space cell: intermediate nodes 2-5.
const DARTS_CONCAT: [usize; 4] = [2, 3, 4, 5];

/// One trained cell type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainedCell {
    /// `(op name, input state)`, two per intermediate node in node order;
    /// states 0 and 1 are the cell's inputs, node `n` is state `n`.
    pub ops: Vec<(String, usize)>,
    /// The states whose concatenation is the cell's output.
    pub concat: Vec<usize>,
}

/// A cell to train: its normal and reduction cell types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainedGenotype {
    /// The normal cell.
    pub normal: TrainedCell,
    /// The reduction cell.
    pub reduce: TrainedCell,
}

impl TrainedCell {
    /// Intermediate nodes (two ops each).
    pub fn nodes(&self) -> usize {
        self.ops.len() / 2
    }
}

impl TrainedGenotype {
    /// The cell of a DARTS-space genotype (`space` must be
    /// [`SpaceKind::Darts`]: NAS-Bench-201 cells are not trained).
    pub fn from_space(g: &Genotype) -> Self {
        let space = SearchSpace::new(SpaceKind::Darts);
        let nodes = space.edge_nodes();
        let cell = |c: &CellGenotype| TrainedCell {
            ops: c
                .edges
                .iter()
                .map(|&(edge, op)| (space.ops()[op].to_owned(), nodes[edge].1))
                .collect(),
            concat: DARTS_CONCAT.to_vec(),
        };
        TrainedGenotype {
            normal: cell(&g.cells[0]),
            reduce: cell(&g.cells[1]),
        }
    }

    /// The DARTS-space genotype of this cell, when it is one: 4 nodes,
    /// output nodes 2-5, DARTS-space ops only.
    pub fn to_space(&self) -> Option<Genotype> {
        let space = SearchSpace::new(SpaceKind::Darts);
        let nodes = space.edge_nodes();
        let cell = |c: &TrainedCell| -> Option<CellGenotype> {
            if c.ops.len() != 8 || c.concat != DARTS_CONCAT {
                return None;
            }
            let edges = c
                .ops
                .iter()
                .enumerate()
                .map(|(j, (name, input))| {
                    let op = space.op_index(name).filter(|&op| op != NONE)?;
                    let edge = nodes.iter().position(|&e| e == (2 + j / 2, *input))?;
                    Some((edge, op))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(CellGenotype { edges })
        };
        Some(Genotype {
            space: SpaceKind::Darts,
            cells: vec![cell(&self.normal)?, cell(&self.reduce)?],
        })
    }

    /// The two cell types, normal first, as the network indexes them.
    pub fn cells(&self) -> [&TrainedCell; 2] {
        [&self.normal, &self.reduce]
    }

    /// The text stored with a train run (and hence in its fingerprint): a
    /// DARTS-space cell exactly as [`Genotype::to_text`] writes it, so that
    /// runs stored before literature cells keep their text; any other cell
    /// in the same notation with its concats added
    /// (`normal=[...] normal_concat=[2,3,4,5,6] reduce=[...] reduce_concat=[4,5,6]`),
    /// which [`crate::arch::genotype::parse_trained`] reads back.
    pub fn to_text(&self) -> String {
        if let Some(g) = self.to_space() {
            return g.to_text();
        }
        let pairs = |c: &TrainedCell| {
            let parts: Vec<String> = c
                .ops
                .iter()
                .map(|(op, input)| format!("({op},{input})"))
                .collect();
            parts.join(",")
        };
        let concat = |c: &TrainedCell| {
            let parts: Vec<String> = c.concat.iter().map(usize::to_string).collect();
            parts.join(",")
        };
        format!(
            "normal=[{}] normal_concat=[{}] reduce=[{}] reduce_concat=[{}]",
            pairs(&self.normal),
            concat(&self.normal),
            pairs(&self.reduce),
            concat(&self.reduce)
        )
    }
}
