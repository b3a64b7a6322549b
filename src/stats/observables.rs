//! From the observables' block sums to estimates with errors: the energy's parts and the
//! virial ratio, the pair distances, and the normalised density histograms. The histograms'
//! errors are a jackknife over the blocks (contiguous runs of measurements, each summed over
//! every walker), rebinned to fewer than 64 blocks. The scalars' errors are, as the energy's,
//! the larger of that jackknife's and the walker-means error (the spread of the per-walker
//! means over the walkers, which stays sound however long the correlation time is beside the
//! blocks); for the virial ratio, a ratio of correlated means, the walker-means error is the
//! delta method's over the walkers' covariances. Definitions and normalisations:
//! docs/physics.md.

use serde::{Deserialize, Serialize};

use crate::engine::observables::{
    Block, INTERACTION, INVERSE_DISTANCE, KINETIC, PAIR_DISTANCE, SCALARS, SQUARE_RADIUS, TRAP,
    WalkerMeans,
};
use crate::engine::{ObservableSums, ObservablesSpec};

/// Blocks are merged in adjacent pairs while there are at least this many.
const REBIN_ABOVE: usize = 64;

/// Fewer blocks with histogram samples than this leave the densities' errors unreliable.
const MIN_HISTOGRAM_BLOCKS: usize = 8;

/// Fewer walkers than this, and fewer independent stretches of the run than this (its time
/// blocks, counted as no more than the run's length over `TAU_PER_BLOCK` autocorrelation
/// times), leave the scalars' errors unreliable.
const MIN_INDEPENDENT: f64 = 8.0;

/// Autocorrelation times a time block must span for the jackknife over blocks to hold: a
/// block of L measurements underestimates the variance by about tau / (2 L).
const TAU_PER_BLOCK: f64 = 10.0;

/// A mean with its standard error (JSON writes an unknown one, NaN, as null; it reads back
/// as NaN).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Value {
    #[serde(deserialize_with = "null_as_nan")]
    pub value: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error: f64,
}

/// Reads a number written by JSON, where null stands for NaN.
pub fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A histogram over bins of equal width: its bin centres, values and errors, and what fell
/// beyond its range (per sample). The x-y density is one too, over cells: `values[iy * n +
/// ix]` at (`centres[ix]`, `centres[iy]`), `width` the cells' side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub centres: Vec<f64>,
    pub width: f64,
    pub values: Vec<f64>,
    pub errors: Vec<f64>,
    /// Mean count per sample beyond the range (particles for densities, pairs for P(r)).
    pub outside: f64,
    /// Samples (walker measurements) the histogram took: every `histogram_every`-th.
    #[serde(default)]
    pub samples: f64,
}

/// What production measured besides the energy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// <T>, the kinetic part of E_L.
    pub kinetic: Value,
    /// <V_trap> = 1/2 omega^2 <sum r_i^2>.
    pub trap: Value,
    /// <V_int> = <sum_{i<j} 1/r_ij> (0 without interaction).
    pub interaction: Value,
    /// 2 <T> / (2 <V_trap> - <V_int>): 1 for an exact eigenstate (virial theorem).
    pub virial_ratio: Value,
    /// <r_ij>, <1/r_ij> averaged over the pairs (absent for one particle; <1/r_ij> in 1D too).
    pub pair_distance: Option<Value>,
    pub inverse_pair_distance: Option<Value>,
    /// <r^2> averaged over the particles.
    pub square_radius: Value,
    /// Blocks the errors come from, and those of them the histograms took samples in.
    pub blocks: usize,
    #[serde(default)]
    pub histogram_blocks: usize,
    /// Walkers whose means give the scalars' walker-means errors (0 where unknown).
    #[serde(default)]
    pub walkers: usize,
    /// rho(r), normalised to P: sum of values x shell volumes plus `outside` is P.
    pub radial: Histogram,
    /// P(r12), normalised to the pairs: sum of values x width plus `outside` is P (P - 1) / 2.
    pub pair: Histogram,
    /// n(x, y), normalised to P (D = 2 only).
    pub grid: Option<Histogram>,
}

impl Observed {
    /// Why the densities' error bars cannot be trusted, if they cannot: too few blocks held
    /// histogram samples (the histograms took every `histogram_every`-th measurement).
    pub fn histogram_warning(&self, histogram_every: u32) -> Option<String> {
        let n = self.histogram_blocks;
        let none = if n < 2 { " (with one, none: null)" } else { "" };
        (n < MIN_HISTOGRAM_BLOCKS).then(|| {
            format!(
                "the densities took samples in {n} of {} blocks (`observables.histogram_every` \
                 = {histogram_every}), too few for their error bars{none}; run more production \
                 steps or lower observables.histogram_every",
                self.blocks
            )
        })
    }

    /// Why the scalars' error bars (the energy's parts, the virial ratio, the distances)
    /// cannot be trusted, if they cannot: too few walkers for the walker-means error, and time
    /// blocks too few or too short for the jackknife, judged by the energy's autocorrelation
    /// time `tau` over a call of `measurements` measurements per walker.
    pub fn error_warning(&self, tau: f64, measurements: f64) -> Option<String> {
        let per_block = measurements / self.blocks.max(1) as f64;
        // Blocks of about TAU_PER_BLOCK tau each, at most the blocks there are (an unknown
        // tau, as of a constant E_L, tells nothing against them).
        let independent = match tau > 0.0 {
            true => (measurements / (TAU_PER_BLOCK * tau)).min(self.blocks as f64),
            false => self.blocks as f64,
        };
        let few = (self.walkers as f64) < MIN_INDEPENDENT && independent < MIN_INDEPENDENT;
        few.then(|| {
            let span = match tau > 0.0 {
                true => format!(" ({:.1} autocorrelation times each)", per_block / tau),
                false => String::new(),
            };
            format!(
                "the error bars of the energy's parts and the distances come from {} walkers \
                 and {} time blocks of {per_block:.0} measurements{span}, too few for \
                 trustworthy errors; run more walkers or more production steps",
                self.walkers, self.blocks,
            )
        })
    }

    /// The estimates from `sums` of `particles` particles in `dims` dimensions histogrammed
    /// as `spec` says. `None` when nothing was measured.
    pub fn from_sums(
        sums: &ObservableSums,
        spec: &ObservablesSpec,
        particles: usize,
        dims: usize,
    ) -> Option<Self> {
        let blocks = rebin(&sums.blocks);
        let total = sum(&blocks);
        if total.samples == 0.0 {
            return None;
        }
        let walkers = &sums.walkers;
        // f64::max takes the other value when one is NaN (too few walkers or blocks).
        let scalar = |c: usize| {
            let (v, e) = jackknife(&blocks, |b| vec![b.scalars[c] / b.samples]);
            let mut gradient = [0.0; SCALARS];
            gradient[c] = 1.0;
            Value {
                value: v[0],
                error: e[0].max(walker_error(walkers, &gradient)),
            }
        };
        let (v, e) = jackknife(&blocks, |b| {
            let s = |c: usize| b.scalars[c] / b.samples;
            vec![2.0 * s(KINETIC) / (2.0 * s(TRAP) - s(INTERACTION))]
        });
        // The ratio's derivatives by the three means, for the delta method.
        let s = |c: usize| total.scalars[c] / total.samples;
        let denominator = 2.0 * s(TRAP) - s(INTERACTION);
        let mut gradient = [0.0; SCALARS];
        gradient[KINETIC] = 2.0 / denominator;
        gradient[TRAP] = -2.0 * v[0] / denominator;
        gradient[INTERACTION] = v[0] / denominator;
        let virial_ratio = Value {
            value: v[0],
            error: e[0].max(walker_error(walkers, &gradient)),
        };
        let pairs = particles > 1;

        // Radial shells: the volume between r and r + dr in D dimensions.
        let dr = spec.r_max / spec.radial_bins as f64;
        let ball = |r: f64| match dims {
            1 => 2.0 * r,
            2 => std::f64::consts::PI * r * r,
            _ => 4.0 / 3.0 * std::f64::consts::PI * r * r * r,
        };
        let shells: Vec<f64> = (0..spec.radial_bins)
            .map(|i| ball((i + 1) as f64 * dr) - ball(i as f64 * dr))
            .collect();
        // The histograms took every `histogram_every`-th measurement: each such sample put
        // its P particles in a radial bin or the overflow counter. Blocks that took none
        // (short blocks of a sparse stride) add nothing and are left out of the jackknife.
        let binned =
            |b: &Block| b.counts[..=spec.radial_overflow()].iter().sum::<f64>() / particles as f64;
        let histogram_blocks: Vec<Block> = blocks
            .iter()
            .filter_map(|b| {
                let samples = binned(b);
                (samples > 0.0).then(|| Block {
                    samples,
                    ..b.clone()
                })
            })
            .collect();
        let radial = histogram(&histogram_blocks, 0, &shells, dr);
        let dp = spec.pair_max / spec.pair_bins as f64;
        let pair = histogram(
            &histogram_blocks,
            spec.pair_offset(),
            &vec![dp; spec.pair_bins],
            dp,
        );
        let grid = (spec.grid_bins > 0).then(|| {
            let n = spec.grid_bins;
            let w = 2.0 * spec.r_max / n as f64;
            let h = histogram(
                &histogram_blocks,
                spec.grid_offset(),
                &vec![w * w; n * n],
                w,
            );
            Histogram {
                centres: (0..n).map(|i| -spec.r_max + (i as f64 + 0.5) * w).collect(),
                ..h
            }
        });
        Some(Self {
            kinetic: scalar(KINETIC),
            trap: scalar(TRAP),
            interaction: scalar(INTERACTION),
            virial_ratio,
            pair_distance: pairs.then(|| scalar(PAIR_DISTANCE)),
            // In 1D, <1/r_ij> diverges for any density that does not vanish at contact.
            inverse_pair_distance: (pairs && dims > 1).then(|| scalar(INVERSE_DISTANCE)),
            square_radius: scalar(SQUARE_RADIUS),
            blocks: blocks.len(),
            histogram_blocks: histogram_blocks.len(),
            walkers: walkers.count as usize,
            radial,
            pair,
            grid,
        })
    }
}

/// The walker-means error of a function of the scalars' means with derivatives `gradient`:
/// sqrt(g^T C g / W), C the covariance of the W walkers' means (the delta method; for one
/// scalar, the spread of its walker means over sqrt(W)). NaN with fewer than two walkers.
fn walker_error(walkers: &WalkerMeans, gradient: &[f64; SCALARS]) -> f64 {
    if walkers.count < 2.0 {
        return f64::NAN;
    }
    let mut variance = 0.0;
    for (c, gc) in gradient.iter().enumerate().filter(|(_, g)| **g != 0.0) {
        for (d, gd) in gradient.iter().enumerate().filter(|(_, g)| **g != 0.0) {
            variance += gc * gd * walkers.covariance(c, d);
        }
    }
    (variance.max(0.0) / walkers.count).sqrt()
}

/// Counts from `offset` over `measures.len()` bins (then the outside counter), divided by
/// the blocks' samples (those the histograms took) and each bin's measure (volume, width or
/// area).
fn histogram(blocks: &[Block], offset: usize, measures: &[f64], width: f64) -> Histogram {
    let n = measures.len();
    let (values, errors) = jackknife(blocks, |b| {
        (0..=n)
            .map(|i| b.counts[offset + i] / b.samples / measures.get(i).unwrap_or(&1.0))
            .collect()
    });
    Histogram {
        centres: (0..n).map(|i| (i as f64 + 0.5) * width).collect(),
        width,
        outside: values[n],
        values: values[..n].to_vec(),
        errors: errors[..n].to_vec(),
        samples: blocks.iter().map(|b| b.samples).sum(),
    }
}

/// Adjacent blocks merged in pairs (an odd last one joins its neighbour) until fewer than
/// `REBIN_ABOVE` remain.
fn rebin(blocks: &[Block]) -> Vec<Block> {
    let mut blocks = blocks.to_vec();
    while blocks.len() >= REBIN_ABOVE {
        let mut merged: Vec<Block> = blocks.chunks(2).map(sum).collect();
        if blocks.len() % 2 == 1 {
            let last = merged.pop().expect("at least two");
            add(merged.last_mut().expect("at least one"), &last);
        }
        blocks = merged;
    }
    blocks
}

fn sum(blocks: &[Block]) -> Block {
    let mut total = Block {
        counts: vec![0.0; blocks.first().map_or(0, |b| b.counts.len())],
        ..Default::default()
    };
    for b in blocks {
        add(&mut total, b);
    }
    total
}

fn add(a: &mut Block, b: &Block) {
    a.samples += b.samples;
    for c in 0..SCALARS {
        a.scalars[c] += b.scalars[c];
    }
    for (x, y) in a.counts.iter_mut().zip(&b.counts) {
        *x += y;
    }
}

/// `f` of the sum of the blocks, and its jackknife standard error over the blocks (NaN with
/// fewer than two): var = (G - 1) / G sum_b (f_(b) - mean f_(b))^2, f_(b) without block b.
pub fn jackknife(blocks: &[Block], f: impl Fn(&Block) -> Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    let total = sum(blocks);
    let value = f(&total);
    let g = blocks.len();
    if g < 2 {
        return (value.clone(), vec![f64::NAN; value.len()]);
    }
    let leave_out: Vec<Vec<f64>> = blocks
        .iter()
        .map(|b| {
            let mut rest = total.clone();
            rest.samples -= b.samples;
            for c in 0..SCALARS {
                rest.scalars[c] -= b.scalars[c];
            }
            for (x, y) in rest.counts.iter_mut().zip(&b.counts) {
                *x -= y;
            }
            f(&rest)
        })
        .collect();
    let errors = (0..value.len())
        .map(|i| {
            let mean = leave_out.iter().map(|v| v[i]).sum::<f64>() / g as f64;
            let ss: f64 = leave_out.iter().map(|v| (v[i] - mean).powi(2)).sum();
            (ss * (g - 1) as f64 / g as f64).sqrt()
        })
        .collect();
    (value, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For a plain mean of equal blocks the jackknife error is the batch-means error:
    /// the standard deviation of the block means over sqrt(G).
    #[test]
    fn the_jackknife_of_a_mean_is_the_batch_means_error() {
        let means = [1.0, 2.0, 4.0, 3.0, 0.5, 2.5];
        let blocks: Vec<Block> = means
            .iter()
            .map(|&m| Block {
                samples: 10.0,
                scalars: [10.0 * m, 0.0, 0.0, 0.0, 0.0, 0.0],
                counts: vec![],
            })
            .collect();
        let (v, e) = jackknife(&blocks, |b| vec![b.scalars[0] / b.samples]);
        let g = means.len() as f64;
        let mean = means.iter().sum::<f64>() / g;
        let var = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (g - 1.0);
        assert!((v[0] - mean).abs() < 1e-12);
        assert!(
            (e[0] - (var / g).sqrt()).abs() < 1e-12,
            "{} vs {}",
            e[0],
            var
        );
        // Rebinning keeps the sums and halves the count.
        let many: Vec<Block> = (0..70).map(|i| blocks[i % 6].clone()).collect();
        let merged = rebin(&many);
        assert_eq!(merged.len(), 35);
        assert_eq!(sum(&merged), sum(&many));
    }

    /// The scalars' errors are the larger of the blocks' jackknife and the walker-means
    /// error; the virial ratio's walker-means error is the delta method's, which for a
    /// ratio of means is close to a jackknife over the walkers.
    #[test]
    fn scalar_errors_take_the_walker_means_error_where_it_is_larger() {
        let spec = ObservablesSpec {
            radial_bins: 2,
            r_max: 2.0,
            pair_bins: 2,
            pair_max: 4.0,
            grid_bins: 0,
            histogram_every: 1,
        };
        // 32 identical blocks: the jackknife error is 0.
        let block = Block {
            samples: 16.0,
            scalars: [16.0, 24.0, 8.0, 16.0, 32.0, 8.0],
            counts: vec![1.0; spec.bins()],
        };
        let mut sums = ObservableSums {
            blocks: vec![block; 32],
            ..Default::default()
        };
        // 16 walkers with kinetic, trap and interaction means about 1, 1.5 and 0.5.
        let means: Vec<[f64; SCALARS]> = (0..16)
            .map(|w| {
                let u = ((w * 7) % 16) as f64 / 15.0 - 0.5;
                let v = ((w * 5) % 16) as f64 / 15.0 - 0.5;
                [
                    1.0 + 0.2 * u,
                    1.5 + 0.1 * v,
                    0.5 + 0.05 * u * v,
                    1.0,
                    2.0 + u,
                    0.5,
                ]
            })
            .collect();
        for m in &means {
            sums.walkers.push(m);
        }
        let o = Observed::from_sums(&sums, &spec, 2, 3).unwrap();
        assert_eq!((o.blocks, o.walkers), (32, 16));
        let n = means.len() as f64;
        let sd = |c: usize| {
            let mean = means.iter().map(|m| m[c]).sum::<f64>() / n;
            (means.iter().map(|m| (m[c] - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        };
        assert!((o.kinetic.error - sd(KINETIC) / n.sqrt()).abs() < 1e-12);
        assert!((o.square_radius.error - sd(SQUARE_RADIUS) / n.sqrt()).abs() < 1e-12);
        assert!(o.pair_distance.unwrap().error < 1e-12);
        // The walkers' means of a ratio of means, left out one at a time.
        let ratio = |m: &[f64; SCALARS]| 2.0 * m[0] / (2.0 * m[1] - m[2]);
        let total = means.iter().fold([0.0; SCALARS], |mut a, m| {
            for c in 0..SCALARS {
                a[c] += m[c];
            }
            a
        });
        let leave_out: Vec<f64> = means
            .iter()
            .map(|m| ratio(&std::array::from_fn(|c| (total[c] - m[c]) / (n - 1.0))))
            .collect();
        let mean = leave_out.iter().sum::<f64>() / n;
        let var = leave_out.iter().map(|r| (r - mean).powi(2)).sum::<f64>() * (n - 1.0) / n;
        let jackknife = var.sqrt();
        let delta = o.virial_ratio.error;
        assert!(
            (delta / jackknife - 1.0).abs() < 0.02,
            "{delta} vs {jackknife}"
        );
        // Without walker means (one walker, or sums from before them) the blocks' error.
        sums.walkers = Default::default();
        sums.walkers.push(&means[0]);
        let o = Observed::from_sums(&sums, &spec, 2, 3).unwrap();
        assert!(o.kinetic.error < 1e-12 && o.virial_ratio.error < 1e-12);
    }

    /// Few walkers and time blocks short beside tau are flagged; many walkers, or long
    /// blocks, are not.
    #[test]
    fn too_few_walkers_and_short_blocks_are_flagged() {
        let spec = ObservablesSpec {
            radial_bins: 2,
            r_max: 2.0,
            pair_bins: 2,
            pair_max: 4.0,
            grid_bins: 0,
            histogram_every: 1,
        };
        let mut sums = ObservableSums {
            blocks: vec![
                Block {
                    samples: 4.0,
                    scalars: [1.0; SCALARS],
                    counts: vec![1.0; spec.bins()],
                };
                32
            ],
            ..Default::default()
        };
        for _ in 0..4 {
            sums.walkers.push(&[1.0; SCALARS]);
        }
        let few = Observed::from_sums(&sums, &spec, 2, 3).unwrap();
        // 3200 measurements: 32 blocks of 100, at tau 80 (4 blocks of 10 tau).
        let warning = few.error_warning(80.0, 3200.0).unwrap();
        assert!(
            warning.contains("4 walkers and 32 time blocks of 100"),
            "{warning}"
        );
        assert!(warning.contains("(1.2 autocorrelation times"), "{warning}");
        assert_eq!(few.error_warning(5.0, 3200.0), None);
        assert_eq!(few.error_warning(f64::NAN, 3200.0), None);
        // Four blocks: too few whatever tau.
        sums.blocks.truncate(4);
        let short = Observed::from_sums(&sums, &spec, 2, 3).unwrap();
        let warning = short.error_warning(f64::NAN, 4.0).unwrap();
        assert!(
            warning.contains("4 time blocks of 1 measurements, too few"),
            "{warning}"
        );
        for _ in 0..4 {
            sums.walkers.push(&[1.0; SCALARS]);
        }
        let many = Observed::from_sums(&sums, &spec, 2, 3).unwrap();
        assert_eq!(many.error_warning(80.0, 3200.0), None);
    }

    /// Histograms that took samples in few blocks are counted and flagged; with one block
    /// their errors are unknown.
    #[test]
    fn too_few_blocks_with_histogram_samples_are_flagged() {
        let spec = ObservablesSpec {
            radial_bins: 2,
            r_max: 2.0,
            pair_bins: 2,
            pair_max: 4.0,
            grid_bins: 0,
            histogram_every: 16,
        };
        // Two particles in 3D, 10 samples a block; the binned ones count 20 radii, 10 pairs.
        let sums = |binned_every: usize| ObservableSums {
            blocks: (0..32)
                .map(|i| Block {
                    samples: 10.0,
                    scalars: [1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
                    counts: match i % binned_every {
                        0 => vec![12.0, 8.0, 0.0, 6.0, 4.0, 0.0],
                        _ => vec![0.0; 6],
                    },
                })
                .collect(),
            ..Default::default()
        };
        let observed = |every| Observed::from_sums(&sums(every), &spec, 2, 3).unwrap();
        let few = observed(16);
        assert_eq!((few.blocks, few.histogram_blocks), (32, 2));
        let warning = few.histogram_warning(16).unwrap();
        assert!(warning.contains("2 of 32 blocks"), "{warning}");
        let one = observed(32);
        assert!(one.radial.errors.iter().all(|e| e.is_nan()));
        assert!(one.histogram_warning(32).unwrap().contains("null"));
        let all = observed(1);
        assert_eq!(all.histogram_blocks, 32);
        assert_eq!(all.histogram_warning(1), None);
        assert!(all.radial.errors.iter().all(|e| e.is_finite()));
    }
}
