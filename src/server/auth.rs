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
    /// Parse tokens: one per line (file) or separated by commas or white space (environment);
    /// blank lines and `#` comments are ignored.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut hashes = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for tok in line
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
            {
                if tok.len() < MIN_TOKEN_LEN {
                    return Err(format!(
                        "a token is shorter than {MIN_TOKEN_LEN} characters"
                    ));
                }
                hashes.push(sha256(tok));
            }
        }
        if hashes.is_empty() {
            return Err("no tokens".into());
        }
        Ok(Tokens { hashes })
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

    #[test]
    fn checks_tokens() {
        let t = Tokens::parse("# ci tokens\nalpha-0123456789abcdef\n\nbeta-0123456789abcdef # b\n")
            .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.check("alpha-0123456789abcdef"), Some(0));
        assert_eq!(t.check("beta-0123456789abcdef"), Some(1));
        assert_eq!(t.check("gamma-0123456789abcdef"), None);
        assert_eq!(t.check(""), None);
        assert_ne!(t.key(0), t.key(1));
        assert!(Tokens::parse("short").is_err());
        assert!(Tokens::parse("  \n# none\n").is_err());
        assert_eq!(
            Tokens::parse("a-0123456789abcdef, b-0123456789abcdef")
                .unwrap()
                .len(),
            2
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
