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
    /// Sums for the metric S over the subset of samples `MetricSubset` picks, when asked for.
    pub metric: Option<Metric>,
    /// Observables beyond the energy, per block of the call (`Measure::Production` calls of
    /// an engine whose spec has them; absent otherwise).
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

    /// The series as ensemble means: the mean E_L over the walkers at each measurement.
    pub fn ensemble_means(&self) -> Vec<f64> {
        let walkers = self.walkers as f64;
        self.series.iter().map(|s| s / walkers).collect()
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
        add_optional(&mut self.metric, &other.metric, Metric::add);
        add_optional(
            &mut self.observables,
            &other.observables,
            ObservableSums::add,
        );
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
        add_optional(&mut self.metric, &later.metric, Metric::add);
        // The blocks span the whole call: later steps of the same call add to them.
        add_optional(
            &mut self.observables,
            &later.observables,
            ObservableSums::add_blocks,
        );
    }
}

/// Adds optional sums: a missing side is taken as zero.
fn add_optional<T: Clone>(acc: &mut Option<T>, other: &Option<T>, add: fn(&mut T, &T)) {
    match (acc.as_mut(), other) {
        (Some(a), Some(b)) => add(a, b),
        (None, Some(b)) => *acc = Some(b.clone()),
        (_, None) => {}
    }
}

/// Raw f64 sums of the log-derivatives over the samples that enter the metric (the
/// quantum geometric tensor) S_ij = <O_i O_j> - <O_i><O_j>.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub samples: u64,
    /// Sum of O_i.
    pub o: Vec<f64>,
    /// Sum of O_i O_j, K x K row-major (symmetric; both triangles filled).
    pub oo: Vec<f64>,
}

impl Metric {
    pub fn zeros(parameters: usize) -> Self {
        Self {
            samples: 0,
            o: vec![0.0; parameters],
            oo: vec![0.0; parameters * parameters],
        }
    }

    pub fn parameters(&self) -> usize {
        self.o.len()
    }

    pub fn add(&mut self, other: &Metric) {
        self.samples += other.samples;
        add_into(&mut self.o, &other.o);
        add_into(&mut self.oo, &other.oo);
    }

    /// Adds the rows (each K long, concatenated) in order: the upper triangle one row of the
    /// output at a time in parallel (so the sums are the same for any thread count), then
    /// mirrored.
    pub fn add_rows(&mut self, rows: &[f64]) {
        use rayon::prelude::*;
        let k = self.parameters();
        if k == 0 || rows.is_empty() {
            return;
        }
        let count = rows.len() / k;
        self.samples += count as u64;
        for row in rows.chunks(k) {
            add_into(&mut self.o, row);
        }
        self.oo.par_chunks_mut(k).enumerate().for_each(|(i, out)| {
            for row in rows.chunks(k) {
                let oi = row[i];
                for (o, &oj) in out[i..].iter_mut().zip(&row[i..]) {
                    *o += oi * oj;
                }
            }
        });
        self.mirror();
    }

    /// Copies the upper triangle onto the lower one.
    pub fn mirror(&mut self) {
        let k = self.parameters();
        for i in 0..k {
            for j in 0..i {
                self.oo[i * k + j] = self.oo[j * k + i];
            }
        }
    }

    /// S = <O O^T> - <O><O>^T, K x K row-major.
    pub fn covariance(&self) -> Vec<f64> {
        let k = self.parameters();
        let n = self.samples as f64;
        let mean: Vec<f64> = self.o.iter().map(|o| o / n).collect();
        let mut s = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                s[i * k + j] = self.oo[i * k + j] / n - mean[i] * mean[j];
            }
        }
        s
    }
}

/// Which measured samples of a `sample` call enter S (the same rule on every engine, so that
/// they agree walker by walker): with W walkers measured `measurements` times each and a
/// target of `cap` samples, every `walker_stride` = ceil(W / cap)-th walker (walkers 0,
/// stride, 2 stride, ...: `walkers` = ceil(W / stride) of them) gives `per_walker` =
/// min(measurements, ceil(cap / walkers)) of its measurements, evenly spaced: measurement t
/// (0-based within the call) when t % `every` == 0 and t / every < per_walker, with every =
/// measurements / per_walker. That is all the samples when W x measurements <= cap, and
/// otherwise at least cap (and fewer than 2 cap) of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSubset {
    pub walker_stride: u32,
    pub walkers: u32,
    pub every: u32,
    pub per_walker: u32,
}

impl MetricSubset {
    pub fn new(walkers: u32, measurements: u32, cap: u32) -> Self {
        let cap = cap.max(1);
        let walker_stride = walkers.div_ceil(cap).max(1);
        let selected = walkers.div_ceil(walker_stride);
        let per_walker = measurements.min(cap.div_ceil(selected.max(1)));
        Self {
            walker_stride,
            walkers: selected,
            every: measurements.checked_div(per_walker).unwrap_or(1).max(1),
            per_walker,
        }
    }

    /// Samples selected: rows of the O matrix.
    pub fn rows(&self) -> usize {
        self.walkers as usize * self.per_walker as usize
    }

    /// The row of walker `walker`'s (local index) measurement `t`, if selected.
    pub fn row(&self, walker: u32, t: u32) -> Option<usize> {
        (walker.is_multiple_of(self.walker_stride)
            && t.is_multiple_of(self.every)
            && t / self.every < self.per_walker)
            .then(|| {
                (walker / self.walker_stride) as usize * self.per_walker as usize
                    + (t / self.every) as usize
            })
    }
}

pub(crate) fn add_into(acc: &mut [f64], other: &[f64]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_take_everything_when_small_and_at_least_the_cap_otherwise() {
        let all = MetricSubset::new(10, 20, 1 << 14);
        assert_eq!((all.walker_stride, all.every, all.rows()), (1, 1, 200));
        assert_eq!(all.row(3, 7), Some(3 * 20 + 7));
        for (w, m, cap) in [(1000, 50, 16384), (1 << 16, 10, 16384), (3, 1000, 100)] {
            let sub = MetricSubset::new(w, m, cap);
            let picked: Vec<usize> = (0..w)
                .flat_map(|walker| (0..m).filter_map(move |t| sub.row(walker, t)))
                .collect();
            assert_eq!(picked.len(), sub.rows(), "{w} {m} {cap}");
            assert!(picked.windows(2).all(|p| p[1] == p[0] + 1), "rows in order");
            assert!(sub.rows() >= cap as usize && sub.rows() < 2 * cap as usize);
        }
    }

    #[test]
    fn metric_rows_give_the_covariance() {
        let rows = [1.0, 2.0, 3.0, 5.0, 2.0, 2.0];
        let mut m = Metric::zeros(2);
        m.add_rows(&rows);
        let s = m.covariance();
        // Means (2, 3); covariance (ddof 0): [[2/3, 1], [1, 2]].
        let expected = [2.0 / 3.0, 1.0, 1.0, 2.0];
        for (a, b) in s.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{s:?}");
        }
    }
}
