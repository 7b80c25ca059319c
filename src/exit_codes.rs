//! Exit codes of the `fedtest` binary, in one place so scripts can rely on them.
//!
//! fedtest's own trouble during `plan` is never an error: the plan falls back to every
//! candidate and exits [`OK`]. These codes are for commands that cannot do what was asked.

/// Success, including a plan that fell back to running every test.
pub const OK: i32 = 0;
/// Something unexpected inside fedtest (a bug or an environment problem).
pub const INTERNAL: i32 = 1;
/// The command line or the configuration file is wrong.
pub const USAGE: i32 = 2;
/// An input file (JUnit report, test list, changed-files list) is missing or malformed.
pub const BAD_INPUT: i32 = 3;
/// The history store is corrupt, from a newer fedtest, or not a fedtest store.
pub const STORE: i32 = 4;
/// `import`: GitHub or GitLab could not be used — unreachable, a refused token, a rate limit
/// that resets later than `--max-wait`, or runs failing in a row. The runs imported before it
/// stay in the history; the same command resumes.
pub const REMOTE: i32 = 5;
/// `gate`: a test that is not quarantined failed, or the reports held no executed test.
pub const TESTS_FAILED: i32 = 10;
