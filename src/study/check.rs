//! `rbm-vmc check`: what a config or a sweep would run, its work, memory and time (from a
//! short calibration), without running it.

use std::path::Path;

use crate::config::{Config, read_json};
use crate::driver::{self, check_gpu_fits};
use crate::error::Error;

use super::{Mode, Sweep};

/// `rbm-vmc check` of a config file (or the built-in default) or a sweep file (one with
/// `grid` or `points`), or with `from` of a `sample --from` that run: what it would run, its
/// work, memory and estimated time, and the warnings, as printed; an error when it would not
/// run.
pub fn check_report(
    path: Option<&Path>,
    overrides: &[String],
    from: Option<&Path>,
) -> Result<String, Error> {
    if let Some(dir) = from {
        return sample_report(dir, overrides);
    }
    let sweep_file = match path {
        Some(path) => read_json(path, "config")?
            .as_object()
            .is_some_and(|o| o.contains_key("grid") || o.contains_key("points")),
        None => false,
    };
    if let (true, Some(path)) = (sweep_file, path) {
        return sweep_report(&Sweep::load(path, overrides)?);
    }
    let config = Config::load(path, overrides)?;
    let plan = driver::plan(&config)?;
    check_gpu_fits(&config)?;
    let params = driver::initial_params(&config)?;
    let time = estimate(&config, &params, |c, cal| {
        cal.seconds(c, c.optimiser.iterations, c.production.steps as u64)
    })?;
    Ok(format!("{}{time}\n", plan_report(&config, &plan)))
}

/// `check --from DIR`: the `sample --from DIR` of a run, at its parameters.
fn sample_report(dir: &Path, overrides: &[String]) -> Result<String, Error> {
    let (config, params_file) = driver::run_config(dir, overrides)?;
    let plan = driver::plan(&config)?;
    check_gpu_fits(&config)?;
    let params = driver::measured_params(&config, Some(&params_file))?;
    let steps = config.sampler.thermalisation as u64 + config.production.steps as u64;
    let time = estimate(&config, &params, |c, cal| {
        cal.seconds(c, 0, c.production.steps as u64)
    })?;
    Ok(format!(
        "sample of the run in {} at its parameters: {} walkers; {:.3e} walker-steps; about \
         {:.1} MiB of host memory ({} engine)\n{time}\n",
        dir.display(),
        config.walkers,
        (steps * config.walkers as u64) as f64,
        plan.host_bytes as f64 / (1u64 << 20) as f64,
        plan.engine
    ))
}

/// The estimate's line: `seconds` of the calibration of `config` at `params`.
fn estimate(
    config: &Config,
    params: &crate::physics::Params,
    seconds: impl Fn(&Config, &driver::Calibration) -> f64,
) -> Result<String, Error> {
    Ok(match driver::calibrate(config, params)? {
        Some(cal) => format!(
            "about {} on {}, from a short calibration of its work",
            duration(seconds(config, &cal)),
            cal.engine
        ),
        None => "no time estimate: too many parameters to calibrate quickly".into(),
    })
}

/// Every point of a sweep checked, with the work of the whole sweep and its estimated time
/// (each distinct cost shape calibrated briefly, once).
fn sweep_report(sweep: &Sweep) -> Result<String, Error> {
    let mut walker_steps = 0u128;
    let mut seconds = Some(0.0);
    let mut calibrations = std::collections::HashMap::new();
    let mut engine = String::new();
    for point in &sweep.points {
        let c = &point.config;
        let plan = driver::plan(c)?;
        check_gpu_fits(c)?;
        // A production sweep samples: thermalisation and production only; DMC's
        // generations cost about as production steps.
        let (iterations, production) = match sweep.mode {
            Mode::Optimise => (c.optimiser.iterations, c.production.steps as u64),
            Mode::Dmc => (
                0,
                (c.dmc.equilibration + c.dmc.generations) as u64 * c.dmc.time_step.0.len() as u64,
            ),
            Mode::Production => (0, c.production.steps as u64),
        };
        walker_steps += match sweep.mode {
            Mode::Optimise => plan.walker_steps,
            _ => c.walkers as u128 * (c.sampler.thermalisation as u128 + production as u128),
        };
        let shape = driver::cost_shape(c);
        if !calibrations.contains_key(&shape) {
            let params = driver::initial_params(c)?;
            calibrations.insert(shape.clone(), driver::calibrate(c, &params)?);
        }
        let calibration = calibrations[&shape].as_ref();
        if let Some(cal) = calibration {
            engine.clone_from(&cal.engine);
        }
        seconds = seconds
            .zip(calibration)
            .map(|(total, cal)| total + cal.seconds(c, iterations, production));
    }
    let time = match seconds {
        Some(s) => format!(
            "about {} on {engine}, from a short calibration of each kind of point",
            duration(s)
        ),
        None => "no time estimate: too many parameters to calibrate quickly".into(),
    };
    Ok(format!(
        "sweep OK: {} points over {}; {:.3e} walker-steps in all; {time}\n",
        sweep.points.len(),
        sweep.keys.join(", "),
        walker_steps as f64,
    ))
}

/// A duration for people: 40 s, 12 min, 3.5 h.
fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

fn plan_report(config: &Config, plan: &driver::Plan) -> String {
    let s = &config.system;
    let w = &config.wavefunction;
    // The config's own spelling of an option ("direct", "importance", ...).
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut factors = vec![format!(
        "RBM with {} hidden units ({} form, sigma {:.4}{})",
        w.hidden,
        name(serde_json::json!(w.form)),
        config.sigma(),
        if w.train_sigma { ", trained" } else { "" }
    )];
    if w.jastrow != crate::config::JastrowKind::None {
        factors.push("Padé-Jastrow".into());
    }
    if s.statistics == crate::physics::Statistics::Fermions {
        factors.push("Slater determinants".into());
    }
    let mut report = format!(
        "config OK: {} particles in {}D ({}), omega {}, {}; {}: {} parameters; {} sampler\n\
         {} walkers; {:.3e} walker-steps in all; about {:.1} MiB of host memory ({} engine)\n",
        s.particles,
        s.dims,
        name(serde_json::json!(s.statistics)),
        s.omega,
        if s.interaction {
            "Coulomb"
        } else {
            "no interaction"
        },
        factors.join(" x "),
        plan.parameters,
        name(serde_json::json!(config.sampler.kind)),
        plan.walkers,
        plan.walker_steps as f64,
        plan.host_bytes as f64 / (1u64 << 20) as f64,
        plan.engine
    );
    for warning in config.physics_warnings() {
        report += &format!("warning: {warning}\n");
    }
    report
}
