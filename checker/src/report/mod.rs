//! What the checker writes: the result of one check, its JSON schema, verdict, exit code and
//! text summary (`check_report`); the tables of results/README.md (`table`); counterexamples
//! as readable text (`text_trace`), as plain data (`counterexample`) and ITF (`itf`), and
//! their export to a file (`export`).

pub mod check_report;
pub mod counterexample;
pub mod export;
pub mod itf;
pub mod table;
pub mod text_trace;
