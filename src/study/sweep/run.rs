//! Running a sweep's points (dealt out over a team of processes), resumably.

use std::path::Path;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::config::read_json;
use crate::control::{Control, StopReason};
use crate::driver::{self, Context};
use crate::error::Error;
use crate::report::{Bar, Console, OutputDir};
use crate::stats::Summary;
use crate::team::solo;

use super::grid::{Mode, PointSpec, Sweep, describe};
use super::plot::plot;
use super::row::{Row, RowObservables, append, csv_header, csv_line};

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
    let (prepared, done) = team.from_root_work(
        || prepare(sweep, out, resume),
        |rows| rows.iter().map(|r| r.index).collect::<Vec<_>>(),
    )?;
    let mut rows = prepared.unwrap_or_default();

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
            let mut row: Row = serde_json::from_slice(bytes).expect("rows are sent as JSON");
            keep_row(out, sweep, &mut row)?;
            append(&out.file("sweep.csv"), &csv_line(sweep, &row))?;
            report_row(&bar, sweep, &row);
            rows.push(row);
            bar.inc(1);
        }
        if team.is_root() {
            plots = write_table(sweep, &mut rows, out)?;
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
        summarise(sweep, &rows, &plots, out, ctx)?;
    }
    Ok(rows)
}

/// The file a finished point's row is kept in, beside the point's own results: what a worker
/// or `--collect` rebuilds the table from.
pub(super) fn row_file(index: usize) -> String {
    format!("points/{index:04}/row.json")
}

/// Seals `row` and keeps it in its point's folder.
pub(super) fn keep_row(out: &OutputDir, sweep: &Sweep, row: &mut Row) -> Result<(), Error> {
    row.compare(sweep);
    row.checksum = row.seal();
    let text = serde_json::to_string_pretty(&row).expect("plain values");
    out.write(&row_file(row.index), text.as_bytes())
}

/// The point's line: its estimate, or why it failed.
pub(super) fn report_row(bar: &Bar, sweep: &Sweep, row: &Row) {
    let point = format!(
        "point {}/{} {}",
        row.index + 1,
        sweep.points.len(),
        describe(&sweep.keys, &sweep.points[row.index].values)
    );
    if row.completed() {
        bar.line(&format!(
            "{point}: E = {:.6} +- {:.6}, variance {:.3e}, {} samples, {:.1} s{}",
            row.estimate.energy,
            row.estimate.error,
            row.estimate.variance,
            row.samples,
            row.seconds,
            row.warning
                .as_ref()
                .map_or(String::new(), |w| format!("  WARNING: {w}"))
        ));
    } else {
        bar.warn(&format!("{point} {}", row.status));
    }
}

/// sweep.json and the figures from `rows` (sorted here); returns the figures written.
pub(super) fn write_table(
    sweep: &Sweep,
    rows: &mut [Row],
    out: &OutputDir,
) -> Result<Vec<&'static str>, Error> {
    rows.sort_by_key(|r| r.index);
    let text = serde_json::to_string_pretty(&rows).expect("plain values");
    out.write("sweep.json", text.as_bytes())?;
    plot(sweep, rows, out)
}

/// The closing line, naming the files; an error when points failed.
pub(super) fn summarise(
    sweep: &Sweep,
    rows: &[Row],
    plots: &[&str],
    out: &OutputDir,
    ctx: &Context,
) -> Result<(), Error> {
    let mut files = vec!["sweep.csv", "sweep.json"];
    files.extend(plots);
    let count = if rows.len() == sweep.points.len() {
        rows.len().to_string()
    } else {
        format!("{} of {}", rows.len(), sweep.points.len())
    };
    ctx.console.line(&format!(
        "{count} points in {}: {}",
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
    Ok(())
}

/// Writes the definition (or checks it against the one being resumed) and the CSV of the
/// rows kept; returns those rows.
fn prepare(sweep: &Sweep, out: &OutputDir, resume: bool) -> Result<Vec<Row>, Error> {
    let rows = if resume {
        check_definition(sweep, out)?;
        read_rows(sweep, out)?
    } else {
        out.write("sweep-definition.json", &definition(sweep))?;
        Vec::new()
    };
    // The CSV is rewritten from the rows kept, then appended to as points complete.
    write_csv(sweep, &rows, out)?;
    Ok(rows)
}

/// sweep-definition.json's content: the points' values and fingerprints, and the provenance.
pub(super) fn definition(sweep: &Sweep) -> Vec<u8> {
    let mut definition = sweep.definition();
    definition["provenance"] = crate::report::provenance();
    serde_json::to_string_pretty(&definition)
        .expect("plain values")
        .into_bytes()
}

/// sweep.csv from `rows`.
pub(super) fn write_csv(sweep: &Sweep, rows: &[Row], out: &OutputDir) -> Result<(), Error> {
    let mut csv = csv_header(sweep);
    for row in rows {
        csv.push_str(&csv_line(sweep, row));
    }
    out.write("sweep.csv", csv.as_bytes())
}

/// Refuses a directory whose sweep-definition.json is missing, damaged or another sweep's.
pub(super) fn check_definition(sweep: &Sweep, out: &OutputDir) -> Result<(), Error> {
    let path = out.file("sweep-definition.json");
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(Error::input(format!(
            "nothing to resume in {}: it holds no sweep-definition.json",
            out.path().display()
        )));
    }
    // Damaged, not missing: say what is wrong with it.
    let cannot = |why: String| {
        Error::input(format!(
            "{why}; the sweep in {} cannot be resumed: run it again with another --out",
            out.path().display()
        ))
    };
    let stored = read_json(&path, "sweep definition").map_err(|e| cannot(e.to_string()))?;
    if !(stored["keys"].is_array() && stored["points"].is_array() && stored["mode"].is_string()) {
        return Err(cannot(format!(
            "sweep definition {} is damaged: it lacks `keys`, `mode` or `points`",
            path.display()
        )));
    }
    if let Some(why) = sweep.differs_from(&stored) {
        return Err(Error::input(format!(
            "{} holds {why}; resume it with the sweep file and --set options it was \
             started with, or choose another --out",
            out.path().display()
        )));
    }
    Ok(())
}

/// The rows of the points done: those in sweep.json, and those kept in the points' folders
/// (by workers, or after the last sweep.json was written), checked.
pub(super) fn read_rows(sweep: &Sweep, out: &OutputDir) -> Result<Vec<Row>, Error> {
    let mut rows: Vec<Row> = Vec::new();
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
    let listed: Vec<usize> = rows.iter().map(|r| r.index).collect();
    for point in sweep.points.iter().filter(|p| !listed.contains(&p.index)) {
        let path = out.file(&row_file(point.index));
        if !path.exists() {
            continue;
        }
        let row = serde_json::from_value(read_json(&path, "sweep point's row")?)
            .map_err(|e| e.to_string())
            .and_then(|row: Row| check_rows(sweep, vec![row]))
            .map_err(|e| Error::input(format!("{} is damaged: {e}", path.display())))?;
        rows.extend(row);
    }
    rows.sort_by_key(|r| r.index);
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
        if let Some(name) = row.unknown.keys().next() {
            return Err(format!(
                "the row of point {} has an unknown field `{name}`",
                row.index
            ));
        }
        let failed = row.status.starts_with("failed");
        if !(failed || row.completed() && row.estimate.energy.is_finite()) {
            return Err(format!(
                "the row of point {} is neither completed with an energy nor failed",
                row.index
            ));
        }
        if row.checksum != row.seal() {
            return Err(format!(
                "the row of point {index} {}; remove the row and points/{index:04} to run the \
                 point again",
                if row.checksum.is_empty() {
                    "has no checksum (an older version of this program wrote it)"
                } else {
                    "was changed after it was written (its checksum differs)"
                },
                index = row.index
            ));
        }
    }
    Ok(rows)
}

/// Runs one point on this process alone, into `points/NNNN/`; a point whose numbers break
/// down is a failed row, not the end of the sweep.
pub(super) fn run_point(
    sweep: &Sweep,
    point: &PointSpec,
    out: &OutputDir,
    control: &Control,
) -> Result<Row, Error> {
    let start = Instant::now();
    // Where a failure happened, for its message (the sweep stops at it).
    let place = || {
        let values: Vec<String> = (sweep.keys.iter().zip(&point.values))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        format!("sweep point {} ({})", point.index, values.join(", "))
    };
    let dir = OutputDir::create(
        Some(&out.file(&format!("points/{:04}", point.index))),
        true,
        &[],
    )
    .map_err(|e| e.at(&place()))?;
    let ctx = Context {
        console: Console::new(true),
        control: control.clone(),
        team: solo(),
    };
    let outcome = match sweep.mode {
        Mode::Optimise => driver::run(&point.config, &dir, &ctx),
        Mode::Production => driver::sample(&point.config, None, &dir, &ctx),
        Mode::Dmc => {
            crate::dmc::dmc(&point.config, None, &dir, &ctx).map(|o| o.as_outcome(&point.config))
        }
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
                estimate: e.summary(),
                samples: e.samples,
                reference: None,
                difference_sigma: None,
                seconds,
                engine: outcome.engine,
                status: "completed".into(),
                warning: outcome.warning,
                observables: outcome.observables.as_ref().map(RowObservables::new),
                checksum: String::new(),
                unknown: Map::new(),
            })
        }
        Err(Error::Diverged(why)) => Ok(Row {
            index: point.index,
            values,
            estimate: Summary::UNKNOWN,
            samples: 0,
            reference: None,
            difference_sigma: None,
            seconds,
            engine: String::new(),
            status: format!("failed: {why}"),
            warning: None,
            observables: None,
            checksum: String::new(),
            unknown: Map::new(),
        }),
        // Which point failed, and with which values (the sweep stops here).
        Err(e) => Err(e.at(&place())),
    }
}
