//! Parameter updates from the energy gradient: plain gradient descent, Adam, and stochastic
//! reconfiguration (natural gradient, with the metric S from the engine), each with a
//! learning-rate schedule.

use serde::{Deserialize, Serialize};

use crate::config::{OptimiserConfig, OptimiserKind, Schedule};
use crate::engine::{Measure, Metric};
use crate::error::Error;
use crate::physics::{Params, Wavefunction};

/// What an update did: the size of the step and, for SR, how well the system was posed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    /// |theta_new - theta_old| (before projecting back into the domain).
    pub norm: f64,
    /// The learning rate used (after the schedule).
    pub learning_rate: f64,
    /// SR: the condition number estimate of the shifted S, (max_i L_ii / min_i L_ii)^2 from
    /// its Cholesky factor L (a lower bound of the true condition number).
    pub condition: Option<f64>,
    /// SR: why the step fell back to a diagonal preconditioner, if it did.
    pub warning: Option<String>,
}

/// An optimiser with its state (Adam's moments and step count), serialisable for checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Optimiser {
    config: OptimiserConfig,
    /// Adam's first and second moment estimates.
    m: Vec<f64>,
    v: Vec<f64>,
    /// Updates made so far.
    pub steps: u64,
}

impl Optimiser {
    pub fn new(config: &OptimiserConfig, parameters: usize) -> Self {
        Self {
            config: config.clone(),
            m: vec![0.0; parameters],
            v: vec![0.0; parameters],
            steps: 0,
        }
    }

    /// Why a restored optimiser (from a checkpoint) does not fit a run with `config`,
    /// `parameters` parameters and `updates` updates made, if it does not.
    pub fn mismatch(
        &self,
        config: &OptimiserConfig,
        parameters: usize,
        updates: u32,
    ) -> Option<String> {
        if self.config != *config {
            return Some("its settings differ from the config's `optimiser`".into());
        }
        if self.m.len() != parameters || self.v.len() != parameters {
            return Some(format!(
                "its moment vectors have {} and {} entries for {parameters} parameters",
                self.m.len(),
                self.v.len()
            ));
        }
        if self.m.iter().chain(&self.v).any(|x| !x.is_finite()) || self.v.iter().any(|&x| x < 0.0) {
            return Some("its moment vectors hold non-finite or negative values".into());
        }
        (self.steps != updates as u64).then(|| {
            format!(
                "it made {} updates where the iteration count says {updates}",
                self.steps
            )
        })
    }

    /// What an iteration's `sample` call must measure: the metric S too for SR.
    pub fn measure(&self) -> Measure {
        match self.config.kind {
            OptimiserKind::Sr => Measure::EnergyAndMetric {
                samples: self.config.metric_samples,
            },
            _ => Measure::Energy,
        }
    }

    /// theta <- theta - update(gradient): descends the energy, staying in the parameters'
    /// domain. SR needs the `metric`.
    pub fn step(
        &mut self,
        domain: &Wavefunction,
        params: &mut Params,
        gradient: &[f64],
        metric: Option<&Metric>,
    ) -> Result<StepReport, Error> {
        let before = params.theta().to_vec();
        let mut report = self.update(params.theta_mut(), gradient, metric)?;
        report.norm = params
            .theta()
            .iter()
            .zip(&before)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        domain.keep_in_domain(params);
        Ok(report)
    }

    /// The learning rate of the update after `t` updates.
    pub fn learning_rate(&self, t: u64) -> f64 {
        schedule(&self.config, t)
    }

    fn update(
        &mut self,
        theta: &mut [f64],
        gradient: &[f64],
        metric: Option<&Metric>,
    ) -> Result<StepReport, Error> {
        let lr = self.learning_rate(self.steps);
        self.steps += 1;
        let mut report = StepReport {
            learning_rate: lr,
            ..Default::default()
        };
        let c = &self.config;
        match c.kind {
            OptimiserKind::Sgd => {
                for (t, g) in theta.iter_mut().zip(gradient) {
                    *t -= lr * g;
                }
            }
            OptimiserKind::Sr => {
                let metric = metric.ok_or_else(|| {
                    Error::engine("stochastic reconfiguration needs the metric S from the engine")
                })?;
                let solve = natural_gradient(
                    &metric.covariance(),
                    gradient,
                    c.diagonal_shift,
                    c.absolute_shift,
                );
                for (t, d) in theta.iter_mut().zip(&solve.delta) {
                    *t += lr * d;
                }
                report.condition = solve.condition;
                report.warning = solve.warning;
            }
            OptimiserKind::Adam => {
                let bias1 = 1.0 - c.beta1.powf(self.steps as f64);
                let bias2 = 1.0 - c.beta2.powf(self.steps as f64);
                for (((t, g), m), v) in theta
                    .iter_mut()
                    .zip(gradient)
                    .zip(self.m.iter_mut())
                    .zip(self.v.iter_mut())
                {
                    *m = c.beta1 * *m + (1.0 - c.beta1) * g;
                    *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
                    let m_hat = *m / bias1;
                    let v_hat = *v / bias2;
                    *t -= lr * m_hat / (v_hat.sqrt() + c.epsilon);
                }
            }
        }
        Ok(report)
    }
}

/// The scheduled learning rate after `t` updates of `config.iterations`.
fn schedule(config: &OptimiserConfig, t: u64) -> f64 {
    let lr = config.learning_rate;
    let t = t as f64;
    match config.schedule {
        Schedule::Constant => lr,
        Schedule::Inverse => lr / (1.0 + t / config.t0),
        Schedule::Cosine => {
            let total = config.iterations.max(1) as f64;
            let progress = (t / total).min(1.0);
            let f = config.final_fraction;
            lr * (f + (1.0 - f) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
        }
    }
}

/// The SR direction delta solving (S + eps_rel diag(S) + eps_abs I) delta = -g.
#[derive(Clone, Debug, PartialEq)]
pub struct NaturalGradient {
    pub delta: Vec<f64>,
    /// (max L_ii / min L_ii)^2 of the Cholesky factor; None when the factorisation failed.
    pub condition: Option<f64>,
    /// Why a diagonal preconditioner was used instead, if it was.
    pub warning: Option<String>,
}

/// Solves the shifted SR system by Cholesky in f64 (K^3/3 operations). Where the shifted S is
/// not numerically positive definite (or the solution is not finite), falls back to the
/// diagonal step delta_i = -g_i / A_ii with a warning: never a non-finite step while g is
/// finite.
pub fn natural_gradient(s: &[f64], g: &[f64], eps_rel: f64, eps_abs: f64) -> NaturalGradient {
    let k = g.len();
    assert_eq!(s.len(), k * k, "metric of the wrong size");
    let mut a = s.to_vec();
    for i in 0..k {
        // Rounding can make a zero variance slightly negative: clamp the diagonal at 0.
        let d = a[i * k + i].max(0.0);
        a[i * k + i] = d * (1.0 + eps_rel) + eps_abs;
    }
    let diagonal: Vec<f64> = (0..k).map(|i| a[i * k + i]).collect();
    let fallback = |why: String| NaturalGradient {
        delta: g.iter().zip(&diagonal).map(|(g, d)| -g / d).collect(),
        condition: None,
        warning: Some(format!(
            "{why}: took a diagonally preconditioned step instead; raise              optimiser.diagonal_shift or optimiser.absolute_shift"
        )),
    };
    match cholesky(&mut a, k) {
        Err(pivot) => fallback(format!(
            "the shifted metric S is not positive definite (pivot {pivot} of {k})"
        )),
        Ok(()) => {
            let delta = cholesky_solve(&a, k, &g.iter().map(|v| -v).collect::<Vec<_>>());
            let (lo, hi) = (0..k)
                .map(|i| a[i * k + i])
                .fold((f64::MAX, 0.0f64), |(lo, hi), d| (lo.min(d), hi.max(d)));
            if delta.iter().all(|d| d.is_finite()) {
                NaturalGradient {
                    delta,
                    condition: Some(if k == 0 { 1.0 } else { (hi / lo).powi(2) }),
                    warning: None,
                }
            } else {
                fallback("the SR solution is not finite".into())
            }
        }
    }
}

/// In-place Cholesky A = L L^T of the K x K row-major `a` (L in the lower triangle); the
/// failing pivot when A is not numerically positive definite.
fn cholesky(a: &mut [f64], k: usize) -> Result<(), usize> {
    for j in 0..k {
        let lj: Vec<f64> = a[j * k..j * k + j].to_vec();
        let d = a[j * k + j] - lj.iter().map(|v| v * v).sum::<f64>();
        if !(d > 0.0 && d.is_finite()) {
            return Err(j);
        }
        let l = d.sqrt();
        a[j * k + j] = l;
        // Rows below j: L_ij = (A_ij - sum_{p<j} L_ip L_jp) / L_jj.
        for i in j + 1..k {
            let row_i = &mut a[i * k..(i + 1) * k];
            let dot: f64 = row_i[..j].iter().zip(&lj).map(|(x, y)| x * y).sum();
            row_i[j] = (row_i[j] - dot) / l;
        }
    }
    Ok(())
}

/// Solves L L^T x = b with L from `cholesky`.
fn cholesky_solve(l: &[f64], k: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..k {
        let dot: f64 = (0..i).map(|p| l[i * k + p] * y[p]).sum();
        y[i] = (y[i] - dot) / l[i * k + i];
    }
    for i in (0..k).rev() {
        let dot: f64 = (i + 1..k).map(|p| l[p * k + i] * y[p]).sum();
        y[i] = (y[i] - dot) / l[i * k + i];
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimise(kind: OptimiserKind, learning_rate: f64) -> Vec<f64> {
        let config = OptimiserConfig {
            kind,
            learning_rate,
            ..Default::default()
        };
        let mut opt = Optimiser::new(&config, 2);
        let mut theta = vec![3.0, -2.0];
        // f = (t0 - 1)^2 + 4 (t1 + 0.5)^2
        for _ in 0..2000 {
            let g = [2.0 * (theta[0] - 1.0), 8.0 * (theta[1] + 0.5)];
            opt.update(&mut theta, &g, None).unwrap();
        }
        theta
    }

    #[test]
    fn both_optimisers_find_the_minimum_of_a_quadratic() {
        for (kind, lr) in [(OptimiserKind::Sgd, 0.05), (OptimiserKind::Adam, 0.01)] {
            let t = minimise(kind, lr);
            assert!(
                (t[0] - 1.0).abs() < 1e-3 && (t[1] + 0.5).abs() < 1e-3,
                "{kind:?}: {t:?}"
            );
        }
    }

    #[test]
    fn first_adam_step_has_the_learning_rate_as_size() {
        let config = OptimiserConfig::default();
        let mut opt = Optimiser::new(&config, 2);
        let mut theta = vec![0.0, 0.0];
        opt.update(&mut theta, &[5.0, -0.001], None).unwrap();
        let lr = config.learning_rate;
        assert!((theta[0] + lr).abs() < 1e-9 && (theta[1] - lr).abs() < 1e-5);
    }

    /// Metric sums whose covariance is `s` (2 x 2): four samples mean +- the eigen-directions.
    fn metric_with_covariance(s: [[f64; 2]; 2]) -> Metric {
        // Samples x = mu + sqrt(2 lambda) v and mu - sqrt(2 lambda) v for each eigenpair
        // give covariance sum lambda v v^T (over 4 samples, ddof 0).
        let (a, b, d) = (s[0][0], s[0][1], s[1][1]);
        let mean = (a + d) / 2.0;
        let r = (((a - d) / 2.0).powi(2) + b * b).sqrt();
        let mut rows = Vec::new();
        for lambda in [mean + r, mean - r] {
            let v = if b.abs() > 0.0 {
                let (x, y) = (b, lambda - a);
                let n = (x * x + y * y).sqrt();
                [x / n, y / n]
            } else if (lambda - a).abs() < (lambda - d).abs() {
                [1.0, 0.0]
            } else {
                [0.0, 1.0]
            };
            let f = (2.0 * lambda).sqrt();
            for sign in [1.0, -1.0] {
                rows.extend([3.0 + sign * f * v[0], -1.0 + sign * f * v[1]]);
            }
        }
        let mut m = Metric::zeros(2);
        m.add_rows(&rows);
        m
    }

    /// On a quadratic model E = 1/2 (theta - t*)^T S (theta - t*) with metric S, the natural
    /// gradient step (learning rate 1) lands exactly on t*: g = dE/dtheta = S (theta - t*) and
    /// delta = -S^-1 g = t* - theta, in one step whatever the scaling of the parameters.
    #[test]
    fn sr_takes_the_exact_natural_gradient_step() {
        let s = [[4.0, 1.5], [1.5, 0.25 * 4.0]];
        let metric = metric_with_covariance(s);
        let cov = metric.covariance();
        for (got, want) in cov.iter().zip(s.iter().flatten()) {
            assert!((got - want).abs() < 1e-12, "{cov:?}");
        }
        let target = [0.7, -2.0];
        let config = OptimiserConfig {
            kind: OptimiserKind::Sr,
            learning_rate: 1.0,
            absolute_shift: 1e-300,
            diagonal_shift: 0.0,
            ..Default::default()
        };
        let mut opt = Optimiser::new(&config, 2);
        let mut theta = vec![1.0, 1.0];
        let g: Vec<f64> = (0..2)
            .map(|i| (0..2).map(|j| s[i][j] * (theta[j] - target[j])).sum())
            .collect();
        let report = opt.update(&mut theta, &g, Some(&metric)).unwrap();
        assert!((theta[0] - target[0]).abs() < 1e-12 && (theta[1] - target[1]).abs() < 1e-12);
        // Condition estimate of [[4, 1.5], [1.5, 1]]: L = [[2, 0], [0.75, sqrt(0.4375)]].
        let expected = (2.0f64 / 0.4375f64.sqrt()).powi(2);
        assert!((report.condition.unwrap() - expected).abs() < 1e-9);
        // A plain gradient step would not land there.
        let mut sgd = Optimiser::new(
            &OptimiserConfig {
                kind: OptimiserKind::Sgd,
                learning_rate: 1.0,
                ..Default::default()
            },
            2,
        );
        let mut plain = vec![1.0, 1.0];
        sgd.update(&mut plain, &g, None).unwrap();
        assert!((plain[0] - target[0]).abs() > 0.1);
    }

    #[test]
    fn sr_shifts_are_applied_as_documented() {
        // Diagonal S: delta_i = -g_i / (S_ii (1 + eps_rel) + eps_abs).
        let s = [2.0, 0.0, 0.0, 0.0];
        let solve = natural_gradient(&s, &[1.0, 3.0], 0.5, 0.1);
        assert!((solve.delta[0] + 1.0 / 3.1).abs() < 1e-12);
        assert!((solve.delta[1] + 3.0 / 0.1).abs() < 1e-9);
        assert!(solve.warning.is_none());
    }

    #[test]
    fn an_indefinite_metric_gives_a_finite_step_and_a_warning() {
        // Not a covariance: eigenvalues 3 and -1.
        let s = [1.0, 2.0, 2.0, 1.0];
        let solve = natural_gradient(&s, &[1.0, 1.0], 0.0, 1e-3);
        assert!(solve.delta.iter().all(|d| d.is_finite()));
        assert!(solve.warning.unwrap().contains("not positive definite"));
        assert_eq!(solve.condition, None);
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let base = OptimiserConfig {
            learning_rate: 0.1,
            iterations: 100,
            t0: 10.0,
            final_fraction: 0.2,
            ..Default::default()
        };
        let at = |schedule, t| {
            let config = OptimiserConfig {
                schedule,
                ..base.clone()
            };
            Optimiser::new(&config, 1).learning_rate(t)
        };
        assert_eq!(at(Schedule::Constant, 57), 0.1);
        assert!((at(Schedule::Inverse, 10) - 0.05).abs() < 1e-15);
        assert!((at(Schedule::Cosine, 0) - 0.1).abs() < 1e-15);
        assert!((at(Schedule::Cosine, 50) - 0.06).abs() < 1e-12);
        assert!((at(Schedule::Cosine, 100) - 0.02).abs() < 1e-12);
        // The schedule drives the step: SGD's step after 10 updates is halved.
        let config = OptimiserConfig {
            kind: OptimiserKind::Sgd,
            schedule: Schedule::Inverse,
            ..base
        };
        let mut opt = Optimiser::new(&config, 1);
        let mut theta = vec![0.0];
        for _ in 0..10 {
            opt.update(&mut theta, &[1.0], None).unwrap();
        }
        let before = theta[0];
        let report = opt.update(&mut theta, &[1.0], None).unwrap();
        assert!((before - theta[0] - 0.05).abs() < 1e-15 && report.learning_rate == 0.05);
    }
}
