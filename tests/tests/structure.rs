//! The code's shape, checked.
//!
//! 1. No import circle: in every crate of the workspace, the source files and the paths between
//!    them form no cycle of any length. A file depends on another when it names a path into it
//!    anywhere: a `use` line, or a path written inline (`crate::a::B`, `super::b::f()`,
//!    `self::c::D`, or a child module's name). A path to an item that a module re-exports
//!    (`pub use x::Item` in a `lib.rs` or `mod.rs`) leads to the file that defines the item;
//!    `mod x;` declarations and `pub use` re-exports themselves are not dependencies.
//! 2. raft-core imports nothing but serde: the protocol rules have no I/O, clock or randomness.
//!
//! Written by hand rather than with a crate: a Rust parser (syn) would still need this module
//! resolution, and the test should build with std alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The packages of the workspace, relative to its root.
const PACKAGES: [&str; 6] = [
    "model/core",
    "model",
    "impl",
    "impl/fuzz",
    "checker",
    "tests",
];

// ---------------------------------------------------------------------------------------------
// Source text without comments, strings and character literals (replaced by spaces, newlines
// kept so that offsets still give line numbers).

fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // A raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let mut k = j + 1;
            while k < b.len() && !b[k..].starts_with(&close) {
                k += 1;
            }
            let end = (k + close.len()).min(b.len());
            for &x in &b[i..end] {
                blank(&mut out, x);
            }
            i = end;
        } else if c == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if c == b'\'' {
            // A character literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else {
                let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
            };
            match end {
                Some(e) => {
                    out.resize(out.len() + (e + 1 - i), b' ');
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at].bytes().filter(|&c| c == b'\n').count() + 1
}

// ---------------------------------------------------------------------------------------------
// Modules: the tree each crate root declares with `mod` (and `#[path]`), inline modules too.

type ModPath = Vec<String>;

#[derive(Default)]
struct Crate {
    /// Module path → the file that holds it (inline modules map to their file).
    files: BTreeMap<ModPath, PathBuf>,
    /// Module path → its child modules' names.
    children: BTreeMap<ModPath, BTreeSet<String>>,
    /// Modules compiled only for tests (`#[cfg(test)] mod …`), and what they hold.
    test_only: BTreeSet<ModPath>,
}

/// One `mod` found in a file: inline (`mod x { … }`, with its brace span) or declared (`mod x;`).
struct ModDecl {
    name: String,
    path_attr: Option<String>,
    /// Declared under `#[cfg(test)]`.
    test_only: bool,
    inline: Option<(usize, usize)>,
    /// The inline modules it sits in (their names, outermost first).
    within: Vec<String>,
}

/// Every `mod` item of a file, with the inline modules each sits in.
fn mod_decls(raw: &str, text: &str) -> Vec<ModDecl> {
    let mut decls: Vec<ModDecl> = Vec::new();
    // (inline module, its brace depth, its entry in `decls`)
    let mut stack: Vec<(String, usize, usize)> = Vec::new();
    let mut depth = 0usize;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if stack.last().is_some_and(|(_, d, _)| *d == depth) {
                    let (_, _, k) = stack.pop().unwrap();
                    if let Some(span) = decls[k].inline.as_mut() {
                        span.1 = i;
                    }
                }
            }
            b'm' if text[i..].starts_with("mod ")
                && (i == 0 || !is_ident(text[..i].chars().next_back().unwrap())) =>
            {
                let rest = &text[i + 4..];
                let name: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|&c| is_ident(c))
                    .collect();
                let after = rest.trim_start()[name.len()..].trim_start();
                let within: Vec<String> = stack.iter().map(|(n, _, _)| n.clone()).collect();
                // `#[path = "…"]` just before the item (strings are blanked in `text`: read `raw`).
                let before = &raw[..i];
                let attrs: Vec<&str> = before
                    .trim_end()
                    .lines()
                    .rev()
                    .map(str::trim)
                    .take_while(|l| l.starts_with("#[") || l.starts_with("pub") || l.is_empty())
                    .collect();
                let path_attr = attrs.iter().find_map(|l| {
                    let p = l.strip_prefix("#[path")?;
                    Some(p.split('"').nth(1)?.to_string())
                });
                let test_only = attrs.iter().any(|l| l.starts_with("#[cfg(test)]"));
                if after.starts_with('{') {
                    let open = i + 4 + (rest.len() - after.len());
                    decls.push(ModDecl {
                        name: name.clone(),
                        path_attr,
                        test_only,
                        inline: Some((open, 0)),
                        within,
                    });
                    stack.push((name, depth, decls.len() - 1));
                    depth += 1;
                    i = open + 1;
                    continue;
                } else if after.starts_with(';') && !name.is_empty() {
                    decls.push(ModDecl {
                        name,
                        path_attr,
                        test_only,
                        inline: None,
                        within,
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
    decls
}

fn load_crate(root_file: &Path) -> Crate {
    let mut krate = Crate::default();
    let mut todo = vec![(Vec::<String>::new(), root_file.to_path_buf(), true)];
    while let Some((path, file, mod_rs)) = todo.pop() {
        let Ok(raw) = std::fs::read_to_string(&file) else {
            continue;
        };
        krate.files.insert(path.clone(), file.clone());
        let text = strip(&raw);
        let dir = file.parent().unwrap().to_path_buf();
        // Where `mod x;` files live: beside a mod.rs/lib.rs/main.rs, in a folder named after
        // any other file.
        let base = if mod_rs {
            dir.clone()
        } else {
            dir.join(file.file_stem().unwrap())
        };
        for decl in mod_decls(&raw, &text) {
            let mut parent = path.clone();
            parent.extend(decl.within.iter().cloned());
            let mut child = parent.clone();
            child.push(decl.name.clone());
            krate
                .children
                .entry(parent.clone())
                .or_default()
                .insert(decl.name.clone());
            if decl.test_only || krate.test_only.contains(&parent) {
                krate.test_only.insert(child.clone());
            }
            if decl.inline.is_some() {
                krate.files.insert(child, file.clone());
                continue;
            }
            let mut at = base.clone();
            for m in &decl.within {
                at = at.join(m);
            }
            let (target, target_mod_rs) = match &decl.path_attr {
                Some(p) if decl.within.is_empty() => (dir.join(p), true),
                Some(p) => (at.join(p), true),
                None => {
                    let flat = at.join(format!("{}.rs", decl.name));
                    if flat.exists() {
                        (flat, false)
                    } else {
                        (at.join(&decl.name).join("mod.rs"), true)
                    }
                }
            };
            // A `#[path]` file is a mod-rs file for its own children only when named mod.rs;
            // no file here uses that, so treat it as one (its children sit beside it).
            let target_mod_rs = target_mod_rs
                && (decl.path_attr.is_none() || target.file_name().is_some_and(|n| n == "mod.rs"));
            todo.push((child, target, target_mod_rs));
        }
    }
    krate
}

// ---------------------------------------------------------------------------------------------
// Paths: every `use` tree, expanded, and every path written inline.

/// `a::{b, c::{d, e as f}, g::*}` → [a::b, a::c::d, a::c::e (alias f), a::g::*].
fn expand_use(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tree = tree.trim();
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (k, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&tree[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&tree[start..]);
    if parts.len() > 1 {
        for p in parts {
            expand_use(p, prefix, out);
        }
        return;
    }
    let tree = parts[0].trim();
    if tree.is_empty() {
        return;
    }
    let mut segs = prefix.to_vec();
    let mut rest = tree;
    loop {
        rest = rest.trim_start().trim_start_matches("::").trim_start();
        if let Some(inner) = rest.strip_prefix('{') {
            let inner = inner.trim_end().strip_suffix('}').unwrap_or(inner);
            expand_use(inner, &segs, out);
            return;
        }
        let seg: String = rest
            .chars()
            .take_while(|&c| is_ident(c) || c == '*')
            .collect();
        if seg.is_empty() {
            break;
        }
        rest = &rest[seg.len()..];
        if seg == "self" && !segs.is_empty() {
            // `a::{self}` names a itself.
        } else {
            segs.push(seg);
        }
        let r = rest.trim_start();
        if let Some(alias) = r.strip_prefix("as ") {
            let alias: String = alias.trim().chars().take_while(|&c| is_ident(c)).collect();
            out.push((segs, Some(alias)));
            return;
        }
        if !r.starts_with("::") {
            break;
        }
    }
    if !segs.is_empty() {
        out.push((segs, None));
    }
}

struct UseStmt {
    paths: Vec<(Vec<String>, Option<String>)>,
    reexport: bool,
    at: usize,
    end: usize,
}

fn use_stmts(text: &str) -> Vec<UseStmt> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(p) = text[from..].find("use ") {
        let at = from + p;
        from = at + 4;
        if at > 0 && is_ident(text[..at].chars().next_back().unwrap()) {
            continue;
        }
        let Some(len) = text[at..].find(';') else {
            break;
        };
        let body = &text[at + 4..at + len];
        let head = text[..at].trim_end();
        let reexport = head.ends_with("pub") || head.ends_with(')') && head.contains("pub(");
        let mut paths = Vec::new();
        expand_use(body, &[], &mut paths);
        found.push(UseStmt {
            paths,
            reexport,
            at,
            end: at + len,
        });
        from = at + len;
    }
    found
}

/// Paths written inline, outside `use` lines: `crate::…`, `super::…`, `self::…`, or starting
/// with a name among `heads` (the module's children), each with its offset.
fn inline_paths(
    text: &str,
    uses: &[UseStmt],
    heads: &BTreeSet<String>,
) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if uses.iter().any(|u| u.at <= i && i < u.end) {
            i += 1;
            continue;
        }
        let c = text[i..].chars().next().unwrap();
        let starts = is_ident(c) && (i == 0 || !is_ident(text[..i].chars().next_back().unwrap()));
        if !starts || (i >= 2 && &text[i - 2..i] == "::") {
            i += c.len_utf8();
            continue;
        }
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let seg: String = text[j..].chars().take_while(|&c| is_ident(c)).collect();
            if seg.is_empty() {
                break;
            }
            j += seg.len();
            segs.push(seg);
            let r = &text[j..];
            let trimmed = r.trim_start();
            if let Some(after) = trimmed.strip_prefix("::") {
                let after_trim = after.trim_start();
                if after_trim.starts_with('<') {
                    break;
                }
                j += r.len() - after_trim.len();
            } else {
                break;
            }
        }
        let first = segs[0].as_str();
        if segs.len() > 1 && (["crate", "super", "self"].contains(&first) || heads.contains(first))
        {
            found.push((i, segs));
        }
        i = j.max(i + 1);
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Resolution: a path from a module → the file that defines what it names.

struct Resolver<'a> {
    krate: &'a Crate,
    texts: &'a BTreeMap<PathBuf, String>,
}

impl Resolver<'_> {
    /// The module a path's first segment starts from, and the segments after it.
    fn start<'p>(&self, from: &ModPath, segs: &'p [String]) -> Option<(ModPath, &'p [String])> {
        let mut m = from.clone();
        let mut k = 0;
        match segs.first()?.as_str() {
            "crate" => {
                m.clear();
                k = 1;
            }
            "self" => k = 1,
            "super" => {
                while segs.get(k).is_some_and(|s| s == "super") {
                    m.pop()?;
                    k += 1;
                }
            }
            _ => {}
        }
        Some((m, &segs[k..]))
    }

    fn resolve(&self, from: &ModPath, segs: &[String], depth: usize) -> Option<PathBuf> {
        let (mut m, rest) = self.start(from, segs)?;
        if segs
            .first()
            .is_some_and(|s| !["crate", "self", "super"].contains(&s.as_str()))
            && !self
                .krate
                .children
                .get(&m)
                .is_some_and(|c| c.contains(&segs[0]))
        {
            return None; // an outside crate, or an item of this very module
        }
        for (k, seg) in rest.iter().enumerate() {
            if self.krate.children.get(&m).is_some_and(|c| c.contains(seg)) {
                m.push(seg.clone());
            } else if seg == "*" {
                break;
            } else {
                let _ = k;
                return self.item(&m, seg, depth);
            }
        }
        self.krate.files.get(&m).cloned()
    }

    /// The file that defines `name` as module `m` sees it, through its re-exports.
    fn item(&self, m: &ModPath, name: &str, depth: usize) -> Option<PathBuf> {
        let file = self.krate.files.get(m)?;
        if depth > 8 {
            return Some(file.clone());
        }
        let text = &self.texts[file];
        if defines(text, name) {
            return Some(file.clone());
        }
        let uses = use_stmts(text);
        for u in &uses {
            for (p, alias) in &u.paths {
                if alias.as_deref() == Some(name)
                    || (alias.is_none() && p.last().is_some_and(|l| l == name))
                {
                    return self.resolve(m, p, depth + 1).or_else(|| Some(file.clone()));
                }
            }
        }
        for u in &uses {
            for (p, _) in &u.paths {
                if p.last().is_some_and(|l| l == "*") {
                    if let Some(target) = self.resolve(m, &p[..p.len() - 1], depth + 1) {
                        if defines(&self.texts[&target], name) {
                            return Some(target);
                        }
                    }
                }
            }
        }
        Some(file.clone())
    }
}

fn defines(text: &str, name: &str) -> bool {
    [
        "fn",
        "struct",
        "enum",
        "trait",
        "type",
        "const",
        "static",
        "union",
        "macro_rules!",
    ]
    .iter()
    .any(|kw| {
        let pat = format!("{kw} {name}");
        text.match_indices(&pat).any(|(at, _)| {
            let before_ok = at == 0 || !is_ident(text[..at].chars().next_back().unwrap());
            let after = text[at + pat.len()..].chars().next();
            before_ok && !after.is_some_and(is_ident)
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The dependency graph of one crate and its circles.

/// file → (file it depends on → the first line that names it).
type Graph = BTreeMap<PathBuf, BTreeMap<PathBuf, usize>>;

fn crate_graph(root_file: &Path) -> Graph {
    let krate = load_crate(root_file);
    let mut texts = BTreeMap::new();
    let mut raws = BTreeMap::new();
    for file in krate.files.values() {
        if !texts.contains_key(file) {
            let raw = std::fs::read_to_string(file).unwrap();
            texts.insert(file.clone(), strip(&raw));
            raws.insert(file.clone(), raw);
        }
    }
    let resolver = Resolver {
        krate: &krate,
        texts: &texts,
    };
    let mut graph = Graph::new();
    // Only each file's own module (inline modules: their text is scanned with the file's).
    let mut owner: BTreeMap<&PathBuf, &ModPath> = BTreeMap::new();
    for (m, f) in &krate.files {
        owner
            .entry(f)
            .and_modify(|old| {
                if m.len() < old.len() {
                    *old = m;
                }
            })
            .or_insert(m);
    }
    for (file, module) in owner {
        let text = &texts[file];
        let deps = graph.entry(file.clone()).or_default();
        let mut add = |target: Option<PathBuf>, at: usize| {
            if let Some(t) = target {
                if &t != file {
                    deps.entry(t).or_insert_with(|| line_of(text, at));
                }
            }
        };
        // The module at an offset: the file's, or an inline module (`mod tests { … }`) in it.
        let spans: Vec<(usize, usize, Vec<String>)> = mod_decls(&raws[file], text)
            .into_iter()
            .filter_map(|d| {
                let (open, close) = d.inline?;
                let mut path = d.within;
                path.push(d.name);
                Some((open, close, path))
            })
            .collect();
        let module_at = |at: usize| -> ModPath {
            let mut m = module.clone();
            let inner = spans
                .iter()
                .filter(|(open, close, _)| *open <= at && at < *close)
                .max_by_key(|(_, _, p)| p.len());
            if let Some((_, _, p)) = inner {
                m.extend(p.iter().cloned());
            }
            m
        };
        let uses = use_stmts(text);
        for u in uses.iter().filter(|u| !u.reexport) {
            for (p, _) in &u.paths {
                add(resolver.resolve(&module_at(u.at), p, 0), u.at);
            }
        }
        let mut heads: BTreeSet<String> = BTreeSet::new();
        for (m, names) in &krate.children {
            if m.starts_with(module) && krate.files.get(m) == Some(file) {
                heads.extend(names.iter().cloned());
            }
        }
        for (at, segs) in inline_paths(text, &uses, &heads) {
            let m = module_at(at);
            if krate.children.get(&m).is_some_and(|c| c.contains(&segs[0]))
                || ["crate", "super", "self"].contains(&segs[0].as_str())
            {
                add(resolver.resolve(&m, &segs, 0), at);
            }
        }
    }
    graph
}

/// The strongly connected components with more than one file (Tarjan's algorithm).
fn circles(graph: &Graph) -> Vec<Vec<PathBuf>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g PathBuf, usize>,
        low: BTreeMap<&'g PathBuf, usize>,
        stack: Vec<&'g PathBuf>,
        on_stack: BTreeSet<&'g PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g PathBuf) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|d| d.keys()) {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out
}

/// Every crate root of a package: the library, the binaries, the integration tests.
fn crate_roots(package: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for f in ["src/lib.rs", "src/main.rs"] {
        roots.push(package.join(f));
    }
    for dir in ["src/bin", "tests", "benches", "examples", "fuzz_targets"] {
        let Ok(entries) = std::fs::read_dir(package.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs") {
                roots.push(p);
            } else if p.join("main.rs").exists() {
                roots.push(p.join("main.rs"));
            }
        }
    }
    roots.retain(|r| r.exists());
    roots.sort();
    roots
}

/// Every circle in the crates under `packages`, described for a failure message.
fn find_circles(packages: &[PathBuf]) -> (usize, Vec<String>) {
    let mut files = 0;
    let mut found = Vec::new();
    for package in packages {
        for root in crate_roots(package) {
            let graph = crate_graph(&root);
            files += graph.len();
            for comp in circles(&graph) {
                let mut lines = vec![format!("circle in the crate of {}:", root.display())];
                for a in &comp {
                    for (b, line) in &graph[a] {
                        if comp.contains(b) {
                            lines.push(format!("  {}:{line} -> {}", a.display(), b.display()));
                        }
                    }
                }
                found.push(lines.join("\n"));
            }
        }
    }
    (files, found)
}

#[test]
fn no_import_circle_in_any_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let packages: Vec<PathBuf> = PACKAGES.iter().map(|p| root.join(p)).collect();
    let (files, found) = find_circles(&packages);
    assert!(files > 100, "the scan found the sources ({files} files)");
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn raft_core_imports_nothing_but_serde() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let manifest = std::fs::read_to_string(root.join("model/core/Cargo.toml")).unwrap();
    let mut section = String::new();
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[dependencies]" && !line.is_empty() && !line.starts_with('#') {
            deps.push(line.split(['=', '.']).next().unwrap().trim().to_string());
        }
    }
    assert_eq!(deps, ["serde"], "raft-core's dependencies");
    // And no source file reaches past them (std, core and alloc are the language's own).
    // Its unit tests may use proptest (a dev-dependency): only what the node links counts.
    let krate = load_crate(&root.join("model/core/src/lib.rs"));
    let files: BTreeSet<PathBuf> = krate
        .files
        .iter()
        .filter(|(m, _)| !krate.test_only.contains(*m))
        .map(|(_, f)| f.clone())
        .collect();
    assert!(files.len() > 10, "the scan found raft-core's sources");
    let allowed = ["crate", "self", "super", "std", "core", "alloc", "serde"];
    // The parts of std that reach outside the process's memory: disk, network, clock,
    // threads, environment.
    let outside = ["fs", "net", "time", "io", "thread", "process", "env"];
    for file in files {
        let text = strip(&std::fs::read_to_string(&file).unwrap());
        for module in outside {
            let path = format!("std::{module}");
            if let Some(at) = text.find(&path) {
                panic!(
                    "{}:{}: raft-core uses `{path}`",
                    file.display(),
                    line_of(&text, at)
                );
            }
        }
        for u in use_stmts(&text) {
            for (p, _) in &u.paths {
                let head = p[0].as_str();
                let child = krate.children.values().any(|c| c.contains(head));
                assert!(
                    allowed.contains(&head) || child || p.len() == 1,
                    "{}:{}: raft-core uses `{}`",
                    file.display(),
                    line_of(&text, u.at),
                    p.join("::")
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scan itself, on small crates written for the purpose: a circle it missed would pass the
// workspace test unseen.

struct TempCrate(PathBuf);

impl TempCrate {
    fn new(name: &str, files: &[(&str, &str)]) -> TempCrate {
        let dir = std::env::temp_dir().join(format!("structure-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        TempCrate(dir)
    }
}

impl Drop for TempCrate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn circles_in(name: &str, files: &[(&str, &str)]) -> Vec<String> {
    let c = TempCrate::new(name, files);
    find_circles(std::slice::from_ref(&c.0)).1
}

#[test]
fn an_inline_path_circle_is_found() {
    let found = circles_in(
        "inline",
        &[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "pub fn f() -> u8 { crate::b::g() }\n"),
            (
                "src/b.rs",
                "pub fn g() -> u8 { 1 }\npub fn h() -> u8 { super::a::f() }\n",
            ),
        ],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("a.rs:1 -> ") && found[0].contains("b.rs:2 -> "),
        "{found:?}"
    );
}

#[test]
fn a_circle_through_a_reexport_and_three_files_is_found() {
    let found = circles_in(
        "reexport",
        &[
            (
                "src/lib.rs",
                "mod a;\nmod b;\nmod c;\npub use c::C;\n// crate::b is only a comment\n",
            ),
            ("src/a.rs", "use crate::b::B;\npub struct A(B);\n"),
            ("src/b.rs", "pub struct B(crate::C);\n"),
            ("src/c.rs", "pub struct C;\nfn f(_: crate::a::A) {}\n"),
        ],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    for f in ["a.rs", "b.rs", "c.rs"] {
        assert!(found[0].contains(f), "{found:?}");
    }
}

#[test]
fn nested_modules_and_tests_are_no_circle() {
    let found = circles_in(
        "clean",
        &[
            ("src/lib.rs", "mod a;\nmod b;\npub use a::A;\n"),
            (
                "src/a.rs",
                "pub struct A;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    fn t(_: A) {}\n}\n",
            ),
            ("src/b.rs", "mod inner;\npub struct B(pub crate::A);\nfn f() { inner::g(); let _ = \"crate::a::x\"; }\n"),
            ("src/b/inner.rs", "pub fn g() { let _ = super::super::A; }\n"),
        ],
    );
    assert!(found.is_empty(), "{found:?}");
}
