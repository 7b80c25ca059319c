//! Streaming a JUnit report into raw [`Attempt`]s.
//!
//! quick-xml parses the tags; text and the subtrees the reader does not look into are
//! skipped by `skip` without being buffered, so memory holds the attempts and one tag at a
//! time. Dialect differences the reader handles, each checked against a real report under
//! `tests/fixtures/junit/`:
//!
//! - root `<testsuites>` or a single `<testsuite>` (Surefire, Gradle), nested suites
//!   (PHPUnit, node), `<testcase>` directly under `<testsuites>` (node);
//! - classname from `classname`, else `class`; `file` from the row or an enclosing suite;
//! - `flakyFailure`/`flakyError`/`rerunFailure`/`rerunError` children (nextest, Surefire);
//! - pytest-rerunfailures writes each rerun as an extra empty `<testcase>` row *before* the
//!   final one, which would read as a pass: in a pytest report, every row of a test but its
//!   last stands for a failed execution (the plugin reruns only after a failure);
//! - node's reporter puts `classname="test"` on every row and the `describe` names only in
//!   the enclosing suites, so tests with the same title in two `describe`s would collide:
//!   in a node report (recognised by its trailing `<!-- duration_ms … -->` summary) the
//!   classname becomes the suite path, `outer > inner`;
//! - `time` is metadata and never an error: missing, negative or unparsable is 0, and
//!   thousands separators (`1,234.5`, Surefire) are accepted.
//!
//! Characters XML 1.0 forbids — a raw control byte, or a reference such as `&#1;` or `&#27;` —
//! make the report invalid, with its line and column (see `position`). With
//! [`Limits::printable_ids`] (what `record` reads with), a test whose name, classname or suite
//! name would not print as it is — a control character, a line separator, a leading `::`, a
//! `##[` — is refused as well: a plan could not name it (issue 11).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::error::JunitError;
use super::group::group;
use super::model::{Attempt, Limits, Status, TestCase};
use super::paths::expand_paths;
use super::position::{Forbidden, LineCol, Tracked};
use super::skip::{SkipError, skip_subtree, skip_text};

/// Expand `inputs`, read every report and group the attempts into one result per test.
/// Fails on the first unreadable or invalid report.
pub fn read_reports(inputs: &[String], limits: &Limits) -> Result<Vec<TestCase>, JunitError> {
    let files = expand_paths(inputs)?;
    let mut attempts = Vec::new();
    for file in &files {
        attempts.extend(read_file(file, limits)?);
    }
    if attempts.is_empty() {
        let paths = if inputs.is_empty() {
            "(no report paths given)".to_owned()
        } else {
            inputs.join(", ")
        };
        return Err(JunitError::NoTestCasesIn { paths });
    }
    Ok(group(attempts))
}

/// Read one report file. Its size is checked against `limits.max_file_bytes` before reading.
pub fn read_file(path: &Path, limits: &Limits) -> Result<Vec<Attempt>, JunitError> {
    let label = path.display().to_string();
    let io_err = |source| JunitError::Io {
        path: label.clone(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(io_err(std::io::Error::other("is a directory")));
    }
    if meta.len() > limits.max_file_bytes {
        return Err(JunitError::TooLarge {
            path: label,
            size: meta.len(),
            limit: limits.max_file_bytes,
        });
    }
    read_from(BufReader::with_capacity(64 * 1024, file), &label, limits)
}

/// Parse one report from any reader; `label` names it in errors. Streams: the input is
/// never held whole, nor is any text or CDATA in it.
pub fn read_from<R: BufRead>(
    reader: R,
    label: &str,
    limits: &Limits,
) -> Result<Vec<Attempt>, JunitError> {
    Parser::new(label, limits).run(reader)
}

/// What an open element the parser tracks is.
enum Open {
    Suites,
    Suite { file: Option<String>, path: u32 },
    Case,
}

struct OpenElement {
    name: String,
    kind: Open,
}

/// The `<testcase>` being read.
struct Row {
    attempt: Attempt,
    suite_path: u32,
}

struct Parser<'a> {
    label: &'a str,
    limits: &'a Limits,
    stack: Vec<OpenElement>,
    root_seen: bool,
    root_closed: bool,
    row: Option<Row>,
    attempts: Vec<Attempt>,
    /// Suite path (`outer > inner`) of each attempt, as an index into `suite_paths`; only
    /// used for node reports.
    attempt_suite: Vec<u32>,
    suite_paths: Vec<String>,
    pytest: bool,
    node_summary: bool,
}

/// A problem found while handling an event, located by the caller.
enum Problem {
    Error(JunitError),
    /// Not UTF-8 somewhere in the event; the caller finds the byte.
    Encoding,
    /// The XML declaration names another encoding.
    DeclaredEncoding(String),
    Malformed(String),
    InvalidCase(String),
    NotJunit(String),
    TooDeep,
    Doctype,
    Skip(SkipError),
    Forbidden(Forbidden),
    /// A name that cannot be one line of a plan: the attribute and why.
    Unprintable(&'static str, String),
}

impl From<SkipError> for Problem {
    fn from(e: SkipError) -> Self {
        Problem::Skip(e)
    }
}

impl<'a> Parser<'a> {
    fn new(label: &'a str, limits: &'a Limits) -> Self {
        Parser {
            label,
            limits,
            stack: Vec::new(),
            root_seen: false,
            root_closed: false,
            row: None,
            attempts: Vec::new(),
            attempt_suite: Vec::new(),
            suite_paths: vec![String::new()],
            pytest: false,
            node_summary: false,
        }
    }

    fn run<R: BufRead>(mut self, reader: R) -> Result<Vec<Attempt>, JunitError> {
        let mut xml = Reader::from_reader(Tracked::new(reader, self.limits.max_file_bytes));
        {
            let config = xml.config_mut();
            // End tags are matched here, because the skipper consumes some of them.
            config.check_end_names = false;
            config.allow_unmatched_ends = true;
        }
        self.check_utf16(&mut xml)?;
        let mut buf = Vec::new();
        let mut first = true;
        loop {
            // Text is skipped without buffering once the first event is past (before it,
            // quick-xml must see the start of the input for the BOM and declaration).
            if !first
                && (!self.stack.is_empty() || self.root_closed)
                && let Err(e) = skip_text(&mut xml, self.root_closed)
            {
                return Err(self.locate(&xml, Problem::Skip(e), None));
            }
            first = false;
            if buf.capacity() > 1 << 20 {
                buf = Vec::new();
            } else {
                buf.clear();
            }
            // quick-xml counts offsets itself; map its error offsets onto ours.
            let (ours, theirs) = (xml.get_ref().pos(), xml.buffer_position());
            xml.get_mut().start_recording();
            let event = xml.read_event_into(&mut buf);
            xml.get_mut().stop_recording();
            let outcome = match event {
                Err(e) => {
                    let offset = (xml.error_position() + ours).saturating_sub(theirs);
                    let problem = match e {
                        quick_xml::Error::Io(_) if xml.get_ref().forbidden().is_some() => {
                            Problem::Forbidden(xml.get_ref().forbidden().expect("checked"))
                        }
                        quick_xml::Error::Io(_) if xml.get_ref().over_limit() => {
                            Problem::Error(self.too_large())
                        }
                        quick_xml::Error::Io(io) => Problem::Error(JunitError::Io {
                            path: self.label.to_owned(),
                            source: std::io::Error::new(io.kind(), io.to_string()),
                        }),
                        quick_xml::Error::Encoding(_) => Problem::Encoding,
                        other => Problem::Malformed(other.to_string()),
                    };
                    return Err(self.locate(&xml, problem, Some(offset)));
                }
                Ok(Event::Eof) => break,
                Ok(event) => self.handle(event, &mut xml),
            };
            if let Err(problem) = outcome {
                return Err(self.locate(&xml, problem, None));
            }
        }
        if let Some(open) = self.stack.last() {
            let message = format!("unexpected end of file: <{}> is not closed", open.name);
            return Err(self.locate(&xml, Problem::Malformed(message), Some(u64::MAX)));
        }
        if self.attempts.is_empty() {
            let detail = if xml.get_ref().pos() == 0 {
                " (the file is empty)"
            } else if !self.root_seen {
                " (no root element)"
            } else {
                ""
            };
            return Err(JunitError::NoTestCases {
                path: self.label.to_owned(),
                detail,
            });
        }
        Ok(self.finish())
    }

    /// UTF-16 is the one non-UTF-8 encoding a report plausibly arrives in (PowerShell's
    /// `>` redirection); say so instead of pointing at its first byte.
    fn check_utf16<R: BufRead>(&self, xml: &mut Reader<Tracked<R>>) -> Result<(), JunitError> {
        let mut stream = xml.stream();
        let start = match stream.fill_buf() {
            Ok(start) => start,
            // Reported by the first read with its position.
            Err(_) => return Ok(()),
        };
        if start.starts_with(&[0xFF, 0xFE]) || start.starts_with(&[0xFE, 0xFF]) {
            return Err(JunitError::Encoding {
                path: self.label.to_owned(),
                line: 1,
                column: 1,
                message: "the report is UTF-16 (byte order mark); convert it to UTF-8".into(),
            });
        }
        Ok(())
    }

    fn too_large(&self) -> JunitError {
        JunitError::TooLarge {
            path: self.label.to_owned(),
            size: self.limits.max_file_bytes.saturating_add(1),
            limit: self.limits.max_file_bytes,
        }
    }

    /// Turn a problem into an error located at `offset` (default: the start of the event
    /// being handled; `u64::MAX`: the current position).
    fn locate<R: BufRead>(
        &self,
        xml: &Reader<Tracked<R>>,
        problem: Problem,
        offset: Option<u64>,
    ) -> JunitError {
        let tracked = xml.get_ref();
        let (event_pos, event_at) = tracked.record_start();
        let at = match offset {
            Some(offset) => tracked.locate(offset),
            None => event_at,
        };
        let path = self.label.to_owned();
        let (line, column) = (at.line, at.column);
        match problem {
            Problem::Error(e) => e,
            Problem::Encoding => {
                let (at, message) = match std::str::from_utf8(tracked.record()) {
                    Err(e) => {
                        let bad = tracked.record().get(e.valid_up_to()).copied();
                        let at = tracked.locate(event_pos + e.valid_up_to() as u64);
                        let message = match bad {
                            Some(byte) => format!("invalid byte 0x{byte:02X}"),
                            None => "truncated character".to_owned(),
                        };
                        (at, message)
                    }
                    Ok(_) => (at, "invalid UTF-8".to_owned()),
                };
                JunitError::Encoding {
                    path,
                    line: at.line,
                    column: at.column,
                    message: format!("{message}; reports must be UTF-8"),
                }
            }
            Problem::DeclaredEncoding(encoding) => JunitError::Encoding {
                path,
                line,
                column,
                message: format!(
                    "declared encoding \"{encoding}\" is not supported; reports must be UTF-8"
                ),
            },
            Problem::Malformed(message) => JunitError::Malformed {
                path,
                line,
                column,
                message,
            },
            Problem::InvalidCase(message) => JunitError::InvalidTestCase {
                path,
                line,
                column,
                message,
            },
            Problem::NotJunit(root) => JunitError::NotJunit {
                path,
                line,
                column,
                root,
            },
            Problem::TooDeep => JunitError::TooDeep {
                path,
                line,
                column,
                limit: self.limits.max_depth,
            },
            Problem::Doctype => JunitError::Doctype { path, line, column },
            Problem::Forbidden(f) => forbidden(path.clone(), tracked, f),
            Problem::Unprintable(attribute, message) => JunitError::UnprintableName {
                path,
                line,
                column,
                attribute,
                message,
            },
            Problem::Skip(e) => {
                let malformed = |at: LineCol, message: String| JunitError::Malformed {
                    path: path.clone(),
                    line: at.line,
                    column: at.column,
                    message,
                };
                match e {
                    SkipError::Io(_) if tracked.forbidden().is_some() => {
                        forbidden(path.clone(), tracked, tracked.forbidden().expect("checked"))
                    }
                    SkipError::Io(_) if tracked.over_limit() => self.too_large(),
                    SkipError::Io(source) => JunitError::Io {
                        path: path.clone(),
                        source,
                    },
                    SkipError::Eof { open } => malformed(
                        tracked.at(),
                        format!("unexpected end of file: <{open}> is not closed"),
                    ),
                    SkipError::Mismatch {
                        expected,
                        found,
                        at,
                    } => malformed(at, format!("expected </{expected}>, found </{found}>")),
                    SkipError::TooDeep { at } => JunitError::TooDeep {
                        path: path.clone(),
                        line: at.line,
                        column: at.column,
                        limit: self.limits.max_depth,
                    },
                    SkipError::BadMarkup { message, at } => malformed(at, message),
                    SkipError::TextOutsideRoot { at } => {
                        malformed(at, "text outside the root element".to_owned())
                    }
                }
            }
        }
    }

    fn handle<R: BufRead>(
        &mut self,
        event: Event<'_>,
        xml: &mut Reader<Tracked<R>>,
    ) -> Result<(), Problem> {
        match event {
            Event::Start(start) => self.open(&start, true, xml),
            Event::Empty(start) => self.open(&start, false, xml),
            Event::End(end) => self.close(end.name().as_ref()),
            Event::Text(text) => {
                // Only text before the root reaches quick-xml (the rest is skipped).
                if self.stack.is_empty() && text.as_ref().bytes().any(|b| !b.is_ascii_whitespace())
                {
                    return Err(Problem::Malformed("text outside the root element".into()));
                }
                Ok(())
            }
            Event::CData(_) | Event::GeneralRef(_) => {
                if self.stack.is_empty() {
                    return Err(Problem::Malformed("text outside the root element".into()));
                }
                Ok(())
            }
            Event::Comment(comment) => {
                // node's junit reporter ends every report with summary comments.
                if comment.as_ref().trim_start().starts_with("duration_ms ") {
                    self.node_summary = true;
                }
                Ok(())
            }
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding() {
                    let encoding = encoding.trim().to_ascii_lowercase();
                    if !matches!(encoding.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                        return Err(Problem::DeclaredEncoding(encoding));
                    }
                }
                Ok(())
            }
            Event::DocType(doctype) => {
                let text = doctype.as_ref();
                // A bare `<!DOCTYPE testsuites>` is harmless; an internal subset can declare
                // entities (billion laughs) and an external id points at a DTD that could.
                if !self.stack.is_empty()
                    || self.root_seen
                    || text.contains('[')
                    || text.contains("SYSTEM")
                    || text.contains("PUBLIC")
                {
                    return Err(Problem::Doctype);
                }
                Ok(())
            }
            Event::PI(_) => Ok(()),
            Event::Eof => Ok(()),
        }
    }

    fn depth_check(&self) -> Result<(), Problem> {
        if self.stack.len() + 1 > self.limits.max_depth {
            return Err(Problem::TooDeep);
        }
        Ok(())
    }

    fn open<R: BufRead>(
        &mut self,
        start: &BytesStart<'_>,
        has_content: bool,
        xml: &mut Reader<Tracked<R>>,
    ) -> Result<(), Problem> {
        self.depth_check()?;
        let qname = start.name();
        let local = qname.local_name();
        let tag = local.as_ref();
        let Some(parent) = self.stack.last() else {
            return self.open_root(start, tag, has_content);
        };
        match (&parent.kind, tag) {
            (Open::Suites | Open::Suite { .. }, "testsuite") => {
                let name = attr(start, "name")?.unwrap_or_default();
                self.printable("testsuite name", &name)?;
                let file =
                    attr(start, "file")?
                        .map(Cow::into_owned)
                        .or_else(|| match &parent.kind {
                            Open::Suite { file, .. } => file.clone(),
                            _ => None,
                        });
                let parent_path = match parent.kind {
                    Open::Suite { path, .. } => path,
                    _ => 0,
                };
                let path = self.suite_path(parent_path, name.trim());
                if has_content {
                    self.stack.push(OpenElement {
                        name: qname.as_ref().to_owned(),
                        kind: Open::Suite { file, path },
                    });
                }
                Ok(())
            }
            (Open::Suites | Open::Suite { .. }, "testcase") => {
                let (suite_file, suite_path) = match &parent.kind {
                    Open::Suite { file, path } => (file.clone(), *path),
                    _ => (None, 0),
                };
                let row = self.start_row(start, suite_file, suite_path)?;
                if has_content {
                    self.row = Some(row);
                    self.stack.push(OpenElement {
                        name: qname.as_ref().to_owned(),
                        kind: Open::Case,
                    });
                } else {
                    self.push_row(row)?;
                }
                Ok(())
            }
            (Open::Case, child) => {
                if let Some(row) = self.row.as_mut() {
                    let attempt = &mut row.attempt;
                    match child {
                        "failure" => attempt.status = worst(attempt.status, Status::Failed),
                        "error" => attempt.status = worst(attempt.status, Status::Errored),
                        "skipped" => attempt.status = worst(attempt.status, Status::Skipped),
                        "flakyFailure" | "flakyError" | "rerunFailure" | "rerunError" => {
                            attempt.embedded_failures = attempt.embedded_failures.saturating_add(1);
                            attempt.embedded_time += parse_time(attr(start, "time")?.as_deref());
                        }
                        _ => {}
                    }
                }
                self.skip(qname.as_ref(), has_content, xml)
            }
            _ => self.skip(qname.as_ref(), has_content, xml),
        }
    }

    fn skip<R: BufRead>(
        &self,
        name: &str,
        has_content: bool,
        xml: &mut Reader<Tracked<R>>,
    ) -> Result<(), Problem> {
        if has_content {
            skip_subtree(xml, name, self.stack.len() + 1, self.limits.max_depth)?;
        }
        Ok(())
    }

    fn open_root(
        &mut self,
        start: &BytesStart<'_>,
        tag: &str,
        has_content: bool,
    ) -> Result<(), Problem> {
        if self.root_seen {
            return Err(Problem::Malformed(format!(
                "second root element <{}>",
                start.name().as_ref()
            )));
        }
        self.root_seen = true;
        let kind = match tag {
            "testsuites" => {
                // pytest always names its root so (src/_pytest/junitxml.py).
                self.pytest = attr(start, "name")?.as_deref() == Some("pytest tests");
                Open::Suites
            }
            "testsuite" => {
                let name = attr(start, "name")?.unwrap_or_default();
                self.printable("testsuite name", &name)?;
                let path = self.suite_path(0, name.trim());
                Open::Suite {
                    file: attr(start, "file")?.map(Cow::into_owned),
                    path,
                }
            }
            other => return Err(Problem::NotJunit(other.to_owned())),
        };
        if has_content {
            self.stack.push(OpenElement {
                name: start.name().as_ref().to_owned(),
                kind,
            });
        } else {
            self.root_closed = true;
        }
        Ok(())
    }

    fn close(&mut self, name: &str) -> Result<(), Problem> {
        let Some(open) = self.stack.pop() else {
            return Err(Problem::Malformed(format!(
                "end tag </{name}> without a start tag"
            )));
        };
        if open.name != name {
            return Err(Problem::Malformed(format!(
                "expected </{}>, found </{name}>",
                open.name
            )));
        }
        if let Open::Case = open.kind
            && let Some(row) = self.row.take()
        {
            self.push_row(row)?;
        }
        if self.stack.is_empty() {
            self.root_closed = true;
        }
        Ok(())
    }

    fn suite_path(&mut self, parent: u32, name: &str) -> u32 {
        let parent = &self.suite_paths[parent as usize];
        let path = match (parent.is_empty(), name.is_empty()) {
            (_, true) => parent.clone(),
            (true, false) => name.to_owned(),
            (false, false) => format!("{parent} > {name}"),
        };
        if self.suite_paths.last() != Some(&path) {
            self.suite_paths.push(path);
        }
        (self.suite_paths.len() - 1) as u32
    }

    fn start_row(
        &self,
        start: &BytesStart<'_>,
        suite_file: Option<String>,
        suite_path: u32,
    ) -> Result<Row, Problem> {
        let mut name = None;
        let mut classname = None;
        let mut class = None;
        let mut file = None;
        let mut line = None;
        let mut time = None;
        for a in start.attributes() {
            let a = a.map_err(|e| Problem::Malformed(e.to_string()))?;
            let slot = match a.key.local_name().as_ref() {
                "name" => &mut name,
                "classname" => &mut classname,
                "class" => &mut class,
                "file" => &mut file,
                "line" => &mut line,
                "time" => &mut time,
                _ => continue,
            };
            *slot = Some(value(&a)?);
        }
        let name = name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Err(Problem::InvalidCase(
                "missing or empty name attribute".into(),
            ));
        }
        let classname = classname
            .filter(|c| !c.trim().is_empty())
            .or(class)
            .map(|c| c.trim().to_owned())
            .unwrap_or_default();
        self.printable("id", &super::model::test_id(&classname, name))?;
        let name = name.to_owned();
        Ok(Row {
            attempt: Attempt {
                classname,
                name,
                file: file
                    .filter(|f| !f.is_empty())
                    .map(Cow::into_owned)
                    .or(suite_file),
                // A line that is not a positive number is dropped, not an error: it only
                // places an annotation.
                line: line
                    .and_then(|l| l.trim().parse::<u32>().ok())
                    .filter(|&l| l > 0),
                status: Status::Passed,
                time: parse_time(time.as_deref()),
                embedded_failures: 0,
                embedded_time: 0.0,
            },
            suite_path,
        })
    }

    /// With [`Limits::printable_ids`], refuse a name that cannot be one line of a plan.
    fn printable(&self, attribute: &'static str, value: &str) -> Result<(), Problem> {
        if !self.limits.printable_ids {
            return Ok(());
        }
        match crate::text::printable_id(value) {
            Some(why) => Err(Problem::Unprintable(attribute, why)),
            None => Ok(()),
        }
    }

    fn push_row(&mut self, row: Row) -> Result<(), Problem> {
        if self.attempts.len() as u64 >= self.limits.max_test_cases {
            return Err(Problem::Error(JunitError::TooManyTestCases {
                path: self.label.to_owned(),
                limit: self.limits.max_test_cases,
            }));
        }
        self.attempts.push(row.attempt);
        self.attempt_suite.push(row.suite_path);
        Ok(())
    }

    /// Per-file dialect fix-ups that need the whole file (see the module docs).
    fn finish(mut self) -> Vec<Attempt> {
        if self.node_summary && self.attempts.iter().all(|a| a.classname == "test") {
            for (attempt, &suite) in self.attempts.iter_mut().zip(&self.attempt_suite) {
                attempt.classname = self.suite_paths[suite as usize].clone();
            }
        }
        if self.pytest {
            let mut last: HashMap<String, usize> = HashMap::new();
            for (i, attempt) in self.attempts.iter().enumerate() {
                last.insert(attempt.id(), i);
            }
            if last.len() < self.attempts.len() {
                for (i, attempt) in self.attempts.iter_mut().enumerate() {
                    if last.get(&attempt.id()) != Some(&i) && attempt.status == Status::Passed {
                        attempt.status = Status::Failed;
                    }
                }
            }
        }
        self.attempts
    }
}

/// The error for a character XML 1.0 forbids, at the character (or its reference).
fn forbidden<R: BufRead>(path: String, tracked: &Tracked<R>, f: Forbidden) -> JunitError {
    let at = tracked.locate(f.offset);
    let what = match (f.reference, char::from_u32(f.code)) {
        (true, Some(_)) => format!("the character reference to U+{:04X}", f.code),
        (true, None) => "a character reference to no character".to_owned(),
        (false, _) => format!("the control character U+{:04X}", f.code),
    };
    JunitError::ForbiddenCharacter {
        path,
        line: at.line,
        column: at.column,
        message: format!("{what} is not allowed in XML 1.0"),
    }
}

/// The more severe of two row statuses: a failure beats a skip beats a pass.
fn worst(a: Status, b: Status) -> Status {
    fn rank(s: Status) -> u8 {
        match s {
            Status::Passed => 0,
            Status::Skipped => 1,
            Status::Failed => 2,
            Status::Errored => 3,
        }
    }
    if rank(b) > rank(a) { b } else { a }
}

fn value<'a>(a: &quick_xml::events::attributes::Attribute<'a>) -> Result<Cow<'a, str>, Problem> {
    a.normalized_value(XmlVersion::Implicit1_0)
        .map_err(|e| Problem::Malformed(format!("attribute `{}`: {e}", a.key.as_ref())))
}

fn attr<'a>(start: &'a BytesStart<'_>, key: &str) -> Result<Option<Cow<'a, str>>, Problem> {
    for a in start.attributes() {
        let a = a.map_err(|e| Problem::Malformed(e.to_string()))?;
        if a.key.local_name().as_ref() == key {
            return value(&a).map(Some);
        }
    }
    Ok(None)
}

/// Seconds from a `time` attribute; 0 when missing, unparsable, negative or not finite.
///
/// Accepts thousands separators: with both `,` and `.` the later one is the decimal
/// point; with only `,` it is a thousands separator when it groups digits by three
/// (`1,234`), else a decimal comma (`0,5`).
pub(crate) fn parse_time(raw: Option<&str>) -> f64 {
    let Some(raw) = raw else { return 0.0 };
    let raw = raw.trim();
    let normalized: Cow<'_, str> = match (raw.rfind(','), raw.rfind('.')) {
        (None, _) => Cow::Borrowed(raw),
        (Some(comma), Some(dot)) if dot > comma => Cow::Owned(raw.replace(',', "")),
        (Some(_), Some(_)) => Cow::Owned(raw.replace('.', "").replace(',', ".")),
        (Some(_), None) => {
            let groups: Vec<&str> = raw.split(',').collect();
            let thousands = groups[0].len() <= 3
                && !groups[0].is_empty()
                && groups[0] != "0"
                && groups[1..].iter().all(|g| g.len() == 3);
            if thousands {
                Cow::Owned(raw.replace(',', ""))
            } else {
                Cow::Owned(raw.replacen(',', ".", 1))
            }
        }
    };
    match normalized.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => t,
        _ => 0.0,
    }
}
