//! The seam between the Monte Carlo engines and everything else: the `Engine` trait, what an
//! engine is built from (`EngineSpec`), and what it returns (`Moments`).

mod cpu;
mod distributed;
pub mod dmc;
pub mod gpu;
mod moments;
pub mod observables;

pub use cpu::{CpuEngine, DmcWalkers, LANES, REFRESH_EVERY, Simd};
pub use distributed::DistributedEngine;
#[cfg(feature = "mpi")]
pub(crate) use distributed::InjectedFault;
pub use dmc::{Branching, GenerationSums, Population, Walkers};
pub use gpu::{GpuDmc, GpuEngine};
pub use moments::{Accumulator, Metric, MetricSubset, Moments};
pub use observables::{ObservableSums, ObservablesSpec};

use crate::config::Config;
use crate::error::Error;
use crate::physics::{Params, System, Wavefunction};
use crate::sampler::{Moves, SamplerKind};

/// A sampler with its settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    pub kind: SamplerKind,
    pub moves: Moves,
    /// Metropolis proposal width.
    pub step: f64,
    /// Importance-sampling time step.
    pub dt: f64,
    /// Monte Carlo steps between measurements.
    pub measure_every: u32,
}

/// Everything fixed for an engine's life: the model, the sampler and the walker ensemble.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineSpec {
    pub system: System,
    pub wavefunction: Wavefunction,
    pub sampler: Sampler,
    pub walkers: u32,
    /// Global index of this engine's first walker (non-zero when walkers are split over
    /// processes): random streams derive from the global index.
    pub first_walker: u32,
    pub seed: u64,
    /// Observables beyond the energy (measured only in `Measure::Production` calls); `None`:
    /// switched off.
    pub observables: Option<ObservablesSpec>,
}

impl EngineSpec {
    pub fn from_config(config: &Config) -> Self {
        let s = &config.sampler;
        let (step, dt) = config.proposal_sizes();
        Self {
            system: config.system(),
            wavefunction: config.wavefunction(),
            sampler: Sampler {
                kind: s.kind,
                moves: s.moves,
                step,
                dt,
                measure_every: s.measure_every,
            },
            walkers: config.walkers,
            first_walker: 0,
            seed: config.seed,
            observables: config.observables_spec(),
        }
    }

    /// Coordinates per walker M = P * D.
    pub fn coordinates(&self) -> usize {
        self.system.coordinates()
    }

    /// Number of variational parameters K.
    pub fn parameters(&self) -> usize {
        self.wavefunction.parameters()
    }

    /// Hidden units N of the RBM.
    pub fn hidden(&self) -> usize {
        self.wavefunction.layout.hidden
    }

    /// Standard deviation of the initial walker positions: the width of the trap's
    /// ground-state density, sqrt(1 / (2 omega)).
    pub fn initial_spread(&self) -> f64 {
        (0.5 / self.system.omega).sqrt()
    }
}

/// Where the walkers are: enough to continue a run exactly.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WalkerState {
    /// Monte Carlo steps made so far (the random streams' step counter).
    pub steps_done: u64,
    /// Positions, walker-major: walker w's coordinates are `positions[w * M..(w + 1) * M]`.
    pub positions: Vec<f64>,
}

/// Receives progress in walker-steps from inside `sample` (possibly from several threads),
/// and may ask the engine to give up the call.
pub trait Progress: Sync {
    fn advance(&self, walker_steps: u64);

    /// When true, the engine stops the call at its next chance with `Error::Interrupted`
    /// (the walkers are then part-way through the call).
    fn cancelled(&self) -> bool {
        false
    }
}

/// No progress display.
impl Progress for () {
    fn advance(&self, _: u64) {}
}

/// What a `sample` call measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Nothing: the walkers only move (thermalisation).
    Nothing,
    /// E_L and the O_i every `measure_every` steps: energy, gradient, series.
    Energy,
    /// As `Energy`, and the sums for the metric S over the samples `MetricSubset` picks with
    /// a target of `samples` (SR).
    EnergyAndMetric { samples: u32 },
    /// As `Energy`, and the observables beyond the energy (`EngineSpec::observables`, where
    /// switched on): production only, they cost time.
    Production,
}

impl Measure {
    pub fn any(self) -> bool {
        self != Measure::Nothing
    }

    /// Whether the call measures the observables beyond the energy.
    pub fn observes(self) -> bool {
        self == Measure::Production
    }

    /// The subset of the `measurements` per walker of `walkers` walkers that enters S.
    pub fn metric_subset(self, walkers: u32, measurements: u32) -> Option<MetricSubset> {
        match self {
            Measure::EnergyAndMetric { samples } if measurements > 0 => {
                Some(MetricSubset::new(walkers, measurements, samples))
            }
            _ => None,
        }
    }
}

/// A walker-ensemble Monte Carlo engine.
pub trait Engine {
    /// Human-readable description, e.g. "cpu (2 threads)".
    fn describe(&self) -> String;

    fn spec(&self) -> &EngineSpec;

    /// Advance every walker `steps` Monte Carlo steps under `params`, measuring what `measure`
    /// says every `measure_every` steps, and return the sums.
    fn sample(
        &mut self,
        params: &Params,
        steps: u32,
        measure: Measure,
        progress: &dyn Progress,
    ) -> Result<Moments, Error>;

    /// Device time of the last `sample` call's kernels, where the engine can measure it.
    fn kernel_seconds(&self) -> Option<f64> {
        None
    }

    /// The walkers' positions and step counter.
    fn state(&self) -> Result<WalkerState, Error>;

    /// Continue from a saved state (same walker count and system).
    fn set_state(&mut self, state: &WalkerState) -> Result<(), Error>;
}

/// Refuses work whose host memory (`bytes`) exceeds what the machine has available, before
/// allocating it (an allocation failure would abort the process).
pub fn check_host_memory(bytes: u64, what: &str, remedy: &str) -> Result<(), Error> {
    let Some(available) = available_memory() else {
        return Ok(());
    };
    if bytes > available {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        return Err(Error::input(format!(
            "{what} need {:.1} GiB of memory, but this machine has {:.1} GiB available; {remedy}",
            gib(bytes),
            gib(available)
        )));
    }
    Ok(())
}

/// MemAvailable from /proc/meminfo (Linux); `None` elsewhere.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Checks that a state fits this engine's walkers and coordinates.
pub(crate) fn check_state(spec: &EngineSpec, state: &WalkerState) -> Result<(), Error> {
    let expected = spec.walkers as usize * spec.coordinates();
    if state.positions.len() != expected {
        return Err(Error::input(format!(
            "walker state has {} coordinates, this run needs {} walkers x {} = {expected}",
            state.positions.len(),
            spec.walkers,
            spec.coordinates()
        )));
    }
    Ok(())
}
