//! One walker's Markov chain on the CPU: the three samplers and the measurement, in f64.
//! The WGSL twins are `shaders/metropolis.wgsl`, `importance.wgsl`, `gibbs.wgsl` and the
//! measurement in `walk.wgsl`; both draw the same random numbers in the same order.

use std::ops::Range;

use crate::config::{Moves, SamplerKind};
use crate::engine::EngineSpec;
use crate::physics::RbmParams;
use crate::rng::{RESET_BLOCK, StepStream};

/// A walker's configuration with everything cached that its next move reuses, plus scratch
/// for the proposal. One `Chain` is reused for every walker of a chunk.
pub struct Chain<'a> {
    spec: &'a EngineSpec,
    params: &'a RbmParams,
    /// Coordinates, fields Q, sigmoids S(Q), gradient of ln psi, ln psi.
    x: Vec<f64>,
    q: Vec<f64>,
    s: Vec<f64>,
    g: Vec<f64>,
    ln_psi: f64,
    /// Proposal scratch: the same quantities at y.
    y: Vec<f64>,
    qy: Vec<f64>,
    sy: Vec<f64>,
    gy: Vec<f64>,
    /// Log-derivatives O_i of the last measurement.
    pub o: Vec<f64>,
    moves: Vec<Range<usize>>,
    walker: u32,
}

impl<'a> Chain<'a> {
    pub fn new(spec: &'a EngineSpec, params: &'a RbmParams) -> Self {
        let m = spec.coordinates();
        let n = spec.hidden;
        let d = spec.system.dims;
        let moves = match spec.sampler.moves {
            Moves::All => std::iter::once(0..m).collect(),
            Moves::Single => (0..spec.system.particles)
                .map(|p| p * d..(p + 1) * d)
                .collect(),
        };
        Self {
            spec,
            params,
            x: vec![0.0; m],
            q: vec![0.0; n],
            s: vec![0.0; n],
            g: vec![0.0; m],
            ln_psi: 0.0,
            y: vec![0.0; m],
            qy: vec![0.0; n],
            sy: vec![0.0; n],
            gy: vec![0.0; m],
            o: vec![0.0; spec.parameters()],
            moves,
            walker: 0,
        }
    }

    /// Starts walker `walker` (global index) at `x`, recomputing every cache from scratch.
    pub fn load(&mut self, walker: u32, x: &[f64]) {
        self.walker = walker;
        self.x.copy_from_slice(x);
        self.refresh();
    }

    pub fn position(&self) -> &[f64] {
        &self.x
    }

    fn refresh(&mut self) {
        let rbm = &self.spec.rbm;
        rbm.hidden_fields(self.params, &self.x, &mut self.q);
        self.ln_psi = rbm.ln_psi(self.params, &self.x, &self.q, &mut self.s);
        rbm.gradient(self.params, &self.x, &self.s, &mut self.g);
    }

    /// One Monte Carlo step (a sweep over the particles for single-particle moves).
    /// Returns (accepted, attempted) moves and whether the walker had to be reset.
    pub fn step(&mut self, step: u64) -> (u32, u32, bool) {
        let mut rng = StepStream::new(self.spec.seed, self.walker, step);
        let sampler = self.spec.sampler;
        let (accepted, attempted) = match sampler.kind {
            SamplerKind::Gibbs => {
                self.gibbs(&mut rng);
                (1, 1)
            }
            kind => {
                let mut accepted = 0;
                for i in 0..self.moves.len() {
                    let range = self.moves[i].clone();
                    let ok = if kind == SamplerKind::Metropolis {
                        self.metropolis(range, &mut rng)
                    } else {
                        self.importance(range, &mut rng)
                    };
                    accepted += ok as u32;
                }
                (accepted, self.moves.len() as u32)
            }
        };
        let healthy = self.ln_psi.is_finite() && self.x.iter().all(|v| v.is_finite());
        if !healthy {
            self.reset(step);
        }
        (accepted, attempted, !healthy)
    }

    /// Fields Q and ln psi at the proposal y, which differs from x only in `range`.
    fn propose_fields(&mut self, range: &Range<usize>) {
        let rbm = &self.spec.rbm;
        if range.len() == self.x.len() {
            rbm.hidden_fields(self.params, &self.y, &mut self.qy);
        } else {
            let inv = 1.0 / (rbm.sigma * rbm.sigma);
            self.qy.copy_from_slice(&self.q);
            for m in range.clone() {
                let dx = (self.y[m] - self.x[m]) * inv;
                for (qn, &w) in self.qy.iter_mut().zip(self.params.w_row(m)) {
                    *qn += dx * w;
                }
            }
        }
    }

    /// ln psi at the proposal; fills the proposal's sigmoids.
    fn ln_psi_at_proposal(&mut self) -> f64 {
        self.spec
            .rbm
            .ln_psi(self.params, &self.y, &self.qy, &mut self.sy)
    }

    /// Brute-force Metropolis: y = x + step (u - 1/2) on `range`.
    fn metropolis(&mut self, range: Range<usize>, rng: &mut StepStream) -> bool {
        let step = self.spec.sampler.step;
        self.y.copy_from_slice(&self.x);
        for m in range.clone() {
            self.y[m] = self.x[m] + step * (rng.uniform() - 0.5);
        }
        self.propose_fields(&range);
        let ln_psi_y = self.ln_psi_at_proposal();
        let accept = metropolis_test(rng, 2.0 * (ln_psi_y - self.ln_psi));
        if accept {
            std::mem::swap(&mut self.x, &mut self.y);
            std::mem::swap(&mut self.q, &mut self.qy);
            std::mem::swap(&mut self.s, &mut self.sy);
            self.ln_psi = ln_psi_y;
        }
        accept
    }

    /// Importance sampling: y = x + dt grad ln psi(x) + sqrt(dt) xi on `range` (the
    /// Langevin step D dt F with D = 1/2, F = 2 grad ln psi), Metropolis-Hastings accept.
    fn importance(&mut self, range: Range<usize>, rng: &mut StepStream) -> bool {
        let dt = self.spec.sampler.dt;
        let sqrt_dt = dt.sqrt();
        self.y.copy_from_slice(&self.x);
        for m in range.clone() {
            self.y[m] = self.x[m] + dt * self.g[m] + sqrt_dt * rng.normal();
        }
        self.propose_fields(&range);
        let ln_psi_y = self.ln_psi_at_proposal();
        self.spec
            .rbm
            .gradient(self.params, &self.y, &self.sy, &mut self.gy);
        // ln G(x|y) - ln G(y|x), G(y|x) = exp(-|y - x - dt g(x)|^2 / (2 dt)); only `range` moves.
        let ln_green: f64 = range
            .clone()
            .map(|m| {
                let forward = self.y[m] - self.x[m] - dt * self.g[m];
                let backward = self.x[m] - self.y[m] - dt * self.gy[m];
                (forward * forward - backward * backward) / (2.0 * dt)
            })
            .sum();
        let accept = metropolis_test(rng, 2.0 * (ln_psi_y - self.ln_psi) + ln_green);
        if accept {
            std::mem::swap(&mut self.x, &mut self.y);
            std::mem::swap(&mut self.q, &mut self.qy);
            std::mem::swap(&mut self.s, &mut self.sy);
            std::mem::swap(&mut self.g, &mut self.gy);
            self.ln_psi = ln_psi_y;
        }
        accept
    }

    /// Gibbs: h_n ~ Bernoulli(S(Q_n(x))), then x_m ~ Normal(a_m + sum_n w_mn h_n, sigma^2).
    fn gibbs(&mut self, rng: &mut StepStream) {
        let p = self.params;
        let sigma = self.spec.rbm.sigma;
        // h reuses the proposal's sigmoid scratch: 1.0 or 0.0 per hidden unit.
        for (h, &sn) in self.sy.iter_mut().zip(&self.s) {
            *h = if rng.uniform() < sn { 1.0 } else { 0.0 };
        }
        for m in 0..self.x.len() {
            let mean: f64 = p.a()[m]
                + p.w_row(m)
                    .iter()
                    .zip(&self.sy)
                    .map(|(w, h)| w * h)
                    .sum::<f64>();
            self.x[m] = mean + sigma * rng.normal();
        }
        self.refresh();
    }

    /// Replaces a non-finite walker by a fresh draw from the initial distribution.
    fn reset(&mut self, step: u64) {
        let mut rng = StepStream::at_block(self.spec.seed, self.walker, step, RESET_BLOCK);
        let spread = self.spec.initial_spread();
        for v in self.x.iter_mut() {
            *v = spread * rng.normal();
        }
        self.refresh();
    }

    /// Local energy at the current position; fills `self.o` with the O_i.
    pub fn measure(&mut self) -> f64 {
        let rbm = &self.spec.rbm;
        rbm.local_energy(
            &self.spec.system,
            self.params,
            &self.x,
            &self.s,
            &mut self.o,
        )
    }
}

/// Accepts with probability min(1, e^ln_ratio). The uniform is drawn only when needed (the
/// stream restarts every step, so this changes no other draw), sparing a Philox block.
#[inline]
fn metropolis_test(rng: &mut StepStream, ln_ratio: f64) -> bool {
    ln_ratio >= 0.0 || rng.uniform() < ln_ratio.exp()
}

/// Initial position of walker `walker`: Normal(0, spread^2) per coordinate.
pub fn initial_position(spec: &EngineSpec, walker: u32, out: &mut [f64]) {
    let mut rng = StepStream::new(spec.seed, walker, crate::rng::INIT_STEP);
    let spread = spec.initial_spread();
    for v in out.iter_mut() {
        *v = spread * rng.normal();
    }
}
