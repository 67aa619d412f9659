//! The documentation's links, checked: every relative markdown link in README.md, docs/*.md,
//! results/*.md, impl/README.md and tests/porcupine/README.md names a file (or folder) that
//! exists, relative to the linking file's folder, and every `#anchor` into a markdown file names
//! one of its headings by GitHub's slug. Web and mail links are not followed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The markdown files whose links are checked, those of them that exist.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for single in ["README.md", "impl/README.md", "tests/porcupine/README.md"] {
        let path = root.join(single);
        if path.is_file() {
            files.push(path);
        }
    }
    for dir in ["docs", "results"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "md"))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// GitHub's anchor for a heading: lowercase, spaces to '-', every character that is not a
/// letter, a digit, '-' or '_' dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// Every line outside fenced code blocks, with its 1-based number.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// The anchors of a markdown file's headings (ATX headings, duplicates numbered as GitHub does).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if hashes == 0 || hashes > 6 || !trimmed[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(trimmed[hashes..].trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// `line` without its inline code spans (a link inside backticks is not a link).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = &rest[start..start + ticks];
        match rest[start + ticks..].find(fence) {
            Some(end) => rest = &rest[start + ticks + end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of a line's inline links `[text](target)` and of a reference definition
/// `[label]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    end = i;
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        let inner = after[..end].trim();
        // `[text](<target> "title")` and `[text](target "title")`: the target alone.
        let target = if let Some(stripped) = inner.strip_prefix('<') {
            stripped.split('>').next().unwrap_or("")
        } else {
            inner.split_whitespace().next().unwrap_or("")
        };
        targets.push(target.to_string());
        rest = &after[end.min(after.len())..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some(close) = trimmed.find("]:") {
            if !trimmed[..close].contains("](") {
                let target = trimmed[close + 2..].split_whitespace().next().unwrap_or("");
                targets.push(target.to_string());
            }
        }
    }
    targets
}

fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
}

/// Every broken link of one file, as `file:line: message`.
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let dir = file.parent().unwrap();
    let mut broken = Vec::new();
    for (number, line) in prose_lines(&text) {
        for target in link_targets(line) {
            if target.is_empty() || is_external(&target) {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                dir.join(path)
            };
            if !resolved.exists() {
                broken.push(format!(
                    "{shown}:{number}: `{target}`: no such file or folder"
                ));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if !resolved.is_file() || resolved.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let target_text = std::fs::read_to_string(&resolved).unwrap();
            if !anchors(&target_text).contains(&anchor.to_lowercase()) {
                broken.push(format!(
                    "{shown}:{number}: `{target}`: no heading with the anchor #{anchor} in {}",
                    resolved.strip_prefix(root).unwrap_or(&resolved).display()
                ));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = root();
    let files = documents(&root);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no README.md found under {}",
        root.display()
    );
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(&root, f)).collect();
    assert!(
        broken.is_empty(),
        "{} broken link(s) in the documentation:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Trace conformance"), "trace-conformance");
    assert_eq!(
        slug("Reads (ReadIndex, thesis §6.4)"),
        "reads-readindex-thesis-64"
    );
    assert_eq!(slug("`raft-check check`"), "raft-check-check");
    assert_eq!(
        slug("Log compaction (§7, Figure 13)"),
        "log-compaction-7-figure-13"
    );
    assert_eq!(slug("snake_case and-dash"), "snake_case-and-dash");
    let text = "# A\n```\n# not a heading\n```\n## A\n";
    let found = anchors(text);
    assert!(found.contains("a") && found.contains("a-1") && !found.contains("not-a-heading"));
}

#[test]
fn links_are_found_outside_code() {
    assert_eq!(
        link_targets("see [the gate](docs/gate.md#exit-codes) and `[x](y)` and [w](https://x.org)"),
        vec!["docs/gate.md#exit-codes", "https://x.org"]
    );
    assert_eq!(
        link_targets("[ref]: results/README.md"),
        vec!["results/README.md"]
    );
    assert_eq!(link_targets("[a](b \"title\")"), vec!["b"]);
}
