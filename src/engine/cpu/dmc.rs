//! Diffusion Monte Carlo generations on the CPU, in f64: every walker drifts and diffuses by
//! the Langevin proposal of importance sampling (UNR's limited drift, the Green's-function
//! test), refuses moves across a node of psi (fixed node), and has its weight multiplied by
//! the branching factor of its averaged, cut-off local energy. Walkers are independent within
//! a generation, so they run in parallel over fixed chunks whose sums are added in order:
//! results do not depend on the thread count. The lane engine moves a chunk's walkers in SIMD
//! lanes (src/engine/cpu/lanes/dmc.rs), the same moves to rounding. The formulas are in
//! docs/physics.md ("Diffusion Monte Carlo").

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use super::chain::{langevin_proposal, metropolis_test, move_ranges};
use super::lanes::{self, DmcChunk, DmcGroup, DmcStep, Simd, Source};
use crate::dmc::comb;
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
    /// The comb's choice since the last generation: slot i holds a copy of walker
    /// `parents[i]` of the arrays above (`None`: each slot its own walker). The next
    /// generation gathers them as it loads them.
    parents: Option<Vec<u32>>,
    /// Where a generation writes the walkers, and a comb from elsewhere keeps them, before
    /// they replace the population (buffers reused).
    kept: Walkers,
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
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // The calling thread works too: the pool holds the others (at least one, for the
        // first energies).
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads((threads - 1).max(1))
            .build()
            .map_err(|e| Error::engine(format!("cannot start {threads} CPU threads: {e}")))?;
        Ok(Self {
            spec,
            moves,
            params: params.clone(),
            positions,
            energies,
            weights: vec![1.0; walkers],
            threads,
            pool,
            lanes: None,
            parents: None,
            kept: Walkers::default(),
        })
    }

    /// The kept walkers become the population; the old buffers are kept for the next time.
    fn take_kept(&mut self) {
        std::mem::swap(&mut self.positions, &mut self.kept.positions);
        std::mem::swap(&mut self.energies, &mut self.kept.energies);
        std::mem::swap(&mut self.weights, &mut self.kept.weights);
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
        let spec = &self.moving(branching.tau);
        let step = DmcStep {
            spec,
            params: &self.params,
            branching,
            generation,
        };
        let (m, simd, walkers) = (spec.coordinates(), self.lanes, self.weights.len());
        let parents = self.parents.take();
        let from = Source {
            positions: &self.positions,
            energies: &self.energies,
            parents: parents.as_deref(),
            m,
        };
        let kept = &mut self.kept;
        kept.positions.resize(walkers * m, 0.0);
        kept.energies.resize(walkers, 0.0);
        kept.weights.resize(walkers, 0.0);
        let chunks = kept
            .positions
            .chunks_mut(CHUNK * m)
            .zip(kept.energies.chunks_mut(CHUNK))
            .zip(kept.weights.chunks_mut(CHUNK))
            .enumerate();
        // The chunks are handed out one at a time to this thread and the pool's, each with
        // one mover: handing a whole generation to pool threads and waiting for them costs a
        // tenth of a small generation, and a pool thread that wakes late takes fewer chunks.
        let queue = Mutex::new(chunks);
        let work = || {
            let mut mover = Mover::new(simd, spec, step.params);
            let mut done = Vec::new();
            loop {
                let next = queue.lock().expect("no job panics holding it").next();
                let Some((c, ((xs, energies), weights))) = next else {
                    return done;
                };
                let chunk = DmcChunk {
                    start: c * CHUNK,
                    from,
                    xs,
                    energies,
                    factors: weights,
                };
                let mut sums = mover.moves(&step, chunk);
                for (&e, w) in energies.iter().zip(weights.iter_mut()) {
                    weigh(branching, e, w, &mut sums);
                }
                done.push((c, sums));
            }
        };
        let mut done = Vec::new();
        let (helpers, work) = (Mutex::new(Vec::new()), &work);
        self.pool.in_place_scope(|scope| {
            for _ in 1..self.threads {
                scope.spawn(|_| {
                    let theirs = work();
                    helpers
                        .lock()
                        .expect("no job panics holding it")
                        .extend(theirs);
                });
            }
            done = work();
        });
        done.extend(helpers.into_inner().expect("no job panicked holding it"));
        // Added in the chunks' order, whatever the thread count.
        done.sort_unstable_by_key(|&(c, _)| c);
        self.take_kept();
        let mut total = GenerationSums::default();
        for (_, sums) in &done {
            total.add(sums);
        }
        Ok(total)
    }

    fn walkers(&self) -> Result<Walkers, Error> {
        Ok(match &self.parents {
            Some(parents) => {
                let mut combed = Walkers::default();
                let m = self.spec.coordinates();
                chosen(parents, &self.positions, &self.energies, m, &mut combed);
                combed
            }
            None => Walkers {
                positions: self.positions.clone(),
                energies: self.energies.clone(),
                weights: self.weights.clone(),
            },
        })
    }

    fn resample(
        &mut self,
        slots: &[u32],
        positions: &[f64],
        energies: &[f64],
    ) -> Result<(), Error> {
        chosen(
            slots,
            positions,
            energies,
            self.spec.coordinates(),
            &mut self.kept,
        );
        self.take_kept();
        self.parents = None;
        Ok(())
    }

    /// Combs the walkers where they lie: the next generation gathers its walkers from the
    /// comb's choice (the driver's path copies the population twice).
    fn comb_in_place(&mut self, u: f64) -> Result<bool, Error> {
        if self.parents.is_some() {
            // Combed twice without a generation between: not a path the driver takes.
            return Ok(false);
        }
        self.parents = comb(&self.weights, u, self.weights.len());
        Ok(self.parents.is_some())
    }
}

/// What moves a chunk's walkers, kept from chunk to chunk: a lane group, or one walker at a
/// time in f64 with its drifts.
// One per rayon job, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Mover<'a> {
    Lanes(Simd, DmcGroup),
    Scalar(Walker<'a>, (Vec<f64>, Vec<f64>)),
}

impl<'a> Mover<'a> {
    fn new(simd: Option<Simd>, spec: &'a EngineSpec, params: &'a Params) -> Self {
        let m = spec.coordinates();
        match simd {
            Some(simd) => Mover::Lanes(simd, DmcGroup::new(spec, params)),
            None => Mover::Scalar(
                Walker::new(&spec.wavefunction, &spec.system, params),
                (vec![0.0; m], vec![0.0; m]),
            ),
        }
    }

    /// The generation `step` of `chunk`: the moves, then each walker's local energy and
    /// branching factor. Returns the moves' sums.
    fn moves(&mut self, step: &DmcStep, chunk: DmcChunk) -> GenerationSums {
        let (walker, drifts) = match self {
            Mover::Lanes(simd, group) => return lanes::dmc_chunk(*simd, group, step, chunk),
            Mover::Scalar(walker, drifts) => (walker, drifts),
        };
        let spec = step.spec;
        let m = spec.coordinates();
        let moves = move_ranges(spec.sampler.moves, spec.system.particles, spec.system.dims);
        let (tau, mut sums) = (spec.sampler.dt, GenerationSums::default());
        let walkers = chunk
            .xs
            .chunks_mut(m)
            .zip(chunk.energies)
            .zip(chunk.factors);
        for (i, ((x, e), factor)) in walkers.enumerate() {
            let slot = spec.first_walker + (chunk.start + i) as u32;
            let mut rng = StepStream::at_block(spec.seed, slot, step.generation, DMC_BLOCK);
            walker.load(chunk.from.position(chunk.start + i));
            for range in &moves {
                fixed_node_move(walker, range, spec, tau, drifts, &mut rng, &mut sums);
            }
            let after = walker.local_energy();
            *factor = step
                .branching
                .factor(chunk.from.energy(chunk.start + i), after);
            *e = after;
            x.copy_from_slice(walker.x());
        }
        sums
    }
}

/// A walker's weight from the branching factor `w` of its moves to local energy `e` (every
/// generation starts from the comb's unit weights): 0 where its numbers broke down. Adds to
/// the weight, energy, cutoff and loss sums.
fn weigh(branching: &Branching, e: f64, w: &mut f64, sums: &mut GenerationSums) {
    // A walker whose numbers broke down leaves the population.
    let alive = e.is_finite() && w.is_finite();
    if alive {
        sums.weighted_energy += *w * e;
        let beyond = (e - branching.reference).abs() > branching.cutoff;
        sums.clamped += beyond as u8 as f64;
    } else {
        *w = 0.0;
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
