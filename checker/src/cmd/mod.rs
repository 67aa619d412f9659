//! The subcommands, one file each, each with its flags (`clap::Args`) and its entry point.

pub mod bench;
pub mod check;
pub mod conform;
pub mod explore;
pub mod gate;
pub mod mutants;
pub mod mutation;
pub mod swarm;
pub mod swarm_catalogue;
pub mod table;
pub mod usage;
