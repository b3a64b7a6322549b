//! The lane engine: the CPU engine's fast path for the RBM, with or without a Jastrow
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
//!
//! By factor and stage, each file beside its f64 original: psi.rs (the RBM, `Rbm`, and the
//! calls of the other factors), jastrow.rs and slater.rs (`Jastrow`, `SlaterState`),
//! group.rs (the walkers and their all-coordinate moves, `Walker` and `Chain`), single.rs
//! (single-particle moves), observe.rs (the sums and observables), dmc.rs (DMC generations);
//! simd.rs and stream.rs are the lane vector and the lane Philox.

mod dmc;
mod group;
mod jastrow;
mod observe;
mod psi;
mod simd;
mod single;
mod slater;
mod stream;

pub use self::dmc::{DmcChunk, DmcGroup, DmcStep, Source, dmc_chunk};
use self::group::{Group, limit_drift};
use self::jastrow::LaneJastrow;
use self::observe::{LaneBlock, LaneSums, pair_distances};
use self::psi::LanePsi;
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

/// Whether the lane engine runs `spec`: the RBM, with or without a Jastrow factor and
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
