//! SVG line plots (plotters, SVG backend: no system libraries) with optional vertical bars
//! (error bars, spreads) and logarithmic axes.

use std::path::Path;

use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

use plotters::coord::{CoordTranslate, Shift};
use plotters::drawing::DrawingAreaErrorKind;
use plotters::element::DashedPathElement;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
    /// A reference drawn as a mark at each point, without a line (references that differ
    /// from point to point, known at some points only).
    pub marks: bool,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            bars: None,
            reference: false,
            marks: false,
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

/// A series' marker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// How the i-th series is drawn: the seven colours, then the seven again with another marker
/// and dash pattern, so that 28 series look different (past that they repeat).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Look {
    pub color: RGBColor,
    pub marker: Marker,
    /// Dash and gap lengths in pixels; None for a solid line.
    pub dash: Option<(u32, u32)>,
}

pub(crate) fn look(i: usize) -> Look {
    let round = (i / COLORS.len()) % 4;
    Look {
        color: COLORS[i % COLORS.len()],
        marker: [
            Marker::Circle,
            Marker::Triangle,
            Marker::Square,
            Marker::Cross,
        ][round],
        dash: [None, Some((10, 5)), Some((3, 4)), Some((14, 4))][round],
    }
}

/// `marker` centred on `at` (a data point, or a pixel of the legend).
fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    marker: Marker,
    at: CT::From,
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    CT::From: Clone,
{
    let (fill, line) = (color.filled(), color.stroke_width(2));
    let at = EmptyElement::at(at);
    match marker {
        Marker::Circle => area.draw(&(at + Circle::new((0, 0), 4, fill))),
        Marker::Triangle => area.draw(&(at + TriangleMarker::new((0, 0), 6, fill))),
        Marker::Square => area.draw(&(at + Rectangle::new([(-4, -4), (4, 4)], fill))),
        Marker::Cross => area.draw(&(at + Cross::new((0, 0), 4, line))),
    }
}

/// What a legend entry shows beside its label.
#[derive(Clone, Debug)]
pub(crate) enum Symbol {
    /// A line of `width` pixels, dashed or not, with a marker or without.
    Line {
        color: RGBColor,
        width: u32,
        dash: Option<(u32, u32)>,
        marker: Option<Marker>,
    },
    /// A filled band (an error band), as a small box.
    Band(RGBAColor),
}

/// The legend's font size in pixels.
const LEGEND_FONT: f64 = 14.0;

/// The width in pixels of `text` in a sans-serif font of `size` pixels, erring wide: an SVG
/// is laid out by its reader, so the exact glyphs are unknown (DejaVu Sans, wider than
/// Helvetica and Arial, sets these widths).
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    let em = |c: char| match c {
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.32,
        'f' | 't' | 'r' | '(' | ')' | '[' | ']' | ' ' | '-' | '/' | 'I' => 0.4,
        'm' | 'w' | 'M' | 'W' => 1.0,
        '=' | '+' | '<' | '>' | '~' | '^' | '_' => 0.85,
        c if c.is_ascii_uppercase() => 0.75,
        _ => 0.62,
    };
    text.chars().map(em).sum::<f64>() * size
}

/// Draws a legend of `entries` in the `corner` of `area` (the plotting area), its box as wide
/// as its longest label needs (plotters' own legend guesses the width from the number of
/// characters, too narrow for labels such as `system.omega=0.28`).
pub(crate) fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[(String, Symbol)],
    corner: &SeriesLabelPosition,
) -> Drawn {
    if entries.is_empty() {
        return Ok(());
    }
    let (pad, symbol, row) = (8, 30, (LEGEND_FONT * 1.45).round() as i32);
    let text = entries
        .iter()
        // plotters' SVG writes a font of size s as font-size s / 1.24.
        .map(|(label, _)| text_width(label, LEGEND_FONT / 1.24))
        .fold(0.0, f64::max)
        .ceil() as i32;
    let (w, h) = (
        2 * pad + symbol + text,
        2 * pad + row * entries.len() as i32,
    );
    let (area_w, area_h) = area.dim_in_pixel();
    let (area_w, area_h) = (area_w as i32, area_h as i32);
    let margin = 10;
    let x = match corner {
        SeriesLabelPosition::UpperLeft | SeriesLabelPosition::LowerLeft => margin,
        _ => (area_w - w - margin).max(0),
    };
    let y = match corner {
        SeriesLabelPosition::LowerLeft | SeriesLabelPosition::LowerRight => {
            (area_h - h - margin).max(0)
        }
        _ => margin,
    };
    area.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        WHITE.mix(0.85).filled(),
    ))?;
    area.draw(&Rectangle::new([(x, y), (x + w, y + h)], BLACK))?;
    let font = ("sans-serif", LEGEND_FONT)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (k, (label, sym)) in entries.iter().enumerate() {
        let cy = y + pad + row * k as i32 + row / 2;
        let (x0, x1) = (x + pad, x + pad + symbol - 6);
        match *sym {
            Symbol::Line {
                color,
                width,
                dash,
                marker,
            } => {
                let style = color.stroke_width(width);
                match dash {
                    _ if width == 0 => {}
                    None => area.draw(&PathElement::new(vec![(x0, cy), (x1, cy)], style))?,
                    Some((on, off)) => area.draw(&DashedPathElement::new(
                        vec![(x0, cy), (x1, cy)],
                        on,
                        off,
                        style,
                    ))?,
                }
                if let Some(m) = marker {
                    draw_marker(area, m, ((x0 + x1) / 2, cy), color)?;
                }
            }
            Symbol::Band(color) => area.draw(&Rectangle::new(
                [(x0, cy - 6), (x1, cy + 6)],
                color.filled(),
            ))?,
        }
        area.draw(&Text::new(
            label.clone(),
            (x + pad + symbol, cy),
            font.clone(),
        ))?;
    }
    Ok(())
}

/// What draws a figure on the root area it is given.
pub(crate) type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draws an SVG figure of `size` pixels in memory and writes it to `path` atomically, as
/// every other file: a failed drawing or a full disk never leaves a partial figure.
pub(crate) fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> Result<(), Error> {
    write_atomic(path, svg_text(path, size, draw)?.as_bytes())
}

/// The SVG text of a figure of `size` pixels drawn by `draw` (`path` names it in errors).
pub(crate) fn svg_text(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> Result<String, Error> {
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, size).into_drawing_area()).map_err(|e| {
        Error::io(
            format!("cannot draw {}", path.display()),
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(svg)
}

/// Writes `series` to an SVG file at `path`.
pub fn line_plot(path: &Path, axes: &Axes, series: &[Series]) -> Result<(), Error> {
    write_svg(path, (900, 600), |root| {
        draw(&root, axes, series)?;
        Ok(root.present()?)
    })
}

/// `series` above a panel of `residuals` on the same x axis (the y axis titled `residual_y`).
pub fn residual_plot(
    path: &Path,
    axes: &Axes,
    series: &[Series],
    residual_y: &str,
    residuals: &[Series],
) -> Result<(), Error> {
    write_svg(path, (900, 900), |root| {
        let (top, bottom) = root.split_vertically(600);
        draw(&top, axes, series)?;
        let below = Axes {
            title: "",
            y: residual_y,
            log_y: false,
            ..axes.clone()
        };
        draw(&bottom, &below, residuals)?;
        Ok(root.present()?)
    })
}

fn draw(root: &DrawingArea<SVGBackend<'_>, Shift>, axes: &Axes, series: &[Series]) -> Drawn {
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
        // Every corner holds data: make room above it for the legend, as tall as its rows
        // (about 480 pixels of plot; 20 per row), at least 0.4 of the data's height.
        let rows = series.len() as f64;
        let share = ((36.0 + 20.0 * rows) / 480.0).min(0.75);
        let grow = (share / (1.0 - share)).max(0.4);
        y1 = if axes.log_y {
            y1 * (y1 / y0).powf(grow)
        } else {
            y1 + grow * (y1 - y0)
        };
    }
    let legend = if crowded {
        SeriesLabelPosition::UpperRight
    } else {
        legend
    };

    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(axes.title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80);
    let twos = power_of_two_ticks(&data_xs(series)).filter(|_| axes.log_x);
    let log_x = |x0: f64, x1: f64| match &twos {
        Some(ticks) => (x0..x1).log_scale().with_key_points(ticks.clone()),
        None => log_axis(x0, x1),
    };
    match (axes.log_x, axes.log_y) {
        (true, true) => render(
            builder.build_cartesian_2d(log_x(x0, x1), log_axis(y0, y1))?,
            axes,
            series,
            usable,
            legend.clone(),
        )?,
        (true, false) => render(
            builder.build_cartesian_2d(log_x(x0, x1), y0..y1)?,
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
    let twos = power_of_two_ticks(&data_xs(series))
        .filter(|_| axes.log_x)
        .map(|t| power_of_two_label(t[t.len() - 1]));
    // Counts (walkers, hidden units) get integer ticks only.
    let integers = series
        .iter()
        .flat_map(|s| &s.points)
        .all(|p| p.0.fract() == 0.0);
    let x_label = |v: &f64| match &twos {
        Some(two) => two(v),
        None if !integers || v.fract() == 0.0 => x_tick(v),
        None => String::new(),
    };
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc(axes.x)
        .y_desc(axes.y)
        .x_label_formatter(&x_label)
        .y_label_formatter(&label)
        .draw()?;
    let mut entries = Vec::new();
    // Data series count for their looks; references are grey and thin.
    let mut data = 0;
    for s in series {
        let look = if s.reference {
            Look {
                color: RGBColor(150, 150, 150),
                marker: Marker::Circle,
                dash: None,
            }
        } else {
            data += 1;
            self::look(data - 1)
        };
        let color = look.color;
        let points: Vec<(f64, f64)> = s.points.iter().copied().filter(&usable).collect();
        if s.marks {
            let color = RGBColor(80, 80, 80);
            for &p in &points {
                draw_marker(chart.plotting_area(), Marker::Cross, p, color)?;
            }
            let symbol = Symbol::Line {
                color,
                width: 0,
                dash: None,
                marker: Some(Marker::Cross),
            };
            entries.push((s.label.clone(), symbol));
            continue;
        }
        let width = if s.reference { 1 } else { 2 };
        let style = color.stroke_width(width);
        match look.dash {
            None => {
                chart.draw_series(LineSeries::new(points.clone(), style))?;
            }
            Some((on, off)) => {
                chart.draw_series(DashedLineSeries::new(points.clone(), on, off, style))?;
            }
        }
        // Unlabelled series are drawn but left out of the legend (a residual panel's, whose
        // colours are those of the panel above).
        if !s.label.is_empty() {
            entries.push((
                s.label.clone(),
                Symbol::Line {
                    color,
                    width,
                    dash: look.dash,
                    marker: (!s.reference).then_some(look.marker),
                },
            ));
        }
        if s.reference {
            continue;
        }
        for &p in &points {
            draw_marker(chart.plotting_area(), look.marker, p, color)?;
        }
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
    draw_legend(&chart.plotting_area().strip_coord_spec(), &entries, &legend)
}

/// The x values of the data series (not the references').
fn data_xs(series: &[Series]) -> Vec<f64> {
    series
        .iter()
        .filter(|s| !s.reference)
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect()
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
/// The ticks of a log axis of counts that are all powers of two (walkers): at the counts
/// themselves (every other one past a dozen), not at 1000, 2000, 5000 between them. None
/// where some value is not a power of two.
pub(crate) fn power_of_two_ticks(xs: &[f64]) -> Option<Vec<f64>> {
    let power = |x: &f64| *x >= 1.0 && x.fract() == 0.0 && (*x as u64).is_power_of_two();
    if xs.is_empty() || !xs.iter().all(power) {
        return None;
    }
    let mut ticks = xs.to_vec();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let stride = ticks.len().div_ceil(12);
    Some(ticks.into_iter().step_by(stride).collect())
}

/// Labels of power-of-two ticks, one format for the axis: the numbers (4096), or 2^k where
/// the largest reaches 1e5 (2^20, not 1048576).
pub(crate) fn power_of_two_label(top: f64) -> impl Fn(&f64) -> String {
    move |v: &f64| match top >= 1e5 {
        true => format!("2^{}", v.log2().round()),
        false => format!("{v:.0}"),
    }
}

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

/// Tick labels for an axis over [lo, hi], in one format for the whole axis: plain decimals
/// where the axis lies within [1e-3, 1e5), else a mantissa and an exponent (1e5, 2e5, not
/// 50000, 1e5). A linear axis gets as many digits as it takes for neighbouring ticks, about a
/// tenth of the range apart, to read differently, trailing zeros dropped; a log axis (ticks
/// at 1, 2 and 5 times powers of ten) `format_value`'s plain labels or `2e5`.
pub(crate) fn tick_formatter(lo: f64, hi: f64, log: bool) -> impl Fn(&f64) -> String {
    let step = (hi - lo).abs() / 10.0;
    let scale = lo.abs().max(hi.abs());
    let plain = if log {
        lo >= 1e-3 && hi < 1e5
    } else {
        (1e-3..1e5).contains(&scale)
    };
    move |v: &f64| {
        let (v, a) = (*v, v.abs());
        if v == 0.0 {
            return "0".into();
        }
        if log || step.is_nan() || step <= 0.0 {
            return match plain {
                true => format_value(v),
                false => format!("{v:e}"),
            };
        }
        let trim = |m: String| {
            if m.contains('.') {
                m.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                m
            }
        };
        if plain {
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
        ] {
            assert!(svg.contains(text), "the SVG lacks `{text}`");
        }
        // Walker counts, powers of two, have their ticks at the points (they were at 500,
        // 1000, 2000 between them); the y axis, 1e6 to 3e7, reads in one format.
        for tick in ["256", "1024", "4096", "1e6", "2e6", "1e7"] {
            assert!(has_text(&svg, tick), "the SVG lacks the tick `{tick}`");
        }
        for tick in ["500", "1000", "2000", "5000000"] {
            assert!(!has_text(&svg, tick), "the SVG has the tick `{tick}`");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Whether `svg` has a text element reading `text` (plotters writes it on a line of its own).
    pub(crate) fn has_text(svg: &str, text: &str) -> bool {
        svg.lines().any(|l| l == text)
    }

    /// Nine series (a sweep over nine values) are told apart: past the seven colours the
    /// markers and dashes change, and every label fits its legend box (plotters' own box,
    /// sized by the number of characters, let `system.omega=0.28` overflow).
    #[test]
    fn many_series_look_different_and_their_labels_fit() {
        let looks: Vec<Look> = (0..28).map(look).collect();
        for (i, a) in looks.iter().enumerate() {
            for b in &looks[..i] {
                assert_ne!(a, b, "series {i} looks like an earlier one");
            }
        }
        assert!(looks[7].dash.is_some() && looks[7].marker != Marker::Circle);
        // DejaVu Sans sets `system.omega=0.28` 10.45 em wide; plotters' estimate was
        // 0.455 em per character, 7.7 em.
        let size = 14.0 / 1.24;
        assert!(text_width("system.omega=0.28", size) >= 10.45 * size);
        let dir = std::env::temp_dir().join(format!("rbm-vmc-many-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("energy.svg");
        let series: Vec<Series> = (0..9)
            .map(|i| {
                let omega = 0.28 + 0.1 * i as f64;
                let points = vec![(32.0, omega), (64.0, omega + 0.01), (128.0, omega)];
                Series::new(format!("system.omega={omega:.2}"), points)
            })
            .collect();
        let axes = Axes {
            title: "Energy against walkers",
            x: "walkers",
            y: "energy",
            log_x: false,
            log_y: false,
        };
        line_plot(&path, &axes, &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for s in &series {
            assert!(has_text(&svg, &s.label), "{}", s.label);
        }
        // The eighth and ninth series are dashed: many short segments in their colours.
        let dashes = |color: RGBColor| {
            let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
            svg.lines()
                .filter(|l| l.starts_with("<polyline") && l.contains(&stroke))
                .count()
        };
        assert!(dashes(COLORS[0]) > 2 * dashes(COLORS[2]), "{svg}");
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
        // One format per axis: a log axis reaching past 1e5 writes every tick with an
        // exponent (it wrote 10000, 20000, 50000, 1e5), as does a linear one.
        let samples = tick_formatter(6e3, 1.2e5, true);
        assert_eq!(
            [1e4, 2e4, 5e4, 1e5].map(|v| samples(&v)),
            ["1e4", "2e4", "5e4", "1e5"]
        );
        let errors = tick_formatter(2e-4, 3e-2, true);
        assert_eq!(
            [5e-4, 1e-3, 1e-2].map(|v| errors(&v)),
            ["5e-4", "1e-3", "1e-2"]
        );
        let linear = tick_formatter(0.0, 2e5, false);
        assert_eq!(
            [5e4, 1e5, 1.5e5].map(|v| linear(&v)),
            ["5e4", "1e5", "1.5e5"]
        );
        assert_eq!(
            power_of_two_ticks(&[256.0, 512.0, 4096.0, 512.0]),
            Some(vec![256.0, 512.0, 4096.0])
        );
        assert_eq!(power_of_two_ticks(&[256.0, 1000.0]), None);
        assert_eq!(power_of_two_label(1048576.0)(&65536.0), "2^16");
        assert_eq!(power_of_two_label(4096.0)(&256.0), "256");
        let ticks = |lo: f64, hi: f64| log_axis(lo, hi).key_points(BoldPoints(100));
        assert_eq!(ticks(0.019, 0.21), [0.02, 0.05, 0.1, 0.2]);
        assert_eq!(ticks(200.0, 5e6), [1e3, 1e4, 1e5, 1e6]);
        assert_eq!(ticks(1e-20, 1.0).len(), 11);
        assert_eq!(format_value(1e6), "1e6");
        assert_eq!(format_value(3.0), "3");
    }
}
