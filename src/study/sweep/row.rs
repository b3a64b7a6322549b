//! A sweep's rows: one per point done, kept in `sweep.json` and `sweep.csv`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::checksum::fnv1a_hex;
use crate::error::Error;
use crate::report::{Reference, csv_field, csv_quoted};
use crate::stats::Observed;
use crate::stats::Summary;
use crate::stats::observables::Value as Measured;

use super::grid::{Mode, Sweep, plain};

/// One point done: completed with its estimate, or failed (numbers then NaN, written null).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub index: usize,
    /// Swept key -> value.
    pub values: Map<String, Value>,
    #[serde(flatten)]
    pub estimate: Summary,
    pub samples: u64,
    /// The point's reference energy (`point_reference`) and how far the energy lies from
    /// it in combined error bars (absent where there is none, or the point failed: rows of
    /// older versions keep their checksums).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference_sigma: Option<f64>,
    /// Wall time of this point alone (`point_seconds` in sweep.csv).
    pub seconds: f64,
    pub engine: String,
    /// "completed", or "failed: " and why (the numbers broke down).
    pub status: String,
    /// Why the point's sampling is doubtful (frozen walkers), if it is.
    pub warning: Option<String>,
    /// The energy's parts and the distances (absent when switched off or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observables: Option<RowObservables>,
    /// FNV-1a (16 hex digits) of the row as written, with this field empty: a row edited
    /// afterwards (an impossible energy) is refused on resume.
    #[serde(default)]
    pub checksum: String,
    /// Fields this program does not write, read from a damaged sweep.json (serde refuses
    /// unknown fields only without `flatten`).
    #[serde(flatten, skip_serializing)]
    pub(super) unknown: Map<String, Value>,
}

/// A sweep row's observables beyond the energy.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowObservables {
    pub kinetic: Measured,
    pub trap: Measured,
    pub interaction: Measured,
    pub virial_ratio: Measured,
    pub pair_distance: Option<Measured>,
    /// <1/r_ij> (absent for one particle, in 1D, and in rows of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse_pair_distance: Option<Measured>,
    pub square_radius: Measured,
    /// Mean number of particles per sample beyond the density's range (absent in rows of
    /// older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density_outside: Option<f64>,
}

impl RowObservables {
    pub(super) fn new(o: &Observed) -> Self {
        Self {
            kinetic: o.kinetic,
            trap: o.trap,
            interaction: o.interaction,
            virial_ratio: o.virial_ratio,
            pair_distance: o.pair_distance,
            inverse_pair_distance: o.inverse_pair_distance,
            square_radius: o.square_radius,
            density_outside: Some(o.radial.outside),
        }
    }

    /// The CSV fields after `tau`: value and error of each, then `density_outside` (empty
    /// where unknown).
    fn fields(o: Option<&Self>) -> String {
        let Some(o) = o else {
            return ",".repeat(OBSERVABLE_COLUMNS - 1);
        };
        let nan = Measured {
            value: f64::NAN,
            error: f64::NAN,
        };
        [
            o.kinetic,
            o.trap,
            o.interaction,
            o.virial_ratio,
            o.pair_distance.unwrap_or(nan),
            o.inverse_pair_distance.unwrap_or(nan),
            o.square_radius,
        ]
        .iter()
        .map(|m| format!("{},{},", finite(m.value), finite(m.error)))
        .collect::<String>()
            + &finite(o.density_outside.unwrap_or(f64::NAN))
    }
}

/// A number for the CSV, empty when not finite.
fn finite(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

/// Columns of the observables in sweep.csv.
const OBSERVABLE_COLUMNS: usize = 15;

impl Row {
    pub(super) fn completed(&self) -> bool {
        self.status == "completed"
    }

    /// Fills `reference` and `difference_sigma` from the point's reference, if it has one.
    pub(super) fn compare(&mut self, sweep: &Sweep) {
        let reference = point_reference(sweep, self.index).filter(|_| self.completed());
        self.reference = reference.as_ref().map(|r| r.energy);
        self.difference_sigma =
            reference.map(|r| r.difference_sigmas(self.estimate.energy, self.estimate.error));
    }

    /// The checksum of the row's other fields (`checksum`).
    pub(super) fn seal(&self) -> String {
        let mut row = self.clone();
        row.checksum.clear();
        fnv1a_hex(
            serde_json::to_string(&row)
                .expect("plain values")
                .as_bytes(),
        )
    }
}

/// The reference a point's energy is compared with: the config's `reference`, else the
/// built-in ground-state energy where the point's trial function is meant to approach the
/// ground state (optimised by the point, read from a parameters file, or projected by DMC).
/// The energy of a fixed trial function (a `production` sweep at its initial parameters) is
/// not expected to match it.
pub(super) fn point_reference(sweep: &Sweep, index: usize) -> Option<Reference> {
    let config = &sweep.points[index].config;
    let ground_state = match sweep.mode {
        Mode::Optimise => config.optimiser.iterations > 0,
        Mode::Production => config.wavefunction.params.is_some(),
        Mode::Dmc => true,
    };
    match config.reference.is_some() || ground_state {
        true => config.reference(),
        false => None,
    }
}

/// The columns of sweep.csv after the swept keys.
fn csv_tail() -> String {
    format!("{},{REFERENCE_COLUMNS},{CSV_REST}", Summary::CSV_HEADER)
}

/// The columns after the estimate's: the point's reference energy and the difference in
/// combined error bars (empty where there is no reference).
const REFERENCE_COLUMNS: &str = "reference,difference_sigma";

/// The columns after the estimate's: the observables' (named as in sweep.json), then the rest
/// of the row (`point_seconds`: the point's own wall time, sweep.json's `seconds`; unlike
/// history.csv's `seconds`, not a running total).
const CSV_REST: &str = "kinetic,kinetic_error,trap,trap_error,interaction,interaction_error,\
virial_ratio,virial_ratio_error,pair_distance,pair_distance_error,inverse_pair_distance,\
inverse_pair_distance_error,square_radius,square_radius_error,density_outside,samples,\
point_seconds,engine,status,warning";

/// A row of sweep.csv; a failed point has its status and no numbers.
pub(super) fn csv_line(sweep: &Sweep, row: &Row) -> String {
    let values: Vec<String> = csv_keys(sweep)
        .map(|k| {
            row.values
                .get(k)
                .map_or(String::new(), |v| csv_field(&plain(v)).into_owned())
        })
        .collect();
    let numbers = if row.completed() {
        let known = |v: Option<f64>| finite(v.unwrap_or(f64::NAN));
        format!(
            "{},{},{},{},{}",
            row.estimate.csv(),
            known(row.reference),
            known(row.difference_sigma),
            RowObservables::fields(row.observables.as_ref()),
            row.samples
        )
    } else {
        ",".repeat(Summary::CSV_HEADER.split(',').count() + 2 + OBSERVABLE_COLUMNS)
    };
    format!(
        "{},{},{numbers},{},{},{},{}\n",
        row.index,
        values.join(","),
        row.seconds,
        csv_quoted(&row.engine),
        csv_quoted(&row.status),
        csv_quoted(row.warning.as_deref().unwrap_or_default())
    )
}

/// The swept keys with a column of their own in sweep.csv: all but a swept `reference`,
/// whose energy the `reference` column holds.
fn csv_keys(sweep: &Sweep) -> impl Iterator<Item = &String> {
    sweep.keys.iter().filter(|k| *k != "reference")
}

/// The header of sweep.csv: the index, the swept keys, the rest.
pub(super) fn csv_header(sweep: &Sweep) -> String {
    let keys: Vec<_> = csv_keys(sweep).map(|k| csv_field(k)).collect();
    format!("index,{},{}\n", keys.join(","), csv_tail())
}

pub(super) fn append(path: &Path, line: &str) -> Result<(), Error> {
    let context = || format!("cannot append to {}", path.display());
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(context(), e))?;
    file.write_all(line.as_bytes())
        .and_then(|_| file.sync_data())
        .map_err(|e| Error::io(context(), e))
}
