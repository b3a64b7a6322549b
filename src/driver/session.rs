//! One process's part of a run: the loop through thermalisation, optimisation and production.
//! How a session keeps checkpoints and ends early is in `endings`.

use std::fmt;
use std::time::Instant;

use crate::checkpoint::{CheckpointWriter, RunState};
use crate::config::AutoValue;
use crate::config::flat_width;
use crate::control::{Control, StopReason};
use crate::engine::{Engine, Measure, Moments, Progress};
use crate::error::Error;
use crate::optimiser::Optimiser;
use crate::report::{
    Bar, HistoryWriter, OutputDir, history_row_numbers, iteration_points, write_vmc_trace,
};
use crate::stats::{Estimate, Observed, r_hat};

use super::build_engine;
use super::checks::{
    breakdown, drift_without_gradient, error_warning, frozen_warning, range_warning,
    sampling_warning,
};
use super::result::{RunStatus, iteration_line, report_result};
use super::tune::{
    MAX_ROUND_STEPS, ROUNDS, SamplingNotes, Tuned, auto_key, next_value, step_size,
    target_acceptance,
};
use super::{Context, Outcome};

pub(super) struct Session<'a> {
    pub(super) out: &'a OutputDir,
    pub(super) ctx: &'a Context,
    pub(super) engine: Box<dyn Engine>,
    /// The config, parameters, iterations done and history.
    pub(super) run: RunState,
    /// What updates the parameters, for `run`; `sample` measures at fixed parameters and
    /// keeps no checkpoints.
    pub(super) optimiser: Option<Optimiser>,
    pub(super) start: Instant,
    /// Iteration of the last checkpoint written (or resumed from).
    pub(super) checkpointed: Option<u32>,
    /// The checkpoint being written in the background, if any.
    pub(super) writer: CheckpointWriter,
    /// The lowest iteration energy so far, with its variance.
    best: Option<(f64, f64)>,
    /// Whether the warning about frozen sampling was printed already.
    warned: bool,
    /// The production run's observables beyond the energy.
    observed: Option<Observed>,
    /// The tuned step size and the production's R-hat.
    pub(super) notes: SamplingNotes,
}

/// The phases whose sampling calls a stop may cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Thermalisation,
    Production,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Thermalisation => "thermalisation",
            Self::Production => "the measurement",
        })
    }
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
    /// A session of `run` that optimises with `optimiser` and keeps checkpoints;
    /// `checkpointed` is the iteration of the checkpoint it resumes from, if any.
    pub(super) fn optimising(
        run: RunState,
        optimiser: Optimiser,
        checkpointed: Option<u32>,
        engine: Box<dyn Engine>,
        out: &'a OutputDir,
        ctx: &'a Context,
    ) -> Self {
        let mut session = Self::sampling(run, engine, out, ctx);
        session.optimiser = Some(optimiser);
        session.checkpointed = checkpointed;
        session.best = session
            .run
            .history
            .iter()
            .enumerate()
            .filter_map(|(i, row)| history_row_numbers(row, i as u32 + 1))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        session
    }

    /// A session that measures at the parameters of `run` (which has done no iterations).
    pub(super) fn sampling(
        run: RunState,
        engine: Box<dyn Engine>,
        out: &'a OutputDir,
        ctx: &'a Context,
    ) -> Self {
        Self {
            out,
            ctx,
            engine,
            run,
            optimiser: None,
            start: Instant::now(),
            checkpointed: None,
            writer: CheckpointWriter::default(),
            best: None,
            warned: false,
            observed: None,
            notes: SamplingNotes::default(),
        }
    }

    /// Wall time of the run so far (every session), seconds.
    pub(super) fn seconds(&self) -> f64 {
        self.run.seconds_before + self.start.elapsed().as_secs_f64()
    }

    /// Whether the session keeps checkpoints to resume from (`run`, not `sample`).
    pub(super) fn resumable(&self) -> bool {
        self.optimiser.is_some()
    }

    /// Thermalises `thermalisation` steps, then does the rest of the run: the remaining
    /// iterations, production, results. Failures say how to continue.
    pub(super) fn complete(mut self, thermalisation: u32) -> Result<Outcome, Error> {
        let result = self.go(thermalisation);
        // A failed session still commits the checkpoint in flight, which the hint names.
        let finished = self.finish_checkpoint();
        let result = result.and_then(|outcome| finished.map(|()| outcome));
        result.map_err(|e| match self.resume_hint() {
            Some(hint) => e.with_hint(&hint),
            None => e,
        })
    }

    fn go(&mut self, thermalisation: u32) -> Result<Outcome, Error> {
        let thermalisation = self.tune(thermalisation)?;
        if thermalisation > 0 {
            let walkers = self.engine.spec().walkers as u64;
            let bar = self.ctx.console.bar(
                "thermalise",
                walkers * thermalisation as u64,
                "walker-steps",
            );
            self.cancellable_sample(
                thermalisation,
                Measure::Nothing,
                &bar,
                Phase::Thermalisation,
            )?;
        }
        if self.resumable() && (thermalisation > 0 || self.checkpointed.is_none()) {
            self.checkpoint()?;
        }
        self.optimise()?;
        // The last checkpoint must be on disk before production: a failed write stops the
        // run here rather than after the production run, whose result it would throw away.
        self.finish_checkpoint()?;
        let production = self.production()?;
        let warnings = self.production_warnings(production.as_ref());
        for w in &warnings {
            self.ctx.console.warn(w);
        }
        let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
        let outcome = self.outcome(production, warning);
        self.write_params(&self.run.params)?;
        report_result(
            &self.run.config,
            &outcome,
            &RunStatus::Completed,
            &self.notes,
            self.out,
            &self.ctx.console,
        )?;
        Ok(outcome)
    }

    /// What makes the production's numbers doubtful: no error bar, frozen or too strongly
    /// correlated sampling, histograms that leave much of the system out.
    fn production_warnings(&self, production: Option<&Estimate>) -> Vec<String> {
        let Some(e) = production else {
            return Vec::new();
        };
        let walkers = self.engine.spec().walkers;
        let particles = self.run.config.system.particles;
        let sampling = frozen_warning(self.run.config.sampler.kind, e, walkers);
        let range = self
            .observed
            .as_ref()
            .and_then(|o| range_warning(o, particles));
        [error_warning(e), sampling, range]
            .into_iter()
            .flatten()
            .collect()
    }

    pub(super) fn outcome(&self, production: Option<Estimate>, warning: Option<String>) -> Outcome {
        Outcome {
            params: self.run.params.clone(),
            iterations: self.run.iteration,
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
        during: Phase,
    ) -> Result<Moments, Error> {
        let ctx = self.ctx;
        let progress = Cancellable {
            bar,
            control: &ctx.control,
        };
        let result = self
            .engine
            .sample(&self.run.params, steps, measure, &progress);
        bar.finish();
        match result {
            Err(Error::Interrupted(_)) => {
                let reason = ctx.control.reason().unwrap_or(StopReason::AnotherProcess);
                Err(self.stop_early(reason, Some(during))?)
            }
            other => other,
        }
    }

    /// The remaining iterations (none for `sample`), with checkpoints and early stops.
    fn optimise(&mut self) -> Result<(), Error> {
        let total = self.run.config.optimiser.iterations;
        let Some(measure) = self.optimiser.as_ref().map(Optimiser::measure) else {
            return Ok(());
        };
        if self.run.iteration >= total {
            return Ok(());
        }
        let mut writer = HistoryWriter::create(self.out, &self.run.history)?;
        let bar = self.ctx.console.bar("optimise", total as u64, "iterations");
        bar.inc(self.run.iteration as u64);
        while self.run.iteration < total {
            let it = self.run.iteration + 1;
            let steps = self.run.config.steps_per_iteration;
            let moments = self.engine.sample(&self.run.params, steps, measure, &())?;
            let e = Estimate::from_moments(&moments);
            let earlier = iteration_points(&self.run.history);
            let drifting = || drift_without_gradient(&earlier, &e);
            if let Some(problem) = self.breakdown(&e).or_else(drifting) {
                bar.finish();
                return Err(self.fail(&format!("iteration {it}"), &problem)?);
            }
            let warning = sampling_warning(self.run.config.sampler.kind, e.acceptance);
            if let Some((_, long)) = &warning
                && !self.warned
            {
                bar.warn(long);
                self.warned = true;
            }
            let short = warning.map(|(short, _)| short);
            let previous = self.run.params.clone();
            let optimiser = self.optimiser.as_mut().expect("checked above");
            let step = optimiser.step(
                &self.engine.spec().wavefunction,
                &mut self.run.params,
                &e.gradient,
                moments.metric.as_ref(),
            )?;
            if let Some(w) = &step.warning {
                bar.warn(&format!("iteration {it}: {w}"));
            }
            let size = step_size(self.engine.spec());
            let row = writer.row(it, &e, &step, short, self.seconds(), size)?;
            self.run.history.push(row);
            bar.line(&iteration_line(it, &e, &step, short));
            bar.set_message(format!("E = {:.5}", e.energy));
            bar.inc(1);
            if self.best.is_none_or(|(energy, _)| e.energy < energy) {
                self.best = Some((e.energy, e.variance));
            }
            self.run.previous = Some(previous);
            self.run.iteration = it;
            let every = self.run.config.checkpoint_every;
            if (every > 0 && it.is_multiple_of(every)) || it == total {
                self.checkpoint()?;
            } else {
                self.poll_checkpoint()?;
            }
            if let Some(reason) = self.ctx.stop_reason() {
                bar.finish();
                return Err(self.stop_early(reason, None)?);
            }
        }
        bar.finish();
        self.plot_convergence()
    }

    fn production(&mut self) -> Result<Option<Estimate>, Error> {
        let steps = self.run.config.production.steps;
        if steps == 0 {
            return Ok(None);
        }
        let walkers = self.engine.spec().walkers as u64;
        let bar = self
            .ctx
            .console
            .bar("production", walkers * steps as u64, "walker-steps");
        let moments =
            self.cancellable_sample(steps, Measure::Production, &bar, Phase::Production)?;
        let e = Estimate::from_moments(&moments);
        write_vmc_trace(&moments, self.out)?;
        self.notes.r_hat = Some(r_hat(&moments));
        let spec = self.engine.spec();
        self.observed = match (&moments.observables, &spec.observables) {
            (Some(sums), Some(o)) => {
                Observed::from_sums(sums, o, spec.system.particles, spec.system.dims)
            }
            _ => None,
        };
        let every = self.run.config.observables.histogram_every;
        let measurements = e.samples as f64 / walkers as f64;
        if let Some(o) = &self.observed {
            let warnings = [
                o.error_warning(e.tau, measurements),
                o.histogram_warning(every),
            ];
            for w in warnings.iter().flatten() {
                self.ctx.console.warn(w);
            }
        }
        if let Some(problem) = self.breakdown(&e) {
            return Err(self.fail("the production run", &problem)?);
        }
        Ok(Some(e))
    }

    /// Why `e`, measured at the current parameters, cannot be trusted, if it cannot: broken
    /// numbers, or a trained width that made the trial function flat.
    fn breakdown(&self, e: &Estimate) -> Option<String> {
        let omega = self.run.config.system.omega;
        let flat = self
            .run
            .params
            .sigma()
            .and_then(|sigma| flat_width(sigma, omega))
            .map(|why| format!("the trained width {why}"));
        flat.or_else(|| {
            breakdown(
                e,
                self.engine.spec().walkers,
                self.engine.spec().system.energy_lower_bound(),
                self.best,
            )
        })
    }
}

impl Session<'_> {
    /// Tunes the config's "auto" step size in rounds over the first half of `thermalisation`
    /// steps, 600 at most (a stop meanwhile takes effect after them), rebuilding the engine (whose shaders take the step as a constant) around the
    /// same walkers for each value; the run's config then holds the value, so checkpoints
    /// and result.json carry it. Returns the thermalisation steps left.
    pub(super) fn tune(&mut self, thermalisation: u32) -> Result<u32, Error> {
        let Some(key) = auto_key(&self.run.config) else {
            return Ok(thermalisation);
        };
        let per_round = (thermalisation / (2 * ROUNDS)).min(MAX_ROUND_STEPS);
        let rounds = if per_round == 0 { 0 } else { ROUNDS };
        let kind = self.run.config.sampler.kind;
        let target = target_acceptance(kind);
        let mut value = step_size(self.engine.spec()).expect("a tuned sampler moves");
        let (mut low, mut high) = (None, None);
        let mut acceptance = f64::NAN;
        let walkers = self.engine.spec().walkers as u64;
        for round in 0..rounds {
            let bar = self.ctx.console.bar(
                &format!("tune {key} ({}/{rounds})", round + 1),
                walkers * per_round as u64,
                "walker-steps",
            );
            // Not cut short by a stop, which acts once the value is set: a run stopped and
            // resumed then thermalises at the same value as one never stopped.
            let m = self
                .engine
                .sample(&self.run.params, per_round, Measure::Nothing, &bar)?;
            bar.finish();
            acceptance = m.accepted / m.attempted;
            value = next_value(value, acceptance, target, &mut low, &mut high);
            self.set_step_size(key, value)?;
        }
        self.ctx.console.line(&format!(
            "{key} = {} (tuned toward acceptance {target}; {})",
            crate::report::compact(value),
            if rounds == 0 {
                "no tuning: thermalisation is too short, the value is the trap's scale".into()
            } else {
                format!("{acceptance:.3} in the last round")
            }
        ));
        if rounds == 0 {
            self.set_step_size(key, value)?;
        }
        self.notes.tuned = Some(Tuned {
            key,
            value,
            target_acceptance: target,
            acceptance,
        });
        Ok(thermalisation - rounds * per_round)
    }

    /// Holds `key` at `value` from now on: in the run's config and in a rebuilt engine that
    /// continues the same walkers (their random streams follow their step count).
    fn set_step_size(&mut self, key: &str, value: f64) -> Result<(), Error> {
        let sampler = &mut self.run.config.sampler;
        match key {
            "sampler.dt" => sampler.dt = AutoValue::Value(value),
            _ => sampler.step = AutoValue::Value(value),
        }
        let state = self.engine.state()?;
        let mut engine = build_engine(&self.run.config, &self.ctx.team)?.engine;
        engine.set_state(&state)?;
        self.engine = engine;
        Ok(())
    }
}
