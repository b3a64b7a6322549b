//! What `bench` measures: the engines asked for (each with the config that builds it) and
//! the walker counts.

use std::rc::Rc;
use std::str::FromStr;

use crate::config::{Config, EngineChoice, MAX_THREADS};
use crate::driver::{build_engine, gpu_adapter};
use crate::engine::Engine;
use crate::engine::gpu::AdapterSummary;
use crate::error::Error;
use crate::team::Team;

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
                Ok(threads) if (1..=MAX_THREADS).contains(&threads) => Ok(Self::Cpu { threads }),
                _ => Err(Error::input(format!(
                    "--engines: `{s}`: the thread count must be a whole number in \
                     1..={MAX_THREADS} (`cpu` alone: every core)"
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

/// Most timed repeats per point: far more than a median needs, few enough to allocate.
pub const MAX_REPEATS: usize = 10_000;

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
                "--seconds {}: must be a finite number of seconds > 0",
                crate::report::compact(self.seconds)
            )));
        }
        if !(1..=MAX_REPEATS).contains(&self.repeats) {
            return Err(Error::input(format!(
                "--repeats {}: must be in 1..={MAX_REPEATS}",
                self.repeats
            )));
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

/// An engine to measure, as the config that builds it.
pub(super) struct Candidate {
    pub(super) label: String,
    pub(super) request: EngineRequest,
}

impl Candidate {
    /// The config that makes `build_engine` build this candidate with `walkers` walkers.
    pub(super) fn config(&self, base: &Config, walkers: u32) -> Config {
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
    pub(super) fn build(
        &self,
        base: &Config,
        walkers: u32,
        team: &Rc<dyn Team>,
    ) -> Result<Result<Box<dyn Engine>, String>, Error> {
        let built = build_engine(&self.config(base, walkers), team).map(|b| b.engine);
        let failed = team.any(built.is_err());
        match built {
            Err(Error::Input(why)) => Ok(Err(why)),
            Err(e) => Err(e),
            Ok(_) if failed => Ok(Err("another process could not build it".into())),
            Ok(engine) => Ok(Ok(engine)),
        }
    }
}

/// The candidates of the requested engines, with the adapters they run on.
pub(super) fn candidates(
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
                let found = gpu_adapter(adapter.as_deref(), team.local_rank())
                    .map_err(|e| Error::input(format!("--engines: {e}")))?;
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
        for bad in ["cpu:0", "cpu:x", "tpu", "gpu:", "cpu:5000"] {
            let err = bad.parse::<EngineRequest>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert!("cpu:4096".parse::<EngineRequest>().is_ok());
    }

    /// `--repeats 18446744073709551615` used to panic allocating the timings.
    #[test]
    fn repeats_beyond_reason_are_refused() {
        let options = |repeats| BenchOptions {
            walkers: vec![256],
            engines: BenchOptions::default_engines(),
            seconds: 2.0,
            repeats,
        };
        assert!(options(5).validate().is_ok());
        for repeats in [0, MAX_REPEATS + 1, usize::MAX] {
            let err = options(repeats).validate().unwrap_err().to_string();
            assert!(err.contains("--repeats"), "{err}");
        }
    }
}
