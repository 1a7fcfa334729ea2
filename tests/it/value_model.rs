//! Serving-side predictions against published numbers and reference implementations.
//!
//! "lifetimes 0.11.3" numbers were computed with Python lifetimes 0.11.3 (scipy 1.11.4,
//! numpy 1.26.4, pandas 1.5.3) from the parameters given next to them.

use statrs::function::gamma::ln_gamma;
use touchpoint::model::value::{
    BgNbdParams, ClvSettings, GammaGammaParams, RfmSummary, TimeUnit, ValueModel, hyp2f1,
};

/// Fader, Hardie & Lee (2005), section 7.
const PUBLISHED: BgNbdParams = BgNbdParams {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};

/// Maximum-likelihood estimate on CDNOW with exact dates, CLVTools (R) test suite.
const CLVTOOLS_MLE: BgNbdParams = BgNbdParams {
    r: 0.2425945,
    alpha: 4.4136019,
    a: 0.7929199,
    b: 2.4258881,
};

/// `BetaGeoFitter().fit` of lifetimes 0.11.3 on its bundled CDNOW summary (two-decimal
/// times); its docs (Quickstart) print 0.242593, 4.413532, 0.792886, 2.425752.
const LIFETIMES_FIT: BgNbdParams = BgNbdParams {
    r: 0.2425929282798216,
    alpha: 4.413532265271803,
    a: 0.7928859664405851,
    b: 2.42575238262545,
};

/// `GammaGammaFitter().fit` of lifetimes 0.11.3 on the same summary's 946 repeat customers.
const LIFETIMES_GG: GammaGammaParams = GammaGammaParams {
    p: 6.248802496074264,
    q: 3.744588460923312,
    gamma: 15.447748064932831,
};

fn summary(frequency: f64, recency: f64, age: f64, spend: f64) -> RfmSummary {
    RfmSummary {
        frequency,
        recency,
        age,
        mean_repeat_spend: spend,
    }
}

/// The first ten customers of lifetimes' `load_cdnow_summary_data_with_monetary_value()`.
fn lifetimes_first_ten() -> [RfmSummary; 10] {
    [
        summary(2.0, 30.43, 38.86, 22.35),
        summary(1.0, 1.71, 38.86, 11.77),
        summary(0.0, 0.0, 38.86, 0.0),
        summary(0.0, 0.0, 38.86, 0.0),
        summary(0.0, 0.0, 38.86, 0.0),
        summary(7.0, 29.43, 38.86, 73.74),
        summary(1.0, 5.0, 38.86, 11.77),
        summary(0.0, 0.0, 38.86, 0.0),
        summary(2.0, 35.71, 38.86, 25.55),
        summary(0.0, 0.0, 38.86, 0.0),
    ]
}

fn weekly_model(bg_nbd: BgNbdParams, gamma_gamma: Option<GammaGammaParams>) -> ValueModel {
    ValueModel {
        time_unit: TimeUnit::Week,
        bg_nbd,
        gamma_gamma,
        clv: ClvSettings::default(),
    }
}

fn assert_close(got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1e-300),
        "{got} vs {want} (relative tolerance {rel})"
    );
}

#[test]
fn conditional_expectation_for_the_hardie_example_customer_is_1_226() {
    let s = summary(2.0, 30.43, 38.86, 0.0);
    let got = PUBLISHED.expected_purchases(&s, 39.0);
    // Fader & Hardie, "Implementing the BG/NBD Model for Customer Base Analysis in Excel";
    // also lifetimes' test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet.
    assert!((got - 1.226).abs() < 5e-4, "{got}");
    // lifetimes 0.11.3, published parameters.
    assert_close(got, 1.2260281747671318, 1e-12);
}

#[test]
fn unconditional_expectation_matches_hardies_spreadsheet() {
    let times = [0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0];
    // Fader & Hardie's BG/NBD Excel spreadsheet, as quoted by lifetimes'
    // test_expectation_returns_same_value_Hardie_excel_sheet (four decimals, MLE parameters).
    let hardie = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576];
    for (t, want) in times.iter().zip(hardie) {
        let got = CLVTOOLS_MLE.unconditional_expected_purchases(*t);
        assert!((got - want).abs() < 5e-4, "t={t}: {got} vs {want}");
    }
    // lifetimes 0.11.3 expected_number_of_purchases_up_to_time, published parameters.
    let lifetimes = [
        0.007828347516068,
        0.05326789117165627,
        0.15086523089304896,
        1.0419960608521937,
        1.045243328374436,
        1.8605190579427455,
    ];
    for (t, want) in times.iter().zip(lifetimes) {
        assert_close(PUBLISHED.unconditional_expected_purchases(*t), want, 1e-11);
    }
}

#[test]
fn next_week_expectations_of_the_best_customers_match_the_lifetimes_docs() {
    // lifetimes docs, Quickstart, "Ranking customers from best to worst" (t = 1, six decimals).
    let table = [
        (18.0, 35.14, 35.86, 0.424877),
        (19.0, 34.00, 34.14, 0.474738),
        (17.0, 28.43, 28.86, 0.486526),
        (29.0, 37.71, 38.00, 0.662396),
        (26.0, 30.86, 31.00, 0.710623),
    ];
    for (x, t_x, age, want) in table {
        let got = LIFETIMES_FIT.expected_purchases(&summary(x, t_x, age, 0.0), 1.0);
        assert!((got - want).abs() < 1e-6, "x={x}: {got} vs {want}");
    }
}

#[test]
fn conditional_expectations_and_p_alive_match_lifetimes() {
    // (x, t_x, T, t, E[Y(t)], P(alive)) from lifetimes 0.11.3 with the published parameters.
    let table = [
        (
            2.0,
            30.43,
            38.86,
            39.0,
            1.2260281747671318,
            0.726578570080673,
        ),
        (0.0, 0.0, 38.86, 13.0, 0.06992659460176161, 1.0),
        (
            1.0,
            1.71,
            38.86,
            52.0,
            0.2598234648686216,
            0.2121009853773791,
        ),
        (
            7.0,
            29.43,
            38.86,
            13.0,
            1.2791364086180836,
            0.6417563459461072,
        ),
        (
            29.0,
            37.71,
            38.0,
            52.0,
            25.060320828083885,
            0.9691295181593396,
        ),
        (
            5.0,
            10.0,
            200.0,
            52.0,
            9.212448701377934e-06,
            7.4159069463612985e-06,
        ),
        (
            3.0,
            20.0,
            20.0,
            500.0,
            15.086155193563458,
            0.8480551829852462,
        ),
    ];
    for (x, t_x, age, t, expected, alive) in table {
        let s = summary(x, t_x, age, 0.0);
        assert_close(PUBLISHED.expected_purchases(&s, t), expected, 1e-10);
        assert_close(PUBLISHED.p_alive(&s), alive, 1e-12);
    }
}

#[test]
fn expected_spend_matches_the_lifetimes_docs() {
    // lifetimes docs, Quickstart, conditional_expected_average_profit(...).head(10).
    let docs = [
        24.658619, 18.911489, 35.170981, 35.170981, 35.170981, 71.462843, 18.911489, 35.170981,
        27.282408, 35.170981,
    ];
    for (s, want) in lifetimes_first_ten().iter().zip(docs) {
        let got = LIFETIMES_GG.expected_spend(s);
        // The docs were made with an earlier lifetimes fit; 0.11.3's parameters differ in the
        // sixth digit.
        assert!((got - want).abs() < 3e-5, "{got} vs {want}");
    }
}

#[test]
fn expected_spend_without_repeat_purchases_is_the_population_mean() {
    let gg = GammaGammaParams {
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };
    let population = 6.25 * 15.44 / 2.74;
    assert_close(
        gg.expected_spend(&summary(0.0, 0.0, 10.0, 0.0)),
        population,
        1e-15,
    );
    // A leftover spend on a customer without repeats is ignored.
    assert_close(
        gg.expected_spend(&summary(0.0, 0.0, 10.0, f64::NAN)),
        population,
        1e-15,
    );
}

#[test]
fn clv_matches_the_lifetimes_docs_quickstart() {
    // lifetimes docs, Quickstart: customer_lifetime_value(bgf, ..., time=12,
    // discount_rate=0.01) on the weekly CDNOW summary. Its default freq="D" makes each
    // "month" 30 time units, i.e. 30 weeks here; `discounted_value` takes the step directly.
    let docs = [
        140.096211,
        18.943467,
        38.180574,
        38.180574,
        38.180574,
        1003.868107,
        28.109683,
        38.180574,
        167.418216,
        38.180574,
    ];
    let model = weekly_model(LIFETIMES_FIT, Some(LIFETIMES_GG));
    for (s, want) in lifetimes_first_ten().iter().zip(docs) {
        assert_close(model.discounted_value(s, 30.0, 12, 0.01), want, 1e-6);
    }
}

#[test]
fn clv_with_weekly_months_matches_lifetimes() {
    // lifetimes 0.11.3: customer_lifetime_value(..., time=12, discount_rate=0.01, freq="W"),
    // whose month is 4.345 weeks; LIFETIMES_FIT and LIFETIMES_GG parameters.
    let lifetimes = [
        36.278495763626665,
        4.63746632856977,
        8.344093121809948,
        8.344093121809948,
        8.344093121809948,
        283.5235925904007,
        6.881406907981419,
        8.344093121809948,
        43.35364239686249,
        8.344093121809948,
    ];
    let model = weekly_model(LIFETIMES_FIT, Some(LIFETIMES_GG));
    for (s, want) in lifetimes_first_ten().iter().zip(lifetimes) {
        assert_close(model.discounted_value(s, 4.345, 12, 0.01), want, 1e-10);
    }
}

#[test]
fn figures_use_90_days_and_twelve_discounted_calendar_months_in_the_models_unit() {
    let weekly = weekly_model(CLVTOOLS_MLE, Some(LIFETIMES_GG));
    let s = summary(7.0, 29.43, 38.86, 73.74);
    let f = weekly.figures(&s);
    assert_close(f.p_alive, CLVTOOLS_MLE.p_alive(&s), 1e-15);
    assert_close(
        f.expected_purchases_90d,
        CLVTOOLS_MLE.expected_purchases(&s, 90.0 / 7.0),
        1e-13,
    );
    assert_close(
        f.expected_spend_per_purchase,
        LIFETIMES_GG.expected_spend(&s),
        1e-15,
    );
    let month_weeks = 365.0 / 12.0 / 7.0;
    let monthly_rate = 1.1f64.powf(1.0 / 12.0) - 1.0;
    assert_close(
        f.clv_365d,
        weekly.discounted_value(&s, month_weeks, 12, monthly_rate),
        1e-13,
    );

    // The same model in days (alpha scales with the unit, the shape parameters do not).
    let mut daily = weekly;
    daily.time_unit = TimeUnit::Day;
    daily.bg_nbd.alpha *= 7.0;
    let in_days = summary(7.0, 29.43 * 7.0, 38.86 * 7.0, 73.74);
    let g = daily.figures(&in_days);
    assert_close(g.p_alive, f.p_alive, 1e-12);
    assert_close(g.expected_purchases_90d, f.expected_purchases_90d, 1e-12);
    assert_close(g.clv_365d, f.clv_365d, 1e-12);
}

#[test]
fn figures_without_a_spend_model_report_zero_spend_and_value() {
    let model = weekly_model(PUBLISHED, None);
    let f = model.figures(&summary(2.0, 30.43, 38.86, 22.35));
    assert_eq!(f.expected_spend_per_purchase, 0.0);
    assert_eq!(f.clv_365d, 0.0);
    assert!(f.expected_purchases_90d > 0.0);
}

#[test]
fn margin_scales_the_clv_and_a_longer_horizon_adds_value() {
    let mut model = weekly_model(PUBLISHED, Some(LIFETIMES_GG));
    let s = summary(2.0, 30.43, 38.86, 22.35);
    let full = model.figures(&s).clv_365d;
    model.clv.margin = 0.3;
    assert_close(model.figures(&s).clv_365d, 0.3 * full, 1e-14);
    model.clv.margin = 1.0;
    model.clv.horizon_days = 3650.0; // 120 months: more than fits on the stack
    let long = model.figures(&s).clv_365d;
    assert!(long > full && long.is_finite());
    model.clv.horizon_days = 0.0;
    assert_eq!(model.figures(&s).clv_365d, 0.0);
}

#[test]
fn textbook_equation_10_with_the_plain_2f1_series_agrees_with_the_euler_form() {
    // Fader, Hardie & Lee (2005) eq. (10) written out literally.
    let eq10 = |p: &BgNbdParams, x: f64, t_x: f64, big_t: f64, t: f64| {
        let (r, alpha, a, b) = (p.r, p.alpha, p.a, p.b);
        let z = t / (alpha + big_t + t);
        let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z).unwrap();
        let head = (a + b + x - 1.0) / (a - 1.0)
            * (1.0 - ((alpha + big_t) / (alpha + big_t + t)).powf(r + x) * f);
        let tail = if x > 0.0 {
            a / (b + x - 1.0) * ((alpha + big_t) / (alpha + t_x)).powf(r + x)
        } else {
            0.0
        };
        head / (1.0 + tail)
    };
    for p in [
        PUBLISHED,
        BgNbdParams {
            r: 1.3,
            alpha: 20.0,
            a: 2.5,
            b: 0.7,
        },
    ] {
        for (x, t_x, big_t) in [(0.0, 0.0, 10.0), (2.0, 30.43, 38.86), (12.0, 20.0, 25.0)] {
            for t in [0.5, 13.0, 52.0] {
                let s = summary(x, t_x, big_t, 0.0);
                assert_close(
                    p.expected_purchases(&s, t),
                    eq10(&p, x, t_x, big_t, t),
                    1e-10,
                );
            }
        }
    }
}

/// E[Y(t)] by direct integration of the BG/NBD posterior: given survival, λ | data is
/// Gamma(r + x, α + T) and p | data is Beta(a, b + x), and E[Y(t) | λ, p] =
/// (1 - e^{-λ p t}) / p, so E[Y(t)] = P(alive) E_p[(1 - (1 + p t/(α+T))^{-(r+x)}) / p].
/// Tanh-sinh quadrature, which is exact to ~1e-12 despite the Beta density's endpoint
/// singularities.
fn integrated_expectation(p: &BgNbdParams, s: &RfmSummary, t: f64) -> f64 {
    let (a, beta) = (p.a, p.b + s.frequency);
    let m = p.r + s.frequency;
    let scale = t / (p.alpha + s.age);
    // q and 1 - q are both passed so neither loses digits next to its endpoint.
    let integrand = |q: f64, one_minus_q: f64| {
        let g = -(-m * (q * scale).ln_1p()).exp_m1() / q;
        ((a - 1.0) * q.ln() + (beta - 1.0) * one_minus_q.ln()).exp() * g
    };
    let h = 1.0 / 64.0;
    let mut sum = 0.0;
    for k in -320..=320 {
        let tau = k as f64 * h;
        let u = std::f64::consts::PI * tau.sinh();
        let (q, one_minus_q) = (1.0 / (1.0 + (-u).exp()), 1.0 / (1.0 + u.exp()));
        if q == 0.0 || one_minus_q == 0.0 {
            continue;
        }
        let dq = std::f64::consts::PI * tau.cosh() * q * one_minus_q;
        sum += integrand(q, one_minus_q) * dq;
    }
    let ln_beta = ln_gamma(a) + ln_gamma(beta) - ln_gamma(a + beta);
    p.p_alive(s) * sum * h / ln_beta.exp()
}

#[test]
fn a_near_or_equal_to_one_matches_direct_integration() {
    for a in [1.0 - 1e-9, 1.0, 1.0 + 1e-9, 1.0 + 1e-4, 0.6, 1.8] {
        let p = BgNbdParams {
            r: 0.243,
            alpha: 4.414,
            a,
            b: 2.426,
        };
        for s in [
            summary(0.0, 0.0, 38.86, 0.0),
            summary(2.0, 30.43, 38.86, 0.0),
            summary(10.0, 35.0, 38.0, 0.0),
            summary(0.0, 0.0, 0.0, 0.0),
        ] {
            // Up to 3000 weeks for a brand-new customer: w = t / (α + T + t) = 0.9985.
            for t in [1.0, 39.0, 300.0, 3000.0] {
                let got = p.expected_purchases(&s, t);
                let want = integrated_expectation(&p, &s, t);
                assert_close(got, want, 1e-10);
            }
        }
    }
}

#[test]
fn a_near_one_matches_lifetimes() {
    // lifetimes 0.11.3 with r = 0.243, alpha = 4.414, a = 1.001, b = 2.426.
    let p = BgNbdParams {
        a: 1.001,
        ..PUBLISHED
    };
    assert_close(
        p.expected_purchases(&summary(2.0, 30.43, 38.86, 0.0), 39.0),
        1.101590787790045,
        1e-9,
    );
    assert_close(
        p.expected_purchases(&summary(0.0, 0.0, 38.86, 0.0), 52.0),
        0.24549139135875547,
        1e-9,
    );
}

#[test]
fn edge_cases_give_finite_numbers() {
    let model = weekly_model(PUBLISHED, Some(LIFETIMES_GG));
    let cases = [
        summary(0.0, 0.0, 0.0, 0.0),      // brand-new customer
        summary(0.0, 0.0, 38.86, 0.0),    // never came back
        summary(3.0, 10.0, 1e6, 20.0),    // last seen twenty thousand years ago
        summary(3.0, 10.0, 1e300, 20.0),  // absurd age
        summary(50.0, 0.5, 0.5, 20.0),    // fifty purchases in half a week
        summary(2.5, 3.0, 2.0, 20.0),     // recency past age, fractional frequency
        summary(-1.0, -3.0, -5.0, -20.0), // negative everything
        summary(f64::NAN, f64::NAN, f64::NAN, f64::NAN),
    ];
    for s in &cases {
        let f = model.figures(s);
        for v in [
            f.p_alive,
            f.expected_purchases_90d,
            f.expected_spend_per_purchase,
            f.clv_365d,
        ] {
            assert!(v.is_finite() && v >= 0.0, "{s:?} gave {f:?}");
        }
        assert!(f.p_alive <= 1.0);
        for t in [0.0, 1e-12, 1.0, 1e4] {
            let e = PUBLISHED.expected_purchases(s, t);
            assert!(e.is_finite() && e >= 0.0, "{s:?} t={t}: {e}");
        }
        assert!(PUBLISHED.log_likelihood(s).is_finite() || s.age.is_nan() || s.age > 1e299);
    }
    // Dropped out for good: nothing more expected.
    let gone = summary(3.0, 10.0, 1e6, 20.0);
    assert!(PUBLISHED.p_alive(&gone) < 1e-12);
    assert!(PUBLISHED.expected_purchases(&gone, 52.0) < 1e-12);
}

#[test]
fn zero_horizon_expects_no_purchases_and_growth_is_monotone() {
    let s = summary(2.0, 30.43, 38.86, 0.0);
    assert_eq!(PUBLISHED.expected_purchases(&s, 0.0), 0.0);
    assert_eq!(PUBLISHED.unconditional_expected_purchases(0.0), 0.0);
    let mut last = 0.0;
    for t in [1e-9, 1e-3, 1.0, 10.0, 100.0, 1e3, 1e4] {
        let e = PUBLISHED.expected_purchases(&s, t);
        assert!(e > last, "t={t}: {e} <= {last}");
        last = e;
    }
    // Tiny horizons: E[Y(t)] ≈ P(alive) (r + x) t / (α + T).
    let t = 1e-9;
    let slope = PUBLISHED.p_alive(&s) * (PUBLISHED.r + 2.0) / (PUBLISHED.alpha + 38.86);
    assert_close(PUBLISHED.expected_purchases(&s, t), slope * t, 1e-6);
}

#[test]
fn unbounded_horizon_gives_the_limit() {
    let s = summary(2.0, 30.43, 38.86, 0.0);
    // a < 1: E[1/p] is infinite, so are expected purchases over an unbounded horizon.
    assert_eq!(
        PUBLISHED.expected_purchases(&s, f64::INFINITY),
        f64::INFINITY
    );
    // a > 1: P(alive) (a + b + x - 1) / (a - 1).
    let p = BgNbdParams {
        a: 2.0,
        ..PUBLISHED
    };
    let limit = p.p_alive(&s) * (2.0 + 2.426 + 2.0 - 1.0) / (2.0 - 1.0);
    assert_close(p.expected_purchases(&s, f64::INFINITY), limit, 1e-15);
    assert_close(p.expected_purchases(&s, 1e7), limit, 1e-3);
}

#[test]
fn a_path_of_horizons_equals_separate_evaluations() {
    let s = summary(7.0, 29.43, 38.86, 0.0);
    let times: Vec<f64> = (0..40).map(|i| i as f64 * 2.5).collect();
    let mut path = vec![0.0; times.len()];
    PUBLISHED.expected_purchases_path(&s, &times, &mut path);
    for (t, e) in times.iter().zip(&path) {
        assert_close(*e, PUBLISHED.expected_purchases(&s, *t), 1e-13);
    }
}

#[test]
fn value_model_serialises_to_the_documented_json() {
    let model = ValueModel {
        time_unit: TimeUnit::Week,
        bg_nbd: BgNbdParams {
            r: 0.25,
            alpha: 4.5,
            a: 0.75,
            b: 2.5,
        },
        gamma_gamma: Some(GammaGammaParams {
            p: 6.25,
            q: 3.75,
            gamma: 15.5,
        }),
        clv: ClvSettings::default(),
    };
    let json = serde_json::to_string(&model).unwrap();
    assert_eq!(
        json,
        r#"{"time_unit":"week","bg_nbd":{"r":0.25,"alpha":4.5,"a":0.75,"b":2.5},"gamma_gamma":{"p":6.25,"q":3.75,"gamma":15.5},"clv":{"horizon_days":365.0,"annual_discount_rate":0.1,"margin":1.0}}"#
    );
    let back: ValueModel = serde_json::from_str(&json).unwrap();
    assert_eq!(back, model);
}

#[test]
fn value_model_json_without_clv_settings_or_spend_model_uses_the_defaults() {
    let json = r#"{"time_unit":"day","bg_nbd":{"r":0.25,"alpha":31.0,"a":0.75,"b":2.5},"gamma_gamma":null}"#;
    let model: ValueModel = serde_json::from_str(json).unwrap();
    assert_eq!(model.time_unit, TimeUnit::Day);
    assert_eq!(model.gamma_gamma, None);
    assert_eq!(model.clv, ClvSettings::default());
    let partial: ClvSettings = serde_json::from_str(r#"{"margin":0.4}"#).unwrap();
    assert_eq!(partial.horizon_days, 365.0);
    assert_eq!(partial.margin, 0.4);
}

#[test]
fn unbounded_or_invalid_clv_settings_neither_hang_nor_give_nan() {
    let mut model = weekly_model(PUBLISHED, Some(LIFETIMES_GG));
    let s = summary(2.0, 30.43, 38.86, 22.35);
    model.clv.horizon_days = f64::INFINITY; // capped at 100 years
    let capped = model.figures(&s).clv_365d;
    model.clv.horizon_days = 100.0 * 365.0;
    assert_eq!(model.figures(&s).clv_365d, capped);
    assert!(capped.is_finite());
    model.clv.horizon_days = f64::NAN;
    assert_eq!(model.figures(&s).clv_365d, 0.0);
    assert!(!model.is_valid());
    model.clv = ClvSettings::default();
    assert!(model.is_valid());
    model.bg_nbd.a = -1.0;
    assert!(!model.is_valid());
}

#[test]
fn spend_model_with_q_below_one_gives_unbounded_value_not_nan() {
    // q <= 1: the population mean spend p·gamma/(q-1) does not exist.
    let gg = GammaGammaParams {
        p: 2.0,
        q: 0.8,
        gamma: 10.0,
    };
    let model = weekly_model(PUBLISHED, Some(gg));
    let newcomer = model.figures(&summary(0.0, 0.0, 5.0, 0.0));
    assert_eq!(newcomer.expected_spend_per_purchase, f64::INFINITY);
    assert_eq!(newcomer.clv_365d, f64::INFINITY);
    // A repeat buyer's own history gives a finite mean: 2·(10 + 3·20)/(2·3 + 0.8 - 1).
    let regular = model.figures(&summary(3.0, 20.0, 30.0, 20.0));
    assert_close(regular.expected_spend_per_purchase, 140.0 / 5.8, 1e-15);
    // Gone for good: no purchases, so no value, whatever the spend.
    let gone = model.figures(&summary(3.0, 1.0, 1e9, 20.0));
    assert!(!gone.clv_365d.is_nan());
}
