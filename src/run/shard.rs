//! Deterministic, duration-balanced shards without a server: every job of a matrix computes
//! the same assignment from the same plan and keeps its own part.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count`, both as the user writes them (`2/4`: the second of four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a shard: write I/N with 1 ≤ I ≤ N, e.g. 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard (0-based) of each test, given `(id, estimated seconds)` pairs.
///
/// Greedy longest-processing-time: tests from the longest down (ties by id) each go to the
/// shard with the least estimated time so far (ties: fewer tests, then the lower index). The
/// tie on test count spreads tests evenly when no durations are known (all zero).
pub fn assign(tests: &[(&str, f64)], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let seconds = |i: usize| {
        let s = tests[i].1;
        if s.is_finite() && s > 0.0 { s } else { 0.0 }
    };
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_by(|&a, &b| {
        seconds(b)
            .total_cmp(&seconds(a))
            .then_with(|| tests[a].0.cmp(tests[b].0))
    });
    let mut load = vec![(0.0_f64, 0_usize); count];
    let mut shard_of = vec![0; tests.len()];
    for i in order {
        let target = (0..count)
            .min_by(|&a, &b| {
                load[a]
                    .0
                    .total_cmp(&load[b].0)
                    .then(load[a].1.cmp(&load[b].1))
                    .then(a.cmp(&b))
            })
            .unwrap_or(0);
        load[target].0 += seconds(i);
        load[target].1 += 1;
        shard_of[i] = target;
    }
    shard_of
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "1", "a/b", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn longest_first_onto_the_least_loaded() {
        let tests = [
            ("a", 5.0),
            ("b", 4.0),
            ("c", 3.0),
            ("d", 3.0),
            ("e", 2.0),
            ("f", 1.0),
        ];
        // a→0 (5), b→1 (4), c→1 (7), d→0 (8), e→1 (9), f→0 (9).
        assert_eq!(assign(&tests, 2), [0, 1, 1, 0, 1, 0]);
        // No durations: round robin by id.
        let zero = [("b", 0.0), ("a", 0.0), ("c", f64::NAN)];
        assert_eq!(assign(&zero, 2), [1, 0, 0]);
        // Every test in exactly one shard, whatever the count.
        for n in 1..8 {
            let s = assign(&tests, n);
            assert!(s.iter().all(|&i| i < n));
            assert_eq!(s.len(), tests.len());
        }
    }
}
