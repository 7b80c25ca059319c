//! `--budget`: how much of the suite a plan may run.

use std::fmt;
use std::str::FromStr;

/// How much to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Everything, reordered.
    All,
    /// A share (0..1) of the estimated test time.
    Share(f64),
    /// An amount of estimated test time, seconds.
    Seconds(f64),
    /// The smallest set whose expected share of failures caught reaches the target (0..1).
    Recall(f64),
}

impl FromStr for Budget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || {
            format!(
                "invalid budget {s:?}: expected \"all\", \"N%\", a duration like \"90s\" or \"5m\", or \"recall:0.95\""
            )
        };
        if t == "all" {
            return Ok(Budget::All);
        }
        if let Some(r) = t.strip_prefix("recall:") {
            let v: f64 = r.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!("invalid budget {s:?}: recall must be in (0, 1]"));
            }
            return Ok(if v >= 1.0 {
                Budget::All
            } else {
                Budget::Recall(v)
            });
        }
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!(
                    "invalid budget {s:?}: a percentage must be in (0, 100]"
                ));
            }
            return Ok(if v >= 100.0 {
                Budget::All
            } else {
                Budget::Share(v / 100.0)
            });
        }
        let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?);
        let v: f64 = num.trim().parse().map_err(|_| bad())?;
        let scale = match unit {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        // `1e308h` is finite, but not in seconds.
        if !(v.is_finite() && v > 0.0 && (v * scale).is_finite()) {
            return Err(bad());
        }
        Ok(Budget::Seconds(v * scale))
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budget::All => write!(f, "100%"),
            Budget::Share(s) => write!(f, "{}%", s * 100.0),
            Budget::Seconds(s) => write!(f, "{s}s"),
            Budget::Recall(r) => write!(f, "recall:{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("100%".parse(), Ok(Budget::All));
        assert_eq!("all".parse(), Ok(Budget::All));
        assert_eq!("25%".parse(), Ok(Budget::Share(0.25)));
        assert_eq!("90s".parse(), Ok(Budget::Seconds(90.0)));
        assert_eq!("5m".parse(), Ok(Budget::Seconds(300.0)));
        assert_eq!("1.5h".parse(), Ok(Budget::Seconds(5400.0)));
        assert_eq!("recall:0.95".parse(), Ok(Budget::Recall(0.95)));
        for bad in [
            "",
            "0%",
            "150%",
            "-5s",
            "5 parsecs",
            "recall:2",
            "recall:x",
            "NaNs",
        ] {
            assert!(bad.parse::<Budget>().is_err(), "{bad} should be rejected");
        }
    }
}
