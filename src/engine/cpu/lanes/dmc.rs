//! Generations of fixed-node diffusion Monte Carlo on lanes: the moves of `DmcWalkers`
//! (`fixed_node_move` in src/engine/cpu/dmc.rs) for `L` walkers at once, built from the lanes'
//! importance-sampling moves at the time step tau. Each lane draws what its walker's stream
//! draws, in the same order, with the same arithmetic, so the lanes follow the scalar
//! population's walkers to rounding.

use super::simd::{L, Mask, V, exp};
use super::stream::LaneStream;
use super::{Group, LaneLoop, LanePsi, Simd, run_on};
use crate::engine::EngineSpec;
use crate::engine::dmc::{Branching, GenerationSums};
use crate::physics::Params;
use crate::rng::DMC_BLOCK;

/// What a generation's moves need besides the walkers: the spec whose sampler makes them
/// (importance sampling at tau with the DMC's moves), the parameters, the branching and the
/// generation (its random streams).
pub struct DmcStep<'a> {
    pub spec: &'a EngineSpec,
    pub params: &'a Params,
    pub branching: &'a Branching,
    pub generation: u64,
}

/// A lane group for `dmc_chunk`, kept from chunk to chunk: it holds no state between them.
pub struct DmcGroup(Group);

impl DmcGroup {
    pub fn new(spec: &EngineSpec, params: &Params) -> Self {
        Self(Group::new(&LanePsi::new(spec, params), spec))
    }
}

/// The walkers a generation starts from: the last generation's positions (walker-major,
/// `m` coordinates each) and local energies, and the comb's choice, if any: slot i starts from
/// walker `parents[i]`. The moves gather them as they load, so that no copy of the population
/// stands between the comb and the next generation.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub positions: &'a [f64],
    pub energies: &'a [f64],
    pub parents: Option<&'a [u32]>,
    pub m: usize,
}

impl Source<'_> {
    /// The walker that slot `slot` (of this process's walkers) starts from.
    #[inline(always)]
    pub fn walker(&self, slot: usize) -> usize {
        self.parents.map_or(slot, |p| p[slot] as usize)
    }

    pub fn position(&self, slot: usize) -> &[f64] {
        let j = self.walker(slot);
        &self.positions[j * self.m..(j + 1) * self.m]
    }

    pub fn energy(&self, slot: usize) -> f64 {
        self.energies[self.walker(slot)]
    }
}

/// A chunk of walkers for a generation: the slots `start..` of `from` (this process's; with
/// the spec's first walker they number the random streams), and where their new positions,
/// local energies and branching factors go.
pub struct DmcChunk<'a> {
    pub start: usize,
    pub from: Source<'a>,
    pub xs: &'a mut [f64],
    pub energies: &'a mut [f64],
    pub factors: &'a mut [f64],
}

/// The generation `step` of `chunk` in `group`, with the loop compiled for `simd`: the moves,
/// refused across a node of psi, then the local energies and branching factors. Returns the
/// moves' sums (proposals, acceptances, node crossings, diffusion).
pub fn dmc_chunk(
    simd: Simd,
    group: &mut DmcGroup,
    step: &DmcStep,
    chunk: DmcChunk,
) -> GenerationSums {
    let mut sums = GenerationSums::default();
    let job = Generation {
        group: &mut group.0,
        step,
        chunk,
        sums: &mut sums,
    };
    run_on(simd, job);
    sums
}

/// `dmc_chunk`'s arguments.
struct Generation<'a> {
    group: &'a mut Group,
    step: &'a DmcStep<'a>,
    chunk: DmcChunk<'a>,
    sums: &'a mut GenerationSums,
}

impl LaneLoop for Generation<'_> {
    #[inline(always)]
    fn run(self) {
        let spec = self.step.spec;
        let psi = LanePsi::new(spec, self.step.params);
        let (group, chunk) = (self.group, self.chunk);
        let walkers = chunk.energies.len();
        for start in (0..walkers).step_by(L) {
            let valid = (walkers - start).min(L);
            // The process's slot of each lane: spare lanes move a copy of the group's last
            // walker; nothing of theirs is kept.
            let slot = |l: usize| chunk.start + start + l.min(valid - 1);
            let from = chunk.from;
            group.load(
                from.positions,
                |l| from.walker(slot(l)),
                |l| spec.first_walker + slot(l) as u32,
            );
            // Every generation starts from scratch, as the scalar walkers' `load`.
            group.refresh(&psi, Mask::ALL);
            let generation = self.step.generation;
            let mut rng = LaneStream::at_block(spec.seed, group.walkers, generation, DMC_BLOCK);
            let mut tally = Tally::default();
            for k in 0..group.moves_per_step {
                group.fixed_node_move(&psi, spec, k, &mut rng, &mut tally);
            }
            let after = group.measure(&psi, spec);
            let before = V(std::array::from_fn(|l| from.energy(slot(l))));
            let factor = factor(self.step.branching, before, after);
            group.store(chunk.xs, start, valid);
            chunk.energies[start..start + valid].copy_from_slice(&after.0[..valid]);
            chunk.factors[start..start + valid].copy_from_slice(&factor.0[..valid]);
            tally.fold_into(self.sums, Mask::from_fn(|l| l < valid));
            self.sums.proposed += (valid * group.moves_per_step) as f64;
        }
    }
}

/// `Branching::factor` on lanes.
#[inline(always)]
fn factor(b: &Branching, before: V, after: V) -> V {
    let limited = |e: V| b.reference + (e - b.reference).map(|d| d.clamp(-b.cutoff, b.cutoff));
    let average = 0.5 * (limited(before) + limited(after));
    exp(-b.tau_eff * (average - b.trial_energy))
}

/// A group's sums over its moves, lane by lane.
#[derive(Default)]
struct Tally {
    accepted: V,
    node_crossings: V,
    diffusion_accepted: V,
    diffusion_proposed: V,
}

impl Tally {
    /// Adds the `live` lanes into `sums`.
    #[inline(always)]
    fn fold_into(&self, sums: &mut GenerationSums, live: Mask) {
        let total = |v: V| live.select(v, V::ZERO).sum();
        sums.accepted += total(self.accepted);
        sums.node_crossings += total(self.node_crossings);
        sums.diffusion_accepted += total(self.diffusion_accepted);
        sums.diffusion_proposed += total(self.diffusion_proposed);
    }
}

impl Group {
    /// Move k of a generation (particle k's, or the all-coordinate one): the Langevin
    /// proposal, refused where it crosses a node, else the Metropolis-Hastings test, which
    /// draws a uniform only where the ratio is below one (`fixed_node_move`).
    #[inline(always)]
    fn fixed_node_move(
        &mut self,
        psi: &LanePsi,
        spec: &EngineSpec,
        k: usize,
        rng: &mut LaneStream,
        tally: &mut Tally,
    ) {
        let dims = spec.system.dims;
        let (ln_ratio, range) = match self.single {
            true => (
                self.propose_single(psi, spec, k, rng),
                k * dims..(k + 1) * dims,
            ),
            false => (self.propose_all(psi, spec, rng), 0..self.x.len()),
        };
        let mut moved = V::ZERO;
        for m in range {
            let d = self.y[m] - self.x[m];
            moved += d * d;
        }
        let crossing = self.crosses_node();
        let sure = ln_ratio.ge(V::ZERO);
        let u = rng.acceptance_uniform(sure.not().and(crossing.not()));
        let accept = sure.or(u.lt(exp(ln_ratio))).and(crossing.not());
        // min(1, e^ln_ratio), and 0 for a NaN ratio (a broken proposal).
        let p = ln_ratio
            .is_nan()
            .select(V::ZERO, sure.select(V::splat(1.0), exp(ln_ratio)));
        let one = |mask: Mask| mask.select(V::splat(1.0), V::ZERO);
        tally.accepted += one(accept);
        tally.node_crossings += one(crossing);
        tally.diffusion_accepted += crossing.select(V::ZERO, p * moved);
        tally.diffusion_proposed += moved;
        match self.single {
            true => self.accept_single(psi, dims, k, accept),
            false => self.take_all(accept),
        }
    }

    /// The lanes whose proposal lies across a node of psi: the determinants change sign
    /// (`Walker::proposal_crosses_node`).
    #[inline(always)]
    fn crosses_node(&self) -> Mask {
        match (&self.dets, &self.dets_y) {
            (Some(dets), _) if self.single => dets.ratio().lt(V::ZERO),
            (Some(dets), Some(at_y)) => (dets.sign() * at_y.sign()).lt(V::ZERO),
            _ => Mask::ALL.not(),
        }
    }
}
