//! Writing a counterexample to `--trace-out` as text, JSON or ITF.

use crate::args::TraceFormat;
use crate::trace::{self, Action};
use crate::{itf, snapshot};
use raft_model::model::{ModelConfig, RaftState};
use stateright::Path;
use std::path::Path as FsPath;

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
                trace::render(cfg, path)
            )
        }
        TraceFormat::Json => {
            let view = snapshot::trace(cfg, property, path);
            serde_json::to_string_pretty(&view).expect("trace serializes") + "\n"
        }
        TraceFormat::Itf => {
            let view = snapshot::trace(cfg, property, path);
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
