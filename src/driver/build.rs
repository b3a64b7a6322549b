//! Engine construction from the config: which engine a run gets and why, the adapter a GPU
//! engine runs on, and what a GPU engine would refuse. The caller prints the choice; the
//! engines below know nothing of the console.
//!
//! Adding an engine takes:
//! - a type in src/engine/ that implements `Engine`, built from an `EngineSpec`;
//! - a variant of `EngineChoice` (`engine` in the config) and of `EngineArg` in main.rs
//!   (`--engine`), and its arm in `build_local`, with the choice as the console shows it;
//! - tests of its agreement with the CPU engine, as tests/gpu_engine.rs has for the GPU.

use std::rc::Rc;

use crate::config::{Config, EngineChoice};
#[cfg(feature = "mpi")]
use crate::engine::InjectedFault;
use crate::engine::{CpuEngine, DistributedEngine, Engine, EngineSpec, GpuEngine, Simd, gpu};
use crate::error::Error;
use crate::team::{Team, share};

/// An engine built for a run, with which engine this process runs and why.
pub struct Built {
    pub engine: Box<dyn Engine>,
    /// This process's engine and the reason for the choice, as the console shows it:
    /// "cpu (2 threads) (auto: no GPU adapter found)".
    pub choice: String,
}

/// Builds the engine the config asks for and says which one it is and why: `auto` takes a
/// real GPU when there is one (falling back to the CPU if it cannot run this system there),
/// `gpu` any adapter including CPU implementations such as lavapipe. In a team of several
/// processes each runs its share of the walkers (`DistributedEngine`), with its CPU share of
/// the machine's cores (unless `threads` is set) and its own GPU where there are several.
pub fn build_engine(config: &Config, team: &Rc<dyn Team>) -> Result<Built, Error> {
    let spec = EngineSpec::from_config(config);
    if team.size() == 1 {
        return build_local(spec, config, config.threads, 0);
    }
    if (config.walkers as usize) < team.size() {
        return Err(Error::input(format!(
            "`walkers` = {} cannot be split over {} processes: use at least one walker each",
            config.walkers,
            team.size()
        )));
    }
    let (first_walker, walkers) = share(config.walkers, team.rank(), team.size());
    let local = EngineSpec {
        walkers,
        first_walker,
        ..spec.clone()
    };
    let threads = match config.threads {
        0 => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / team.local_size()).max(1)
        }
        n => n,
    };
    let Built { engine, choice } = build_local(local, config, threads, team.local_rank())?;
    #[cfg(feature = "mpi")]
    let engine: Box<dyn Engine> =
        if std::env::var("RBM_VMC_FAULT_RANK").is_ok_and(|r| r == team.rank().to_string()) {
            Box::new(InjectedFault(engine))
        } else {
            engine
        };
    Ok(Built {
        engine: Box::new(DistributedEngine::new(engine, team.clone(), spec)),
        choice,
    })
}

/// The adapter `--engine gpu` runs on: among those named like `name` (any, without a name)
/// the real GPUs, else the CPU implementations such as lavapipe; the `nth` of them (modulo
/// their count), so that processes on one machine take distinct GPUs.
pub fn gpu_adapter(name: Option<&str>, nth: usize) -> Result<wgpu::Adapter, Error> {
    gpu::choose(name, false, nth)
        .or_else(|| gpu::choose(name, true, nth))
        .ok_or_else(|| {
            Error::input(match name {
                Some(name) => {
                    format!("no GPU adapter named like `{name}`; `rbm-vmc devices` lists them")
                }
                None => format!("no GPU adapter found: {}", gpu::NO_ADAPTER_HELP),
            })
        })
}

/// For `--engine gpu`, what building the engine would refuse, without opening a device: no
/// adapter by that name, or a run beyond its limits (`rbm-vmc check`).
pub fn check_gpu_fits(config: &Config) -> Result<(), Error> {
    if config.engine != EngineChoice::Gpu {
        return Ok(());
    }
    let adapter = gpu_adapter(config.gpu.adapter.as_deref(), 0)?;
    GpuEngine::check_fits(&EngineSpec::from_config(config), &adapter, &config.gpu)
}

/// The CPU engine for `spec` with `threads` threads, in lanes unless `cpu_lanes` is off.
pub fn cpu_engine(spec: EngineSpec, config: &Config, threads: usize) -> Result<CpuEngine, Error> {
    CpuEngine::new(spec, threads)?.with_lanes(config.cpu_lanes.then(Simd::best))
}

/// One process's engine; `gpu_index` picks among several matching adapters.
fn build_local(
    spec: EngineSpec,
    config: &Config,
    threads: usize,
    gpu_index: usize,
) -> Result<Built, Error> {
    let adapter_name = config.gpu.adapter.as_deref();
    let built = |engine: Box<dyn Engine>, reason: &str| {
        let choice = format!("{}{reason}", engine.describe());
        Ok(Built { engine, choice })
    };
    let cpu = |reason: String| {
        built(
            Box::new(cpu_engine(spec.clone(), config, threads)?),
            &reason,
        )
    };
    match config.engine {
        EngineChoice::Cpu => cpu(String::new()),
        EngineChoice::Gpu => {
            let adapter = gpu_adapter(adapter_name, gpu_index)?;
            built(
                Box::new(GpuEngine::new(spec.clone(), &adapter, &config.gpu)?),
                "",
            )
        }
        EngineChoice::Auto => match gpu::choose(adapter_name, false, gpu_index) {
            None => cpu(match gpu::choose(adapter_name, true, 0) {
                Some(soft) => format!(
                    " (auto: no GPU; {} is a CPU implementation, used only with --engine gpu)",
                    soft.get_info().name
                ),
                None => " (auto: no GPU adapter found)".into(),
            }),
            Some(adapter) => match GpuEngine::new(spec.clone(), &adapter, &config.gpu) {
                Ok(engine) => built(Box::new(engine), " (auto)"),
                Err(e) => cpu(format!(" (auto: the GPU cannot run this: {e})")),
            },
        },
    }
}
