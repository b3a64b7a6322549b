//! What a DMC run writes: dmc.csv (a row per block of generations), dmc.svg (the block
//! energies, the running mean with its error band, the reference) and result.json, and the
//! console lines.

use serde_json::json;

use crate::config::Config;
use crate::control::StopReason;
use crate::error::Error;
use crate::report::{Axes, Console, OutputDir, Series, compact, line_plot, reference_energy};

use super::DmcOutcome;

/// One block of measured generations.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct DmcRow {
    /// The last generation of the block.
    pub generation: u32,
    /// The block's mean energy, and the running estimate after it with its error.
    pub energy: f64,
    pub mean: f64,
    pub error: f64,
    pub trial_energy: f64,
    pub acceptance: f64,
    pub node_crossing_rate: f64,
    pub tau_eff: f64,
}

const CSV_HEADER: &str =
    "generation,energy,mean,error,trial_energy,acceptance,node_crossing_rate,tau_eff";

fn csv(rows: &[DmcRow]) -> String {
    let mut text = format!("{CSV_HEADER}\n");
    for r in rows {
        text += &format!(
            "{},{},{},{},{},{},{},{}\n",
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

/// Prints the result and writes dmc.csv, dmc.svg and result.json (`stopped`: the reason a
/// run ended early, its status then "stopped").
pub(super) fn write_results(
    config: &Config,
    o: &DmcOutcome,
    rows: &[DmcRow],
    stopped: Option<StopReason>,
    out: &OutputDir,
    console: &Console,
) -> Result<(), Error> {
    let reference = reference_energy(&config.system());
    console.line(&format!(
        "DMC energy {:.6} +- {:.6} (tau {}, tau_eff {:.5}; acceptance {:.4}, node crossings \
         {:.2e} per move, weight spread {:.3}; {} walkers, {} generations after {} of \
         equilibration); trial function {:.6}",
        o.energy,
        o.error,
        compact(config.dmc.time_step),
        o.tau_eff,
        o.acceptance,
        o.node_crossing_rate,
        o.weight_spread,
        config.walkers,
        o.generations.saturating_sub(config.dmc.equilibration),
        config.dmc.equilibration,
        o.trial_energy
    ));
    let mut result = json!({
        "method": "dmc",
        "status": if stopped.is_some() { "stopped" } else { "completed" },
        "energy": o.energy,
        "error": o.error,
        "time_step": config.dmc.time_step,
        "tau_eff": o.tau_eff,
        "acceptance": o.acceptance,
        "node_crossing_rate": o.node_crossing_rate,
        "weight_spread": o.weight_spread,
        "trial_energy": o.trial_energy,
        "generations": o.generations,
        "walkers": config.walkers,
        "engine": "cpu",
        "seconds": o.seconds,
        "config": config,
        "provenance": crate::report::provenance(),
    });
    if let Some(reason) = stopped {
        result["reason"] = json!(reason);
    }
    if let Some(r) = &reference {
        let sigmas = (o.energy - r.energy) / o.error;
        console.line(&format!(
            "reference {} ({}): difference {:+.6} = {:+.1} sigma",
            r.energy,
            r.source,
            o.energy - r.energy,
            sigmas
        ));
        result["reference"] = json!({
            "energy": r.energy,
            "source": r.source,
            "exact": r.exact,
            "difference_sigmas": sigmas,
        });
    }
    out.write("dmc.csv", csv(rows).as_bytes())?;
    if !rows.is_empty() {
        plot(rows, reference.as_ref().map(|r| r.energy), out)?;
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

/// dmc.svg: the block energies, the running mean with its error band, the reference.
fn plot(rows: &[DmcRow], reference: Option<f64>, out: &OutputDir) -> Result<(), Error> {
    let at = |f: fn(&DmcRow) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.generation as f64, f(r))).collect()
    };
    let mut blocks = Series::new("block energy", at(|r| r.energy));
    blocks.bars = None;
    let mut mean = Series::new("running mean +- error", at(|r| r.mean));
    mean.bars = Some(
        rows.iter()
            .map(|r| {
                let e = if r.error.is_finite() { r.error } else { 0.0 };
                (r.mean - e, r.mean + e)
            })
            .collect(),
    );
    let mut series = vec![blocks, mean];
    if let Some(energy) = reference {
        let ends = [
            rows[0].generation as f64,
            rows[rows.len() - 1].generation as f64,
        ];
        let mut line = Series::new("reference", ends.iter().map(|&g| (g, energy)).collect());
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
