//! One walker's Markov chain on the CPU: the three samplers and the measurement, in f64, on a
//! `Walker` (the wave function's caches). The WGSL twins are `shaders/metropolis.wgsl`,
//! `importance.wgsl`, `gibbs.wgsl`, `moves.wgsl` and the measurement in `walk.wgsl`; both
//! engines draw the same random numbers in the same order.

use std::ops::Range;

use crate::engine::EngineSpec;
use crate::physics::{Params, Walker};
use crate::rng::{RESET_BLOCK, StepStream};
use crate::sampler::{Moves, SamplerKind};

/// Single-particle moves rebuild every cache from scratch every this many steps (global step
/// index), so incremental updates (fields Q, Sherman-Morrison inverses) cannot drift.
pub const REFRESH_EVERY: u64 = 64;

/// A walker with its sampler. One `Chain` is reused for every walker of a chunk.
pub struct Chain<'a> {
    spec: &'a EngineSpec,
    params: &'a Params,
    walker: Walker<'a>,
    moves: Vec<Range<usize>>,
    index: u32,
    /// The limited drift at x and at the proposal (importance sampling).
    vx: Vec<f64>,
    vy: Vec<f64>,
}

impl<'a> Chain<'a> {
    pub fn new(spec: &'a EngineSpec, params: &'a Params) -> Self {
        let m = spec.coordinates();
        let d = spec.system.dims;
        let moves = move_ranges(spec.sampler.moves, spec.system.particles, d);
        Self {
            spec,
            params,
            walker: Walker::new(&spec.wavefunction, &spec.system, params),
            moves,
            index: 0,
            vx: vec![0.0; m],
            vy: vec![0.0; m],
        }
    }

    /// Starts walker `index` (global) at `x`, recomputing every cache from scratch.
    pub fn load(&mut self, index: u32, x: &[f64]) {
        self.index = index;
        self.walker.load(x);
    }

    pub fn position(&self) -> &[f64] {
        self.walker.x()
    }

    /// E_L's parts (kinetic, trap, interaction) at the last measurement.
    pub fn energy_parts(&self) -> [f64; 3] {
        self.walker.energy_parts()
    }

    /// Log-derivatives O_i of the last measurement.
    pub fn o(&self) -> &[f64] {
        self.walker.o()
    }

    /// One Monte Carlo step (a sweep over the particles for single-particle moves).
    /// Returns the (accepted, attempted) moves. WGSL twin: `mc_step` in shaders/moves.wgsl.
    pub fn mc_step(&mut self, step: u64) -> (u32, u32) {
        let mut rng = StepStream::new(self.spec.seed, self.index, step);
        let sampler = self.spec.sampler;
        // Exhaustive, so a new sampler cannot run without its twin.
        let moves = match sampler.kind {
            SamplerKind::Metropolis => self.sweep(&mut rng, Self::metropolis),
            SamplerKind::Importance => self.sweep(&mut rng, Self::importance),
            SamplerKind::Gibbs => {
                self.gibbs(&mut rng);
                (1, 1)
            }
        };
        if sampler.moves == Moves::Single && step.is_multiple_of(REFRESH_EVERY) {
            self.walker.refresh();
        }
        moves
    }

    /// A `Step::Moves` step: `one_move` on each move's coordinates in turn. Returns the
    /// (accepted, attempted) moves.
    fn sweep(
        &mut self,
        rng: &mut StepStream,
        one_move: impl Fn(&mut Self, Range<usize>, &mut StepStream) -> bool,
    ) -> (u32, u32) {
        let mut accepted = 0;
        for i in 0..self.moves.len() {
            let range = self.moves[i].clone();
            accepted += one_move(self, range, rng) as u32;
        }
        (accepted, self.moves.len() as u32)
    }

    /// Replaces a non-finite walker by a fresh draw from the initial distribution (as drawn
    /// for step `step`); returns whether it did. The engines check at the steps
    /// `checks_health` names only: a non-finite proposal fails the Metropolis test anyway.
    pub fn check_health(&mut self, step: u64) -> bool {
        let healthy = self.walker.is_finite();
        if !healthy {
            self.reset(step);
        }
        !healthy
    }

    /// Brute-force Metropolis: y = x + step (u - 1/2) on `range`.
    fn metropolis(&mut self, range: Range<usize>, rng: &mut StepStream) -> bool {
        let step = self.spec.sampler.step;
        self.walker
            .begin_proposal(&range, |_, xm| xm + step * (rng.uniform() - 0.5));
        let change = self.walker.propose(&range);
        let accept = metropolis_test(rng, 2.0 * change);
        if accept {
            self.walker.accept(&range);
        }
        accept
    }

    /// Importance sampling: the Langevin proposal on `range`, Metropolis-Hastings accept.
    fn importance(&mut self, range: Range<usize>, rng: &mut StepStream) -> bool {
        let (dt, dims) = (self.spec.sampler.dt, self.spec.system.dims);
        let drifts = (&mut self.vx[..], &mut self.vy[..]);
        let ln_ratio = langevin_proposal(&mut self.walker, &range, dt, dims, drifts, rng);
        let accept = metropolis_test(rng, ln_ratio);
        if accept {
            self.walker.accept(&range);
        }
        accept
    }

    /// Gibbs: h_n ~ Bernoulli(S(Q_n(x))), then x_m ~ Normal(a_m + sum_n w_mn h_n, sigma^2).
    fn gibbs(&mut self, rng: &mut StepStream) {
        let p = self.params;
        let sigma = self.spec.wavefunction.rbm_for(p).sigma;
        let h: Vec<f64> = self
            .walker
            .sigmoids()
            .iter()
            .map(|&sn| if rng.uniform() < sn { 1.0 } else { 0.0 })
            .collect();
        let x = self.walker.x_mut();
        for (m, xm) in x.iter_mut().enumerate() {
            let mean: f64 = p.a()[m] + p.w_row(m).iter().zip(&h).map(|(w, h)| w * h).sum::<f64>();
            *xm = mean + sigma * rng.normal();
        }
        self.walker.refresh();
    }

    /// Replaces a non-finite walker by a fresh draw from the initial distribution.
    fn reset(&mut self, step: u64) {
        let mut rng = StepStream::at_block(self.spec.seed, self.index, step, RESET_BLOCK);
        let spread = self.spec.initial_spread();
        for v in self.walker.x_mut() {
            *v = spread * rng.normal();
        }
        self.walker.refresh();
    }

    /// Local energy at the current position; fills the O_i.
    pub fn local_energy(&mut self) -> f64 {
        self.walker.local_energy()
    }
}

/// The Langevin proposal on `range` (importance sampling, and the move of diffusion Monte
/// Carlo): y = x + dt v(x) + sqrt(dt) xi, with v the drift grad ln psi (the Langevin step
/// D dt F with D = 1/2, F = 2 grad ln psi) limited per particle (`limit_drift`), into the
/// walker's proposal; `vx`, `vy` receive the limited drifts at x and y. Returns ln of the
/// Metropolis-Hastings ratio |psi(y)|^2 G(x|y) / (|psi(x)|^2 G(y|x)),
/// G(y|x) = exp(-|y - x - dt v(x)|^2 / (2 dt)).
pub(crate) fn langevin_proposal(
    walker: &mut Walker,
    range: &Range<usize>,
    dt: f64,
    dims: usize,
    (vx, vy): (&mut [f64], &mut [f64]),
    rng: &mut StepStream,
) -> f64 {
    let sqrt_dt = dt.sqrt();
    walker.drift_x(range);
    limit_drift(
        &walker.drift()[range.clone()],
        dims,
        dt,
        &mut vx[range.clone()],
    );
    walker.begin_proposal(range, |m, xm| xm + dt * vx[m] + sqrt_dt * rng.normal());
    let change = walker.propose(range);
    walker.drift_at_y(range);
    limit_drift(
        &walker.drift_y()[range.clone()],
        dims,
        dt,
        &mut vy[range.clone()],
    );
    // Only `range` moves.
    let (x, y) = (walker.x(), walker.y());
    let ln_green: f64 = range
        .clone()
        .map(|m| {
            let forward = y[m] - x[m] - dt * vx[m];
            let backward = x[m] - y[m] - dt * vy[m];
            (forward * forward - backward * backward) / (2.0 * dt)
        })
        .sum();
    2.0 * change + ln_green
}

/// The coordinate ranges a step moves in turn: every coordinate at once, or one particle's
/// after another.
pub(crate) fn move_ranges(moves: Moves, particles: usize, dims: usize) -> Vec<Range<usize>> {
    match moves {
        Moves::All => std::iter::once(0..particles * dims).collect(),
        Moves::Single => (0..particles).map(|p| p * dims..(p + 1) * dims).collect(),
    }
}

/// Whether the engines check a walker's health after global step `step`: before every
/// measurement, at the last step of a `sample` call (so no call leaves a non-finite walker
/// behind), and every `REFRESH_EVERY` steps. WGSL twin: the check in `walk` (walk.wgsl).
pub fn checks_health(step: u64, measured: bool, ends_call: bool) -> bool {
    measured || ends_call || step.is_multiple_of(REFRESH_EVERY)
}

/// The drift limit of Umrigar, Nightingale and Runge (J. Chem. Phys. 99, 2865 (1993)), per
/// particle: v -> v 2 / (1 + sqrt(1 + 2 |v|^2 dt)). Near a node of psi the drift diverges and
/// a walker proposing huge jumps would stay stuck; the limited drift moves a particle at most
/// sqrt(2 dt) and equals v where |v|^2 dt is small. It is just a proposal, so the
/// Metropolis-Hastings test keeps |psi|^2 exact.
pub fn limit_drift(v: &[f64], dims: usize, dt: f64, out: &mut [f64]) {
    for (vp, op) in v.chunks(dims).zip(out.chunks_mut(dims)) {
        let v2: f64 = vp.iter().map(|a| a * a).sum();
        let factor = 2.0 / (1.0 + (1.0 + 2.0 * v2 * dt).sqrt());
        for (o, a) in op.iter_mut().zip(vp) {
            *o = factor * a;
        }
    }
}

/// Accepts with probability min(1, e^ln_ratio). The uniform is drawn only when needed, from
/// the stream's pooled low bytes where it can (`StepStream::acceptance_uniform`).
#[inline]
pub(crate) fn metropolis_test(rng: &mut StepStream, ln_ratio: f64) -> bool {
    ln_ratio >= 0.0 || rng.acceptance_uniform() < ln_ratio.exp()
}

/// Initial position of walker `walker`: Normal(0, spread^2) per coordinate.
pub fn initial_position(spec: &EngineSpec, walker: u32, out: &mut [f64]) {
    let mut rng = StepStream::new(spec.seed, walker, crate::rng::INIT_STEP);
    let spread = spec.initial_spread();
    for v in out.iter_mut() {
        *v = spread * rng.normal();
    }
}
