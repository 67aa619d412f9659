//! raft-tests: cross-crate tests, a deterministic simulator of the real runtime, the 6.5840
//! Raft lab suite over it, linearizability checking of client histories, and the process-level
//! soak (`raft-tests soak`), and the fault campaign under disk faults (`raft-tests campaign`).

pub mod campaign;
pub mod conformance;
pub mod history_export;
pub mod lab;
pub mod linearizability;
pub mod netfault;
pub mod seeds;
pub mod sim;
pub mod soak;
pub mod suite;
