//! `rbm-vmc sweep`: a grid of configs run one after another on one engine, each point's
//! results kept as it completes (`sweep.csv`, `sweep.json`, `points/NNNN/`), resumable, and
//! plotted (`energy.svg`, and `error.svg` for studies of the walker count).
//!
//! A sweep file:
//! ```json
//! { "base": "two-electrons.json",
//!   "config": { "optimiser": { "iterations": 50 } },
//!   "grid": { "walkers": { "from": 1024, "to": 65536, "factor": 2 },
//!             "wavefunction.hidden": [1, 2, 4] },
//!   "mode": "optimise" }
//! ```
//! `base` is relative to the sweep file; `config` is merged on top of it; each grid key is a
//! dotted config path with a list of values or a range (`from`, `to` and `factor` or `step`);
//! `mode` is `optimise` (optimise, then production) or `production` (fixed parameters).
//!
//! Each finished point keeps its row in `points/NNNN/row.json`, from which `--collect` (and
//! the worker that finishes the last point of a sweep run by `--worker` processes) rebuilds
//! the table.

mod claim;
mod grid;
mod plot;
mod row;
mod run;
mod worker;

pub use claim::STALE_VARIABLE;
pub use grid::{MAX_POINTS, Mode, PointSpec, Sweep};
pub use row::{Row, RowObservables};
pub use run::run_sweep;
pub use worker::{collect, run_worker};
