//! How a run ends: its status, and what it prints and writes into `result.json`.

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::control::StopReason;
use crate::error::Error;
use crate::optimiser::StepReport;
use crate::report::{
    Console, OutputDir, observables_json, observables_lines, params_checksum, write_observables,
};
use crate::stats::Estimate;

use super::Outcome;
use super::tune::SamplingNotes;

/// How a run ended. In result.json: `"status"` (`"completed"`, `"stopped"` or `"diverged"`),
/// with a `"reason"` for the last two.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    /// Stopped early, resumably.
    Stopped(StopReason),
    /// The numbers broke down: where, and how.
    Diverged(String),
}

/// The console line of one optimisation iteration.
pub(super) fn iteration_line(
    it: u32,
    e: &Estimate,
    step: &StepReport,
    warning: Option<&str>,
) -> String {
    format!(
        "iter {it:>5}  E = {:>10.6} +- {:.6} (blocking {:.6}, walkers {:.6})  var {:>9.3e}  acc \
         {:.3}  |grad| {:.3e}  |step| {:.3e}{}{}{}",
        e.energy,
        e.error,
        e.error_blocking,
        e.error_walkers,
        e.variance,
        e.acceptance,
        e.gradient_norm(),
        step.norm,
        step.condition
            .map_or(String::new(), |c| format!("  cond(S) {c:.2e}")),
        if e.resets > 0 {
            format!("  resets {}", e.resets)
        } else {
            String::new()
        },
        warning.map_or(String::new(), |w| format!("  WARNING: {w}"))
    )
}

/// Prints the production result and writes `result.json` (`status` says whether the run
/// completed, stopped early or diverged, `reason` why; a diverged run holds no energy).
pub(super) fn report_result(
    config: &Config,
    outcome: &Outcome,
    status: &RunStatus,
    notes: &SamplingNotes,
    out: &OutputDir,
    console: &Console,
) -> Result<(), Error> {
    let reference = config.reference();
    let mut result = serde_json::to_value(status).expect("plain values");
    extend(
        &mut result,
        json!({
            "engine": outcome.engine,
            "seconds": outcome.seconds,
            "iterations": outcome.iterations,
            "config": config,
            "provenance": crate::report::provenance(),
        }),
    );
    if let Some(tuned) = &notes.tuned {
        result["tuned"] = json!(tuned);
    }
    if let Some(e) = &outcome.production {
        console.line(&e.to_string());
        if let Some(r) = notes.r_hat.filter(|r| r.is_finite()) {
            console.line(&format!(
                "R-hat {r:.4} (Gelman-Rubin over the walkers as chains; near 1 when they mix)"
            ));
            result["r_hat"] = json!(r);
        }
        extend(
            &mut result,
            serde_json::to_value(e.summary()).expect("plain values"),
        );
        extend(
            &mut result,
            json!({
                "samples": e.samples,
                "resets": e.resets,
                "gradient": e.gradient,
                "params_checksum": params_checksum(&outcome.params),
            }),
        );
        if let Some(o) = &outcome.observables {
            for line in observables_lines(o) {
                console.line(&line);
            }
            write_observables(o, &config.system(), out)?;
            result["observables"] = observables_json(o);
        }
        if let Some(w) = &outcome.warning {
            result["warning"] = json!(w);
        }
        if let Some(r) = &reference {
            let (line, comparison) = r.compare(e.energy, e.error);
            console.line(&line);
            result["reference"] = comparison;
        }
    }
    if *status == RunStatus::Completed {
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
    }
    let text = serde_json::to_string_pretty(&result).expect("plain values serialise");
    out.write("result.json", text.as_bytes())
}

fn extend(target: &mut Value, fields: Value) {
    if let (Value::Object(t), Value::Object(f)) = (target, fields) {
        t.extend(f);
    }
}
