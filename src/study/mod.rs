//! The studies users run beyond one optimisation: throughput benchmarks and batch sweeps.

pub mod bench;
pub mod sweep;

pub use bench::{BenchOptions, EngineRequest, bench};
pub use sweep::{Mode, Row, Sweep, run_sweep};
