//! The one retry policy of every HTTP client (`import`'s and `federation`'s): a transient
//! failure is retried after a pause that starts at the client's first backoff, doubles per
//! retry up to [`MAX_BACKOFF`], and is jittered so clients that failed together do not retry
//! together. How many retries, and within what total time, each client decides.

use std::time::Duration;

/// Longest backoff between retries, however many retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The pause before retry `attempt` (0 for the first): `first` doubled per earlier retry,
/// capped at [`MAX_BACKOFF`], jittered.
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    jittered(
        first
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(MAX_BACKOFF),
    )
}

/// `d` scaled by a random factor in [0.5, 1.5).
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.5 + crate::random::unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..50 {
            let j = jittered(Duration::from_millis(100));
            assert!(j >= Duration::from_millis(50) && j < Duration::from_millis(150));
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = backoff(Duration::from_secs(1), 3);
        assert!(b >= Duration::from_secs(4) && b < Duration::from_secs(12));
        assert!(backoff(Duration::from_secs(1), 40) < MAX_BACKOFF.mul_f64(1.5));
    }
}
