//! Customer-value model, training side: maximum-likelihood fits of the BG/NBD purchase model
//! and the Gamma-Gamma spend model.
//!
//! Likelihoods: BG/NBD equation (6) of Fader, Hardie & Lee (2005), "Counting Your Customers
//! the Easy Way", Marketing Science 24(2), in the log-sum-exp form of Fader & Hardie's note
//! "Implementing the BG/NBD Model for Customer Base Analysis in Excel"; Gamma-Gamma equation
//! (1) of Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value". Both are maximised
//! over the logs of the parameters (which keeps them positive without constraints) with
//! argmin's L-BFGS and a More-Thuente line search, using analytic gradients (the derivatives
//! of the log-gamma terms are digamma functions).
//!
//! The objective is the mean negative log-likelihood plus `penalizer · Σ θ²` over the
//! parameters themselves, as Python `lifetimes`' `penalizer_coef` does, so tolerances do not
//! depend on the number of customers. Identical rows are merged with weights first: customers
//! without repeat purchases differ only by their first-purchase date, so a cohort collapses to
//! a few hundred distinct rows, and the log-gamma and digamma terms are computed once per
//! distinct frequency.

use std::cell::RefCell;

use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use statrs::function::gamma::{digamma, ln_gamma};

use crate::model::value::{BgNbdParams, GammaGammaParams, RfmSummary};

/// Fewest customers a BG/NBD fit accepts: one more than its parameters.
const MIN_BG_NBD_CUSTOMERS: usize = 5;
/// Fewest repeat customers a Gamma-Gamma fit accepts: one more than its parameters.
const MIN_GAMMA_GAMMA_CUSTOMERS: usize = 4;
/// Past-gradient pairs L-BFGS keeps; with 3 or 4 parameters this is full BFGS in effect.
const LBFGS_MEMORY: usize = 8;
/// How far past the tolerance a gradient norm may be for the fit to be returned as not
/// converged rather than failed.
const ACCEPTANCE_FACTOR: f64 = 1000.0;
/// Relative cost differences below this are rounding, not progress.
const COST_NOISE: f64 = 1e-13;
/// Fresh L-BFGS starts allowed after a run that stopped short of the tolerance.
const MAX_RESTARTS: usize = 5;

/// Settings of a fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// Cap on L-BFGS iterations.
    pub max_iterations: u64,
    /// Converged when the gradient of the mean negative log-likelihood with respect to the
    /// log-parameters has at most this Euclidean norm. At the default, 1e-8, the CDNOW
    /// estimates agree with tighter fits to about six digits.
    pub tolerance: f64,
    /// L2 penalty on the parameters (not their logs), added to the mean negative
    /// log-likelihood, like `lifetimes`' `penalizer_coef`. 0 is plain maximum likelihood; on
    /// small samples, whose estimates can drift towards 0 or infinity, 0.001 to 0.1 keeps
    /// them in range.
    pub penalizer: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            max_iterations: 500,
            tolerance: 1e-8,
            penalizer: 0.0,
        }
    }
}

/// Outcome of a fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitReport<P> {
    pub params: P,
    /// Total (not mean) log-likelihood of the data at `params`, without the penalty: the
    /// number the papers report (-9582.4 for the BG/NBD on CDNOW).
    pub log_likelihood: f64,
    pub iterations: u64,
    /// True when the gradient norm reached `FitOptions::tolerance`. False when the search
    /// stopped earlier (iteration cap, or line searches that could make no more progress)
    /// with a gradient norm still within 1000 × tolerance: usable, but less precise. Beyond
    /// that the fit fails with [`FitError::DidNotConverge`].
    pub converged: bool,
    /// Customers the fit used (for the Gamma-Gamma, those with repeat purchases).
    pub n_customers: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("too few customers to fit: {got}, need at least {needed}")]
    TooFewCustomers { got: usize, needed: usize },
    #[error("no customer has a repeat purchase")]
    NoRepeatCustomers,
    #[error("customer {index} has a non-finite value")]
    NonFiniteData { index: usize },
    #[error("customer {index} is inconsistent: {reason}")]
    InvalidData { index: usize, reason: &'static str },
    #[error("invalid fit options: {0}")]
    InvalidOptions(&'static str),
    #[error(
        "did not converge after {iterations} iterations (gradient norm {gradient_norm:e}): {reason}"
    )]
    DidNotConverge {
        iterations: u64,
        gradient_norm: f64,
        reason: String,
    },
}

/// Fits the BG/NBD to customers' (frequency, recency, age); spend is ignored.
pub fn fit_bg_nbd(
    data: &[RfmSummary],
    opts: &FitOptions,
) -> Result<FitReport<BgNbdParams>, FitError> {
    check_options(opts)?;
    for (index, s) in data.iter().enumerate() {
        if !(s.frequency.is_finite() && s.recency.is_finite() && s.age.is_finite()) {
            return Err(FitError::NonFiniteData { index });
        }
        if s.frequency < 0.0 || s.recency < 0.0 {
            return Err(FitError::InvalidData {
                index,
                reason: "negative frequency or recency",
            });
        }
        if s.recency > s.age {
            return Err(FitError::InvalidData {
                index,
                reason: "recency exceeds age",
            });
        }
    }
    if data.len() < MIN_BG_NBD_CUSTOMERS {
        return Err(FitError::TooFewCustomers {
            got: data.len(),
            needed: MIN_BG_NBD_CUSTOMERS,
        });
    }
    if !data.iter().any(|s| s.frequency > 0.0) {
        return Err(FitError::NoRepeatCustomers);
    }
    let objective = BgNbdObjective::new(data);
    let total_x: f64 = data.iter().map(|s| s.frequency).sum();
    let total_age: f64 = data.iter().map(|s| s.age).sum();
    // Start at a = b = r = 1 with the mean purchase rate r/alpha matching the data's.
    let alpha0 = (total_age / total_x).max(1e-6);
    let start = vec![0.0, alpha0.ln(), 0.0, 0.0];
    let best = minimise(&objective, opts.penalizer, start, opts)?;
    let params = BgNbdParams {
        r: best.theta[0].exp(),
        alpha: best.theta[1].exp(),
        a: best.theta[2].exp(),
        b: best.theta[3].exp(),
    };
    Ok(FitReport {
        params,
        log_likelihood: best.log_likelihood,
        iterations: best.iterations,
        converged: best.converged,
        n_customers: data.len(),
    })
}

/// Fits the Gamma-Gamma to the customers with repeat purchases (`frequency > 0`), whose
/// `mean_repeat_spend` must be positive; the others are skipped.
pub fn fit_gamma_gamma(
    data: &[RfmSummary],
    opts: &FitOptions,
) -> Result<FitReport<GammaGammaParams>, FitError> {
    check_options(opts)?;
    let mut repeat = Vec::new();
    for (index, s) in data.iter().enumerate() {
        if s.frequency.is_nan() || s.frequency.is_infinite() {
            return Err(FitError::NonFiniteData { index });
        }
        if s.frequency <= 0.0 {
            continue;
        }
        if !s.mean_repeat_spend.is_finite() {
            return Err(FitError::NonFiniteData { index });
        }
        if s.mean_repeat_spend <= 0.0 {
            return Err(FitError::InvalidData {
                index,
                reason: "mean repeat spend must be positive",
            });
        }
        repeat.push((s.frequency, s.mean_repeat_spend));
    }
    if repeat.is_empty() {
        return Err(FitError::NoRepeatCustomers);
    }
    if repeat.len() < MIN_GAMMA_GAMMA_CUSTOMERS {
        return Err(FitError::TooFewCustomers {
            got: repeat.len(),
            needed: MIN_GAMMA_GAMMA_CUSTOMERS,
        });
    }
    let n_customers = repeat.len();
    let mean_spend = repeat.iter().map(|&(_, z)| z).sum::<f64>() / n_customers as f64;
    let objective = GammaGammaObjective::new(repeat);
    // Start at p = 1, q = 2 with the population mean p·gamma/(q-1) equal to the data's.
    let start = vec![0.0, 2f64.ln(), mean_spend.ln()];
    let best = minimise(&objective, opts.penalizer, start, opts)?;
    let params = GammaGammaParams {
        p: best.theta[0].exp(),
        q: best.theta[1].exp(),
        gamma: best.theta[2].exp(),
    };
    Ok(FitReport {
        params,
        log_likelihood: best.log_likelihood,
        iterations: best.iterations,
        converged: best.converged,
        n_customers,
    })
}

fn check_options(opts: &FitOptions) -> Result<(), FitError> {
    if !(opts.tolerance.is_finite() && opts.tolerance > 0.0) {
        return Err(FitError::InvalidOptions(
            "tolerance must be positive and finite",
        ));
    }
    if !(opts.penalizer.is_finite() && opts.penalizer >= 0.0) {
        return Err(FitError::InvalidOptions(
            "penalizer must be non-negative and finite",
        ));
    }
    if opts.max_iterations == 0 {
        return Err(FitError::InvalidOptions("max_iterations must be positive"));
    }
    Ok(())
}

/// A weighted log-likelihood of positive parameters; the optimiser works on their logs θ.
trait Objective {
    /// Total weighted log-likelihood at `params`, and its gradient with respect to the
    /// parameters into `grad`.
    fn log_likelihood(&self, params: &[f64], grad: &mut [f64]) -> f64;
    fn total_weight(&self) -> f64;
}

struct Minimum {
    theta: Vec<f64>,
    log_likelihood: f64,
    iterations: u64,
    converged: bool,
}

fn minimise<O: Objective>(
    objective: &O,
    penalizer: f64,
    start: Vec<f64>,
    opts: &FitOptions,
) -> Result<Minimum, FitError> {
    let mut theta = start;
    let mut iterations = 0;
    let mut reason = String::new();
    let mut grad = vec![0.0; theta.len()];
    let (mut cost, mut log_likelihood) = evaluate(objective, penalizer, &theta, &mut grad);
    let mut gradient_norm = norm(&grad);
    for _ in 0..=MAX_RESTARTS {
        if gradient_norm <= opts.tolerance || iterations >= opts.max_iterations {
            break;
        }
        let run = run_lbfgs(
            objective,
            penalizer,
            theta.clone(),
            opts.max_iterations - iterations,
            opts.tolerance,
        )
        .map_err(|e| FitError::DidNotConverge {
            iterations,
            gradient_norm,
            reason: e,
        })?;
        iterations += run.iterations;
        reason = run.reason;
        let (new_cost, new_ll) = evaluate(objective, penalizer, &run.theta, &mut grad);
        let new_norm = norm(&grad);
        let progress = new_cost < cost;
        // On a flat ridge the cost can stop changing in f64 while the gradient still shrinks.
        let level = new_cost <= cost + COST_NOISE * cost.abs().max(1.0);
        if progress || (level && new_norm < gradient_norm) {
            (theta, cost, log_likelihood, gradient_norm) = (run.theta, new_cost, new_ll, new_norm);
        }
        if !progress {
            break;
        }
        // If still above the tolerance, L-BFGS stopped early, typically because its curvature
        // pairs no longer gave a descent direction along the likelihood's narrow ridge: the
        // next pass starts it again from the best point with an empty memory.
    }
    let finite = cost.is_finite() && theta.iter().all(|t| t.exp().is_finite());
    if !finite || gradient_norm.is_nan() || gradient_norm > ACCEPTANCE_FACTOR * opts.tolerance {
        return Err(FitError::DidNotConverge {
            iterations,
            gradient_norm,
            reason,
        });
    }
    Ok(Minimum {
        theta,
        log_likelihood,
        iterations,
        converged: gradient_norm <= opts.tolerance,
    })
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|g| g * g).sum::<f64>().sqrt()
}

type Solver = LBFGS<MoreThuenteLineSearch<Vec<f64>, Vec<f64>, f64>, Vec<f64>, Vec<f64>, f64>;

/// Log-parameters with the cost and gradient there.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

struct Run {
    theta: Vec<f64>,
    iterations: u64,
    reason: String,
}

/// One L-BFGS run from `start`; the best point it saw, or why it could not start.
fn run_lbfgs<O: Objective>(
    objective: &O,
    penalizer: f64,
    start: Vec<f64>,
    max_iterations: u64,
    tolerance: f64,
) -> Result<Run, String> {
    let problem = Problem {
        objective,
        penalizer,
        last: RefCell::new(None),
    };
    let solver: Solver = LBFGS::new(MoreThuenteLineSearch::new(), LBFGS_MEMORY)
        .with_tolerance_grad(tolerance)
        .and_then(|s| s.with_tolerance_cost(0.0))
        .map_err(|e| e.to_string())?;
    let run = Executor::new(problem, solver)
        .configure(|state| state.param(start).max_iters(max_iterations))
        .timer(false)
        .run()
        .map_err(|e| e.to_string())?;
    let state = run.state();
    Ok(Run {
        theta: state
            .get_best_param()
            .cloned()
            .ok_or_else(|| "L-BFGS returned no parameters".to_string())?,
        iterations: state.get_iter(),
        reason: state
            .get_termination_reason()
            .map_or_else(String::new, |r| r.text().to_string()),
    })
}

/// Mean penalised negative log-likelihood at θ and its θ-gradient; also the total
/// log-likelihood without the penalty.
fn evaluate<O: Objective>(
    objective: &O,
    penalizer: f64,
    theta: &[f64],
    grad: &mut [f64],
) -> (f64, f64) {
    let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
    let ll = objective.log_likelihood(&params, grad);
    let n = objective.total_weight();
    let mut cost = -ll / n;
    for (g, p) in grad.iter_mut().zip(&params) {
        // d/dθ = p · d/dp for p = exp θ.
        *g = -*g * p / n + 2.0 * penalizer * p * p;
        cost += penalizer * p * p;
    }
    (cost, ll)
}

/// argmin's view of an objective. argmin asks for the cost and the gradient separately,
/// mostly at the same point, so the last evaluation is kept.
struct Problem<'a, O> {
    objective: &'a O,
    penalizer: f64,
    last: RefCell<Option<Evaluation>>,
}

impl<O: Objective> Problem<'_, O> {
    fn at(&self, theta: &[f64]) -> Result<(f64, Vec<f64>), ArgminError> {
        if let Some((t, c, g)) = self.last.borrow().as_ref()
            && t.as_slice() == theta
        {
            return Ok((*c, g.clone()));
        }
        let mut grad = vec![0.0; theta.len()];
        let (cost, _) = evaluate(self.objective, self.penalizer, theta, &mut grad);
        if !cost.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(ArgminError::msg(
                "log-likelihood is not finite at these parameters",
            ));
        }
        *self.last.borrow_mut() = Some((theta.to_vec(), cost, grad.clone()));
        Ok((cost, grad))
    }
}

impl<O: Objective> CostFunction for Problem<'_, O> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Self::Param) -> Result<f64, ArgminError> {
        Ok(self.at(theta)?.0)
    }
}

impl<O: Objective> Gradient for Problem<'_, O> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Self::Param) -> Result<Vec<f64>, ArgminError> {
        Ok(self.at(theta)?.1)
    }
}

/// Customers sharing one frequency: the log-gamma terms depend on nothing else.
struct Level {
    x: f64,
    weight: f64,
}

/// Distinct (frequency, recency, age) with the number of customers having it.
struct BgNbdRow {
    level: usize,
    t_x: f64,
    age: f64,
    weight: f64,
}

struct BgNbdObjective {
    levels: Vec<Level>,
    rows: Vec<BgNbdRow>,
    total_weight: f64,
}

impl BgNbdObjective {
    fn new(data: &[RfmSummary]) -> Self {
        let mut keys: Vec<(f64, f64, f64)> = data
            .iter()
            .map(|s| {
                // Recency carries no information without repeat purchases.
                let t_x = if s.frequency > 0.0 { s.recency } else { 0.0 };
                (s.frequency, t_x, s.age)
            })
            .collect();
        keys.sort_by(|p, q| {
            p.0.total_cmp(&q.0)
                .then(p.1.total_cmp(&q.1))
                .then(p.2.total_cmp(&q.2))
        });
        let mut levels: Vec<Level> = Vec::new();
        let mut rows: Vec<BgNbdRow> = Vec::new();
        for (x, t_x, age) in keys {
            if levels.last().is_none_or(|l| l.x != x) {
                levels.push(Level { x, weight: 0.0 });
            }
            let level = levels.len() - 1;
            levels[level].weight += 1.0;
            match rows.last_mut() {
                Some(row) if row.level == level && row.t_x == t_x && row.age == age => {
                    row.weight += 1.0;
                }
                _ => rows.push(BgNbdRow {
                    level,
                    t_x,
                    age,
                    weight: 1.0,
                }),
            }
        }
        BgNbdObjective {
            levels,
            rows,
            total_weight: data.len() as f64,
        }
    }
}

/// Per-frequency terms of the BG/NBD likelihood at the current parameters.
struct LevelTerms {
    /// r + x
    m: f64,
    /// ln a - ln(b + x - 1): log of the weight of the "dropped out after t_x" branch.
    dropped: f64,
    /// 1 / (b + x - 1)
    inv_bx1: f64,
}

impl Objective for BgNbdObjective {
    fn total_weight(&self) -> f64 {
        self.total_weight
    }

    fn log_likelihood(&self, params: &[f64], grad: &mut [f64]) -> f64 {
        let (r, alpha, a, b) = (params[0], params[1], params[2], params[3]);
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let (lg_r, dg_r) = (ln_gamma(r), digamma(r));
        let (lg_b, dg_b) = (ln_gamma(b), digamma(b));
        let (lg_ab, dg_ab) = (ln_gamma(a + b), digamma(a + b));
        let mut ll = 0.0;
        let (mut g_r, mut g_alpha, mut g_a, mut g_b) = (0.0, 0.0, 0.0, 0.0);
        let mut terms = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            let (x, w) = (level.x, level.weight);
            let (lg_rx, dg_rx, lg_bx, dg_bx, lg_abx, dg_abx) = if x == 0.0 {
                (lg_r, dg_r, lg_b, dg_b, lg_ab, dg_ab)
            } else {
                (
                    ln_gamma(r + x),
                    digamma(r + x),
                    ln_gamma(b + x),
                    digamma(b + x),
                    ln_gamma(a + b + x),
                    digamma(a + b + x),
                )
            };
            ll += w * (lg_rx - lg_r + r * ln_alpha + lg_ab + lg_bx - lg_b - lg_abx);
            g_r += w * (dg_rx - dg_r + ln_alpha);
            g_alpha += w * r / alpha;
            g_a += w * (dg_ab - dg_abx);
            g_b += w * (dg_ab + dg_bx - dg_b - dg_abx);
            // Like lifetimes, max(x, 1) keeps the unused branch finite when x = 0.
            let bx1 = b + x.max(1.0) - 1.0;
            terms.push(LevelTerms {
                m: r + x,
                dropped: ln_a - bx1.ln(),
                inv_bx1: 1.0 / bx1,
            });
        }
        for row in &self.rows {
            let level = &terms[row.level];
            let w = row.weight;
            let (m, at_age) = (level.m, alpha + row.age);
            let ln_age = at_age.ln();
            let active = -m * ln_age;
            if self.levels[row.level].x == 0.0 {
                ll += w * active;
                g_r -= w * ln_age;
                g_alpha -= w * m / at_age;
                continue;
            }
            let at_tx = alpha + row.t_x;
            let ln_tx = at_tx.ln();
            let dropped = level.dropped - m * ln_tx;
            // log(e^active + e^dropped) and the two branches' shares of it.
            let hi = active.max(dropped);
            let small = (-(active - dropped).abs()).exp();
            ll += w * (hi + small.ln_1p());
            let share_small = small / (1.0 + small);
            let (s_active, s_dropped) = if active >= dropped {
                (1.0 - share_small, share_small)
            } else {
                (share_small, 1.0 - share_small)
            };
            g_r -= w * (s_active * ln_age + s_dropped * ln_tx);
            g_alpha -= w * m * (s_active / at_age + s_dropped / at_tx);
            g_a += w * s_dropped / a;
            g_b -= w * s_dropped * level.inv_bx1;
        }
        grad[0] = g_r;
        grad[1] = g_alpha;
        grad[2] = g_a;
        grad[3] = g_b;
        ll
    }
}

/// Distinct (frequency, mean spend) with its count and the logs that do not change.
struct SpendRow {
    level: usize,
    z: f64,
    /// 1 / (x z) and ln(x z): the customer's total repeat spend enters only through
    /// u = gamma / (x z).
    inv_total: f64,
    ln_total: f64,
    weight: f64,
}

/// The Gamma-Gamma log-likelihood of a customer, rewritten with u = γ / (x z̄) as
/// `lnΓ(px+q) - lnΓ(px) - lnΓ(q) - ln z̄ + q ln u - (px+q) ln(1+u)`: the `px ln(...)` terms of
/// the textbook form, each hundreds of units, cancel analytically instead of in rounding,
/// which lets the optimiser resolve the gradient along the likelihood's flat ridge.
struct GammaGammaObjective {
    levels: Vec<Level>,
    rows: Vec<SpendRow>,
    /// Σ -ln z̄ over customers: constant, kept apart from the parameter-dependent sum.
    constant: f64,
    total_weight: f64,
}

impl GammaGammaObjective {
    fn new(mut repeat: Vec<(f64, f64)>) -> Self {
        let total_weight = repeat.len() as f64;
        let constant = -repeat.iter().map(|&(_, z)| z.ln()).sum::<f64>();
        repeat.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.total_cmp(&q.1)));
        let mut levels: Vec<Level> = Vec::new();
        let mut rows: Vec<SpendRow> = Vec::new();
        for (x, z) in repeat {
            if levels.last().is_none_or(|l| l.x != x) {
                levels.push(Level { x, weight: 0.0 });
            }
            let level = levels.len() - 1;
            levels[level].weight += 1.0;
            match rows.last_mut() {
                Some(row) if row.level == level && row.z == z => row.weight += 1.0,
                _ => rows.push(SpendRow {
                    level,
                    z,
                    inv_total: 1.0 / (x * z),
                    ln_total: (x * z).ln(),
                    weight: 1.0,
                }),
            }
        }
        GammaGammaObjective {
            levels,
            rows,
            constant,
            total_weight,
        }
    }
}

impl Objective for GammaGammaObjective {
    fn total_weight(&self) -> f64 {
        self.total_weight
    }

    fn log_likelihood(&self, params: &[f64], grad: &mut [f64]) -> f64 {
        let (p, q, g) = (params[0], params[1], params[2]);
        let ln_g = g.ln();
        let (lg_q, dg_q) = (ln_gamma(q), digamma(q));
        let mut ll = 0.0;
        let (mut g_p, mut g_q, mut g_g) = (0.0, 0.0, 0.0);
        let mut px_by_level = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            let (x, w) = (level.x, level.weight);
            let px = p * x;
            let (dg_pxq, dg_px) = (digamma(px + q), digamma(px));
            ll += w * (ln_gamma(px + q) - ln_gamma(px) - lg_q);
            g_p += w * x * (dg_pxq - dg_px);
            g_q += w * (dg_pxq - dg_q);
            px_by_level.push(px);
        }
        for row in &self.rows {
            let x = self.levels[row.level].x;
            let px = px_by_level[row.level];
            let w = row.weight;
            let u = g * row.inv_total;
            let (ln_u, ln_1pu) = (ln_g - row.ln_total, u.ln_1p());
            ll += w * (q * ln_u - (px + q) * ln_1pu);
            g_p -= w * x * ln_1pu;
            g_q += w * (ln_u - ln_1pu);
            // d/dγ of q ln u - (px+q) ln(1+u), with du/dγ = u/γ.
            g_g += w * (q - (px + q) * u / (1.0 + u)) / g;
        }
        grad[0] = g_p;
        grad[1] = g_q;
        grad[2] = g_g;
        ll + self.constant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(frequency: f64, recency: f64, age: f64, spend: f64) -> RfmSummary {
        RfmSummary {
            frequency,
            recency,
            age,
            mean_repeat_spend: spend,
        }
    }

    fn sample() -> Vec<RfmSummary> {
        vec![
            summary(0.0, 0.0, 30.0, 0.0),
            summary(0.0, 0.0, 30.0, 0.0),
            summary(2.0, 20.0, 35.0, 12.0),
            summary(1.0, 5.0, 38.0, 30.0),
            summary(7.0, 29.0, 38.9, 70.5),
            summary(3.0, 33.0, 34.0, 21.0),
            summary(0.0, 0.0, 12.0, 0.0),
        ]
    }

    /// Central differences of the mean objective, against the analytic gradient.
    fn check_gradient<O: Objective>(objective: &O, theta: &[f64], penalizer: f64) {
        let mut grad = vec![0.0; theta.len()];
        evaluate(objective, penalizer, theta, &mut grad);
        for i in 0..theta.len() {
            let h = 1e-6;
            let mut up = theta.to_vec();
            let mut down = theta.to_vec();
            up[i] += h;
            down[i] -= h;
            let mut scratch = vec![0.0; theta.len()];
            let (c_up, _) = evaluate(objective, penalizer, &up, &mut scratch);
            let (c_down, _) = evaluate(objective, penalizer, &down, &mut scratch);
            let numeric = (c_up - c_down) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 1e-7 * (1.0 + numeric.abs()),
                "component {i}: analytic {} numeric {numeric}",
                grad[i]
            );
        }
    }

    #[test]
    fn bg_nbd_gradient_matches_finite_differences() {
        let objective = BgNbdObjective::new(&sample());
        check_gradient(&objective, &[-1.4, 1.5, -0.2, 0.9], 0.0);
        check_gradient(&objective, &[0.3, -0.5, 0.1, -1.0], 0.01);
    }

    #[test]
    fn gamma_gamma_gradient_matches_finite_differences() {
        let repeat = sample()
            .iter()
            .filter(|s| s.frequency > 0.0)
            .map(|s| (s.frequency, s.mean_repeat_spend))
            .collect();
        let objective = GammaGammaObjective::new(repeat);
        check_gradient(&objective, &[1.8, 1.3, 2.7], 0.0);
        check_gradient(&objective, &[0.2, 0.9, 1.0], 0.05);
    }

    #[test]
    fn aggregated_likelihood_equals_the_sum_of_customer_likelihoods() {
        let data = sample();
        let params = BgNbdParams {
            r: 0.3,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let objective = BgNbdObjective::new(&data);
        assert!(objective.rows.len() < data.len(), "identical rows merge");
        let mut grad = [0.0; 4];
        let merged =
            objective.log_likelihood(&[params.r, params.alpha, params.a, params.b], &mut grad);
        let direct: f64 = data.iter().map(|s| params.log_likelihood(s)).sum();
        assert!((merged - direct).abs() < 1e-10 * direct.abs());

        let gg = GammaGammaParams {
            p: 6.0,
            q: 3.5,
            gamma: 15.0,
        };
        let repeat = data
            .iter()
            .filter(|s| s.frequency > 0.0)
            .map(|s| (s.frequency, s.mean_repeat_spend))
            .collect();
        let objective = GammaGammaObjective::new(repeat);
        let mut grad = [0.0; 3];
        let merged = objective.log_likelihood(&[gg.p, gg.q, gg.gamma], &mut grad);
        let direct: f64 = data.iter().map(|s| gg.log_likelihood(s)).sum();
        assert!((merged - direct).abs() < 1e-10 * direct.abs());
    }
}
