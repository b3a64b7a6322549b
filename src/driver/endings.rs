//! How a session saves what it has: checkpoints, parameters and the convergence figure, and
//! the results and error when it stops early or its numbers break down.

use crate::control::StopReason;
use crate::error::Error;
use crate::physics::Params;
use crate::report::{compact, params_to_json};

use super::result::{RunStatus, report_result};
use super::session::{Phase, Session};

impl Session<'_> {
    /// Starts a checkpoint of where the run stands (`run` sessions only), written in the
    /// background while the session goes on.
    pub(super) fn checkpoint(&mut self) -> Result<(), Error> {
        let Some(optimiser) = self.optimiser.clone() else {
            return Ok(());
        };
        // One at a time, so that at most one walker state is held besides the engine's (as
        // `plan` counts).
        self.finish_checkpoint()?;
        // Every process takes part in gathering the walkers; the first writes them.
        let state = self.engine.state()?;
        if self.out.is_writable() {
            let seconds = self.seconds();
            let run = self.run.clone();
            self.writer.start(self.out, run, optimiser, seconds, state);
        } else {
            self.checkpointed = Some(self.run.iteration);
        }
        Ok(())
    }

    /// Takes in the checkpoint being written if it is done (a failed write then stops the
    /// run now, not at the next checkpoint).
    pub(super) fn poll_checkpoint(&mut self) -> Result<(), Error> {
        self.checkpointed = self.writer.poll()?.or(self.checkpointed);
        Ok(())
    }

    /// Waits for the checkpoint being written, if any.
    pub(super) fn finish_checkpoint(&mut self) -> Result<(), Error> {
        self.checkpointed = self.writer.finish()?.or(self.checkpointed);
        Ok(())
    }

    /// How to continue after a failure, for error messages (none for `sample`).
    pub(super) fn resume_hint(&self) -> Option<String> {
        if !self.resumable() {
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

    /// `convergence.svg` from the history so far (on the writing process, if any rows).
    pub(super) fn plot_convergence(&self) -> Result<(), Error> {
        let points = crate::report::iteration_points(&self.run.history);
        if points.is_empty() || !self.out.is_writable() {
            return Ok(());
        }
        let reference = self.run.config.reference();
        crate::report::convergence_plot(
            &self.out.file("convergence.svg"),
            &points,
            reference.as_ref().map(|r| (r.energy, r.source.as_str())),
        )
    }

    pub(super) fn write_params(&self, params: &Params) -> Result<(), Error> {
        let spec = self.engine.spec();
        self.out.write(
            "params.json",
            params_to_json(params, &spec.wavefunction, &spec.system).as_bytes(),
        )
    }

    /// Writes the last good parameters (when the optimiser moved them) and the failure into
    /// result.json, and returns the error that ends the run: `problem` found in `what`.
    pub(super) fn fail(&mut self, what: &str, problem: &str) -> Result<Error, Error> {
        let config = &self.run.config;
        let message = if self.run.iteration > 0 {
            let good = self.run.previous.as_ref().unwrap_or(&self.run.params);
            self.write_params(good)?;
            format!(
                "{what}: {problem}. The last update broke the numbers: the learning rate ({}) is \
                 probably too large for this system. The last good parameters (those measured \
                 in iteration {}) are in {}",
                config.optimiser.learning_rate,
                self.run.iteration,
                self.out.file("params.json").display()
            )
        } else {
            format!(
                "{what}: {problem}, at the starting parameters, before any update: the system \
                 or wave function settings break the numbers (system.omega = {}, \
                 wavefunction.sigma = {}; values far from 1 overflow) or the parameters do",
                compact(config.system.omega),
                compact(config.sigma())
            )
        };
        let failed = self.outcome(None, None);
        let status = RunStatus::Diverged(format!("{what}: {problem}"));
        report_result(
            config,
            &failed,
            &status,
            &self.notes,
            self.out,
            &self.ctx.console,
        )?;
        Ok(Error::Diverged(message))
    }

    /// Writes the partial results and returns the error that ends the run, with how to go on;
    /// `during` names the phase a call was given up in.
    pub(super) fn stop_early(
        &mut self,
        reason: StopReason,
        during: Option<Phase>,
    ) -> Result<Error, Error> {
        // Walkers stopped part-way through thermalisation continue from where they are.
        let thermalising = during == Some(Phase::Thermalisation);
        let latest = self.writer.pending().or(self.checkpointed);
        if thermalising || latest != Some(self.run.iteration) {
            self.checkpoint()?;
        }
        self.finish_checkpoint()?;
        self.write_params(&self.run.params)?;
        self.plot_convergence()?;
        let partial = self.outcome(None, None);
        let status = RunStatus::Stopped(reason);
        report_result(
            &self.run.config,
            &partial,
            &status,
            &self.notes,
            self.out,
            &self.ctx.console,
        )?;
        let dir = self.out.path().display();
        let when = match during {
            Some(phase) if thermalising || self.run.iteration == 0 => format!("during {phase}"),
            _ => format!(
                "after iteration {} of {}",
                self.run.iteration, self.run.config.optimiser.iterations
            ),
        };
        let message = if self.resumable() {
            format!(
                "{reason} {when}: checkpoint and partial results are in {dir}; continue with \
                 `rbm-vmc run --resume {dir}`"
            )
        } else {
            format!(
                "{reason} during {}; partial results are in {dir}",
                during.unwrap_or(Phase::Production)
            )
        };
        Ok(Error::Interrupted(message))
    }
}
