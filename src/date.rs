//! Calendar dates: the quarantine file's `expires`, and the days of `import`'s timestamps.
//! The calendar is jiff's; what is parsed, and how leniently (`2026-1-5` is a date), is ours:
//! the quarantine file and the CI APIs' timestamps have always been read this way.

use std::fmt;

/// Day 0 of [`Date::from_days`].
const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

/// A calendar date (proleptic Gregorian), as TOML writes a local date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Today in UTC.
    pub fn today() -> Date {
        Date::from_civil(
            jiff::tz::Offset::UTC
                .to_datetime(jiff::Timestamp::now())
                .date(),
        )
    }

    /// The date `days` after 1970-01-01, within jiff's range (years -9999 to 9999; beyond it,
    /// the range's end).
    pub fn from_days(days: i64) -> Date {
        let d = jiff::Span::new()
            .try_days(days)
            .ok()
            .and_then(|span| EPOCH.checked_add(span).ok())
            .unwrap_or(if days < 0 {
                jiff::civil::Date::MIN
            } else {
                jiff::civil::Date::MAX
            });
        Date::from_civil(d)
    }

    /// Days since 1970-01-01 (`None` for a date that does not exist).
    pub fn to_days(self) -> Option<i64> {
        let span = EPOCH.until(self.civil()?).ok()?;
        Some(i64::from(span.get_days()))
    }

    /// `days` later (earlier when negative).
    pub fn add_days(self, days: i64) -> Date {
        Date::from_days(self.to_days().unwrap_or(0) + days)
    }

    /// The date as jiff's, when it exists.
    fn civil(self) -> Option<jiff::civil::Date> {
        jiff::civil::Date::new(
            i16::try_from(self.year).ok()?,
            i8::try_from(self.month).ok()?,
            i8::try_from(self.day).ok()?,
        )
        .ok()
    }

    fn from_civil(d: jiff::civil::Date) -> Date {
        Date {
            year: i32::from(d.year()),
            month: d.month().unsigned_abs().into(),
            day: d.day().unsigned_abs().into(),
        }
    }

    /// A real date of years 1 to 9999 (what TOML and the quarantine file can hold).
    fn valid(self) -> bool {
        self.civil().is_some() && (1..=9999).contains(&self.year)
    }

    /// The date as a TOML local date (the quarantine file's `expires`).
    pub fn toml(self) -> toml_edit::Datetime {
        toml_edit::Datetime {
            date: Some(toml_edit::Date {
                year: self.year as u16,
                month: self.month as u8,
                day: self.day as u8,
            }),
            time: None,
            offset: None,
        }
    }
}

impl std::str::FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Date, String> {
        let bad = || format!("{s:?} is not a date (YYYY-MM-DD)");
        let mut it = s.trim().splitn(3, '-');
        let mut next = || {
            it.next()
                .and_then(|p| p.parse::<u32>().ok())
                .ok_or_else(bad)
        };
        let (year, month, day) = (next()?, next()?, next()?);
        let d = Date {
            year: year as i32,
            month,
            day,
        };
        if d.valid() { Ok(d) } else { Err(bad()) }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_days() {
        for days in [-1000, 0, 59, 365, 10_957, 20_000, 2_932_896] {
            assert_eq!(Date::from_days(days).to_days(), Some(days));
        }
        assert_eq!(Date::from_days(2_932_896).to_string(), "9999-12-31");
        assert_eq!(Date::from_days(-719_528).to_string(), "0000-01-01");
        assert_eq!(Date::from_days(i64::MAX).to_string(), "9999-12-31");
        assert_eq!(
            "2026-1-5".parse::<Date>().unwrap().to_string(),
            "2026-01-05"
        );
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(
            "2024-02-29"
                .parse::<Date>()
                .unwrap()
                .add_days(1)
                .to_string(),
            "2024-03-01"
        );
        assert!("2023-02-29".parse::<Date>().is_err());
        assert!("2023-13-01".parse::<Date>().is_err());
    }
}
