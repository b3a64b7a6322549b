//! `rbm-vmc dmc`: fixed-node diffusion Monte Carlo from the trial wave function at fixed
//! parameters (Umrigar, Nightingale and Runge 1993). The walkers start from |psi_T|^2 (a
//! thermalisation of the VMC sampler), then every generation moves them (`DmcWalkers`),
//! weighs them by their averaged, cut-off local energy and combs them back to the constant
//! population `walkers`. The mixed estimator per generation, averaged after the equilibration
//! with its error from blocking over generations, is the fixed-node energy: exact where the
//! nodes are (two electrons), an upper bound with the Slater determinant's nodes otherwise.
//!
//! Population control: the weights are reset after each comb, with the trial energy E_T at
//! the running estimate, so each generation's normalisation is dropped. The bias this leaves
//! is of order 1/M (UNR), far below the statistical error at the default M; a run at 4M shows
//! it.

mod comb;
mod output;

pub use comb::comb;

use std::path::Path;
use std::time::Instant;

use crate::config::{Config, EngineChoice};
use crate::control::StopReason;
use crate::driver::{Context, initial_params, plan};
use crate::engine::{
    Branching, DmcWalkers, Engine, EngineSpec, GenerationSums, Measure, cpu_engine,
};
use crate::error::Error;
use crate::physics::{Params, Statistics};
use crate::report::{OutputDir, read_params};
use crate::rng::{DMC_COMB_BLOCK, StepStream};
use crate::stats::blocking;

use output::{DmcRow, write_results};

/// Acceptance below which the time step is too large for the moves to sample psi_T Phi_0
/// faithfully.
const LOW_ACCEPTANCE: f64 = 0.9;

/// More walkers lost (non-finite local energy) than this fraction in one generation is a
/// breakdown.
const MAX_LOST_FRACTION: f64 = 0.01;

/// What a DMC run found.
#[derive(Clone, Debug, PartialEq)]
pub struct DmcOutcome {
    /// The mixed-estimator energy after the equilibration, and its error (blocking over
    /// generations; NaN with fewer than two).
    pub energy: f64,
    pub error: f64,
    /// The energy of every generation (equilibration included).
    pub series: Vec<f64>,
    /// The mean local energy of the starting walkers (the trial function's VMC energy, from
    /// one sample per walker).
    pub trial_energy: f64,
    /// Over the measured generations: accepted / proposed moves, the share of proposals
    /// refused at a node, the effective time step and the mean relative weight spread.
    pub acceptance: f64,
    pub node_crossing_rate: f64,
    pub tau_eff: f64,
    pub weight_spread: f64,
    /// Generations done (equilibration included).
    pub generations: u32,
    pub seconds: f64,
}

/// Runs DMC for `config` at the parameters of `params_file` (else the config's initial ones),
/// writing dmc.csv, dmc.svg and result.json into `out`.
pub fn dmc(
    config: &Config,
    params_file: Option<&Path>,
    out: &OutputDir,
    ctx: &Context,
) -> Result<DmcOutcome, Error> {
    if config.engine == EngineChoice::Gpu {
        return Err(Error::input(
            "the GPU engine does not run diffusion Monte Carlo yet; use --engine cpu (auto \
             takes the CPU for dmc)",
        ));
    }
    if ctx.team.size() > 1 {
        return Err(Error::input(
            "dmc runs in one process so far; start it without mpirun",
        ));
    }
    if let Some(why) = config.dmc_time_step_problem() {
        return Err(Error::input(why));
    }
    plan(config)?;
    let params = match params_file {
        Some(path) => read_params(
            path,
            &config.wavefunction(),
            &config.system(),
            config.wavefunction.jastrow_beta,
        )?,
        None => initial_params(config)?,
    };
    let console = &ctx.console;
    for w in config
        .physics_warnings()
        .into_iter()
        .chain(bosonic_warning(config))
    {
        console.warn(&w);
    }
    let start = Instant::now();
    let spec = EngineSpec::from_config(config);
    let positions = thermalised(config, &spec, &params, ctx)?;
    let mut walkers =
        DmcWalkers::new(spec, config.dmc_moves(), positions, &params, config.threads)?;
    console.line(&format!(
        "engine: cpu ({} walkers, f64; the GPU engine does not run DMC yet)",
        config.walkers
    ));
    let mut run = Generations::new(config, &walkers.energies);
    let total = config.dmc.equilibration + config.dmc.generations;
    let bar = console.bar("dmc", total as u64, "generations");
    while run.done < total {
        if let Some(reason) = ctx.stop_reason() {
            bar.finish();
            return Err(stop(reason, &run, config, out, start)?);
        }
        run.next(&mut walkers, &params, config)?;
        if run.done > config.dmc.equilibration {
            bar.set_message(format!("E = {:.5}", run.estimate().0));
        }
        bar.inc(1);
    }
    bar.finish();
    let outcome = run.outcome(start.elapsed().as_secs_f64());
    if outcome.acceptance < LOW_ACCEPTANCE {
        console.warn(&low_acceptance(&outcome, config));
    }
    write_results(config, &outcome, &run.rows, None, out, console)?;
    Ok(outcome)
}

/// Walkers drawn from |psi_T|^2: the initial positions after the VMC sampler's
/// thermalisation (`sampler.thermalisation` steps).
fn thermalised(
    config: &Config,
    spec: &EngineSpec,
    params: &Params,
    ctx: &Context,
) -> Result<Vec<f64>, Error> {
    let mut engine = cpu_engine(spec.clone(), config, config.threads)?;
    let steps = config.sampler.thermalisation;
    let bar = ctx.console.bar(
        "thermalise",
        config.walkers as u64 * steps as u64,
        "walker-steps",
    );
    engine.sample(params, steps, Measure::Nothing, &bar)?;
    bar.finish();
    Ok(engine.state()?.positions)
}

/// DMC of distinguishable particles finds the nodeless ground state: a bosonic one.
fn bosonic_warning(config: &Config) -> Option<String> {
    let s = &config.system;
    (s.statistics == Statistics::Distinguishable && s.particles > 2).then(|| {
        format!(
            "DMC of {} particles with system.statistics = \"distinguishable\" finds the \
             bosonic ground state (no nodes), not an electron state; use \"fermions\" for \
             electrons",
            s.particles
        )
    })
}

fn low_acceptance(o: &DmcOutcome, config: &Config) -> String {
    format!(
        "acceptance {:.3} is below {LOW_ACCEPTANCE}: dmc.time_step = {} is too large for \
         these moves (the time-step error grows with it); use a smaller dmc.time_step",
        o.acceptance,
        crate::report::compact(config.dmc.time_step)
    )
}

/// The generations of a run: the population's energies, the trial and reference energies,
/// the sums the effective time step and the figures come from, the rows of dmc.csv.
struct Generations {
    tau: f64,
    cutoff: f64,
    walkers: f64,
    equilibration: u32,
    block: u32,
    seed: u64,
    done: u32,
    /// E_g of every generation done.
    series: Vec<f64>,
    /// The reference and trial energy: the mean E_g over the later half of the generations.
    reference: f64,
    trial_energy: f64,
    /// Sums over every generation (tau_eff) and over the measured ones (figures).
    all: GenerationSums,
    measured: GenerationSums,
    spread_sum: f64,
    /// The sums of the block in progress, and the rows written.
    block_sums: GenerationSums,
    block_energy: f64,
    rows: Vec<DmcRow>,
}

impl Generations {
    fn new(config: &Config, energies: &[f64]) -> Self {
        let finite: Vec<f64> = energies.iter().copied().filter(|e| e.is_finite()).collect();
        let trial_energy = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        let tau = config.dmc.time_step;
        Self {
            tau,
            cutoff: config.dmc.cutoff * (config.system.particles as f64 / tau).sqrt(),
            walkers: config.walkers as f64,
            equilibration: config.dmc.equilibration,
            block: config.dmc.block,
            seed: config.seed,
            done: 0,
            series: Vec::new(),
            reference: trial_energy,
            trial_energy,
            all: GenerationSums::default(),
            measured: GenerationSums::default(),
            spread_sum: 0.0,
            block_sums: GenerationSums::default(),
            block_energy: 0.0,
            rows: Vec::new(),
        }
    }

    /// tau times the accepted share of the diffusion so far (tau before any move).
    fn tau_eff(&self) -> f64 {
        match self.all.diffusion_proposed > 0.0 {
            true => self.tau * self.all.diffusion_accepted / self.all.diffusion_proposed,
            false => self.tau,
        }
    }

    /// One generation: moves and weights, the comb, the estimators.
    fn next(
        &mut self,
        walkers: &mut DmcWalkers,
        params: &Params,
        config: &Config,
    ) -> Result<(), Error> {
        let generation = self.done + 1;
        let branching = Branching {
            tau: self.tau,
            tau_eff: self.tau_eff(),
            trial_energy: self.reference,
            reference: self.reference,
            cutoff: self.cutoff,
        };
        let sums = walkers.generation(params, generation as u64, &branching);
        if sums.lost > MAX_LOST_FRACTION * self.walkers {
            return Err(Error::Diverged(format!(
                "generation {generation}: {} of {} walkers reached a non-finite local energy; \
                 the trial function or dmc.time_step = {} breaks the numbers",
                sums.lost,
                self.walkers,
                crate::report::compact(self.tau)
            )));
        }
        let u = StepStream::at_block(self.seed, 0, generation as u64, DMC_COMB_BLOCK).uniform();
        let slots = comb(&walkers.weights, u, walkers.weights.len()).ok_or_else(|| {
            Error::Diverged(format!(
                "generation {generation}: the total weight of the population is {} (it \
                 collapsed or exploded); the trial function or dmc.time_step = {} breaks the \
                 numbers",
                sums.weight,
                crate::report::compact(self.tau)
            ))
        })?;
        walkers.resample(&slots);
        let energy = sums.weighted_energy / sums.weight;
        self.series.push(energy);
        self.all.add(&sums);
        self.done = generation;
        // The reference follows the later half of the generations (it forgets the start).
        let later = &self.series[self.series.len() / 2..];
        self.reference = later.iter().sum::<f64>() / later.len() as f64;
        if generation > self.equilibration {
            self.measured.add(&sums);
            self.spread_sum += spread(&sums, self.walkers);
            self.block_sums.add(&sums);
            self.block_energy += energy;
            if (generation - self.equilibration).is_multiple_of(self.block) {
                self.end_block(config);
            }
        }
        Ok(())
    }

    /// A row of dmc.csv for the block just ended.
    fn end_block(&mut self, config: &Config) {
        let b = &self.block_sums;
        let (mean, error) = self.estimate();
        self.rows.push(DmcRow {
            generation: self.done,
            energy: self.block_energy / config.dmc.block as f64,
            mean,
            error,
            trial_energy: self.reference,
            acceptance: b.accepted / b.proposed,
            node_crossing_rate: b.node_crossings / b.proposed,
            tau_eff: self.tau_eff(),
        });
        self.block_sums = GenerationSums::default();
        self.block_energy = 0.0;
    }

    /// The mean energy of the measured generations and its error from blocking.
    fn estimate(&self) -> (f64, f64) {
        let measured = &self.series[(self.equilibration as usize).min(self.series.len())..];
        let mean = measured.iter().sum::<f64>() / measured.len() as f64;
        let error = blocking(measured).map_or(f64::NAN, |b| b.variance_of_mean.sqrt());
        (mean, error)
    }

    fn outcome(&self, seconds: f64) -> DmcOutcome {
        let (energy, error) = self.estimate();
        let m = &self.measured;
        let generations = self.done.saturating_sub(self.equilibration).max(1) as f64;
        DmcOutcome {
            energy,
            error,
            series: self.series.clone(),
            trial_energy: self.trial_energy,
            acceptance: m.accepted / m.proposed,
            node_crossing_rate: m.node_crossings / m.proposed,
            tau_eff: self.tau_eff(),
            weight_spread: self.spread_sum / generations,
            generations: self.done,
            seconds,
        }
    }
}

/// The relative spread of the weights, sqrt(M sum w^2 / (sum w)^2 - 1): 0 when all are equal.
fn spread(sums: &GenerationSums, walkers: f64) -> f64 {
    (walkers * sums.weight_squared / (sums.weight * sums.weight) - 1.0)
        .max(0.0)
        .sqrt()
}

/// Writes what a stopped run has (status "stopped") and returns the error that ends it.
fn stop(
    reason: StopReason,
    run: &Generations,
    config: &Config,
    out: &OutputDir,
    start: Instant,
) -> Result<Error, Error> {
    let outcome = run.outcome(start.elapsed().as_secs_f64());
    let console = crate::report::Console::new(true);
    write_results(config, &outcome, &run.rows, Some(reason), out, &console)?;
    Ok(Error::Interrupted(format!(
        "{reason} after generation {} of {}: the partial results are in {} (a DMC run cannot \
         be resumed yet)",
        run.done,
        config.dmc.equilibration + config.dmc.generations,
        out.path().display()
    )))
}
