//! Diffusion Monte Carlo generations on the CPU, in f64: every walker drifts and diffuses by
//! the Langevin proposal of importance sampling (UNR's limited drift, the Green's-function
//! test), refuses moves across a node of psi (fixed node), and has its weight multiplied by
//! the branching factor of its averaged, cut-off local energy. Walkers are independent within
//! a generation, so they run in parallel over fixed chunks whose sums are added in order:
//! results do not depend on the thread count. The lane engine moves a chunk's walkers in SIMD
//! lanes (src/engine/cpu/lanes/dmc.rs), the same moves to rounding. The formulas are in
//! docs/physics.md ("Diffusion Monte Carlo").

use std::ops::Range;

use rayon::prelude::*;

use super::chain::{langevin_proposal, metropolis_test, move_ranges};
use super::lanes::{self, Simd};
use crate::engine::dmc::{Branching, GenerationSums, Population, Walkers, chosen};
use crate::engine::{EngineSpec, Sampler};
use crate::error::Error;
use crate::physics::{Params, Walker};
use crate::rng::{DMC_BLOCK, StepStream};
use crate::sampler::{Moves, SamplerKind};

/// Walkers per chunk of a generation: one lane group.
const CHUNK: usize = lanes::L;

/// The walkers of a diffusion Monte Carlo run on the CPU: positions, local energies, weights.
pub struct DmcWalkers {
    spec: EngineSpec,
    moves: Moves,
    params: Params,
    positions: Vec<f64>,
    energies: Vec<f64>,
    weights: Vec<f64>,
    threads: usize,
    pool: rayon::ThreadPool,
    /// Move a chunk's walkers in SIMD lanes with these instructions; `None`: one at a time.
    lanes: Option<Simd>,
}

impl DmcWalkers {
    /// Walkers at `positions` (walker-major) with weight 1 and their local energies under
    /// `params`, moved by `moves`, on `threads` threads (0: one per core).
    pub fn new(
        spec: EngineSpec,
        moves: Moves,
        positions: Vec<f64>,
        params: &Params,
        threads: usize,
    ) -> Result<Self, Error> {
        let energies = vec![0.0; spec.walkers as usize];
        let mut ensemble = Self::restore(spec, moves, positions, energies, params, threads)?;
        ensemble.measure();
        Ok(ensemble)
    }

    /// Walkers at `positions` with the local energies `energies` they had (a checkpoint's:
    /// recomputing them would round differently after single-particle moves), weight 1.
    pub fn restore(
        spec: EngineSpec,
        moves: Moves,
        positions: Vec<f64>,
        energies: Vec<f64>,
        params: &Params,
        threads: usize,
    ) -> Result<Self, Error> {
        let walkers = spec.walkers as usize;
        if positions.len() != walkers * spec.coordinates() || energies.len() != walkers {
            return Err(Error::input(format!(
                "the DMC checkpoint holds {} coordinates and {} energies; its config needs {} \
                 walkers x {} coordinates",
                positions.len(),
                energies.len(),
                walkers,
                spec.coordinates()
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::engine(format!("cannot start {threads} CPU threads: {e}")))?;
        Ok(Self {
            spec,
            moves,
            params: params.clone(),
            positions,
            energies,
            weights: vec![1.0; walkers],
            threads: pool.current_num_threads(),
            pool,
            lanes: None,
        })
    }

    /// Moves the walkers in SIMD lanes with `simd` where the lane engine runs the moves;
    /// `None` keeps the scalar reference.
    pub fn with_lanes(mut self, simd: Option<Simd>) -> Result<Self, Error> {
        let simd = lanes::checked(simd)?;
        self.lanes = simd.filter(|_| lanes::supports(&self.moving(1.0)));
        Ok(self)
    }

    /// The spec whose sampler makes a generation's moves: importance sampling at time step
    /// `tau` with the DMC's moves.
    fn moving(&self, tau: f64) -> EngineSpec {
        EngineSpec {
            sampler: Sampler {
                kind: SamplerKind::Importance,
                moves: self.moves,
                dt: tau,
                ..self.spec.sampler
            },
            ..self.spec.clone()
        }
    }

    /// The local energies at the current positions.
    fn measure(&mut self) {
        let (spec, m) = (&self.spec, self.spec.coordinates());
        let (positions, params) = (&self.positions, &self.params);
        self.pool.install(|| {
            self.energies
                .par_chunks_mut(CHUNK)
                .zip(positions.par_chunks(CHUNK * m))
                .for_each(|(energies, xs)| {
                    let mut walker = Walker::new(&spec.wavefunction, &spec.system, params);
                    for (e, x) in energies.iter_mut().zip(xs.chunks(m)) {
                        walker.load(x);
                        *e = walker.local_energy();
                    }
                });
        });
    }
}

impl Population for DmcWalkers {
    fn describe(&self) -> String {
        let lanes = match self.lanes {
            Some(simd) => format!(", {}-wide lanes, {}", lanes::L, simd.name()),
            None => String::new(),
        };
        format!(
            "cpu ({} walkers on {} threads, f64{lanes})",
            self.spec.walkers, self.threads
        )
    }

    fn first_walker(&self) -> u32 {
        self.spec.first_walker
    }

    /// Every walker makes its moves with the stream of (its slot, the generation), then its
    /// weight takes the branching factor.
    fn generation(
        &mut self,
        generation: u64,
        branching: &Branching,
    ) -> Result<GenerationSums, Error> {
        let (spec, params, simd) = (&self.moving(branching.tau), &self.params, self.lanes);
        let m = spec.coordinates();
        let chunks: Vec<GenerationSums> = self.pool.install(|| {
            self.positions
                .par_chunks_mut(CHUNK * m)
                .zip(self.energies.par_chunks_mut(CHUNK))
                .zip(self.weights.par_chunks_mut(CHUNK))
                .enumerate()
                .map(|(c, ((xs, energies), weights))| {
                    let first = spec.first_walker + (c * CHUNK) as u32;
                    let mut after = [0.0; CHUNK];
                    let after = &mut after[..energies.len()];
                    let mut sums = match simd {
                        Some(simd) => {
                            lanes::dmc_chunk(simd, spec, params, generation, first, xs, after)
                        }
                        None => scalar_moves(spec, params, generation, first, xs, after),
                    };
                    for ((e, w), &a) in energies.iter_mut().zip(weights).zip(after.iter()) {
                        weigh(branching, e, w, a, &mut sums);
                    }
                    sums
                })
                .collect()
        });
        let mut total = GenerationSums::default();
        for chunk in &chunks {
            total.add(chunk);
        }
        Ok(total)
    }

    fn walkers(&self) -> Result<Walkers, Error> {
        Ok(Walkers {
            positions: self.positions.clone(),
            energies: self.energies.clone(),
            weights: self.weights.clone(),
        })
    }

    fn resample(
        &mut self,
        slots: &[u32],
        positions: &[f64],
        energies: &[f64],
    ) -> Result<(), Error> {
        let kept = chosen(slots, positions, energies, self.spec.coordinates());
        (self.positions, self.energies, self.weights) =
            (kept.positions, kept.energies, kept.weights);
        Ok(())
    }
}

/// Generation `generation` of the moves of `spec`'s sampler for the walkers `xs` (slots from
/// `first`), one at a time in f64; their local energies after the moves into `after`. Returns
/// the moves' sums.
fn scalar_moves(
    spec: &EngineSpec,
    params: &Params,
    generation: u64,
    first: u32,
    xs: &mut [f64],
    after: &mut [f64],
) -> GenerationSums {
    let m = spec.coordinates();
    let moves = move_ranges(spec.sampler.moves, spec.system.particles, spec.system.dims);
    let mut walker = Walker::new(&spec.wavefunction, &spec.system, params);
    let mut drifts = (vec![0.0; m], vec![0.0; m]);
    let (tau, mut sums) = (spec.sampler.dt, GenerationSums::default());
    for (i, (x, e)) in xs.chunks_mut(m).zip(after.iter_mut()).enumerate() {
        let mut rng = StepStream::at_block(spec.seed, first + i as u32, generation, DMC_BLOCK);
        walker.load(x);
        for range in &moves {
            fixed_node_move(
                &mut walker,
                range,
                spec,
                tau,
                &mut drifts,
                &mut rng,
                &mut sums,
            );
        }
        *e = walker.local_energy();
        x.copy_from_slice(walker.x());
    }
    sums
}

/// A walker's weight after its moves from local energy `e` to `after`: the branching factor
/// (every generation starts from the comb's unit weights), or 0 where its numbers broke down;
/// `e` becomes `after`. Adds to the weight, energy, cutoff and loss sums.
fn weigh(branching: &Branching, e: &mut f64, w: &mut f64, after: f64, sums: &mut GenerationSums) {
    let factor = branching.factor(*e, after);
    // A walker whose numbers broke down leaves the population.
    let alive = after.is_finite() && factor.is_finite();
    *w = if alive { factor } else { 0.0 };
    *e = after;
    if alive {
        sums.weighted_energy += *w * after;
        let beyond = (after - branching.reference).abs() > branching.cutoff;
        sums.clamped += beyond as u8 as f64;
    } else {
        sums.lost += 1.0;
    }
    sums.weight += *w;
    sums.weight_squared += *w * *w;
}

/// One move of fixed-node DMC on `range`: the Langevin proposal of importance sampling, a
/// proposal across a node refused (and counted), else the Metropolis-Hastings test; adds
/// to the acceptance and diffusion sums.
fn fixed_node_move(
    walker: &mut Walker,
    range: &Range<usize>,
    spec: &EngineSpec,
    tau: f64,
    (vx, vy): &mut (Vec<f64>, Vec<f64>),
    rng: &mut StepStream,
    sums: &mut GenerationSums,
) {
    let dims = spec.system.dims;
    let ln_ratio = langevin_proposal(walker, range, tau, dims, (vx, vy), rng);
    let moved: f64 = range
        .clone()
        .map(|k| (walker.y()[k] - walker.x()[k]).powi(2))
        .sum();
    sums.proposed += 1.0;
    sums.diffusion_proposed += moved;
    if walker.proposal_crosses_node(range) {
        sums.node_crossings += 1.0;
        return;
    }
    // A NaN ratio (a broken proposal) is never accepted.
    let p = if ln_ratio.is_nan() {
        0.0
    } else {
        ln_ratio.min(0.0).exp()
    };
    sums.diffusion_accepted += p * moved;
    if metropolis_test(rng, ln_ratio) {
        walker.accept(range);
        sums.accepted += 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The move against the formulas of docs/physics.md written out for a Gaussian trial
    /// function psi = exp(-|x|^2 / 2) (a zero RBM, sigma 1): UNR's limited drift in its own
    /// form vbar = v (-1 + sqrt(1 + 2 |v|^2 tau)) / (|v|^2 tau), the Green's-function test
    /// with the same draws, and p |dR|^2 for the effective time step.
    #[test]
    fn the_move_is_unrs_at_fixed_draws() {
        let config = Config::default();
        let spec = EngineSpec::from_config(&config);
        let params = Params::zeros(spec.wavefunction.layout);
        let tau = 0.3;
        let limited = |x: &[f64]| -> Vec<f64> {
            x.chunks(2)
                .flat_map(|p| {
                    let v: Vec<f64> = p.iter().map(|xi| -xi).collect();
                    let v2: f64 = v.iter().map(|a| a * a).sum();
                    let f = (-1.0 + (1.0 + 2.0 * v2 * tau).sqrt()) / (v2 * tau);
                    v.into_iter().map(move |a| f * a)
                })
                .collect()
        };
        let mut accepted_somewhere = (false, false);
        for slot in 0..40u32 {
            let x: Vec<f64> = (0..4)
                .map(|k| (k as f64 - 1.5) * (1.0 + slot as f64 / 8.0))
                .collect();
            let mut walker = Walker::new(&spec.wavefunction, &spec.system, &params);
            walker.load(&x);
            let mut drifts = (vec![0.0; 4], vec![0.0; 4]);
            let mut rng = StepStream::at_block(spec.seed, slot, 7, DMC_BLOCK);
            let mut sums = GenerationSums::default();
            fixed_node_move(
                &mut walker,
                &(0..4),
                &spec,
                tau,
                &mut drifts,
                &mut rng,
                &mut sums,
            );

            let mut draws = StepStream::at_block(spec.seed, slot, 7, DMC_BLOCK);
            let vx = limited(&x);
            let y: Vec<f64> = (0..4)
                .map(|k| x[k] + tau * vx[k] + tau.sqrt() * draws.normal())
                .collect();
            let vy = limited(&y);
            let norm2 = |a: &[f64]| a.iter().map(|v| v * v).sum::<f64>();
            let forward: Vec<f64> = (0..4).map(|k| y[k] - x[k] - tau * vx[k]).collect();
            let backward: Vec<f64> = (0..4).map(|k| x[k] - y[k] - tau * vy[k]).collect();
            let ln_ratio =
                -(norm2(&y) - norm2(&x)) + (norm2(&forward) - norm2(&backward)) / (2.0 * tau);
            let p = ln_ratio.min(0.0).exp();
            let accept = ln_ratio >= 0.0 || draws.acceptance_uniform() < p;
            let moved: f64 = (0..4).map(|k| (y[k] - x[k]).powi(2)).sum();

            let expected = if accept { &y } else { &x };
            for (a, b) in walker.x().iter().zip(expected) {
                assert!((a - b).abs() < 1e-12, "slot {slot}: {a} vs {b}");
            }
            assert_eq!(sums.accepted, accept as u8 as f64);
            assert!((sums.diffusion_proposed - moved).abs() < 1e-12);
            assert!((sums.diffusion_accepted - p * moved).abs() < 1e-12 * moved.max(1.0));
            assert_eq!(sums.node_crossings, 0.0);
            if accept {
                accepted_somewhere.0 = true;
            } else {
                accepted_somewhere.1 = true;
            }
        }
        assert_eq!(accepted_somewhere, (true, true), "both outcomes tested");
    }
}
