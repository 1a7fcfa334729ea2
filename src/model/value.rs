//! Customer-value model, serving side: for one customer's purchase summary it gives the
//! probability that the customer is still active, the expected number of purchases over a
//! horizon, the expected spend per purchase and a discounted customer lifetime value (CLV).
//!
//! Purchase counts follow the BG/NBD model of Fader, Hardie & Lee (2005), "Counting Your
//! Customers the Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2):
//! - log-likelihood: equation (6) of the paper, written in log space with log-sum-exp as in
//!   section 7 of Fader & Hardie's note "Implementing the BG/NBD Model for Customer Base
//!   Analysis in Excel";
//! - P(alive | x, t_x, T): the note "Computing P(alive) Using the BG/NBD Model" (Fader, Hardie
//!   & Lee 2008), `1 / (1 + [x > 0] a / (b + x - 1) ((α + T) / (α + t_x))^(r + x))`;
//! - E[X(t)] for a new customer: equation (7); E[Y(t) | x, t_x, T]: equation (10).
//!
//! Equations (7) and (10) contain `(a + b + x - 1) / (a - 1) [1 - ((α+T)/(α+T+t))^(r+x)
//! 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))]`, which is 0/0 at `a = 1` and whose 2F1 series converges
//! slowly for frequent buyers (its terms grow like k^(x + r - a)). This module evaluates the
//! Euler-transformed form instead, `(1-w)^m 2F1(m, b+x; C; w) = (1-w)^(a-1) 2F1(C-m, a-1; C; w)`
//! with `m = r + x`, `C = a + b + x - 1`, `w = t / (α + T + t)`, and divides the factor
//! `(a - 1)` out of the series analytically:
//!
//! `E[Y(t)] = P(alive) [C (1 - (1-w)^(a-1)) / (a-1) - (1-w)^(a-1) Σ_{k≥1} d_k w^k]`,
//! `d_1 = C - m`, `d_{k+1} = d_k (C - m + k)(a + k - 1) / ((C + k)(k + 1))`,
//!
//! where the first bracket is computed with `expm1`, so `a` near or equal to 1 is exact and
//! the series terms shrink like k^(a - m - 2) w^k. All horizons of one customer share the
//! coefficients `d_k`, so [`BgNbdParams::expected_purchases_path`] sums them in one pass.
//!
//! Spend follows the Gamma-Gamma model: Fader, Hardie & Lee (2005), "RFM and CLV: Using
//! Iso-Value Curves for Customer Base Analysis", Journal of Marketing Research 42(4), and
//! Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (equations 1 and 5).
//!
//! The CLV is computed as Python `lifetimes` (0.11) `customer_lifetime_value` does: monthly
//! steps `t_i`, `Σ_i (E[Y(t_i)] - E[Y(t_{i-1})]) · spend · margin / (1 + monthly rate)^i`.
//!
//! Summaries outside the model's domain (negative or NaN fields, recency past age) are pulled
//! into it rather than rejected, so the serving path returns numbers, never NaN.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::ln_gamma;

/// Relative tolerance at which the 2F1 series are stopped.
const SERIES_TOLERANCE: f64 = 1e-14;
/// Cap on 2F1 series terms. It is reached only for horizons of hundreds of times `α + T`
/// (w > 0.999), where the sum is then slightly low.
const SERIES_MAX_TERMS: usize = 50_000;
/// Horizons evaluated together in one pass over the series coefficients.
const PATH_CHUNK: usize = 16;
/// Horizons in `figures` that fit on the stack (the 90-day point plus monthly steps).
const FIGURES_STACK_POINTS: usize = 32;
const DAYS_PER_YEAR: f64 = 365.0;
/// CLV horizons are cut at 100 years, which bounds the work and memory of one call.
const MAX_HORIZON_DAYS: f64 = 100.0 * DAYS_PER_YEAR;
const DAYS_PER_MONTH: f64 = DAYS_PER_YEAR / 12.0;

/// One customer's purchase history, in the model's time unit.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct RfmSummary {
    /// x: number of repeat transactions (same-day purchases merged into one).
    pub frequency: f64,
    /// t_x: time of the last purchase, measured from the first purchase.
    pub recency: f64,
    /// T: time from the first purchase to now.
    pub age: f64,
    /// Mean value of the repeat transactions (the first purchase excluded); 0 when
    /// `frequency == 0`.
    pub mean_repeat_spend: f64,
}

/// The unit in which recency, age and the fitted `alpha` are measured.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    Week,
    Day,
}

impl TimeUnit {
    /// Converts a number of days into this unit.
    pub fn from_days(self, days: f64) -> f64 {
        match self {
            TimeUnit::Week => days / 7.0,
            TimeUnit::Day => days,
        }
    }
}

/// BG/NBD parameters: purchase rates are Gamma(r, alpha) across customers, the probability of
/// dropping out after each purchase is Beta(a, b).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Gamma-Gamma parameters: transaction values are Gamma(p, ν) with ν ~ Gamma(q, gamma).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// How the CLV is discounted and over which horizon.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(default)]
pub struct ClvSettings {
    /// Horizon of the CLV, cut into whole months of about 365/12 days. At most 100 years; 0
    /// or less (or NaN) gives a CLV of 0.
    pub horizon_days: f64,
    /// Yearly discount rate; each month is discounted by `(1 + rate)^(1/12)`.
    pub annual_discount_rate: f64,
    /// Share of spend that is profit.
    pub margin: f64,
}

impl Default for ClvSettings {
    fn default() -> Self {
        ClvSettings {
            horizon_days: 365.0,
            annual_discount_rate: 0.10,
            margin: 1.0,
        }
    }
}

/// A fitted customer-value model as it is stored and served.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct ValueModel {
    pub time_unit: TimeUnit,
    pub bg_nbd: BgNbdParams,
    /// `None` when no spend model was fitted: spend, and so the CLV, are then reported as 0.
    pub gamma_gamma: Option<GammaGammaParams>,
    #[serde(default)]
    pub clv: ClvSettings,
}

/// What the serving path reports for one customer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct ValueFigures {
    pub p_alive: f64,
    /// Expected purchases in the next 90 days.
    pub expected_purchases_90d: f64,
    /// Expected value of one future transaction (0 without a spend model).
    pub expected_spend_per_purchase: f64,
    /// Discounted value over `ClvSettings::horizon_days` (365 by default), times the margin.
    pub clv_365d: f64,
}

/// A summary with impossible values pulled into the model's domain, so that bad inputs give
/// bounded numbers instead of NaN: negative counts and times become 0, recency is at most age.
#[derive(Clone, Copy)]
struct Clean {
    x: f64,
    t_x: f64,
    age: f64,
}

impl Clean {
    fn new(s: &RfmSummary) -> Self {
        // f64::max returns the other operand for NaN, so NaN inputs also land at 0.
        let age = s.age.max(0.0);
        let x = s.frequency.max(0.0);
        let t_x = if x > 0.0 {
            s.recency.max(0.0).min(age)
        } else {
            0.0
        };
        Clean { x, t_x, age }
    }
}

impl BgNbdParams {
    /// True when every parameter is finite and positive.
    pub fn is_valid(&self) -> bool {
        [self.r, self.alpha, self.a, self.b]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    }

    /// Probability that the customer has not dropped out (1 without repeat purchases, since in
    /// the BG/NBD a customer can only drop out right after a purchase).
    pub fn p_alive(&self, s: &RfmSummary) -> f64 {
        self.p_alive_clean(Clean::new(s))
    }

    fn p_alive_clean(&self, c: Clean) -> f64 {
        if c.x <= 0.0 {
            return 1.0;
        }
        // log of the odds of having dropped out; exp of a huge value gives inf and P = 0.
        let log_odds = self.a.ln() - (self.b + c.x.max(1.0) - 1.0).ln()
            + (self.r + c.x) * ((c.age - c.t_x) / (self.alpha + c.t_x)).ln_1p();
        1.0 / (1.0 + log_odds.exp())
    }

    /// E[Y(t) | x, t_x, T]: expected repeat purchases in the next `t` time units (eq. 10).
    /// `t <= 0` (or NaN) gives 0; `t = +inf` gives the limit `P(alive) (a+b+x-1) / (a-1)` when
    /// `a > 1`, else +inf.
    pub fn expected_purchases(&self, s: &RfmSummary, t: f64) -> f64 {
        let mut out = [0.0];
        self.expected_purchases_path(s, &[t], &mut out);
        out[0]
    }

    /// E[X(t)]: expected repeat purchases in the first `t` time units of a new customer (eq. 7).
    pub fn unconditional_expected_purchases(&self, t: f64) -> f64 {
        let fresh = Clean {
            x: 0.0,
            t_x: 0.0,
            age: 0.0,
        };
        let mut out = [0.0];
        self.path_clean(fresh, &[t], &mut out);
        out[0]
    }

    /// E[Y(t_j) | x, t_x, T] for several horizons at the cost of about one: the series
    /// coefficients depend on the customer only, the horizons only change the powers of `w`.
    ///
    /// # Panics
    /// When `out` is shorter than `times`.
    pub fn expected_purchases_path(&self, s: &RfmSummary, times: &[f64], out: &mut [f64]) {
        self.path_clean(Clean::new(s), times, out);
    }

    fn path_clean(&self, c: Clean, times: &[f64], out: &mut [f64]) {
        assert!(out.len() >= times.len(), "output shorter than horizons");
        let p_alive = self.p_alive_clean(c);
        let k = Customer {
            p_alive,
            m: self.r + c.x,
            scale: self.alpha + c.age,
            big_c: self.a + self.b + c.x - 1.0,
        };
        for (t_chunk, o_chunk) in times.chunks(PATH_CHUNK).zip(out.chunks_mut(PATH_CHUNK)) {
            self.path_chunk(&k, t_chunk, o_chunk);
        }
    }

    fn path_chunk(&self, k: &Customer, times: &[f64], out: &mut [f64]) {
        let n = times.len();
        let am1 = self.a - 1.0;
        let mut w = [0.0; PATH_CHUNK];
        let mut closed = [0.0; PATH_CHUNK];
        let mut pow = [0.0; PATH_CHUNK];
        let mut power = [1.0; PATH_CHUNK];
        let mut series = [0.0; PATH_CHUNK];
        let mut widest = 0;
        let mut limit = [false; PATH_CHUNK];
        for j in 0..n {
            let t = times[j];
            if t.is_nan() || t <= 0.0 {
                continue; // E[Y(0)] = 0; w = 0 keeps the lane at 0.
            }
            if t == f64::INFINITY {
                limit[j] = true;
                continue;
            }
            let s = t / k.scale;
            let ln_1mw = -s.ln_1p();
            let z = am1 * ln_1mw;
            let em1 = z.exp_m1();
            // (1 - (1-w)^(a-1)) / (a-1) = -ln(1-w) · expm1(z)/z, which is -ln(1-w) at a = 1.
            let exprel = if z == 0.0 { 1.0 } else { em1 / z };
            closed[j] = -ln_1mw * exprel;
            pow[j] = 1.0 + em1;
            w[j] = s / (1.0 + s);
            if w[j] > w[widest] {
                widest = j;
            }
        }
        let w_max = w[widest];
        if w_max > 0.0 {
            let (a, m, big_c) = (self.a, k.m, k.big_c);
            let mut d = big_c - m;
            let mut kf = 1.0;
            // The widest lane again as scalars: indexing the arrays by a runtime lane would
            // keep them in memory instead of registers.
            let (mut power_max, mut series_max) = (1.0, 0.0);
            for _ in 0..SERIES_MAX_TERMS {
                if d == 0.0 {
                    break; // C - m is a non-positive integer: the series is a polynomial.
                }
                for ((pw, sum), wj) in power[..n]
                    .iter_mut()
                    .zip(series[..n].iter_mut())
                    .zip(&w[..n])
                {
                    *pw *= wj;
                    *sum += d * *pw;
                }
                power_max *= w_max;
                series_max += d * power_max;
                let ratio = (big_c - m + kf) * (a + kf - 1.0) / ((big_c + kf) * (kf + 1.0));
                d *= ratio;
                kf += 1.0;
                // Past the first few terms the coefficient ratios move monotonically towards
                // 1, so max(|ratio|, 1)·w bounds every later term ratio and the tail is at
                // most next / (1 - rho).
                let rho = ratio.abs().max(1.0) * w_max;
                let next = (d * power_max * w_max).abs();
                if rho < 1.0 && next <= SERIES_TOLERANCE * (1.0 - rho) * series_max.abs() {
                    break;
                }
            }
        }
        for j in 0..n {
            out[j] = if limit[j] {
                self.limit_purchases(k)
            } else if w[j] == 0.0 {
                0.0
            } else {
                let e = k.p_alive * (k.big_c * closed[j] - pow[j] * series[j]);
                // Rounding can leave a tiny negative number at very short horizons.
                e.max(0.0)
            };
        }
    }

    /// Limit of E[Y(t)] as t grows: finite, P(alive)·E[1/p], only when a > 1.
    fn limit_purchases(&self, k: &Customer) -> f64 {
        if k.p_alive == 0.0 {
            0.0
        } else if self.a > 1.0 {
            k.p_alive * k.big_c / (self.a - 1.0)
        } else {
            f64::INFINITY
        }
    }

    /// Log-likelihood of one customer's (x, t_x, T) under the BG/NBD, eq. (6) in log space.
    pub fn log_likelihood(&self, s: &RfmSummary) -> f64 {
        let c = Clean::new(s);
        let (r, alpha, a, b, x) = (self.r, self.alpha, self.a, self.b, c.x);
        let common =
            ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x)
                - ln_gamma(b)
                - ln_gamma(a + b + x);
        let still_active = -(r + x) * (alpha + c.age).ln();
        if x > 0.0 {
            let dropped = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.t_x).ln();
            common + log_add_exp(still_active, dropped)
        } else {
            common + still_active
        }
    }
}

/// Per-customer quantities shared by all horizons.
struct Customer {
    p_alive: f64,
    /// r + x: shape of the posterior purchase rate.
    m: f64,
    /// α + T: rate of the posterior purchase rate.
    scale: f64,
    /// a + b + x - 1.
    big_c: f64,
}

impl GammaGammaParams {
    /// True when every parameter is finite and positive.
    pub fn is_valid(&self) -> bool {
        [self.p, self.q, self.gamma]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    }

    /// E[M | p, q, γ, x, z̄]: expected value of a future transaction (note 025, eq. 5), a
    /// weighted mean of the population mean `pγ/(q-1)` and the customer's own mean. Without
    /// repeat transactions it is the population mean. Infinite when `q <= 1` leaves the
    /// population mean undefined and the customer's history does not make up for it.
    pub fn expected_spend(&self, s: &RfmSummary) -> f64 {
        let x = s.frequency.max(0.0);
        let own_total = if x > 0.0 {
            x * s.mean_repeat_spend.max(0.0)
        } else {
            0.0
        };
        let denominator = self.p * x + self.q - 1.0;
        if denominator <= 0.0 {
            return f64::INFINITY;
        }
        self.p * (self.gamma + own_total) / denominator
    }

    /// Log-density of the customer's mean repeat spend given x (note 025, eq. 1). Customers
    /// without repeat transactions carry no spend information and contribute 0.
    pub fn log_likelihood(&self, s: &RfmSummary) -> f64 {
        let x = s.frequency;
        if x.is_nan() || x <= 0.0 {
            return 0.0;
        }
        let z = s.mean_repeat_spend;
        let (p, q, g) = (self.p, self.q, self.gamma);
        // eq. 1 with u = γ/(x z̄), so the large px·ln terms cancel exactly, not in rounding.
        let u = g / (x * z);
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q) - z.ln() + q * u.ln()
            - (p * x + q) * u.ln_1p()
    }
}

impl ValueModel {
    /// True when the parameters are valid and the CLV settings finite, with a discount rate
    /// above -100%: what a loaded model should be checked for before it serves.
    pub fn is_valid(&self) -> bool {
        let clv = &self.clv;
        self.bg_nbd.is_valid()
            && self.gamma_gamma.is_none_or(|gg| gg.is_valid())
            && clv.horizon_days.is_finite()
            && clv.annual_discount_rate.is_finite()
            && clv.annual_discount_rate > -1.0
            && clv.margin.is_finite()
    }

    /// The serving figures for one customer; 90 days and the CLV horizon are converted into
    /// the model's time unit. All horizons share one pass over the 2F1 series.
    pub fn figures(&self, s: &RfmSummary) -> ValueFigures {
        let spend = self.spend(s);
        let (steps, step, per_step_rate) = self.clv_steps();
        if steps >= FIGURES_STACK_POINTS {
            // Horizons past 2.5 years do not fit on the stack; rare enough to allocate.
            return self.figures_allocating(s, spend, steps, step, per_step_rate);
        }
        let mut times = [0.0; FIGURES_STACK_POINTS];
        let mut expected = [0.0; FIGURES_STACK_POINTS];
        let (times, expected) = (&mut times[..=steps], &mut expected[..=steps]);
        fill_times(times, self.time_unit.from_days(90.0), step);
        let clean = Clean::new(s);
        self.bg_nbd.path_clean(clean, times, expected);
        ValueFigures {
            p_alive: self.bg_nbd.p_alive_clean(clean),
            expected_purchases_90d: expected[0],
            expected_spend_per_purchase: spend,
            clv_365d: self.discount(&expected[1..], spend, per_step_rate),
        }
    }

    fn figures_allocating(
        &self,
        s: &RfmSummary,
        spend: f64,
        steps: usize,
        step: f64,
        per_step_rate: f64,
    ) -> ValueFigures {
        let mut times = vec![0.0; steps + 1];
        let mut expected = vec![0.0; steps + 1];
        fill_times(&mut times, self.time_unit.from_days(90.0), step);
        self.bg_nbd
            .expected_purchases_path(s, &times, &mut expected);
        ValueFigures {
            p_alive: self.bg_nbd.p_alive(s),
            expected_purchases_90d: expected[0],
            expected_spend_per_purchase: spend,
            clv_365d: self.discount(&expected[1..], spend, per_step_rate),
        }
    }

    /// Expected spend per purchase, 0 when the model has no spend part.
    fn spend(&self, s: &RfmSummary) -> f64 {
        self.gamma_gamma.map_or(0.0, |gg| gg.expected_spend(s))
    }

    /// Number of monthly steps, step length in model units and discount rate per step.
    fn clv_steps(&self) -> (usize, f64, f64) {
        let days = self.clv.horizon_days;
        if days.is_nan() || days <= 0.0 {
            return (0, 0.0, 0.0);
        }
        let days = days.min(MAX_HORIZON_DAYS);
        // Whole months of about 365/12 days: the default 365 days is lifetimes' `time=12`.
        let steps = (days / DAYS_PER_MONTH).round().max(1.0) as usize;
        let step_days = days / steps as f64;
        let per_step_rate =
            (1.0 + self.clv.annual_discount_rate).powf(step_days / DAYS_PER_YEAR) - 1.0;
        (steps, self.time_unit.from_days(step_days), per_step_rate)
    }

    /// Discounted value of `steps` purchase increments of length `step` (model time units),
    /// each discounted by `(1 + rate_per_step)^i`, as in `lifetimes`'
    /// `customer_lifetime_value(..., time=steps, discount_rate=rate_per_step)` with a period
    /// factor of `step`. Uses the model's spend and margin.
    pub fn discounted_value(
        &self,
        s: &RfmSummary,
        step: f64,
        steps: usize,
        rate_per_step: f64,
    ) -> f64 {
        let spend = self.spend(s);
        let mut times = vec![0.0; steps];
        let mut expected = vec![0.0; steps];
        for (i, t) in times.iter_mut().enumerate() {
            *t = step * (i + 1) as f64;
        }
        self.bg_nbd
            .expected_purchases_path(s, &times, &mut expected);
        self.discount(&expected, spend, rate_per_step)
    }

    /// Σ_i (E_i - E_{i-1}) spend · margin / (1 + rate)^i over cumulative expectations E_i.
    fn discount(&self, cumulative: &[f64], spend: f64, rate_per_step: f64) -> f64 {
        let factor = 1.0 / (1.0 + rate_per_step);
        let mut discount = 1.0;
        let mut previous = 0.0;
        let mut purchases = 0.0;
        for &e in cumulative {
            discount *= factor;
            purchases += (e - previous) * discount;
            previous = e;
        }
        // No purchases is no value even when the spend is unbounded (q <= 1).
        if purchases == 0.0 || spend == 0.0 {
            return 0.0;
        }
        purchases * spend * self.clv.margin
    }
}

/// `times[0]` = the 90-day horizon, then `step, 2·step, ...`.
fn fill_times(times: &mut [f64], first: f64, step: f64) {
    times[0] = first;
    for (i, t) in times.iter_mut().enumerate().skip(1) {
        *t = step * i as f64;
    }
}

fn log_add_exp(u: f64, v: f64) -> f64 {
    let hi = u.max(v);
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + ((u - hi).exp() + (v - hi).exp()).ln()
}

/// Gauss hypergeometric function 2F1(a, b; c; z) by its power series, for |z| < 1.
///
/// Stops when the next term, with a geometric bound on the tail, falls below `1e-14` of the
/// sum; `None` when |z| >= 1, `c` is a non-positive integer, or the series has not converged
/// within 50 000 terms. The model itself uses the specialised series in
/// [`BgNbdParams::expected_purchases_path`]; this general one is kept for checks against the
/// textbook form of the formulas.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if z.is_nan() || z.abs() >= 1.0 || (c <= 0.0 && c == c.floor()) {
        return None;
    }
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 0..SERIES_MAX_TERMS {
        let kf = k as f64;
        let ratio = (a + kf) * (b + kf) / ((c + kf) * (kf + 1.0));
        term *= ratio * z;
        sum += term;
        if term == 0.0 {
            return Some(sum);
        }
        let rho = ratio.abs().max(1.0) * z.abs();
        if rho < 1.0 && term.abs() * rho <= SERIES_TOLERANCE * (1.0 - rho) * sum.abs() {
            return Some(sum);
        }
    }
    None
}

impl ValueModel {
    /// The model's inputs for a customer, from the profile's purchase summary (in days). A
    /// customer with no purchase yet is treated as one acquired just now: no repeat purchases
    /// and an age of zero, which gives the population's expectations.
    pub fn summary(&self, purchases: Option<crate::profile::PurchaseSummary>) -> RfmSummary {
        match purchases {
            Some(s) => RfmSummary {
                frequency: s.frequency,
                recency: self.time_unit.from_days(s.recency_days),
                age: self.time_unit.from_days(s.age_days),
                mean_repeat_spend: s.mean_repeat_spend,
            },
            None => RfmSummary {
                frequency: 0.0,
                recency: 0.0,
                age: 0.0,
                mean_repeat_spend: 0.0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z (Abramowitz & Stegun 15.1.3).
        for z in [-0.9, -0.3, 0.1, 0.5, 0.9, 0.99] {
            let got = hyp2f1(1.0, 1.0, 2.0, z).unwrap();
            let want = -(-z).ln_1p() / z;
            assert!(
                (got - want).abs() < 1e-12 * want.abs(),
                "z={z}: {got} vs {want}"
            );
        }
        // 2F1(a, b; b; z) = (1 - z)^(-a) (A&S 15.1.8).
        let got = hyp2f1(0.7, 2.5, 2.5, 0.8).unwrap();
        assert!((got - 0.2f64.powf(-0.7)).abs() < 1e-12);
    }

    #[test]
    fn hyp2f1_refuses_arguments_outside_the_unit_disc() {
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 1.0), None);
        assert_eq!(hyp2f1(1.0, 1.0, -2.0, 0.5), None);
    }
}
