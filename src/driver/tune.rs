//! `sampler.step` and `sampler.dt` = "auto": the step size is tuned during the first half of
//! thermalisation (600 steps at most) toward a target acceptance, then held fixed for the
//! rest of the run.
//!
//! The rule is a bisection on the acceptance over every walker of a round: a value whose
//! acceptance is above the target is too small, one below too large; the next value is the
//! geometric mean of the bracket (or four times / a quarter of the last, until there is
//! one), rounded to two significant digits. Every decision depends only on which side of the
//! target a round's acceptance lies, so engines whose counts differ by a few f32 roundings
//! (CPU and GPU draw the same random numbers) reach the same value, and the rounding makes
//! the value a plain number to quote and to reuse.

use serde::Serialize;

use crate::config::{AutoValue, Config};
use crate::engine::EngineSpec;
use crate::sampler::{SamplerKind, Step};

/// Rounds of tuning, each a share of the first half of thermalisation.
pub(super) const ROUNDS: u32 = 6;

/// Steps of a round at most: enough for the acceptance of even a few walkers, and short
/// enough that the tuning, which a stop does not cut short, ends soon.
pub(super) const MAX_ROUND_STEPS: u32 = 100;

/// What result.json says about the sampling beyond the estimate.
#[derive(Clone, Debug, Default)]
pub(super) struct SamplingNotes {
    pub tuned: Option<Tuned>,
    /// Gelman-Rubin R-hat of the production, each walker a chain.
    pub r_hat: Option<f64>,
}

/// What the tuning found, for result.json.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Tuned {
    /// The config key tuned (`sampler.dt` or `sampler.step`).
    pub key: &'static str,
    pub value: f64,
    pub target_acceptance: f64,
    /// The acceptance of the last tuning round.
    pub acceptance: f64,
}

/// The acceptance tuning aims at: about one half for blind Metropolis proposals; high for
/// drift-guided ones, whose time-step error grows with the rejections.
pub fn target_acceptance(kind: SamplerKind) -> f64 {
    match kind {
        SamplerKind::Importance => 0.95,
        _ => 0.5,
    }
}

/// The key of the step size this config leaves to tuning, if any (Gibbs sampling has none).
pub(super) fn auto_key(config: &Config) -> Option<&'static str> {
    let Step::Moves { tune, .. } = config.sampler.kind.info().step else {
        return None;
    };
    let size = match tune {
        "sampler.dt" => config.sampler.dt,
        _ => config.sampler.step,
    };
    (size == AutoValue::Auto).then_some(tune)
}

/// The step size the engine of `spec` moves with (none for Gibbs sampling).
pub(super) fn step_size(spec: &EngineSpec) -> Option<f64> {
    match spec.sampler.kind.info().step {
        Step::Moves {
            tune: "sampler.dt", ..
        } => Some(spec.sampler.dt),
        Step::Moves { .. } => Some(spec.sampler.step),
        Step::Whole { .. } => None,
    }
}

/// `x` to `digits` significant digits.
fn round_significant(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// The next value to try after `value` gave `acceptance`, narrowing the bracket
/// (`low`: accepted too often, `high`: too rarely).
pub(super) fn next_value(
    value: f64,
    acceptance: f64,
    target: f64,
    low: &mut Option<f64>,
    high: &mut Option<f64>,
) -> f64 {
    if acceptance > target {
        *low = Some(value);
    } else {
        *high = Some(value);
    }
    let next = match (*low, *high) {
        (Some(l), Some(h)) => (l * h).sqrt(),
        (Some(l), None) => 4.0 * l,
        (None, Some(h)) => h / 4.0,
        (None, None) => unreachable!("one side was just set"),
    };
    round_significant(next, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_to_two_digits() {
        assert_eq!(round_significant(0.123456, 2), 0.12);
        assert_eq!(round_significant(3.86, 2), 3.9);
        assert_eq!(round_significant(0.0456, 2), 0.046);
    }

    /// The bisection reaches the value whose acceptance is the target, from either side,
    /// for a model acceptance exp(-value).
    #[test]
    fn the_bisection_closes_in_on_the_target() {
        let target = 0.5;
        let exact = -f64::ln(target);
        for start in [0.01, 30.0] {
            let (mut low, mut high) = (None, None);
            let mut value = start;
            for _ in 0..12 {
                value = next_value(value, (-value).exp(), target, &mut low, &mut high);
            }
            assert!((value / exact - 1.0).abs() < 0.05, "{start}: {value}");
        }
    }
}
