//! The `run` and `sample` commands: thermalise, optimise, measure, and write the results.
//! Only `Engine` and `Moments` are seen here, so every engine runs the same procedure.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::config::Config;
use crate::engine::{Engine, build_engine};
use crate::error::Error;
use crate::optimize::Optimiser;
use crate::physics::RbmParams;
use crate::report::{
    Console, HistoryWriter, OutputDir, params_to_json, read_params, reference_energy,
};
use crate::stats::Estimate;

/// The starting parameters: the config's parameters file, or random ones from the seed.
pub fn initial_params(config: &Config) -> Result<RbmParams, Error> {
    let m = config.system().coordinates();
    let n = config.wavefunction.hidden;
    match &config.wavefunction.params {
        Some(path) => read_params(path, m, n),
        None => Ok(RbmParams::random(
            m,
            n,
            config.wavefunction.init_scale,
            config.seed,
        )),
    }
}

/// What `run` and `sample` found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub params: RbmParams,
    /// One estimate per optimisation iteration.
    pub history: Vec<Estimate>,
    /// The final measurement (absent when `production.steps` is 0).
    pub production: Option<Estimate>,
    pub engine: String,
    pub seconds: f64,
}

/// `rbm-vmc run`: optimise the parameters, then measure the energy with them.
pub fn run(config: &Config, out: &OutputDir, console: &Console) -> Result<Outcome, Error> {
    let params = initial_params(config)?;
    let mut engine = build_engine(config, console)?;
    optimise_and_measure(engine.as_mut(), config, params, out, console)
}

/// `rbm-vmc sample`: measure the energy at fixed parameters (from `params_file`, else the
/// config's initial ones) over `production.steps` steps.
pub fn sample(
    config: &Config,
    params_file: Option<&Path>,
    out: &OutputDir,
    console: &Console,
) -> Result<Outcome, Error> {
    if config.production.steps == 0 {
        return Err(Error::input(
            "config: `production.steps` = 0: `sample` measures over production.steps steps; \
             set it to at least sampler.measure_every",
        ));
    }
    let params = match params_file {
        Some(path) => read_params(
            path,
            config.system().coordinates(),
            config.wavefunction.hidden,
        )?,
        None => initial_params(config)?,
    };
    let mut engine = build_engine(config, console)?;
    let config = Config {
        optimiser: crate::config::OptimiserConfig {
            iterations: 0,
            ..config.optimiser.clone()
        },
        ..config.clone()
    };
    optimise_and_measure(engine.as_mut(), &config, params, out, console)
}

/// Thermalisation, `optimiser.iterations` updates, then production; writes
/// `history.csv` (as it goes), `params.json` and `result.json`.
pub fn optimise_and_measure(
    engine: &mut dyn Engine,
    config: &Config,
    mut params: RbmParams,
    out: &OutputDir,
    console: &Console,
) -> Result<Outcome, Error> {
    let start = Instant::now();
    let walkers = engine.spec().walkers as u64;
    let therm = config.sampler.thermalisation;
    if therm > 0 {
        let bar = console.bar("thermalise", walkers * therm as u64, "walker-steps");
        engine.sample(&params, therm, false, &bar)?;
    }

    let iterations = config.optimiser.iterations;
    let mut history = Vec::with_capacity(iterations as usize);
    if iterations > 0 {
        let mut writer = HistoryWriter::create(&out.file("history.csv"))?;
        let mut optimiser = Optimiser::new(&config.optimiser, params.theta().len());
        let bar = console.bar("optimise", iterations as u64, "iterations");
        for it in 1..=iterations {
            let moments = engine.sample(&params, config.steps_per_iteration, true, &())?;
            let e = Estimate::from_moments(&moments);
            let seconds = start.elapsed().as_secs_f64();
            if let Some(problem) = divergence(&e) {
                out.write("params.json", params_to_json(&params).as_bytes())?;
                return Err(Error::Diverged(format!(
                    "iteration {it}: {problem}; the learning rate ({}) is probably too large. \
                     The last good parameters are in {}",
                    config.optimiser.learning_rate,
                    out.file("params.json").display()
                )));
            }
            writer.row(it, &e, seconds)?;
            bar.line(&iteration_line(it, &e));
            bar.set_message(format!("E = {:.5}", e.energy));
            bar.inc(1);
            optimiser.step(params.theta_mut(), &e.gradient);
            history.push(e);
        }
        bar.finish();
    }
    out.write("params.json", params_to_json(&params).as_bytes())?;

    let production = if config.production.steps > 0 {
        let steps = config.production.steps;
        let bar = console.bar("production", walkers * steps as u64, "walker-steps");
        let moments = engine.sample(&params, steps, true, &bar)?;
        bar.finish();
        Some(Estimate::from_moments(&moments))
    } else {
        None
    };
    let outcome = Outcome {
        params,
        history,
        production,
        engine: engine.describe(),
        seconds: start.elapsed().as_secs_f64(),
    };
    report_result(config, &outcome, out, console)?;
    Ok(outcome)
}

/// Why an iteration's estimate cannot be trusted, if it cannot.
fn divergence(e: &Estimate) -> Option<String> {
    if !e.energy.is_finite() || !e.variance.is_finite() {
        Some(format!("the energy became non-finite ({})", e.energy))
    } else if e.gradient.iter().any(|g| !g.is_finite()) {
        Some("the energy gradient became non-finite".into())
    } else {
        None
    }
}

fn iteration_line(it: u32, e: &Estimate) -> String {
    format!(
        "iter {it:>5}  E = {:>10.6} +- {:.6}  (walkers +- {:.6})  var {:>9.3e}  acc {:.3}  |grad| {:.3e}{}",
        e.energy,
        e.error,
        e.error_walkers,
        e.variance,
        e.acceptance,
        e.gradient_norm(),
        if e.resets > 0 {
            format!("  resets {}", e.resets)
        } else {
            String::new()
        }
    )
}

fn report_result(
    config: &Config,
    outcome: &Outcome,
    out: &OutputDir,
    console: &Console,
) -> Result<(), Error> {
    let reference = reference_energy(&config.system());
    let mut result = json!({
        "engine": outcome.engine,
        "seconds": outcome.seconds,
        "iterations": outcome.history.len(),
        "config": config,
    });
    if let Some(e) = &outcome.production {
        console.line(&format!(
            "energy {:.6} +- {:.6} (blocking), +- {:.6} (walker means); variance {:.4e}, \
             tau {:.2}, acceptance {:.3}, {} samples{}",
            e.energy,
            e.error,
            e.error_walkers,
            e.variance,
            e.tau,
            e.acceptance,
            e.samples,
            if e.resets > 0 {
                format!(", {} walker resets", e.resets)
            } else {
                String::new()
            }
        ));
        let fields = json!({
            "energy": e.energy,
            "error": e.error,
            "error_walkers": e.error_walkers,
            "variance": e.variance,
            "acceptance": e.acceptance,
            "tau": e.tau,
            "samples": e.samples,
            "resets": e.resets,
            "gradient": e.gradient,
        });
        result
            .as_object_mut()
            .expect("object")
            .extend(fields.as_object().expect("object").clone());
        if let Some(r) = &reference {
            let sigmas = (e.energy - r.energy) / e.error;
            console.line(&format!(
                "reference {} ({}): difference {:+.6} = {:+.1} sigma",
                r.energy,
                r.source,
                e.energy - r.energy,
                sigmas
            ));
            result["reference"] = json!({
                "energy": r.energy,
                "source": r.source,
                "exact": r.exact,
                "difference_sigmas": sigmas,
            });
        }
    }
    console.line(&format!(
        "{} in {:.1} s on {}; results in {}",
        if outcome.production.is_some() {
            "measured"
        } else {
            "optimised"
        },
        outcome.seconds,
        outcome.engine,
        out.path().display()
    ));
    let text = serde_json::to_string_pretty(&result).expect("plain values serialise");
    out.write("result.json", text.as_bytes())
}
