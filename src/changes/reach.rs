//! From changed symbols to tests: a name-level reverse call graph walked back at most
//! [`MAX_HOPS`] steps, and for each test the shortest way its code (body, class set-up,
//! fixtures — conftest.py's included — and through them same-file helpers) gets to a change.

use std::collections::{HashMap, HashSet};

use super::symbols::{FileSymbols, Kind, Lang, Symbol, is_test_function};

/// Farthest a test may be from a changed symbol and still count as reaching it: the
/// measurement behind issue 15 found nothing gained beyond three calls.
pub const MAX_HOPS: u8 = 3;

/// One parsed file.
pub struct File {
    pub path: String,
    pub lang: Lang,
    pub symbols: FileSymbols,
}

/// A definition the diff touched.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    pub file: String,
    /// First changed line inside it.
    pub line: u32,
    pub qual: String,
    /// The name callers use: a constructor's is its class's.
    pub name: String,
}

/// How one test relates to the change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestReach {
    /// The test's definition was found (else it has no symbol features).
    pub located: bool,
    /// Fewest calls from the test's code to a changed symbol (0: its own code changed).
    pub hops: Option<u8>,
    /// Distinct changed symbols within [`MAX_HOPS`].
    pub reached: u32,
    /// A fixture or set-up method reaches a changed symbol.
    pub via_fixture: bool,
    /// The shortest chain, for `--explain`.
    pub chain: Option<String>,
}

/// Global symbol id: (file, symbol).
type Sid = (usize, usize);

/// The parsed tree and the change, indexed for reach queries.
pub struct Graph<'a> {
    files: &'a [File],
    changed: &'a [Changed],
    by_path: HashMap<&'a str, usize>,
    /// Name → per changed symbol, hops from a definition of that name to it (and the next
    /// name on the way).
    dist: HashMap<&'a str, Vec<(usize, u8, &'a str)>>,
    /// Changed symbols by (file, symbol), for "its own code changed".
    changed_at: HashMap<Sid, usize>,
    /// Test definitions by name.
    tests_by_name: HashMap<&'a str, Vec<Sid>>,
    /// Fixtures by name.
    fixtures: HashMap<&'a str, Vec<Sid>>,
}

fn sym(files: &[File], (f, s): Sid) -> &Symbol {
    &files[f].symbols.symbols[s]
}

/// The name a caller of `s` writes.
fn call_name<'a>(f: &'a FileSymbols, s: &'a Symbol) -> &'a str {
    const CONSTRUCTORS: &[&str] = &["__init__", "__new__", "__post_init__", "constructor"];
    match s.parent {
        Some(p) if CONSTRUCTORS.contains(&s.name.as_str()) => &f.symbols[p as usize].name,
        _ => &s.name,
    }
}

/// The changed definitions: the innermost one around each changed line. A line outside every
/// definition (imports, module constants) names no symbol; the file-level change features
/// still see it.
pub fn changed_symbols(
    files: &[File],
    hunks: &super::diff::Hunks,
) -> (Vec<Changed>, HashMap<Sid, usize>) {
    let mut out: Vec<Changed> = Vec::new();
    let mut at: HashMap<Sid, usize> = HashMap::new();
    for (fi, file) in files.iter().enumerate() {
        let Some(ranges) = hunks.get(&file.path) else {
            continue;
        };
        for &(first, count) in ranges {
            let lines = if count == 0 {
                first..=first + 1
            } else {
                first..=first + count - 1
            };
            for line in lines {
                let Some(si) = file.symbols.innermost(line) else {
                    continue;
                };
                at.entry((fi, si)).or_insert_with(|| {
                    let s = &file.symbols.symbols[si];
                    out.push(Changed {
                        file: file.path.clone(),
                        line: line.max(s.start),
                        qual: s.qual.clone(),
                        name: call_name(&file.symbols, s).to_owned(),
                    });
                    out.len() - 1
                });
            }
        }
    }
    (out, at)
}

/// The changed definitions without a diff: each changed file's definitions compared with its
/// version in an older tree (`old`) by source hash. A definition counts when it is new or its
/// text differs and none inside it does (a changed method changes its class's text too); a
/// definition that is gone counts by its name, at its old place. A file the older tree did not
/// have is new: all of its definitions count.
pub fn changed_by_comparison<'o>(
    files: &[File],
    old: impl Fn(&str) -> Option<&'o FileSymbols>,
    changed_files: &HashSet<&str>,
) -> (Vec<Changed>, HashMap<Sid, usize>) {
    let mut out: Vec<Changed> = Vec::new();
    let mut at: HashMap<Sid, usize> = HashMap::new();
    for (fi, file) in files.iter().enumerate() {
        if !changed_files.contains(file.path.as_str()) {
            continue;
        }
        let syms = &file.symbols.symbols;
        let before: HashMap<&str, u64> = old(&file.path)
            .map(|o| {
                o.symbols
                    .iter()
                    .map(|s| (s.qual.as_str(), s.hash))
                    .collect()
            })
            .unwrap_or_default();
        let differs: Vec<bool> = syms
            .iter()
            .map(|s| before.get(s.qual.as_str()) != Some(&s.hash))
            .collect();
        let mut has_differing_child = vec![false; syms.len()];
        for (i, s) in syms.iter().enumerate() {
            if differs[i]
                && let Some(p) = s.parent
            {
                has_differing_child[p as usize] = true;
            }
        }
        for (si, s) in syms.iter().enumerate() {
            if differs[si] && !has_differing_child[si] {
                out.push(Changed {
                    file: file.path.clone(),
                    line: s.start,
                    qual: s.qual.clone(),
                    name: call_name(&file.symbols, s).to_owned(),
                });
                at.insert((fi, si), out.len() - 1);
            }
        }
        if let Some(o) = old(&file.path) {
            let now: HashSet<&str> = syms.iter().map(|s| s.qual.as_str()).collect();
            for s in o.symbols.iter().filter(|s| !now.contains(s.qual.as_str())) {
                out.push(Changed {
                    file: file.path.clone(),
                    line: s.start,
                    qual: s.qual.clone(),
                    name: call_name(o, s).to_owned(),
                });
            }
        }
    }
    (out, at)
}

impl<'a> Graph<'a> {
    pub fn new(
        files: &'a [File],
        changed: &'a [Changed],
        changed_at: HashMap<Sid, usize>,
    ) -> Graph<'a> {
        let mut by_path = HashMap::new();
        let mut users: HashMap<&str, Vec<Sid>> = HashMap::new();
        let mut tests_by_name: HashMap<&str, Vec<Sid>> = HashMap::new();
        let mut fixtures: HashMap<&str, Vec<Sid>> = HashMap::new();
        for (fi, f) in files.iter().enumerate() {
            by_path.insert(f.path.as_str(), fi);
            for (si, s) in f.symbols.symbols.iter().enumerate() {
                let test = is_test_function(f.lang, s) || s.kind == Kind::TestBlock;
                if test {
                    tests_by_name.entry(&s.name).or_default().push((fi, si));
                }
                if s.fixture {
                    fixtures.entry(&s.name).or_default().push((fi, si));
                }
                // Only functions pass a change on — a class "uses" what all its methods use,
                // and nobody calls a test — and classes to their subclasses: constructing a
                // `URLSafeSerializer` runs the `Serializer.__init__` it inherits.
                if s.kind == Kind::Function && !test {
                    for u in &s.uses {
                        users.entry(u).or_default().push((fi, si));
                    }
                }
                if s.kind == Kind::Class {
                    for b in &s.params {
                        users.entry(b).or_default().push((fi, si));
                    }
                }
            }
        }
        // Backwards from each changed name, breadth first, up to MAX_HOPS - 1 steps (a test's
        // own use of a name is the last hop).
        let mut dist: HashMap<&str, Vec<(usize, u8, &str)>> = HashMap::new();
        for (ci, c) in changed.iter().enumerate() {
            let mut seen: HashSet<&str> = HashSet::from([c.name.as_str()]);
            dist.entry(&c.name).or_default().push((ci, 0, &c.name));
            let mut frontier: Vec<&str> = vec![&c.name];
            for d in 1..MAX_HOPS {
                let mut next = Vec::new();
                for n in frontier {
                    for &u in users.get(n).into_iter().flatten() {
                        let name = sym(files, u).name.as_str();
                        if seen.insert(name) {
                            dist.entry(name).or_default().push((ci, d, n));
                            next.push(name);
                        }
                    }
                }
                frontier = next;
            }
        }
        Graph {
            files,
            changed,
            by_path,
            dist,
            changed_at,
            tests_by_name,
            fixtures,
        }
    }

    /// Where a test id's definition is.
    fn locate(&self, id: &str) -> Option<Sid> {
        let (head, rest) = id.split_once("::").unwrap_or((id, ""));
        let segs: Vec<&str> = rest.split("::").filter(|s| !s.is_empty()).collect();
        let leaf_raw = segs.last().copied().unwrap_or(head);
        // Parameters (`test_x[1-2]`) and sub-tests (`TestX/case`) belong to their function.
        let leaf = leaf_raw.split('[').next().unwrap_or(leaf_raw);
        let leaf_fn = leaf.split('/').next().unwrap_or(leaf);
        let head = head.trim_start_matches("./");

        // The file: a path, or a dotted module (`tests.test_api.TestX` → tests/test_api.py).
        let mut file: Option<(usize, Vec<&str>)> = self
            .by_path
            .get(head)
            .map(|&f| (f, segs[..segs.len().saturating_sub(1)].to_vec()));
        if file.is_none() {
            let parts: Vec<&str> = head.split('.').collect();
            for k in (1..=parts.len()).rev() {
                let base = parts[..k].join("/");
                if let Some(&f) = self.by_path.get(format!("{base}.py").as_str()) {
                    let mut classes = parts[k..].to_vec();
                    classes.extend(&segs[..segs.len().saturating_sub(1)]);
                    file = Some((f, classes));
                    break;
                }
            }
        }
        let candidates: Vec<Sid> = self.tests_by_name.get(leaf_fn).cloned().unwrap_or_default();
        if let Some((f, classes)) = &file {
            let wanted = classes.join(".");
            let in_file: Vec<Sid> = candidates.iter().copied().filter(|c| c.0 == *f).collect();
            if let Some(&c) = in_file
                .iter()
                .find(|&&c| {
                    let q = &sym(self.files, c).qual;
                    q.strip_suffix(leaf_fn)
                        .is_some_and(|p| p.trim_end_matches('.') == wanted)
                })
                .or(in_file.first())
            {
                return Some(c);
            }
            // JavaScript: blocks are named by strings, and reporters join the describe
            // names with the test's (`cart sums lines`).
            return self.files[*f]
                .symbols
                .symbols
                .iter()
                .enumerate()
                .filter(|(_, s)| s.kind == Kind::TestBlock)
                .find(|(_, s)| leaf == s.name || leaf == s.qual.replace('.', " "))
                .map(|(i, _)| (*f, i));
        }
        // Go (`pkg/path::TestX`) and anything else: the test function by name, in the file
        // whose directory matches the id's head best.
        candidates.into_iter().max_by_key(|&(f, _)| {
            let path = &self.files[f].path;
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            (!dir.is_empty() && head.ends_with(dir)) as u8 * 2
                + path.contains(head.rsplit('/').next().unwrap_or(head)) as u8
        })
    }

    /// The fixtures a test (or fixture) asks for by parameter name: its own file's first, then
    /// conftest.py files from its directory up, then any.
    fn fixtures_for(&self, of: Sid, out: &mut Vec<Sid>, depth: u8) {
        if depth > MAX_HOPS {
            return;
        }
        let s = sym(self.files, of);
        let path = &self.files[of.0].path;
        for p in &s.params {
            let Some(defs) = self.fixtures.get(p.as_str()) else {
                continue;
            };
            let best = defs
                .iter()
                .copied()
                .filter(|&d| d != of)
                .max_by_key(|&(f, _)| {
                    let fp = &self.files[f].path;
                    if f == of.0 {
                        return usize::MAX;
                    }
                    match fp.strip_suffix("conftest.py") {
                        Some(dir) if path.starts_with(dir) => dir.len() + 1,
                        Some(_) => 0,
                        None => 0,
                    }
                });
            if let Some(d) = best
                && !out.contains(&d)
            {
                out.push(d);
                self.fixtures_for(d, out, depth + 1);
            }
        }
    }

    /// How `id` relates to the change.
    pub fn reach(&self, id: &str) -> TestReach {
        let Some(t) = self.locate(id) else {
            return TestReach::default();
        };
        let file = &self.files[t.0];
        // Set-up code: the fixture methods of the enclosing classes/suites (and a JavaScript
        // file's top-level hooks), and the fixtures asked for by name.
        let mut setup: Vec<Sid> = Vec::new();
        let ancestors: Vec<Option<u32>> = {
            let mut a = vec![None];
            let mut p = sym(self.files, t).parent;
            while let Some(i) = p {
                a.push(Some(i));
                p = file.symbols.symbols[i as usize].parent;
            }
            a
        };
        for (si, s) in file.symbols.symbols.iter().enumerate() {
            let top_hook = s.parent.is_none() && file.lang != Lang::Python;
            if s.fixture && (top_hook || (s.parent.is_some() && ancestors.contains(&s.parent))) {
                setup.push((t.0, si));
            }
        }
        self.fixtures_for(t, &mut setup, 1);
        let mut out = TestReach {
            located: true,
            ..TestReach::default()
        };
        let mut best: Option<(u8, String)> = None;
        let mut reached: HashSet<usize> = HashSet::new();
        let mut consider = |hops: u8, ci: usize, chain: String, fixture: bool| {
            reached.insert(ci);
            out.via_fixture |= fixture;
            if best.as_ref().is_none_or(|(h, _)| hops < *h) {
                best = Some((hops, chain));
            }
        };
        // Its own code (or an ancestor's, or a fixture's) changed: no call in between.
        let own = std::iter::once(t).chain(ancestors.iter().flatten().map(|&i| (t.0, i as usize)));
        for sid in own.chain(setup.iter().copied()) {
            if let Some(&ci) = self.changed_at.get(&sid) {
                let c = &self.changed[ci];
                let fixture = setup.contains(&sid);
                let hops = u8::from(fixture);
                let what = if fixture {
                    format!("its fixture `{}` changed", sym(self.files, sid).qual)
                } else {
                    "its own code changed".to_owned()
                };
                consider(
                    hops,
                    ci,
                    format!("{what} in {}:{}", c.file, c.line),
                    fixture,
                );
            }
        }
        for (sid, fixture) in std::iter::once((t, false)).chain(setup.iter().map(|&s| (s, true))) {
            for u in &sym(self.files, sid).uses {
                for &(ci, d, _) in self.dist.get(u.as_str()).into_iter().flatten() {
                    let hops = d + 1;
                    if hops > MAX_HOPS {
                        continue;
                    }
                    let via = if fixture {
                        format!("its fixture `{}` ", sym(self.files, sid).name)
                    } else {
                        String::new()
                    };
                    consider(hops, ci, format!("{via}{}", self.chain(u, ci)), fixture);
                }
            }
        }
        out.reached = reached.len() as u32;
        if let Some((h, chain)) = best {
            out.hops = Some(h);
            out.chain = Some(chain);
        }
        out
    }

    /// "calls `export` → `total` → `Invoice.tax` ← changed in invoice.py:42".
    fn chain(&self, from: &str, ci: usize) -> String {
        let c = &self.changed[ci];
        let mut names: Vec<&str> = vec![from];
        let mut at = from;
        while at != c.name {
            let Some(&(_, _, next)) = self
                .dist
                .get(at)
                .and_then(|v| v.iter().find(|(i, ..)| *i == ci))
            else {
                break;
            };
            if next == at {
                break;
            }
            names.push(next);
            at = next;
        }
        let mut shown: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        if let Some(last) = shown.last_mut() {
            *last = format!("`{}`", c.qual);
        }
        format!(
            "calls {} ← changed in {}:{}",
            shown.join(" → "),
            c.file,
            c.line
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::diff::Hunks;
    use crate::changes::symbols::extract;

    fn file(path: &str, src: &str) -> File {
        let lang = Lang::of(path).unwrap();
        File {
            path: path.to_owned(),
            lang,
            symbols: extract(lang, src.as_bytes()).unwrap(),
        }
    }

    fn fixture_repo() -> Vec<File> {
        vec![
            file(
                "invoicekit/invoice.py",
                "class Invoice:\n    def __init__(self, lines):\n        self.lines = lines\n\n    def tax(self):\n        return sum(self.lines) * 0.2\n\n    def total(self):\n        return sum(self.lines) + self.tax()\n",
            ),
            file(
                "invoicekit/export.py",
                "def csv_totals(inv):\n    return f\"{inv.total()}\"\n\ndef unrelated():\n    return 1\n",
            ),
            file(
                "tests/conftest.py",
                "import pytest\n\n@pytest.fixture\ndef invoice():\n    return Invoice([1, 2])\n",
            ),
            file(
                "tests/test_export.py",
                "def test_csv(invoice):\n    assert csv_totals(invoice)\n\ndef test_other():\n    assert unrelated() == 1\n\nclass TestTax:\n    def test_tax(self):\n        assert Invoice([1]).tax()\n",
            ),
        ]
    }

    fn reach_with(hunks: &[(&str, u32, u32)], id: &str) -> TestReach {
        let files = fixture_repo();
        let mut h = Hunks::new();
        for &(f, a, n) in hunks {
            h.entry(f.to_owned()).or_default().push((a, n));
        }
        let (changed, at) = changed_symbols(&files, &h);
        Graph::new(&files, &changed, at).reach(id)
    }

    #[test]
    fn direct_call_and_longer_chains() {
        let tax = [("invoicekit/invoice.py", 6, 1)];
        let r = reach_with(&tax, "tests.test_export.TestTax::test_tax");
        assert_eq!((r.hops, r.reached, r.via_fixture), (Some(1), 1, false));
        assert_eq!(
            r.chain.as_deref(),
            Some("calls `Invoice.tax` ← changed in invoicekit/invoice.py:6")
        );
        // test_csv → csv_totals → total → tax: three calls.
        let r = reach_with(&tax, "tests/test_export.py::test_csv");
        assert_eq!(r.hops, Some(3));
        assert_eq!(
            r.chain.as_deref(),
            Some(
                "calls `csv_totals` → `total` → `Invoice.tax` ← changed in invoicekit/invoice.py:6"
            )
        );
        let r = reach_with(&tax, "tests.test_export::test_other");
        assert!(r.located && r.hops.is_none() && r.reached == 0);
        assert!(!reach_with(&tax, "tests.test_export::test_missing").located);
    }

    #[test]
    fn without_a_diff_definitions_are_compared_with_the_older_tree() {
        let old = fixture_repo();
        let mut files = fixture_repo();
        files[0] = file(
            "invoicekit/invoice.py",
            "class Invoice:\n    def __init__(self, lines):\n        self.lines = lines\n\n    def tax(self):\n        return sum(self.lines) * 0.25\n",
        );
        let changed = HashSet::from(["invoicekit/invoice.py"]);
        let (c, at) = changed_by_comparison(
            &files,
            |p| old.iter().find(|f| f.path == p).map(|f| &f.symbols),
            &changed,
        );
        let quals: Vec<&str> = c.iter().map(|c| c.qual.as_str()).collect();
        // tax changed (its class only because of it), total is gone.
        assert_eq!(quals, ["Invoice.tax", "Invoice.total"]);
        assert_eq!(c[0].line, 5);
        let g = Graph::new(&files, &c, at);
        let r = g.reach("tests.test_export.TestTax::test_tax");
        assert_eq!(r.hops, Some(1));
        assert_eq!(r.reached, 1);
        // A file the older tree did not have: everything in it is new.
        let (c, _) = changed_by_comparison(&files, |_| None, &changed);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_changed_base_class_reaches_its_subclasses_users() {
        let files = vec![
            file(
                "pkg/ser.py",
                "class Serializer:\n    def __init__(self, key):\n        self.key = key\n\nclass URLSafeSerializer(Serializer):\n    pass\n",
            ),
            file(
                "web/views.ts",
                "class View extends Base {\n  render() { return 1; }\n}\n",
            ),
            file(
                "tests/test_ser.py",
                "def test_url():\n    assert URLSafeSerializer('k').key\n",
            ),
        ];
        let mut h = Hunks::new();
        h.insert("pkg/ser.py".into(), vec![(3, 1)]);
        let (changed, at) = changed_symbols(&files, &h);
        let r = Graph::new(&files, &changed, at).reach("tests/test_ser.py::test_url");
        assert_eq!(r.hops, Some(2));
        assert_eq!(
            r.chain.as_deref(),
            Some("calls `URLSafeSerializer` → `Serializer.__init__` ← changed in pkg/ser.py:3")
        );
        assert_eq!(files[1].symbols.symbols[0].params, ["Base"]);
    }

    #[test]
    fn constructors_reach_through_conftest_fixtures() {
        let init = [("invoicekit/invoice.py", 3, 1)];
        let r = reach_with(&init, "tests.test_export::test_csv");
        assert_eq!(r.hops, Some(1));
        assert!(r.via_fixture);
        assert_eq!(
            r.chain.as_deref(),
            Some(
                "its fixture `invoice` calls `Invoice.__init__` ← changed in invoicekit/invoice.py:3"
            )
        );
        // Its own body changed.
        let own = [("tests/test_export.py", 5, 0)];
        let r = reach_with(&own, "tests.test_export::test_other");
        assert_eq!(r.hops, Some(0));
        assert_eq!(r.reached, 1);
    }
}
