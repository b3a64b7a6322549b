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

mod checkpoint;
mod comb;
mod output;

pub use comb::comb;

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::{Config, EngineChoice};
use crate::control::StopReason;
use crate::driver::{Context, Outcome, cpu_engine, gpu_adapter, measured_params, plan};
use crate::engine::{
    Branching, DmcWalkers, Engine, EngineSpec, GenerationSums, GpuDmc, GpuEngine, Measure,
    Population, Simd, gpu,
};
use crate::error::Error;
use crate::physics::{Params, Statistics};
use crate::report::OutputDir;
use crate::rng::{DMC_COMB_BLOCK, StepStream};
use crate::stats::observables::null_as_nan;
use crate::stats::{Estimate, Fit, blocking, polynomial_fit};
use crate::team::{Team, share};

use output::{DmcRow, write_failure, write_results};

/// Generations between checkpoints (and a checkpoint at each time step's end and when
/// stopped).
const CHECKPOINT_EVERY: u32 = 500;

/// Acceptance below which the time step is too large for the moves to sample psi_T Phi_0
/// faithfully.
const LOW_ACCEPTANCE: f64 = 0.9;

/// More local energies beyond the cutoff than this share is warned about.
const MAX_CLAMPED: f64 = 0.01;

/// More walkers lost (non-finite local energy) than this fraction in one generation is a
/// breakdown.
const MAX_LOST_FRACTION: f64 = 0.01;

/// What a DMC run found: the estimate, and each time step's run.
#[derive(Clone, Debug, PartialEq)]
pub struct DmcOutcome {
    /// The energy and its error: the one time step's, or with several the fit's value at
    /// tau = 0.
    pub energy: f64,
    pub error: f64,
    /// One per time step, in the order run.
    pub runs: Vec<TimeStepRun>,
    /// The extrapolation E(tau) = E0 + c1 tau (+ c2 tau^2 from 4 time steps), with several.
    pub fit: Option<Fit>,
    pub seconds: f64,
    /// The engine that ran the generations (`Population::describe`).
    pub engine: String,
}

/// What the generations at one time step found (NaN, written as null, where nothing was
/// measured yet).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeStepRun {
    pub time_step: f64,
    /// The mixed-estimator energy after the equilibration, and its error (blocking over
    /// generations; NaN with fewer than two).
    #[serde(deserialize_with = "null_as_nan")]
    pub energy: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error: f64,
    /// The energy of every generation (equilibration included).
    pub series: Vec<f64>,
    /// The mean local energy of the walkers the run started from (for the first time step
    /// the trial function's VMC energy, from one sample per walker).
    pub start_energy: f64,
    /// Over the measured generations: accepted / proposed moves, the share of proposals
    /// refused at a node, the effective time step and the mean relative weight spread.
    #[serde(deserialize_with = "null_as_nan")]
    pub acceptance: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub node_crossing_rate: f64,
    pub tau_eff: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub weight_spread: f64,
    /// The share of the measured local energies beyond the cutoff from the reference.
    #[serde(deserialize_with = "null_as_nan")]
    pub clamped_rate: f64,
    /// Generations done (equilibration included).
    pub generations: u32,
}

impl DmcOutcome {
    /// The outcome as a VMC command's, for the studies that take either (`validate`,
    /// `sweep`): the energy and error, the last time step's acceptance, no variance.
    pub fn as_outcome(&self, config: &Config) -> Outcome {
        let estimate = Estimate {
            energy: self.energy,
            error: self.error,
            error_blocking: self.error,
            error_walkers: f64::NAN,
            variance: f64::NAN,
            tau: f64::NAN,
            acceptance: self.runs.last().map_or(f64::NAN, |r| r.acceptance),
            samples: 0,
            resets: 0,
            gradient: Vec::new(),
        };
        Outcome {
            params: Params::zeros(config.wavefunction().layout),
            iterations: 0,
            production: Some(estimate),
            warning: None,
            observables: None,
            engine: format!("{} (DMC)", self.engine),
            seconds: self.seconds,
        }
    }
}

/// Runs DMC for `config` at the parameters of `params_file` (else the config's initial ones),
/// each of `dmc.time_step` in turn, writing dmc.csv, dmc.svg, result.json (and with several
/// time steps timestep.svg) into `out`.
pub fn dmc(
    config: &Config,
    params_file: Option<&Path>,
    out: &OutputDir,
    ctx: &Context,
) -> Result<DmcOutcome, Error> {
    if let Some(why) = config.dmc_time_step_problem() {
        return Err(Error::input(why));
    }
    plan(config)?;
    let params = measured_params(config, params_file)?;
    let console = &ctx.console;
    for w in config
        .physics_warnings()
        .into_iter()
        .chain(bosonic_warning(config))
    {
        console.warn(&w);
    }
    if (config.walkers as usize) < ctx.team.size() {
        return Err(Error::input(format!(
            "`walkers` = {} cannot be split over {} processes: use at least one walker each",
            config.walkers,
            ctx.team.size()
        )));
    }
    let spec = local_spec(config, ctx.team.as_ref());
    let (choice, why) = choose_engine(config, ctx.team.as_ref())?;
    let positions = thermalised(config, &spec, &params, &choice, ctx)?;
    let tau = config.dmc.time_step.0[0];
    let walkers = population(config, spec, &choice, &params, tau, positions, None)?;
    let energies = ctx.team.gather(&walkers.walkers()?.energies);
    let state = DmcState::start(config, &energies);
    advance(config, &params, walkers, &why, state, out, ctx)
}

/// The engine a DMC run takes: the CPU with its threads, or a GPU adapter.
enum Choice {
    Cpu(usize),
    Gpu(wgpu::Adapter),
}

/// The engine `engine` asks for in this process, and the reason shown beside it: `auto`
/// takes a real GPU when there is one, `gpu` any adapter (lavapipe included).
fn choose_engine(config: &Config, team: &dyn Team) -> Result<(Choice, String), Error> {
    let name = config.gpu.adapter.as_deref();
    let cpu = Choice::Cpu(local_threads(config, team));
    Ok(match config.engine {
        EngineChoice::Cpu => (cpu, String::new()),
        EngineChoice::Gpu => (
            Choice::Gpu(gpu_adapter(name, team.local_rank())?),
            String::new(),
        ),
        EngineChoice::Auto => match gpu::choose(name, false, team.local_rank()) {
            Some(adapter) => (Choice::Gpu(adapter), " (auto)".into()),
            None => (cpu, " (auto: no GPU)".into()),
        },
    })
}

/// This process's population on the chosen engine, at `positions` with the local energies
/// `energies` (else measured), for the first time step `tau`.
fn population(
    config: &Config,
    spec: EngineSpec,
    choice: &Choice,
    params: &Params,
    tau: f64,
    positions: Vec<f64>,
    energies: Option<Vec<f64>>,
) -> Result<Box<dyn Population>, Error> {
    let moves = config.dmc_moves();
    // In lanes as the VMC engine: the same moves, to rounding, at a fraction of the cost.
    let lanes = config.cpu_lanes.then(Simd::best);
    Ok(match (choice, energies) {
        (Choice::Cpu(threads), None) => {
            Box::new(DmcWalkers::new(spec, moves, positions, params, *threads)?.with_lanes(lanes)?)
        }
        (Choice::Cpu(threads), Some(energies)) => Box::new(
            DmcWalkers::restore(spec, moves, positions, energies, params, *threads)?
                .with_lanes(lanes)?,
        ),
        (Choice::Gpu(adapter), energies) => Box::new(GpuDmc::new(
            &spec,
            (moves, tau),
            adapter,
            &config.gpu,
            params,
            (&positions, energies.as_deref()),
        )?),
    })
}

/// `rbm-vmc dmc --resume DIR`: continues the run in `out` from its checkpoint, on `engine`
/// and `threads` when given. On the CPU the numbers do not depend on the threads: the run
/// ends exactly as if it had not stopped; a change of engine continues from the same walkers.
pub fn resume(
    out: &OutputDir,
    engine: Option<EngineChoice>,
    threads: Option<usize>,
    ctx: &Context,
) -> Result<DmcOutcome, Error> {
    let checkpoint = checkpoint::read(out)?;
    let mut config = checkpoint.config;
    if let Some(engine) = engine {
        config.engine = engine;
    }
    if let Some(threads) = threads {
        config.threads = threads;
        config.validate()?;
    }
    if checkpoint.state.current.is_none() {
        return Err(Error::input(format!(
            "the DMC run in {} is complete; its results are in result.json",
            out.path().display()
        )));
    }
    let params = Params::from_theta(config.wavefunction().layout, checkpoint.theta)
        .ok_or_else(|| Error::input("the DMC checkpoint's parameters do not fit its config"))?;
    let spec = local_spec(&config, ctx.team.as_ref());
    let (first, count) = (spec.first_walker as usize, spec.walkers as usize);
    let m = spec.coordinates();
    let (Some(positions), Some(energies)) = (
        checkpoint.positions.get(first * m..(first + count) * m),
        checkpoint.energies.get(first..first + count),
    ) else {
        return Err(Error::input(
            "the DMC checkpoint holds fewer walkers than its config",
        ));
    };
    let (choice, why) = choose_engine(&config, ctx.team.as_ref())?;
    let tau = checkpoint.state.current.as_ref().map_or(0.0, |run| run.tau);
    let walkers = population(
        &config,
        spec,
        &choice,
        &params,
        tau,
        positions.to_vec(),
        Some(energies.to_vec()),
    )?;
    advance(&config, &params, walkers, &why, checkpoint.state, out, ctx)
}

/// Runs the generations from `state` to the end of the last time step, with checkpoints
/// every `CHECKPOINT_EVERY` generations and when stopped; writes the results.
fn advance(
    config: &Config,
    params: &Params,
    mut walkers: Box<dyn Population>,
    why: &str,
    mut state: DmcState,
    out: &OutputDir,
    ctx: &Context,
) -> Result<DmcOutcome, Error> {
    let (console, team) = (&ctx.console, ctx.team.as_ref());
    console.line(&format!(
        "engine: {}{why}{}",
        walkers.describe(),
        match team.size() {
            1 => String::new(),
            n => format!(", one of {n} processes ({} walkers in all)", config.walkers),
        }
    ));
    let engine = walkers.describe();
    let walkers = walkers.as_mut();
    let start = Instant::now();
    let seconds = |state: &DmcState| state.seconds_before + start.elapsed().as_secs_f64();
    let taus = &config.dmc.time_step.0;
    let total = config.dmc.equilibration + config.dmc.generations;
    while let Some(mut run) = state.current.take() {
        let i = state.runs.len();
        let label = match taus.len() {
            1 => "dmc".to_string(),
            n => format!("tau {} ({}/{n})", crate::report::compact(run.tau), i + 1),
        };
        let bar = console.bar(&label, total as u64, "generations");
        bar.inc(run.done as u64);
        while run.done < total {
            if let Some(reason) = ctx.stop_reason() {
                bar.finish();
                state.current = Some(run);
                let seconds = seconds(&state);
                checkpoint::write(config, params, &state, walkers, seconds, team, out)?;
                return Err(stop(reason, config, params, &state, seconds, &engine, out)?);
            }
            if let Err(e) = run.next(walkers, team) {
                bar.finish();
                if let Error::Diverged(why) = &e {
                    write_failure(config, why, &engine, out)?;
                }
                return Err(e);
            }
            if run.done > config.dmc.equilibration {
                bar.set_message(format!("E = {:.5}", run.mean()));
            }
            bar.inc(1);
            if run.done.is_multiple_of(CHECKPOINT_EVERY) && run.done < total {
                state.current = Some(run);
                checkpoint::write(config, params, &state, walkers, seconds(&state), team, out)?;
                run = state.current.take().expect("just set");
            }
        }
        bar.finish();
        let outcome = run.outcome();
        // Generations are numbered across the time steps: each has random streams of its own.
        let before = run.before + run.done;
        state.rows.extend(run.rows);
        state.runs.push(outcome);
        let energies = team.gather(&walkers.walkers()?.energies);
        state.current = taus
            .get(i + 1)
            .map(|&tau| Generations::new(config, tau, before, &energies));
    }
    let seconds = seconds(&state);
    checkpoint::write(config, params, &state, walkers, seconds, team, out)?;
    let outcome = estimate(state.runs, seconds, engine);
    write_results(config, params, &outcome, &state.rows, None, out, console)?;
    Ok(outcome)
}

/// Where a DMC run stands: the time steps finished, their rows, the one in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DmcState {
    runs: Vec<TimeStepRun>,
    rows: Vec<DmcRow>,
    /// The time step in progress (`None` when the run is complete).
    current: Option<Generations>,
    /// Wall time of the run's earlier sessions.
    seconds_before: f64,
}

impl DmcState {
    /// The start of a run from walkers with local energies `energies`.
    fn start(config: &Config, energies: &[f64]) -> Self {
        let tau = config.dmc.time_step.0[0];
        Self {
            runs: Vec::new(),
            rows: Vec::new(),
            current: Some(Generations::new(config, tau, 0, energies)),
            seconds_before: 0.0,
        }
    }
}

/// The estimate from the runs: the one time step's energy, or the extrapolation to tau = 0
/// (linear; quadratic from 4 time steps), weighted by the errors.
fn estimate(runs: Vec<TimeStepRun>, seconds: f64, engine: String) -> DmcOutcome {
    let points: Vec<[f64; 3]> = runs
        .iter()
        .map(|r| [r.time_step, r.energy, r.error])
        .collect();
    let (energy, error, fit) = extrapolate(&points);
    DmcOutcome {
        energy,
        error,
        runs,
        fit,
        seconds,
        engine,
    }
}

/// The energy and error at tau = 0 from (time step, energy, error) points: the one point's,
/// or the fit E0 + c1 tau (+ c2 tau^2 from 4 points), weighted by the errors.
pub fn extrapolate(points: &[[f64; 3]]) -> (f64, f64, Option<Fit>) {
    if let [[_, energy, error]] = points {
        return (*energy, *error, None);
    }
    let degree = if points.len() >= 4 { 2 } else { 1 };
    let column = |i: usize| points.iter().map(|p| p[i]).collect::<Vec<f64>>();
    match polynomial_fit(&column(0), &column(1), &column(2), degree) {
        Some(fit) => (fit.coefficients[0], fit.covariance[0][0].sqrt(), Some(fit)),
        None => (f64::NAN, f64::NAN, None),
    }
}

/// This process's share of the walkers (all of them in one process): global walker indices
/// keep the random streams of one process.
fn local_spec(config: &Config, team: &dyn Team) -> EngineSpec {
    let (first_walker, walkers) = share(config.walkers, team.rank(), team.size());
    EngineSpec {
        walkers,
        first_walker,
        ..EngineSpec::from_config(config)
    }
}

/// This process's CPU threads: `threads`, or its share of the machine's cores.
fn local_threads(config: &Config, team: &dyn Team) -> usize {
    match config.threads {
        0 => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / team.local_size()).max(1)
        }
        n => n,
    }
}

/// Walkers drawn from |psi_T|^2: the initial positions after the VMC sampler's
/// thermalisation (`sampler.thermalisation` steps).
fn thermalised(
    config: &Config,
    spec: &EngineSpec,
    params: &Params,
    choice: &Choice,
    ctx: &Context,
) -> Result<Vec<f64>, Error> {
    let mut engine: Box<dyn Engine> = match choice {
        Choice::Cpu(threads) => Box::new(cpu_engine(spec.clone(), config, *threads)?),
        Choice::Gpu(adapter) => Box::new(GpuEngine::new(spec.clone(), adapter, &config.gpu)?),
    };
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

/// What makes a time step's energy doubtful: an acceptance below `LOW_ACCEPTANCE` (too large
/// a time step), or many local energies beyond the cutoff (the branching clamped: a trial
/// function far from the ground state, or too small a cutoff).
fn run_warnings(run: &TimeStepRun) -> Vec<String> {
    let tau = crate::report::compact(run.time_step);
    let mut warnings = Vec::new();
    if run.acceptance < LOW_ACCEPTANCE {
        warnings.push(format!(
            "acceptance {:.3} is below {LOW_ACCEPTANCE}: dmc.time_step = {tau} is too large for \
             these moves (the time-step error grows with it); use a smaller dmc.time_step",
            run.acceptance
        ));
    }
    if run.clamped_rate > MAX_CLAMPED {
        warnings.push(format!(
            "{:.1} % of the local energies at dmc.time_step = {tau} lay beyond the cutoff, which \
             biases the energy toward the trial function's: improve the trial function (`run` \
             first, then `dmc --from`) or raise dmc.cutoff",
            100.0 * run.clamped_rate
        ));
    }
    warnings
}

/// The generations of a run: the population's energies, the trial and reference energies,
/// the sums the effective time step and the figures come from, the rows of dmc.csv.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Generations {
    tau: f64,
    cutoff: f64,
    walkers: f64,
    equilibration: u32,
    block: u32,
    seed: u64,
    /// Generations of earlier time steps (their streams' numbers), and of this one.
    before: u32,
    done: u32,
    /// E_g of every generation done, and its running sums (absent in checkpoints of
    /// earlier versions: then summed again from the series).
    series: Vec<f64>,
    #[serde(default)]
    series_sums: Option<SeriesSums>,
    /// The reference and trial energy E_ref = E_T: the mean E_g over the later half of the
    /// generations (at first the walkers' mean local energy, `start_energy`).
    reference: f64,
    start_energy: f64,
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
    /// The generations at time step `tau` after `before` generations of earlier ones, from
    /// walkers with local energies `energies`.
    fn new(config: &Config, tau: f64, before: u32, energies: &[f64]) -> Self {
        let finite: Vec<f64> = energies.iter().copied().filter(|e| e.is_finite()).collect();
        let start_energy = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        Self {
            tau,
            // Zen et al.'s 0.2 sqrt(N / tau) in Hartree units; in the trap's units the energy
            // scale is omega: sqrt(P omega / tau) (at omega = 1 the same number).
            cutoff: config.dmc.cutoff
                * (config.system.particles as f64 * config.system.omega / tau).sqrt(),
            walkers: config.walkers as f64,
            equilibration: config.dmc.equilibration,
            block: config.dmc.block,
            seed: config.seed,
            before,
            done: 0,
            series: Vec::new(),
            series_sums: Some(SeriesSums::default()),
            reference: start_energy,
            start_energy,
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
    /// Over several processes each moves its share of the walkers; the sums are added and
    /// the comb runs over the whole population (every process gathers it).
    fn next(&mut self, walkers: &mut dyn Population, team: &dyn Team) -> Result<(), Error> {
        let generation = self.done + 1;
        let stream = (self.before + generation) as u64;
        let branching = Branching {
            tau: self.tau,
            tau_eff: self.tau_eff(),
            trial_energy: self.reference,
            reference: self.reference,
            cutoff: self.cutoff,
        };
        let mut sums = walkers.generation(stream, &branching)?.to_array();
        team.sum(&mut sums);
        let sums = GenerationSums::from_array(sums);
        if sums.lost > MAX_LOST_FRACTION * self.walkers {
            return Err(Error::Diverged(format!(
                "generation {generation}: {} of {} walkers reached a non-finite local energy; \
                 the trial function or dmc.time_step = {} breaks the numbers",
                sums.lost,
                self.walkers,
                crate::report::compact(self.tau)
            )));
        }
        let collapsed = || {
            Error::Diverged(format!(
                "generation {generation}: the total weight of the population is {} (it \
                 collapsed or exploded); the trial function or dmc.time_step = {} breaks the \
                 numbers",
                sums.weight,
                crate::report::compact(self.tau)
            ))
        };
        if !(sums.weight.is_finite() && sums.weight > 0.0) {
            return Err(collapsed());
        }
        let u = StepStream::at_block(self.seed, 0, stream, DMC_COMB_BLOCK).uniform();
        if team.size() > 1 || !walkers.comb_in_place(u)? {
            // The comb over the whole population: every process gathers it.
            let mine = walkers.walkers()?;
            let weights = team.gather(&mine.weights);
            let slots = comb(&weights, u, weights.len()).ok_or_else(collapsed)?;
            let first = walkers.first_walker() as usize;
            let slots = &slots[first..first + mine.weights.len()];
            let positions = team.gather(&mine.positions);
            walkers.resample(slots, &positions, &team.gather(&mine.energies))?;
        }
        let energy = sums.weighted_energy / sums.weight;
        let mut running = match self.series_sums.take() {
            Some(running) => running,
            None => SeriesSums::of(&self.series, self.equilibration),
        };
        running.push(&self.series, energy, generation > self.equilibration);
        self.series.push(energy);
        self.all.add(&sums);
        self.done = generation;
        // The reference follows the later half of the generations (it forgets the start).
        let n = self.series.len();
        self.reference = running.later / (n - n / 2) as f64;
        self.series_sums = Some(running);
        if generation > self.equilibration {
            self.measured.add(&sums);
            self.spread_sum += spread(&sums, self.walkers);
            self.block_sums.add(&sums);
            self.block_energy += energy;
            if (generation - self.equilibration).is_multiple_of(self.block) {
                self.end_block();
            }
        }
        Ok(())
    }

    /// A row of dmc.csv for the block just ended.
    fn end_block(&mut self) {
        let b = &self.block_sums;
        let (mean, error) = self.estimate();
        self.rows.push(DmcRow {
            time_step: self.tau,
            generation: self.done,
            energy: self.block_energy / self.block as f64,
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

    /// The energies of the measured generations.
    fn measured(&self) -> &[f64] {
        &self.series[(self.equilibration as usize).min(self.series.len())..]
    }

    /// The mean energy of the measured generations.
    fn mean(&self) -> f64 {
        let sum = match &self.series_sums {
            Some(sums) => sums.measured,
            None => SeriesSums::of(&self.series, self.equilibration).measured,
        };
        sum / self.measured().len() as f64
    }

    /// The mean energy of the measured generations and its error (`generation_error`).
    fn estimate(&self) -> (f64, f64) {
        (self.mean(), generation_error(self.measured()))
    }

    fn outcome(&self) -> TimeStepRun {
        let (energy, error) = self.estimate();
        let m = &self.measured;
        let generations = self.done.saturating_sub(self.equilibration).max(1) as f64;
        TimeStepRun {
            time_step: self.tau,
            energy,
            error,
            series: self.series.clone(),
            start_energy: self.start_energy,
            acceptance: m.accepted / m.proposed,
            node_crossing_rate: m.node_crossings / m.proposed,
            tau_eff: self.tau_eff(),
            weight_spread: self.spread_sum / generations,
            clamped_rate: m.clamped / (self.walkers * generations),
            generations: self.done,
        }
    }
}

/// Running sums of a series of generation energies, so that a generation costs the same
/// however long the run: over its later half (the reference energy) and over the measured
/// generations (the mean).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SeriesSums {
    later: f64,
    measured: f64,
}

impl SeriesSums {
    /// The sums of `series` whose first `equilibration` generations are not measured.
    fn of(series: &[f64], equilibration: u32) -> Self {
        let measured = series.get(equilibration as usize..).unwrap_or_default();
        Self {
            later: series[series.len() / 2..].iter().sum(),
            measured: measured.iter().sum(),
        }
    }

    /// Adds `energy`, the generation after `series`, measured or not. The later half gains
    /// it and, when `series` is odd in length, loses its first generation.
    fn push(&mut self, series: &[f64], energy: f64, measured: bool) {
        let n = series.len();
        let dropped = if n % 2 == 1 { series[n / 2] } else { 0.0 };
        self.later += energy - dropped;
        if measured {
            self.measured += energy;
        }
    }
}

/// Blocks that a blocking level must keep for its error to count in `generation_error`.
const MIN_BLOCKS: usize = 8;

/// The error of the mean of a series of generation energies: the largest over the blocking
/// levels that keep at least `MIN_BLOCKS` blocks, and at least automated blocking's. A DMC
/// series is short against its correlation time (tens of generations at tau = 0.02, and the
/// reference energy's feedback adds more), where the automated choice of level can stop short
/// of the plateau: the largest level error is the honest (if slightly conservative) one. NaN
/// for fewer than two values.
pub fn generation_error(series: &[f64]) -> f64 {
    let automated = blocking(series).map_or(f64::NAN, |b| b.variance_of_mean.sqrt());
    let mut largest = automated;
    let mut block = 1;
    while series.len() / block >= MIN_BLOCKS {
        let means: Vec<f64> = series
            .chunks_exact(block)
            .map(|c| c.iter().sum::<f64>() / block as f64)
            .collect();
        let n = means.len() as f64;
        let mean = means.iter().sum::<f64>() / n;
        let variance = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (n - 1.0);
        largest = largest.max((variance / n).sqrt());
        block *= 2;
    }
    largest
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
    config: &Config,
    params: &Params,
    state: &DmcState,
    seconds: f64,
    engine: &str,
    out: &OutputDir,
) -> Result<Error, Error> {
    let mut runs = state.runs.clone();
    runs.extend(state.current.as_ref().map(Generations::outcome));
    let done: u32 = runs.iter().map(|r| r.generations).sum();
    let mut rows = state.rows.clone();
    rows.extend(state.current.iter().flat_map(|r| r.rows.iter().cloned()));
    let outcome = estimate(runs, seconds, engine.to_string());
    let console = crate::report::Console::new(true);
    write_results(config, params, &outcome, &rows, Some(reason), out, &console)?;
    let total =
        (config.dmc.equilibration + config.dmc.generations) * config.dmc.time_step.0.len() as u32;
    let dir = out.path().display();
    Ok(Error::Interrupted(format!(
        "{reason} after generation {done} of {total}: the checkpoint and partial results are \
         in {dir}; continue with `rbm-vmc dmc --resume {dir}`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running sums follow the sums of the later half and of the measured generations
    /// of a series as it grows, from the start and from a checkpoint that lacks them.
    #[test]
    fn running_sums_follow_the_series() {
        let equilibration = 7;
        let mut series = Vec::new();
        let mut sums = SeriesSums::default();
        for g in 0..1001u32 {
            let energy = 20.0 + ((g * 7919) % 113) as f64 / 113.0;
            sums.push(&series, energy, g + 1 > equilibration);
            series.push(energy);
            let direct = SeriesSums::of(&series, equilibration);
            assert!((sums.later - direct.later).abs() < 1e-9, "generation {g}");
            assert!(
                (sums.measured - direct.measured).abs() < 1e-9,
                "generation {g}"
            );
        }
        let expected: f64 = series[500..].iter().sum::<f64>() / 501.0;
        assert!((sums.later / 501.0 - expected).abs() < 1e-12);
        assert_eq!(SeriesSums::of(&series[..3], equilibration).measured, 0.0);
    }
}
