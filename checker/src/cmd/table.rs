//! `raft-check table`: the markdown table of JSON reports (`report/table.rs`), or a results
//! folder's README.md regenerated.

use super::usage::usage_error;
use crate::report::table;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TableArgs {
    /// The JSON report files, or one directory.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: &TableArgs) -> i32 {
    let files = &args.files;
    if files.len() == 1 && files[0].is_dir() {
        return match table::write_readme(&files[0]) {
            Ok(()) => 0,
            Err(e) => usage_error(e),
        };
    }
    match table::render(files) {
        Ok(t) => {
            print!("{t}");
            0
        }
        Err(e) => usage_error(e),
    }
}
