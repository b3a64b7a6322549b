//! `check`'s time estimate from the run's own work, timed briefly: on the engine the run will
//! use, at its parameters, with each phase's measurements (thermalisation moves only; an
//! optimisation iteration measures the energy with its gradient sums, and SR's metric, then
//! updates; production measures the energy and the observables).

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::build_engine;
use crate::config::{Config, read_json};
use crate::engine::{EngineSpec, Measure};
use crate::error::Error;
use crate::optimiser::Optimiser;
use crate::physics::Params;
use crate::stats::Estimate;
use crate::team::solo;

use super::tune::{ROUNDS, auto_key};

/// Walkers calibrated at most: the cost per walker-step is flat beyond (on a GPU it falls
/// until the device is full, so a larger run is estimated high rather than low).
pub(super) const MAX_WALKERS: u32 = 16_384;

/// Wall time each phase is timed for.
const SECONDS_PER_PHASE: f64 = 0.2;

/// Wave functions above this many parameters are not calibrated (a step takes too long).
const MAX_PARAMETERS: usize = 20_000;

/// One phase's work and its measured cost.
#[derive(Clone, Debug)]
pub struct PhaseCost {
    pub phase: &'static str,
    pub measure: Measure,
    /// Whether the observables beyond the energy were measured.
    pub observables: bool,
    pub seconds_per_walker_step: f64,
    /// What a `sample` call costs beyond its steps (a determinant refresh, the threads'
    /// start, the sums' reduction and readback): a run's calls are longer than the
    /// calibration's, so the two are told apart by a fit.
    pub seconds_per_call: f64,
}

/// What the calibration ran, and what it cost.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// The engine, as the run describes it.
    pub engine: String,
    /// What the engine ran: the run's spec, with at most `MAX_WALKERS` walkers.
    pub spec: EngineSpec,
    /// Thermalisation, an optimisation iteration's sampling, production.
    pub phases: Vec<PhaseCost>,
    /// Seconds of an optimiser update, with the estimate from the sums.
    pub update_seconds: f64,
    /// Seconds to build the engine (again for every round of step-size tuning).
    pub build_seconds: f64,
    /// Whether the run tunes an "auto" step size.
    pub tunes: bool,
}

impl Calibration {
    /// Seconds of `calls` calls of `phase` making `steps` steps in all with `walkers`.
    fn phase_seconds(&self, phase: &str, calls: u64, steps: u64, walkers: u32) -> f64 {
        let p = self
            .phases
            .iter()
            .find(|p| p.phase == phase)
            .expect("every phase is calibrated");
        calls as f64 * p.seconds_per_call
            + steps as f64 * walkers as f64 * p.seconds_per_walker_step
    }

    /// Seconds of a run of `config` (of `iterations` optimisation iterations: `sample` and
    /// sweeps in production mode have none; DMC generations cost as production steps).
    pub fn seconds(&self, config: &Config, iterations: u32, production_steps: u64) -> f64 {
        let w = config.walkers;
        let rounds = if self.tunes { ROUNDS as u64 } else { 0 };
        let thermalisation = config.sampler.thermalisation as u64;
        let iterations = iterations as u64;
        let optimisation = iterations * config.steps_per_iteration as u64;
        self.build_seconds * (1 + rounds) as f64
            + self.phase_seconds("thermalise", 1 + rounds, thermalisation, w)
            + self.phase_seconds("optimise", iterations, optimisation, w)
            + iterations as f64 * self.update_seconds
            + self.phase_seconds("production", production_steps.min(1), production_steps, w)
    }
}

/// Times `config`'s work at `params`; `None` for wave functions too large to calibrate
/// quickly.
pub fn calibrate(config: &Config, params: &Params) -> Result<Option<Calibration>, Error> {
    let mut config = config.clone();
    config.walkers = config.walkers.min(MAX_WALKERS);
    let spec = EngineSpec::from_config(&config);
    if spec.parameters() > MAX_PARAMETERS {
        return Ok(None);
    }
    let start = Instant::now();
    let mut engine = build_engine(&config, &solo())?.engine;
    let build_seconds = start.elapsed().as_secs_f64();
    // The first steps leave the starting positions and warm the caches (or the GPU).
    engine.sample(params, 10, Measure::Nothing, &())?;
    let mut optimiser = Optimiser::new(&config.optimiser, params.theta().len());
    let work = [
        ("thermalise", Measure::Nothing, false),
        ("optimise", optimiser.measure(), false),
        (
            "production",
            Measure::Production,
            config.observables.enabled,
        ),
    ];
    let mut phases = Vec::new();
    let mut last = None;
    for (phase, measure, observables) in work {
        // (steps, seconds) of calls of doubling length, at least three.
        let mut calls: Vec<(f64, f64)> = Vec::new();
        let mut batch = 5u32;
        while calls.len() < 3 || calls.iter().map(|c| c.1).sum::<f64>() < SECONDS_PER_PHASE {
            let start = Instant::now();
            let moments = engine.sample(params, batch, measure, &())?;
            if measure.any() {
                Estimate::from_moments(&moments);
            }
            calls.push((batch as f64, start.elapsed().as_secs_f64()));
            batch = batch.saturating_mul(2).min(10_000);
            if phase == "optimise" {
                last = Some(moments);
            }
        }
        let (per_call, per_step) = per_call_and_step(&calls);
        phases.push(PhaseCost {
            phase,
            measure,
            observables,
            seconds_per_walker_step: per_step / config.walkers as f64,
            seconds_per_call: per_call,
        });
    }
    let moments = last.expect("the optimisation phase ran");
    let start = Instant::now();
    let e = Estimate::from_moments(&moments);
    let wf = &spec.wavefunction;
    optimiser.step(
        wf,
        &mut params.clone(),
        &e.gradient,
        moments.metric.as_ref(),
    )?;
    Ok(Some(Calibration {
        engine: engine.describe(),
        spec,
        phases,
        update_seconds: start.elapsed().as_secs_f64(),
        build_seconds,
        tunes: auto_key(&config).is_some(),
    }))
}

/// The least-squares line seconds = per_call + per_step x steps through the calls, with a
/// per-call cost of at least 0 (timing noise can tilt the line the other way).
fn per_call_and_step(calls: &[(f64, f64)]) -> (f64, f64) {
    let n = calls.len() as f64;
    let (sx, sy) = calls
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = calls.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = calls.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    if intercept >= 0.0 && slope > 0.0 {
        (intercept, slope)
    } else {
        (0.0, sy / sx)
    }
}

/// The config of the run in `dir` (its result.json, with its tuned step size), with
/// `overrides`, and the path of the run's parameters: what `sample --from` measures.
pub fn run_config(dir: &Path, overrides: &[String]) -> Result<(Config, std::path::PathBuf), Error> {
    let result = dir.join("result.json");
    let mut value = read_json(&result, "result")?;
    if value["method"] == "dmc" {
        return Err(Error::input(format!(
            "{} is the directory of a `dmc` run, which keeps no parameters; give --from the \
             directory of the `run` it measured",
            dir.display()
        )));
    }
    let mut config = value
        .get_mut("config")
        .filter(|c| c.is_object())
        .map(Value::take)
        .ok_or_else(|| Error::input(format!("{} holds no `config`", result.display())))?;
    // The run's own starting file is not what is measured.
    config["wavefunction"]["params"] = Value::Null;
    for item in overrides {
        crate::config::apply_override(&mut config, item)?;
    }
    let config = Config::from_value_set(config, &result.display().to_string(), overrides)?;
    Ok((config, dir.join("params.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_split_into_a_cost_per_call_and_per_step() {
        let calls: Vec<(f64, f64)> = [5.0, 10.0, 20.0, 40.0]
            .iter()
            .map(|&s| (s, 0.003 + 0.0001 * s))
            .collect();
        let (call, step) = per_call_and_step(&calls);
        assert!((call - 0.003).abs() < 1e-12 && (step - 0.0001).abs() < 1e-12);
        // A line through negative seconds per call: all the time goes to the steps.
        assert_eq!(
            per_call_and_step(&[(5.0, 0.5), (10.0, 2.0)]),
            (0.0, 2.5 / 15.0)
        );
    }
}
