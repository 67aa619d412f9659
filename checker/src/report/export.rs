//! Writing a counterexample to `--trace-out` as text, JSON or ITF.

use crate::report::counterexample;
use crate::report::itf;
use crate::report::text_trace::{self, Action};
use raft_model::model::{ModelConfig, RaftState};
use stateright::Path;
use std::path::Path as FsPath;

/// How a counterexample is exported.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// The numbered text trace that `check` prints.
    Text,
    /// Every state as JSON: servers (Figure 2's variables), messages in flight, clients.
    Json,
    /// The Informal Trace Format of Apalache and Quint.
    Itf,
}

impl TraceFormat {
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Text => "text",
            TraceFormat::Json => "json",
            TraceFormat::Itf => "itf",
        }
    }
}

/// The counterexample to `property` in `format`.
pub fn render(
    cfg: &ModelConfig,
    property: &str,
    path: &Path<RaftState, Action>,
    format: TraceFormat,
) -> String {
    match format {
        TraceFormat::Text => {
            let steps = path.clone().into_actions().len();
            format!(
                "Counterexample: \"{property}\" is violated after {steps} steps:\n{}",
                text_trace::render(cfg, path)
            )
        }
        TraceFormat::Json => {
            let view = counterexample::trace(cfg, property, path);
            serde_json::to_string_pretty(&view).expect("trace serializes") + "\n"
        }
        TraceFormat::Itf => {
            let view = counterexample::trace(cfg, property, path);
            serde_json::to_string_pretty(&itf::document(&view)).expect("ITF serializes") + "\n"
        }
    }
}

/// Write the counterexample to `out`.
pub fn write(
    cfg: &ModelConfig,
    property: &str,
    path: &Path<RaftState, Action>,
    format: TraceFormat,
    out: &FsPath,
) -> Result<(), String> {
    std::fs::write(out, render(cfg, property, path, format))
        .map_err(|e| format!("cannot write --trace-out {}: {e}", out.display()))
}
