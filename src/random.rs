//! The one source of randomness: the operating system's (`getrandom`). Update ids, retry
//! jitter, CI report delimiters and the server's privacy noise all draw from here.

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source");
    b
}

/// 64 random bits.
pub fn u64() -> u64 {
    u64::from_le_bytes(bytes())
}

/// A uniform number in [0, 1) (53 random bits).
pub fn unit() -> f64 {
    (u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_stay_in_range() {
        assert_ne!(bytes::<16>(), bytes::<16>());
        for _ in 0..100 {
            let u = unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
