//! A sweep's figures: `energy.svg`, `error.svg` (walker or step sweeps) and `density.svg`.

use crate::error::Error;
use crate::report::{
    Axes, Curve, OutputDir, Reference, Series, density_axis, density_curves_svg, line_plot,
    residual_plot,
};

use super::grid::{Sweep, plain};
use super::row::{Row, point_reference};

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
        &density_axis(dims),
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
pub(super) fn plot(
    sweep: &Sweep,
    rows: &[Row],
    out: &OutputDir,
) -> Result<Vec<&'static str>, Error> {
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
    // A swept reference is not a setting of the runs: it labels no series.
    let others = |r: &&Row| {
        sweep.keys[1..]
            .iter()
            .filter(|k| !k.starts_with("reference"))
            .map(|k| format!("{k}={}", plain(&r.values[k])))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut series: Vec<Series> = Vec::new();
    for r in &rows {
        let label = match others(r) {
            l if l.is_empty() => "VMC energy (bars: +- 1 error)".to_string(),
            l => l,
        };
        push_with_bar(
            &mut series,
            label,
            x_of(r),
            r.estimate.energy,
            r.estimate.error,
        );
    }
    series.iter_mut().for_each(sort_by_x);
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
    // Each point's reference: one line where all share it, else a mark at each point that
    // has one; and beneath, the points' differences from their references.
    let each: Vec<Option<Reference>> = rows
        .iter()
        .map(|r| point_reference(sweep, r.index))
        .collect();
    let residuals = residual_series(&rows, &each, &x_of, &others);
    let references: Vec<(f64, &Reference)> = rows
        .iter()
        .zip(&each)
        .filter_map(|(r, reference)| reference.as_ref().map(|reference| (x_of(r), reference)))
        .collect();
    match references.as_slice() {
        [] => {}
        [(_, r), rest @ ..] if rest.len() + 1 == rows.len() && rest.iter().all(|(_, x)| x == r) => {
            let mut line = Series::new(
                format!("reference {} ({})", r.energy, r.source),
                vec![(lo, r.energy), (hi, r.energy)],
            );
            line.reference = true;
            series.push(line);
        }
        many => {
            let mut marks = Series::new(
                "reference of each point",
                many.iter().map(|(x, r)| (*x, r.energy)).collect(),
            );
            (marks.reference, marks.marks) = (true, true);
            series.push(marks);
        }
    }
    let title = format!("Energy against {}", axis_label(first));
    let axes = Axes {
        title: &title,
        x: &x_label,
        y: "energy (natural units)",
        log_x: numeric && lo > 0.0 && hi / lo >= 16.0,
        log_y: false,
    };
    if residuals.is_empty() {
        line_plot(&out.file("energy.svg"), &axes, &series)?;
    } else {
        let mut zero = Series::new("", vec![(lo, 0.0), (hi, 0.0)]);
        zero.reference = true;
        let mut below = residuals;
        below.push(zero);
        residual_plot(
            &out.file("energy.svg"),
            &axes,
            &series,
            "E - E_ref (natural units)",
            &below,
        )?;
    }

    if density_overlay(sweep, &rows, out, &others)? {
        written.push("density.svg");
    } else if out.is_writable() {
        // Drawn while the sweep had fewer points: it would show only those.
        match std::fs::remove_file(out.file("density.svg")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("cannot remove the outdated density.svg", e));
            }
            _ => {}
        }
    }
    if has_error_plot(sweep) {
        // One series per combination of the keys other than the one that sets the samples.
        let mut groups: Vec<Series> = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.estimate.error.is_finite() && r.estimate.error > 0.0)
        {
            let label = match others(r) {
                l if l.is_empty() => "VMC error of the energy".to_string(),
                l => l,
            };
            let point = (r.samples as f64, r.estimate.error);
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

/// The differences E - E_ref of the points with a reference, one series per combination of
/// the keys after the first, with the energy's error bars (the reference's added in
/// quadrature).
fn residual_series(
    rows: &[&Row],
    references: &[Option<Reference>],
    x_of: &dyn Fn(&&Row) -> f64,
    others: &dyn Fn(&&Row) -> String,
) -> Vec<Series> {
    let mut groups: Vec<Series> = Vec::new();
    for (r, reference) in rows.iter().zip(references) {
        let Some(reference) = reference else {
            continue;
        };
        let x = x_of(r);
        let difference = r.estimate.energy - reference.energy;
        let error = r.estimate.error.hypot(reference.error.unwrap_or(0.0));
        push_with_bar(&mut groups, others(r), x, difference, error);
    }
    for g in &mut groups {
        sort_by_x(g);
        // No legend: the series' colours are those of the panel above.
        g.label.clear();
    }
    groups
}

/// Adds (x, y) with a bar of +- `error` to the series labelled `label`, new or not.
fn push_with_bar(series: &mut Vec<Series>, label: String, x: f64, y: f64, error: f64) {
    let index = match series.iter().position(|s| s.label == label) {
        Some(i) => i,
        None => {
            let mut s = Series::new(label, Vec::new());
            s.bars = Some(Vec::new());
            series.push(s);
            series.len() - 1
        }
    };
    series[index].points.push((x, y));
    let bars = series[index].bars.as_mut().expect("set above");
    bars.push((y - error, y + error));
}

/// Orders a series' points (and their bars) by x.
fn sort_by_x(s: &mut Series) {
    let mut pairs: Vec<((f64, f64), (f64, f64))> = s
        .points
        .iter()
        .copied()
        .zip(s.bars.take().unwrap_or_default())
        .collect();
    pairs.sort_by(|a, b| a.0.0.total_cmp(&b.0.0));
    s.points = pairs.iter().map(|p| p.0).collect();
    s.bars = Some(pairs.iter().map(|p| p.1).collect());
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
    // "walkers (walkers)" says nothing twice.
    if meaning == key {
        return key.to_string();
    }
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
        assert_eq!(axis_label("walkers"), "walkers");
    }
}
