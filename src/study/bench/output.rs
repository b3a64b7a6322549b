//! What `bench` prints and writes: the console table, `bench.json`, `bench.csv` and
//! `throughput.svg`.

use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::engine::gpu::AdapterSummary;
use crate::error::Error;
use crate::report::{Axes, OutputDir, Series, csv_quoted, line_plot};

use super::grid::Candidate;
use super::measure::{Agreement, Point};

/// The console table's header (with the scaling columns for several `processes`).
pub(super) fn table_header(processes: usize) -> String {
    format!(
        "{:<52} {:>9} {:>6} {:>12} {:>23} {:>11} {:>9} {:>9} {:>7}{}",
        "engine",
        "walkers",
        "steps",
        "steps/s",
        "(min .. max)",
        "samples/s",
        "s/repeat",
        "kernel s",
        "vs cpu",
        if processes > 1 {
            "  1 process  efficiency"
        } else {
            ""
        }
    )
}

/// A point's row of the console table.
pub(super) fn table_row(p: &Point) -> String {
    let kernel = p.kernel_seconds.map_or("-".into(), |k| format!("{k:.4}"));
    let ratio = p.ratio_to_cpu.map_or("-".into(), |r| format!("{r:.2}"));
    let scaling = match (p.one_process_walker_steps_per_s, p.efficiency) {
        (Some(one), Some(e)) => format!("  {one:>9.3e}  {e:>10.2}"),
        _ => String::new(),
    };
    format!(
        "{:<52} {:>9} {:>6} {:>12.3e} {:>23} {:>11.3e} {:>9.4} {:>9} {:>7}{scaling}",
        p.engine,
        p.walkers,
        p.steps,
        p.walker_steps_per_s,
        format!(
            "({:.2e} .. {:.2e})",
            p.walker_steps_per_s_min, p.walker_steps_per_s_max
        ),
        p.samples_per_s,
        p.iteration_seconds,
        kernel,
        ratio
    )
}

/// What a bench run found, for its files.
#[derive(Serialize)]
pub(super) struct Findings<'a> {
    pub(super) points: &'a [Point],
    pub(super) agreement: &'a [Agreement],
    pub(super) notes: &'a [String],
    pub(super) allreduce_seconds: Option<f64>,
}

pub(super) fn write_outputs(
    config: &Config,
    candidates: &[Candidate],
    adapters: &[AdapterSummary],
    findings: &Findings,
    out: &OutputDir,
) -> Result<(), Error> {
    let points = findings.points;
    let machine = json!({
        "cpu": crate::report::cpu_model().unwrap_or_else(|| "unknown".into()),
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    let report = json!({
        "machine": machine,
        "adapters": adapters,
        "engines": candidates.iter().map(|c| c.label.clone()).collect::<Vec<_>>(),
        "points": findings.points,
        "agreement": findings.agreement,
        "notes": findings.notes,
        "allreduce_seconds": findings.allreduce_seconds,
        "config": config,
        "provenance": crate::report::provenance(),
    });
    out.write(
        "bench.json",
        serde_json::to_string_pretty(&report)
            .expect("plain values")
            .as_bytes(),
    )?;
    out.write("bench.csv", bench_csv(points).as_bytes())?;
    let series: Vec<Series> = candidates
        .iter()
        .map(|c| {
            let mine: Vec<&Point> = points.iter().filter(|p| p.engine == c.label).collect();
            let mut s = Series::new(
                c.label.clone(),
                mine.iter()
                    .map(|p| (p.walkers as f64, p.walker_steps_per_s))
                    .collect(),
            );
            // The repeats' spread around the median.
            s.bars = Some(
                mine.iter()
                    .map(|p| (p.walker_steps_per_s_min, p.walker_steps_per_s_max))
                    .collect(),
            );
            s
        })
        .collect();
    line_plot(
        &out.file("throughput.svg"),
        &Axes {
            title: "rbm-vmc throughput (median of the repeats; bars: lowest to highest)",
            x: "walkers",
            y: "walker-steps per second",
            log_x: true,
            log_y: true,
        },
        &series,
    )
}

/// bench.csv: a row per point, the engine's label quoted (RFC 4180).
fn bench_csv(points: &[Point]) -> String {
    let mut csv = String::from(
        "engine,walkers,steps,repeats,walker_steps_per_s,walker_steps_per_s_min,\
         walker_steps_per_s_max,samples_per_s,iteration_seconds,kernel_seconds,ratio_to_cpu,\
         processes,one_process_walker_steps_per_s,efficiency\n",
    );
    for p in points {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_quoted(&p.engine),
            p.walkers,
            p.steps,
            p.repeats,
            p.walker_steps_per_s,
            p.walker_steps_per_s_min,
            p.walker_steps_per_s_max,
            p.samples_per_s,
            p.iteration_seconds,
            opt(p.kernel_seconds),
            opt(p.ratio_to_cpu),
            p.processes,
            opt(p.one_process_walker_steps_per_s),
            opt(p.efficiency)
        ));
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine label holding quotes and commas (a GPU adapter's name) stays one field.
    #[test]
    fn bench_csv_rows_keep_their_columns() {
        let point = Point {
            engine: "gpu:say \"hi\", twice".into(),
            walkers: 256,
            steps: 10,
            repeats: 5,
            walker_steps_per_s: 1e6,
            walker_steps_per_s_min: 0.9e6,
            walker_steps_per_s_max: 1.1e6,
            samples_per_s: 1e6,
            iteration_seconds: 0.01,
            kernel_seconds: None,
            ratio_to_cpu: Some(2.0),
            processes: 1,
            one_process_walker_steps_per_s: None,
            efficiency: None,
        };
        let text = bench_csv(std::slice::from_ref(&point));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let columns = reader.headers().unwrap().len();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), columns, "{text}");
        assert_eq!(&rows[0][0], point.engine);
        assert_eq!(&rows[0][1], "256");
    }
}
