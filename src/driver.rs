//! The `run` and `sample` procedures: thermalise, optimise (with checkpoints, early stops and
//! divergence checks), measure, and write the results. Only `Engine` and `Moments` are seen
//! here, so every engine runs the same procedure.

use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::checkpoint::{Checkpoint, read_checkpoint, write_checkpoint};
use crate::config::{Config, EngineChoice};
use crate::control::Control;
use crate::engine::{Engine, Progress, build_engine};
use crate::error::Error;
use crate::optimize::Optimiser;
use crate::physics::Params;
use crate::report::{
    Bar, Console, HistoryWriter, OutputDir, params_to_json, read_params, reference_energy,
};
use crate::stats::Estimate;
use crate::team::{Team, solo};

/// The starting parameters: the config's parameters file, or random ones from the seed
/// (with the initial beta and width).
pub fn initial_params(config: &Config) -> Result<Params, Error> {
    let wf = config.wavefunction();
    let beta = config.wavefunction.jastrow_beta;
    match &config.wavefunction.params {
        Some(path) => read_params(path, &wf, beta),
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
    /// Host memory the engine and the longest measurement need, bytes.
    pub host_bytes: u64,
}

/// Validates what the config refers to (the parameters file) and refuses sizes that would not
/// fit in this machine's memory, before any work: `rbm-vmc check`, and the start of every run.
pub fn plan(config: &Config) -> Result<Plan, Error> {
    initial_params(config)?;
    let walkers = config.walkers;
    let coordinates = config.system().coordinates();
    let n = config.wavefunction.hidden;
    let parameters = coordinates + n + coordinates * n;
    let longest = config.steps_per_iteration.max(config.production.steps);
    let measurements = (longest / config.sampler.measure_every) as u64;
    // Positions and per-walker sums, plus the ensemble series and the copies the blocking
    // analysis makes of it.
    let host_bytes = walkers as u64 * (coordinates as u64 + 1) * 8 + 3 * measurements * 8;
    crate::engine::check_host_memory(
        host_bytes,
        &format!("{walkers} walkers and a series of {measurements} measurements"),
        "use fewer walkers, or fewer steps per call (steps_per_iteration, production.steps)",
    )?;
    let steps = config.sampler.thermalisation as u128
        + config.optimiser.iterations as u128 * config.steps_per_iteration as u128
        + config.production.steps as u128;
    Ok(Plan {
        walkers,
        coordinates,
        parameters,
        walker_steps: steps * walkers as u128,
        host_bytes,
    })
}

/// What `run` and `sample` found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub params: Params,
    /// Optimisation iterations done (over every session of a resumed run).
    pub iterations: u32,
    /// The final measurement (absent when `production.steps` is 0).
    pub production: Option<Estimate>,
    pub engine: String,
    pub seconds: f64,
}

/// `rbm-vmc run`: optimise the parameters, then measure the energy with them; checkpoints
/// every `checkpoint_every` iterations, and stops early (resumably) when `control` says so.
pub fn run(config: &Config, out: &OutputDir, ctx: &Context) -> Result<Outcome, Error> {
    plan(config)?;
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
    let params = initial_params(config)?;
    let optimiser = Optimiser::new(&config.optimiser, params.theta().len());
    let mut session = Session::new(config, out, ctx, engine, params, optimiser);
    session.thermalise()?;
    session.checkpoint()?;
    session.finish()
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
    let finished = std::fs::read_to_string(out.file("result.json"))
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
    let mut engine = build_engine(&config, &ctx.console, &ctx.team)?;
    engine.set_state(&state)?;
    ctx.console.line(&format!(
        "resuming after iteration {} of {} from {}",
        checkpoint.iteration,
        config.optimiser.iterations,
        out.path().display()
    ));
    let mut session = Session::new(
        &config,
        out,
        ctx,
        engine,
        checkpoint.params(),
        checkpoint.optimiser.clone(),
    );
    session.iteration = checkpoint.iteration;
    session.history = checkpoint.history.clone();
    session.seconds_before = checkpoint.seconds;
    session.checkpointed = Some(checkpoint.iteration);
    session.finish()
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
    let params = match params_file {
        Some(path) => read_params(
            path,
            &config.wavefunction(),
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
    let optimiser = Optimiser::new(&config.optimiser, params.theta().len());
    let mut session = Session::new(&config, out, ctx, engine, params, optimiser);
    session.thermalise()?;
    session.finish()
}

/// One process's part of a run.
struct Session<'a> {
    config: &'a Config,
    out: &'a OutputDir,
    ctx: &'a Context,
    engine: Box<dyn Engine>,
    params: Params,
    optimiser: Optimiser,
    /// Iterations completed.
    iteration: u32,
    /// history.csv rows so far.
    history: Vec<String>,
    /// Wall time of earlier sessions of this run.
    seconds_before: f64,
    start: Instant,
    /// Iteration of the last checkpoint written (or resumed from).
    checkpointed: Option<u32>,
    /// The parameters before the last update: their estimate was good.
    previous: Option<Params>,
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
        params: Params,
        optimiser: Optimiser,
    ) -> Self {
        Self {
            config,
            out,
            ctx,
            engine,
            params,
            optimiser,
            iteration: 0,
            history: Vec::new(),
            seconds_before: 0.0,
            start: Instant::now(),
            checkpointed: None,
            previous: None,
        }
    }

    fn seconds(&self) -> f64 {
        self.seconds_before + self.start.elapsed().as_secs_f64()
    }

    fn thermalise(&mut self) -> Result<(), Error> {
        let steps = self.config.sampler.thermalisation;
        if steps > 0 {
            let walkers = self.engine.spec().walkers as u64;
            let bar = self
                .ctx
                .console
                .bar("thermalise", walkers * steps as u64, "walker-steps");
            self.engine.sample(&self.params, steps, false, &bar)?;
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), Error> {
        let state = self.engine.state()?;
        let checkpoint = Checkpoint::new(
            self.iteration,
            self.seconds(),
            self.config,
            &self.params,
            &self.optimiser,
            &self.history,
            state.steps_done,
        );
        write_checkpoint(self.out, &checkpoint, &state)?;
        self.checkpointed = Some(self.iteration);
        Ok(())
    }

    /// How to continue after a failure, for error messages.
    fn resume_hint(&self) -> String {
        match self.checkpointed {
            Some(it) => format!(
                "The last checkpoint (after iteration {it}) is in {dir}; continue with `rbm-vmc \
                 run --resume {dir}` (add --engine cpu to continue on the CPU)",
                dir = self.out.path().display()
            ),
            None => "No checkpoint was written yet".into(),
        }
    }

    /// The rest of the run: the remaining iterations, production, results.
    fn finish(mut self) -> Result<Outcome, Error> {
        self.optimise()?;
        let production = self.production()?;
        let outcome = Outcome {
            params: self.params.clone(),
            iterations: self.iteration,
            production,
            engine: self.engine.describe(),
            seconds: self.seconds(),
        };
        self.write_params(&self.params)?;
        report_result(
            self.config,
            &outcome,
            "completed",
            self.out,
            &self.ctx.console,
        )?;
        Ok(outcome)
    }

    fn optimise(&mut self) -> Result<(), Error> {
        let total = self.config.optimiser.iterations;
        if self.iteration >= total {
            return Ok(());
        }
        let mut writer = HistoryWriter::create(self.out, &self.history)?;
        let bar = self.ctx.console.bar("optimise", total as u64, "iterations");
        bar.inc(self.iteration as u64);
        let mut best: Option<Estimate> = None;
        while self.iteration < total {
            let it = self.iteration + 1;
            let steps = self.config.steps_per_iteration;
            let moments = self
                .engine
                .sample(&self.params, steps, true, &())
                .map_err(|e| self.with_hint(e))?;
            let e = Estimate::from_moments(&moments);
            if let Some(problem) = divergence(&e, best.as_ref()) {
                // The parameters that produced this estimate are the bad ones; the last good
                // ones produced the previous estimate.
                let good = self.last_good_params();
                self.write_params(&good)?;
                return Err(Error::Diverged(format!(
                    "iteration {it}: {problem}; the learning rate ({}) is probably too large \
                     for this system. The last good parameters are in {}",
                    self.config.optimiser.learning_rate,
                    self.out.file("params.json").display()
                )));
            }
            let row = writer.row(it, &e, self.seconds())?;
            self.history.push(row);
            bar.line(&iteration_line(it, &e));
            bar.set_message(format!("E = {:.5}", e.energy));
            bar.inc(1);
            if best.as_ref().is_none_or(|b| e.energy < b.energy) {
                best = Some(e.clone());
            }
            self.previous = Some(self.params.clone());
            self.optimiser.step(&mut self.params, &e.gradient);
            self.iteration = it;
            let every = self.config.checkpoint_every;
            if (every > 0 && it.is_multiple_of(every)) || it == total {
                self.checkpoint()?;
            }
            if let Some(reason) = self.ctx.stop_reason() {
                bar.finish();
                return Err(self.stop_early(reason)?);
            }
        }
        bar.finish();
        Ok(())
    }

    fn write_params(&self, params: &Params) -> Result<(), Error> {
        let wf = &self.engine.spec().wavefunction;
        self.out
            .write("params.json", params_to_json(params, wf).as_bytes())
    }

    fn last_good_params(&self) -> Params {
        self.previous.clone().unwrap_or_else(|| self.params.clone())
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
        let progress = Cancellable {
            bar: &bar,
            control: &self.ctx.control,
        };
        let moments = match self.engine.sample(&self.params, steps, true, &progress) {
            Ok(m) => m,
            Err(Error::Interrupted(_)) => {
                bar.finish();
                let reason = self
                    .ctx
                    .control
                    .reason()
                    .unwrap_or("stopped on another process");
                return Err(self.stop_early(reason)?);
            }
            Err(e) => return Err(self.with_hint(e)),
        };
        bar.finish();
        Ok(Some(Estimate::from_moments(&moments)))
    }

    /// Writes the partial results and returns the error that ends the run, with how to go on.
    fn stop_early(&mut self, reason: &str) -> Result<Error, Error> {
        if self.checkpointed != Some(self.iteration) && self.config.optimiser.iterations > 0 {
            self.checkpoint()?;
        }
        self.write_params(&self.params)?;
        let partial = Outcome {
            params: self.params.clone(),
            iterations: self.iteration,
            production: None,
            engine: self.engine.describe(),
            seconds: self.seconds(),
        };
        report_result(self.config, &partial, reason, self.out, &self.ctx.console)?;
        let dir = self.out.path().display();
        let message = if self.config.optimiser.iterations > 0 {
            format!(
                "{reason} after iteration {} of {}: checkpoint and partial results are in {dir}; \
                 continue with `rbm-vmc run --resume {dir}`",
                self.iteration, self.config.optimiser.iterations
            )
        } else {
            format!("{reason} during the measurement; partial results are in {dir}")
        };
        Ok(Error::Interrupted(message))
    }

    fn with_hint(&self, e: Error) -> Error {
        match e {
            Error::Engine(message) => Error::Engine(format!("{message}. {}", self.resume_hint())),
            other => other,
        }
    }
}

/// Why an iteration's estimate cannot be trusted, if it cannot: non-finite numbers, or an
/// energy that exploded far above the best so far.
fn divergence(e: &Estimate, best: Option<&Estimate>) -> Option<String> {
    if !e.energy.is_finite() || !e.variance.is_finite() {
        return Some(format!("the energy became non-finite ({})", e.energy));
    }
    if e.gradient.iter().any(|g| !g.is_finite()) {
        return Some("the energy gradient became non-finite".into());
    }
    let best = best?;
    let scale = best.energy.abs() + best.variance.sqrt() + 1.0;
    (e.energy - best.energy > 10.0 * scale).then(|| {
        format!(
            "the energy exploded to {:.4e} (best so far {:.6})",
            e.energy, best.energy
        )
    })
}

fn iteration_line(it: u32, e: &Estimate) -> String {
    format!(
        "iter {it:>5}  E = {:>10.6} +- {:.6}  (walkers +- {:.6})  var {:>9.3e}  acc {:.3}  |grad| {:.3e}{}",
        e.energy,
        e.error,
        e.error_walkers,
        e.variance,
        e.acceptance,
        e.gradient_norm(),
        if e.resets > 0 {
            format!("  resets {}", e.resets)
        } else {
            String::new()
        }
    )
}

/// Prints the production result and writes `result.json` (`status` says whether the run
/// completed or why it stopped).
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
    });
    if let Some(e) = &outcome.production {
        console.line(&format!(
            "energy {:.6} +- {:.6} (blocking), +- {:.6} (walker means); variance {:.4e}, \
             tau {:.2}, acceptance {:.3}, {} samples{}",
            e.energy,
            e.error,
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
            "error_walkers": e.error_walkers,
            "variance": e.variance,
            "acceptance": e.acceptance,
            "tau": e.tau,
            "samples": e.samples,
            "resets": e.resets,
            "gradient": e.gradient,
        });
        extend(&mut result, fields);
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
