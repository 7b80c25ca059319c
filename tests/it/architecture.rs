//! The module graph points one way (issue 12): no import cycle between the top-level modules
//! under `src/`, nor between the files of `history`, `features`, `flaky` and `import`.
//!
//! A module refers to another by any `crate::name` in its source (comments included, so a doc
//! link up the graph counts: name an upper module as a plain path instead), or inside a
//! `use crate::{…}` list; a file's submodule by `super::name` or `crate::module::name`. Unit
//! tests (from the first `#[cfg(test)]` on) are left out: they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Modules whose own files must not import each other in a cycle either.
const ACYCLIC_INSIDE: &[&str] = &["history", "features", "flaky", "import"];

type Graph = BTreeMap<String, BTreeSet<String>>;

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

/// The module path of a file under `src/`: `history/store.rs` → `[history, store]`,
/// `plan/mod.rs` → `[plan]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(SRC).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The source without its unit tests.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The names following `prefix` (`crate::`, `super::`), with each first name of a
/// `prefix{a::…, b, …}` list.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        if let Some(list) = rest.strip_prefix('{') {
            // Top-level entries of the list only.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in list.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 0 => {
                        start = false;
                        let name = ident(&list[j..]);
                        if !name.is_empty() && name != "self" {
                            names.insert(name.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// Strongly connected components of more than one node.
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    // Kosaraju: reachability both ways, small graphs.
    let reach = |from: &str| {
        let mut seen = BTreeSet::from([from.to_owned()]);
        let mut todo = vec![from.to_owned()];
        while let Some(n) = todo.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for (n, r) in &reached {
        let comp: BTreeSet<String> = r
            .iter()
            .filter(|m| reached.get(m).is_some_and(|back| back.contains(*n)))
            .cloned()
            .collect();
        if comp.len() > 1 && !out.contains(&comp) {
            out.push(comp);
        }
    }
    out
}

fn describe(graph: &Graph, comps: &[BTreeSet<String>]) -> String {
    let mut s = String::new();
    for comp in comps {
        s.push_str(&format!("cycle {comp:?}:\n"));
        for n in comp {
            let to: Vec<&String> = graph[n].iter().filter(|m| comp.contains(*m)).collect();
            s.push_str(&format!("  {n} -> {to:?}\n"));
        }
    }
    s
}

#[test]
fn no_cycle_between_top_level_modules() {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    let tops: BTreeSet<String> = files
        .iter()
        .map(|f| module_path(f))
        .filter(|p| p.len() > 1 || !["lib", "main"].contains(&p[0].as_str()))
        .map(|p| p[0].clone())
        .collect();
    let mut graph = Graph::new();
    for f in &files {
        let path = module_path(f);
        if !tops.contains(&path[0]) {
            continue;
        }
        let to = names_after(&code(f), "crate::");
        let edges = graph.entry(path[0].clone()).or_default();
        edges.extend(to.into_iter().filter(|m| tops.contains(m) && *m != path[0]));
    }
    let found = cycles(&graph);
    assert!(found.is_empty(), "{}", describe(&graph, &found));
}

#[test]
fn no_cycle_inside_the_learning_core_and_import() {
    let mut report = String::new();
    for module in ACYCLIC_INSIDE {
        let mut files = Vec::new();
        let dir = Path::new(SRC).join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        let subs: BTreeSet<String> = files
            .iter()
            .map(|f| module_path(f))
            .filter(|p| p.len() == 2)
            .map(|p| p[1].clone())
            .collect();
        let mut graph = Graph::new();
        for f in &files {
            let path = module_path(f);
            if path.len() != 2 {
                continue; // the module's own mod.rs re-exports its files
            }
            let text = code(f);
            let mut to = names_after(&text, "super::");
            to.extend(names_after(&text, &format!("crate::{module}::")));
            let edges = graph.entry(path[1].clone()).or_default();
            edges.extend(to.into_iter().filter(|m| subs.contains(m) && *m != path[1]));
        }
        let found = cycles(&graph);
        if !found.is_empty() {
            report.push_str(&format!("{module}: {}", describe(&graph, &found)));
        }
    }
    assert!(report.is_empty(), "{report}");
}
