//! Everything written for the user: output directory, files, console lines and references.

mod console;
mod convergence;
mod csv;
mod density_plot;
mod history;
mod observables;
mod output;
mod params_file;
mod plot;
mod provenance;
mod trace;

pub use crate::physics::{Reference, reference_energy};
pub use console::{Bar, Console, stdout_failure, write_stderr, write_stdout};
pub use convergence::{IterationPoint, convergence_plot, iteration_points};
pub use csv::{csv_field, csv_quoted};
pub use density_plot::{Curve, density_axis, density_curves_svg, reference_curve};
pub use history::{HistoryWriter, history_row_numbers};
pub use observables::{observables_json, observables_lines, write_observables};
pub use output::{LOCK_FILE, OutputDir, write_atomic};
pub use params_file::{params_to_json, read_params};
pub use plot::{Axes, Series, line_plot, residual_plot};
pub use provenance::{command_started, cpu_model, provenance};
pub use trace::{
    DMC_TRACE_HEADER, MAX_TRACE_ROWS, PARTS_HEADER, VMC_TRACE_HEADER, dmc_trace_csv,
    params_checksum, read_trace, write_vmc_trace,
};

// Ground-layer helpers that the report's users reach through it.
pub use crate::input_file::{MAX_INPUT_BYTES, read_bytes, read_text};
pub use crate::text::compact;
