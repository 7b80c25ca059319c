//! The documentation: the generated references are current, the Markdown holds no machine
//! paths, and its relative links resolve (issue 13).
//!
//! `docs/cli.md` is rendered from the clap definitions the binary parses with
//! (`fedtest::cli::Cli`), `docs/configuration.md` from the embedded defaults
//! (`src/default_config.toml`, whose comments are the descriptions). When either is stale the
//! test fails; `FEDTEST_BLESS_DOCS=1 cargo test --test it docs` rewrites them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use clap::CommandFactory;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BLESS: &str = "FEDTEST_BLESS_DOCS";
const REGENERATE: &str = "FEDTEST_BLESS_DOCS=1 cargo test --test it docs";

fn root() -> &'static Path {
    Path::new(ROOT)
}

/// Compares `generated` with the file at `rel`, or rewrites the file when blessing.
fn check_generated(rel: &str, generated: &str) {
    let path = root().join(rel);
    if std::env::var_os(BLESS).is_some_and(|v| v == "1") {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != generated {
        let line = current
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| current.lines().count().min(generated.lines().count()));
        panic!(
            "{rel} is stale (first difference at line {}): regenerate it with\n    {REGENERATE}\n\
             and commit the result",
            line + 1
        );
    }
}

// ------------------------------------------------------------------ CLI reference

fn cli_markdown() -> String {
    let options = clap_markdown::MarkdownOptions::new()
        .title("CLI reference".to_owned())
        .show_footer(false);
    let body = clap_markdown::help_markdown_custom::<fedtest::cli::Cli>(&options);
    let mut out = String::new();
    writeln!(
        out,
        "<!-- Generated from src/cli.rs by tests/it/docs.rs; do not edit. Regenerate with\n     \
         {REGENERATE} -->\n"
    )
    .unwrap();
    // clap-markdown starts with its own title line; keep it, then say what the page is.
    let (title, rest) = body.split_once('\n').unwrap_or((&body, ""));
    writeln!(out, "{title}\n").unwrap();
    out.push_str(
        "Every command and option of `fedtest`, as `fedtest <command> --help` prints them. What \
         the commands do with their inputs: [record, plan and run](commands.md); settings in \
         `fedtest.toml`: [configuration reference](configuration.md); exit codes: \
         [troubleshooting](troubleshooting.md#exit-codes).\n",
    );
    out.push_str(rest.trim_end());
    out.push_str("\n\n## Environment variables\n\n");
    out.push_str("Options that can also be set in the environment (the command line wins):\n\n");
    out.push_str("| variable | option | commands |\n|---|---|---|\n");
    let mut env: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    collect_env(&fedtest::cli::Cli::command(), "fedtest", &mut env);
    for ((var, long), commands) in env {
        let commands: Vec<String> = commands.iter().map(|c| format!("`{c}`")).collect();
        writeln!(out, "| `{var}` | `--{long}` | {} |", commands.join(", ")).unwrap();
    }
    out.push_str(
        "\nAlso read from the environment, with no option: `FEDTEST_TOKEN` (the federation \
         server's bearer token, for `sync` and for `record` when `FEDTEST_SERVER` is set), \
         `FEDTEST_SERVER_TOKENS` (`serve`: accepted tokens, comma-separated, without \
         `--tokens-file`), `FEDTEST_PRIOR` (a model file that replaces the built-in prior), the \
         import tokens (`GITHUB_TOKEN`, `GITLAB_TOKEN`, `CI_JOB_TOKEN`, or the variable \
         `--token-env` names), and the CI platform's own variables (build id, commit, branch).\n",
    );
    out
}

/// Every option with an `env` fallback, by (variable, option), with the commands that take it.
fn collect_env(
    cmd: &clap::Command,
    path: &str,
    out: &mut BTreeMap<(String, String), BTreeSet<String>>,
) {
    for arg in cmd.get_arguments() {
        if let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) {
            let key = (var.to_string_lossy().into_owned(), long.to_owned());
            // A global option is shown once, on the command that declares it.
            let entry = out.entry(key).or_default();
            if !arg.is_global_set() || entry.is_empty() {
                entry.insert(path.to_owned());
            }
        }
    }
    for sub in cmd.get_subcommands() {
        collect_env(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn cli_reference_is_current() {
    check_generated("docs/cli.md", &cli_markdown());
}

// ------------------------------------------------------------------ configuration reference

fn comment_lines(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("")
        .lines()
        .map(str::trim)
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                l.strip_prefix('#').unwrap_or(l).trim().to_owned()
            }
        })
        .collect()
}

/// Comment lines joined into paragraphs (a blank line separates them).
fn paragraphs(lines: &[String]) -> Vec<String> {
    lines
        .split(|l| l.is_empty())
        .filter(|p| !p.is_empty())
        .map(|p| p.join(" "))
        .collect()
}

fn config_markdown() -> String {
    let src = std::fs::read_to_string(root().join("src/default_config.toml")).unwrap();
    let doc: toml_edit::DocumentMut = src.parse().expect("src/default_config.toml parses");
    let mut out = String::new();
    writeln!(
        out,
        "<!-- Generated from src/default_config.toml by tests/it/docs.rs; do not edit. \
         Regenerate with\n     {REGENERATE} -->\n\n# Configuration reference\n"
    )
    .unwrap();
    out.push_str(
        "fedtest reads `fedtest.toml` from the working directory (or the file `--config` / \
         `FEDTEST_CONFIG` names). A file needs only the keys it changes; every key, its default \
         and its meaning are below, from the defaults embedded in the binary. An unknown key is \
         an error, not ignored. Precedence: command line > environment > `fedtest.toml` > \
         these defaults. A change to `fedtest.toml` makes that build run every test \
         (`plan.run_all_files`).\n",
    );
    for (section, item) in doc.iter() {
        let table = item.as_table().expect("top-level items are tables");
        writeln!(out, "\n## `[{section}]`\n").unwrap();
        // The file's own header comment sits before the first table: it is not a section's.
        let prefix = comment_lines(table.decor().prefix().and_then(|r| r.as_str()));
        let own = prefix
            .iter()
            .rposition(String::is_empty)
            .map_or(&prefix[..], |i| &prefix[i + 1..]);
        for p in paragraphs(own) {
            writeln!(out, "{p}\n").unwrap();
        }
        // A key without a comment of its own shares the one of the key above it
        // (`min_builds` and `min_failures`).
        let mut described: Option<String> = None;
        for (key, value) in table.iter() {
            let k = table.key(key).unwrap();
            let mut about = paragraphs(&comment_lines(
                k.leaf_decor().prefix().and_then(|r| r.as_str()),
            ));
            match (&described, about.is_empty()) {
                (Some(above), true) => about.push(format!("See `{section}.{above}` above.")),
                _ => described = Some(key.to_owned()),
            }
            let mut value = value.as_value().expect("keys hold values").clone();
            value.decor_mut().clear();
            if let Some(a) = value.as_array_mut() {
                a.fmt();
            }
            let shown = value.to_string();
            writeln!(out, "### `{section}.{key}`\n").unwrap();
            if shown.len() <= 60 {
                writeln!(out, "Default: `{shown}`\n").unwrap();
            } else {
                let items: Vec<String> = value
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| format!("  {},", v.to_string().trim()))
                            .collect()
                    })
                    .unwrap_or_else(|| vec![shown.clone()]);
                writeln!(
                    out,
                    "Default:\n\n```toml\n{key} = [\n{}\n]\n```\n",
                    items.join("\n")
                )
                .unwrap();
            }
            for p in about {
                writeln!(out, "{p}\n").unwrap();
            }
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn configuration_reference_is_current() {
    check_generated("docs/configuration.md", &config_markdown());
}

// ------------------------------------------------------------------ every Markdown file

/// README.md, docs/**/*.md and bench/**/*.md.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut files);
    walk(&root().join("bench"), &mut files);
    files.sort();
    files
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// Issue 13: the documentation is about the repository, not the machine it was written on.
#[test]
fn markdown_names_no_machine_paths() {
    let forbidden = ["/work/", "../shared", "/home/", "/root/", "/Users/"];
    let mut found = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for f in forbidden {
                if line.contains(f) {
                    found.push(format!("{}:{}: {f:?} in {line:?}", rel(&file), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "paths of a machine or outside the repository:\n{}",
        found.join("\n")
    );
}

/// The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    // Link syntax keeps only its text.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](").zip(rest[open..].find(')')) {
            Some((mid, close)) if mid < close => {
                text.push_str(&rest[..open]);
                text.push_str(&rest[open + 1..open + mid]);
                rest = &rest[open + close + 1..];
            }
            _ => break,
        }
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (duplicates numbered as GitHub does).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(h) = line.strip_prefix('#') else {
            continue;
        };
        let h = h.trim_start_matches('#');
        if !h.starts_with(' ') {
            continue;
        }
        let base = slug(h.trim());
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// Lines outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// Targets of inline links `[text](target)` outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        // Code spans hold examples, not links.
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = prose.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push(target.to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// `base/../x` → `x`, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn markdown_relative_links_resolve() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in links(&text) {
            if target.is_empty()
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.starts_with('<')
            {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                normalise(&file.parent().unwrap().join(path))
            };
            if resolved.strip_prefix(root()).is_err() {
                broken.push(format!("{}: {target} leaves the repository", rel(&file)));
                continue;
            }
            if !resolved.exists() {
                broken.push(format!("{}: {target} does not exist", rel(&file)));
                continue;
            }
            if let Some(fragment) = fragment
                && resolved.extension().is_some_and(|x| x == "md")
            {
                let text = std::fs::read_to_string(&resolved).unwrap();
                if !anchors(&text).contains(fragment) {
                    broken.push(format!(
                        "{}: {target}: no heading with the anchor #{fragment}",
                        rel(&file)
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("`[plan]`"), "plan");
    assert_eq!(
        slug("4. The first builds: the cold start"),
        "4-the-first-builds-the-cold-start"
    );
    assert_eq!(slug("GitLab CI/CD component"), "gitlab-cicd-component");
    assert_eq!(slug("`fedtest serve status`"), "fedtest-serve-status");
    assert_eq!(slug("Poisoning — defences"), "poisoning--defences");
    assert_eq!(slug("[a link](x.md) here"), "a-link-here");
}

// ------------------------------------------------------------------ the CI integrations' pages

/// Names of the entries of a YAML mapping: the keys indented by `indent` below the line `under`
/// (good enough for action.yml and the component's `spec:`, which the CI clients validate).
fn yaml_keys(text: &str, under: &str, indent: usize) -> BTreeSet<String> {
    let pad = " ".repeat(indent);
    text.lines()
        .skip_while(|l| *l != under)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(&pad) || l.trim_start().starts_with('#'))
        .filter(|l| l.starts_with(&pad) && !l[indent..].starts_with([' ', '#']))
        .filter_map(|l| l.trim().strip_suffix(':').map(str::to_owned))
        .collect()
}

/// The names in the first column of the first table after the heading `heading`.
fn table_names(text: &str, heading: &str) -> BTreeSet<String> {
    text.lines()
        .skip_while(|l| *l != heading)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .filter_map(|l| l.split('|').nth(1))
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect()
}

/// docs/ci.md lists exactly the action's inputs and outputs and the component's inputs.
#[test]
fn ci_page_lists_every_input_and_output() {
    let page = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    let action = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let component = std::fs::read_to_string(root().join("templates/fedtest.yml")).unwrap();
    for (what, in_file, on_page) in [
        (
            "action.yml inputs",
            yaml_keys(&action, "inputs:", 2),
            table_names(&page, "### Inputs"),
        ),
        (
            "action.yml outputs",
            yaml_keys(&action, "outputs:", 2),
            table_names(&page, "### Outputs"),
        ),
        (
            "the component's inputs",
            yaml_keys(&component, "  inputs:", 4),
            table_names(&page, "## GitLab CI/CD component"),
        ),
    ] {
        assert!(in_file.len() >= 5, "{what}: {in_file:?}");
        assert_eq!(
            in_file, on_page,
            "docs/ci.md and the file disagree on the {what}"
        );
    }
}

/// Issue 13: the README is read in five minutes; reference material belongs in docs/.
#[test]
fn readme_stays_short() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let words = readme.split_whitespace().count();
    assert!(
        words <= 1_300,
        "README.md has {words} words (at most 1,300): move reference material to docs/"
    );
}
