//! Maximum-likelihood fits on the CDNOW sample against the published estimates.
//!
//! The data file is read from `cdnow::sample_path()` (`$TOUCHPOINT_CDNOW_SAMPLE` or
//! `/work/shared/data/cdnow/CDNOW_sample.txt`).

use crate::cdnow;
use touchpoint::model::value::{GammaGammaParams, RfmSummary};
use touchpoint::training::value_fit::{FitError, FitOptions, fit_bg_nbd, fit_gamma_gamma};

fn cdnow_sample() -> Vec<RfmSummary> {
    cdnow::load(cdnow::sample_path()).expect("CDNOW sample readable")
}

/// `v` rounded to three significant digits.
fn three_significant(v: f64) -> f64 {
    let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

fn summary(frequency: f64, recency: f64, age: f64, spend: f64) -> RfmSummary {
    RfmSummary {
        frequency,
        recency,
        age,
        mean_repeat_spend: spend,
    }
}

#[test]
fn cdnow_loader_finds_2357_customers_of_whom_946_bought_again() {
    let data = cdnow_sample();
    // 2,357 customers: data README and Fader, Hardie & Lee (2005), section 7.
    assert_eq!(data.len(), 2357);
    // 946 repeat customers: data README; Fader, Hardie & Lee (2005) "RFM and CLV".
    assert_eq!(data.iter().filter(|s| s.frequency > 0.0).count(), 946);
    // Customer 1 as printed in the lifetimes docs (Quickstart) and Fader & Hardie's BG/NBD
    // Excel note: x = 2, t_x = 30.43, T = 38.86, mean repeat spend 22.35 (two decimals).
    let first = data[0];
    assert_eq!(first.frequency, 2.0);
    assert!((first.recency - 30.43).abs() < 0.005);
    assert!((first.age - 38.86).abs() < 0.005);
    assert!((first.mean_repeat_spend - 22.35).abs() < 0.0051);
    // Customer 6 (lifetimes docs Quickstart): x = 7, t_x = 29.43, spend 73.74.
    assert_eq!(data[5].frequency, 7.0);
    assert!((data[5].recency - 29.43).abs() < 0.005);
    assert!((data[5].mean_repeat_spend - 73.74).abs() < 0.0051);
}

#[test]
fn bg_nbd_fit_on_cdnow_reproduces_the_published_parameters_to_three_significant_digits() {
    let report = fit_bg_nbd(&cdnow_sample(), &FitOptions::default()).unwrap();
    let p = report.params;
    assert!(report.converged);
    assert_eq!(report.n_customers, 2357);
    // Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", section 7.
    assert_eq!(three_significant(p.r), three_significant(0.243));
    assert_eq!(three_significant(p.alpha), three_significant(4.414));
    assert_eq!(three_significant(p.a), three_significant(0.793));
    assert_eq!(three_significant(p.b), three_significant(2.426));
    // Same paper: LL = -9582.4.
    assert!((report.log_likelihood - -9582.4).abs() < 0.05);
}

#[test]
fn bg_nbd_fit_on_cdnow_agrees_with_clvtools_to_five_digits() {
    let report = fit_bg_nbd(&cdnow_sample(), &FitOptions::default()).unwrap();
    let p = report.params;
    // CLVTools (R) test suite, "Correctness - BG/NBD nocov": r = 0.2425945,
    // alpha = 4.4136019, a = 0.7929199, b = 2.4258881, LL = -9582.429 (exact dates, as here).
    for (got, want) in [
        (p.r, 0.2425945),
        (p.alpha, 4.4136019),
        (p.a, 0.7929199),
        (p.b, 2.4258881),
    ] {
        assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
    }
    assert!((report.log_likelihood - -9582.429).abs() < 1e-3);
}

#[test]
fn gamma_gamma_fit_on_the_946_cdnow_repeat_customers_reproduces_the_published_parameters() {
    let report = fit_gamma_gamma(&cdnow_sample(), &FitOptions::default()).unwrap();
    let p = report.params;
    assert!(report.converged);
    assert_eq!(report.n_customers, 946);
    // Fader, Hardie & Lee (2005), "RFM and CLV"; Fader & Hardie note 025: p = 6.25,
    // q = 3.74, gamma = 15.44.
    assert_eq!(three_significant(p.p), three_significant(6.25));
    assert_eq!(three_significant(p.q), three_significant(3.74));
    assert_eq!(three_significant(p.gamma), three_significant(15.44));
}

#[test]
fn gamma_gamma_fit_on_cdnow_gives_the_expected_spends_of_hardies_spreadsheet() {
    let data = cdnow_sample();
    let params = fit_gamma_gamma(&data, &FitOptions::default())
        .unwrap()
        .params;
    // Fader & Hardie note 025 spreadsheet, first ten customers (also asserted by lifetimes'
    // test_conditional_expected_average_profit).
    let hardie = [
        24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17,
    ];
    for (s, want) in data.iter().zip(hardie) {
        let got = params.expected_spend(s);
        assert!((got - want).abs() < 0.006, "{got} vs {want}");
    }
}

#[test]
fn penalizer_shrinks_the_fitted_parameters() {
    let data = cdnow_sample();
    let plain = fit_gamma_gamma(&data, &FitOptions::default()).unwrap();
    let opts = FitOptions {
        penalizer: 0.01,
        ..FitOptions::default()
    };
    let shrunk = fit_gamma_gamma(&data, &opts).unwrap();
    let size = |g: &GammaGammaParams| g.p * g.p + g.q * g.q + g.gamma * g.gamma;
    assert!(size(&shrunk.params) < size(&plain.params));
    assert!(shrunk.log_likelihood < plain.log_likelihood);
}

#[test]
fn fits_refuse_data_they_cannot_use() {
    let opts = FitOptions::default();
    let few = vec![summary(1.0, 2.0, 5.0, 10.0); 3];
    assert!(matches!(
        fit_bg_nbd(&few, &opts),
        Err(FitError::TooFewCustomers { got: 3, .. })
    ));
    let no_repeat = vec![summary(0.0, 0.0, 5.0, 0.0); 10];
    assert_eq!(
        fit_bg_nbd(&no_repeat, &opts),
        Err(FitError::NoRepeatCustomers)
    );
    assert_eq!(
        fit_gamma_gamma(&no_repeat, &opts),
        Err(FitError::NoRepeatCustomers)
    );
    let mut bad = vec![summary(1.0, 2.0, 5.0, 10.0); 10];
    bad[4].age = f64::NAN;
    assert_eq!(
        fit_bg_nbd(&bad, &opts),
        Err(FitError::NonFiniteData { index: 4 })
    );
    bad[4] = summary(1.0, 6.0, 5.0, 10.0);
    assert!(matches!(
        fit_bg_nbd(&bad, &opts),
        Err(FitError::InvalidData { index: 4, .. })
    ));
    bad[4] = summary(1.0, 2.0, 5.0, 0.0);
    assert!(matches!(
        fit_gamma_gamma(&bad, &opts),
        Err(FitError::InvalidData { index: 4, .. })
    ));
    bad[4].mean_repeat_spend = f64::INFINITY;
    assert_eq!(
        fit_gamma_gamma(&bad, &opts),
        Err(FitError::NonFiniteData { index: 4 })
    );
}

#[test]
fn a_fit_stopped_far_from_the_optimum_is_an_error() {
    let opts = FitOptions {
        max_iterations: 1,
        ..FitOptions::default()
    };
    assert!(matches!(
        fit_bg_nbd(&cdnow_sample(), &opts),
        Err(FitError::DidNotConverge { iterations: 1, .. })
    ));
}

#[test]
fn bg_nbd_fit_in_days_gives_the_same_model_as_in_weeks() {
    let weeks = cdnow_sample();
    let days: Vec<RfmSummary> = weeks
        .iter()
        .map(|s| {
            summary(
                s.frequency,
                s.recency * 7.0,
                s.age * 7.0,
                s.mean_repeat_spend,
            )
        })
        .collect();
    let opts = FitOptions::default();
    let w = fit_bg_nbd(&weeks, &opts).unwrap().params;
    let d = fit_bg_nbd(&days, &opts).unwrap().params;
    // Only alpha carries the time unit.
    assert!((d.alpha / 7.0 - w.alpha).abs() < 1e-5 * w.alpha);
    assert!((d.r - w.r).abs() < 1e-5 * w.r);
    assert!((d.a - w.a).abs() < 1e-5 * w.a);
    assert!((d.b - w.b).abs() < 1e-5 * w.b);
}

#[test]
fn small_samples_fit_or_fail_cleanly() {
    let data = cdnow_sample();
    for n in [5, 20, 100, 400] {
        let part = &data[..n];
        if let Ok(report) = fit_bg_nbd(part, &FitOptions::default()) {
            assert!(report.params.is_valid() && report.log_likelihood.is_finite());
        }
        if let Ok(report) = fit_gamma_gamma(part, &FitOptions::default()) {
            assert!(report.params.is_valid() && report.log_likelihood.is_finite());
        }
    }
}

#[test]
fn fits_on_the_loaders_summary_agree_with_lifetimes() {
    // Python lifetimes 0.11.3 (scipy 1.11.4), BetaGeoFitter().fit and GammaGammaFitter().fit
    // on this loader's output written to CSV at full precision.
    let data = cdnow_sample();
    let bg = fit_bg_nbd(&data, &FitOptions::default()).unwrap().params;
    for (got, want) in [
        (bg.r, 0.24259454342106698),
        (bg.alpha, 4.41360271607737),
        (bg.a, 0.7929218333478882),
        (bg.b, 2.4259057287218044),
    ] {
        assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
    }
    let gg = fit_gamma_gamma(&data, &FitOptions::default())
        .unwrap()
        .params;
    for (got, want) in [
        (gg.p, 6.249572277633405),
        (gg.q, 3.7442246747587205),
        (gg.gamma, 15.443521018370694),
    ] {
        assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
    }
}

// The loader's own checks.
use crate::cdnow::{CdnowError, days_from_civil, summarise};

#[test]
fn days_from_civil_counts_from_the_unix_epoch() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017); // date -d 2000-03-01 +%s / 86400
    assert_eq!(days_from_civil(1969, 12, 31), -1);
    // 1997-01-01 to 1997-09-30 is 272 days, 38.857 weeks (the papers' T for the first cohort).
    assert_eq!(
        days_from_civil(1997, 9, 30) - days_from_civil(1997, 1, 1),
        272
    );
}

#[test]
fn same_day_purchases_merge_and_the_first_purchase_is_left_out_of_spend() {
    let text = "\
 00001 0001 19970101  1   10.00
 00001 0001 19970101  2   15.00
 00001 0001 19970108  1   20.00
 00001 0001 19970108  1    4.00
 00001 0001 19970115  1   30.00
 00001 0001 19971001  1   99.00
 00002 0002 19970110  1    5.00
";
    let end = days_from_civil(1997, 9, 30);
    let got = summarise(text, end).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].frequency, 2.0);
    assert_eq!(got[0].recency, 2.0);
    assert!((got[0].age - 272.0 / 7.0).abs() < 1e-12);
    assert_eq!(got[0].mean_repeat_spend, 27.0); // (24 + 30) / 2
    assert_eq!(got[1].frequency, 0.0);
    assert_eq!(got[1].mean_repeat_spend, 0.0);
}

#[test]
fn malformed_lines_are_reported_with_their_number() {
    let err = summarise(" 1 0001 1997x101 1 2.0\n", 0).unwrap_err();
    assert!(matches!(err, CdnowError::Parse { line: 1, .. }));
    let err = summarise(" 1 0001 19970101 1 2.0\n 1 0001 19970229 1 2.0\n", 0).unwrap_err();
    assert!(matches!(err, CdnowError::Parse { line: 2, .. }));
}
