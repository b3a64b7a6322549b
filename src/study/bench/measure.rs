//! Timing one point (engine, walker count) and the engines' agreement on the energy.

use std::time::Instant;

use serde::Serialize;

use crate::config::Config;
use crate::driver::Context;
use crate::engine::{Engine, Measure};
use crate::error::Error;
use crate::optimiser::Optimiser;
use crate::physics::Params;
use crate::stats::Estimate;
use crate::team::{Team, solo};

use super::grid::{BenchOptions, Candidate};

/// One measured point.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub engine: String,
    pub walkers: u32,
    /// Monte Carlo steps per walker in each timed repeat.
    pub steps: u32,
    pub repeats: usize,
    /// Median, lowest and highest walker-steps per second over the repeats.
    pub walker_steps_per_s: f64,
    pub walker_steps_per_s_min: f64,
    pub walker_steps_per_s_max: f64,
    /// Measurements (samples of E_L and the O_i) per second: walker-steps / measure_every.
    pub samples_per_s: f64,
    /// Median wall time of one repeat: sampling, readback, estimate and parameter update.
    pub iteration_seconds: f64,
    /// Median GPU time of the walk kernels of one repeat (timestamp queries).
    pub kernel_seconds: Option<f64>,
    /// Walker-steps/s over the all-thread CPU engine's at the same walker count.
    pub ratio_to_cpu: Option<f64>,
    /// Processes the walkers were split over.
    pub processes: usize,
    /// With several processes: walker-steps/s of one process alone with all the walkers, and
    /// the parallel efficiency (strong scaling) rate / (processes x that).
    pub one_process_walker_steps_per_s: Option<f64>,
    pub efficiency: Option<f64>,
}

/// One engine's energy at fixed parameters, for the agreement check.
#[derive(Clone, Debug, Serialize)]
pub struct Agreement {
    pub engine: String,
    pub energy: f64,
    pub error: f64,
    /// (E - E_first) / combined error, against the first engine.
    pub sigmas: f64,
}

/// Measures one point on `engine`; `Ok(Err(reason))` when this and larger walker counts are
/// out of the time budget.
pub(super) fn measure(
    engine: &mut dyn Engine,
    label: &str,
    config: &Config,
    params: &Params,
    options: &BenchOptions,
    team: &dyn Team,
) -> Result<Result<Point, String>, Error> {
    let walkers = config.walkers as f64;
    let every = config.sampler.measure_every;
    // Warm-up (shader compilation at the first dispatch, caches), then a first probe.
    engine.sample(params, every, Measure::Energy, &())?;
    let start = Instant::now();
    engine.sample(params, every, Measure::Energy, &())?;
    let rate = walkers * every as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let per_repeat = options.seconds / (options.repeats as f64 + 1.0);
    // Decisions taken from timings are the first process's, so that processes sharing the
    // engine take the same ones.
    if team.from_root(|| walkers * every as f64 / rate > per_repeat) {
        return Ok(Err(format!(
            "one measurement interval took longer than the {per_repeat:.2} s a repeat may take \
             (--seconds {} over {} repeats)",
            options.seconds, options.repeats
        )));
    }
    // A second probe near the repeat length refines the rate (the warm-up pays one-off costs).
    let steps_for = |rate: f64| {
        let wanted = (per_repeat * rate / walkers) as u32;
        (wanted.min(config.steps_per_iteration) / every).max(1) * every
    };
    let probe = team.from_root(|| steps_for(rate));
    let start = Instant::now();
    engine.sample(params, probe, Measure::Energy, &())?;
    let rate = walkers * probe as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let steps = team.from_root(|| steps_for(rate));
    let mut optimiser = Optimiser::new(&config.optimiser, params.theta().len());
    let wf = &config.wavefunction();
    let mut theta = params.clone();
    let mut seconds = Vec::with_capacity(options.repeats);
    let mut kernel = Vec::new();
    for _ in 0..options.repeats {
        let start = Instant::now();
        let moments = engine.sample(&theta, steps, optimiser.measure(), &())?;
        let estimate = Estimate::from_moments(&moments);
        // The update (SR's solve included) is part of an iteration's cost; restore so every
        // repeat is alike.
        optimiser.step(wf, &mut theta, &estimate.gradient, moments.metric.as_ref())?;
        seconds.push(start.elapsed().as_secs_f64());
        theta = params.clone();
        kernel.extend(engine.kernel_seconds());
    }
    let work = walkers * steps as f64;
    let mut rates: Vec<f64> = seconds.iter().map(|s| work / s).collect();
    rates.sort_by(f64::total_cmp);
    Ok(Ok(Point {
        engine: label.to_string(),
        walkers: config.walkers,
        steps,
        repeats: options.repeats,
        walker_steps_per_s: median(&rates),
        walker_steps_per_s_min: rates[0],
        walker_steps_per_s_max: rates[rates.len() - 1],
        samples_per_s: median(&rates) / every as f64,
        iteration_seconds: median(&seconds),
        kernel_seconds: (!kernel.is_empty()).then(|| median(&kernel)),
        ratio_to_cpu: None,
        processes: team.size(),
        one_process_walker_steps_per_s: None,
        efficiency: None,
    }))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The first process alone measures the same point with every walker (the others wait), for
/// the parallel efficiency.
pub(super) fn compare_with_one_process(
    point: &mut Point,
    candidate: &Candidate,
    config: &Config,
    params: &Params,
    options: &BenchOptions,
    team: &dyn Team,
) -> Result<(), Error> {
    let (_, rate) = team.from_root_work(
        || {
            let alone = solo();
            let Ok(mut engine) = candidate.build(config, config.walkers, &alone)? else {
                return Ok(None);
            };
            let label = &candidate.label;
            let point = measure(
                engine.as_mut(),
                label,
                config,
                params,
                options,
                alone.as_ref(),
            )?;
            Ok(point.ok().map(|p| p.walker_steps_per_s))
        },
        |rate| *rate,
    )?;
    if let Some(rate) = rate {
        point.one_process_walker_steps_per_s = Some(rate);
        point.efficiency = Some(point.walker_steps_per_s / (team.size() as f64 * rate));
    }
    Ok(())
}

/// Seconds per all-reduce of one iteration's sums (the `Moments` of `steps_per_iteration`
/// steps), the median of 50.
pub(super) fn allreduce_seconds(config: &Config, team: &dyn Team) -> f64 {
    let m = config.system().coordinates();
    let n = config.wavefunction.hidden;
    let len = 10 + 2 * (m + n + m * n) + config.measurements(config.steps_per_iteration) as usize;
    let mut values = vec![1.0; len];
    let mut times: Vec<f64> = (0..50)
        .map(|_| {
            let start = Instant::now();
            team.sum(&mut values);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Every engine measures the energy at the same fixed parameters with its own seed; each is
/// compared with the first engine.
pub(super) fn agreement(
    candidates: &[Candidate],
    config: &Config,
    params: &Params,
    ctx: &Context,
) -> Result<Vec<Agreement>, Error> {
    let bar = ctx
        .console
        .bar("agreement", candidates.len() as u64, "engines");
    let mut out: Vec<Agreement> = Vec::new();
    for (i, candidate) in candidates.iter().enumerate() {
        let config = Config {
            seed: config.seed.wrapping_add(1 + i as u64),
            ..config.clone()
        };
        let walkers = config.walkers.clamp(256, 4096);
        let mut engine = candidate
            .build(&config, walkers, &ctx.team)?
            .map_err(|why| Error::engine(format!("{}: {why}", candidate.label)))?;
        engine.sample(
            params,
            config.sampler.thermalisation.max(100),
            Measure::Nothing,
            &(),
        )?;
        let steps = (2000 / config.sampler.measure_every).max(2) * config.sampler.measure_every;
        let e = Estimate::from_moments(&engine.sample(params, steps, Measure::Energy, &())?);
        let sigmas = match out.first() {
            Some(first) => {
                (e.energy - first.energy) / (e.error.powi(2) + first.error.powi(2)).sqrt()
            }
            None => 0.0,
        };
        out.push(Agreement {
            engine: candidate.label.clone(),
            energy: e.energy,
            error: e.error,
            sigmas,
        });
        bar.inc(1);
    }
    bar.finish();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
