//! `L` walkers in lanes (`Walker` with `Chain`'s steps for each lane): positions and
//! caches at x and the proposal, all-coordinate moves, health checks and the measurement.

use super::*;

/// `L` walkers: positions and caches at x, a proposal y beside them.
pub(super) struct Group {
    pub(super) walkers: U,
    /// Single-particle moves (one per particle and step), else one all-coordinate move.
    pub(super) single: bool,
    pub(super) moves_per_step: usize,
    pub(super) x: Vec<V>,
    pub(super) q: Vec<V>,
    pub(super) s: Vec<V>,
    /// ln psi and, for single-particle moves, its RBM and Jastrow parts.
    pub(super) ln_psi: V,
    pub(super) ln_rbm: V,
    pub(super) ln_j: V,
    /// The determinants at x, for fermions, and at y for all-coordinate moves.
    pub(super) dets: Option<LaneDets>,
    pub(super) dets_y: Option<LaneDets>,
    /// The drift at x (kept current for importance sampling; for single-particle moves, on
    /// the moving particle).
    pub(super) g: Vec<V>,
    /// The proposal; for single-particle moves equal to x but on the moving particle.
    pub(super) y: Vec<V>,
    pub(super) qy: Vec<V>,
    pub(super) sy: Vec<V>,
    pub(super) gy: Vec<V>,
    /// ln psi at y and, for single-particle moves, its RBM and Jastrow parts.
    pub(super) ln_psi_y: V,
    pub(super) ln_rbm_y: V,
    pub(super) ln_j_y: V,
    /// Limited drifts at x and y.
    pub(super) vx: Vec<V>,
    pub(super) vy: Vec<V>,
    pub(super) o: Vec<V>,
    pub(super) grad: Vec<V>,
    /// E_L's parts at the last measurement: kinetic, trap, interaction.
    pub(super) parts: [V; 3],
    /// At the last measurement: sum_i r_i^2, and with interaction the pair distances r_pq
    /// (p < q, in that order).
    pub(super) r2: V,
    pub(super) pairs: Vec<V>,
}

impl Group {
    pub(super) fn new(rbm: &LanePsi, spec: &EngineSpec) -> Self {
        let (m, n) = (rbm.m, rbm.n);
        let k = rbm.parameters;
        let zeros = |len| vec![V::ZERO; len];
        let sampler = spec.sampler;
        let single = sampler.moves == Moves::Single;
        Self {
            walkers: U([0; L]),
            single,
            moves_per_step: sampler
                .kind
                .moves_per_step(sampler.moves, spec.system.particles),
            x: zeros(m),
            q: zeros(n),
            s: zeros(n),
            ln_psi: V::ZERO,
            ln_rbm: V::ZERO,
            ln_j: V::ZERO,
            dets: rbm.slater.map(LaneDets::new),
            dets_y: rbm.slater.filter(|_| !single).map(LaneDets::new),
            g: zeros(m),
            y: zeros(m),
            qy: zeros(n),
            sy: zeros(n),
            gy: zeros(m),
            ln_psi_y: V::ZERO,
            ln_rbm_y: V::ZERO,
            ln_j_y: V::ZERO,
            vx: zeros(m),
            vy: zeros(m),
            o: zeros(k),
            grad: zeros(m),
            parts: [V::ZERO; 3],
            r2: V::ZERO,
            pairs: Vec::new(),
        }
    }

    /// Places lane l at the walker `lane_walker(l)` of `xs` (positions, walker-major), whose
    /// stream is that of walker `slot(l)`; the caches are left to `refresh`.
    #[inline(always)]
    pub(super) fn load(
        &mut self,
        xs: &[f64],
        lane_walker: impl Fn(usize) -> usize,
        slot: impl Fn(usize) -> u32,
    ) {
        let m = self.x.len();
        self.walkers = U(std::array::from_fn(slot));
        for (c, xc) in self.x.iter_mut().enumerate() {
            *xc = V(std::array::from_fn(|l| xs[lane_walker(l) * m + c]));
        }
    }

    /// Writes the first `valid` lanes back to the walkers `start..start + valid` of `xs`.
    #[inline(always)]
    pub(super) fn store(&self, xs: &mut [f64], start: usize, valid: usize) {
        let m = self.x.len();
        for (c, xc) in self.x.iter().enumerate() {
            for l in 0..valid {
                xs[(start + l) * m + c] = xc.0[l];
            }
        }
    }

    /// Every cache from x in the lanes of `lanes` (`Walker::refresh`); the others keep theirs.
    #[inline(always)]
    pub(super) fn refresh(&mut self, rbm: &LanePsi, lanes: Mask) {
        // Built in the proposal's buffers, then taken where asked.
        rbm.fields(&self.x, &mut self.qy);
        let ln_rbm = rbm.ln_psi(&self.x, &self.qy, &mut self.sy);
        // A match, not `map_or`: a closure may be compiled outside the SIMD loop's features.
        let ln_j = match &rbm.jastrow {
            Some(j) => j.ln_j(&self.x),
            None => V::ZERO,
        };
        let take = |to: &mut [V], from: &[V]| {
            for (t, &f) in to.iter_mut().zip(from) {
                *t = lanes.select(f, *t);
            }
        };
        take(&mut self.q, &self.qy);
        take(&mut self.s, &self.sy);
        self.ln_rbm = lanes.select(ln_rbm, self.ln_rbm);
        self.ln_j = lanes.select(ln_j, self.ln_j);
        let ln_det = match (rbm.slater, &mut self.dets) {
            (Some(slater), Some(dets)) => dets.refresh(slater, &self.x, lanes),
            _ => V::ZERO,
        };
        self.ln_psi = lanes.select(self.ln_rbm + self.ln_j + ln_det, self.ln_psi);
        if self.single {
            // The drift is computed move by move.
            self.y.copy_from_slice(&self.x);
        } else {
            rbm.drift(&self.x, &self.s, &mut self.gy);
            if let (Some(slater), Some(dets)) = (rbm.slater, &mut self.dets) {
                dets.measure(slater, &self.x, &mut self.gy);
            }
            take(&mut self.g, &self.gy);
        }
    }

    /// One Monte Carlo step (`Chain::mc_step`); returns each lane's accepted moves.
    #[inline(always)]
    pub(super) fn step(&mut self, rbm: &LanePsi, spec: &EngineSpec, step: u64) -> V {
        match self.single {
            true => self.sweep(rbm, spec, step),
            false => self.move_all(rbm, spec, step),
        }
    }

    /// One all-coordinate move (`Chain::mc_step`); returns the lanes that accepted.
    #[inline(always)]
    pub(super) fn move_all(&mut self, rbm: &LanePsi, spec: &EngineSpec, step: u64) -> V {
        let mut rng = LaneStream::new(spec.seed, self.walkers, step);
        let ln_ratio = self.propose_all(rbm, spec, &mut rng);
        // Drawn for every lane: it is the step's last draw, so unused ones change nothing.
        let u = rng.acceptance_uniform(Mask::ALL);
        let accept = ln_ratio.ge(V::ZERO).or(u.lt(exp(ln_ratio)));
        self.take_all(accept);
        accept.select(V::splat(1.0), V::ZERO)
    }

    /// An all-coordinate proposal into y and its caches, by the sampler's rule
    /// (`Chain::metropolis`, `langevin_proposal`); returns ln of its acceptance ratio.
    #[inline(always)]
    pub(super) fn propose_all(
        &mut self,
        rbm: &LanePsi,
        spec: &EngineSpec,
        rng: &mut LaneStream,
    ) -> V {
        let sampler = spec.sampler;
        let importance = sampler.kind == SamplerKind::Importance;
        let (dt, dims) = (sampler.dt, spec.system.dims);
        if importance {
            limit_drift(&self.g, dims, dt, &mut self.vx);
            let sqrt_dt = dt.sqrt();
            let mut m = 0;
            while m < rbm.m {
                let (z0, z1) = rng.normal_pair();
                for (i, z) in [z0, z1].into_iter().enumerate().take(rbm.m - m) {
                    self.y[m + i] = self.x[m + i] + dt * self.vx[m + i] + sqrt_dt * z;
                }
                m += 2;
            }
        } else {
            for (y, &x) in self.y.iter_mut().zip(&self.x) {
                *y = x + sampler.step * (rng.uniform() - 0.5);
            }
        }
        rbm.fields(&self.y, &mut self.qy);
        self.ln_psi_y = rbm.ln_psi_all(&self.y, &self.qy, &mut self.sy);
        if let (Some(slater), Some(dets)) = (rbm.slater, &mut self.dets_y) {
            self.ln_psi_y += dets.refresh(slater, &self.y, Mask::ALL);
        }
        let mut ln_ratio = 2.0 * (self.ln_psi_y - self.ln_psi);
        if importance {
            rbm.drift(&self.y, &self.sy, &mut self.gy);
            if let (Some(slater), Some(dets)) = (rbm.slater, &mut self.dets_y) {
                dets.measure(slater, &self.y, &mut self.gy);
            }
            limit_drift(&self.gy, dims, dt, &mut self.vy);
            let mut ln_green = V::ZERO;
            for m in 0..rbm.m {
                let (x, y) = (self.x[m], self.y[m]);
                let forward = y - x - dt * self.vx[m];
                let backward = x - y - dt * self.vy[m];
                ln_green += (forward * forward - backward * backward) / (2.0 * dt);
            }
            ln_ratio += ln_green;
        }
        ln_ratio
    }

    /// The all-coordinate proposal becomes the walker in the lanes of `accept`
    /// (`Walker::accept`).
    #[inline(always)]
    pub(super) fn take_all(&mut self, accept: Mask) {
        let take = |to: &mut [V], from: &[V]| {
            for (t, &f) in to.iter_mut().zip(from) {
                *t = accept.select(f, *t);
            }
        };
        take(&mut self.x, &self.y);
        take(&mut self.q, &self.qy);
        take(&mut self.s, &self.sy);
        // Only importance sampling computed the drift at y, and only it reads g.
        take(&mut self.g, &self.gy);
        if let (Some(dets), Some(at_y)) = (&mut self.dets, &self.dets_y) {
            dets.take(at_y, accept);
        }
        self.ln_psi = accept.select(self.ln_psi_y, self.ln_psi);
    }

    /// Replaces the non-finite walkers among the first `valid` lanes by fresh draws
    /// (`Chain::check_health`); returns how many.
    #[inline(always)]
    #[allow(clippy::eq_op)] // v - v is the test
    pub(super) fn check_health(
        &mut self,
        rbm: &LanePsi,
        spec: &EngineSpec,
        step: u64,
        valid: usize,
    ) -> usize {
        // v - v is +0 for finite v and NaN otherwise, and NaN survives the sum: the bits are
        // all zero exactly when every lane is finite.
        let mut probe = self.ln_psi - self.ln_psi;
        for &x in &self.x {
            probe += x - x;
        }
        match probe.to_bits().iter().fold(0, |a, b| a | b) {
            0 => 0,
            _ => self.reset_non_finite(rbm, spec, step, valid),
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn reset_non_finite(
        &mut self,
        rbm: &LanePsi,
        spec: &EngineSpec,
        step: u64,
        valid: usize,
    ) -> usize {
        let mut finite = self.ln_psi.is_finite();
        for x in &self.x {
            finite = finite.and(x.is_finite());
        }
        let sick_lanes = finite.not();
        let sick: Vec<usize> = (0..L).filter(|&l| sick_lanes.get(l)).collect();
        let spread = spec.initial_spread();
        for &l in &sick {
            let mut rng = StepStream::at_block(spec.seed, self.walkers.0[l], step, RESET_BLOCK);
            for x in &mut self.x {
                x.0[l] = spread * rng.normal();
            }
        }
        self.refresh(rbm, sick_lanes);
        sick.iter().filter(|&&l| l < valid).count()
    }

    /// E_L at x, with the O_i into `o` and the parts into `parts` (`Walker::local_energy`).
    #[inline(always)]
    pub(super) fn measure(&mut self, rbm: &LanePsi, spec: &EngineSpec) -> V {
        let mut laplacian = rbm.measure(&self.x, &self.q, &self.s, &mut self.grad, &mut self.o);
        if let (Some(slater), Some(dets)) = (rbm.slater, &mut self.dets) {
            laplacian += dets.measure(slater, &self.x, &mut self.grad);
        }
        let mut g2 = V::ZERO;
        for &g in &self.grad {
            g2 += g * g;
        }
        let kinetic = -0.5 * (laplacian + g2);
        let system = &spec.system;
        let mut r2 = V::ZERO;
        for &x in &self.x {
            r2 += x * x;
        }
        self.r2 = r2;
        let trap = 0.5 * system.omega * system.omega * r2;
        let (interaction, potential) = if system.interaction {
            pair_distances(&self.x, system.particles, system.dims, &mut self.pairs);
            let mut c = V::ZERO;
            for &r in &self.pairs {
                c += 1.0 / r;
            }
            (c, trap + c)
        } else {
            (V::ZERO, trap)
        };
        self.parts = [kinetic, trap, interaction];
        kinetic + potential
    }
}

/// `chain::limit_drift` on lanes.
#[inline(always)]
pub(super) fn limit_drift(v: &[V], dims: usize, dt: f64, out: &mut [V]) {
    for (vp, op) in v.chunks(dims).zip(out.chunks_mut(dims)) {
        let mut v2 = V::ZERO;
        for &a in vp {
            v2 += a * a;
        }
        let factor = 2.0 / (1.0 + (1.0 + 2.0 * v2 * dt).sqrt());
        for (o, &a) in op.iter_mut().zip(vp) {
            *o = factor * a;
        }
    }
}
