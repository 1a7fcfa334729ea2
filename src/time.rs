//! Time as the service counts it: Unix seconds in UTC inside, RFC 3339 at the edges, and the
//! customer's local clock (their time zone) for hours of day and of week. Every module that
//! turns a time into a day, an hour or a string does it here.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike, Utc};

use crate::validation::FieldError;

pub const SECONDS_PER_DAY: i64 = 86_400;
pub const HOURS_PER_WEEK: usize = 168;

/// The earliest time the service takes, 1900-01-01T00:00:00Z: before it a time is a
/// mistake (a year typed short, a zero date).
pub const EARLIEST: i64 = -2_208_988_800;
/// The first time the service no longer takes, 2200-01-01T00:00:00Z: far past any real
/// plan, and far enough inside RFC 3339's four-digit years that a time computed from one
/// (a send time days later) stays inside them.
pub const LATEST: i64 = 7_258_118_400;

/// Reads an RFC 3339 time given in `field`, within [`EARLIEST`]..[`LATEST`].
pub fn parse_time(s: &str, field: &str) -> Result<DateTime<Utc>, FieldError> {
    let t = DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            FieldError::new(
                "invalid_time",
                field,
                format!("{field} must be an RFC 3339 time such as 2026-11-22T10:15:00Z ({e})"),
            )
        })?;
    if !(EARLIEST..LATEST).contains(&t.timestamp()) {
        return Err(FieldError::new(
            "time_out_of_range",
            field,
            format!("{field} must be from 1900-01-01 to before 2200-01-01, not {s}"),
        ));
    }
    Ok(t)
}

pub fn day_of(at: i64) -> i32 {
    at.div_euclid(SECONDS_PER_DAY) as i32
}

/// A time as RFC 3339 in UTC to the second, `2026-11-30T14:45:10Z`, as chrono's
/// `to_rfc3339_opts(Secs, true)` writes it (the test holds it to that). Every decision writes
/// a few of these; chrono's general formatter took about 1,000 instructions for each.
///
/// RFC 3339 has four-digit years: a time outside years 0000-9999 (which the service never
/// takes in, see [`parse_time`]) is written as the nearest it can express.
pub fn rfc3339(t: i64) -> String {
    const FIRST: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let t = t.clamp(FIRST, LAST);
    let days = t.div_euclid(SECONDS_PER_DAY);
    let secs = t.rem_euclid(SECONDS_PER_DAY);
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms", civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = [0u8; 20];
    let mut put = |at: usize, n: i64, width: usize| {
        let mut n = n;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, secs / 3600, 2);
    put(14, secs / 60 % 60, 2);
    put(17, secs % 60, 2);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ] {
        out[at] = c;
    }
    // Only ASCII digits and separators were written.
    String::from_utf8(out.to_vec()).expect("ASCII")
}

/// Hour of week (0 = Monday 00h) of a time in a time zone.
pub fn hour_of_week(at: DateTime<Utc>, tz: Option<chrono_tz::Tz>) -> usize {
    let (weekday, hour) = match tz {
        Some(tz) => {
            let local = tz.from_utc_datetime(&at.naive_utc());
            (local.weekday(), local.hour())
        }
        None => (at.weekday(), at.hour()),
    };
    weekday.num_days_from_monday() as usize * 24 + hour as usize
}

/// Local clock arithmetic over a span of time (a decision's planning horizon): the zone's
/// offset at the start and end of the span; within it, one offset unless a DST change falls
/// inside (then looked up per time).
pub struct LocalClock {
    tz: Option<chrono_tz::Tz>,
    offset: Option<i64>,
}

impl LocalClock {
    pub fn new(tz: Option<chrono_tz::Tz>, from: i64, to: i64) -> Self {
        let offset_at = |t: i64| -> i64 {
            match tz {
                Some(tz) => tz
                    .offset_from_utc_datetime(
                        &DateTime::<Utc>::from_timestamp(t, 0)
                            .unwrap_or_default()
                            .naive_utc(),
                    )
                    .fix()
                    .local_minus_utc() as i64,
                None => 0,
            }
        };
        let (a, b) = (offset_at(from), offset_at(to));
        Self {
            tz,
            offset: (a == b).then_some(a),
        }
    }

    /// (local hour of day, local hour of week with 0 = Monday 00h).
    pub fn hour(&self, t: i64) -> (u32, usize) {
        let offset = match self.offset {
            Some(o) => o,
            None => Self::new(self.tz, t, t).offset.unwrap_or(0),
        };
        let local = t + offset;
        let day = local.div_euclid(SECONDS_PER_DAY);
        let hour = (local.rem_euclid(SECONDS_PER_DAY) / 3600) as u32;
        // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
        let weekday = (day + 3).rem_euclid(7) as usize;
        (hour, weekday * 24 + hour as usize)
    }
}

/// The service's "now": the system clock, or a simulated one (`server.simulated_clock`,
/// `serve --simulated-clock`) that stands where `PUT /v1/admin/clock` last set it, for
/// replaying a history or running `simulate --closed-loop --url` against a real service.
///
/// The simulated clock drives what the service does by the time: which events are too far
/// ahead to take, when an unanswered action closes as a negative, a decision's time when the
/// request gives none, when planned actions fall due. The expiry of a signed web identity
/// and the time of an erasure stay on the system clock. It starts at 1970-01-01T00:00:00Z
/// and only moves forward; each process has its own.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

/// Why the simulated clock was not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error(
        "this service runs on the system clock (start it with server.simulated_clock = true to set it)"
    )]
    NotSimulated,
    #[error("the clock only moves forward: it stands at {now}, after {asked}")]
    Backwards { now: String, asked: String },
}

impl Clock {
    pub fn system() -> Self {
        Self(None)
    }

    /// A simulated clock standing at the Unix epoch.
    pub fn simulated() -> Self {
        Self(Some(Arc::new(AtomicI64::new(0))))
    }

    pub fn is_simulated(&self) -> bool {
        self.0.is_some()
    }

    /// Now, Unix seconds.
    pub fn now(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(Ordering::Acquire),
            None => Utc::now().timestamp(),
        }
    }

    pub fn now_utc(&self) -> DateTime<Utc> {
        match &self.0 {
            Some(t) => DateTime::from_timestamp(t.load(Ordering::Acquire), 0).unwrap_or_default(),
            None => Utc::now(),
        }
    }

    /// Moves a simulated clock to `at` (the time it holds, or later).
    pub fn set(&self, at: i64) -> Result<(), ClockError> {
        let t = self.0.as_ref().ok_or(ClockError::NotSimulated)?;
        t.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
            (at >= now).then_some(at)
        })
        .map(|_| ())
        .map_err(|now| ClockError::Backwards {
            now: rfc3339(now),
            asked: rfc3339(at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        use rand::{Rng, SeedableRng};
        let chrono = |t: i64| {
            DateTime::<Utc>::from_timestamp(t, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let edges = [
            0,
            -1,
            951_782_400,     // 2000-02-29
            951_868_799,     // 2000-02-29T23:59:59
            4_107_542_400,   // 2100-03-01
            253_402_300_799, // 9999-12-31T23:59:59
            -62_167_219_200, // 0000-01-01
        ];
        let random = (0..20_000).map(|_| rng.random_range(-62_167_219_200..253_402_300_800i64));
        for t in edges.into_iter().chain(random) {
            assert_eq!(rfc3339(t), chrono(t), "{t}");
        }
        // Beyond four-digit years: the nearest time RFC 3339 can write, never `+10000-...`.
        assert_eq!(rfc3339(253_402_300_800), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-62_167_219_201), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn times_outside_1900_to_2200_are_refused() {
        assert!(parse_time("1900-01-01T00:00:00Z", "at").is_ok());
        assert!(parse_time("2199-12-31T23:59:59Z", "at").is_ok());
        for s in [
            "1899-12-31T23:59:59Z",
            "2200-01-01T00:00:00Z",
            "9999-12-31T00:00:00Z",
        ] {
            assert_eq!(
                parse_time(s, "at").unwrap_err().code,
                "time_out_of_range",
                "{s}"
            );
        }
        assert_eq!(
            parse_time("yesterday", "at").unwrap_err().code,
            "invalid_time"
        );
    }

    /// The clock's shortcut (one offset over the span) agrees with chrono's local time,
    /// across a DST change too.
    #[test]
    fn the_local_clock_agrees_with_chrono() {
        let tz: chrono_tz::Tz = "Europe/London".parse().unwrap();
        // 2026-03-29 01:00 UTC: the clocks go forward.
        let from = 1_774_656_000;
        for span in [3600, 72 * 3600] {
            let clock = LocalClock::new(Some(tz), from, from + span);
            for k in 0..=span / 3600 {
                let t = from + k * 3600;
                let at = DateTime::<Utc>::from_timestamp(t, 0).unwrap();
                let local = tz.from_utc_datetime(&at.naive_utc());
                assert_eq!(
                    clock.hour(t),
                    (local.hour(), hour_of_week(at, Some(tz))),
                    "{t}"
                );
            }
        }
    }

    /// A simulated clock stands where it was set and never goes back; the system clock
    /// cannot be set.
    #[test]
    fn a_simulated_clock_moves_only_forward() {
        let clock = Clock::simulated();
        assert_eq!(clock.now(), 0);
        clock.set(1_700_000_000).unwrap();
        clock.clone().set(1_700_000_000).unwrap();
        assert_eq!(clock.now(), 1_700_000_000);
        assert_eq!(clock.now_utc().timestamp(), 1_700_000_000);
        assert_eq!(
            clock.set(1_699_999_999),
            Err(ClockError::Backwards {
                now: "2023-11-14T22:13:20Z".into(),
                asked: "2023-11-14T22:13:19Z".into()
            })
        );
        assert_eq!(clock.now(), 1_700_000_000);
        let system = Clock::system();
        assert_eq!(system.set(0), Err(ClockError::NotSimulated));
        assert!((system.now() - Utc::now().timestamp()).abs() <= 1);
    }
}
