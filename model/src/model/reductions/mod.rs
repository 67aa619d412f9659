//! Reductions of the state space: symmetry over server ids, independence of steps, memoised
//! verdicts.

pub mod independence;
pub(crate) mod memo;
pub mod symmetry;
