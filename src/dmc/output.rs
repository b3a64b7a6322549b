//! What a DMC run writes: dmc.csv (a row per block of generations), dmc.svg (the block
//! energies, the running mean with its error band, the reference), with several time steps
//! timestep.svg (E against tau with the fit), and result.json; and the console lines.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;
use crate::control::StopReason;
use crate::error::Error;
use crate::physics::Params;
use crate::report::{
    Axes, Console, OutputDir, Series, compact, dmc_trace_csv, line_plot, params_checksum,
};

use crate::stats::Fit;
use crate::stats::observables::null_as_nan;

use super::{DmcOutcome, TimeStepRun};

/// One block of measured generations (NaN, written as null, for an error not known yet).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct DmcRow {
    pub time_step: f64,
    /// The last generation of the block (counted within its time step).
    pub generation: u32,
    /// The block's mean energy, and the running estimate after it with its error.
    pub energy: f64,
    pub mean: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error: f64,
    pub trial_energy: f64,
    pub acceptance: f64,
    pub node_crossing_rate: f64,
    pub tau_eff: f64,
}

const CSV_HEADER: &str =
    "time_step,generation,energy,mean,error,trial_energy,acceptance,node_crossing_rate,tau_eff";

fn csv(rows: &[DmcRow]) -> String {
    let mut text = format!("{CSV_HEADER}\n");
    for r in rows {
        text += &format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.time_step,
            r.generation,
            r.energy,
            r.mean,
            r.error,
            r.trial_energy,
            r.acceptance,
            r.node_crossing_rate,
            r.tau_eff
        );
    }
    text
}

/// Prints the result and writes dmc.csv, dmc.svg, timestep.svg (several time steps) and
/// result.json (`stopped`: the reason a run ended early, its status then "stopped").
pub(super) fn write_results(
    config: &Config,
    params: &Params,
    o: &DmcOutcome,
    rows: &[DmcRow],
    stopped: Option<StopReason>,
    out: &OutputDir,
    console: &Console,
) -> Result<(), Error> {
    let reference = config.reference();
    for run in &o.runs {
        console.line(&run_line(run, config));
    }
    let per_time_step: Vec<Value> = o.runs.iter().map(run_json).collect();
    let mut result = json!({
        "method": "dmc",
        "status": if stopped.is_some() { "stopped" } else { "completed" },
        "energy": o.energy,
        "error": o.error,
        "walkers": config.walkers,
        "engine": o.engine,
        "seconds": o.seconds,
        "config": config,
        "params_checksum": params_checksum(params),
        "provenance": crate::report::provenance(),
    });
    match (o.runs.as_slice(), &o.fit) {
        ([one], _) => extend(&mut result, run_json(one)),
        (_, fit) => {
            result["per_time_step"] = json!(per_time_step);
            if let Some(fit) = fit {
                console.line(&format!(
                    "extrapolated to tau = 0: {:.6} +- {:.6} (fit {}, chi^2 {:.2} for {} \
                     degrees of freedom)",
                    o.energy,
                    o.error,
                    fit_formula(fit),
                    fit.chi_squared,
                    o.runs.len() - fit.coefficients.len()
                ));
                result["fit"] = json!({
                    "coefficients": fit.coefficients,
                    "chi_squared": fit.chi_squared,
                });
            }
        }
    }
    if let Some(reason) = stopped {
        result["reason"] = json!(reason);
    }
    let mut warnings: Vec<String> = o.runs.iter().flat_map(super::run_warnings).collect();
    if !o.error.is_finite() && stopped.is_none() {
        warnings.push(
            "the error cannot be estimated from so few measured generations (it needs at least \
             two): run more dmc.generations"
                .into(),
        );
    }
    for w in &warnings {
        console.warn(w);
    }
    if !warnings.is_empty() {
        result["warning"] = json!(warnings.join("; "));
    }
    if let Some(r) = &reference {
        let (line, comparison) = r.compare(o.energy, o.error);
        console.line(&line);
        result["reference"] = comparison;
    }
    out.write("dmc.csv", csv(rows).as_bytes())?;
    let series: Vec<(f64, &[f64])> = o
        .runs
        .iter()
        .map(|r| (r.time_step, r.series.as_slice()))
        .collect();
    out.write("trace.csv", dmc_trace_csv(&series).as_bytes())?;
    // The figures are written by the writing process alone, as every file.
    if out.is_writable() && !rows.is_empty() {
        plot(rows, reference.as_ref().map(|r| r.energy), out)?;
    }
    if let (true, Some(fit)) = (out.is_writable(), &o.fit) {
        timestep_plot(o, fit, reference.as_ref().map(|r| r.energy), out)?;
    }
    let text = serde_json::to_string_pretty(&result).expect("plain values serialise");
    out.write("result.json", text.as_bytes())?;
    if stopped.is_none() {
        console.line(&format!(
            "DMC in {:.1} s; results in {}",
            o.seconds,
            out.path().display()
        ));
    }
    Ok(())
}

/// result.json of a run whose numbers broke down: status "diverged", the reason, no energy.
pub(super) fn write_failure(
    config: &Config,
    why: &str,
    engine: &str,
    out: &OutputDir,
) -> Result<(), Error> {
    let result = json!({
        "method": "dmc",
        "status": "diverged",
        "reason": why,
        "engine": engine,
        "config": config,
        "provenance": crate::report::provenance(),
    });
    let text = serde_json::to_string_pretty(&result).expect("plain values serialise");
    out.write("result.json", text.as_bytes())
}

/// The console line of one time step's run.
fn run_line(run: &TimeStepRun, config: &Config) -> String {
    format!(
        "DMC energy {:.6} +- {:.6} (tau {}, tau_eff {:.5}; acceptance {:.4}, node crossings \
         {:.2e} per move, weight spread {:.3}; {} walkers, {} generations after {} of \
         equilibration); starting walkers {:.6}",
        run.energy,
        run.error,
        compact(run.time_step),
        run.tau_eff,
        run.acceptance,
        run.node_crossing_rate,
        run.weight_spread,
        config.walkers,
        run.generations.saturating_sub(config.dmc.equilibration),
        config.dmc.equilibration,
        run.start_energy
    )
}

/// One time step's run in result.json.
fn run_json(run: &TimeStepRun) -> Value {
    json!({
        "time_step": run.time_step,
        "energy": run.energy,
        "error": run.error,
        "tau_eff": run.tau_eff,
        "acceptance": run.acceptance,
        "node_crossing_rate": run.node_crossing_rate,
        "weight_spread": run.weight_spread,
        "clamped_rate": run.clamped_rate,
        "start_energy": run.start_energy,
        "generations_done": run.generations,
    })
}

fn extend(target: &mut Value, fields: Value) {
    if let (Value::Object(t), Value::Object(f)) = (target, fields) {
        t.extend(f);
    }
}

/// "E0 + c1 tau (+ c2 tau^2)" with the fitted numbers.
fn fit_formula(fit: &Fit) -> String {
    let c = &fit.coefficients;
    let mut text = format!("{:.6} {:+.4} tau", c[0], c[1]);
    if let Some(c2) = c.get(2) {
        text += &format!(" {c2:+.3} tau^2");
    }
    text
}

/// timestep.svg: each time step's energy with its error bar, the fit, and E0 at tau = 0.
fn timestep_plot(
    o: &DmcOutcome,
    fit: &Fit,
    reference: Option<f64>,
    out: &OutputDir,
) -> Result<(), Error> {
    let mut measured = Series::new(
        "DMC at each time step",
        o.runs.iter().map(|r| (r.time_step, r.energy)).collect(),
    );
    measured.bars = Some(
        o.runs
            .iter()
            .map(|r| (r.energy - r.error, r.energy + r.error))
            .collect(),
    );
    let top = o.runs.iter().map(|r| r.time_step).fold(0.0, f64::max);
    let curve = (0..=50)
        .map(|i| {
            let tau = top * i as f64 / 50.0;
            (tau, fit.at(tau))
        })
        .collect();
    let mut extrapolated = Series::new(format!("fit {}", fit_formula(fit)), curve);
    extrapolated.bars = None;
    let mut zero = Series::new("extrapolated E0 +- error", vec![(0.0, o.energy)]);
    zero.bars = Some(vec![(o.energy - o.error, o.energy + o.error)]);
    let mut series = vec![measured, extrapolated, zero];
    if let Some(energy) = reference {
        let mut line = Series::new("reference", vec![(0.0, energy), (top, energy)]);
        line.reference = true;
        series.push(line);
    }
    let axes = Axes {
        title: "Diffusion Monte Carlo: time-step extrapolation",
        x: "time step tau (natural units)",
        y: "energy (natural units)",
        log_x: false,
        log_y: false,
    };
    line_plot(&out.file("timestep.svg"), &axes, &series)
}

/// dmc.svg: the block energies and the running mean with its error band, per time step, and
/// the reference.
fn plot(rows: &[DmcRow], reference: Option<f64>, out: &OutputDir) -> Result<(), Error> {
    let mut series = Vec::new();
    let mut taus: Vec<f64> = rows.iter().map(|r| r.time_step).collect();
    taus.dedup();
    for tau in &taus {
        let mine: Vec<&DmcRow> = rows.iter().filter(|r| r.time_step == *tau).collect();
        let label = |what: &str| match taus.len() {
            1 => what.to_string(),
            _ => format!("{what}, tau {}", compact(*tau)),
        };
        let at = |f: fn(&DmcRow) -> f64| -> Vec<(f64, f64)> {
            mine.iter().map(|r| (r.generation as f64, f(r))).collect()
        };
        series.push(Series::new(label("block energy"), at(|r| r.energy)));
        let mut mean = Series::new(label("running mean +- error"), at(|r| r.mean));
        mean.bars = Some(
            mine.iter()
                .map(|r| {
                    let e = if r.error.is_finite() { r.error } else { 0.0 };
                    (r.mean - e, r.mean + e)
                })
                .collect(),
        );
        series.push(mean);
    }
    if let Some(energy) = reference {
        let last = rows.iter().map(|r| r.generation).max().unwrap_or(1) as f64;
        let mut line = Series::new("reference", vec![(0.0, energy), (last, energy)]);
        line.reference = true;
        series.push(line);
    }
    let axes = Axes {
        title: "Diffusion Monte Carlo: energy per block of generations",
        x: "generation",
        y: "energy (natural units)",
        log_x: false,
        log_y: false,
    };
    line_plot(&out.file("dmc.svg"), &axes, &series)
}
