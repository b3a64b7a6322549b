//! Figures of the densities: rho(r) curves with error bands and the non-interacting density
//! dashed (one run, or several overlaid by a sweep), and the x-y density as a heat map with a
//! colour bar.

use std::path::Path;

use plotters::prelude::*;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;

use super::output::write_atomic;
use super::plot::{Drawn, look, svg_text, write_svg};
use crate::error::Error;
use crate::physics::System;
use crate::stats::Observed;
use crate::stats::observables::Histogram;

/// One rho(r) curve: label, points and errors (the band is value +- error).
#[derive(Clone, Debug)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub errors: Vec<f64>,
}

/// density.svg of one run: its rho(r) with the error band and the non-interacting density.
pub fn density_svg(path: &Path, o: &Observed, system: &System) -> Result<(), Error> {
    let h = &o.radial;
    let curve = measured_curve(h);
    let r_max = h.centres.len() as f64 * h.width;
    let reference = reference_curve(system, r_max).map(|p| ("non-interacting".to_string(), p));
    let title = format!(
        "One-body density, P = {}, D = {}, omega = {}",
        system.particles, system.dims, system.omega
    );
    let y = density_axis(system.dims);
    density_curves_svg(path, &title, &y, &[curve], reference.as_slice())
}

/// pair.svg of one run: P(r12) with its error band and, for distinguishable particles, the
/// non-interacting ground state's.
pub fn pair_svg(path: &Path, o: &Observed, system: &System) -> Result<(), Error> {
    let h = &o.pair;
    let curve = measured_curve(h);
    let r_max = h.centres.len() as f64 * h.width;
    let reference: Option<Vec<(f64, f64)>> = (0..=200)
        .map(|i| {
            let r = r_max * i as f64 / 200.0;
            system.non_interacting_pair_density(r).map(|v| (r, v))
        })
        .collect();
    let reference = reference.map(|p| ("non-interacting".to_string(), p));
    let title = format!(
        "Pair-distance distribution P(r12), P = {}, D = {}, omega = {}",
        system.particles, system.dims, system.omega
    );
    let y = "P(r12) (pairs per unit distance)";
    density_curves_svg(path, &title, y, &[curve], reference.as_slice())
}

/// A measured histogram as a curve with its error band.
fn measured_curve(h: &Histogram) -> Curve {
    Curve {
        label: "VMC (band: +- 1 error)".into(),
        points: h
            .centres
            .iter()
            .copied()
            .zip(h.values.iter().copied())
            .collect(),
        errors: h.errors.clone(),
    }
}

/// The y axis of a one-body density in `dims` dimensions.
pub fn density_axis(dims: usize) -> String {
    format!("rho(r) (particles per unit {})", volume_word(dims))
}

/// The non-interacting density on a fine grid over [0, r_max].
pub fn reference_curve(system: &System, r_max: f64) -> Option<Vec<(f64, f64)>> {
    (0..=200)
        .map(|i| {
            let r = r_max * i as f64 / 200.0;
            system.non_interacting_density(r).map(|v| (r, v))
        })
        .collect()
}

/// Curves against r (densities, P(r12)) with their error bands, and dashed references, in
/// one figure; `y` names the y axis.
pub fn density_curves_svg(
    path: &Path,
    title: &str,
    y: &str,
    curves: &[Curve],
    references: &[(String, Vec<(f64, f64)>)],
) -> Result<(), Error> {
    write_svg(path, (900, 600), |root| {
        draw_curves(root, title, y, curves, references)
    })
}

fn draw_curves(
    root: DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    y: &str,
    curves: &[Curve],
    references: &[(String, Vec<(f64, f64)>)],
) -> Drawn {
    let finite = |v: &f64| v.is_finite();
    let x_max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .chain(references.iter().flat_map(|(_, r)| r.iter().map(|p| p.0)))
        .filter(finite)
        .fold(0.0, f64::max);
    let y_max = curves
        .iter()
        .flat_map(|c| {
            c.points
                .iter()
                .zip(&c.errors)
                .map(|(p, e)| p.1 + if e.is_finite() { *e } else { 0.0 })
        })
        .chain(references.iter().flat_map(|(_, r)| r.iter().map(|p| p.1)))
        .filter(finite)
        .fold(0.0, f64::max);
    // Up to where the curves fall below 0.2 % of the peak (the tail says nothing), with a
    // margin, and room above the peak for the legend.
    let visible = curves
        .iter()
        .flat_map(|c| c.points.iter().copied())
        .chain(references.iter().flat_map(|(_, r)| r.iter().copied()))
        .filter(|p| p.1.is_finite() && p.1 > 2e-3 * y_max)
        .map(|p| p.0)
        .fold(0.0, f64::max);
    let x_max = (1.15 * visible).min(x_max);
    let (x_max, y_max) = (
        if x_max > 0.0 { x_max } else { 1.0 },
        if y_max > 0.0 { 1.25 * y_max } else { 1.0 },
    );
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    let label = |v: &f64| super::plot::format_value(*v);
    chart
        .configure_mesh()
        .x_desc("r (natural units: hbar = m = e = 1)")
        .y_desc(y)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    for (i, c) in curves.iter().enumerate() {
        let look = look(i);
        let color = look.color;
        let band: Vec<(f64, f64)> = c
            .points
            .iter()
            .zip(&c.errors)
            .map(|(p, e)| (p.0, p.1 + e))
            .chain(
                c.points
                    .iter()
                    .zip(&c.errors)
                    .rev()
                    .map(|(p, e)| (p.0, (p.1 - e).max(0.0))),
            )
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            band,
            color.mix(0.25).filled(),
        )))?;
        // Past the seven colours, dashed.
        let style = color.stroke_width(2);
        let anno = match look.dash {
            None => chart.draw_series(LineSeries::new(c.points.clone(), style))?,
            Some((on, off)) => {
                chart.draw_series(DashedLineSeries::new(c.points.clone(), on, off, style))?
            }
        };
        anno.label(c.label.clone())
            .legend(move |(x, y)| match look.dash {
                None => PathElement::new(vec![(x, y), (x + 20, y)], style).into_dyn(),
                Some((on, off)) => {
                    DashedPathElement::new(vec![(x, y), (x + 20, y)], on, off, style).into_dyn()
                }
            });
    }
    for (i, (name, points)) in references.iter().enumerate() {
        let color = if curves.len() > 1 {
            look(i).color
        } else {
            RGBColor(90, 90, 90)
        };
        chart
            .draw_series(DashedLineSeries::new(
                points.clone(),
                8,
                5,
                color.stroke_width(2),
            ))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn volume_word(dims: usize) -> &'static str {
    match dims {
        1 => "length",
        2 => "area",
        _ => "volume",
    }
}

/// Viridis at a few anchors, interpolated: t in [0, 1].
fn viridis(t: f64) -> RGBColor {
    const ANCHORS: [(f64, f64, f64); 6] = [
        (68.0, 1.0, 84.0),
        (65.0, 68.0, 135.0),
        (42.0, 120.0, 142.0),
        (34.0, 168.0, 132.0),
        (122.0, 209.0, 81.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (ANCHORS.len() - 1) as f64;
    let i = (x as usize).min(ANCHORS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |u: f64, v: f64| (u + f * (v - u)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// density2d.svg: the x-y density as a heat map, with a colour bar. Its rectangles (the
/// cells, the bar's rows) are drawn with `shape-rendering="crispEdges"`: edge to edge, each
/// antialiased on its own, they let the white background through in thin seams wherever the
/// figure is scaled.
pub fn density2d_svg(path: &Path, grid: &Histogram, system: &System) -> Result<(), Error> {
    let svg = svg_text(path, (820, 700), |root| draw_grid(root, grid, system))?;
    let crisp = svg.replace("<rect ", "<rect shape-rendering=\"crispEdges\" ");
    write_atomic(path, crisp.as_bytes())
}

fn draw_grid(root: DrawingArea<SVGBackend<'_>, Shift>, grid: &Histogram, system: &System) -> Drawn {
    let n = grid.centres.len();
    let top = grid
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let top = if top > 0.0 { top } else { 1.0 };
    // The square holding every cell above 0.2 % of the peak, with a margin.
    let reach = (0..n * n)
        .filter(|&i| grid.values[i] > 2e-3 * top)
        .map(|i| {
            let (x, y) = (grid.centres[i % n], grid.centres[i / n]);
            x.abs().max(y.abs()) + grid.width / 2.0
        })
        .fold(0.0, f64::max);
    // On a cell edge, so the cells drawn fill the square.
    let full = n as f64 * grid.width / 2.0;
    let half = if reach > 0.0 {
        full - ((full - 1.1 * reach) / grid.width).floor().max(0.0) * grid.width
    } else {
        full
    };
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(690);
    let title = format!(
        "x-y density, P = {}, omega = {} (normalised to P)",
        system.particles, system.omega
    );
    let mut chart = ChartBuilder::on(&left)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(-half..half, -half..half)?;
    let label = |v: &f64| super::plot::format_value(*v);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x (natural units: hbar = m = e = 1)")
        .y_desc("y (natural units)")
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;
    let w = grid.width;
    let inside = |i: &usize| {
        let (x, y) = (grid.centres[i % n], grid.centres[i / n]);
        x.abs() < half && y.abs() < half
    };
    chart.draw_series((0..n * n).filter(inside).map(|i| {
        let (ix, iy) = (i % n, i / n);
        let (x, y) = (grid.centres[ix], grid.centres[iy]);
        Rectangle::new(
            [(x - w / 2.0, y - w / 2.0), (x + w / 2.0, y + w / 2.0)],
            viridis(grid.values[i] / top).filled(),
        )
    }))?;
    // The colour bar: the density scale from 0 to the largest cell.
    let mut bar = ChartBuilder::on(&right)
        .margin_top(60)
        .margin_bottom(65)
        .margin_right(5)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, 0.0..top)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc("density (per unit area)")
        .y_label_formatter(&label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;
    // One row per pixel of the bar: no visible steps.
    let steps = bar.plotting_area().dim_in_pixel().1.max(1);
    bar.draw_series((0..steps).map(|k| {
        let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
        Rectangle::new(
            [(0.0, a * top), (1.0, b * top)],
            viridis((a + b) / 2.0).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The heat map's cells and the colour bar's rows are drawn crisp (they showed white
    /// seams when the figure was scaled), and the bar has a row per pixel, not 100 bands.
    #[test]
    fn the_heat_map_has_no_seams() {
        let n = 20;
        let centres: Vec<f64> = (0..n).map(|i| -1.9 + 0.2 * i as f64).collect();
        let values: Vec<f64> = (0..n * n)
            .map(|i| {
                let (x, y) = (centres[i % n], centres[i / n]);
                (-(x * x + y * y)).exp()
            })
            .collect();
        let grid = Histogram {
            centres,
            width: 0.2,
            errors: vec![0.0; n * n],
            values,
            outside: 0.0,
            samples: 1.0,
        };
        let system = System {
            particles: 2,
            dims: 2,
            omega: 1.0,
            interaction: true,
            statistics: crate::physics::Statistics::Distinguishable,
        };
        let dir = std::env::temp_dir().join(format!("rbm-vmc-heat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("density2d.svg");
        density2d_svg(&path, &grid, &system).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let rects = svg.matches("<rect ").count();
        assert!(rects > 300 + 400, "{rects} rectangles");
        assert_eq!(
            svg.matches("<rect shape-rendering=\"crispEdges\" ").count(),
            rects
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
    }
}
