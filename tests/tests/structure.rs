//! The code's shape, checked: no two source files import each other (`use super::x` /
//! `use crate::x` between sibling modules, in every crate of the workspace).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 5] = [
    "model/core/src",
    "model/src",
    "impl/src",
    "checker/src",
    "tests/src",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first path segment of every `use super::…` / `use crate::…` in `text`, with its kind.
fn imported(text: &str) -> Vec<(bool, String)> {
    let mut found = Vec::new();
    for stmt in text.split("use ").skip(1) {
        let stmt = stmt.split(';').next().unwrap_or("");
        for (prefix, is_super) in [("super::", true), ("crate::", false)] {
            let Some(rest) = stmt.trim().strip_prefix(prefix) else {
                continue;
            };
            let rest = rest.trim();
            let parts: Vec<&str> = match rest.strip_prefix('{') {
                Some(inner) => inner.split(',').collect(),
                None => vec![rest],
            };
            for part in parts {
                let seg: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !seg.is_empty() {
                    found.push((is_super, seg));
                }
            }
        }
    }
    found
}

fn module_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

#[test]
fn no_two_files_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for krate in CRATES {
        let src = root.join(krate);
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let dir = file.parent().unwrap();
            let is_mod = matches!(
                file.file_name().and_then(|n| n.to_str()),
                Some("mod.rs" | "lib.rs" | "main.rs")
            );
            let sibling_dir = if is_mod { dir.parent().unwrap() } else { dir };
            let deps = edges.entry(file.clone()).or_default();
            for (is_super, seg) in imported(&text) {
                let base = if is_super { sibling_dir } else { src.as_path() };
                if let Some(target) = module_file(base, &seg) {
                    if target != file {
                        deps.insert(target);
                    }
                }
            }
        }
    }
    assert!(edges.len() > 50, "the scan found the sources");
    let mut cycles = Vec::new();
    for (a, deps) in &edges {
        for b in deps {
            if a < b && edges.get(b).is_some_and(|d| d.contains(a)) {
                cycles.push(format!("{} <-> {}", a.display(), b.display()));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import each other:\n{}",
        cycles.join("\n")
    );
}
