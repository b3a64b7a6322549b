//! The `run` and `sample` procedures: thermalise, optimise (with checkpoints, early stops and
//! checks that the numbers have not broken down), measure, check the result, and write the
//! results. Only `Engine` and `Moments` are seen here, so every engine runs the same
//! procedure.

use std::path::Path;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::checkpoint::{Checkpoint, Optimisation, read_checkpoint, write_checkpoint};
use crate::checksum::fnv1a;
use crate::config::{Config, EngineChoice};
use crate::control::Control;
use crate::engine::{
    CpuEngine, Engine, EngineSpec, Measure, Moments, Progress, build_engine, check_host_memory,
};
use crate::error::Error;
use crate::optimize::{Optimiser, StepReport};
use crate::physics::Params;
use crate::report::{
    Bar, Console, HistoryWriter, OutputDir, history_row_numbers, observables_json,
    observables_lines, params_to_json, read_params, read_text, reference_energy, write_observables,
};
use crate::sampler::{SamplerKind, Step};
use crate::stats::{Estimate, Observed};
use crate::team::{Team, solo};

/// An estimate more than this many error bars below the system's lower bound is a failure.
const BOUND_SIGMAS: f64 = 5.0;

/// More walker resets than this fraction of the walkers in one call is a failure.
const MAX_RESET_FRACTION: f64 = 0.01;

/// The starting parameters: the config's parameters file, or random ones from the seed
/// (with the initial beta and width).
pub fn initial_params(config: &Config) -> Result<Params, Error> {
    let wf = config.wavefunction();
    let beta = config.wavefunction.jastrow_beta;
    match &config.wavefunction.params {
        Some(path) => read_params(path, &wf, &config.system(), beta),
        None => Ok(Params::initial(
            wf.layout,
            config.wavefunction.init_scale,
            config.seed,
            beta,
            wf.rbm.sigma,
        )),
    }
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
    fn stop_reason(&self) -> Option<&'static str> {
        let local = self.control.reason();
        self.team
            .any(local.is_some())
            .then(|| local.unwrap_or("stopped on another process"))
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

/// Seconds per walker-step of `config` on the CPU engine with its thread setting, measured on
/// at most 64 walkers for about a quarter of a second (with E_L and every O_i measured);
/// `None` for wave functions too large to calibrate quickly.
pub fn calibrate(config: &Config) -> Result<Option<f64>, Error> {
    const MAX_PARAMETERS: usize = 20_000;
    let mut spec = EngineSpec::from_config(config);
    if spec.parameters() > MAX_PARAMETERS {
        return Ok(None);
    }
    spec.walkers = spec.walkers.min(64);
    let mut engine = CpuEngine::new(spec.clone(), config.threads)?;
    let params = initial_params(config)?;
    engine.sample(&params, 10, Measure::Nothing, &())?;
    let (mut steps, mut seconds, mut batch) = (0u64, 0.0, 10u32);
    while seconds < 0.25 {
        let start = Instant::now();
        engine.sample(&params, batch, Measure::Energy, &())?;
        seconds += start.elapsed().as_secs_f64();
        steps += batch as u64;
        batch = batch.saturating_mul(2).min(10_000);
    }
    Ok(Some(seconds / (steps as f64 * spec.walkers as f64)))
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
    let engine = build_engine(config, &ctx.console, &ctx.team)?;
    run_on(engine, config, out, ctx)
}

/// `run` on an engine built by the caller (for `spec` = the config's).
pub fn run_on(
    engine: Box<dyn Engine>,
    config: &Config,
    out: &OutputDir,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let at = fresh(config, initial_params(config)?);
    let session = Session::new(config, out, ctx, engine, new_run_id(config), at, true);
    session.complete(config.sampler.thermalisation)
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
    let mut engine = build_engine(&config, &ctx.console, &ctx.team)?;
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
    let mut session = Session::new(
        &config,
        out,
        ctx,
        engine,
        checkpoint.run_id(),
        checkpoint.optimisation(),
        true,
    );
    session.seconds_before = checkpoint.seconds;
    session.checkpointed = Some(checkpoint.iteration);
    session.complete(thermalisation)
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
    let params = match params_file {
        Some(path) => read_params(
            path,
            &config.wavefunction(),
            &config.system(),
            config.wavefunction.jastrow_beta,
        )?,
        None => initial_params(config)?,
    };
    let engine = build_engine(config, &ctx.console, &ctx.team)?;
    let config = Config {
        optimiser: crate::config::OptimiserConfig {
            iterations: 0,
            ..config.clone().optimiser
        },
        ..config.clone()
    };
    let at = fresh(&config, params);
    let session = Session::new(&config, out, ctx, engine, new_run_id(&config), at, false);
    session.complete(config.sampler.thermalisation)
}

/// The start of an optimisation from `params`.
fn fresh(config: &Config, params: Params) -> Optimisation {
    Optimisation {
        iteration: 0,
        optimiser: Optimiser::new(&config.optimiser, params.theta().len()),
        params,
        previous: None,
        history: Vec::new(),
    }
}

/// A run identity, different for every run started: recorded in its checkpoints and walker
/// files so that another run's walker file is never taken for this one's.
fn new_run_id(config: &Config) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let config = serde_json::to_string(config).expect("plain values");
    fnv1a(format!("{nanos} {} {config}", std::process::id()).as_bytes())
}

/// One process's part of a run.
struct Session<'a> {
    config: &'a Config,
    out: &'a OutputDir,
    ctx: &'a Context,
    engine: Box<dyn Engine>,
    run_id: u64,
    /// Iterations done, parameters (and the previous ones), optimiser, history rows.
    at: Optimisation,
    /// Whether the run keeps checkpoints to resume from (`run`, not `sample`).
    resumable: bool,
    /// Wall time of earlier sessions of this run.
    seconds_before: f64,
    start: Instant,
    /// Iteration of the last checkpoint written (or resumed from).
    checkpointed: Option<u32>,
    /// The lowest iteration energy so far, with its variance.
    best: Option<(f64, f64)>,
    /// Whether the warning about frozen sampling was printed already.
    warned: bool,
    /// The production run's observables beyond the energy.
    observed: Option<Observed>,
}

/// Forwards progress to a bar and cancels the call when the run must stop.
struct Cancellable<'a> {
    bar: &'a Bar,
    control: &'a Control,
}

impl Progress for Cancellable<'_> {
    fn advance(&self, walker_steps: u64) {
        self.bar.inc(walker_steps);
    }

    fn cancelled(&self) -> bool {
        self.control.reason().is_some()
    }
}

impl<'a> Session<'a> {
    fn new(
        config: &'a Config,
        out: &'a OutputDir,
        ctx: &'a Context,
        engine: Box<dyn Engine>,
        run_id: u64,
        at: Optimisation,
        resumable: bool,
    ) -> Self {
        let best = at
            .history
            .iter()
            .enumerate()
            .filter_map(|(i, row)| history_row_numbers(row, i as u32 + 1))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        Self {
            config,
            out,
            ctx,
            engine,
            run_id,
            at,
            resumable,
            seconds_before: 0.0,
            start: Instant::now(),
            checkpointed: None,
            best,
            warned: false,
            observed: None,
        }
    }

    fn seconds(&self) -> f64 {
        self.seconds_before + self.start.elapsed().as_secs_f64()
    }

    /// Thermalises `thermalisation` steps, then does the rest of the run: the remaining
    /// iterations, production, results. Failures say how to continue.
    fn complete(mut self, thermalisation: u32) -> Result<Outcome, Error> {
        let result = self.go(thermalisation);
        result.map_err(|e| match self.resume_hint() {
            Some(hint) => e.with_hint(&hint),
            None => e,
        })
    }

    fn go(&mut self, thermalisation: u32) -> Result<Outcome, Error> {
        if thermalisation > 0 {
            let walkers = self.engine.spec().walkers as u64;
            let bar = self.ctx.console.bar(
                "thermalise",
                walkers * thermalisation as u64,
                "walker-steps",
            );
            self.cancellable_sample(thermalisation, Measure::Nothing, &bar, "thermalisation")?;
        }
        if self.resumable && (thermalisation > 0 || self.checkpointed.is_none()) {
            self.checkpoint()?;
        }
        self.optimise()?;
        let production = self.production()?;
        let warning = production
            .as_ref()
            .and_then(|e| sampling_warning(self.config.sampler.kind, e.acceptance))
            .map(|(_, long)| long);
        if let Some(w) = &warning {
            self.ctx.console.warn(w);
        }
        let outcome = self.outcome(production, warning);
        self.write_params(&self.at.params)?;
        report_result(
            self.config,
            &outcome,
            "completed",
            self.out,
            &self.ctx.console,
        )?;
        Ok(outcome)
    }

    fn outcome(&self, production: Option<Estimate>, warning: Option<String>) -> Outcome {
        Outcome {
            params: self.at.params.clone(),
            iterations: self.at.iteration,
            production,
            warning,
            observables: self.observed.clone(),
            engine: self.engine.describe(),
            seconds: self.seconds(),
        }
    }

    /// `steps` steps at the current parameters; when the run must stop, the call is given up
    /// and the run stopped (resumably) `during` this phase.
    fn cancellable_sample(
        &mut self,
        steps: u32,
        measure: Measure,
        bar: &Bar,
        during: &str,
    ) -> Result<Moments, Error> {
        let ctx = self.ctx;
        let progress = Cancellable {
            bar,
            control: &ctx.control,
        };
        let result = self
            .engine
            .sample(&self.at.params, steps, measure, &progress);
        bar.finish();
        match result {
            Err(Error::Interrupted(_)) => {
                let reason = ctx.control.reason().unwrap_or("stopped on another process");
                Err(self.stop_early(reason, Some(during))?)
            }
            other => other,
        }
    }

    fn checkpoint(&mut self) -> Result<(), Error> {
        // Every process takes part in gathering the walkers; the first writes them.
        let state = self.engine.state()?;
        if self.out.is_writable() {
            let (checkpoint, bytes) =
                Checkpoint::new(self.run_id, self.seconds(), self.config, &self.at, &state);
            write_checkpoint(self.out, &checkpoint, &bytes)?;
        }
        self.checkpointed = Some(self.at.iteration);
        Ok(())
    }

    /// How to continue after a failure, for error messages (none for `sample`).
    fn resume_hint(&self) -> Option<String> {
        if !self.resumable {
            return None;
        }
        Some(match self.checkpointed {
            Some(it) => format!(
                "The last checkpoint (after iteration {it}) is in {dir}; continue with `rbm-vmc \
                 run --resume {dir}` (add --engine cpu to continue on the CPU)",
                dir = self.out.path().display()
            ),
            None => "No checkpoint was written yet".into(),
        })
    }

    fn optimise(&mut self) -> Result<(), Error> {
        let total = self.config.optimiser.iterations;
        if self.at.iteration >= total {
            return Ok(());
        }
        let mut writer = HistoryWriter::create(self.out, &self.at.history)?;
        let bar = self.ctx.console.bar("optimise", total as u64, "iterations");
        bar.inc(self.at.iteration as u64);
        while self.at.iteration < total {
            let it = self.at.iteration + 1;
            let steps = self.config.steps_per_iteration;
            let measure = self.at.optimiser.measure();
            let moments = self.engine.sample(&self.at.params, steps, measure, &())?;
            let e = Estimate::from_moments(&moments);
            if let Some(problem) = self.breakdown(&e) {
                bar.finish();
                return Err(self.fail(&format!("iteration {it}"), &problem)?);
            }
            let warning = sampling_warning(self.config.sampler.kind, e.acceptance);
            if let Some((_, long)) = &warning
                && !self.warned
            {
                bar.warn(long);
                self.warned = true;
            }
            let short = warning.map(|(short, _)| short);
            let previous = self.at.params.clone();
            let step = self.at.optimiser.step(
                &mut self.at.params,
                &e.gradient,
                moments.metric.as_ref(),
            )?;
            if let Some(w) = &step.warning {
                bar.warn(&format!("iteration {it}: {w}"));
            }
            let row = writer.row(it, &e, &step, short, self.seconds())?;
            self.at.history.push(row);
            bar.line(&iteration_line(it, &e, &step, short));
            bar.set_message(format!("E = {:.5}", e.energy));
            bar.inc(1);
            if self.best.is_none_or(|(energy, _)| e.energy < energy) {
                self.best = Some((e.energy, e.variance));
            }
            self.at.previous = Some(previous);
            self.at.iteration = it;
            let every = self.config.checkpoint_every;
            if (every > 0 && it.is_multiple_of(every)) || it == total {
                self.checkpoint()?;
            }
            if let Some(reason) = self.ctx.stop_reason() {
                bar.finish();
                return Err(self.stop_early(reason, None)?);
            }
        }
        bar.finish();
        self.plot_convergence()
    }

    /// `convergence.svg` from the history so far (on the writing process, if any rows).
    fn plot_convergence(&self) -> Result<(), Error> {
        let points = crate::report::iteration_points(&self.at.history);
        if points.is_empty() || !self.out.is_writable() {
            return Ok(());
        }
        let reference = reference_energy(&self.config.system());
        crate::report::convergence_plot(
            &self.out.file("convergence.svg"),
            &points,
            reference.as_ref().map(|r| (r.energy, r.source)),
        )
    }

    fn write_params(&self, params: &Params) -> Result<(), Error> {
        let wf = &self.engine.spec().wavefunction;
        self.out.write(
            "params.json",
            params_to_json(params, wf, &self.config.system()).as_bytes(),
        )
    }

    fn production(&mut self) -> Result<Option<Estimate>, Error> {
        let steps = self.config.production.steps;
        if steps == 0 {
            return Ok(None);
        }
        let walkers = self.engine.spec().walkers as u64;
        let bar = self
            .ctx
            .console
            .bar("production", walkers * steps as u64, "walker-steps");
        self.engine.observe(true);
        let moments = self.cancellable_sample(steps, Measure::Energy, &bar, "the measurement");
        self.engine.observe(false);
        let moments = moments?;
        let e = Estimate::from_moments(&moments);
        let spec = self.engine.spec();
        self.observed = match (&moments.observables, &spec.observables) {
            (Some(sums), Some(o)) => {
                Observed::from_sums(sums, o, spec.system.particles, spec.system.dims)
            }
            _ => None,
        };
        if let Some(problem) = self.breakdown(&e) {
            return Err(self.fail("the production run", &problem)?);
        }
        Ok(Some(e))
    }

    /// Why `e`, measured at the current parameters, cannot be trusted, if it cannot.
    fn breakdown(&self, e: &Estimate) -> Option<String> {
        breakdown(
            e,
            self.engine.spec().walkers,
            self.config.system().energy_lower_bound(),
            self.best,
        )
    }

    /// Writes the last good parameters (when the optimiser moved them) and the failure into
    /// result.json, and returns the error that ends the run: `problem` found in `what`.
    fn fail(&mut self, what: &str, problem: &str) -> Result<Error, Error> {
        let message = if self.at.iteration > 0 {
            let good = self.at.previous.clone().unwrap_or(self.at.params.clone());
            self.write_params(&good)?;
            format!(
                "{what}: {problem}. The last update broke the numbers: the learning rate ({}) is \
                 probably too large for this system. The last good parameters (those measured \
                 in iteration {}) are in {}",
                self.config.optimiser.learning_rate,
                self.at.iteration,
                self.out.file("params.json").display()
            )
        } else {
            format!(
                "{what}: {problem}, at the starting parameters, before any update: the system \
                 or wave function settings break the numbers (system.omega = {}, \
                 wavefunction.sigma = {}; values far from 1 overflow) or the parameters do",
                compact(self.config.system.omega),
                compact(self.config.sigma())
            )
        };
        let failed = self.outcome(None, None);
        let status = format!("failed: {what}: {problem}");
        report_result(self.config, &failed, &status, self.out, &self.ctx.console)?;
        Ok(Error::Diverged(message))
    }

    /// Writes the partial results and returns the error that ends the run, with how to go on;
    /// `during` names the phase a call was given up in.
    fn stop_early(&mut self, reason: &str, during: Option<&str>) -> Result<Error, Error> {
        // Walkers stopped part-way through thermalisation continue from where they are.
        let thermalising = during == Some("thermalisation");
        if self.resumable && (thermalising || self.checkpointed != Some(self.at.iteration)) {
            self.checkpoint()?;
        }
        self.write_params(&self.at.params)?;
        self.plot_convergence()?;
        let partial = self.outcome(None, None);
        report_result(self.config, &partial, reason, self.out, &self.ctx.console)?;
        let dir = self.out.path().display();
        let when = match during {
            Some(phase) if thermalising || self.at.iteration == 0 => format!("during {phase}"),
            _ => format!(
                "after iteration {} of {}",
                self.at.iteration, self.config.optimiser.iterations
            ),
        };
        let message = if self.resumable {
            format!(
                "{reason} {when}: checkpoint and partial results are in {dir}; continue with \
                 `rbm-vmc run --resume {dir}`"
            )
        } else {
            format!(
                "{reason} during {}; partial results are in {dir}",
                during.unwrap_or("the measurement")
            )
        };
        Ok(Error::Interrupted(message))
    }
}

/// Why an estimate cannot be trusted, if it cannot: non-finite numbers, many walkers reset
/// after a non-finite state, an energy below `bound` (the lowest any state of the system
/// has) by more than a few error bars, or an energy far above or below the `best` (energy,
/// variance) of the iterations so far.
fn breakdown(e: &Estimate, walkers: u32, bound: f64, best: Option<(f64, f64)>) -> Option<String> {
    if !e.energy.is_finite() || !e.variance.is_finite() {
        return Some(format!(
            "the energy is not finite ({}, variance {})",
            e.energy, e.variance
        ));
    }
    if e.gradient.iter().any(|g| !g.is_finite()) {
        return Some("the energy gradient is not finite".into());
    }
    if e.resets as f64 > MAX_RESET_FRACTION * walkers as f64 {
        return Some(format!(
            "{} walker resets (walkers whose state became non-finite), more than {}% of the \
             {walkers} walkers",
            e.resets,
            MAX_RESET_FRACTION * 100.0
        ));
    }
    // A little slack for the f32 rounding of the GPU engine where the error is zero.
    let slack = BOUND_SIGMAS * e.error + 1e-4 * bound.abs().max(1.0);
    if e.error.is_finite() && e.energy < bound - slack {
        return Some(format!(
            "the energy {:.6e} +- {:.1e} lies below {bound}, the lowest energy any state of \
             this system has (its non-interacting ground state), by more than {BOUND_SIGMAS} \
             error bars",
            e.energy, e.error
        ));
    }
    let (best, variance) = best?;
    let scale = best.abs() + variance.sqrt() + 1.0;
    if e.energy - best > 10.0 * scale {
        return Some(format!(
            "the energy exploded to {:.4e} (best so far {best:.6})",
            e.energy
        ));
    }
    (best - e.energy > 10.0 * scale).then(|| {
        format!(
            "the energy collapsed to {:.4e}, far below the best so far ({best:.6})",
            e.energy
        )
    })
}

/// `v` as a user would write it: 1e-160 rather than 0.000...0001.
fn compact(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// A warning (short, and long with the remedy) when the acceptance says the walkers are
/// frozen: below 1 % for the samplers that reject moves, above 99.9 % for those whose table
/// row says so (steps too small to explore |psi|^2). The error bars then mean little.
fn sampling_warning(kind: SamplerKind, acceptance: f64) -> Option<(&'static str, String)> {
    let Step::Moves {
        tune, warn_high, ..
    } = kind.info().step
    else {
        return None;
    };
    let (short, remedy) = if acceptance < 0.01 {
        ("acceptance below 1 %", "lower")
    } else if warn_high && acceptance > 0.999 {
        ("acceptance above 99.9 %", "raise")
    } else {
        return None;
    };
    Some((
        short,
        format!(
            "{short} ({acceptance:.4}): the walkers hardly explore |psi|^2, so the energy and \
             its error bars are not reliable; {remedy} {tune}"
        ),
    ))
}

fn iteration_line(it: u32, e: &Estimate, step: &StepReport, warning: Option<&str>) -> String {
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
/// completed, why it stopped, or why it failed; a failed run holds no energy).
fn report_result(
    config: &Config,
    outcome: &Outcome,
    status: &str,
    out: &OutputDir,
    console: &Console,
) -> Result<(), Error> {
    let reference = reference_energy(&config.system());
    let mut result = json!({
        "status": status,
        "engine": outcome.engine,
        "seconds": outcome.seconds,
        "iterations": outcome.iterations,
        "config": config,
        "provenance": crate::report::provenance(),
    });
    if let Some(e) = &outcome.production {
        console.line(&format!(
            "energy {:.6} +- {:.6} (blocking {:.6}, walker means {:.6}); variance {:.4e}, \
             tau {:.2}, acceptance {:.3}, {} samples{}",
            e.energy,
            e.error,
            e.error_blocking,
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
            "error_blocking": e.error_blocking,
            "error_walkers": e.error_walkers,
            "variance": e.variance,
            "acceptance": e.acceptance,
            "tau": e.tau,
            "samples": e.samples,
            "resets": e.resets,
            "gradient": e.gradient,
        });
        extend(&mut result, fields);
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
    if status == "completed" {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(energy: f64, error: f64) -> Estimate {
        Estimate {
            energy,
            error,
            error_blocking: error,
            error_walkers: error,
            variance: 1.0,
            tau: 1.0,
            acceptance: 0.5,
            samples: 1000,
            resets: 0,
            gradient: vec![0.0],
        }
    }

    #[test]
    fn estimates_below_the_lower_bound_or_far_from_the_best_are_breakdowns() {
        let bound = 2.0;
        assert_eq!(breakdown(&estimate(2.0, 0.0), 100, bound, None), None);
        assert_eq!(breakdown(&estimate(1.96, 0.01), 100, bound, None), None);
        let low = breakdown(&estimate(1.9, 0.01), 100, bound, None).unwrap();
        assert!(low.contains("lowest energy"), "{low}");
        assert!(breakdown(&estimate(-2.99e12, 1e9), 100, bound, None).is_some());
        // Unknown error (one sample): no claim about the bound.
        assert_eq!(breakdown(&estimate(1.0, f64::NAN), 100, bound, None), None);
        let best = Some((3.1, 2.0));
        assert_eq!(breakdown(&estimate(3.3, 0.01), 100, bound, best), None);
        let high = breakdown(&estimate(6.0e9, 1.0), 100, bound, best).unwrap();
        assert!(high.contains("exploded"), "{high}");
        // Far below the best, but not below the bound by many error bars.
        let collapsed = breakdown(&estimate(-1.0e3, 1e3), 100, bound, best).unwrap();
        assert!(collapsed.contains("collapsed"), "{collapsed}");
        let mut reset = estimate(3.0, 0.01);
        reset.resets = 2;
        assert!(
            breakdown(&reset, 100, bound, None)
                .unwrap()
                .contains("resets")
        );
        assert_eq!(breakdown(&reset, 1000, bound, None), None);
    }

    #[test]
    fn frozen_sampling_is_warned_about() {
        use SamplerKind::*;
        assert!(
            sampling_warning(Metropolis, 0.0)
                .unwrap()
                .1
                .contains("sampler.step")
        );
        assert!(
            sampling_warning(Importance, 0.005)
                .unwrap()
                .1
                .contains("sampler.dt")
        );
        assert!(
            sampling_warning(Metropolis, 0.9995)
                .unwrap()
                .1
                .ends_with("; raise sampler.step")
        );
        assert!(sampling_warning(Importance, 0.9995).is_none());
        assert!(sampling_warning(Gibbs, 1.0).is_none());
        assert!(sampling_warning(Metropolis, 0.5).is_none());
    }
}
