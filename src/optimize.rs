//! Parameter updates from the energy gradient: plain gradient descent and Adam.

use serde::{Deserialize, Serialize};

use crate::config::{OptimiserConfig, OptimiserKind};
use crate::physics::Params;

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

    /// theta <- theta - update(gradient): descends the energy, staying in the parameters'
    /// domain.
    pub fn step(&mut self, params: &mut Params, gradient: &[f64]) {
        self.update(params.theta_mut(), gradient);
        params.keep_in_domain();
    }

    fn update(&mut self, theta: &mut [f64], gradient: &[f64]) {
        self.steps += 1;
        let c = &self.config;
        match c.kind {
            OptimiserKind::Sgd => {
                for (t, g) in theta.iter_mut().zip(gradient) {
                    *t -= c.learning_rate * g;
                }
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
                    *t -= c.learning_rate * m_hat / (v_hat.sqrt() + c.epsilon);
                }
            }
        }
    }
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
            opt.update(&mut theta, &g);
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
        opt.update(&mut theta, &[5.0, -0.001]);
        let lr = config.learning_rate;
        assert!((theta[0] + lr).abs() < 1e-9 && (theta[1] - lr).abs() < 1e-5);
    }
}
