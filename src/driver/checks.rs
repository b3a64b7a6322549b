//! Checks that the numbers of a run can be trusted: breakdowns that end it, and frozen
//! sampling that makes its error bars doubtful.

use crate::report::{IterationPoint, compact};
use crate::sampler::{SamplerKind, Step};
use crate::stats::{Estimate, Observed};

/// An estimate more than this many error bars below the system's lower bound is a failure.
const BOUND_SIGMAS: f64 = 5.0;

/// More walker resets than this fraction of the walkers in one call is a failure.
const MAX_RESET_FRACTION: f64 = 0.01;

/// Why an estimate cannot be trusted, if it cannot: non-finite numbers, many walkers reset
/// after a non-finite state, an energy below `bound` (the lowest any state of the system
/// has) by more than a few error bars, or an energy far above or below the `best` (energy,
/// variance) of the iterations so far.
pub(super) fn breakdown(
    e: &Estimate,
    walkers: u32,
    bound: f64,
    best: Option<(f64, f64)>,
) -> Option<String> {
    if !e.energy.is_finite() || !e.variance.is_finite() {
        return Some(format!(
            "the energy is not finite ({}, variance {})",
            e.energy, e.variance
        ));
    }
    if e.gradient.iter().any(|g| !g.is_finite()) {
        return Some("the energy gradient is not finite".into());
    }
    if e.resets as f64 > MAX_RESET_FRACTION * walkers as f64 {
        return Some(format!(
            "{} walker resets (walkers whose state became non-finite), more than {}% of the \
             {walkers} walkers",
            e.resets,
            MAX_RESET_FRACTION * 100.0
        ));
    }
    // A little slack for the f32 rounding of the GPU engine where the error is zero.
    let slack = BOUND_SIGMAS * e.error + 1e-4 * bound.abs().max(1.0);
    if e.error.is_finite() && e.energy < bound - slack {
        return Some(format!(
            "the energy {:.6e} +- {:.1e} lies below {bound}, the lowest energy any state of \
             this system has (its non-interacting ground state), by more than {BOUND_SIGMAS} \
             error bars",
            e.energy, e.error
        ));
    }
    let (best, variance) = best?;
    let scale = best.abs() + variance.sqrt() + 1.0;
    if e.energy - best > 10.0 * scale {
        return Some(format!(
            "the energy exploded to {:.4e} (best so far {best:.6})",
            e.energy
        ));
    }
    (best - e.energy > 10.0 * scale).then(|| {
        format!(
            "the energy collapsed to {:.4e}, far below the best so far ({best:.6})",
            e.energy
        )
    })
}

/// Iterations over which a rising energy without a gradient marks a flat trial function.
const DRIFT_ITERATIONS: usize = 10;

/// A gradient norm below this, relative to 1 + |E|, is no gradient at all: the trial
/// function does not depend on its parameters where the walkers are.
const VANISHING_GRADIENT: f64 = 1e-10;

/// Why the optimisation cannot go anywhere, if it cannot: over the last `DRIFT_ITERATIONS`
/// iterations (the `earlier` ones and `e`) the gradient vanished while the energy rose by
/// more than `BOUND_SIGMAS` error bars. That is a flat trial function, whose walkers drift
/// apart (the energy climbs with the run's length) while it looks converged.
pub(super) fn drift_without_gradient(earlier: &[IterationPoint], e: &Estimate) -> Option<String> {
    let norm = e.gradient_norm();
    let first = earlier.len().checked_sub(DRIFT_ITERATIONS - 1)?;
    let window = &earlier[first..];
    let vanishing = |g: f64, energy: f64| g < VANISHING_GRADIENT * (1.0 + energy.abs());
    if !(vanishing(norm, e.energy) && window.iter().all(|p| vanishing(p.gradient_norm, p.energy))) {
        return None;
    }
    let start = &window[0];
    let rise = e.energy - start.energy;
    let error = (e.error.powi(2) + start.error.powi(2)).sqrt();
    (rise > BOUND_SIGMAS * error && rise > 0.0).then(|| {
        format!(
            "the energy rose from {:.6} to {:.6} over {DRIFT_ITERATIONS} iterations while the \
             gradient vanished (|grad| = {}): the trial function is flat where the walkers \
             are, so they drift apart and nothing is optimised (is wavefunction.sigma far \
             beyond the trap length?)",
            start.energy,
            e.energy,
            compact(norm)
        )
    })
}

/// A warning (short, and long with the remedy) when the acceptance says the walkers are
/// frozen: below 1 % for the samplers that reject moves, above 99.9 % for those whose table
/// row says so (Metropolis and importance sampling: steps too small to explore |psi|^2). The
/// error bars then mean little.
pub(super) fn sampling_warning(
    kind: SamplerKind,
    acceptance: f64,
) -> Option<(&'static str, String)> {
    let Step::Moves {
        tune, warn_high, ..
    } = kind.info().step
    else {
        return None;
    };
    let (short, remedy) = if acceptance < 0.01 {
        ("acceptance below 1 %", "lower")
    } else if warn_high && acceptance > 0.999 {
        ("acceptance above 99.9 %", "raise")
    } else {
        return None;
    };
    Some((
        short,
        format!(
            "{short} ({acceptance:.4}): the walkers hardly explore |psi|^2, so the energy and \
             its error bars are not reliable; {remedy} {tune}"
        ),
    ))
}

/// The production's frozen-sampling warning, for every sampler: an acceptance that says the
/// walkers hardly move, else an autocorrelation time that leaves fewer than
/// `MEASUREMENTS_PER_TAU` independent measurements per walker.
pub(super) fn frozen_warning(kind: SamplerKind, e: &Estimate, walkers: u32) -> Option<String> {
    sampling_warning(kind, e.acceptance)
        .map(|(_, long)| long)
        .or_else(|| correlation_warning(e, walkers))
}

/// A warning when the production's error bar cannot be estimated: one walker with one
/// measurement (or too few of either) leaves no spread to measure.
pub(super) fn error_warning(e: &Estimate) -> Option<String> {
    (!e.error.is_finite()).then(|| {
        format!(
            "the error bar cannot be estimated from {} sample(s) (it needs several walkers or \
             several measurements per walker): use more walkers or production steps",
            e.samples
        )
    })
}

/// Fraction of the particles (or pairs) beyond a histogram's range above which the
/// densities miss a visible part of the system.
const MAX_OUTSIDE: f64 = 0.01;

/// A warning when the histograms' ranges leave out much of the system (an `observables.r_max`
/// of a thousandth of the trap length puts every particle outside).
pub(super) fn range_warning(o: &Observed, particles: usize) -> Option<String> {
    let pairs = (particles * particles.saturating_sub(1) / 2) as f64;
    let radial = o.radial.outside / particles.max(1) as f64;
    let pair = if pairs > 0.0 {
        o.pair.outside / pairs
    } else {
        0.0
    };
    let (fraction, what, setting) = if radial > MAX_OUTSIDE {
        (radial, "particles", "r_max")
    } else if pair > MAX_OUTSIDE {
        (pair, "pair distances", "pair_max")
    } else {
        return None;
    };
    let range = if setting == "r_max" {
        o.radial.centres.len() as f64 * o.radial.width
    } else {
        o.pair.centres.len() as f64 * o.pair.width
    };
    Some(format!(
        "{:.1} % of the {what} lie beyond observables.{setting} = {}: the densities leave them \
         out; raise observables.{setting} (null: the default, a few trap lengths)",
        100.0 * fraction,
        compact(range)
    ))
}

/// Measurements per walker below which a production run's autocorrelation time tau makes
/// its error bars guesswork: blocking needs many independent blocks of a few tau.
const MEASUREMENTS_PER_TAU: f64 = 100.0;

/// A warning when the production series is too short for its correlation time: a walker
/// whose moves hardly change it (a time step far below the system's length scale, say) gives
/// a tau as long as the series and a blocking error that means little.
fn correlation_warning(e: &Estimate, walkers: u32) -> Option<String> {
    let per_walker = e.samples as f64 / walkers.max(1) as f64;
    (e.tau * MEASUREMENTS_PER_TAU > per_walker).then(|| {
        format!(
            "the autocorrelation time (tau {:.1} measurements) is too long for the {per_walker:.0} \
             measurements per walker: the error bars are not reliable; run more production \
             steps, or check that the walkers move (sampler.step, sampler.dt)",
            e.tau
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(energy: f64, error: f64) -> Estimate {
        Estimate {
            energy,
            error,
            error_blocking: error,
            error_walkers: error,
            variance: 1.0,
            tau: 1.0,
            acceptance: 0.5,
            samples: 1000,
            resets: 0,
            gradient: vec![0.0],
        }
    }

    #[test]
    fn estimates_below_the_lower_bound_or_far_from_the_best_are_breakdowns() {
        let bound = 2.0;
        assert_eq!(breakdown(&estimate(2.0, 0.0), 100, bound, None), None);
        assert_eq!(breakdown(&estimate(1.96, 0.01), 100, bound, None), None);
        let low = breakdown(&estimate(1.9, 0.01), 100, bound, None).unwrap();
        assert!(low.contains("lowest energy"), "{low}");
        assert!(breakdown(&estimate(-2.99e12, 1e9), 100, bound, None).is_some());
        // Unknown error (one sample): no claim about the bound.
        assert_eq!(breakdown(&estimate(1.0, f64::NAN), 100, bound, None), None);
        let best = Some((3.1, 2.0));
        assert_eq!(breakdown(&estimate(3.3, 0.01), 100, bound, best), None);
        let high = breakdown(&estimate(6.0e9, 1.0), 100, bound, best).unwrap();
        assert!(high.contains("exploded"), "{high}");
        // Far below the best, but not below the bound by many error bars.
        let collapsed = breakdown(&estimate(-1.0e3, 1e3), 100, bound, best).unwrap();
        assert!(collapsed.contains("collapsed"), "{collapsed}");
        let mut reset = estimate(3.0, 0.01);
        reset.resets = 2;
        assert!(
            breakdown(&reset, 100, bound, None)
                .unwrap()
                .contains("resets")
        );
        assert_eq!(breakdown(&reset, 1000, bound, None), None);
    }

    /// An energy that climbs while the gradient is 1e-110 looked converged; it is a flat
    /// trial function. A constant energy without gradient (an exact state) is not.
    #[test]
    fn a_rising_energy_without_gradient_is_a_breakdown() {
        let point = |energy: f64, g: f64| IterationPoint {
            iteration: 0.0,
            energy,
            error: 0.01,
            gradient_norm: g,
        };
        let mut e = estimate(26.0, 0.01);
        e.gradient = vec![1e-110];
        let rising: Vec<IterationPoint> = (0..9).map(|i| point(3.2 + i as f64, 1e-110)).collect();
        let why = drift_without_gradient(&rising, &e).unwrap();
        assert!(why.contains("from 3.200000 to 26.000000"), "{why}");
        // Too few iterations to tell, a gradient somewhere, or an energy that stays put.
        assert_eq!(drift_without_gradient(&rising[1..], &e), None);
        let mut with_gradient = rising.clone();
        with_gradient[4].gradient_norm = 0.1;
        assert_eq!(drift_without_gradient(&with_gradient, &e), None);
        let exact: Vec<IterationPoint> = (0..9).map(|_| point(2.0, 0.0)).collect();
        let mut e = estimate(2.0, 0.0);
        e.gradient = vec![0.0];
        assert_eq!(drift_without_gradient(&exact, &e), None);
    }

    #[test]
    fn a_series_short_for_its_tau_is_warned_about() {
        let mut e = estimate(3.0, 0.001);
        e.samples = 100 * 1000;
        e.tau = 2.0;
        assert_eq!(correlation_warning(&e, 100), None);
        e.tau = 100.0;
        assert!(
            correlation_warning(&e, 100)
                .unwrap()
                .contains("tau 100.0 measurements")
        );
    }

    /// Importance sampling at omega = 0.1 with dt = 0.05 (acceptance 0.9995, tau 68.7) is
    /// warned about, by its acceptance and, were that lower, by its tau; the default run (its
    /// measured numbers) is not; Gibbs sampling, which always accepts, by its tau alone.
    #[test]
    fn frozen_production_is_warned_about_and_the_default_run_is_not() {
        let walkers = 1000;
        let mut e = estimate(0.44, 0.001);
        (e.acceptance, e.tau, e.samples) = (0.9995, 68.7, 2000 * 1000);
        let why = frozen_warning(SamplerKind::Importance, &e, walkers).unwrap();
        assert!(why.contains("raise sampler.dt"), "{why}");
        e.acceptance = 0.99;
        let why = frozen_warning(SamplerKind::Importance, &e, walkers).unwrap();
        assert!(why.contains("autocorrelation time"), "{why}");
        e.acceptance = 1.0;
        assert!(frozen_warning(SamplerKind::Gibbs, &e, walkers).is_some());
        let mut default_run = estimate(3.078, 0.0007);
        (default_run.acceptance, default_run.tau) = (0.964, 1.33);
        default_run.samples = 10_000_000;
        for kind in SamplerKind::ALL {
            assert_eq!(
                frozen_warning(kind, &default_run, walkers),
                None,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn frozen_sampling_is_warned_about() {
        use SamplerKind::*;
        assert!(
            sampling_warning(Metropolis, 0.0)
                .unwrap()
                .1
                .contains("sampler.step")
        );
        assert!(
            sampling_warning(Importance, 0.005)
                .unwrap()
                .1
                .contains("sampler.dt")
        );
        assert!(
            sampling_warning(Metropolis, 0.9995)
                .unwrap()
                .1
                .ends_with("; raise sampler.step")
        );
        // Importance sampling at omega = 0.1 with dt = 0.05 (tau 69 steps) was not warned about.
        assert!(
            sampling_warning(Importance, 0.9995)
                .unwrap()
                .1
                .ends_with("; raise sampler.dt")
        );
        assert!(sampling_warning(Importance, 0.989).is_none());
        assert!(sampling_warning(Gibbs, 1.0).is_none());
        assert!(sampling_warning(Metropolis, 0.5).is_none());
    }
}
