//! Cron schedules as CronJobs write them: five fields (minute, hour, day of month, month, day of
//! week) with `*` or `?`, numbers, names (`JAN`..`DEC`, `SUN`..`SAT`, any case), ranges `a-b`,
//! steps `*/n`, `a-b/n` and `a/n` (from `a` to the field's end), and lists; or a macro:
//! `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`, and
//! `@every <duration>`.
//!
//! [`Schedule::next`] finds the next time the way Kubernetes' cron library does, in a time
//! zone: when both day fields are restricted a day matches either; when either is `*` both must
//! match. Around daylight-saving changes it walks wall-clock days and absolute hours, so a time
//! that does not exist (the skipped hour) is not run that day, and a time that occurs twice (the
//! repeated hour) runs twice, as in Kubernetes.
//!
//! Owns parsing and the arithmetic only; pure.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// Errors parsing a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five fields.
    #[error("expected exactly 5 fields, found {0}: [{1}]")]
    FieldCount(usize, String),
    /// An unknown `@` macro.
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    /// A value that is neither a number nor a name of the field.
    #[error("failed to parse int from {0}")]
    Value(String),
    /// A value below the field's minimum.
    #[error("beginning of range ({0}) below minimum ({1}): {2}")]
    BelowMinimum(u32, u32, String),
    /// A value above the field's maximum.
    #[error("end of range ({0}) above maximum ({1}): {2}")]
    AboveMaximum(u32, u32, String),
    /// A range whose start is after its end.
    #[error("beginning of range ({0}) beyond end of range ({1}): {2}")]
    Backwards(u32, u32, String),
    /// A step of zero.
    #[error("step of range should be a positive number: {0}")]
    ZeroStep(String),
    /// More than one `-` or `/`.
    #[error("too many hyphens or slashes: {0}")]
    Malformed(String),
    /// An `@every` duration that does not parse.
    #[error("failed to parse duration {0}")]
    Duration(String),
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Five fields as bit sets.
    Fields {
        /// Minutes 0-59.
        minute: u64,
        /// Hours 0-23.
        hour: u64,
        /// Days of the month 1-31.
        dom: u64,
        /// Months 1-12.
        month: u64,
        /// Days of the week 0-6 (Sunday is 0).
        dow: u64,
        /// The day-of-month field was `*` or `?`.
        dom_star: bool,
        /// The day-of-week field was `*` or `?`.
        dow_star: bool,
    },
    /// `@every`: a fixed delay after the previous time (whole seconds, at least one).
    Every(Duration),
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    name_base: u32,
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    name_base: 0,
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    name_base: 0,
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: MONTHS,
    name_base: 1,
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: DAYS,
    name_base: 0,
};

fn value(s: &str, b: &Bounds) -> Result<u32, CronError> {
    if let Some(i) = b.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(u32::try_from(i).unwrap_or(0) + b.name_base);
    }
    s.parse::<u32>().map_err(|_| CronError::Value(s.to_owned()))
}

/// One comma-separated part of a field: its bits and whether it was a bare `*`.
fn part(expr: &str, b: &Bounds) -> Result<(u64, bool), CronError> {
    let mut slash = expr.split('/');
    let range = slash.next().unwrap_or("");
    let step = slash.next();
    if slash.next().is_some() {
        return Err(CronError::Malformed(expr.to_owned()));
    }
    let mut dash = range.split('-');
    let low = dash.next().unwrap_or("");
    let high = dash.next();
    if dash.next().is_some() {
        return Err(CronError::Malformed(expr.to_owned()));
    }
    let (mut start, mut end, mut star) = if low == "*" || low == "?" {
        if high.is_some() {
            return Err(CronError::Malformed(expr.to_owned()));
        }
        (b.min, b.max, true)
    } else {
        let s = value(low, b)?;
        let e = match high {
            Some(h) => value(h, b)?,
            None => s,
        };
        (s, e, false)
    };
    let step = match step {
        None => 1,
        Some(st) => {
            let n: u32 = st.parse().map_err(|_| CronError::Value(st.to_owned()))?;
            if high.is_none() && !star {
                // `a/n` runs from a to the end of the field.
                end = b.max;
            }
            if n > 1 {
                star = false;
            }
            n
        }
    };
    if start < b.min {
        return Err(CronError::BelowMinimum(start, b.min, expr.to_owned()));
    }
    if end > b.max {
        return Err(CronError::AboveMaximum(end, b.max, expr.to_owned()));
    }
    if start > end {
        return Err(CronError::Backwards(start, end, expr.to_owned()));
    }
    if step == 0 {
        return Err(CronError::ZeroStep(expr.to_owned()));
    }
    let mut bits = 0u64;
    while start <= end {
        bits |= 1 << start;
        start += step;
    }
    Ok((bits, star))
}

fn field(expr: &str, b: &Bounds) -> Result<(u64, bool), CronError> {
    let mut bits = 0;
    let mut star = false;
    for p in expr.split(',') {
        let (pb, ps) = part(p, b)?;
        bits |= pb;
        star |= ps;
    }
    Ok((bits, star))
}

/// A Go duration such as `1h30m`, `90s`, `1.5h`.
fn go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, secs) = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total += num * secs;
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total))
}

impl Schedule {
    /// Parses a schedule.
    pub fn parse(s: &str) -> Result<Self, CronError> {
        let s = s.trim();
        let expanded = match s {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ if s.starts_with("@every ") => {
                let d = s.trim_start_matches("@every ").trim();
                let dur = go_duration(d).ok_or_else(|| CronError::Duration(d.to_owned()))?;
                // Less than a second rounds up to one; fractions of a second are dropped.
                return Ok(Schedule::Every(Duration::from_secs(dur.as_secs().max(1))));
            }
            _ if s.starts_with('@') => return Err(CronError::Descriptor(s.to_owned())),
            _ => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount(fields.len(), fields.join(" ")));
        }
        let (minute, _) = field(fields[0], &MINUTE)?;
        let (hour, _) = field(fields[1], &HOUR)?;
        let (dom, dom_star) = field(fields[2], &DOM)?;
        let (month, _) = field(fields[3], &MONTH)?;
        let (dow, dow_star) = field(fields[4], &DOW)?;
        Ok(Schedule::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        })
    }

    /// The first scheduled time strictly after `after`, in `tz`; `None` if there is none within
    /// five years (e.g. `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow, dom_star, dow_star) = match self {
            Schedule::Every(d) => {
                let secs = i64::try_from(d.as_secs()).ok()?;
                return Timestamp::from_second(after.as_second().checked_add(secs)?).ok();
            }
            Schedule::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
                dom_star,
                dow_star,
            } => (*minute, *hour, *dom, *month, *dow, *dom_star, *dow_star),
        };
        let bit = |set: u64, v: i8| v >= 0 && set & (1u64 << v) != 0;
        let day_matches = |t: &Zoned| {
            let d = bit(dom, t.day());
            let w = bit(dow, t.weekday().to_sunday_zero_offset());
            if dom_star || dow_star { d && w } else { d || w }
        };
        let at = |y: i16, mo: i8, d: i8, h: i8| -> Option<Zoned> {
            let dt = DateTime::new(y, mo, d, h, 0, 0, 0).ok()?;
            tz.to_ambiguous_zoned(dt).compatible().ok()
        };
        // The next whole second.
        let mut t = Timestamp::from_second(after.as_second().checked_add(1)?)
            .ok()?
            .to_zoned(tz.clone());
        let mut added = false;
        let year_limit = t.year() + 5;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while !bit(month, t.month()) {
                if !added {
                    added = true;
                    t = at(t.year(), t.month(), 1, 0)?;
                }
                t = t.checked_add(1.month()).ok()?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !day_matches(&t) {
                if !added {
                    added = true;
                    t = at(t.year(), t.month(), t.day(), 0)?;
                }
                t = t.checked_add(1.day()).ok()?;
                // Midnight may not exist on a day daylight saving begins.
                let h = i64::from(t.hour());
                if h != 0 {
                    let shift = if h > 12 { 24 - h } else { -h };
                    t = t.checked_add(shift.hours()).ok()?;
                }
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !bit(hour, t.hour()) {
                if !added {
                    added = true;
                    t = at(t.year(), t.month(), t.day(), t.hour())?;
                }
                t = t.checked_add(1.hour()).ok()?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !bit(minute, t.minute()) {
                if !added {
                    added = true;
                    t = t.with().second(0).subsec_nanosecond(0).build().ok()?;
                }
                t = t.checked_add(1.minute()).ok()?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            if t.second() != 0 {
                // Seconds are always 0: on to the next minute and check it again.
                added = true;
                let secs = i64::from(60 - t.second());
                t = t.checked_add(secs.seconds()).ok()?;
                continue 'wrap;
            }
            return Some(t.timestamp());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next_utc(sched: &str, after: &str) -> String {
        Schedule::parse(sched)
            .unwrap()
            .next(utc(after), &TimeZone::UTC)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// The next `n` times after `after` in `tz`, as local wall-clock strings with offsets.
    fn series(sched: &str, after: &str, tz: &TimeZone, n: usize) -> Vec<String> {
        let s = Schedule::parse(sched).unwrap();
        let mut t = utc(after);
        let mut out = Vec::new();
        for _ in 0..n {
            t = s.next(t, tz).unwrap();
            out.push(t.to_zoned(tz.clone()).strftime("%F %T%:z").to_string());
        }
        out
    }

    #[test]
    fn every_minute_and_steps() {
        assert_eq!(
            next_utc("* * * * *", "2026-01-01T00:00:00Z"),
            "2026-01-01T00:01:00Z"
        );
        assert_eq!(
            next_utc("* * * * *", "2026-01-01T00:00:30.5Z"),
            "2026-01-01T00:01:00Z"
        );
        assert_eq!(
            next_utc("*/1 * * * *", "2026-01-01T00:00:59Z"),
            "2026-01-01T00:01:00Z"
        );
        assert_eq!(
            next_utc("*/15 * * * *", "2026-01-01T00:16:00Z"),
            "2026-01-01T00:30:00Z"
        );
        assert_eq!(
            next_utc("*/15 * * * *", "2026-01-01T23:50:00Z"),
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(
            next_utc("5/20 * * * *", "2026-01-01T00:26:00Z"),
            "2026-01-01T00:45:00Z",
            "a/n runs from a to the end"
        );
        assert_eq!(
            next_utc("0-30/10 9-17 * * *", "2026-01-01T17:31:00Z"),
            "2026-01-02T09:00:00Z"
        );
    }

    #[test]
    fn ranges_lists_and_names() {
        // Weekdays at 09:30; 2026-01-02 is a Friday.
        assert_eq!(
            next_utc("30 9 * * MON-FRI", "2026-01-02T10:00:00Z"),
            "2026-01-05T09:30:00Z"
        );
        assert_eq!(
            next_utc("30 9 * * 1-5", "2026-01-02T10:00:00Z"),
            "2026-01-05T09:30:00Z"
        );
        assert_eq!(
            next_utc("0 12 * * sun,wed", "2026-01-01T00:00:00Z"),
            "2026-01-04T12:00:00Z"
        );
        assert_eq!(
            next_utc("0 0 1 JAN,jul *", "2026-02-01T00:00:00Z"),
            "2026-07-01T00:00:00Z"
        );
        assert_eq!(
            next_utc("0 0 1 jun-aug/2 *", "2026-06-02T00:00:00Z"),
            "2026-08-01T00:00:00Z"
        );
        assert_eq!(
            next_utc("15,45 1,13 * * *", "2026-01-01T13:20:00Z"),
            "2026-01-01T13:45:00Z"
        );
        assert_eq!(
            next_utc("0 0 ? * 0", "2026-01-01T00:00:00Z"),
            "2026-01-04T00:00:00Z"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Both restricted: either matches (the 13th, or any Friday).
        assert_eq!(
            next_utc("0 0 13 * 5", "2026-01-01T00:00:00Z"),
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(
            next_utc("0 0 13 * 5", "2026-01-10T00:00:00Z"),
            "2026-01-13T00:00:00Z"
        );
        // One is `*`: both must match (a Friday the 13th: 2026-02-13).
        assert_eq!(
            next_utc("0 0 13 * *", "2026-01-14T00:00:00Z"),
            "2026-02-13T00:00:00Z"
        );
        assert_eq!(
            next_utc("0 0 */1 * 5", "2026-01-03T00:00:00Z"),
            "2026-01-09T00:00:00Z",
            "*/1 counts as *"
        );
    }

    #[test]
    fn macros() {
        let after = "2026-05-17T10:20:30Z";
        assert_eq!(next_utc("@yearly", after), "2027-01-01T00:00:00Z");
        assert_eq!(next_utc("@annually", after), "2027-01-01T00:00:00Z");
        assert_eq!(next_utc("@monthly", after), "2026-06-01T00:00:00Z");
        // 2026-05-17 is a Sunday: the next Sunday.
        assert_eq!(next_utc("@weekly", after), "2026-05-24T00:00:00Z");
        assert_eq!(next_utc("@daily", after), "2026-05-18T00:00:00Z");
        assert_eq!(next_utc("@midnight", after), "2026-05-18T00:00:00Z");
        assert_eq!(next_utc("@hourly", after), "2026-05-17T11:00:00Z");
        assert_eq!(next_utc("@every 1h30m", after), "2026-05-17T11:50:30Z");
        assert_eq!(
            Schedule::parse("@every 10ms").unwrap(),
            Schedule::Every(Duration::from_secs(1))
        );
    }

    #[test]
    fn leap_days_and_impossible_dates() {
        assert_eq!(
            next_utc("0 0 29 2 *", "2026-01-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        assert_eq!(next_utc("0 0 30 2 *", "2026-01-01T00:00:00Z"), "");
        assert_eq!(
            next_utc("0 0 31 * *", "2026-04-01T00:00:00Z"),
            "2026-05-31T00:00:00Z"
        );
    }

    #[test]
    fn errors() {
        let err = |s: &str| Schedule::parse(s).unwrap_err();
        assert_eq!(err("foo"), CronError::FieldCount(1, "foo".into()));
        assert_eq!(
            err("* * * *").to_string(),
            "expected exactly 5 fields, found 4: [* * * *]"
        );
        assert!(matches!(
            err("60 * * * *"),
            CronError::AboveMaximum(60, 59, _)
        ));
        assert!(matches!(
            err("* 24 * * *"),
            CronError::AboveMaximum(24, 23, _)
        ));
        assert!(matches!(err("* * 0 * *"), CronError::BelowMinimum(0, 1, _)));
        assert!(matches!(
            err("* * * 13 *"),
            CronError::AboveMaximum(13, 12, _)
        ));
        assert!(matches!(err("* * * * 7"), CronError::AboveMaximum(7, 6, _)));
        assert!(matches!(err("5-1 * * * *"), CronError::Backwards(5, 1, _)));
        assert!(matches!(err("*/0 * * * *"), CronError::ZeroStep(_)));
        assert!(matches!(err("1-2-3 * * * *"), CronError::Malformed(_)));
        assert!(matches!(err("1/2/3 * * * *"), CronError::Malformed(_)));
        assert!(matches!(err("x * * * *"), CronError::Value(_)));
        assert!(matches!(err("* * * FOO *"), CronError::Value(_)));
        assert!(matches!(err("-1 * * * *"), CronError::Value(_)));
        assert!(matches!(err("@bogus"), CronError::Descriptor(_)));
        assert!(matches!(err("@every soon"), CronError::Duration(_)));
        assert!(matches!(err("*-5 * * * *"), CronError::Malformed(_)));
    }

    #[test]
    fn time_zones_shift_the_wall_clock() {
        let tokyo = TimeZone::fixed(jiff::tz::offset(9));
        assert_eq!(
            series("0 9 * * *", "2025-12-31T23:00:00Z", &tokyo, 2),
            vec!["2026-01-01 09:00:00+09:00", "2026-01-02 09:00:00+09:00"]
        );
    }

    /// America/New_York's rules, without needing a time zone database on the machine.
    fn new_york() -> TimeZone {
        TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap()
    }

    #[test]
    fn spring_forward_skips_the_missing_hour() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let ny = new_york();
        assert_eq!(
            series("30 2 * * *", "2026-03-07T12:00:00Z", &ny, 2),
            vec!["2026-03-09 02:30:00-04:00", "2026-03-10 02:30:00-04:00"],
            "no 02:30 on 2026-03-08"
        );
        // Hourly across the jump: 01:00, then 03:00 (02:00 does not exist).
        assert_eq!(
            series("0 * * * *", "2026-03-08T05:30:00Z", &ny, 3),
            vec![
                "2026-03-08 01:00:00-05:00",
                "2026-03-08 03:00:00-04:00",
                "2026-03-08 04:00:00-04:00"
            ]
        );
        // A daily job at 03:00 still runs that day.
        assert_eq!(
            series("0 3 * * *", "2026-03-08T05:00:00Z", &ny, 1),
            vec!["2026-03-08 03:00:00-04:00"]
        );
    }

    #[test]
    fn fall_back_runs_the_repeated_hour_twice() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST.
        let ny = new_york();
        assert_eq!(
            series("30 1 * * *", "2026-11-01T04:00:00Z", &ny, 3),
            vec![
                "2026-11-01 01:30:00-04:00",
                "2026-11-01 01:30:00-05:00",
                "2026-11-02 01:30:00-05:00"
            ]
        );
        // Midnight-based schedules are unaffected.
        assert_eq!(
            series("@daily", "2026-10-31T12:00:00Z", &ny, 2),
            vec!["2026-11-01 00:00:00-04:00", "2026-11-02 00:00:00-05:00"]
        );
    }
}
