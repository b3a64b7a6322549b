//! `convergence.svg`: the energy against the optimisation iteration with its error band and
//! the reference energy, and the gradient norm (log scale) on a panel below.

use std::path::Path;

use plotters::prelude::*;

use plotters::coord::Shift;

use super::plot::{
    Drawn, Symbol, draw_legend, format_value, log_axis, padded_range, tick_formatter, write_svg,
};
use crate::error::Error;

/// One optimisation iteration as plotted.
#[derive(Clone, Copy, Debug)]
pub struct IterationPoint {
    pub iteration: f64,
    pub energy: f64,
    pub error: f64,
    pub gradient_norm: f64,
}

/// The iterations of history.csv rows (`history_header` order), skipping rows that do not
/// parse.
pub fn iteration_points(rows: &[String]) -> Vec<IterationPoint> {
    rows.iter()
        .filter_map(|row| {
            let f: Vec<&str> = row.split(',').collect();
            let number = |i: usize| f.get(i)?.parse::<f64>().ok().filter(|v| v.is_finite());
            Some(IterationPoint {
                iteration: number(0)?,
                energy: number(1)?,
                error: number(2)?,
                gradient_norm: number(8)?,
            })
        })
        .collect()
}

/// Draws the convergence figure of `points` at `path`, with `reference` (energy, label).
pub fn convergence_plot(
    path: &Path,
    points: &[IterationPoint],
    reference: Option<(f64, &str)>,
) -> Result<(), Error> {
    write_svg(path, (900, 700), |root| draw(root, points, reference))
}

const BLUE: RGBColor = RGBColor(0, 114, 178);
const ORANGE: RGBColor = RGBColor(213, 94, 0);

fn draw(
    root: DrawingArea<SVGBackend<'_>, Shift>,
    points: &[IterationPoint],
    reference: Option<(f64, &str)>,
) -> Drawn {
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(440);
    let its: Vec<f64> = points.iter().map(|p| p.iteration).collect();
    let (x0, x1) = padded_range(&its, false);
    let integer = |v: &f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            String::new()
        }
    };

    let mut ys: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.energy - p.error, p.energy + p.error])
        .collect();
    ys.extend(reference.map(|r| r.0));
    let (y0, y1) = padded_range(&ys, false);
    let mut chart = ChartBuilder::on(&top)
        .caption("Energy during the optimisation", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("iteration")
        .y_desc("energy (natural units)")
        .x_label_formatter(&integer)
        .y_label_formatter(&tick_formatter(y0, y1, false))
        .draw()?;
    let band: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.iteration, p.energy + p.error))
        .chain(
            points
                .iter()
                .rev()
                .map(|p| (p.iteration, p.energy - p.error)),
        )
        .collect();
    chart.draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.25).filled())))?;
    chart.draw_series(LineSeries::new(
        points.iter().map(|p| (p.iteration, p.energy)),
        BLUE.stroke_width(2),
    ))?;
    let mut entries = vec![
        (
            "one standard error".to_string(),
            Symbol::Band(BLUE.mix(0.25)),
        ),
        (
            "energy".to_string(),
            Symbol::Line {
                color: BLUE,
                width: 2,
                dash: None,
                marker: None,
            },
        ),
    ];
    if let Some((energy, source)) = reference {
        let dash = (8, 5);
        chart.draw_series(DashedLineSeries::new(
            [(x0, energy), (x1, energy)],
            dash.0,
            dash.1,
            BLACK.stroke_width(1),
        ))?;
        // Dashed in the legend as in the figure (it was drawn solid there).
        entries.push((
            format!("reference {} ({source})", format_value(energy)),
            Symbol::Line {
                color: BLACK,
                width: 1,
                dash: Some(dash),
                marker: None,
            },
        ));
    }
    draw_legend(
        &chart.plotting_area().strip_coord_spec(),
        &entries,
        &SeriesLabelPosition::UpperRight,
    )?;

    let grads: Vec<f64> = points
        .iter()
        .map(|p| p.gradient_norm)
        .filter(|g| *g > 0.0)
        .collect();
    let (g0, g1) = padded_range(&grads, true);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, log_axis(g0, g1))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("iteration")
        .y_desc("gradient norm |dE/dtheta|")
        .x_label_formatter(&integer)
        .y_label_formatter(&tick_formatter(g0, g1, true))
        .draw()?;
    chart.draw_series(LineSeries::new(
        points
            .iter()
            .filter(|p| p.gradient_norm > 0.0)
            .map(|p| (p.iteration, p.gradient_norm)),
        ORANGE.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_rows_become_points_and_a_figure() {
        let rows: Vec<String> = (1..=30)
            .map(|i| {
                let e = 3.0 + 0.3 / i as f64;
                format!(
                    "{i},{e},0.002,0.002,0.0019,4.5,0.99,1.7,{},0,,1.0",
                    1.0 / i as f64
                )
            })
            .chain(["31,NaN,0,0,0,0,0,0,0,0,,1".to_string()])
            .collect();
        let points = iteration_points(&rows);
        assert_eq!(points.len(), 30);
        assert_eq!(points[9].iteration, 10.0);
        assert!((points[9].gradient_norm - 0.1).abs() < 1e-15);
        let dir = std::env::temp_dir().join(format!("rbm-vmc-conv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("convergence.svg");
        convergence_plot(&path, &points, Some((3.0, "exact"))).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("gradient norm") && svg.contains("reference 3 (exact)"));
        // Natural units, as every other figure says (it said atomic units).
        assert!(svg.contains("energy (natural units)") && !svg.contains("atomic"));
        // The reference is dashed in the legend as in the plot (the legend's was solid): 8
        // pixel black dashes on two rows, the line's and the legend's.
        let mut rows: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke=\"#000000\""))
            .filter_map(|l| {
                let points = l.split("points=\"").nth(1)?;
                let mut ends = points.split_whitespace();
                let (a, b) = (ends.next()?, ends.next()?);
                let ((x0, y0), (x1, y1)) = (a.split_once(',')?, b.split_once(',')?);
                let length = x1.parse::<i32>().ok()? - x0.parse::<i32>().ok()?;
                (y0 == y1 && length == 8).then_some(y0)
            })
            .collect();
        rows.dedup();
        assert_eq!(rows.len(), 2, "dashes on rows {rows:?}");
        // A single iteration still draws.
        convergence_plot(&path, &points[..1], None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
