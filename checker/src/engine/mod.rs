//! The searches: stateright's checker driven with progress and an honest verdict (`run`), the
//! checker's own compact engines (`dfs`, `bfs`, sharing `compact`, `visited`, `frontier`,
//! `fingerprint`), shortest counterexamples (`shortest`), the distributed BFS in which every state has an owner
//! (`owned`, on timely dataflow), the
//! swarm search's random walks (`swarm`, `swarm_choice`, `swarm_shrink`),
//! and what bounds a run (`options`, `interrupt`, `memory`).

pub mod bfs;
pub mod compact;
pub mod dfs;
pub mod fingerprint;
pub mod frontier;
pub mod interrupt;
pub mod level_order;
pub mod memory;
pub mod options;
pub mod owned;
pub mod run;
pub mod shortest;
pub mod swarm;
pub mod swarm_choice;
pub mod swarm_shrink;
#[cfg(test)]
mod swarm_tests;
pub mod visited;
