//! `rbm-vmc bench`: throughput of each engine over a ladder of walker counts, the GPU/CPU
//! ratios, and a check that the engines agree on the energy, written as a table, JSON, CSV
//! and a log-log plot.

mod grid;
mod measure;
mod output;

pub use grid::{BenchOptions, EngineRequest};
pub use measure::{Agreement, Point};

use crate::config::Config;
use crate::driver::{Context, initial_params};
use crate::error::Error;
use crate::report::OutputDir;

use grid::{Candidate, candidates};
use measure::{agreement, allreduce_seconds, compare_with_one_process, measure};
use output::{Findings, table_header, table_row, write_outputs};

/// Runs the benchmark and writes `bench.json`, `bench.csv` and `throughput.svg`. Fails (after
/// writing everything) when the engines disagree on the energy.
pub fn bench(
    config: &Config,
    options: &BenchOptions,
    out: &OutputDir,
    ctx: &Context,
) -> Result<Vec<Point>, Error> {
    options.validate()?;
    let (team, console) = (&ctx.team, &ctx.console);
    let (candidates, adapters) = candidates(&options.engines, team.as_ref())?;
    let params = initial_params(config)?;
    let mut points: Vec<Point> = Vec::new();
    let mut notes = Vec::new();
    let total = (candidates.len() * options.walkers.len()) as u64;
    let bar = console.bar("bench", total, "points");
    bar.line(&table_header(team.size()));
    let mut stopped = None;
    'engines: for candidate in &candidates {
        for (i, &walkers) in options.walkers.iter().enumerate() {
            stopped = ctx.stop_reason();
            if stopped.is_some() {
                break 'engines;
            }
            let config = candidate.config(config, walkers);
            let measured = match candidate.build(&config, walkers, team)? {
                Ok(mut engine) => measure(
                    engine.as_mut(),
                    &candidate.label,
                    &config,
                    &params,
                    options,
                    team.as_ref(),
                )?,
                Err(why) => Err(why),
            };
            match measured {
                Ok(mut point) => {
                    if team.size() > 1 {
                        compare_with_one_process(
                            &mut point,
                            candidate,
                            &config,
                            &params,
                            options,
                            team.as_ref(),
                        )?;
                    }
                    point.ratio_to_cpu = cpu_reference(&points, &candidates, walkers)
                        .map(|cpu| point.walker_steps_per_s / cpu);
                    bar.line(&table_row(&point));
                    points.push(point);
                    bar.inc(1);
                }
                Err(why) => {
                    let note = format!("{}: stopped at {walkers} walkers: {why}", candidate.label);
                    bar.line(&note);
                    notes.push(note);
                    bar.inc((options.walkers.len() - i) as u64);
                    break;
                }
            }
        }
    }
    bar.finish();
    // Ratios of points measured before their CPU reference (engines listed before `cpu`),
    // printed now so that the console shows what bench.csv holds.
    for i in 0..points.len() {
        if points[i].ratio_to_cpu.is_none() {
            let cpu = cpu_reference(&points, &candidates, points[i].walkers);
            points[i].ratio_to_cpu = cpu.map(|c| points[i].walker_steps_per_s / c);
            if let Some(ratio) = points[i].ratio_to_cpu {
                console.line(&format!(
                    "{} at {} walkers: {ratio:.2} x the CPU",
                    points[i].engine, points[i].walkers
                ));
            }
        }
    }
    let allreduce = (team.size() > 1).then(|| allreduce_seconds(config, team.as_ref()));
    if let Some(seconds) = allreduce {
        console.line(&format!(
            "all-reduce of one iteration's sums over {} processes: {:.3e} s",
            team.size(),
            seconds
        ));
    }

    let stopped = stopped.or_else(|| ctx.stop_reason());
    let agreement = match stopped {
        Some(_) => Vec::new(),
        None => agreement(&candidates, config, &params, ctx)?,
    };
    if out.is_writable() {
        let findings = Findings {
            points: &points,
            agreement: &agreement,
            notes: &notes,
            allreduce_seconds: allreduce,
        };
        write_outputs(config, &candidates, &adapters, &findings, out)?;
    }
    let worst = agreement.iter().map(|a| a.sigmas.abs()).fold(0.0, f64::max);
    for a in &agreement {
        console.line(&format!(
            "agreement: {:<52} E = {:.6} +- {:.6} ({:+.1} sigma)",
            a.engine, a.energy, a.error, a.sigmas
        ));
    }
    console.line(&format!("results in {}", out.path().display()));
    if let Some(reason) = stopped {
        return Err(Error::Interrupted(format!(
            "{reason}: bench stopped after {} of {total} points, before the agreement check; \
             the points measured are in {}",
            points.len(),
            out.path().display()
        )));
    }
    if let Some(a) = agreement
        .iter()
        .find(|a| !(a.energy.is_finite() && a.error.is_finite()))
    {
        return Err(Error::Diverged(format!(
            "{} measured E = {} +- {} at the config's parameters: the energy is not finite, so \
             neither the throughput nor the agreement means anything; check the system and \
             wave function settings with `rbm-vmc sample`",
            a.engine, a.energy, a.error
        )));
    }
    if worst > 4.0 || agreement.iter().any(|a| a.sigmas.is_nan()) {
        return Err(Error::engine(format!(
            "the engines DISAGREE on the energy at fixed parameters ({worst:.1} combined sigma \
             > 4): see the agreement lines above and bench.json"
        )));
    }
    Ok(points)
}

/// Walker-steps/s of the all-thread CPU engine at `walkers`, if it was measured.
fn cpu_reference(points: &[Point], candidates: &[Candidate], walkers: u32) -> Option<f64> {
    let label = candidates
        .iter()
        .find(|c| c.request == EngineRequest::Cpu { threads: 0 })?
        .label
        .clone();
    points
        .iter()
        .find(|p| p.engine == label && p.walkers == walkers)
        .map(|p| p.walker_steps_per_s)
}
