//! Single-particle moves on lanes: `Chain::sweep` with the `Walker`'s single-particle paths
//! (src/engine/cpu/chain.rs, src/physics/walker.rs), the same operations in the same order.
//! Each lane accepts or rejects on its own, so the random streams' places part
//! (`LaneStream::acceptance_uniform`) and the caches are taken lane by lane.

use std::ops::Range;

use super::simd::{Mask, V, exp, ln};
use super::stream::LaneStream;
use super::{Group, LanePsi, limit_drift};
use crate::engine::EngineSpec;
use crate::engine::cpu::REFRESH_EVERY;
use crate::sampler::SamplerKind;

impl Group {
    /// A sweep of single-particle moves over the particles, then the periodic refresh
    /// (`Chain::mc_step`); returns each lane's accepted moves.
    #[inline(always)]
    pub(super) fn sweep(&mut self, psi: &LanePsi, spec: &EngineSpec, step: u64) -> V {
        let mut rng = LaneStream::new(spec.seed, self.walkers, step);
        let mut accepted = V::ZERO;
        for k in 0..spec.system.particles {
            let accept = self.single_move(psi, spec, k, &mut rng);
            accepted += accept.select(V::splat(1.0), V::ZERO);
        }
        if step.is_multiple_of(REFRESH_EVERY) {
            self.refresh(psi, Mask::ALL);
        }
        accepted
    }

    /// Moves particle k (`Chain::metropolis`, `Chain::importance` with `langevin_proposal`);
    /// returns the lanes that accepted.
    #[inline(always)]
    fn single_move(
        &mut self,
        psi: &LanePsi,
        spec: &EngineSpec,
        k: usize,
        rng: &mut LaneStream,
    ) -> Mask {
        let ln_ratio = self.propose_single(psi, spec, k, rng);
        // `metropolis_test`: a uniform only where the ratio is below one.
        let sure = ln_ratio.ge(V::ZERO);
        let u = rng.acceptance_uniform(sure.not());
        let accept = sure.or(u.lt(exp(ln_ratio)));
        self.accept_single(psi, spec.system.dims, k, accept);
        accept
    }

    /// A move of particle k into y and its caches, by the sampler's rule; returns ln of its
    /// acceptance ratio.
    #[inline(always)]
    pub(super) fn propose_single(
        &mut self,
        psi: &LanePsi,
        spec: &EngineSpec,
        k: usize,
        rng: &mut LaneStream,
    ) -> V {
        let sampler = spec.sampler;
        let dims = spec.system.dims;
        let range = k * dims..(k + 1) * dims;
        let importance = sampler.kind == SamplerKind::Importance;
        let dt = sampler.dt;
        if importance {
            self.particle_drift(psi, k, &range, dt, false);
            let sqrt_dt = dt.sqrt();
            for m in range.clone() {
                self.y[m] = self.x[m] + dt * self.vx[m] + sqrt_dt * rng.normal();
            }
        } else {
            for m in range.clone() {
                self.y[m] = self.x[m] + sampler.step * (rng.uniform() - 0.5);
            }
        }
        // `Walker::propose`: the fields change by the moved coordinates' rows of w.
        self.qy.copy_from_slice(&self.q);
        for m in range.clone() {
            let dx = (self.y[m] - self.x[m]) * psi.inv;
            let row = &psi.w[m * psi.n..(m + 1) * psi.n];
            for (qn, &w) in self.qy.iter_mut().zip(row) {
                *qn += dx * w;
            }
        }
        self.ln_rbm_y = psi.ln_psi(&self.y, &self.qy, &mut self.sy);
        self.ln_j_y = match &psi.jastrow {
            Some(j) => self.ln_j + j.ln_j_change(&self.x, k, &self.y[range.clone()]),
            None => V::ZERO,
        };
        let ln_det_y = match (psi.slater, &mut self.dets) {
            (Some(slater), Some(dets)) => {
                dets.ln_abs() + ln(dets.propose(slater, k, &self.y[range.clone()]).abs())
            }
            _ => V::ZERO,
        };
        self.ln_psi_y = self.ln_rbm_y + self.ln_j_y + ln_det_y;
        let change = self.ln_psi_y - self.ln_psi;
        let mut ln_ratio = 2.0 * change;
        if importance {
            self.particle_drift(psi, k, &range, dt, true);
            let mut ln_green = V::ZERO;
            for m in range {
                let (x, y) = (self.x[m], self.y[m]);
                let forward = y - x - dt * self.vx[m];
                let backward = x - y - dt * self.vy[m];
                ln_green += (forward * forward - backward * backward) / (2.0 * dt);
            }
            ln_ratio = 2.0 * change + ln_green;
        }
        ln_ratio
    }

    /// The move of particle k becomes the walker in the lanes of `accept`, lane by lane
    /// (`Walker::accept`); y is x again outside a move.
    #[inline(always)]
    pub(super) fn accept_single(&mut self, psi: &LanePsi, dims: usize, k: usize, accept: Mask) {
        for m in k * dims..(k + 1) * dims {
            self.x[m] = accept.select(self.y[m], self.x[m]);
            self.y[m] = self.x[m];
        }
        for (t, &f) in self.q.iter_mut().zip(&self.qy) {
            *t = accept.select(f, *t);
        }
        for (t, &f) in self.s.iter_mut().zip(&self.sy) {
            *t = accept.select(f, *t);
        }
        self.ln_rbm = accept.select(self.ln_rbm_y, self.ln_rbm);
        self.ln_j = accept.select(self.ln_j_y, self.ln_j);
        self.ln_psi = accept.select(self.ln_psi_y, self.ln_psi);
        if let (Some(slater), Some(dets)) = (psi.slater, &mut self.dets)
            && accept.any()
        {
            dets.accept(slater, k, accept);
        }
    }

    /// The drift of particle k (on `range`) and its limit for time step `dt`: at x into `g`
    /// and `vx` (`Walker::drift_x`), or at the proposal y into `gy` and `vy`
    /// (`Walker::drift_at_y`).
    #[inline(always)]
    fn particle_drift(
        &mut self,
        psi: &LanePsi,
        k: usize,
        range: &Range<usize>,
        dt: f64,
        at_y: bool,
    ) {
        let (at, s, out, limited) = match at_y {
            false => (&self.x, &self.s, &mut self.g, &mut self.vx),
            true => (&self.y, &self.sy, &mut self.gy, &mut self.vy),
        };
        for m in range.clone() {
            out[m] = psi.coordinate_terms(m, at[m], s).0;
        }
        let mut extra = [V::ZERO; 3];
        let extra = &mut extra[..range.len()];
        let add = |out: &mut [V], extra: &[V]| {
            for (o, &e) in out.iter_mut().zip(extra) {
                *o += e;
            }
        };
        if let Some(j) = &psi.jastrow {
            j.particle_gradient(&self.x, k, &at[range.clone()], extra);
            add(&mut out[range.clone()], extra);
        }
        if let (Some(slater), Some(dets)) = (psi.slater, &mut self.dets) {
            dets.particle_gradient(slater, k, &at[range.clone()], at_y, extra);
            add(&mut out[range.clone()], extra);
        }
        let dims = range.len();
        limit_drift(&out[range.clone()], dims, dt, &mut limited[range.clone()]);
    }
}
