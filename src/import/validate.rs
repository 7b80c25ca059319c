//! What a server says about a run is checked against its expected shape before it is put in a
//! URL or stored (issue 18): a head commit of `..` would turn `commits/{sha}` into the commit
//! listing, a branch with a newline or an escape sequence would reach terminals and CI logs
//! through every later message, and a run dated in the future would make every later import
//! skip everything as older than the history.

use std::time::{SystemTime, UNIX_EPOCH};

/// A run may start this far after our clock (clocks differ a little) before it counts as from
/// the future.
pub const CLOCK_SKEW_SECS: i64 = 10 * 60;
/// Longest branch name stored (git allows more; no CI branch comes near it).
const MAX_BRANCH_BYTES: usize = 1024;
/// Run attempts GitHub allows are far fewer (re-runs stop at 50).
pub const MAX_ATTEMPT: u32 = 1000;

/// A commit id: 40 (SHA-1) or 64 (SHA-256) hex digits, lowercased.
pub fn commit(sha: &str) -> Result<String, String> {
    if matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(format!("commit id {} is not a hex commit id", escaped(sha)))
    }
}

/// A branch or tag name: not empty, no control characters, at most 1 KiB.
pub fn branch(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > MAX_BRANCH_BYTES || name.chars().any(char::is_control) {
        Err(format!(
            "branch {} is not a usable branch name",
            escaped(name)
        ))
    } else {
        Ok(name.to_owned())
    }
}

/// A start time (Unix seconds) that is neither missing nor in the future.
pub fn started_at(at: Option<i64>, now: i64) -> Result<i64, String> {
    match at {
        None => Err("it has no usable start time".to_owned()),
        Some(t) if t > now.saturating_add(CLOCK_SKEW_SECS) => Err(format!(
            "it is dated {}s in the future (a run from the future would make every later \
             import skip everything as older than the history)",
            t - now
        )),
        Some(t) => Ok(t),
    }
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A short word from a server (an event, a user name) as it may appear in a message: as is
/// when it is plain, else quoted with escapes, cut at 100 characters.
pub fn quoted(text: &str) -> String {
    let short: String = text.chars().take(100).collect();
    let more = if short.len() < text.len() { "…" } else { "" };
    if !short.is_empty()
        && short
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c))
    {
        format!("{short}{more}")
    } else {
        format!("{:?}{more}", short)
    }
}

/// Text from a server, quoted with escapes (no control character reaches a terminal), cut at
/// 100 characters.
fn escaped(text: &str) -> String {
    let short: String = text.chars().take(100).collect();
    let more = if short.len() < text.len() { "…" } else { "" };
    format!("{short:?}{more}")
}

/// A file path from a server (a commit's changed files) that may be stored.
pub fn file_path(path: &str) -> bool {
    !path.is_empty() && path.len() <= 4096 && !path.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids() {
        let sha = "ABCDEF0123456789abcdef0123456789abcdef01";
        assert_eq!(commit(sha).unwrap(), sha.to_ascii_lowercase());
        assert!(commit(&"a".repeat(64)).is_ok());
        for bad in [
            "..",
            "",
            "abc",
            &"g".repeat(40),
            &format!("{}\n", &sha[..39]),
        ] {
            assert!(commit(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            commit("..").unwrap_err(),
            "commit id \"..\" is not a hex commit id"
        );
    }

    #[test]
    fn branches() {
        assert!(branch("feature/x-1").is_ok());
        assert!(branch("gh-readonly-queue/main/pr-1-abc").is_ok());
        for bad in ["", "main\nINFO imported", "x\u{1b}[31m", &"b".repeat(2000)] {
            assert!(branch(bad).is_err(), "{bad:?}");
        }
        assert!(branch("a\u{1b}[2J").unwrap_err().contains("\\u{1b}"));
    }

    #[test]
    fn start_times() {
        let now = 1_800_000_000;
        assert_eq!(started_at(Some(now - 5), now), Ok(now - 5));
        assert_eq!(started_at(Some(now + 60), now), Ok(now + 60));
        assert!(started_at(Some(now + 86_400), now).is_err());
        assert!(started_at(Some(i64::MAX), now).is_err());
        assert!(started_at(None, now).is_err());
    }
}
