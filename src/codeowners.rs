//! CODEOWNERS: who owns a test, for `fedtest flaky` and quarantine entries.
//!
//! The file is looked up where GitHub and GitLab look — `.github/`, the repository root,
//! `docs/`, `.gitlab/` — and the first one found is used. Patterns follow the gitignore-style
//! rules both document: a leading `/` anchors a pattern to the root, a pattern with a `/`
//! elsewhere is anchored too, one without matches at any depth; `*` stays within a directory
//! and `**` crosses them; a pattern naming a directory owns everything below it, except that
//! a final segment with a `*` (`docs/*`) matches only that level. The last matching line
//! wins, and a line without owners leaves a path unowned. GitLab `[Section]` headers are
//! read as plain lines, so the last match across sections wins.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::keys::module_of;

/// Where CODEOWNERS files are looked up, in order.
pub const LOCATIONS: &[&str] = &[
    ".github/CODEOWNERS",
    "CODEOWNERS",
    "docs/CODEOWNERS",
    ".gitlab/CODEOWNERS",
];

/// File extensions tried for a test whose file is derived from its dotted class name.
const EXTENSIONS: &[&str] = &[
    "py", "java", "kt", "scala", "groovy", "js", "ts", "jsx", "tsx", "go", "rs", "rb", "php", "cs",
    "swift",
];

/// The rules of one CODEOWNERS file.
pub struct CodeOwners {
    path: PathBuf,
    globs: GlobSet,
    /// For each glob of `globs`, the index of its rule.
    glob_rule: Vec<usize>,
    /// Owners per rule, in file order (empty = explicitly unowned).
    rules: Vec<Vec<String>>,
}

impl CodeOwners {
    /// The first CODEOWNERS file under `root`, parsed; `None` when the repository has none.
    pub fn discover(root: &Path) -> Option<CodeOwners> {
        LOCATIONS.iter().find_map(|rel| {
            let path = root.join(rel);
            let text = std::fs::read_to_string(&path).ok()?;
            Some(CodeOwners::parse(&text, path))
        })
    }

    /// Parse a CODEOWNERS text. Lines whose pattern is not valid are ignored, as the hosts do.
    pub fn parse(text: &str, path: PathBuf) -> CodeOwners {
        let mut builder = GlobSetBuilder::new();
        let mut glob_rule = Vec::new();
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = strip_comment(line);
            let mut parts = line.split_whitespace();
            let Some(pattern) = parts.next() else {
                continue;
            };
            if pattern.starts_with('[') || pattern.starts_with("^[") {
                continue; // a GitLab section header
            }
            let owners: Vec<String> = parts.map(str::to_owned).collect();
            let globs = pattern_globs(&pattern.replace("\\#", "#"));
            let built: Vec<_> = globs
                .iter()
                .filter_map(|g| {
                    GlobBuilder::new(g)
                        .literal_separator(true)
                        .backslash_escape(true)
                        .build()
                        .ok()
                })
                .collect();
            if built.is_empty() {
                continue;
            }
            let rule = rules.len();
            rules.push(owners);
            for g in built {
                builder.add(g);
                glob_rule.push(rule);
            }
        }
        let globs = builder.build().unwrap_or_else(|_| GlobSet::empty());
        CodeOwners {
            path,
            globs,
            glob_rule,
            rules,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Index of the last rule matching any of `paths`.
    fn last_match<'p>(&self, paths: impl IntoIterator<Item = &'p str>) -> Option<usize> {
        paths
            .into_iter()
            .flat_map(|p| self.globs.matches(p.trim_start_matches("./")))
            .map(|g| self.glob_rule[g])
            .max()
    }

    /// Owners of a repository path (empty when no rule owns it).
    pub fn owners_of(&self, path: &str) -> &[String] {
        self.last_match([path])
            .map_or(&[][..], |r| self.rules[r].as_slice())
    }

    /// Owners of a test: of its file when the reports named one, else of the files its class
    /// name may live in (`tests.test_api.TestX` → `tests/test_api.py`, `tests/test_api/TestX.java`, …).
    pub fn owners_of_test(&self, id: &str, file: Option<&str>) -> &[String] {
        let candidates = candidate_paths(id, file);
        self.last_match(candidates.iter().map(String::as_str))
            .map_or(&[][..], |r| self.rules[r].as_slice())
    }
}

fn strip_comment(line: &str) -> &str {
    // `#` starts a comment unless escaped (`\#`).
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'#' && (i == 0 || bytes[i - 1] != b'\\') {
            return &line[..i];
        }
    }
    line
}

/// The globs one CODEOWNERS pattern stands for.
fn pattern_globs(pattern: &str) -> Vec<String> {
    let dir_only = pattern.ends_with('/');
    let body = pattern.trim_end_matches('/');
    let anchored = body.starts_with('/') || body.contains('/');
    let body = body.trim_start_matches('/');
    if body.is_empty() {
        return vec!["**".to_owned()]; // `/` or `/*`-like: the whole repository
    }
    let base = if anchored || body.starts_with("**") {
        body.to_owned()
    } else {
        format!("**/{body}")
    };
    let last = body.rsplit('/').next().unwrap_or(body);
    let mut globs = Vec::with_capacity(2);
    if !dir_only {
        globs.push(base.clone());
    }
    // A directory owns what is below it; `docs/*` owns one level only.
    if dir_only || !last.contains('*') || last == "**" {
        globs.push(format!("{base}/**"));
    }
    globs
}

/// Paths a test may live in.
pub fn candidate_paths(id: &str, file: Option<&str>) -> Vec<String> {
    if let Some(f) = file.filter(|f| !f.is_empty()) {
        return vec![f.trim_start_matches("./").to_owned()];
    }
    let class = module_of(id);
    if class.is_empty() {
        return Vec::new();
    }
    if class.contains('/') || class.contains('\\') {
        return vec![class.replace('\\', "/")];
    }
    let parts: Vec<&str> = class.split('.').filter(|p| !p.is_empty()).collect();
    let mut out = Vec::new();
    let shortest = if parts.len() >= 2 { 2 } else { 1 };
    for k in (shortest..=parts.len()).rev() {
        let stem = parts[..k].join("/");
        for ext in EXTENSIONS {
            out.push(format!("{stem}.{ext}"));
        }
        out.push(stem);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(text: &str, path: &str) -> Vec<String> {
        CodeOwners::parse(text, PathBuf::from("CODEOWNERS"))
            .owners_of(path)
            .to_vec()
    }

    #[test]
    fn github_documentation_examples() {
        let text = "\
# comment
*       @global-owner1 @global-owner2
*.js    @js-owner #This is an inline comment.
*.go docs@example.com
*.txt @octo-org/octocats
/build/logs/ @doctocat
docs/*  docs@example.com
apps/ @octocat
/docs/ @doctocat
/scripts/ @doctocat @octocat
**/logs @octocat
/apps/ @octocat
/apps/github
";
        assert_eq!(
            owners(text, "README.md"),
            ["@global-owner1", "@global-owner2"]
        );
        assert_eq!(owners(text, "src/a/b.js"), ["@js-owner"]);
        // `/build/logs/` matches, and so does the later `**/logs`: the last one wins.
        assert_eq!(owners(text, "build/logs/x/y.log"), ["@octocat"]);
        assert_eq!(owners(text, "scripts/x/y.sh"), ["@doctocat", "@octocat"]);
        assert_eq!(owners(text, "docs/getting-started.md"), ["@doctocat"]);
        assert_eq!(owners(text, "deep/logs/a.txt"), ["@octocat"]);
        assert_eq!(owners(text, "apps/x.rb"), ["@octocat"]);
        assert!(
            owners(text, "apps/github/x.rb").is_empty(),
            "unowned by the last rule"
        );
        assert_eq!(owners(text, "a/b.go"), ["docs@example.com"]);
    }

    #[test]
    fn one_level_star_and_anchoring() {
        let text = "docs/* @docs\nsrc/ @src\n/top.py @top\n";
        assert_eq!(owners(text, "docs/a.md"), ["@docs"]);
        assert!(owners(text, "docs/deep/a.md").is_empty());
        assert_eq!(owners(text, "src/x/y.rs"), ["@src"]);
        assert_eq!(owners(text, "top.py"), ["@top"]);
        assert!(owners(text, "sub/top.py").is_empty());
    }

    #[test]
    fn tests_without_a_file_are_matched_by_their_class() {
        let co = CodeOwners::parse(
            "/tests/ @qa\n/tests/test_api.py @api\n/src/test/java/ @java\n",
            PathBuf::from("CODEOWNERS"),
        );
        assert_eq!(co.owners_of_test("tests.test_api.TestX::t", None), ["@api"]);
        assert_eq!(co.owners_of_test("tests.test_db::t", None), ["@qa"]);
        assert_eq!(
            co.owners_of_test("x::t", Some("./tests/test_api.py")),
            ["@api"]
        );
        assert!(co.owners_of_test("plain_name", None).is_empty());
    }
}
