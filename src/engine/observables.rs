//! Observables beyond the energy, measured in production only: the parts of E_L (kinetic,
//! trap, interaction), pair distances and the mean square radius, and histograms of the
//! one-body radial density, the pair distances and (D = 2) the x-y density.
//!
//! Both engines sum them per *block*: the measurements of one `sample` call are cut into
//! `blocks` contiguous runs (every walker's measurement m falls in block
//! `m * blocks / measurements`), and each block holds the sums over every walker. They also
//! keep every walker's sums of the scalars over the call, and return the walkers' means
//! (`WalkerMeans`). The errors come from the spread of the blocks (a jackknife) and of the
//! walkers' means (`crate::stats::observables`). The GPU twin is the observation code in
//! `shaders/walk.wgsl`.

use serde::{Deserialize, Serialize};

pub use crate::spec::{MAX_BINS, MAX_BLOCKS, ObservablesSpec};

/// Adding 1.5 * 2^52 rounds an f64 of magnitude below 2^51 to the nearest integer (ties to
/// even), and leaves that integer in the low bits of the sum's representation (the bins here,
/// and the lanes' exp and sin/cos).
pub(crate) const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;

/// Scalars summed per sample, in this order (the GPU's partial sums use the same).
pub const SCALARS: usize = 6;
/// Kinetic part of E_L, -1/2 sum (lap + grad^2) of ln psi.
pub const KINETIC: usize = 0;
/// Trap energy 1/2 omega^2 sum r_i^2.
pub const TRAP: usize = 1;
/// Coulomb energy sum_{i<j} 1/r_ij (0 without interaction).
pub const INTERACTION: usize = 2;
/// Mean pair distance of the sample, sum_{i<j} r_ij / (P (P - 1) / 2).
pub const PAIR_DISTANCE: usize = 3;
/// Mean square radius of the sample, sum_i r_i^2 / P.
pub const SQUARE_RADIUS: usize = 4;
/// Mean inverse pair distance of the sample, sum_{i<j} 1/r_ij / (P (P - 1) / 2).
pub const INVERSE_DISTANCE: usize = 5;

/// The histograms' geometry in the form the binning uses: scales instead of divisions, and
/// counter indices as u32 (all bins together are at most `MAX_BINS`).
#[derive(Clone, Copy, Debug)]
pub struct Binning {
    radial_bins: u32,
    radial_scale: f64,
    pair_offset: u32,
    pair_bins: u32,
    pair_scale: f64,
    grid_offset: u32,
    grid_bins: u32,
    grid_scale: f64,
    r_max: f64,
}

impl Binning {
    pub fn new(s: &ObservablesSpec) -> Self {
        Self {
            radial_bins: s.radial_bins as u32,
            radial_scale: s.radial_bins as f64 / s.r_max,
            pair_offset: s.pair_offset() as u32,
            pair_bins: s.pair_bins as u32,
            pair_scale: s.pair_bins as f64 / s.pair_max,
            grid_offset: s.grid_offset() as u32,
            grid_bins: s.grid_bins as u32,
            grid_scale: s.grid_bins as f64 / (2.0 * s.r_max),
            r_max: s.r_max,
        }
    }
}

/// `value * scale` as a bin index below `bins`, or `bins` (the overflow counter) beyond; NaN
/// overflows. Free of branches and float-to-int casts, which do not vectorise, so that the
/// lane engine bins 64 walkers at once.
#[inline(always)]
pub fn bin(value: f64, scale: f64, bins: u32) -> u32 {
    let t = value * scale;
    let t = if (t >= 0.0) & (t < bins as f64) {
        t
    } else {
        bins as f64
    };
    // t rounded to the nearest integer n sits in the low bits of `shifted`; floor(t) is n,
    // or n - 1 where t was rounded up.
    let shifted = t + ROUND_MAGIC;
    shifted.to_bits() as u32 - ((shifted - ROUND_MAGIC) > t) as u32
}

/// The sums of one block: samples (walker measurements), scalar sums, histogram counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub samples: f64,
    pub scalars: [f64; SCALARS],
    /// Counts in `ObservablesSpec` order (empty when no histograms are kept).
    pub counts: Vec<f64>,
}

impl Block {
    /// Adds `other`'s sums; counts only where it has them (the CPU engine's chunks keep their
    /// counts apart, see `CpuEngine`).
    fn add(&mut self, other: &Block) {
        self.samples += other.samples;
        for (a, b) in self.scalars.iter_mut().zip(&other.scalars) {
            *a += b;
        }
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0.0; other.counts.len()];
        }
        assert_eq!(self.counts.len(), other.counts.len(), "histograms differ");
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }
}

/// Every walker's means of the scalars over a call, summed over the walkers: their count,
/// sums and sums of products (for the walker-means errors, as the energy has, and the
/// covariances the virial ratio's error needs). Independent walkers make these errors sound
/// whatever the correlation time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WalkerMeans {
    pub count: f64,
    pub sum: [f64; SCALARS],
    /// Sums of m_c m_d, `SCALARS` x `SCALARS` row-major (empty while the count is 0).
    pub products: Vec<f64>,
}

impl WalkerMeans {
    /// Numbers `flatten` writes.
    const FLAT: usize = 1 + SCALARS + SCALARS * SCALARS;

    /// Adds one walker's means.
    pub fn push(&mut self, means: &[f64; SCALARS]) {
        self.products.resize(SCALARS * SCALARS, 0.0);
        self.count += 1.0;
        for c in 0..SCALARS {
            self.sum[c] += means[c];
            for d in 0..SCALARS {
                self.products[c * SCALARS + d] += means[c] * means[d];
            }
        }
    }

    /// Adds other walkers' sums.
    pub fn add(&mut self, other: &WalkerMeans) {
        if other.count == 0.0 {
            return;
        }
        self.products.resize(SCALARS * SCALARS, 0.0);
        self.count += other.count;
        for c in 0..SCALARS {
            self.sum[c] += other.sum[c];
        }
        for (a, b) in self.products.iter_mut().zip(&other.products) {
            *a += b;
        }
    }

    /// The covariance (ddof 1) of scalars c and d over the walkers' means; NaN with fewer
    /// than two walkers.
    pub fn covariance(&self, c: usize, d: usize) -> f64 {
        let n = self.count;
        if n < 2.0 {
            return f64::NAN;
        }
        (self.products[c * SCALARS + d] - self.sum[c] * self.sum[d] / n) / (n - 1.0)
    }
}

/// Observables of a `sample` call (or of several appended): its blocks in time order, and
/// the walkers' means over the call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservableSums {
    pub blocks: Vec<Block>,
    /// Filled at the end of the call (absent in sums written before it existed).
    #[serde(default)]
    pub walkers: WalkerMeans,
}

impl ObservableSums {
    /// The empty blocks of a call of `measurements` measurements per walker.
    pub fn zeros(spec: &ObservablesSpec, measurements: u32) -> Self {
        let mut sums = Self::scalars_only(measurements);
        for b in &mut sums.blocks {
            b.counts = vec![0.0; spec.bins()];
        }
        sums
    }

    /// Empty blocks without histogram counts.
    pub fn scalars_only(measurements: u32) -> Self {
        Self {
            blocks: vec![Block::default(); ObservablesSpec::blocks(measurements) as usize],
            walkers: WalkerMeans::default(),
        }
    }

    /// Adds the sums of other walkers block by block, and their walker means.
    pub fn add(&mut self, other: &ObservableSums) {
        self.add_blocks(other);
        self.walkers.add(&other.walkers);
    }

    /// Adds the sums of later steps of the same walkers block by block; the walker means stay
    /// (as the energy's do: they are the whole call's, added at its end).
    pub fn add_blocks(&mut self, later: &ObservableSums) {
        assert_eq!(self.blocks.len(), later.blocks.len(), "blocks differ");
        for (a, b) in self.blocks.iter_mut().zip(&later.blocks) {
            a.add(b);
        }
    }

    /// Every number, for one all-reduce: per block its samples, scalars and counts, then the
    /// walker means (count, sums, products).
    pub fn flatten(&self, out: &mut Vec<f64>) {
        for b in &self.blocks {
            out.push(b.samples);
            out.extend(b.scalars);
            out.extend(&b.counts);
        }
        let w = &self.walkers;
        out.push(w.count);
        out.extend(w.sum);
        match w.products.is_empty() {
            true => out.extend([0.0; SCALARS * SCALARS]),
            false => out.extend(&w.products),
        }
    }

    /// The inverse of `flatten` for sums of this shape; returns the values not used.
    pub fn unflatten<'a>(&mut self, mut v: &'a [f64]) -> &'a [f64] {
        for b in &mut self.blocks {
            b.samples = v[0];
            b.scalars.copy_from_slice(&v[1..1 + SCALARS]);
            v = &v[1 + SCALARS..];
            let (counts, rest) = v.split_at(b.counts.len());
            b.counts.copy_from_slice(counts);
            v = rest;
        }
        let (w, rest) = v.split_at(WalkerMeans::FLAT);
        self.walkers = WalkerMeans {
            count: w[0],
            sum: w[1..1 + SCALARS].try_into().expect("SCALARS values"),
            products: match w[0] {
                0.0 => Vec::new(),
                _ => w[1 + SCALARS..].to_vec(),
            },
        };
        rest
    }
}

/// A block's histogram counts with their binning, for a sample the histograms take.
pub type Histogram<'a> = (&'a Binning, &'a mut [u64]);

/// Adds one sample at position `x` (P particles x `dims`) with E_L's parts `energy`
/// (kinetic, trap, interaction) to `block`'s scalars, and its positions to `counts` (the
/// block's histogram counts, `spec.bins()` of them) when given; returns the sample's scalars.
pub fn observe(
    x: &[f64],
    dims: usize,
    energy: [f64; 3],
    block: &mut Block,
    histogram: Option<Histogram>,
) -> [f64; SCALARS] {
    // Loops over the dimensions with a constant bound: this runs at every measurement.
    let values = match dims {
        1 => observe_in::<1>(x, energy, histogram),
        2 => observe_in::<2>(x, energy, histogram),
        _ => observe_in::<3>(x, energy, histogram),
    };
    block.samples += 1.0;
    for (s, v) in block.scalars.iter_mut().zip(values) {
        *s += v;
    }
    values
}

fn observe_in<const D: usize>(
    x: &[f64],
    energy: [f64; 3],
    mut histogram: Option<Histogram>,
) -> [f64; SCALARS] {
    let (points, _) = x.as_chunks::<D>();
    let particles = points.len();
    let pairs = (particles * particles.saturating_sub(1) / 2).max(1) as f64;
    let (mut r2_sum, mut r_sum, mut inv_sum) = (0.0, 0.0, 0.0);
    for p in 0..particles {
        let xp = points[p];
        let r2: f64 = xp.iter().map(|v| v * v).sum();
        r2_sum += r2;
        if let Some((s, counts)) = histogram.as_mut() {
            // The grid is 2D only; xp[D - 1] (y there) compiles for every D.
            let (x, y) = ([xp[0]], [xp[D - 1]]);
            s.count_particles(counts, &[r2.sqrt()], (D == 2).then_some((&x, &y)), 1);
        }
        for xq in &points[p + 1..particles] {
            let r = distance(&xp, xq);
            r_sum += r;
            inv_sum += 1.0 / r;
            if let Some((s, counts)) = histogram.as_mut() {
                s.count_pairs(counts, &[r], 1);
            }
        }
    }
    [
        energy[0],
        energy[1],
        energy[2],
        r_sum / pairs,
        r2_sum / particles as f64,
        inv_sum / pairs,
    ]
}

impl Binning {
    /// Counts the first `valid` of `N` particles, at distances `r` from the centre, in the
    /// radial density and, given their x and y in 2D, in the x-y grid. The bins of all `N`
    /// are found first (that loop vectorises), then counted one by one.
    #[inline(always)]
    pub fn count_particles<const N: usize>(
        &self,
        counts: &mut [u64],
        r: &[f64; N],
        xy: Option<(&[f64; N], &[f64; N])>,
        valid: usize,
    ) {
        let mut at = [0; N];
        for (a, &r) in at.iter_mut().zip(r) {
            *a = bin(r, self.radial_scale, self.radial_bins);
        }
        add_counts(counts, &at[..valid]);
        if let Some((x, y)) = xy.filter(|_| self.grid_bins > 0) {
            let n = self.grid_bins;
            for l in 0..N {
                let ix = bin(x[l] + self.r_max, self.grid_scale, n);
                let iy = bin(y[l] + self.r_max, self.grid_scale, n);
                let cell = if ix < n && iy < n { iy * n + ix } else { n * n };
                at[l] = self.grid_offset + cell;
            }
            add_counts(counts, &at[..valid]);
        }
    }

    /// Counts the first `valid` of `N` pairs, at distances `r`, in the pair distribution.
    #[inline(always)]
    pub fn count_pairs<const N: usize>(&self, counts: &mut [u64], r: &[f64; N], valid: usize) {
        let mut at = [0; N];
        for (a, &r) in at.iter_mut().zip(r) {
            *a = self.pair_offset + bin(r, self.pair_scale, self.pair_bins);
        }
        add_counts(counts, &at[..valid]);
    }
}

/// Adds one to each counter named in `at`. Not inlined: in the lane engine's loop, registers
/// are scarce, and this loop's own were spilled and reloaded at every count (for the scalar
/// engine the call is small beside its step).
#[inline(never)]
fn add_counts(counts: &mut [u64], at: &[u32]) {
    for &i in at {
        counts[i as usize] += 1;
    }
}

#[inline]
fn distance<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    (0..D)
        .map(|k| (a[k] - b[k]) * (a[k] - b[k]))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cut_a_call_into_nearly_equal_runs() {
        assert_eq!(ObservablesSpec::block_lengths(64), vec![2; 32]);
        assert_eq!(ObservablesSpec::block_lengths(5), vec![1; 5]);
        let l = ObservablesSpec::block_lengths(100);
        assert_eq!(l.len(), 32);
        assert_eq!(l.iter().sum::<u32>(), 100);
        assert!(l.iter().all(|&n| n == 3 || n == 4));
    }

    #[test]
    fn bin_is_the_floor_inside_and_the_overflow_counter_outside() {
        for bins in [1, 7, 50, MAX_BINS as u32] {
            for i in 0..bins {
                let (lo, hi) = (i as f64, (i + 1) as f64);
                for t in [lo, lo.next_up(), lo + 0.5, hi.next_down()] {
                    assert_eq!(bin(t, 1.0, bins), i, "{t} of {bins}");
                }
            }
            let inf = f64::INFINITY;
            for t in [-1e-300, -0.5, bins as f64, 1e300, inf, -inf, f64::NAN] {
                assert_eq!(bin(t, 1.0, bins), bins, "{t} of {bins}");
            }
        }
        assert_eq!(bin(0.75, 4.0, 50), 3);
    }

    #[test]
    fn one_sample_lands_in_the_right_bins() {
        let spec = ObservablesSpec {
            radial_bins: 4,
            r_max: 2.0,
            pair_bins: 4,
            pair_max: 4.0,
            grid_bins: 2,
            histogram_every: 1,
        };
        assert_eq!(spec.bins(), 5 + 5 + 5);
        let mut block = Block::default();
        let mut counts = vec![0; spec.bins()];
        // Particles at (0.3, 0.4) (r = 0.5) and (-3, 0) (r = 3, beyond r_max); r12 = 3.3242.
        let x = [0.3, 0.4, -3.0, 0.0];
        let binning = Binning::new(&spec);
        observe(
            &x,
            2,
            [1.0, 2.0, 3.0],
            &mut block,
            Some((&binning, &mut counts)),
        );
        block.counts = counts.iter().map(|&n| n as f64).collect();
        let mut expected = vec![0.0; 15];
        expected[1] = 1.0; // r = 0.5 in [0.5, 1)
        expected[4] = 1.0; // overflow
        expected[5 + 3] = 1.0; // r12 in [3, 4)
        expected[10 + 3] = 1.0; // (0.3, 0.4): x in [0, 2), y in [0, 2): cell (1, 1)
        expected[10 + 4] = 1.0; // (-3, 0) off the grid
        assert_eq!(block.counts, expected);
        let r12 = (3.3f64 * 3.3 + 0.16).sqrt();
        assert_eq!(block.scalars[..3], [1.0, 2.0, 3.0]);
        assert!((block.scalars[PAIR_DISTANCE] - r12).abs() < 1e-15);
        assert!((block.scalars[SQUARE_RADIUS] - (0.25 + 9.0) / 2.0).abs() < 1e-15);
        assert!((block.scalars[INVERSE_DISTANCE] - 1.0 / r12).abs() < 1e-15);
        let mut sums = ObservableSums {
            blocks: vec![block.clone(), block],
            ..Default::default()
        };
        sums.walkers.push(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut flat = Vec::new();
        sums.flatten(&mut flat);
        let copy = sums.clone();
        sums.blocks[1].samples = 7.0;
        assert!(sums.unflatten(&flat).is_empty());
        assert_eq!(sums, copy);
    }
}
