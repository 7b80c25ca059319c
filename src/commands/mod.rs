//! One file per subcommand; each resolves its settings once, then calls the library.

pub mod demo;
pub mod eval;
pub mod flaky;
pub mod gate;
pub mod import;
pub mod model;
pub mod plan;
pub mod quarantine;
pub mod record;
pub mod run;
pub mod serve;
pub mod sync;

use std::path::Path;

use crate::ci::Env;
use crate::cli::BuildArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::plan::Plan;

pub use crate::ci::ResolvedBuild;

/// Record the build whose JUnit reports are `reports` (`record`, and `run` after its test
/// command): the build's settings resolved, then the library's record workflow.
pub fn record_reports(
    data_dir: &Path,
    config: &Config,
    reports: &[String],
    build: &BuildArgs,
    train: bool,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    // Parse everything before touching the store: a bad report leaves the history as it was.
    let results = crate::record::read_reports(reports, config, printer)?;
    let build = resolve_build(build, env, printer)?;
    crate::record::record_results(data_dir, config, &results, build, train, env, printer)
}

/// Resolve build metadata. A changed-files file that cannot be read is an input error; git
/// trouble only costs the changed files (with a warning), never the build.
pub fn resolve_build(args: &BuildArgs, env: &Env, printer: &Printer) -> Result<ResolvedBuild> {
    let ci = env.build();
    let base = args.base.clone().or(ci.base);
    let changed_files = if let Some(path) = &args.changed_files {
        Some(read_lines(path, printer)?)
    } else if let Some(base) = &base {
        match crate::git::changed_files(Path::new("."), base) {
            Ok(files) => Some(files),
            Err(e) => {
                printer.warn(&format!("changed files unknown: {e}"));
                None
            }
        }
    } else {
        None
    };
    Ok(ResolvedBuild {
        build_id: args.build.clone().or(ci.build_id),
        commit: args
            .commit
            .clone()
            .or(ci.commit)
            .or_else(|| crate::git::head_commit(Path::new("."))),
        branch: args.branch.clone().or(ci.branch),
        changed_files,
        base,
    })
}

/// The budget: `--budget`, else `plan.budget` from the configuration.
pub fn budget(arg: Option<&str>, config: &crate::config::Config) -> Result<crate::plan::Budget> {
    arg.unwrap_or(&config.plan.budget)
        .parse()
        .map_err(Error::Usage)
}

/// Read a list file: one entry a line, blank lines and surrounding white space ignored;
/// `-` reads standard input. A line that is not UTF-8 is skipped with a warning, not an error
/// (issue 11): one odd path in a runner's collection must not fail the step, as no other fault
/// of `plan` does.
pub fn read_lines(path: &Path, printer: &Printer) -> Result<Vec<String>> {
    let (bytes, label) = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| Error::input("<stdin>", e.to_string()))?;
        (bytes, "<stdin>".to_owned())
    } else {
        let bytes =
            std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
        (bytes, path.display().to_string())
    };
    let mut lines = Vec::new();
    let mut skipped: Vec<usize> = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(l) => {
                let l = l.trim();
                if !l.is_empty() {
                    lines.push(l.to_owned());
                }
            }
            Err(_) => skipped.push(i + 1),
        }
    }
    if !skipped.is_empty() {
        let shown: Vec<String> = skipped.iter().take(5).map(usize::to_string).collect();
        printer.warn(&format!(
            "{label}: skipped {} line{} that {} not UTF-8 (line {}{})",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" },
            if skipped.len() == 1 { "is" } else { "are" },
            shown.join(", "),
            if skipped.len() > 5 { ", …" } else { "" }
        ));
    }
    Ok(lines)
}

/// `--plan-file`: the plan as JSON, for a later step to read. A file that cannot be written is
/// a warning (the plan itself is on standard output or already running); its path when written.
pub fn write_plan_file(path: &Path, plan: &Plan, printer: &Printer) -> Option<String> {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        crate::plan::format::Format::Json
            .formatter()
            .write(plan, &mut out)?;
        std::io::Write::flush(&mut out)
    };
    match write() {
        Ok(()) => Some(path.display().to_string()),
        Err(e) => {
            printer.warn(&format!(
                "cannot write the plan file {}: {e}; continuing without it",
                path.display()
            ));
            None
        }
    }
}
