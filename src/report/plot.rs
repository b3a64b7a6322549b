//! SVG line plots (plotters, SVG backend: no system libraries) with optional vertical bars
//! (error bars, spreads) and logarithmic axes.

use std::path::Path;

use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

use plotters::coord::Shift;

use super::output::write_atomic;
use crate::error::Error;

/// One line of a plot.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Vertical bars from low to high (one per point): error bars, or the spread of repeats.
    pub bars: Option<Vec<(f64, f64)>>,
    /// A reference curve: thin, grey, no markers.
    pub reference: bool,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            bars: None,
            reference: false,
        }
    }
}

/// Titles and scales of a plot.
#[derive(Clone, Debug)]
pub struct Axes<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
    pub log_x: bool,
    pub log_y: bool,
}

/// Line colours (colour-blind-safe, Okabe-Ito).
pub(crate) const COLORS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// What draws a figure on the root area it is given.
pub(crate) type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draws an SVG figure of `size` pixels in memory and writes it to `path` atomically, as
/// every other file: a failed drawing or a full disk never leaves a partial figure.
pub(crate) fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> Result<(), Error> {
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, size).into_drawing_area()).map_err(|e| {
        Error::io(
            format!("cannot draw {}", path.display()),
            std::io::Error::other(e.to_string()),
        )
    })?;
    write_atomic(path, svg.as_bytes())
}

/// Writes `series` to an SVG file at `path`.
pub fn line_plot(path: &Path, axes: &Axes, series: &[Series]) -> Result<(), Error> {
    write_svg(path, (900, 600), |root| draw(root, axes, series))
}

fn draw(root: DrawingArea<SVGBackend<'_>, Shift>, axes: &Axes, series: &[Series]) -> Drawn {
    let usable = |&(x, y): &(f64, f64)| {
        x.is_finite() && y.is_finite() && (!axes.log_x || x > 0.0) && (!axes.log_y || y > 0.0)
    };
    // Data extent, bars included.
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for s in series {
        for (i, p) in s.points.iter().enumerate().filter(|(_, p)| usable(p)) {
            xs.push(p.0);
            let (low, high) = s.bars.as_ref().map_or((p.1, p.1), |b| b[i]);
            ys.extend(
                [p.1, low, high]
                    .into_iter()
                    .filter(|y| y.is_finite() && (!axes.log_y || *y > 0.0)),
            );
        }
    }
    // A log axis over less than a decade would carry one tick label or none: draw it linear.
    let axes = &Axes {
        log_x: axes.log_x && spans_a_decade(&xs),
        log_y: axes.log_y && spans_a_decade(&ys),
        ..axes.clone()
    };
    let (x0, x1) = padded_range(&xs, axes.log_x);
    let (y0, mut y1) = padded_range(&ys, axes.log_y);
    let (legend, crowded) = emptiest_corner(series, axes, (x0, x1), (y0, y1));
    if crowded {
        // Every corner holds data: make room above it for the legend.
        y1 = if axes.log_y {
            y1 * (y1 / y0).powf(0.4)
        } else {
            y1 + 0.4 * (y1 - y0)
        };
    }
    let legend = if crowded {
        SeriesLabelPosition::UpperRight
    } else {
        legend
    };

    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(axes.title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80);
    match (axes.log_x, axes.log_y) {
        (true, true) => render(
            builder.build_cartesian_2d(log_axis(x0, x1), log_axis(y0, y1))?,
            axes,
            series,
            usable,
            legend.clone(),
        )?,
        (true, false) => render(
            builder.build_cartesian_2d(log_axis(x0, x1), y0..y1)?,
            axes,
            series,
            usable,
            legend.clone(),
        )?,
        (false, true) => render(
            builder.build_cartesian_2d(x0..x1, log_axis(y0, y1))?,
            axes,
            series,
            usable,
            legend.clone(),
        )?,
        (false, false) => render(
            builder.build_cartesian_2d(x0..x1, y0..y1)?,
            axes,
            series,
            usable,
            legend.clone(),
        )?,
    }
    root.present()?;
    Ok(())
}

type Chart<'a, X, Y> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>;

fn render<X, Y>(
    mut chart: Chart<X, Y>,
    axes: &Axes,
    series: &[Series],
    usable: impl Fn(&(f64, f64)) -> bool,
    legend: SeriesLabelPosition,
) -> Result<(), Box<dyn std::error::Error>>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (x, y) = (chart.x_range(), chart.y_range());
    let label = tick_formatter(y.start, y.end, axes.log_y);
    let x_tick = tick_formatter(x.start, x.end, axes.log_x);
    // Counts (walkers, hidden units) get integer ticks only.
    let integers = series
        .iter()
        .flat_map(|s| &s.points)
        .all(|p| p.0.fract() == 0.0);
    let x_label = |v: &f64| {
        if !integers || v.fract() == 0.0 {
            x_tick(v)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc(axes.x)
        .y_desc(axes.y)
        .x_label_formatter(&x_label)
        .y_label_formatter(&label)
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = if s.reference {
            RGBColor(150, 150, 150)
        } else {
            COLORS[i % COLORS.len()]
        };
        let points: Vec<(f64, f64)> = s.points.iter().copied().filter(&usable).collect();
        let width = if s.reference { 1 } else { 2 };
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        if s.reference {
            continue;
        }
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        if let Some(bars) = &s.bars {
            let bars = s
                .points
                .iter()
                .zip(bars)
                .filter(|(p, (low, high))| usable(p) && low.is_finite() && high.is_finite())
                .map(|(&(x, y), &(low, high))| {
                    // A bar reaching zero or below on a log axis ends three decades down.
                    let low = if axes.log_y { low.max(y * 1e-3) } else { low };
                    ErrorBar::new_vertical(x, low, y, high, color.stroke_width(1), 8)
                });
            chart.draw_series(bars)?;
        }
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn spans_a_decade(values: &[f64]) -> bool {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi >= 10.0 * lo
}

/// The corner of the plot with the fewest data points near it, for the legend, and whether
/// even that one holds some. Reference lines count along their length, bars by their ends.
fn emptiest_corner(
    series: &[Series],
    axes: &Axes,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> (SeriesLabelPosition, bool) {
    let fraction = |v: f64, lo: f64, hi: f64, log: bool| {
        if log {
            (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    let mut counts = [0usize; 4];
    let along = |s: &Series| -> Vec<(f64, f64)> {
        if !s.reference {
            // The points and the ends of their bars.
            let ends = s.points.iter().zip(s.bars.iter().flatten());
            return ends
                .flat_map(|(&(x, _), &(low, high))| [(x, low), (x, high)])
                .chain(s.points.iter().copied())
                .collect();
        }
        s.points
            .windows(2)
            .flat_map(|w| {
                (0..=10).map(move |i| {
                    let t = i as f64 / 10.0;
                    (
                        w[0].0 + t * (w[1].0 - w[0].0),
                        w[0].1 + t * (w[1].1 - w[0].1),
                    )
                })
            })
            .collect()
    };
    for (x, y) in series.iter().flat_map(along) {
        let (fx, fy) = (
            fraction(x, x0, x1, axes.log_x),
            fraction(y, y0, y1, axes.log_y),
        );
        // The legend box covers roughly the outer 40 % x 35 % of a corner.
        let (left, right, low, high) = (fx < 0.4, fx > 0.6, fy < 0.35, fy > 0.65);
        for (i, inside) in [high && right, high && left, low && right, low && left]
            .into_iter()
            .enumerate()
        {
            counts[i] += inside as usize;
        }
    }
    let corners = [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ];
    let best = (0..4).min_by_key(|&i| counts[i]).expect("four corners");
    (corners[best].clone(), counts[best] > 0)
}

/// The data range with 5% margins (of the decades on a log axis; a unit range or a decade
/// around a single value).
pub(super) fn padded_range(values: &[f64], log: bool) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (l, h) = (lo.log10(), hi.log10());
        let span = if h > l { h - l } else { 1.0 };
        return (10f64.powf(l - 0.05 * span), 10f64.powf(h + 0.05 * span));
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// Short tick labels: 4096, 0.0123, 1.5e7.
/// A log axis over [lo, hi] with its ticks at 1, 2 and 5 times the powers of ten inside, or
/// over many decades at powers of ten alone (every few, past a dozen). Plotters' own ticks
/// start at the first power of ten, which leaves an axis of about a decade one or two labels.
pub(crate) fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades = (last - first).max(1);
    let mantissas: &[f64] = if decades > 3 {
        &[1.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    let stride = (decades as usize).div_ceil(12);
    let points = (first..=last)
        .step_by(stride)
        .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|v| (lo..=hi).contains(v))
        .collect();
    (lo..hi).log_scale().with_key_points(points)
}

/// Tick labels for a linear axis over [lo, hi] (a log axis: `format_value`'s): as many
/// digits as it takes for neighbouring ticks, about a tenth of the range apart, to read
/// differently, trailing zeros dropped.
pub(crate) fn tick_formatter(lo: f64, hi: f64, log: bool) -> impl Fn(&f64) -> String {
    let step = (hi - lo).abs() / 10.0;
    move |v: &f64| {
        let (v, a) = (*v, v.abs());
        if log || v == 0.0 || step.is_nan() || step <= 0.0 {
            return format_value(v);
        }
        let trim = |m: String| {
            if m.contains('.') {
                m.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                m
            }
        };
        if (1e-3..1e5).contains(&a) {
            let decimals = (-step.log10()).ceil().clamp(0.0, 8.0) as usize;
            trim(format!("{v:.decimals$}"))
        } else {
            let digits = (a.log10().floor() - step.log10()).ceil().clamp(1.0, 8.0) as usize;
            let text = format!("{v:.digits$e}");
            let (mantissa, exponent) = text.split_once('e').expect("an exponent");
            format!("{}e{exponent}", trim(mantissa.to_string()))
        }
    }
}

pub(crate) fn format_value(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}").replace(".0e", "e")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A figure that fails to draw (or to write) leaves the earlier file whole: a full disk
    /// once left a 0-byte convergence.svg.
    #[test]
    fn figures_are_replaced_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-svg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("energy.svg");
        std::fs::write(&path, "earlier").unwrap();
        let failed = write_svg(&path, (100, 100), |root| {
            root.fill(&WHITE)?;
            Err("no room".into())
        });
        assert!(failed.unwrap_err().to_string().contains("no room"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier");
        assert!(!dir.join("energy.tmp").exists());
        write_svg(&path, (100, 100), |root| Ok(root.fill(&WHITE)?)).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("<svg"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    use plotters::coord::ranged1d::BoldPoints;

    /// The legend goes to a corner without data; a reference line counts along its length;
    /// when every corner holds data the plot makes room above.
    #[test]
    fn the_legend_avoids_the_data() {
        let axes = Axes {
            title: "",
            x: "",
            y: "",
            log_x: false,
            log_y: false,
        };
        let rising = Series::new("a", vec![(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)]);
        let (corner, crowded) = emptiest_corner(&[rising], &axes, (0.0, 1.0), (0.0, 1.0));
        assert!(matches!(corner, SeriesLabelPosition::UpperLeft) && !crowded);
        let top = Series::new("b", vec![(0.0, 0.9), (1.0, 0.9)]);
        let mut bottom = Series::new("c", vec![(0.0, 0.1), (1.0, 0.1)]);
        bottom.reference = true;
        let (_, crowded) = emptiest_corner(&[top, bottom], &axes, (0.0, 1.0), (0.0, 1.0));
        assert!(crowded);
        // Flat data leave every corner free; the bar at the right end reaches two of them.
        let mut spread = Series::new("d", vec![(0.0, 0.5), (1.0, 0.5)]);
        spread.bars = Some(vec![(0.5, 0.5), (0.0, 1.0)]);
        let (corner, _) = emptiest_corner(&[spread], &axes, (0.0, 1.0), (0.0, 1.0));
        assert!(matches!(corner, SeriesLabelPosition::UpperLeft));
        assert!(!spans_a_decade(&[2.0, 15.0]) && spans_a_decade(&[2.0, 20.0]));
    }

    #[test]
    fn writes_an_svg_with_text_and_log_axes() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plot.svg");
        let mut data = Series::new("cpu", vec![(256.0, 1e6), (1024.0, 4e6), (4096.0, 9e6)]);
        data.bars = Some(vec![(9e5, 1.1e6), (3.8e6, 4.2e6), (8.7e6, 9.3e6)]);
        let mut reference = Series::new("reference", vec![(256.0, 2e6), (4096.0, 3e7)]);
        reference.reference = true;
        let axes = Axes {
            title: "throughput",
            x: "walkers",
            y: "walker-steps/s",
            log_x: true,
            log_y: true,
        };
        line_plot(&path, &axes, &[data, reference]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in [
            "throughput",
            "walkers",
            "walker-steps/s",
            "cpu",
            "reference",
            "1000",
        ] {
            assert!(svg.contains(text), "the SVG lacks `{text}`");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(format_value(4096.0), "4096");
        assert_eq!(format_value(0.0125), "0.0125");
        assert_eq!(format_value(1.5e7), "1.5e7");
        // Ticks of a narrow range read differently; a wide one keeps short labels.
        let narrow = tick_formatter(2.99e6, 3.11e6, false);
        assert_eq!(
            [narrow(&3.0e6), narrow(&3.02e6), narrow(&3.1e6)],
            ["3e6", "3.02e6", "3.1e6"]
        );
        let energies = tick_formatter(3.0001, 3.0009, false);
        assert_eq!([energies(&3.0002), energies(&3.0005)], ["3.0002", "3.0005"]);
        let wide = tick_formatter(0.0, 4096.0, false);
        assert_eq!([wide(&4096.0), wide(&512.0)], ["4096", "512"]);
        assert_eq!(tick_formatter(1.0, 1e7, true)(&1e6), "1e6");
        let ticks = |lo: f64, hi: f64| log_axis(lo, hi).key_points(BoldPoints(100));
        assert_eq!(ticks(0.019, 0.21), [0.02, 0.05, 0.1, 0.2]);
        assert_eq!(ticks(200.0, 5e6), [1e3, 1e4, 1e5, 1e6]);
        assert_eq!(ticks(1e-20, 1.0).len(), 11);
        assert_eq!(format_value(1e6), "1e6");
        assert_eq!(format_value(3.0), "3");
    }
}
