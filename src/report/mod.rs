//! Everything written for the user: output directory, files, console lines and references.

mod console;
mod convergence;
mod csv;
mod density_plot;
mod history;
mod input_file;
mod observables;
mod output;
mod params_file;
mod plot;
mod provenance;
mod reference;
mod trace;

pub use console::{Bar, Console, stdout_failure, write_stderr, write_stdout};
pub use convergence::{IterationPoint, convergence_plot, iteration_points};
pub use csv::{csv_field, csv_quoted};
pub use density_plot::{Curve, density_axis, density_curves_svg, reference_curve};
pub use history::{HistoryWriter, history_row_numbers};
pub use input_file::{MAX_INPUT_BYTES, read_bytes, read_text};
pub use observables::{observables_json, observables_lines, write_observables};
pub use output::{LOCK_FILE, OutputDir, write_atomic};
pub use params_file::{params_to_json, read_params};
pub use plot::{Axes, Series, line_plot, residual_plot};
pub use provenance::{command_started, cpu_model, provenance};
pub use reference::{Reference, reference_energy};
pub use trace::{
    DMC_TRACE_HEADER, MAX_TRACE_ROWS, PARTS_HEADER, VMC_TRACE_HEADER, dmc_trace_csv,
    params_checksum, read_trace, write_vmc_trace,
};

/// `v` as a user would write it: 1e-160 rather than 0.000...0001.
pub fn compact(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}
