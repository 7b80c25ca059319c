//! Bearer tokens: kept only as SHA-256 hashes, compared in constant time, and a token bucket
//! per token for the rate limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// Tokens shorter than this are refused at start-up: they could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// The accepted tokens, hashed.
pub struct Tokens {
    hashes: Vec<[u8; 32]>,
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Tokens {
    /// Parse tokens: one per line (file) or separated by commas or white space (environment).
    /// Blank lines are ignored, and so are comments: a line whose first non-blank character is
    /// `#`, and the rest of a line from a `#` that follows white space. A `#` inside a token
    /// is part of it (it used to cut the token short, silently). A UTF-8 byte-order mark is
    /// not part of the first token. What looks like a mistake — a `#` inside a token, a
    /// character outside printable ASCII, a token listed twice — is accepted but named in the
    /// returned warnings.
    pub fn parse(text: &str) -> Result<(Tokens, Vec<String>), String> {
        let mut warnings = Vec::new();
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => {
                warnings.push("a UTF-8 byte-order mark at the start was ignored".to_owned());
                rest
            }
            None => text,
        };
        let mut hashes: Vec<[u8; 32]> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            if line.trim_start().starts_with('#') {
                continue;
            }
            for tok in line
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                // A `#` after white space starts a comment to the end of the line.
                .take_while(|t| !t.starts_with('#'))
            {
                if tok.len() < MIN_TOKEN_LEN {
                    return Err(format!(
                        "a token (line {n}) is shorter than {MIN_TOKEN_LEN} characters"
                    ));
                }
                if tok.contains('#') {
                    warnings.push(format!(
                        "the token on line {n} contains `#`: it is taken whole (only a `#` at the \
                         start of a line or after white space starts a comment)"
                    ));
                }
                if !tok.chars().all(|c| c.is_ascii_graphic()) {
                    warnings.push(format!(
                        "the token on line {n} contains a character outside printable ASCII \
                         (an invisible or typographic character?); a client must send it byte \
                         for byte"
                    ));
                }
                let h = sha256(tok);
                if hashes.contains(&h) {
                    warnings.push(format!("the token on line {n} is listed twice"));
                    continue;
                }
                hashes.push(h);
            }
        }
        if hashes.is_empty() {
            return Err("no tokens".into());
        }
        Ok((Tokens { hashes }, warnings))
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The index of the presented token, comparing against every stored hash in constant
    /// time (no early exit, so timing does not tell how close a guess was).
    pub fn check(&self, presented: &str) -> Option<usize> {
        let h = sha256(presented);
        let mut index = 0u64;
        let mut any = Choice::from(0);
        for (i, stored) in self.hashes.iter().enumerate() {
            let eq = stored.ct_eq(&h);
            index.conditional_assign(&(i as u64), eq);
            any |= eq;
        }
        bool::from(any).then_some(index as usize)
    }

    /// A stable, non-secret key for token `i` (a prefix of its hash), for the buffer slot.
    pub fn key(&self, i: usize) -> String {
        self.hashes[i][..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Extract the token from an `Authorization: Bearer …` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let v = header?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A token bucket per token: `rate` requests a second on average, bursts up to `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<usize, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request from `token`'s bucket; `Err(seconds until one is available)` when empty.
    pub fn take(&self, token: usize) -> Result<(), f64> {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (level, last) = b.entry(token).or_insert((self.burst, now));
        *level = (*level + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else if self.rate > 0.0 {
            Err((1.0 - *level) / self.rate)
        } else {
            Err(f64::INFINITY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Tokens {
        Tokens::parse(text).unwrap().0
    }

    #[test]
    fn checks_tokens() {
        let t = parse("# ci tokens\nalpha-0123456789abcdef\n\nbeta-0123456789abcdef # b\n");
        assert_eq!(t.len(), 2);
        assert_eq!(t.check("alpha-0123456789abcdef"), Some(0));
        assert_eq!(t.check("beta-0123456789abcdef"), Some(1));
        assert_eq!(t.check("gamma-0123456789abcdef"), None);
        assert_eq!(t.check(""), None);
        assert_ne!(t.key(0), t.key(1));
        assert!(Tokens::parse("short").is_err());
        assert!(Tokens::parse("  \n# none\n").is_err());
        assert_eq!(parse("a-0123456789abcdef, b-0123456789abcdef").len(), 2);
    }

    #[test]
    fn a_hash_inside_a_token_is_part_of_it_and_a_bom_is_not() {
        // Issue 11: `#` cut the token short, so `abcdefgh#…` was accepted as `abcdefgh…`'s
        // prefix — a shorter secret than the operator wrote, or too short to start.
        let (t, warnings) = Tokens::parse("0123456789abcdef#ghijkl\n").unwrap();
        assert_eq!(t.check("0123456789abcdef#ghijkl"), Some(0));
        assert_eq!(t.check("0123456789abcdef"), None);
        assert!(warnings[0].contains('#'), "{warnings:?}");
        assert!(Tokens::parse("short#0123456789abcdef").is_ok());
        // A BOM (Windows editors) is not part of the first token.
        let (t, warnings) =
            Tokens::parse("\u{feff}alpha-0123456789abcdef\r\nbeta-0123456789abcdef\r\n").unwrap();
        assert_eq!(t.check("alpha-0123456789abcdef"), Some(0));
        assert_eq!(t.check("beta-0123456789abcdef"), Some(1));
        assert!(warnings[0].contains("byte-order mark"), "{warnings:?}");
        // Suspicious but accepted: named.
        let (t, warnings) =
            Tokens::parse("gamma-0123456789abcdef\u{200b}\ngamma-0123456789abcdef\u{200b}\n")
                .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[2].contains("twice"), "{warnings:?}");
        // Clean input: no warnings.
        assert!(
            Tokens::parse("  # c\nalpha-0123456789abcdef\n")
                .unwrap()
                .1
                .is_empty()
        );
    }

    #[test]
    fn parses_bearer() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn rate_limits_per_token() {
        let r = RateLimiter::new(0.0, 2.0);
        assert!(r.take(0).is_ok());
        assert!(r.take(0).is_ok());
        assert!(r.take(0).is_err());
        assert!(r.take(1).is_ok());
    }
}
