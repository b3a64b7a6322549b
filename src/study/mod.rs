//! The studies users run beyond one optimisation: throughput benchmarks, batch sweeps and the validation against reference energies.

pub mod bench;
pub mod sweep;
pub mod validate;

pub use bench::{BenchOptions, EngineRequest, bench};
pub use sweep::{Mode, Row, Sweep, run_sweep};
pub use validate::{ValidateOptions, validate};
