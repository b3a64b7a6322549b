//! The `run` and `sample` procedures: thermalise, optimise (with checkpoints, early stops and
//! checks that the numbers have not broken down), measure, check the result, and write the
//! results. Only `Engine` and `Moments` are seen here, so every engine runs the same
//! procedure.

mod build;
mod calibration;
mod checks;
mod endings;
mod result;
mod session;
mod tune;

use std::path::Path;
use std::rc::Rc;

use serde_json::Value;

use crate::checkpoint::{RunState, read_checkpoint};
use crate::config::{Config, EngineChoice};
use crate::control::{Control, StopReason};
use crate::engine::{CpuEngine, Engine, EngineSpec, check_host_memory};
use crate::error::Error;
use crate::optimiser::Optimiser;
use crate::physics::{Params, Wavefunction};
use crate::report::{Console, OutputDir, read_params, read_text};
use crate::stats::{Estimate, Observed};
use crate::team::{Team, solo};

pub use build::{Built, build_engine, check_gpu_fits, cpu_engine, gpu_adapter};
pub use calibration::{Calibration, PhaseCost, calibrate, run_config};
pub use result::RunStatus;
use session::Session;
pub use tune::target_acceptance;

/// The starting parameters: the config's parameters file, or random ones from the seed
/// (with the initial Jastrow parameters and width).
pub fn initial_params(config: &Config) -> Result<Params, Error> {
    let wf = config.wavefunction();
    let jastrow = initial_jastrow(config, &wf);
    match &config.wavefunction.params {
        Some(path) => read_params(path, &wf, &config.system(), &jastrow),
        None => Ok(Params::initial(
            wf.layout,
            config.wavefunction.init_scale,
            config.seed,
            &jastrow,
            wf.rbm.sigma,
        )),
    }
}

/// The Jastrow factor's starting parameters (none without the factor).
fn initial_jastrow(config: &Config, wf: &Wavefunction) -> Vec<f64> {
    let beta = config.wavefunction.jastrow_beta;
    wf.jastrow.as_ref().map_or(vec![], |j| j.initial(beta))
}

/// Where a run reports, when it must stop, and which processes share it.
#[derive(Clone)]
pub struct Context {
    pub console: Console,
    pub control: Control,
    pub team: Rc<dyn Team>,
}

impl Context {
    /// One process; quiet or not; never stopped early.
    pub fn solo(quiet: bool) -> Self {
        Self {
            console: Console::new(quiet),
            control: Control::none(),
            team: solo(),
        }
    }

    /// Why to stop now, agreed by every process: if any must stop, all do.
    pub(crate) fn stop_reason(&self) -> Option<StopReason> {
        let local = self.control.reason();
        self.team
            .any(local.is_some())
            .then(|| local.unwrap_or(StopReason::AnotherProcess))
    }
}

/// What a run will need, worked out before any work starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub walkers: u32,
    pub coordinates: usize,
    pub parameters: usize,
    /// Every Monte Carlo step of every walker: thermalisation, iterations, production.
    pub walker_steps: u128,
    /// Host memory of the run's large allocations (engine, series, checkpoints), bytes.
    pub host_bytes: u64,
    /// The engine `host_bytes` is for: "cpu", "gpu", or "cpu or gpu" (auto: the larger).
    pub engine: &'static str,
}

/// What the cost of a walker-step depends on: the config without the settings that only
/// change the numbers (seed, omega, widths, step sizes, optimiser) or the number of steps,
/// with the walkers as many as `calibrate` takes (which the shape then keeps). Configs of one shape calibrate alike, so a
/// sweep calibrates each shape once.
pub fn cost_shape(config: &Config) -> String {
    let mut shape = config.clone();
    shape.walkers = shape.walkers.min(calibration::MAX_WALKERS);
    shape.seed = 0;
    shape.system.omega = 1.0;
    shape.wavefunction.sigma = crate::config::AutoValue::Auto;
    shape.wavefunction.params = None;
    shape.wavefunction.init_scale = 0.0;
    shape.wavefunction.jastrow_beta = 0.0;
    shape.sampler.step = crate::config::AutoValue::Auto;
    shape.sampler.dt = crate::config::AutoValue::Auto;
    shape.sampler.thermalisation = 0;
    shape.steps_per_iteration = 1;
    shape.production.steps = 0;
    // What an iteration and production measure stays: SR's metric, the observables.
    shape.optimiser = crate::config::OptimiserConfig {
        kind: config.optimiser.kind,
        metric_samples: config.optimiser.metric_samples,
        ..Default::default()
    };
    shape.checkpoint_every = 0;
    shape.observables = crate::config::ObservablesConfig {
        enabled: config.observables.enabled,
        ..Default::default()
    };
    shape.dmc = Default::default();
    shape.reference = None;
    serde_json::to_string(&shape).expect("configs serialise")
}

/// Validates what the config refers to (the parameters file) and refuses sizes that would not
/// fit in this machine's memory, before any work: `rbm-vmc check`, and the start of every run.
pub fn plan(config: &Config) -> Result<Plan, Error> {
    initial_params(config)?;
    let spec = EngineSpec::from_config(config);
    let walkers = config.walkers;
    let (w, m) = (walkers as u64, spec.coordinates() as u64);
    let parameters = spec.parameters();
    let longest = config.steps_per_iteration.max(config.production.steps);
    let measurements = (longest / config.sampler.measure_every) as u64;
    let cpu = CpuEngine::host_bytes(&spec, config.threads, longest);
    // The GPU engine's initial positions (f32 and f64), a call's sums and its series.
    let gpu = w * m * 12 + 2 * (2 * parameters as u64 + measurements) * 8;
    let (engine_bytes, engine) = match config.engine {
        EngineChoice::Cpu => (cpu, "cpu"),
        EngineChoice::Gpu => (gpu, "gpu"),
        EngineChoice::Auto => (cpu.max(gpu), "cpu or gpu"),
    };
    // Any engine: a checkpoint's walker state and file, and the blocking analysis's copies of
    // the series.
    let host_bytes = engine_bytes + 2 * w * m * 8 + 3 * measurements * 8 + metric_bytes(config);
    check_host_memory(
        host_bytes,
        &format!(
            "{walkers} walkers with {parameters} parameters and a series of {measurements} \
             measurements ({engine} engine)"
        ),
        "use fewer walkers or hidden units, or fewer steps per call (steps_per_iteration, \
         production.steps)",
    )?;
    let steps = config.sampler.thermalisation as u128
        + config.optimiser.iterations as u128 * config.steps_per_iteration as u128
        + config.production.steps as u128;
    Ok(Plan {
        walkers,
        coordinates: m as usize,
        parameters,
        walker_steps: steps * walkers as u128,
        host_bytes,
        engine,
    })
}

/// Host memory of SR's metric: the O rows of the subset (f64, fewer than 2 x metric_samples of
/// them, held by the CPU engine) and a few K x K sums (the metric, S, its Cholesky factor).
fn metric_bytes(config: &Config) -> u64 {
    if config.optimiser.kind != crate::config::OptimiserKind::Sr {
        return 0;
    }
    let k = config.wavefunction().parameters() as u64;
    2 * config.optimiser.metric_samples as u64 * k * 8 + 4 * k * k * 8
}

/// What `run` and `sample` found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub params: Params,
    /// Optimisation iterations done (over every session of a resumed run).
    pub iterations: u32,
    /// The final measurement (absent when `production.steps` is 0).
    pub production: Option<Estimate>,
    /// What makes the final measurement doubtful (frozen sampling), if anything.
    pub warning: Option<String>,
    /// The final measurement's observables beyond the energy (`observables.enabled`).
    pub observables: Option<Observed>,
    pub engine: String,
    pub seconds: f64,
}

/// The engine the config asks for, with the choice and its reason on the console.
fn chosen_engine(config: &Config, ctx: &Context) -> Result<Box<dyn Engine>, Error> {
    let built = build_engine(config, &ctx.team)?;
    ctx.console.line(&format!("engine: {}", built.choice));
    Ok(built.engine)
}

fn warn_physics(config: &Config, console: &Console) {
    for w in config.physics_warnings() {
        console.warn(&w);
    }
}

/// `rbm-vmc run`: optimise the parameters, then measure the energy with them; checkpoints
/// every `checkpoint_every` iterations, and stops early (resumably) when `control` says so.
pub fn run(config: &Config, out: &OutputDir, ctx: &Context) -> Result<Outcome, Error> {
    plan(config)?;
    warn_physics(config, &ctx.console);
    let engine = chosen_engine(config, ctx)?;
    run_on(engine, config, out, ctx)
}

/// `run` on an engine built by the caller (for `spec` = the config's); an "auto" step size
/// replaces it by one built from the config once tuned.
pub fn run_on(
    engine: Box<dyn Engine>,
    config: &Config,
    out: &OutputDir,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let run = RunState::start(config, initial_params(config)?);
    let optimiser = Optimiser::new(&config.optimiser, run.params.theta().len());
    Session::optimising(run, optimiser, None, engine, out, ctx)
        .complete(config.sampler.thermalisation)
}

/// `rbm-vmc run --resume DIR`: continues from the checkpoint in `out`, optionally on another
/// engine (`engine`, `threads`, `adapter` are the only settings a resume may change).
pub fn resume(
    out: &OutputDir,
    engine: Option<EngineChoice>,
    threads: Option<usize>,
    adapter: Option<String>,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let (checkpoint, state) = read_checkpoint(out.path())?;
    let finished = read_text(&out.file("result.json"), "result")
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|r| r["status"] == "completed");
    if finished {
        return Err(Error::input(format!(
            "the run in {} is complete (result.json); there is nothing to resume",
            out.path().display()
        )));
    }
    let mut config = checkpoint.config.clone();
    config.engine = engine.unwrap_or(config.engine);
    config.threads = threads.unwrap_or(config.threads);
    if adapter.is_some() {
        config.gpu.adapter = adapter;
    }
    config.validate()?;
    let mut engine = chosen_engine(&config, ctx)?;
    engine.set_state(&state)?;
    // A stop during thermalisation left the rest of it to do (checked when read).
    let thermalisation = if checkpoint.iteration == 0 {
        config.sampler.thermalisation - state.steps_done as u32
    } else {
        0
    };
    ctx.console.line(&if thermalisation > 0 {
        format!(
            "resuming thermalisation ({thermalisation} of {} steps left) from {}",
            config.sampler.thermalisation,
            out.path().display()
        )
    } else {
        format!(
            "resuming after iteration {} of {} from {}",
            checkpoint.iteration,
            config.optimiser.iterations,
            out.path().display()
        )
    });
    let run = RunState {
        config,
        ..checkpoint.run_state()
    };
    let checkpointed = Some(checkpoint.iteration);
    Session::optimising(run, checkpoint.optimiser, checkpointed, engine, out, ctx)
        .complete(thermalisation)
}

/// The parameters a measurement at fixed parameters takes: `params_file`'s, else the
/// config's initial ones.
pub fn measured_params(config: &Config, params_file: Option<&Path>) -> Result<Params, Error> {
    match params_file {
        Some(path) => {
            let wf = config.wavefunction();
            read_params(path, &wf, &config.system(), &initial_jastrow(config, &wf))
        }
        None => initial_params(config),
    }
}

/// `rbm-vmc sample`: measure the energy at fixed parameters (from `params_file`, else the
/// config's initial ones) over `production.steps` steps.
pub fn sample(
    config: &Config,
    params_file: Option<&Path>,
    out: &OutputDir,
    ctx: &Context,
) -> Result<Outcome, Error> {
    if config.production.steps == 0 {
        return Err(Error::input(
            "config: `production.steps` = 0: `sample` measures over production.steps steps; \
             set it to at least sampler.measure_every",
        ));
    }
    plan(config)?;
    warn_physics(config, &ctx.console);
    let params = measured_params(config, params_file)?;
    let engine = chosen_engine(config, ctx)?;
    Session::sampling(RunState::start(config, params), engine, out, ctx)
        .complete(config.sampler.thermalisation)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep over omega, seeds or step counts calibrates once; over particles, samplers or
    /// walker counts up to the calibration's, once per value.
    #[test]
    fn configs_that_cost_alike_share_a_shape() {
        let load = |set: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            cost_shape(&Config::load(None, &set).unwrap())
        };
        let base = load(&[]);
        for alike in [
            &["system.omega=0.1", "seed=7"][..],
            &["production.steps=77", "optimiser.learning_rate=0.3"],
            &["sampler.dt=0.2", "wavefunction.sigma=0.5"],
            &["steps_per_iteration=20", "checkpoint_every=3"],
        ] {
            assert_eq!(load(alike), base, "{alike:?}");
        }
        assert_eq!(load(&["walkers=30000"]), load(&["walkers=20000"]));
        for different in [
            &["system.particles=3"][..],
            &["optimiser.kind=sr"],
            &["observables.enabled=false"],
            &["sampler.kind=metropolis"],
            &["walkers=64"],
            &["wavefunction.hidden=4"],
        ] {
            assert_ne!(load(different), base, "{different:?}");
        }
    }
}
