//! Loader for the CDNOW sample (`tests/data/cdnow/CDNOW_sample.txt`): the 2,357 customers of
//! Fader, Hardie & Lee (2005), on which their published BG/NBD and Gamma-Gamma estimates were
//! made. Shared by the value-model tests and the fit bench.
//!
//! Each line is `customer-id customer-index YYYYMMDD cds dollars`. Following the papers (and
//! the data's README): purchases on the same day are one transaction whose value is their sum;
//! recency and age are measured in weeks from the customer's first purchase; age runs to the
//! end of the calibration period, 1997-09-30 (39 weeks after 1997-01-01); only purchases up to
//! that day count; the spend average covers the repeat transactions, not the first one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use touchpoint::model::value::RfmSummary;

/// The sample, copied into the repository (with its README) so a clean clone has it.
pub fn sample_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow/CDNOW_sample.txt")
}

/// Last day of the papers' 39-week calibration period.
pub const CALIBRATION_END: (i64, u32, u32) = (1997, 9, 30);

#[derive(Debug, thiserror::Error)]
pub enum CdnowError {
    #[error("cannot read the CDNOW file: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {reason}")]
    Parse { line: usize, reason: &'static str },
}

/// Reads the file and summarises it over the papers' calibration period, in weeks.
pub fn load(path: impl AsRef<Path>) -> Result<Vec<RfmSummary>, CdnowError> {
    let text = std::fs::read_to_string(path)?;
    let (y, m, d) = CALIBRATION_END;
    summarise(&text, days_from_civil(y, m, d))
}

/// Summarises transaction lines into one [`RfmSummary`] per customer (in weeks), ordered by
/// customer index, counting purchases up to and including day `calibration_end` (days since
/// 1970-01-01). Customers whose first purchase is later are left out.
pub fn summarise(text: &str, calibration_end: i64) -> Result<Vec<RfmSummary>, CdnowError> {
    // customer index -> day -> total spend that day
    let mut customers: BTreeMap<u64, BTreeMap<i64, f64>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut fields = line.split_whitespace();
        let Some(_id) = fields.next() else {
            continue; // blank line
        };
        let parse_error = |reason| CdnowError::Parse {
            line: line_no,
            reason,
        };
        let index: u64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or(parse_error("bad customer index"))?;
        let day = fields
            .next()
            .and_then(parse_date)
            .ok_or(parse_error("bad date"))?;
        let _cds = fields.next().ok_or(parse_error("missing CD count"))?;
        let dollars: f64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .filter(|v: &f64| v.is_finite())
            .ok_or(parse_error("bad dollar value"))?;
        if day <= calibration_end {
            *customers
                .entry(index)
                .or_default()
                .entry(day)
                .or_insert(0.0) += dollars;
        }
    }
    Ok(customers
        .values()
        .map(|days| summary(days, calibration_end))
        .collect())
}

fn summary(days: &BTreeMap<i64, f64>, calibration_end: i64) -> RfmSummary {
    let (&first, _) = days.first_key_value().expect("a customer has a purchase");
    let (&last, _) = days.last_key_value().expect("a customer has a purchase");
    let repeats = days.len() - 1;
    let repeat_spend: f64 = days.values().skip(1).sum();
    RfmSummary {
        frequency: repeats as f64,
        recency: (last - first) as f64 / 7.0,
        age: (calibration_end - first) as f64 / 7.0,
        mean_repeat_spend: if repeats > 0 {
            repeat_spend / repeats as f64
        } else {
            0.0
        },
    }
}

/// `YYYYMMDD` to days since 1970-01-01.
fn parse_date(field: &str) -> Option<i64> {
    if field.len() != 8 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = field[..4].parse().ok()?;
    let m: u32 = field[4..6].parse().ok()?;
    let d: u32 = field[6..].parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    // A day past the month's end would silently roll into the next month.
    let next_month = if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    };
    let day = days_from_civil(y, m, d);
    (day < next_month).then_some(day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Years start in March so the leap day is the last day of the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
