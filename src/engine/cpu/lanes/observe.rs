//! A group's sums in lanes: the energy and log-derivatives of a chunk, and the observables
//! of a block (`observables::observe`), added across the lanes once.

use super::*;

/// A group's observables scalars of one block, summed lane by lane and added across the lanes
/// once per block rather than once per measurement. The distances are summed over the pairs
/// and particles, and divided by their number once, when added.
#[derive(Default)]
pub(super) struct LaneBlock {
    pub(super) block: usize,
    pub(super) measurements: u32,
    pub(super) scalars: [V; SCALARS],
    /// The pair distances without interaction, where E_L has none to leave.
    pub(super) pairs: Vec<V>,
}

impl LaneBlock {
    /// Adds the group's sample to the observables (`observables::observe`): the scalars to
    /// the lane sums, and each of the first `valid` walkers to the histograms when given.
    #[inline(always)]
    pub(super) fn observe(
        &mut self,
        group: &Group,
        spec: &EngineSpec,
        valid: usize,
        histogram: Option<Histogram>,
    ) {
        let system = &spec.system;
        let (particles, d) = (system.particles, system.dims);
        // Added in place: building the six sums first copies kilobytes per measurement.
        let sums = &mut self.scalars;
        for (sum, &part) in sums[KINETIC..=INTERACTION].iter_mut().zip(&group.parts) {
            *sum += part;
        }
        sums[SQUARE_RADIUS] += group.r2;
        // The measurement left the pair distances where the interaction needed them, and
        // their inverse sum is the interaction energy.
        let pairs = if system.interaction {
            sums[INVERSE_DISTANCE] += group.parts[INTERACTION];
            &group.pairs
        } else {
            pair_distances(&group.x, particles, d, &mut self.pairs);
            for &r in &self.pairs {
                sums[INVERSE_DISTANCE] += 1.0 / r;
            }
            &self.pairs
        };
        for &r in pairs {
            sums[PAIR_DISTANCE] += r;
        }
        self.measurements += 1;
        if let Some((binning, counts)) = histogram {
            let x = &group.x;
            for p in 0..particles {
                let mut r2 = V::ZERO;
                for k in 0..d {
                    r2 += x[p * d + k] * x[p * d + k];
                }
                let xy = (d == 2).then(|| (&x[p * d].0, &x[p * d + 1].0));
                binning.count_particles(counts, &r2.sqrt().0, xy, valid);
            }
            for r in pairs {
                binning.count_pairs(counts, &r.0, valid);
            }
        }
    }

    /// Adds the sums of the first `valid` lanes to their block of `out`, and each to its
    /// walker's (the chunk's walkers `start..start + valid`), and starts afresh.
    pub(super) fn flush_into(
        &mut self,
        out: &mut ChunkOut,
        spec: &EngineSpec,
        start: usize,
        valid: usize,
    ) {
        if self.measurements == 0 {
            return;
        }
        let particles = spec.system.particles;
        let pairs = (particles * particles.saturating_sub(1) / 2).max(1) as f64;
        let mut per = [1.0; SCALARS];
        per[PAIR_DISTANCE] = pairs;
        per[SQUARE_RADIUS] = particles as f64;
        per[INVERSE_DISTANCE] = pairs;
        let live = Mask::from_fn(|l| l < valid);
        let sums = out.sums.observables.as_mut().expect("observing");
        let block = &mut sums.blocks[self.block];
        block.samples += (self.measurements as usize * valid) as f64;
        for ((s, v), per) in block.scalars.iter_mut().zip(&self.scalars).zip(per) {
            *s += live.select(*v, V::ZERO).sum() / per;
        }
        for (l, walker) in out.observed[start..start + valid].iter_mut().enumerate() {
            for ((s, v), per) in walker.iter_mut().zip(&self.scalars).zip(per) {
                *s += v.0[l] / per;
            }
        }
        self.measurements = 0;
        self.scalars = Default::default();
    }
}

/// The pair distances r_pq, p < q, in that order, into `out` (`System::coulomb`'s).
#[inline(always)]
pub(super) fn pair_distances(x: &[V], particles: usize, d: usize, out: &mut Vec<V>) {
    out.clear();
    for p in 0..particles {
        for q in p + 1..particles {
            let mut r2 = V::ZERO;
            for k in 0..d {
                let diff = x[p * d + k] - x[q * d + k];
                r2 += diff * diff;
            }
            out.push(r2.sqrt());
        }
    }
}

/// A chunk's sums, lane by lane; the lanes are added up once, at the end of the chunk.
pub(super) struct LaneSums {
    pub(super) samples: V,
    pub(super) energy: V,
    pub(super) energy_sq: V,
    pub(super) o: Vec<V>,
    pub(super) energy_o: Vec<V>,
    pub(super) accepted: V,
}

impl LaneSums {
    pub(super) fn new(k: usize) -> Self {
        Self {
            samples: V::ZERO,
            energy: V::ZERO,
            energy_sq: V::ZERO,
            o: vec![V::ZERO; k],
            energy_o: vec![V::ZERO; k],
            accepted: V::ZERO,
        }
    }

    /// Adds the measurement `e`, `o` of the `live` lanes.
    #[inline(always)]
    pub(super) fn add(&mut self, live: Mask, e: V, o: &[V]) {
        let keep = |v: V| live.select(v, V::ZERO);
        self.samples += keep(V::splat(1.0));
        self.energy += keep(e);
        self.energy_sq += keep(e * e);
        for ((so, seo), &oi) in self.o.iter_mut().zip(&mut self.energy_o).zip(o) {
            *so += keep(oi);
            *seo += keep(e * oi);
        }
    }

    /// Adds the lanes into `sums`.
    pub(super) fn fold_into(&self, sums: &mut crate::engine::Moments) {
        let total = |v: &V| v.sum();
        sums.samples += total(&self.samples) as u64;
        sums.energy += total(&self.energy);
        sums.energy_sq += total(&self.energy_sq);
        for (s, v) in sums.o.iter_mut().zip(&self.o) {
            *s += total(v);
        }
        for (s, v) in sums.energy_o.iter_mut().zip(&self.energy_o) {
            *s += total(v);
        }
        sums.accepted += total(&self.accepted);
    }
}
