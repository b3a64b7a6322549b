//! `check`'s time estimate from the run's own work, timed briefly: on the engine the run will
//! use, at its parameters, with each phase's measurements (thermalisation moves only; an
//! optimisation iteration measures the energy with its gradient sums, and SR's metric, then
//! updates; production measures the energy and the observables).

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use crate::config::{Config, read_json};
use crate::engine::{EngineSpec, Measure, build_engine};
use crate::error::Error;
use crate::optimiser::Optimiser;
use crate::physics::Params;
use crate::report::Console;
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
    fn rate(&self, phase: &str) -> f64 {
        self.phases
            .iter()
            .find(|p| p.phase == phase)
            .map_or(0.0, |p| p.seconds_per_walker_step)
    }

    /// Seconds of a run of `config` (of `iterations` optimisation iterations: `sample` and
    /// sweeps in production mode have none; DMC generations cost as production steps).
    pub fn seconds(&self, config: &Config, iterations: u32, production_steps: u64) -> f64 {
        let w = config.walkers as f64;
        let per_iteration = config.steps_per_iteration as f64 * self.rate("optimise") * w;
        let builds = if self.tunes { ROUNDS as f64 } else { 0.0 };
        self.build_seconds * (1.0 + builds)
            + w * config.sampler.thermalisation as f64 * self.rate("thermalise")
            + iterations as f64 * (per_iteration + self.update_seconds)
            + w * production_steps as f64 * self.rate("production")
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
    let mut engine = build_engine(&config, &Console::new(true), &solo())?;
    let build_seconds = start.elapsed().as_secs_f64();
    // The first steps leave the starting positions and warm the caches (or the GPU).
    engine.sample(params, 10, Measure::Nothing, &())?;
    let mut optimiser = Optimiser::new(&config.optimiser, params.theta().len());
    let work = [
        ("thermalise", Measure::Nothing, false),
        ("optimise", optimiser.measure(), false),
        ("production", Measure::Energy, config.observables.enabled),
    ];
    let mut phases = Vec::new();
    let mut last = None;
    for (phase, measure, observables) in work {
        engine.observe(observables);
        let (mut steps, mut seconds, mut batch) = (0u64, 0.0, 5u32);
        while seconds < SECONDS_PER_PHASE {
            let start = Instant::now();
            let moments = engine.sample(params, batch, measure, &())?;
            if measure.any() {
                Estimate::from_moments(&moments);
            }
            seconds += start.elapsed().as_secs_f64();
            steps += batch as u64;
            batch = batch.saturating_mul(2).min(10_000);
            if phase == "optimise" {
                last = Some(moments);
            }
        }
        phases.push(PhaseCost {
            phase,
            measure,
            observables,
            seconds_per_walker_step: seconds / (steps as f64 * config.walkers as f64),
        });
    }
    engine.observe(false);
    let moments = last.expect("the optimisation phase ran");
    let start = Instant::now();
    let e = Estimate::from_moments(&moments);
    optimiser.step(&mut params.clone(), &e.gradient, moments.metric.as_ref())?;
    Ok(Some(Calibration {
        engine: engine.describe(),
        spec,
        phases,
        update_seconds: start.elapsed().as_secs_f64(),
        build_seconds,
        tunes: auto_key(&config).is_some(),
    }))
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
