//! The quarantine: a reviewed file in the repository listing tests whose failures do not
//! fail `fedtest gate` until a date.
//!
//! Why a file of its own (`fedtest-quarantine.toml` by default, `[flaky] quarantine_file`)
//! and not the data dir or a table of `fedtest.toml`: the data dir is a CI cache — lost,
//! rebuilt, never reviewed — while a quarantine is a decision someone must own and review.
//! `fedtest.toml` is in the default `plan.run_all_files` (changing it runs everything) and is
//! edited by hand; quarantine entries come and go weekly, partly written by
//! `fedtest quarantine add`. A separate file keeps both reviews small and lets CODEOWNERS
//! give it its own owners.
//!
//! Edits go through `toml_edit`, so comments, order and formatting a reviewer wrote stay as
//! they are. Every entry expires; an expired entry is reported and no longer in effect.
//!
//! An entry can only quarantine so much (issue 11): one whose pattern matches every test (its
//! literal text has no letter or digit: `*`, `*::*`, `*.*`) or whose expiry lies more than
//! `[flaky] max_quarantine_days` ahead is refused — reported, and not in effect, so the tests
//! it would hide fail the gate as they should. Reading the file is linear in its size.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

pub use crate::date::Date;
use crate::error::{Error, Result};
use crate::output::Printer;

/// Default file name, relative to the working directory (the repository root in CI).
pub const DEFAULT_FILE: &str = "fedtest-quarantine.toml";

const HEADER: &str = "\
# Quarantined tests: their failures are reported, but do not fail `fedtest gate`, until the
# entry expires (the day after `expires`). Review changes to this file like code.
# Edit it by hand or with `fedtest quarantine add|remove`; comments and order are kept.
";

/// One quarantined test.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Entry {
    /// Canonical test id (`classname::name`), matched exactly — or, when it contains `*`, a
    /// pattern in which each `*` stands for any run of characters (`app.net.*::*` quarantines
    /// a whole module). Nothing else is special: ids are full of brackets and dots.
    pub id: String,
    pub reason: String,
    pub owner: Option<String>,
    /// Last day the entry is in effect.
    #[serde(serialize_with = "display")]
    pub expires: Date,
}

fn display<S: serde::Serializer>(d: &Date, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(d)
}

impl Entry {
    pub fn expired(&self, today: Date) -> bool {
        today > self.expires
    }

    /// Why the entry is refused (not in effect), when it is: it would hide every test, or it
    /// lasts longer than `max_days` from `today`.
    pub fn refusal(&self, today: Date, max_days: u32) -> Option<String> {
        if matches_everything(&self.id) {
            return Some(format!(
                "the pattern {} matches every test (a pattern needs a letter or digit outside                  its `*`s)",
                self.id
            ));
        }
        let last = today.add_days(i64::from(max_days));
        (self.expires > last).then(|| {
            format!(
                "it expires on {}, more than {max_days} days ahead \
                 (flaky.max_quarantine_days); the latest allowed today is {last}",
                self.expires
            )
        })
    }
}

/// A pattern whose literal text has no letter or digit matches every id, or nearly (`*`,
/// `*::*`, `*.*`, `*[*]`).
fn matches_everything(id: &str) -> bool {
    id.contains('*') && !id.chars().any(char::is_alphanumeric)
}

/// The quarantine file: its document (for lossless edits) and its entries.
pub struct Quarantine {
    path: PathBuf,
    doc: DocumentMut,
    entries: Vec<Entry>,
    /// `[flaky] max_quarantine_days`: entries lasting longer are refused.
    max_days: u32,
}

/// The longest an entry may last when no configuration says (`[flaky] max_quarantine_days`).
pub const DEFAULT_MAX_DAYS: u32 = 180;

const KEY: &str = "test";

impl Quarantine {
    /// Warn about every expired or refused entry: it is not in effect, and someone must decide.
    pub fn warn_expired(&self, today: Date, printer: &Printer) {
        for (e, why) in self.refused(today) {
            printer.warn(&format!(
                "quarantine of {} is refused and not in effect: {why}; fix the entry in {}",
                e.id,
                self.path().display()
            ));
        }
        for e in self.expired(today) {
            printer.warn(&format!(
                "quarantine of {} expired on {} and is no longer in effect; fix the test, or extend \
                 or remove the entry in {}",
                e.id,
                e.expires,
                self.path().display()
            ));
        }
    }

    /// The quarantine file the configuration names, with its limit on an entry's length.
    pub fn load_config(cfg: &crate::config::FlakyConfig) -> Result<Quarantine> {
        let mut q = Self::load(&cfg.quarantine_file)?;
        q.max_days = cfg.max_quarantine_days;
        Ok(q)
    }

    /// Read `path`; a missing file is an empty quarantine. A malformed one is an input error.
    pub fn load(path: &Path) -> Result<Quarantine> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::input(path, format!("cannot read: {e}"))),
        };
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Quarantine> {
        // The error names the spot, never the text there: the file may be anything the
        // configuration points at (issue 11).
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            Error::input(path, crate::config::toml_error(text, e.span(), e.message()))
        })?;
        let mut entries = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (key, item) in doc.iter() {
            if key != KEY {
                return Err(Error::input(
                    path,
                    format!("unknown key `{key}`; entries are [[{KEY}]] tables"),
                ));
            }
            let Some(aot) = item.as_array_of_tables() else {
                return Err(Error::input(
                    path,
                    format!("`{KEY}` must be an array of tables ([[{KEY}]])"),
                ));
            };
            for (i, t) in aot.iter().enumerate() {
                let e =
                    entry(t).map_err(|m| Error::input(path, format!("entry {}: {m}", i + 1)))?;
                if !seen.insert(e.id.clone()) {
                    return Err(Error::input(
                        path,
                        format!("entry {}: {} is quarantined twice", i + 1, e.id),
                    ));
                }
                entries.push(e);
            }
        }
        Ok(Quarantine {
            path: path.to_owned(),
            doc,
            entries,
            max_days: DEFAULT_MAX_DAYS,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Entries in effect on `today`: neither expired nor refused.
    pub fn active(&self, today: Date) -> Active<'_> {
        let mut active = Active::default();
        for e in self
            .entries
            .iter()
            .filter(|e| !e.expired(today) && e.refusal(today, self.max_days).is_none())
        {
            if e.id.contains('*') {
                active.patterns.push(e);
            } else {
                active.exact.insert(e.id.as_str(), e);
            }
        }
        active
    }

    /// Entries that are refused (see [`Entry::refusal`]), with the reason.
    pub fn refused(&self, today: Date) -> Vec<(&Entry, String)> {
        self.entries
            .iter()
            .filter(|e| !e.expired(today))
            .filter_map(|e| e.refusal(today, self.max_days).map(|why| (e, why)))
            .collect()
    }

    /// The longest an entry may last, in days from today.
    pub fn max_days(&self) -> u32 {
        self.max_days
    }

    /// Entries past their date.
    pub fn expired(&self, today: Date) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.expired(today)).collect()
    }

    /// Append an entry at the end of the file.
    pub fn add(&mut self, e: Entry) -> std::result::Result<(), String> {
        if self.get(&e.id).is_some() {
            return Err(format!("{} is already quarantined", e.id));
        }
        if matches_everything(&e.id) {
            return Err(format!(
                "{} would quarantine every test; a pattern needs a letter or digit outside its `*`s",
                e.id
            ));
        }
        let was_empty = self.entries.is_empty() && self.to_text().trim().is_empty();
        let mut t = Table::new();
        t["id"] = value(e.id.as_str());
        t["reason"] = value(e.reason.as_str());
        if let Some(o) = &e.owner {
            t["owner"] = value(o.as_str());
        }
        t["expires"] = value(e.expires.toml());
        // A blank line between entries; a new file starts with a header saying what it is.
        t.decor_mut().set_prefix(if was_empty {
            format!("{HEADER}\n")
        } else {
            "\n".to_owned()
        });
        let aot = self
            .doc
            .entry(KEY)
            .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
            .as_array_of_tables_mut()
            .ok_or_else(|| format!("`{KEY}` must be an array of tables"))?;
        aot.push(t);
        self.entries.push(e);
        Ok(())
    }

    /// Remove the entry of `id` (and the comment above it); `false` when there is none.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(i) = self.entries.iter().position(|e| e.id == id) else {
            return false;
        };
        self.entries.remove(i);
        let Some(aot) = self.doc.get_mut(KEY).and_then(Item::as_array_of_tables_mut) else {
            return true;
        };
        let removed = aot.remove(i);
        // The comment block right above an entry goes with it; paragraphs above that (a file
        // header, a note on a group of entries) stay, on the next entry or at the end.
        let prefix = removed
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or_default();
        let lines: Vec<&str> = prefix.split_inclusive('\n').collect();
        let own_from = lines
            .iter()
            .rposition(|l| l.trim().is_empty())
            .map_or(0, |i| i + 1);
        let keep = lines[..own_from].concat();
        if !keep.trim().is_empty() {
            if let Some(next) = aot.get_mut(i) {
                let own = next
                    .decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .unwrap_or_default()
                    .trim_start_matches('\n')
                    .to_owned();
                next.decor_mut().set_prefix(format!("{keep}{own}"));
            } else {
                let gap = if aot.is_empty() { "" } else { "\n" };
                let trailing = self.doc.trailing().as_str().unwrap_or_default().to_owned();
                self.doc.set_trailing(format!("{gap}{keep}{trailing}"));
            }
        }
        true
    }

    /// The file's text as it will be written.
    pub fn to_text(&self) -> String {
        self.doc.to_string()
    }

    /// Write the file atomically (a temp file in the same directory, then a rename).
    pub fn save(&self) -> Result<()> {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let fail = |e: std::io::Error| {
            Error::Internal(format!("cannot write {}: {e}", self.path.display()))
        };
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(fail)?;
        std::io::Write::write_all(&mut tmp, self.to_text().as_bytes()).map_err(fail)?;
        tmp.persist(&self.path).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

fn entry(t: &Table) -> std::result::Result<Entry, String> {
    for (k, _) in t.iter() {
        if !["id", "reason", "owner", "expires"].contains(&k) {
            return Err(format!(
                "unknown key `{k}` (expected id, reason, owner, expires)"
            ));
        }
    }
    let string = |k: &str| -> std::result::Result<Option<String>, String> {
        match t.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| format!("`{k}` must be a string")),
        }
    };
    let id = string("id")?
        .filter(|s| !s.trim().is_empty())
        .ok_or("missing `id`")?;
    let reason = string("reason")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("{id}: missing `reason`"))?;
    let owner = string("owner")?;
    let expires = match t.get("expires") {
        None => {
            return Err(format!(
                "{id}: missing `expires` (a date, e.g. expires = 2026-12-31)"
            ));
        }
        Some(v) => {
            if let Some(dt) = v.as_datetime() {
                match (dt.date, dt.time) {
                    (Some(d), None) => Date {
                        year: i32::from(d.year),
                        month: u32::from(d.month),
                        day: u32::from(d.day),
                    },
                    _ => return Err(format!("{id}: `expires` must be a date (YYYY-MM-DD)")),
                }
            } else if let Some(s) = v.as_str() {
                s.parse().map_err(|e| format!("{id}: `expires`: {e}"))?
            } else {
                return Err(format!("{id}: `expires` must be a date (YYYY-MM-DD)"));
            }
        }
    };
    Ok(Entry {
        id,
        reason,
        owner,
        expires,
    })
}

/// The entries in effect, looked up by test id: an exact entry first, else the first pattern
/// (in file order) that matches.
#[derive(Default)]
pub struct Active<'a> {
    exact: HashMap<&'a str, &'a Entry>,
    patterns: Vec<&'a Entry>,
}

impl<'a> Active<'a> {
    pub fn get(&self, id: &str) -> Option<&'a Entry> {
        self.slot(id).copied()
    }

    /// Where the matching entry's reference is kept (what indexing hands out).
    fn slot(&self, id: &str) -> Option<&&'a Entry> {
        self.exact
            .get(id)
            .or_else(|| self.patterns.iter().find(|e| wildcard_match(&e.id, id)))
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }
}

impl<'a> std::ops::Index<&str> for Active<'a> {
    type Output = &'a Entry;

    /// The entry for an id known to be quarantined (`contains_key` said so), as a map of ids
    /// to entries would give it.
    fn index(&self, id: &str) -> &&'a Entry {
        self.slot(id)
            .unwrap_or_else(|| panic!("{id} is not quarantined"))
    }
}

/// Whether `text` matches `pattern`, where each `*` matches any run of characters (also none).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*` at all: an exact match
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_of_characters_and_nothing_else_is_special() {
        for (pattern, text, want) in [
            ("a::b", "a::b", true),
            ("a::b", "a::bc", false),
            ("app.net.*::*", "app.net.http::test_get[1]", true),
            ("app.net.*::*", "app.network::test", false),
            ("*::test_slow", "x.y::test_slow", true),
            ("*::test_slow", "x.y::test_slower", false),
            ("t::p[*]", "t::p[a b]", true),
            ("t::p[1]", "t::p1", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*", "", true),
            ("a*b*c", "a-c-b", false),
        ] {
            assert_eq!(wildcard_match(pattern, text), want, "{pattern} vs {text}");
        }
    }

    #[test]
    fn exact_entries_win_over_patterns_and_expired_ones_match_nothing() {
        let text = r#"
[[test]]
id = "app.net.*::*"
reason = "the network module is flaky"
expires = "2999-01-01"

[[test]]
id = "app.net.http::test_get"
reason = "tracked in #12"
expires = "2999-01-01"

[[test]]
id = "app.db.*"
reason = "old"
expires = "2000-01-01"
"#;
        let mut q = Quarantine::parse(text, Path::new("q.toml")).unwrap();
        q.max_days = 365_000;
        let active = q.active(Date::today());
        assert_eq!(active["app.net.http::test_get"].reason, "tracked in #12");
        assert_eq!(
            active["app.net.dns::test_resolve"].reason,
            "the network module is flaky"
        );
        assert!(!active.contains_key("app.db.pool::test_open"));
        assert!(!active.contains_key("app.network::test"));
    }

    #[test]
    fn entries_that_hide_everything_or_last_too_long_are_refused() {
        let today: Date = "2026-12-07".parse().unwrap();
        let entry = |id: &str, expires: &str| Entry {
            id: id.into(),
            reason: "r".into(),
            owner: None,
            expires: expires.parse().unwrap(),
        };
        for id in ["*", "**", "*::*", "*.*", "* *", "*[*]*", "*/*"] {
            assert!(
                entry(id, "2027-01-01").refusal(today, 180).is_some(),
                "{id}"
            );
        }
        for id in ["app.*", "*::test_slow", "a::b", "app.net.*::*"] {
            assert_eq!(entry(id, "2027-01-01").refusal(today, 180), None, "{id}");
        }
        assert!(entry("a::b", "2027-06-06").refusal(today, 180).is_some());
        assert_eq!(entry("a::b", "2027-06-05").refusal(today, 180), None);
        let mut q = Quarantine::parse("", Path::new("q.toml")).unwrap();
        assert!(q.add(entry("*::*", "2027-01-01")).is_err());
    }

    #[test]
    fn edits_keep_comments_and_order() {
        let text = "\
# Reviewed by the QA guild.

# slow network mock
[[test]]
id = \"a::one\"
reason = \"times out\"   # keep this
expires = 2099-01-31

# second
[[test]]
id = \"b::two\"
reason = \"race\"
owner = \"@b\"
expires = \"2020-01-01\"
";
        let mut q = Quarantine::parse(text, Path::new("q.toml")).unwrap();
        q.max_days = 365_000;
        assert_eq!(q.entries().len(), 2);
        let today: Date = "2026-01-01".parse().unwrap();
        assert_eq!(q.expired(today).len(), 1);
        assert!(q.active(today).contains_key("a::one"));
        q.add(Entry {
            id: "c::three".into(),
            reason: "flaky".into(),
            owner: None,
            expires: "2099-12-31".parse().unwrap(),
        })
        .unwrap();
        assert!(q.add(q.entries()[0].clone()).is_err());
        assert!(q.remove("b::two"));
        assert!(!q.remove("b::two"));
        let out = q.to_text();
        assert!(out.starts_with(
            "# Reviewed by the QA guild.\n\n# slow network mock\n[[test]]\nid = \"a::one\"\nreason = \"times out\"   # keep this\n"
        ), "{out}");
        assert!(
            !out.contains("b::two") && !out.contains("# second"),
            "{out}"
        );
        assert!(
            out.ends_with(
                "[[test]]\nid = \"c::three\"\nreason = \"flaky\"\nexpires = 2099-12-31\n"
            ),
            "{out}"
        );
        let again = Quarantine::parse(&out, Path::new("q.toml")).unwrap();
        assert_eq!(again.entries().len(), 2);
    }

    #[test]
    fn removing_the_first_entry_keeps_the_file_header() {
        let text = "# Header.\n\n# about one\n[[test]]\nid = \"one\"\nreason = \"r\"\nexpires = 2099-01-01\n\n[[test]]\nid = \"two\"\nreason = \"r\"\nexpires = 2099-01-01\n";
        let mut q = Quarantine::parse(text, Path::new("q.toml")).unwrap();
        assert!(q.remove("one"));
        assert_eq!(
            q.to_text(),
            "# Header.\n\n[[test]]\nid = \"two\"\nreason = \"r\"\nexpires = 2099-01-01\n"
        );
        assert!(q.remove("two"));
        assert_eq!(q.to_text().trim(), "# Header.");
    }

    #[test]
    fn a_new_file_gets_a_header() {
        let mut q = Quarantine::parse("", Path::new("q.toml")).unwrap();
        q.add(Entry {
            id: "a::b".into(),
            reason: "r".into(),
            owner: Some("@o".into()),
            expires: "2099-12-31".parse().unwrap(),
        })
        .unwrap();
        let out = q.to_text();
        assert!(out.starts_with("# Quarantined tests"), "{out}");
        assert!(Quarantine::parse(&out, Path::new("q.toml")).is_ok());
    }

    #[test]
    fn malformed_entries_are_input_errors() {
        for bad in [
            "[[test]]\nreason = \"r\"\nexpires = 2099-01-01\n",
            "[[test]]\nid = \"a\"\nexpires = 2099-01-01\n",
            "[[test]]\nid = \"a\"\nreason = \"r\"\n",
            "[[test]]\nid = \"a\"\nreason = \"r\"\nexpires = 2099-01-01\ncolour = 1\n",
            "[[test]]\nid = \"a\"\nreason = \"r\"\nexpires = \"soon\"\n",
            "tests = []\n",
            "[[test]]\nid = \"a\"\nreason = \"r\"\nexpires = 2099-01-01\n[[test]]\nid = \"a\"\nreason = \"r\"\nexpires = 2099-01-01\n",
        ] {
            assert!(
                Quarantine::parse(bad, Path::new("q.toml")).is_err(),
                "{bad}"
            );
        }
    }
}
