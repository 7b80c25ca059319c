//! RFC 3339 timestamps as both APIs write them (`2026-01-22T19:33:08Z`,
//! `2016-08-11T11:28:34.085+02:00`), to Unix seconds, the days counted by `crate::date`. Read by
//! hand, not by jiff's parser, which accepts more (`19:33Z` without seconds, `+0200` offsets).

use crate::date::Date;

/// Unix seconds of an RFC 3339 timestamp; `None` when it is not one.
pub fn unix_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_at_checked(10)?;
    let date: Date = date.parse().ok()?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let num = |t: &str| -> Option<i64> {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (h, m, sec) = (
        num(rest.get(0..2)?)?,
        num(rest.get(3..5)?)?,
        num(rest.get(6..8)?)?,
    );
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut zone = &rest[8..];
    if let Some(frac) = zone.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        zone = &frac[digits..];
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if zone.len() != 6 || zone.get(3..4)? != ":" {
                return None;
            }
            sign * (num(zone.get(1..3)?)? * 3600 + num(zone.get(4..6)?)? * 60)
        }
    };
    Some(date.to_days()? * 86_400 + h * 3600 + m * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::unix_seconds;

    #[test]
    fn parses_both_apis_formats() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2020-01-22T19:33:08Z"), Some(1_579_721_588));
        assert_eq!(
            unix_seconds("2016-08-11T11:28:34.085Z"),
            Some(1_470_914_914)
        );
        assert_eq!(
            unix_seconds("2016-08-11T13:28:34.085+02:00"),
            Some(1_470_914_914)
        );
        assert_eq!(
            unix_seconds("2016-08-11T06:28:34-05:00"),
            Some(1_470_914_914)
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for s in [
            "",
            "2020-01-22",
            "2020-01-22T19:33Z",
            "2020-13-22T19:33:08Z",
            "2020-01-22T25:33:08Z",
            "2020-01-22T19:33:08",
            "2020-01-22T19:33:08.Z",
            "2020-01-22T19:33:08+0200",
            "yesterday",
        ] {
            assert_eq!(unix_seconds(s), None, "{s}");
        }
    }
}
