//! Checks that the numbers of a run can be trusted: breakdowns that end it, and frozen
//! sampling that makes its error bars doubtful.

use crate::sampler::{SamplerKind, Step};
use crate::stats::Estimate;

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

/// A warning (short, and long with the remedy) when the acceptance says the walkers are
/// frozen: below 1 % for the samplers that reject moves, above 99.9 % for those whose table
/// row says so (steps too small to explore |psi|^2). The error bars then mean little.
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

/// Measurements per walker below which a production run's autocorrelation time tau makes
/// its error bars guesswork: blocking needs many independent blocks of a few tau.
const MEASUREMENTS_PER_TAU: f64 = 20.0;

/// A warning when the production series is too short for its correlation time: a walker
/// whose moves hardly change it (a time step far below the system's length scale, say) gives
/// a tau as long as the series and a blocking error that means little.
pub(super) fn correlation_warning(e: &Estimate, walkers: u32) -> Option<String> {
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
        assert!(sampling_warning(Importance, 0.9995).is_none());
        assert!(sampling_warning(Gibbs, 1.0).is_none());
        assert!(sampling_warning(Metropolis, 0.5).is_none());
    }
}
