//! `rbm-vmc check`: what a config or a sweep would run, its work, memory and time (from a
//! short calibration), without running it.

use std::path::Path;

use crate::config::{Config, read_json};
use crate::driver::{self, check_gpu_fits};
use crate::error::Error;

use super::{Mode, Sweep};

/// `rbm-vmc check` of a config file (or the built-in default) or a sweep file (one with
/// `grid` or `points`): what it would run, its work, memory and estimated time, and the
/// warnings, as printed; an error when it would not run.
pub fn check_report(path: Option<&Path>, overrides: &[String]) -> Result<String, Error> {
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
    let threads = match config.threads {
        0 => "every core".to_string(),
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    };
    let time = match driver::calibrate(&config)? {
        Some(rate) => format!(
            "about {} on the CPU engine with {threads}, from a short calibration",
            duration(rate * plan.walker_steps as f64)
        ),
        None => "no time estimate: too many parameters to calibrate quickly".into(),
    };
    Ok(format!("{}{time}\n", plan_report(&config, &plan)))
}

/// Every point of a sweep checked, with the work of the whole sweep and its estimated time on
/// the CPU engine (each distinct cost shape calibrated briefly, once).
fn sweep_report(sweep: &Sweep) -> Result<String, Error> {
    let mut walker_steps = 0u128;
    let mut seconds = Some(0.0);
    let mut rates = std::collections::HashMap::new();
    for point in &sweep.points {
        let plan = driver::plan(&point.config)?;
        check_gpu_fits(&point.config)?;
        // A production sweep samples: thermalisation and production only.
        let steps = match sweep.mode {
            Mode::Optimise => plan.walker_steps,
            Mode::Dmc => {
                let c = &point.config;
                let generations = (c.dmc.equilibration + c.dmc.generations) as u128
                    * c.dmc.time_step.0.len() as u128;
                c.walkers as u128 * (c.sampler.thermalisation as u128 + generations)
            }
            Mode::Production => {
                let c = &point.config;
                c.walkers as u128 * (c.sampler.thermalisation + c.production.steps) as u128
            }
        };
        walker_steps += steps;
        let shape = driver::cost_shape(&point.config);
        let rate = match rates.get(&shape) {
            Some(rate) => *rate,
            None => *rates
                .entry(shape)
                .or_insert(driver::calibrate(&point.config)?),
        };
        seconds = seconds
            .zip(rate)
            .map(|(total, rate)| total + rate * steps as f64);
    }
    let time = match seconds {
        Some(s) => format!(
            "about {} on the CPU engine, from a short calibration of each kind of point",
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
