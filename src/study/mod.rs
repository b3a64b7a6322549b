//! The studies users run beyond one optimisation: throughput benchmarks, batch sweeps and the validation against reference energies.

mod analyze;
pub mod bench;
mod check;
pub mod sweep;
pub mod validate;

pub use analyze::{Analysis, Part, analyze, pool};
pub use bench::{BenchOptions, EngineRequest, bench};
pub use check::check_report;
pub use sweep::{Mode, Row, Sweep, run_sweep};
pub use sweep::{collect as collect_sweep, run_worker as sweep_worker};
pub use validate::{ValidateOptions, validate};
