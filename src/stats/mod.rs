//! From `Moments` to estimates: energy, variance, two error bars, autocorrelation time,
//! acceptance and the energy gradient.

mod blocking;
mod fit;
pub mod observables;

pub use blocking::{Blocking, blocking, chi_squared_quantile_99};
pub use fit::{Fit, polynomial_fit};
pub use observables::Observed;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::engine::Moments;
use observables::null_as_nan;

/// What one `sample` call measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// <E_L>.
    pub energy: f64,
    /// The headline standard error of the energy: the larger of `error_blocking` and
    /// `error_walkers` (the one known, where the other is not). Blocking runs low on short
    /// series; the walker-mean error is unbiased but noisy with few walkers.
    pub error: f64,
    /// Error of the energy from blocking the ensemble-mean series.
    pub error_blocking: f64,
    /// Error of the energy from the spread of the per-walker means.
    pub error_walkers: f64,
    /// Variance of E_L (over samples, ddof 0).
    pub variance: f64,
    /// Statistical inefficiency in measurement intervals: error^2 samples / variance, with the
    /// headline error (1 for uncorrelated samples; twice the integrated autocorrelation time).
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
        let error_blocking =
            blocking(&m.ensemble_means()).map_or(f64::NAN, |b| b.variance_of_mean.sqrt());
        let error_walkers = (m.walker_means.variance() / m.walker_means.count as f64).sqrt();
        // f64::max takes the other value when one is NaN.
        let error = error_blocking.max(error_walkers);
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
            error_blocking,
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

    pub fn summary(&self) -> Summary {
        Summary {
            energy: self.energy,
            error: self.error,
            error_blocking: self.error_blocking,
            error_walkers: self.error_walkers,
            variance: self.variance,
            acceptance: self.acceptance,
            tau: self.tau,
        }
    }
}

/// The console line of a final measurement.
impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "energy {:.6} +- {:.6} (blocking {:.6}, walker means {:.6}); variance {:.4e}, tau \
             {:.2}, acceptance {:.3}, {} samples",
            self.energy,
            self.error,
            self.error_blocking,
            self.error_walkers,
            self.variance,
            self.tau,
            self.acceptance,
            self.samples
        )?;
        if self.resets > 0 {
            write!(f, ", {} walker resets", self.resets)?;
        }
        Ok(())
    }
}

/// An estimate's headline numbers, named and ordered here for every file that lists them:
/// result.json, the sweep's rows (sweep.json, sweep.csv) and history.csv. JSON writes an
/// unknown one (NaN: a failed sweep point) as null and reads it back as NaN.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(deserialize_with = "null_as_nan")]
    pub energy: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error_blocking: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error_walkers: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub variance: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub acceptance: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub tau: f64,
}

impl Summary {
    /// The fields' names as CSV columns, in order.
    pub const CSV_HEADER: &str =
        "energy,error,error_blocking,error_walkers,variance,acceptance,tau";

    /// Every number unknown.
    pub const UNKNOWN: Self = Self {
        energy: f64::NAN,
        error: f64::NAN,
        error_blocking: f64::NAN,
        error_walkers: f64::NAN,
        variance: f64::NAN,
        acceptance: f64::NAN,
        tau: f64::NAN,
    };

    /// The numbers as CSV fields, in `CSV_HEADER` order.
    pub fn csv(&self) -> String {
        [
            self.energy,
            self.error,
            self.error_blocking,
            self.error_walkers,
            self.variance,
            self.acceptance,
            self.tau,
        ]
        .map(|v| v.to_string())
        .join(",")
    }
}

/// Gelman-Rubin R-hat with each walker a chain: sqrt of the pooled variance estimate over the
/// mean within-walker variance, from the sums of one `sample` call (the per-walker means and
/// the energy's sums). Near 1 when the walkers sample the same distribution; well above when
/// they stay in separate regions. NaN with fewer than two walkers or measurements each.
pub fn r_hat(m: &Moments) -> f64 {
    let chains = m.walker_means.count as f64;
    let n = m.samples as f64 / chains;
    if chains < 2.0 || n < 2.0 {
        return f64::NAN;
    }
    // Between-chain variance over n (the variance of the walkers' means).
    let between = m.walker_means.variance();
    let total = m.energy_sq - m.energy * m.energy / m.samples as f64;
    let within = (total - n * (chains - 1.0) * between) / (chains * (n - 1.0));
    let pooled = (n - 1.0) / n * within + between;
    (pooled / within).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Accumulator;

    #[test]
    fn the_csv_columns_are_the_json_fields() {
        let json = serde_json::to_value(Summary::UNKNOWN).unwrap();
        let names: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(names.len(), Summary::UNKNOWN.csv().split(',').count());
        assert_eq!(
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(","),
            Summary::CSV_HEADER
        );
    }
    use crate::stats::blocking::tests::ar1;

    /// Moments of `walkers` independent AR(1) chains of `steps` values each.
    fn ar1_moments(walkers: u64, steps: usize, phi: f64, seed: u64) -> Moments {
        let mut m = Moments::zeros(0, steps);
        m.walkers = walkers;
        m.walker_means = Accumulator::default();
        for w in 0..walkers {
            let chain = ar1(phi, steps, seed * 1000 + w);
            for (s, x) in m.series.iter_mut().zip(&chain) {
                *s += x;
            }
            m.energy += chain.iter().sum::<f64>();
            m.energy_sq += chain.iter().map(|x| x * x).sum::<f64>();
            m.walker_means
                .push(chain.iter().sum::<f64>() / steps as f64);
        }
        m.samples = walkers * steps as u64;
        (m.accepted, m.attempted) = (1.0, 1.0);
        m
    }

    /// On AR(1) series of 2^13 steps blocking alone runs low (7-19 % measured); the headline
    /// error, the larger of blocking and walker means, is not biased low.
    #[test]
    fn the_headline_error_of_ar1_walkers_is_not_biased_low() {
        let (walkers, steps, phi): (u64, usize, f64) = (64, 1 << 13, 0.9);
        // Var(mean) of unit-innovation AR(1) values: 1 / (n (1 - phi)^2) for large n.
        let exact = (1.0 / ((walkers * steps as u64) as f64 * (1.0 - phi).powi(2))).sqrt();
        let runs: Vec<Estimate> = (0..16)
            .map(|seed| Estimate::from_moments(&ar1_moments(walkers, steps, phi, seed)))
            .collect();
        let mean_ratio =
            |f: fn(&Estimate) -> f64| runs.iter().map(|e| f(e) / exact).sum::<f64>() / 16.0;
        let headline = mean_ratio(|e| e.error);
        assert!(
            (0.97..1.2).contains(&headline),
            "headline error / exact = {headline}"
        );
        for e in &runs {
            assert_eq!(e.error, e.error_blocking.max(e.error_walkers));
            assert!((e.tau - e.error.powi(2) * e.samples as f64 / e.variance).abs() < 1e-9);
        }
        // One error known: the headline is that one.
        let mut m = ar1_moments(1, 64, 0.5, 1);
        m.walker_means = Accumulator::default();
        let e = Estimate::from_moments(&m);
        assert!(e.error_walkers.is_nan() && e.error == e.error_blocking);
    }

    /// Walkers that sample one distribution give R-hat near 1; walkers stuck apart (half of
    /// them offset by several standard deviations) give far more.
    #[test]
    fn r_hat_tells_mixing_walkers_from_stuck_ones() {
        let mixing = ar1_moments(64, 1 << 12, 0.5, 3);
        let r = r_hat(&mixing);
        assert!((r - 1.0).abs() < 0.01, "{r}");
        let mut stuck = ar1_moments(64, 1 << 12, 0.5, 3);
        let shift = 3.0;
        let mut means = Accumulator::default();
        let n = (1 << 12) as f64;
        // Shift every other walker's chain: its mean by `shift`, its squares to match.
        let mut shifted = Moments::zeros(0, 0);
        for w in 0..64 {
            let chain = ar1(0.5, 1 << 12, 3000 + w);
            let offset = if w % 2 == 0 { shift } else { 0.0 };
            let sum: f64 = chain.iter().map(|x| x + offset).sum();
            shifted.energy += sum;
            shifted.energy_sq += chain.iter().map(|x| (x + offset).powi(2)).sum::<f64>();
            means.push(sum / n);
        }
        (stuck.energy, stuck.energy_sq, stuck.walker_means) =
            (shifted.energy, shifted.energy_sq, means);
        let r = r_hat(&stuck);
        assert!(r > 1.5, "{r}");
        // One walker: no chains to compare.
        assert!(r_hat(&ar1_moments(1, 64, 0.5, 1)).is_nan());
    }
}
