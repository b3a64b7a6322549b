//! `Moments`: the f64 sums an engine returns from one `sample` call. Everything downstream
//! (statistics, gradient, optimiser, reports) is computed from these alone.

use serde::{Deserialize, Serialize};

use super::observables::ObservableSums;

/// Sums over every measurement of every walker in one `sample` call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Walkers that contributed.
    pub walkers: u64,
    /// Measurements summed: walkers x measurements per walker.
    pub samples: u64,
    /// Sum of E_L.
    pub energy: f64,
    /// Sum of E_L^2.
    pub energy_sq: f64,
    /// Sum of O_i, in parameter order (a, b, w).
    pub o: Vec<f64>,
    /// Sum of E_L O_i.
    pub energy_o: Vec<f64>,
    /// Accepted and attempted moves (single-particle moves count once per particle).
    pub accepted: f64,
    pub attempted: f64,
    /// Per measurement step, the sum of E_L over walkers: the time series for blocking.
    pub series: Vec<f64>,
    /// Per-walker mean energies: count, sum and sum of squares (independent-chain error).
    pub walker_means: Accumulator,
    /// Walkers found with a non-finite state and reset to a fresh position.
    pub resets: u64,
    /// Observables beyond the energy, per block of the call (production calls of an engine
    /// told to `observe`; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observables: Option<ObservableSums>,
}

impl Moments {
    pub fn zeros(parameters: usize, measurements: usize) -> Self {
        Self {
            o: vec![0.0; parameters],
            energy_o: vec![0.0; parameters],
            series: vec![0.0; measurements],
            ..Default::default()
        }
    }

    /// Adds another set of walkers measured over the same steps (e.g. another process's).
    pub fn add_walkers(&mut self, other: &Moments) {
        self.walkers += other.walkers;
        self.samples += other.samples;
        self.energy += other.energy;
        self.energy_sq += other.energy_sq;
        add_into(&mut self.o, &other.o);
        add_into(&mut self.energy_o, &other.energy_o);
        self.accepted += other.accepted;
        self.attempted += other.attempted;
        add_into(&mut self.series, &other.series);
        self.walker_means.merge(&other.walker_means);
        self.resets += other.resets;
        add_observables(&mut self.observables, &other.observables);
    }

    /// Appends the same walkers measured over the steps that follow.
    pub fn append_steps(&mut self, later: Moments) {
        self.samples += later.samples;
        self.energy += later.energy;
        self.energy_sq += later.energy_sq;
        add_into(&mut self.o, &later.o);
        add_into(&mut self.energy_o, &later.energy_o);
        self.accepted += later.accepted;
        self.attempted += later.attempted;
        self.series.extend(later.series);
        self.resets += later.resets;
        // The blocks span the whole call: later steps of the same call add to them.
        add_observables(&mut self.observables, &later.observables);
    }
}

fn add_observables(acc: &mut Option<ObservableSums>, other: &Option<ObservableSums>) {
    match (acc.as_mut(), other) {
        (Some(a), Some(b)) => a.add(b),
        (None, Some(b)) => *acc = Some(b.clone()),
        (_, None) => {}
    }
}

fn add_into(acc: &mut [f64], other: &[f64]) {
    assert_eq!(acc.len(), other.len(), "moments of different shapes");
    for (a, b) in acc.iter_mut().zip(other) {
        *a += b;
    }
}

/// Count, sum and sum of squares of a set of values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accumulator {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Accumulator {
    pub fn push(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.sum_sq += value * value;
    }

    pub fn merge(&mut self, other: &Accumulator) {
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// Unbiased sample variance (ddof 1); NaN with fewer than two values.
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            return f64::NAN;
        }
        let n = self.count as f64;
        ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
    }
}
