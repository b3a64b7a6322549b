//! The lane engine: the CPU engine's fast path for the RBM, with or without the Padé-Jastrow
//! factor and the Slater determinants of closed-shell fermions, under Metropolis or importance
//! sampling with all-coordinate or single-particle moves (`supports`), and the generations of
//! diffusion Monte Carlo (dmc.rs), built from the importance sampler's moves. It walks `L`
//! walkers of a chunk at once, structure of arrays, so that the f64 arithmetic, exp, ln and
//! the Philox draws run as SIMD instructions; `run_on` compiles the loops for AVX-512,
//! AVX2 + FMA or the baseline, whichever the CPU has. Every lane does what the scalar `Chain`
//! does for its walker, with the same random numbers in the same order and the same
//! arithmetic, so chains agree with the scalar engine's to rounding (exp, ln, sin and cos
//! differ from the C library's by an ulp or two; nothing is contracted to FMA) until an
//! acceptance test lands within rounding of its threshold (a few times in 1e8 tests); from
//! there that walker follows another, equally valid chain.

mod dmc;
mod jastrow;
mod simd;
mod single;
mod slater;
mod stream;

pub use self::dmc::{DmcChunk, DmcGroup, DmcStep, dmc_chunk};
use self::jastrow::LaneJastrow;
pub use self::simd::L;
use self::simd::{Mask, U, V, exp, ln};
use self::slater::LaneDets;
use self::stream::LaneStream;
use super::{ChunkOut, SegmentJob, chain::checks_health};
use crate::engine::EngineSpec;
use crate::engine::Sampler;
use crate::engine::observables::{
    Histogram, INTERACTION, INVERSE_DISTANCE, KINETIC, PAIR_DISTANCE, SCALARS, SQUARE_RADIUS,
};
use crate::error::Error;
use crate::physics::{Params, SOFTPLUS_CHUNK, Slater, System, Wavefunction};
use crate::rng::{RESET_BLOCK, StepStream};
use crate::sampler::{Moves, SamplerKind};

/// Whether the lane engine runs `spec`: the RBM, with or without the Padé-Jastrow factor and
/// the Slater determinants, under Metropolis or importance sampling (an all-coordinate move
/// rebuilds the determinants lane by lane through the scalar code, as the scalar engine
/// does). The scalar engine runs the rest. The destructuring is exhaustive so that a new
/// setting of the wave function, system or sampler must be decided on here before it
/// compiles.
pub fn supports(spec: &EngineSpec) -> bool {
    let Wavefunction {
        rbm: _,
        jastrow: _,
        slater: _,
        layout: _,
    } = &spec.wavefunction;
    let System {
        particles: _,
        dims: _,
        omega: _,
        interaction: _,
        statistics: _,
    } = spec.system;
    let Sampler {
        kind,
        moves: _,
        step: _,
        dt: _,
        measure_every: _,
    } = spec.sampler;
    match kind {
        SamplerKind::Metropolis | SamplerKind::Importance => true,
        SamplerKind::Gibbs => false,
    }
}

/// `simd` where this CPU runs it; an error where it cannot.
pub fn checked(simd: Option<Simd>) -> Result<Option<Simd>, Error> {
    match simd {
        Some(s) if !s.available() => Err(Error::input(format!("this CPU cannot run {}", s.name()))),
        _ => Ok(simd),
    }
}

/// Host memory a thread's lane group and sums take for `spec` (`CpuEngine::host_bytes`).
pub fn thread_bytes(spec: &EngineSpec) -> u64 {
    let (m, n, k) = (
        spec.coordinates() as u64,
        spec.hidden() as u64,
        spec.parameters() as u64,
    );
    // Group: x, g, y, gy, vx, vy, grad (m each), q, s, qy, sy (n each), o (k); sums: 2k.
    // All-coordinate moves keep the determinants at y too.
    let copies = match spec.sampler.moves {
        Moves::All => 2,
        Moves::Single => 1,
    };
    let dets = copies * spec.wavefunction.slater.as_ref().map_or(0, LaneDets::bytes);
    (7 * m + 4 * n + 3 * k) * L as u64 * 8 + dets
}

/// The instruction set a lane loop is compiled for. All give bit-identical results: the
/// operations are the same IEEE ones in the same order (nothing is contracted to FMA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    Avx512,
    Avx2,
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
}

impl Simd {
    /// The widest this CPU runs.
    pub fn best() -> Simd {
        [Simd::Avx512, Simd::Avx2]
            .into_iter()
            .find(|s| s.available())
            .unwrap_or(Simd::Baseline)
    }

    /// Whether this CPU has every feature the loop for `self` is compiled with.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Simd::Avx512 => has!("avx512f") && has!("avx512dq") && has!("avx2") && has!("fma"),
                Simd::Avx2 => has!("avx2") && has!("fma"),
                Simd::Baseline => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Simd::Baseline
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Simd::Avx512 => "AVX-512",
            Simd::Avx2 => "AVX2",
            Simd::Baseline => "baseline SIMD",
        }
    }
}

/// A loop over lane groups, which `run_on` compiles for each instruction set.
trait LaneLoop {
    /// The loop; `#[inline(always)]`, so that it lands in `run_on`'s compiled copies.
    fn run(self);
}

/// Runs `job` with its loop compiled for `simd`.
fn run_on(simd: Simd, job: impl LaneLoop) {
    // The detection is cached: checking again per chunk keeps this function safe.
    assert!(simd.available(), "this CPU cannot run {}", simd.name());
    match simd {
        // SAFETY: `simd` is available: the CPU has the features the function is compiled for.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { run_avx512(job) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { run_avx2(job) },
        _ => job.run(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn run_avx512(job: impl LaneLoop) {
    job.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(job: impl LaneLoop) {
    job.run()
}

/// Walks the chunk of walkers `xs` (positions, walker-major; `first` the local index of the
/// first) through the segment `job`, into `out`, with the loop compiled for `simd`.
pub fn walk_chunk(simd: Simd, job: &SegmentJob, first: u32, xs: &mut [f64], out: &mut ChunkOut) {
    run_on(
        simd,
        Walk {
            job,
            first,
            xs,
            out,
        },
    )
}

/// `walk_chunk`'s arguments.
struct Walk<'a, 'j, 'o> {
    job: &'a SegmentJob<'j>,
    first: u32,
    xs: &'a mut [f64],
    out: &'a mut ChunkOut<'o>,
}

impl LaneLoop for Walk<'_, '_, '_> {
    #[inline(always)]
    fn run(self) {
        walk(self.job, self.first, self.xs, self.out)
    }
}

#[inline(always)]
fn walk(job: &SegmentJob, first: u32, xs: &mut [f64], out: &mut ChunkOut) {
    let spec = job.spec;
    let m = spec.coordinates();
    let rbm = LanePsi::new(spec, job.params);
    let mut group = Group::new(&rbm, spec);
    let mut sums = LaneSums::new(spec.parameters());
    let mut observed = LaneBlock::default();
    let walkers = xs.len() / m.max(1);
    for start in (0..walkers).step_by(L) {
        let valid = (walkers - start).min(L);
        // Spare lanes walk a copy of the group's last walker; nothing of theirs is kept.
        let lane_walker = |l: usize| start + l.min(valid - 1);
        let live = Mask::from_fn(|l| l < valid);
        let local = |l: usize| first + lane_walker(l) as u32;
        group.load(xs, lane_walker, |l| spec.first_walker + local(l));
        group.refresh(&rbm, Mask::ALL);
        let mut next = 0;
        for k in 0..job.len {
            let step = job.steps_done + k as u64 + 1;
            let accepted = group.step(&rbm, spec, step);
            sums.accepted += live.select(accepted, V::ZERO);
            let measuring = job.measured.get(next) == Some(&k);
            if checks_health(step, measuring, job.ends_call && k + 1 == job.len) {
                out.sums.resets += group.check_health(&rbm, spec, step, valid) as u64;
            }
            if measuring {
                let e = group.measure(&rbm, spec);
                sums.add(live, e, &group.o);
                for l in 0..valid {
                    out.energies[lane_walker(l)] += e.0[l];
                }
                out.sums.series[next] += live.select(e, V::ZERO).sum();
                if job.subset.is_some() {
                    for l in 0..valid {
                        let o = || group.o.iter().map(|v| v.0[l]).collect();
                        job.metric_row(out, k, local(l), o);
                    }
                }
                if let Some(at) = job.observed(next) {
                    if at.0 != observed.block {
                        observed.flush_into(out, spec, start, valid);
                        observed.block = at.0;
                    }
                    let histogram = job.histogram(&mut out.counts, at);
                    observed.observe(&group, spec, valid, histogram);
                }
                next += 1;
            }
        }
        observed.flush_into(out, spec, start, valid);
        group.store(xs, start, valid);
        out.sums.attempted += (job.len as usize * valid * group.moves_per_step) as f64;
        job.progress.advance(job.len as u64 * valid as u64);
    }
    sums.fold_into(&mut out.sums);
}

/// The trial wave function for lanes: the RBM's parameters and constants, and the Jastrow
/// factor when there is one.
struct LanePsi<'a> {
    a: &'a [f64],
    b: &'a [f64],
    /// w[m][n] row-major.
    w: &'a [f64],
    m: usize,
    n: usize,
    /// psi = F^f, and 1 / sigma^2.
    f: f64,
    inv: f64,
    /// Where d ln psi / d ln sigma goes in O, when the width is trained.
    ln_sigma: Option<usize>,
    /// Parameters K, and the RBM's share of them (where the extra O_i start).
    parameters: usize,
    rbm_len: usize,
    jastrow: Option<LaneJastrow<'a>>,
    slater: Option<&'a Slater>,
}

impl<'a> LanePsi<'a> {
    fn new(spec: &'a EngineSpec, p: &'a Params) -> Self {
        let (m, n) = (p.visible(), p.hidden());
        let rbm = spec.wavefunction.rbm_for(p);
        Self {
            a: p.a(),
            b: p.b(),
            w: p.w(),
            m,
            n,
            f: rbm.form.factor(),
            inv: 1.0 / (rbm.sigma * rbm.sigma),
            ln_sigma: p.layout().ln_sigma_index(),
            parameters: p.layout().len(),
            rbm_len: p.layout().rbm_len(),
            jastrow: spec
                .wavefunction
                .jastrow
                .as_ref()
                .map(|j| LaneJastrow::new(j, p.jastrow(), p.layout().jastrow_range())),
            slater: spec.wavefunction.slater.as_ref(),
        }
    }

    /// ln psi at an all-coordinate proposal x with its fields, the sigmoids into `s`: the
    /// RBM's and the Jastrow factor's (`Walker::propose`).
    #[inline(always)]
    fn ln_psi_all(&self, x: &[V], q: &[V], s: &mut [V]) -> V {
        let ln_rbm = self.ln_psi(x, q, s);
        match &self.jastrow {
            Some(j) => ln_rbm + j.ln_j(x),
            None => ln_rbm,
        }
    }

    /// The whole drift grad ln psi (`walker::whole_drift`).
    #[inline(always)]
    fn drift(&self, x: &[V], s: &[V], out: &mut [V]) {
        self.gradient(x, s, out);
        if let Some(j) = &self.jastrow {
            j.add_gradient(x, out);
        }
    }

    /// Hidden-unit fields Q_n = b_n + sum_m x_m w_mn / sigma^2 (`Rbm::hidden_fields`).
    #[inline(always)]
    fn fields(&self, x: &[V], q: &mut [V]) {
        for (qk, &bk) in q.iter_mut().zip(self.b) {
            *qk = V::splat(bk);
        }
        for (m, xm) in x.iter().enumerate() {
            let row = &self.w[m * self.n..(m + 1) * self.n];
            let xs = *xm * self.inv;
            for (qk, &wk) in q.iter_mut().zip(row) {
                *qk += xs * wk;
            }
        }
    }

    /// ln psi from x and its fields, with the sigmoids into `s` (`Rbm::ln_psi`).
    #[inline(always)]
    fn ln_psi(&self, x: &[V], q: &[V], s: &mut [V]) -> V {
        let mut gauss = V::ZERO;
        for (xm, &am) in x.iter().zip(self.a) {
            let d = *xm - am;
            gauss += d * d;
        }
        let mut hidden = V::ZERO;
        for (s_chunk, q_chunk) in s.chunks_mut(SOFTPLUS_CHUNK).zip(q.chunks(SOFTPLUS_CHUNK)) {
            let mut product = V::splat(1.0);
            for (sk, &qk) in s_chunk.iter_mut().zip(q_chunk) {
                let t = exp(-qk.abs());
                let inv = 1.0 / (1.0 + t);
                *sk = qk.ge(V::ZERO).select(inv, t * inv);
                hidden += qk.max(V::ZERO);
                product = product * (1.0 + t);
            }
            hidden += ln(product);
        }
        self.f * (hidden - 0.5 * gauss * self.inv)
    }

    /// (d ln psi / dx_m, d^2 ln psi / dx_m^2) (`Rbm::coordinate_terms`).
    #[inline(always)]
    fn coordinate_terms(&self, m: usize, xm: V, s: &[V]) -> (V, V) {
        let row = &self.w[m * self.n..(m + 1) * self.n];
        let mut drift = self.a[m] - xm;
        let mut curvature = V::ZERO;
        for (&wk, &sk) in row.iter().zip(s) {
            drift += wk * sk;
            curvature += wk * wk * sk * (1.0 - sk);
        }
        let inv = self.inv;
        (self.f * drift * inv, self.f * (curvature * inv * inv - inv))
    }

    /// The drift grad ln psi at every coordinate.
    #[inline(always)]
    fn gradient(&self, x: &[V], s: &[V], out: &mut [V]) {
        for (m, (o, &xm)) in out.iter_mut().zip(x).enumerate() {
            *o = self.coordinate_terms(m, xm, s).0;
        }
    }

    /// The gradient of ln psi into `grad`, the O_i into `o`, and the Laplacian of ln psi
    /// (`Rbm::measure`, then `Jastrow::measure`).
    #[inline(always)]
    fn measure(&self, x: &[V], q: &[V], s: &[V], grad: &mut [V], o: &mut [V]) -> V {
        let (f, inv, n) = (self.f, self.inv, self.n);
        let (oa, rest) = o.split_at_mut(self.m);
        let (ob, rest) = rest.split_at_mut(n);
        let (ow, extra) = rest.split_at_mut(self.m * n);
        for (obk, &sk) in ob.iter_mut().zip(s) {
            *obk = f * sk;
        }
        let mut laplacian = V::ZERO;
        let mut gauss = V::ZERO;
        for (m, (&xm, &am)) in x.iter().zip(self.a).enumerate() {
            oa[m] = f * inv * (xm - am);
            gauss += (xm - am) * (xm - am);
            let xs = f * inv * xm;
            for (owk, &sk) in ow[m * n..(m + 1) * n].iter_mut().zip(s) {
                *owk = xs * sk;
            }
            let (g, lap) = self.coordinate_terms(m, xm, s);
            grad[m] = g;
            laplacian += lap;
        }
        if let Some(i) = self.ln_sigma {
            let mut hidden = V::ZERO;
            for ((&sk, &qk), &bk) in s.iter().zip(q).zip(self.b) {
                hidden += sk * (qk - bk);
            }
            extra[i - self.rbm_len] = f * (inv * gauss - 2.0 * hidden);
        }
        if let Some(j) = &self.jastrow {
            let range = j.o_range.start - self.rbm_len..j.o_range.end - self.rbm_len;
            let o = &mut extra[range];
            o.fill(V::ZERO);
            laplacian += j.measure(x, grad, o);
        }
        laplacian
    }
}

/// `L` walkers: positions and caches at x, a proposal y beside them.
struct Group {
    walkers: U,
    /// Single-particle moves (one per particle and step), else one all-coordinate move.
    single: bool,
    moves_per_step: usize,
    x: Vec<V>,
    q: Vec<V>,
    s: Vec<V>,
    /// ln psi and, for single-particle moves, its RBM and Jastrow parts.
    ln_psi: V,
    ln_rbm: V,
    ln_j: V,
    /// The determinants at x, for fermions, and at y for all-coordinate moves.
    dets: Option<LaneDets>,
    dets_y: Option<LaneDets>,
    /// The drift at x (kept current for importance sampling; for single-particle moves, on
    /// the moving particle).
    g: Vec<V>,
    /// The proposal; for single-particle moves equal to x but on the moving particle.
    y: Vec<V>,
    qy: Vec<V>,
    sy: Vec<V>,
    gy: Vec<V>,
    /// ln psi at y and, for single-particle moves, its RBM and Jastrow parts.
    ln_psi_y: V,
    ln_rbm_y: V,
    ln_j_y: V,
    /// Limited drifts at x and y.
    vx: Vec<V>,
    vy: Vec<V>,
    o: Vec<V>,
    grad: Vec<V>,
    /// E_L's parts at the last measurement: kinetic, trap, interaction.
    parts: [V; 3],
    /// At the last measurement: sum_i r_i^2, and with interaction the pair distances r_pq
    /// (p < q, in that order).
    r2: V,
    pairs: Vec<V>,
}

impl Group {
    fn new(rbm: &LanePsi, spec: &EngineSpec) -> Self {
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
    fn load(
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
    fn store(&self, xs: &mut [f64], start: usize, valid: usize) {
        let m = self.x.len();
        for (c, xc) in self.x.iter().enumerate() {
            for l in 0..valid {
                xs[(start + l) * m + c] = xc.0[l];
            }
        }
    }

    /// Every cache from x in the lanes of `lanes` (`Walker::refresh`); the others keep theirs.
    #[inline(always)]
    fn refresh(&mut self, rbm: &LanePsi, lanes: Mask) {
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
    fn step(&mut self, rbm: &LanePsi, spec: &EngineSpec, step: u64) -> V {
        match self.single {
            true => self.sweep(rbm, spec, step),
            false => self.move_all(rbm, spec, step),
        }
    }

    /// One all-coordinate move (`Chain::mc_step`); returns the lanes that accepted.
    #[inline(always)]
    fn move_all(&mut self, rbm: &LanePsi, spec: &EngineSpec, step: u64) -> V {
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
    fn propose_all(&mut self, rbm: &LanePsi, spec: &EngineSpec, rng: &mut LaneStream) -> V {
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
    fn take_all(&mut self, accept: Mask) {
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
    fn check_health(&mut self, rbm: &LanePsi, spec: &EngineSpec, step: u64, valid: usize) -> usize {
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
    fn reset_non_finite(
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
    fn measure(&mut self, rbm: &LanePsi, spec: &EngineSpec) -> V {
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

/// A group's observables scalars of one block, summed lane by lane and added across the lanes
/// once per block rather than once per measurement. The distances are summed over the pairs
/// and particles, and divided by their number once, when added.
#[derive(Default)]
struct LaneBlock {
    block: usize,
    measurements: u32,
    scalars: [V; SCALARS],
    /// The pair distances without interaction, where E_L has none to leave.
    pairs: Vec<V>,
}

impl LaneBlock {
    /// Adds the group's sample to the observables (`observables::observe`): the scalars to
    /// the lane sums, and each of the first `valid` walkers to the histograms when given.
    #[inline(always)]
    fn observe(
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
    fn flush_into(&mut self, out: &mut ChunkOut, spec: &EngineSpec, start: usize, valid: usize) {
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
fn pair_distances(x: &[V], particles: usize, d: usize, out: &mut Vec<V>) {
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

/// `chain::limit_drift` on lanes.
#[inline(always)]
fn limit_drift(v: &[V], dims: usize, dt: f64, out: &mut [V]) {
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

/// A chunk's sums, lane by lane; the lanes are added up once, at the end of the chunk.
struct LaneSums {
    samples: V,
    energy: V,
    energy_sq: V,
    o: Vec<V>,
    energy_o: Vec<V>,
    accepted: V,
}

impl LaneSums {
    fn new(k: usize) -> Self {
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
    fn add(&mut self, live: Mask, e: V, o: &[V]) {
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
    fn fold_into(&self, sums: &mut crate::engine::Moments) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::physics::Walker;
    use serde_json::json;

    /// Within 1e-12 relative: rounding of a few dozen operations, and the lane exp and ln.
    fn close(what: &str, a: f64, b: f64) {
        assert!(
            (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0),
            "{what}: {a} vs {b}"
        );
    }

    #[test]
    fn a_group_computes_what_the_scalar_walker_computes() {
        for case in [
            json!({}),
            json!({"wavefunction": {"form": "sqrt", "hidden": 70, "train_sigma": true}}),
            json!({"wavefunction": {"jastrow": "pade", "sigma": "auto", "train_sigma": true}}),
            json!({"system": {"particles": 4, "dims": 3}, "wavefunction": {"jastrow": "pade"}}),
            json!({"wavefunction": {"jastrow": "simple", "sigma": "auto", "train_sigma": true}}),
            json!({"system": {"particles": 3, "dims": 3}, "wavefunction": {"jastrow": "simple"}}),
            json!({"system": {"particles": 3, "dims": 1, "interaction": false}}),
        ] {
            let config = Config::from_value(case.clone(), "test").unwrap();
            let spec = EngineSpec::from_config(&config);
            let mut params = crate::driver::initial_params(&config).unwrap();
            for (i, t) in params.theta_mut().iter_mut().enumerate() {
                *t += 0.1 * (i as f64 * 0.37).cos();
            }
            let rbm = LanePsi::new(&spec, &params);
            let mut group = Group::new(&rbm, &spec);
            let mut rng = StepStream::new(1, 2, 3);
            for x in &mut group.x {
                *x = V(std::array::from_fn(|_| rng.normal()));
            }
            group.refresh(&rbm, Mask::ALL);
            let e = group.measure(&rbm, &spec);
            let mut walker = Walker::new(&spec.wavefunction, &spec.system, &params);
            for l in 0..L {
                let x: Vec<f64> = group.x.iter().map(|v| v.0[l]).collect();
                walker.load(&x);
                close(
                    &format!("{case} ln psi"),
                    group.ln_psi.0[l],
                    walker.ln_psi(),
                );
                for (g, &want) in group.g.iter().zip(walker.drift()) {
                    close(&format!("{case} drift"), g.0[l], want);
                }
                close(&format!("{case} E_L"), e.0[l], walker.local_energy());
                for (o, &want) in group.o.iter().zip(walker.o()) {
                    close(&format!("{case} O"), o.0[l], want);
                }
                for (p, want) in group.parts.iter().zip(walker.energy_parts()) {
                    close(&format!("{case} parts"), p.0[l], want);
                }
            }
        }
    }
}
