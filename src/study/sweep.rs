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

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::checksum::fnv1a_hex;
use crate::config::{Config, EngineChoice, merge, read_json, set_path};
use crate::control::Control;
use crate::control::StopReason;
use crate::driver;
use crate::driver::Context;
use crate::error::Error;
use crate::report::{
    Axes, Console, Curve, OutputDir, Reference, Series, density_curves_svg, line_plot,
    reference_energy,
};
use crate::stats::Observed;
use crate::stats::observables::{Value as Measured, null_as_nan};
use crate::team::solo;

/// Most points one sweep may hold.
pub const MAX_POINTS: usize = 10_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Optimise the parameters, then the production run.
    #[default]
    Optimise,
    /// Production only, at the config's initial (or given) parameters.
    Production,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    base: Option<PathBuf>,
    config: Option<Value>,
    grid: Map<String, Value>,
    #[serde(default)]
    mode: Mode,
}

/// One point of the grid.
#[derive(Clone, Debug)]
pub struct PointSpec {
    pub index: usize,
    /// The swept values, in key order.
    pub values: Vec<Value>,
    pub config: Config,
}

/// A loaded, fully validated sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub keys: Vec<String>,
    pub points: Vec<PointSpec>,
    pub mode: Mode,
}

impl Sweep {
    /// Reads and validates a sweep file; `overrides` (`key=value`) apply to the base config.
    /// Every point is validated before anything runs.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, Error> {
        let origin = path.display().to_string();
        let file: SweepFile = serde_path_to_error::deserialize(read_json(path, "sweep file")?)
            .map_err(|e| {
                Error::input(format!(
                    "sweep file {origin}: `{}`: {}",
                    e.path(),
                    e.inner()
                ))
            })?;
        let mut base = match &file.base {
            Some(base) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                read_json(&dir.join(base), "base config")?
            }
            None => Value::Object(Map::new()),
        };
        if let Some(config) = &file.config {
            if !config.is_object() {
                return Err(Error::input(format!(
                    "sweep file {origin}: `config` must be an object of config values"
                )));
            }
            merge(&mut base, config);
        }
        for item in overrides {
            crate::config::apply_override(&mut base, item)?;
        }
        if file.grid.is_empty() {
            return Err(Error::input(format!(
                "sweep file {origin}: `grid` is empty; give at least one key with its values"
            )));
        }
        let keys: Vec<String> = file.grid.keys().cloned().collect();
        let axes: Vec<Vec<Value>> = file
            .grid
            .iter()
            .map(|(key, spec)| grid_values(key, spec))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::input(format!("sweep file {origin}: {e}")))?;
        let count = axes
            .iter()
            .try_fold(1usize, |n, axis| n.checked_mul(axis.len()))
            .filter(|&n| n <= MAX_POINTS)
            .ok_or_else(|| {
                let sizes: Vec<String> = axes.iter().map(|a| a.len().to_string()).collect();
                Error::input(format!(
                    "sweep file {origin}: the grid has {} values, more than {MAX_POINTS} points",
                    sizes.join(" x ")
                ))
            })?;
        let mut points = Vec::with_capacity(count);
        for index in 0..count {
            // The last key varies fastest.
            let mut rest = index;
            let mut values = vec![Value::Null; keys.len()];
            for (k, axis) in axes.iter().enumerate().rev() {
                values[k] = axis[rest % axis.len()].clone();
                rest /= axis.len();
            }
            let mut value = base.clone();
            for (key, v) in keys.iter().zip(&values) {
                set_path(&mut value, key, v.clone()).map_err(|e| {
                    Error::input(format!("sweep file {origin}: grid key `{key}`: {e}"))
                })?;
            }
            let label = format!("{origin}, point {index} ({})", describe(&keys, &values));
            let config = Config::from_value(value, &label)?;
            if config.production.steps == 0 {
                return Err(Error::input(format!(
                    "config {label}: `production.steps` = 0, but every sweep point ends with a \
                     production run; set it > 0"
                )));
            }
            points.push(PointSpec {
                index,
                values,
                config,
            });
        }
        Ok(Self {
            keys,
            points,
            mode: file.mode,
        })
    }

    /// What identifies the sweep's points (their values and a fingerprint of each point's
    /// whole config), stored beside the results to check a resume.
    fn definition(&self) -> Value {
        json!({
            "keys": self.keys,
            "mode": self.mode,
            "points": self.points.iter().map(|p| json!({
                "values": p.values,
                "config": fingerprint(&p.config),
            })).collect::<Vec<_>>(),
        })
    }

    /// Why the stored `definition` is not this sweep's, if it is not.
    fn differs_from(&self, stored: &Value) -> Option<String> {
        let mine = self.definition();
        if stored["keys"] != mine["keys"]
            || stored["mode"] != mine["mode"]
            || stored["points"].as_array().map(Vec::len) != Some(self.points.len())
        {
            return Some("a different sweep (other keys, number of points or mode)".into());
        }
        let point = (0..self.points.len()).find(|&i| stored["points"][i] != mine["points"][i])?;
        let p = &self.points[point];
        Some(
            if stored["points"][point]["values"] != mine["points"][point]["values"] {
                format!("a different sweep (other values at point {point})")
            } else {
                format!(
                    "a sweep whose point {point} ({}) had another config: the base config, the \
                 sweep file's `config` or --set changed since it started",
                    describe(&self.keys, &p.values)
                )
            },
        )
    }
}

/// FNV-1a of a point's resolved config, without what only says where it runs (engine,
/// threads, GPU adapter), which a resumed sweep may change as a resumed run may.
fn fingerprint(config: &Config) -> String {
    let mut c = config.clone();
    c.engine = EngineChoice::Auto;
    c.threads = 0;
    c.gpu.adapter = None;
    fnv1a_hex(serde_json::to_string(&c).expect("plain values").as_bytes())
}

/// "walkers=1024, wavefunction.hidden=2".
fn describe(keys: &[String], values: &[Value]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| format!("{k}={}", plain(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as a user writes it: strings without quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values of one grid key: a non-empty list, or a range {from, to, factor | step}.
fn grid_values(key: &str, spec: &Value) -> Result<Vec<Value>, String> {
    match spec {
        Value::Array(list) if !list.is_empty() => Ok(list.clone()),
        Value::Array(_) => Err(format!("grid key `{key}` has an empty list of values")),
        Value::Object(range) => {
            let number = |name: &str| {
                range
                    .get(name)
                    .and_then(Value::as_f64)
                    .filter(|v| v.is_finite())
            };
            let unknown: Vec<&String> = range
                .keys()
                .filter(|k| !["from", "to", "factor", "step"].contains(&k.as_str()))
                .collect();
            if !unknown.is_empty() {
                return Err(format!(
                    "grid key `{key}`: unknown range field(s) {unknown:?}; use from, to and \
                     factor or step"
                ));
            }
            let (Some(from), Some(to)) = (number("from"), number("to")) else {
                return Err(format!(
                    "grid key `{key}`: a range needs numbers `from` and `to`"
                ));
            };
            let integers = [
                range.get("from"),
                range.get("to"),
                range.get("factor"),
                range.get("step"),
            ]
            .into_iter()
            .flatten()
            .all(|v| v.is_i64() || v.is_u64());
            let mut values = Vec::new();
            let mut v = from;
            match (number("factor"), number("step")) {
                (Some(factor), None) if factor > 1.0 && from > 0.0 => {
                    while v <= to * (1.0 + 1e-12) && values.len() <= MAX_POINTS {
                        values.push(v);
                        v *= factor;
                    }
                }
                (None, Some(step)) if step > 0.0 => {
                    while v <= to + step * 1e-9 && values.len() <= MAX_POINTS {
                        values.push(v);
                        v += step;
                    }
                }
                _ => {
                    return Err(format!(
                        "grid key `{key}`: a range needs either `factor` > 1 (with `from` > 0) \
                         or `step` > 0"
                    ));
                }
            }
            if values.is_empty() {
                return Err(format!(
                    "grid key `{key}`: the range from {from} to {to} is empty"
                ));
            }
            Ok(values
                .into_iter()
                .map(|v| {
                    if integers {
                        json!(v.round() as i64)
                    } else {
                        json!(v)
                    }
                })
                .collect())
        }
        _ => Err(format!(
            "grid key `{key}` must be a list of values or a range {{\"from\", \"to\", \
             \"factor\" or \"step\"}}"
        )),
    }
}

/// One point done: completed with its estimate, or failed (numbers then NaN, written null).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub index: usize,
    /// Swept key -> value.
    pub values: Map<String, Value>,
    #[serde(deserialize_with = "null_as_nan")]
    pub energy: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error_blocking: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub error_walkers: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub variance: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub acceptance: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub tau: f64,
    pub samples: u64,
    pub seconds: f64,
    pub engine: String,
    /// "completed", or "failed: " and why (the numbers broke down).
    pub status: String,
    /// Why the point's sampling is doubtful (frozen walkers), if it is.
    pub warning: Option<String>,
    /// The energy's parts and the distances (absent when switched off or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observables: Option<RowObservables>,
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
    pub square_radius: Measured,
}

impl RowObservables {
    fn new(o: &Observed) -> Self {
        Self {
            kinetic: o.kinetic,
            trap: o.trap,
            interaction: o.interaction,
            virial_ratio: o.virial_ratio,
            pair_distance: o.pair_distance,
            square_radius: o.square_radius,
        }
    }

    /// The CSV fields after `tau`: value and error of each (empty where unknown).
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
            o.square_radius,
        ]
        .iter()
        .map(|m| format!("{},{}", finite(m.value), finite(m.error)))
        .collect::<Vec<_>>()
        .join(",")
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
const OBSERVABLE_COLUMNS: usize = 12;

impl Row {
    fn completed(&self) -> bool {
        self.status == "completed"
    }
}

const CSV_TAIL: &str = "energy,error,error_blocking,error_walkers,variance,acceptance,tau,\
kinetic,kinetic_error,trap,trap_error,interaction,interaction_error,virial_ratio,\
virial_ratio_error,r12,r12_error,r2,r2_error,samples,seconds,engine,status,warning";

/// Runs every point not yet in `out` (all of them unless `resume`), writing the rows and the
/// plots as points complete. In a team of processes the points are dealt out in rounds
/// (point i to process i mod size) and the first process collects and writes the rows.
pub fn run_sweep(
    sweep: &Sweep,
    file: &Path,
    out: &OutputDir,
    resume: bool,
    ctx: &Context,
) -> Result<Vec<Row>, Error> {
    let team = &ctx.team;
    let prepared = team.is_root().then(|| prepare(sweep, out, resume));
    let message = match &prepared {
        Some(Ok(rows)) => json!({"done": rows.iter().map(|r| r.index).collect::<Vec<_>>()}),
        Some(Err(e)) => json!({"error": e.to_string()}),
        None => Value::Null,
    };
    let shared: Value =
        serde_json::from_slice(&team.broadcast(serde_json::to_vec(&message).expect("json")))
            .expect("sent as JSON");
    let mut rows = match prepared {
        Some(result) => result?,
        None => match shared["error"].as_str() {
            Some(e) => return Err(Error::input(e)),
            None => Vec::new(),
        },
    };
    let done: Vec<usize> = serde_json::from_value(shared["done"].clone()).expect("indices");

    let bar = ctx
        .console
        .bar("sweep", sweep.points.len() as u64, "points");
    bar.inc(done.len() as u64);
    if !done.is_empty() {
        bar.line(&format!(
            "resuming: {} of {} points done",
            done.len(),
            sweep.points.len()
        ));
    }
    let pending: Vec<&PointSpec> = sweep
        .points
        .iter()
        .filter(|p| !done.contains(&p.index))
        .collect();
    let mut plots = Vec::new();
    for round in pending.chunks(team.size()) {
        let mut interrupted = false;
        let report = match round.get(team.rank()) {
            Some(point) => match run_point(sweep, point, out, &ctx.control) {
                Ok(row) => serde_json::to_vec(&row).expect("json"),
                Err(Error::Interrupted(_)) => {
                    interrupted = true;
                    Vec::new()
                }
                // Any other failure ends the sweep (and the whole team).
                Err(e) => return Err(e),
            },
            None => Vec::new(),
        };
        for bytes in team.gather_bytes(&report).iter().filter(|b| !b.is_empty()) {
            let row: Row = serde_json::from_slice(bytes).expect("rows are sent as JSON");
            append(&out.file("sweep.csv"), &csv_line(sweep, &row))?;
            let point = format!(
                "point {}/{} {}",
                row.index + 1,
                sweep.points.len(),
                describe(&sweep.keys, &sweep.points[row.index].values)
            );
            if row.completed() {
                bar.line(&format!(
                    "{point}: E = {:.6} +- {:.6}, variance {:.3e}, {} samples, {:.1} s{}",
                    row.energy,
                    row.error,
                    row.variance,
                    row.samples,
                    row.seconds,
                    row.warning
                        .as_ref()
                        .map_or(String::new(), |w| format!("  WARNING: {w}"))
                ));
            } else {
                bar.warn(&format!("{point} {}", row.status));
            }
            rows.push(row);
            bar.inc(1);
        }
        if team.is_root() {
            rows.sort_by_key(|r| r.index);
            let text = serde_json::to_string_pretty(&rows).expect("plain values");
            out.write("sweep.json", text.as_bytes())?;
            plots = plot(sweep, &rows, out)?;
        }
        if team.any(interrupted || ctx.control.reason().is_some()) {
            bar.finish();
            return Err(Error::Interrupted(format!(
                "{}: {} of {} points are done and kept in {dir}; continue with `rbm-vmc sweep \
                 {} --out {dir} --resume`",
                ctx.control.reason().unwrap_or(StopReason::AnotherProcess),
                rows.len().max(done.len()),
                sweep.points.len(),
                file.display(),
                dir = out.path().display()
            )));
        }
    }
    bar.finish();
    if team.is_root() {
        let mut files = vec!["sweep.csv", "sweep.json"];
        files.extend(plots);
        ctx.console.line(&format!(
            "{} points in {}: {}",
            rows.len(),
            out.path().display(),
            files.join(", ")
        ));
        let failed: Vec<&Row> = rows.iter().filter(|r| !r.completed()).collect();
        if let Some(first) = failed.first() {
            return Err(Error::Diverged(format!(
                "{} of {} points failed (point {}: {}); sweep.csv says why for each, and the \
                 other points' results are in {}",
                failed.len(),
                rows.len(),
                first.index,
                first.status.trim_start_matches("failed: "),
                out.path().display()
            )));
        }
    }
    Ok(rows)
}

/// Writes the definition (or checks it against the one being resumed) and the CSV of the
/// rows kept; returns those rows.
fn prepare(sweep: &Sweep, out: &OutputDir, resume: bool) -> Result<Vec<Row>, Error> {
    let mut rows: Vec<Row> = Vec::new();
    if resume {
        let stored =
            read_json(&out.file("sweep-definition.json"), "sweep definition").map_err(|_| {
                Error::input(format!(
                    "nothing to resume in {}: it holds no sweep-definition.json",
                    out.path().display()
                ))
            })?;
        if let Some(why) = sweep.differs_from(&stored) {
            return Err(Error::input(format!(
                "{} holds {why}; resume it with the sweep file and --set options it was \
                 started with, or choose another --out",
                out.path().display()
            )));
        }
        if out.file("sweep.json").exists() {
            let text = read_json(&out.file("sweep.json"), "sweep results")?;
            rows = serde_json::from_value(text)
                .map_err(|e| e.to_string())
                .and_then(|rows| check_rows(sweep, rows))
                .map_err(|e| {
                    Error::input(format!(
                        "{} is damaged: {e}",
                        out.file("sweep.json").display()
                    ))
                })?;
        }
    } else {
        let mut definition = sweep.definition();
        definition["provenance"] = crate::report::provenance();
        let text = serde_json::to_string_pretty(&definition).expect("plain values");
        out.write("sweep-definition.json", text.as_bytes())?;
    }
    // The CSV is rewritten from the rows kept, then appended to as points complete.
    let mut csv = format!("index,{},{CSV_TAIL}\n", sweep.keys.join(","));
    for row in &rows {
        csv.push_str(&csv_line(sweep, row));
    }
    out.write("sweep.csv", csv.as_bytes())?;
    Ok(rows)
}

/// The rows read back from sweep.json, if they are rows of this sweep's points: each point
/// at most once, with its own values, completed with a finite energy or failed.
fn check_rows(sweep: &Sweep, rows: Vec<Row>) -> Result<Vec<Row>, String> {
    let mut seen = vec![false; sweep.points.len()];
    for row in &rows {
        let Some(point) = sweep.points.get(row.index) else {
            return Err(format!(
                "row of point {}, which the sweep does not have",
                row.index
            ));
        };
        if std::mem::replace(&mut seen[row.index], true) {
            return Err(format!("two rows of point {}", row.index));
        }
        let values: Map<String, Value> = sweep
            .keys
            .iter()
            .cloned()
            .zip(point.values.iter().cloned())
            .collect();
        if row.values != values {
            return Err(format!(
                "the row of point {} has values {}, not the point's {}",
                row.index,
                Value::Object(row.values.clone()),
                Value::Object(values)
            ));
        }
        let failed = row.status.starts_with("failed");
        if !(failed || row.completed() && row.energy.is_finite()) {
            return Err(format!(
                "the row of point {} is neither completed with an energy nor failed",
                row.index
            ));
        }
    }
    Ok(rows)
}

/// Runs one point on this process alone, into `points/NNNN/`; a point whose numbers break
/// down is a failed row, not the end of the sweep.
fn run_point(
    sweep: &Sweep,
    point: &PointSpec,
    out: &OutputDir,
    control: &Control,
) -> Result<Row, Error> {
    let start = Instant::now();
    let dir = OutputDir::create(Some(&out.file(&format!("points/{:04}", point.index))), true)?;
    let ctx = Context {
        console: Console::new(true),
        control: control.clone(),
        team: solo(),
    };
    let outcome = match sweep.mode {
        Mode::Optimise => driver::run(&point.config, &dir, &ctx),
        Mode::Production => driver::sample(&point.config, None, &dir, &ctx),
    };
    let values = sweep
        .keys
        .iter()
        .cloned()
        .zip(point.values.iter().cloned())
        .collect();
    let seconds = start.elapsed().as_secs_f64();
    match outcome {
        Ok(outcome) => {
            let e = outcome
                .production
                .expect("sweep points have production steps");
            Ok(Row {
                index: point.index,
                values,
                energy: e.energy,
                error: e.error,
                error_blocking: e.error_blocking,
                error_walkers: e.error_walkers,
                variance: e.variance,
                acceptance: e.acceptance,
                tau: e.tau,
                samples: e.samples,
                seconds,
                engine: outcome.engine,
                status: "completed".into(),
                warning: outcome.warning,
                observables: outcome.observables.as_ref().map(RowObservables::new),
            })
        }
        Err(Error::Diverged(why)) => Ok(Row {
            index: point.index,
            values,
            energy: f64::NAN,
            error: f64::NAN,
            error_blocking: f64::NAN,
            error_walkers: f64::NAN,
            variance: f64::NAN,
            acceptance: f64::NAN,
            tau: f64::NAN,
            samples: 0,
            seconds,
            engine: String::new(),
            status: format!("failed: {why}"),
            warning: None,
            observables: None,
        }),
        Err(e) => Err(e),
    }
}

/// A row of sweep.csv; a failed point has its status and no numbers.
fn csv_line(sweep: &Sweep, row: &Row) -> String {
    let values: Vec<String> = sweep
        .keys
        .iter()
        .map(|k| row.values.get(k).map_or(String::new(), plain))
        .collect();
    let numbers = if row.completed() {
        [
            row.energy,
            row.error,
            row.error_blocking,
            row.error_walkers,
            row.variance,
            row.acceptance,
            row.tau,
        ]
        .map(|v| v.to_string())
        .join(",")
            + &format!(
                ",{},{}",
                RowObservables::fields(row.observables.as_ref()),
                row.samples
            )
    } else {
        ",".repeat(7 + OBSERVABLE_COLUMNS)
    };
    format!(
        "{},{},{numbers},{},{},{},{}\n",
        row.index,
        values.join(","),
        row.seconds,
        csv_text(&row.engine),
        csv_text(&row.status),
        row.warning.as_deref().map_or(String::new(), csv_text)
    )
}

/// A CSV field holding any text: quoted, with quotes doubled.
fn csv_text(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn append(path: &Path, line: &str) -> Result<(), Error> {
    let context = || format!("cannot append to {}", path.display());
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(context(), e))?;
    file.write_all(line.as_bytes())
        .and_then(|_| file.sync_data())
        .map_err(|e| Error::io(context(), e))
}

/// Most curves overlaid in the sweep's density.svg.
const MAX_DENSITY_CURVES: usize = 8;

/// density.svg of a sweep: the points' rho(r) (from their density.csv) in one figure, for
/// sweeps of at most `MAX_DENSITY_CURVES` points. Returns whether it was drawn.
fn density_overlay(
    sweep: &Sweep,
    rows: &[&Row],
    out: &OutputDir,
    others: &dyn Fn(&&Row) -> String,
) -> Result<bool, Error> {
    if rows.len() > MAX_DENSITY_CURVES {
        return Ok(false);
    }
    let first = &sweep.keys[0];
    let mut curves = Vec::new();
    for r in rows {
        let path = out.file(&format!("points/{:04}/density.csv", r.index));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (mut points, mut errors) = (Vec::new(), Vec::new());
        for line in text.lines().skip(1) {
            let f: Vec<f64> = line
                .split(',')
                .take(3)
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect();
            if f.len() == 3 {
                points.push((f[0], f[1]));
                errors.push(f[2]);
            }
        }
        let mut label = format!("{first}={}", plain(&r.values[first]));
        let rest = others(r);
        if !rest.is_empty() {
            label += &format!(", {rest}");
        }
        curves.push(Curve {
            label,
            points,
            errors,
        });
    }
    if curves.is_empty() {
        return Ok(false);
    }
    let dims = sweep.points[rows[0].index].config.system.dims;
    density_curves_svg(
        &out.file("density.svg"),
        "One-body density rho(r) of the sweep's points (bands: +- 1 error)",
        dims,
        &curves,
        &[],
    )?;
    Ok(true)
}

fn has_error_plot(sweep: &Sweep) -> bool {
    sweep
        .keys
        .iter()
        .any(|k| k == "walkers" || k == "production.steps" || k == "sampler.measure_every")
}

/// energy.svg: energy with error bars against the first key, one line per combination of
/// the other keys; error.svg (walker or step sweeps): error against samples, log-log, with
/// the 1/sqrt(samples) line through the points' geometric mean.
/// Returns the files written (none before a point completed).
fn plot(sweep: &Sweep, rows: &[Row], out: &OutputDir) -> Result<Vec<&'static str>, Error> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.completed()).collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut written = vec!["energy.svg"];
    let first = &sweep.keys[0];
    let numeric = rows.iter().all(|r| r.values[first].is_number());
    let categories: Vec<String> = {
        let mut c: Vec<String> = Vec::new();
        for p in &sweep.points {
            let v = plain(&p.values[0]);
            if !c.contains(&v) {
                c.push(v);
            }
        }
        c
    };
    let x_of = |r: &&Row| {
        if numeric {
            r.values[first].as_f64().unwrap_or(f64::NAN)
        } else {
            categories
                .iter()
                .position(|c| *c == plain(&r.values[first]))
                .unwrap_or(0) as f64
        }
    };
    let others = |r: &&Row| {
        sweep.keys[1..]
            .iter()
            .map(|k| format!("{k}={}", plain(&r.values[k])))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut series: Vec<Series> = Vec::new();
    for r in &rows {
        let label = match others(r) {
            l if l.is_empty() => "energy".to_string(),
            l => l,
        };
        let index = match series.iter().position(|s| s.label == label) {
            Some(i) => i,
            None => {
                let mut s = Series::new(label, Vec::new());
                s.errors = Some(Vec::new());
                series.push(s);
                series.len() - 1
            }
        };
        series[index].points.push((x_of(r), r.energy));
        series[index]
            .errors
            .as_mut()
            .expect("set above")
            .push(r.error);
    }
    for s in &mut series {
        let mut pairs: Vec<((f64, f64), f64)> = s
            .points
            .iter()
            .copied()
            .zip(s.errors.take().unwrap_or_default())
            .collect();
        pairs.sort_by(|a, b| a.0.0.total_cmp(&b.0.0));
        s.points = pairs.iter().map(|p| p.0).collect();
        s.errors = Some(pairs.iter().map(|p| p.1).collect());
    }
    let xs: Vec<f64> = rows.iter().map(x_of).collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let x_label = if numeric {
        axis_label(first)
    } else {
        let names: Vec<String> = categories
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i} = {c}"))
            .collect();
        format!("{} ({})", axis_label(first), names.join(", "))
    };
    // The reference energy, where every point has the same one.
    let references: Vec<Option<Reference>> = rows
        .iter()
        .map(|r| reference_energy(&sweep.points[r.index].config.system()))
        .collect();
    if let Some(Some(r)) = references.first()
        && references.iter().all(|x| x.as_ref() == Some(r))
    {
        let mut line = Series::new(
            format!("reference {} ({})", r.energy, r.source),
            vec![(lo, r.energy), (hi, r.energy)],
        );
        line.reference = true;
        series.push(line);
    }
    let title = format!("Energy against {}", axis_label(first));
    line_plot(
        &out.file("energy.svg"),
        &Axes {
            title: &title,
            x: &x_label,
            y: "energy (natural units)",
            log_x: numeric && lo > 0.0 && hi / lo >= 16.0,
            log_y: false,
        },
        &series,
    )?;

    if density_overlay(sweep, &rows, out, &others)? {
        written.push("density.svg");
    }
    if has_error_plot(sweep) {
        // One series per combination of the keys other than the one that sets the samples.
        let mut groups: Vec<Series> = Vec::new();
        for r in rows.iter().filter(|r| r.error.is_finite() && r.error > 0.0) {
            let label = match others(r) {
                l if l.is_empty() => "error".to_string(),
                l => l,
            };
            let point = (r.samples as f64, r.error);
            match groups.iter_mut().find(|g| g.label == label) {
                Some(g) => g.points.push(point),
                None => groups.push(Series::new(label, vec![point])),
            }
        }
        for g in &mut groups {
            g.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let mut points: Vec<(f64, f64)> = groups.iter().flat_map(|g| g.points.clone()).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !points.is_empty() {
            let log_c =
                points.iter().map(|(n, e)| (e * n.sqrt()).ln()).sum::<f64>() / points.len() as f64;
            let c = log_c.exp();
            let (n0, n1) = (points[0].0, points[points.len() - 1].0);
            let mut reference = Series::new(
                format!("c / sqrt(samples), c = {c:.3}"),
                vec![(n0, c / n0.sqrt()), (n1, c / n1.sqrt())],
            );
            reference.reference = true;
            groups.push(reference);
            line_plot(
                &out.file("error.svg"),
                &Axes {
                    title: "statistical error against samples",
                    x: "samples (walkers x measurements)",
                    y: "error of the energy",
                    log_x: true,
                    log_y: true,
                },
                &groups,
            )?;
            written.push("error.svg");
        }
    }
    Ok(written)
}

/// An axis title for a config key: what it means, with the key.
fn axis_label(key: &str) -> String {
    let meaning = match key {
        "wavefunction.hidden" => "hidden units N",
        "system.omega" => "trap frequency omega",
        "system.particles" => "particles P",
        "system.dims" => "dimensions D",
        "walkers" => "walkers",
        "steps_per_iteration" => "steps per iteration",
        "production.steps" => "production steps",
        "sampler.dt" => "time step dt",
        "sampler.step" => "Metropolis step",
        "optimiser.learning_rate" => "learning rate",
        _ => return key.to_string(),
    };
    format!("{meaning} ({key})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_say_what_a_key_means() {
        assert_eq!(
            axis_label("wavefunction.hidden"),
            "hidden units N (wavefunction.hidden)"
        );
        assert_eq!(axis_label("seed"), "seed");
    }

    #[test]
    fn ranges_expand_to_integers_or_floats() {
        let v = grid_values("walkers", &json!({"from": 1024, "to": 8192, "factor": 2})).unwrap();
        assert_eq!(v, vec![json!(1024), json!(2048), json!(4096), json!(8192)]);
        let v = grid_values(
            "system.omega",
            &json!({"from": 0.5, "to": 1.0, "step": 0.25}),
        )
        .unwrap();
        assert_eq!(v, vec![json!(0.5), json!(0.75), json!(1.0)]);
        let v = grid_values("sampler.kind", &json!(["metropolis", "importance"])).unwrap();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn bad_grid_values_say_what_is_wrong() {
        let cases = [
            (json!([]), "empty list"),
            (json!(3), "must be a list"),
            (json!({"from": 1, "to": 4}), "factor"),
            (json!({"from": 1, "to": 4, "factor": 1}), "factor"),
            (json!({"from": 8, "to": 4, "step": 1}), "empty"),
            (
                json!({"from": 1, "to": 4, "stride": 1}),
                "unknown range field",
            ),
            (json!({"to": 4, "step": 1}), "`from` and `to`"),
        ];
        for (spec, needle) in cases {
            let err = grid_values("k", &spec).unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }
}
