//! From `Moments` to estimates: energy, variance, two error bars, autocorrelation time,
//! acceptance and the energy gradient.

mod blocking;

pub use blocking::{Blocking, blocking, chi_squared_quantile_99};

use serde::{Deserialize, Serialize};

use crate::engine::Moments;

/// What one `sample` call measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// <E_L>.
    pub energy: f64,
    /// Error of the energy from blocking the ensemble-mean series.
    pub error: f64,
    /// Error of the energy from the spread of the per-walker means.
    pub error_walkers: f64,
    /// Variance of E_L (over samples, ddof 0).
    pub variance: f64,
    /// Statistical inefficiency in measurement intervals: error^2 samples / variance
    /// (1 for uncorrelated samples; twice the integrated autocorrelation time).
    pub tau: f64,
    pub acceptance: f64,
    pub samples: u64,
    /// Walkers reset after a non-finite state.
    pub resets: u64,
    /// dE/dtheta_i = 2 (<E_L O_i> - <E_L><O_i>).
    pub gradient: Vec<f64>,
}

impl Estimate {
    pub fn from_moments(m: &Moments) -> Self {
        let n = m.samples as f64;
        let energy = m.energy / n;
        let variance = (m.energy_sq / n - energy * energy).max(0.0);
        let walkers = m.walkers as f64;
        let series: Vec<f64> = m.series.iter().map(|s| s / walkers).collect();
        let error = blocking(&series).map_or(f64::NAN, |b| b.variance_of_mean.sqrt());
        let error_walkers = (m.walker_means.variance() / m.walker_means.count as f64).sqrt();
        let tau = if variance > 0.0 {
            error * error * n / variance
        } else {
            f64::NAN
        };
        let gradient = m
            .energy_o
            .iter()
            .zip(&m.o)
            .map(|(eo, o)| 2.0 * (eo / n - energy * o / n))
            .collect();
        Self {
            energy,
            error,
            error_walkers,
            variance,
            tau,
            acceptance: m.accepted / m.attempted,
            samples: m.samples,
            resets: m.resets,
            gradient,
        }
    }

    /// Euclidean norm of the gradient.
    pub fn gradient_norm(&self) -> f64 {
        self.gradient.iter().map(|g| g * g).sum::<f64>().sqrt()
    }
}
