//! `rbm-vmc bench`: throughput of each engine over a ladder of walker counts, the GPU/CPU
//! ratios, and a check that the engines agree on the energy, written as a table, JSON, CSV
//! and a log-log plot.

use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::driver::initial_params;
use std::rc::Rc;

use crate::config::EngineChoice;
use crate::driver::Context;
use crate::engine::gpu::{AdapterSummary, choose};
use crate::engine::{Engine, Measure, build_engine};
use crate::error::Error;
use crate::optimize::Optimiser;
use crate::physics::Params;
use crate::report::{Axes, Console, OutputDir, Series, line_plot};
use crate::stats::Estimate;
use crate::team::{Team, solo};

/// An engine the user asked to benchmark: `cpu` (all threads), `cpu:N`, `gpu` (the adapter
/// `auto` takes, or a CPU implementation such as lavapipe when there is no GPU), `gpu:NAME`.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineRequest {
    Cpu { threads: usize },
    Gpu { adapter: Option<String> },
}

impl FromStr for EngineRequest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (kind, arg) = s.split_once(':').map_or((s, None), |(k, a)| (k, Some(a)));
        match (kind, arg) {
            ("cpu", None) => Ok(Self::Cpu { threads: 0 }),
            ("cpu", Some(n)) => match n.parse::<usize>() {
                Ok(threads) if threads > 0 => Ok(Self::Cpu { threads }),
                _ => Err(Error::input(format!(
                    "--engines: `{s}`: the thread count must be a whole number > 0"
                ))),
            },
            ("gpu", None) => Ok(Self::Gpu { adapter: None }),
            ("gpu", Some(name)) if !name.is_empty() => Ok(Self::Gpu {
                adapter: Some(name.to_string()),
            }),
            _ => Err(Error::input(format!(
                "--engines: `{s}` is not an engine; use cpu, cpu:THREADS, gpu or gpu:ADAPTER"
            ))),
        }
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub walkers: Vec<u32>,
    pub engines: Vec<EngineRequest>,
    /// Time budget per point (seconds); larger walker counts are skipped beyond it.
    pub seconds: f64,
    /// Timed repeats per point.
    pub repeats: usize,
}

impl BenchOptions {
    /// The default ladder: 2^8 .. 2^22 walkers, CPU with 1 thread and all threads, and the GPU.
    pub fn default_ladder() -> Vec<u32> {
        (8..=22).map(|k| 1u32 << k).collect()
    }

    /// Checks the options before anything is created or run.
    pub fn validate(&self) -> Result<(), Error> {
        if self.walkers.is_empty() || self.walkers.contains(&0) {
            return Err(Error::input(
                "--walkers: give one or more walker counts > 0",
            ));
        }
        if self.engines.is_empty() {
            return Err(Error::input("--engines: give at least one engine"));
        }
        if !(self.seconds.is_finite() && self.seconds > 0.0) {
            return Err(Error::input(format!(
                "--seconds {}: must be a number > 0",
                self.seconds
            )));
        }
        if self.repeats == 0 {
            return Err(Error::input("--repeats: must be at least 1"));
        }
        Ok(())
    }

    pub fn default_engines() -> Vec<EngineRequest> {
        vec![
            EngineRequest::Cpu { threads: 1 },
            EngineRequest::Cpu { threads: 0 },
            EngineRequest::Gpu { adapter: None },
        ]
    }
}

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

struct Candidate {
    label: String,
    request: EngineRequest,
}

impl Candidate {
    /// The config that makes `build_engine` build this candidate with `walkers` walkers.
    fn config(&self, base: &Config, walkers: u32) -> Config {
        let mut config = Config {
            walkers,
            ..base.clone()
        };
        match &self.request {
            EngineRequest::Cpu { threads } => {
                config.engine = EngineChoice::Cpu;
                config.threads = *threads;
            }
            EngineRequest::Gpu { adapter } => {
                config.engine = EngineChoice::Gpu;
                config.gpu.adapter = adapter.clone();
            }
        }
        config
    }

    /// The engine over `team` (its walkers split over the processes); `Err(reason)` when it
    /// cannot be built on some process (memory, device limits), agreed by every process.
    fn build(
        &self,
        base: &Config,
        walkers: u32,
        team: &Rc<dyn Team>,
    ) -> Result<Result<Box<dyn Engine>, String>, Error> {
        let built = build_engine(&self.config(base, walkers), &Console::new(true), team);
        let failed = team.any(built.is_err());
        match built {
            Err(Error::Input(why)) => Ok(Err(why)),
            Err(e) => Err(e),
            Ok(_) if failed => Ok(Err("another process could not build it".into())),
            Ok(engine) => Ok(Ok(engine)),
        }
    }
}

fn candidates(
    requests: &[EngineRequest],
    team: &dyn Team,
) -> Result<(Vec<Candidate>, Vec<AdapterSummary>), Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = Vec::new();
    let mut adapters = Vec::new();
    for request in requests {
        match request {
            EngineRequest::Cpu { threads } => {
                let n = if *threads == 0 { cores } else { *threads };
                let plural = if n == 1 { "" } else { "s" };
                out.push(Candidate {
                    label: format!("cpu ({n} thread{plural})"),
                    request: request.clone(),
                });
            }
            EngineRequest::Gpu { adapter } => {
                let nth = team.local_rank();
                let found = match adapter {
                    Some(name) => choose(Some(name), true, nth),
                    None => choose(None, false, nth).or_else(|| choose(None, true, nth)),
                };
                let Some(found) = found else {
                    return Err(Error::input(match adapter {
                        Some(name) => format!(
                            "--engines: no GPU adapter named like `{name}`; `rbm-vmc devices` \
                             lists them"
                        ),
                        None => format!(
                            "--engines: no GPU adapter found: {}",
                            crate::engine::gpu::NO_ADAPTER_HELP
                        ),
                    }));
                };
                let summary = AdapterSummary::of(&found);
                // `build_engine` picks the same adapter by name (the real GPUs first).
                out.push(Candidate {
                    label: format!("gpu: {}", summary.label()),
                    request: EngineRequest::Gpu {
                        adapter: Some(adapter.clone().unwrap_or_else(|| summary.name.clone())),
                    },
                });
                adapters.push(summary);
            }
        }
    }
    Ok((out, adapters))
}

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
    bar.line(&format!(
        "{:<52} {:>9} {:>6} {:>12} {:>23} {:>11} {:>9} {:>9} {:>7}{}",
        "engine",
        "walkers",
        "steps",
        "steps/s",
        "(min .. max)",
        "samples/s",
        "s/repeat",
        "kernel s",
        "vs cpu",
        if team.size() > 1 {
            "  1 process  efficiency"
        } else {
            ""
        }
    ));
    for candidate in &candidates {
        for (i, &walkers) in options.walkers.iter().enumerate() {
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

    let agreement = agreement(&candidates, config, &params, ctx)?;
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
    if worst > 4.0 || agreement.iter().any(|a| a.sigmas.is_nan()) {
        return Err(Error::engine(format!(
            "the engines DISAGREE on the energy at fixed parameters ({worst:.1} combined sigma \
             > 4): see the agreement lines above and bench.json"
        )));
    }
    Ok(points)
}

/// The first process alone measures the same point with every walker (the others wait), for
/// the parallel efficiency.
fn compare_with_one_process(
    point: &mut Point,
    candidate: &Candidate,
    config: &Config,
    params: &Params,
    options: &BenchOptions,
    team: &dyn Team,
) -> Result<(), Error> {
    let mut single = None;
    if team.is_root() {
        let alone = solo();
        if let Ok(mut engine) = candidate.build(config, config.walkers, &alone)? {
            let label = &candidate.label;
            if let Ok(p) = measure(
                engine.as_mut(),
                label,
                config,
                params,
                options,
                alone.as_ref(),
            )? {
                single = Some(p.walker_steps_per_s);
            }
        }
    }
    let shared = team.broadcast(single.unwrap_or(f64::NAN).to_le_bytes().to_vec());
    let rate = f64::from_le_bytes(shared[..8].try_into().expect("8 bytes"));
    if rate.is_finite() {
        point.one_process_walker_steps_per_s = Some(rate);
        point.efficiency = Some(point.walker_steps_per_s / (team.size() as f64 * rate));
    }
    Ok(())
}

/// Seconds per all-reduce of one iteration's sums (the `Moments` of `steps_per_iteration`
/// steps), the median of 50.
fn allreduce_seconds(config: &Config, team: &dyn Team) -> f64 {
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

/// The first process's value, on every process: decisions taken from timings must be the
/// same everywhere when the engine is shared.
fn decided(team: &dyn Team, value: u32) -> u32 {
    let bytes = team.broadcast(value.to_le_bytes().to_vec());
    u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))
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

/// Measures one point on `engine`; `Ok(Err(reason))` when this and larger walker counts are
/// out of the time budget.
fn measure(
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
    if decided(team, (walkers * every as f64 / rate > per_repeat) as u32) == 1 {
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
    let probe = decided(team, steps_for(rate));
    let start = Instant::now();
    engine.sample(params, probe, Measure::Energy, &())?;
    let rate = walkers * probe as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let steps = decided(team, steps_for(rate));
    let mut optimiser = Optimiser::new(&config.optimiser, params.theta().len());
    let mut theta = params.clone();
    let mut seconds = Vec::with_capacity(options.repeats);
    let mut kernel = Vec::new();
    for _ in 0..options.repeats {
        let start = Instant::now();
        let moments = engine.sample(&theta, steps, optimiser.measure(), &())?;
        let estimate = Estimate::from_moments(&moments);
        // The update (SR's solve included) is part of an iteration's cost; restore so every
        // repeat is alike.
        optimiser.step(&mut theta, &estimate.gradient, moments.metric.as_ref())?;
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

fn table_row(p: &Point) -> String {
    let kernel = p.kernel_seconds.map_or("-".into(), |k| format!("{k:.4}"));
    let ratio = p.ratio_to_cpu.map_or("-".into(), |r| format!("{r:.2}"));
    let scaling = match (p.one_process_walker_steps_per_s, p.efficiency) {
        (Some(one), Some(e)) => format!("  {one:>9.3e}  {e:>10.2}"),
        _ => String::new(),
    };
    format!(
        "{:<52} {:>9} {:>6} {:>12.3e} {:>23} {:>11.3e} {:>9.4} {:>9} {:>7}{scaling}",
        p.engine,
        p.walkers,
        p.steps,
        p.walker_steps_per_s,
        format!(
            "({:.2e} .. {:.2e})",
            p.walker_steps_per_s_min, p.walker_steps_per_s_max
        ),
        p.samples_per_s,
        p.iteration_seconds,
        kernel,
        ratio
    )
}

/// Every engine measures the energy at the same fixed parameters with its own seed; each is
/// compared with the first engine.
fn agreement(
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

/// What a bench run found, for its files.
#[derive(Serialize)]
struct Findings<'a> {
    points: &'a [Point],
    agreement: &'a [Agreement],
    notes: &'a [String],
    allreduce_seconds: Option<f64>,
}

fn write_outputs(
    config: &Config,
    candidates: &[Candidate],
    adapters: &[AdapterSummary],
    findings: &Findings,
    out: &OutputDir,
) -> Result<(), Error> {
    let points = findings.points;
    let machine = json!({
        "cpu": crate::report::cpu_model().unwrap_or_else(|| "unknown".into()),
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    let report = json!({
        "machine": machine,
        "adapters": adapters,
        "engines": candidates.iter().map(|c| c.label.clone()).collect::<Vec<_>>(),
        "points": findings.points,
        "agreement": findings.agreement,
        "notes": findings.notes,
        "allreduce_seconds": findings.allreduce_seconds,
        "config": config,
        "provenance": crate::report::provenance(),
    });
    out.write(
        "bench.json",
        serde_json::to_string_pretty(&report)
            .expect("plain values")
            .as_bytes(),
    )?;
    let mut csv = String::from(
        "engine,walkers,steps,repeats,walker_steps_per_s,walker_steps_per_s_min,\
         walker_steps_per_s_max,samples_per_s,iteration_seconds,kernel_seconds,ratio_to_cpu,\
         processes,one_process_walker_steps_per_s,efficiency\n",
    );
    for p in points {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        csv.push_str(&format!(
            "\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            p.engine,
            p.walkers,
            p.steps,
            p.repeats,
            p.walker_steps_per_s,
            p.walker_steps_per_s_min,
            p.walker_steps_per_s_max,
            p.samples_per_s,
            p.iteration_seconds,
            opt(p.kernel_seconds),
            opt(p.ratio_to_cpu),
            p.processes,
            opt(p.one_process_walker_steps_per_s),
            opt(p.efficiency)
        ));
    }
    out.write("bench.csv", csv.as_bytes())?;
    let series: Vec<Series> = candidates
        .iter()
        .map(|c| {
            let pts = points
                .iter()
                .filter(|p| p.engine == c.label)
                .map(|p| (p.walkers as f64, p.walker_steps_per_s))
                .collect();
            Series::new(c.label.clone(), pts)
        })
        .collect();
    line_plot(
        &out.file("throughput.svg"),
        &Axes {
            title: "rbm-vmc throughput",
            x: "walkers",
            y: "walker-steps per second",
            log_x: true,
            log_y: true,
        },
        &series,
    )
}

/// The CPU's model name where the OS tells it.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_requests_parse_and_bad_ones_say_why() {
        assert_eq!(
            "cpu".parse::<EngineRequest>().unwrap(),
            EngineRequest::Cpu { threads: 0 }
        );
        assert_eq!(
            "cpu:1".parse::<EngineRequest>().unwrap(),
            EngineRequest::Cpu { threads: 1 }
        );
        assert_eq!(
            "gpu:nvidia".parse::<EngineRequest>().unwrap(),
            EngineRequest::Gpu {
                adapter: Some("nvidia".into())
            }
        );
        for bad in ["cpu:0", "cpu:x", "tpu", "gpu:"] {
            let err = bad.parse::<EngineRequest>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
