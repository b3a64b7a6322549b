//! `rbm-vmc analyze`: reblocks the production traces (trace.csv) of runs, merges the runs of
//! one system measured with one set of parameters, and writes the combined estimate
//! (analysis.json, analysis.csv).
//!
//! A VMC trace's rows are blocked as the run blocked its series, so one run analysed gives its
//! result.json energy (to rounding) and error (the same estimator: the larger of the blocking
//! error and the walker-means error, which result.json keeps for the whole production). A DMC
//! trace holds every generation; the equilibration is left out and the error is
//! `generation_error`, as the run's. Independent runs pool as a mean weighted by their
//! samples, the error sqrt(sum (n_r / n)^2 error_r^2).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{Config, read_json};
use crate::dmc::{extrapolate, generation_error};
use crate::error::Error;
use crate::report::{
    Console, DMC_TRACE_HEADER, OutputDir, PARTS_HEADER, VMC_TRACE_HEADER, csv_quoted, read_text,
    read_trace,
};
use crate::stats::blocking;
use crate::stats::observables::Value as Measured;

/// An estimate of the energy from one run's trace (one time step's, for DMC), or pooled.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Part {
    /// The DMC time step (absent for VMC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_step: Option<f64>,
    pub energy: f64,
    pub error: f64,
    pub error_blocking: f64,
    /// NaN (null) where not known: DMC, or a VMC trace with rows discarded (result.json
    /// keeps the walker-means error of the whole production only).
    pub error_walkers: f64,
    /// Walkers x measurements (DMC: x measured generations) after the discarded rows.
    pub samples: f64,
    /// The energy's parts, where the run measured them (parts.csv).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_parts: Option<EnergyParts>,
}

/// The energy's parts with their errors: from the spread of the time blocks of parts.csv
/// (and, for a whole production, at least the run's own error).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EnergyParts {
    pub kinetic: Measured,
    pub trap: Measured,
    pub interaction: Measured,
}

impl EnergyParts {
    /// The parts of the blocks (first measurement, measurements, kinetic, trap, interaction)
    /// that start after the first `skip` measurements: means weighted by the blocks' lengths,
    /// errors from their spread (a jackknife of a weighted mean).
    fn from_blocks(rows: &[[f64; 5]], skip: f64) -> Option<Self> {
        let rows: Vec<&[f64; 5]> = rows.iter().filter(|r| r[0] >= skip).collect();
        let n: f64 = rows.iter().map(|r| r[1]).sum();
        let g = rows.len() as f64;
        let part = |i: usize| {
            let value = rows.iter().map(|r| r[1] * r[i]).sum::<f64>() / n;
            let spread: f64 = rows
                .iter()
                .map(|r| (r[1] / n * (r[i] - value)).powi(2))
                .sum();
            Measured {
                value,
                error: (spread * g / (g - 1.0)).sqrt(),
            }
        };
        (!rows.is_empty()).then(|| Self {
            kinetic: part(2),
            trap: part(3),
            interaction: part(4),
        })
    }

    /// The parts of independent runs pooled as their energies are (`pool`); none unless
    /// every run has them.
    fn pooled(parts: &[&Part]) -> Option<Self> {
        let all: Vec<(f64, EnergyParts)> = parts
            .iter()
            .map(|p| p.energy_parts.map(|e| (p.samples, e)))
            .collect::<Option<_>>()?;
        let n: f64 = all.iter().map(|a| a.0).sum();
        let pool = |f: fn(&EnergyParts) -> Measured| Measured {
            value: all.iter().map(|(s, e)| s * f(e).value).sum::<f64>() / n,
            error: all
                .iter()
                .map(|(s, e)| (s / n * f(e).error).powi(2))
                .sum::<f64>()
                .sqrt(),
        };
        Some(Self {
            kinetic: pool(|e| e.kinetic),
            trap: pool(|e| e.trap),
            interaction: pool(|e| e.interaction),
        })
    }
}

/// One run read: where, its method, what must match to merge, and its parts.
struct Run {
    dir: PathBuf,
    dmc: bool,
    fingerprint: Map<String, Value>,
    config: Config,
    parts: Vec<Part>,
}

/// One run's parts, and where it is.
#[derive(Clone, Debug, Serialize)]
pub struct RunParts {
    pub dir: PathBuf,
    pub parts: Vec<Part>,
}

/// What `analyze` found: every run's parts, and the combined estimate.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub method: &'static str,
    pub discard: usize,
    pub runs: Vec<RunParts>,
    /// Per time step, pooled over the runs (one entry for VMC).
    pub pooled: Vec<Part>,
    pub energy: f64,
    pub error: f64,
}

/// Analyses the runs in `dirs` with the first `discard` rows of every trace left out (for
/// DMC: generations after the equilibration), prints the estimates and writes them into `out`.
pub fn analyze(
    dirs: &[PathBuf],
    discard: usize,
    out: &OutputDir,
    console: &Console,
) -> Result<Analysis, Error> {
    for (i, dir) in dirs.iter().enumerate() {
        let same = |other: &PathBuf| match (dir.canonicalize(), other.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => dir == other,
        };
        if dirs[..i].iter().any(same) {
            return Err(Error::input(format!(
                "{} is given twice: a run merged with itself would count twice",
                dir.display()
            )));
        }
    }
    let runs: Vec<Run> = dirs
        .iter()
        .map(|d| read_run(d, discard))
        .collect::<Result<_, _>>()?;
    let first = &runs[0];
    for run in &runs[1..] {
        refuse_mismatch(first, run)?;
    }
    let mut pooled: Vec<Part> = Vec::new();
    for part in runs.iter().flat_map(|r| &r.parts) {
        if !pooled.iter().any(|p| p.time_step == part.time_step) {
            let same: Vec<&Part> = runs
                .iter()
                .flat_map(|r| &r.parts)
                .filter(|p| p.time_step == part.time_step)
                .collect();
            pooled.push(pool(&same));
        }
    }
    let points: Vec<[f64; 3]> = pooled
        .iter()
        .map(|p| [p.time_step.unwrap_or(0.0), p.energy, p.error])
        .collect();
    let (energy, error, fit) = extrapolate(&points);
    let analysis = Analysis {
        method: if first.dmc { "dmc" } else { "vmc" },
        discard,
        runs: runs
            .iter()
            .map(|r| RunParts {
                dir: r.dir.clone(),
                parts: r.parts.clone(),
            })
            .collect(),
        pooled,
        energy,
        error,
    };
    for run in &analysis.runs {
        for p in &run.parts {
            console.line(&format!("{}: {}", run.dir.display(), part_line(p)));
        }
    }
    for p in analysis.pooled.iter().filter(|_| runs.len() > 1) {
        console.line(&format!("{} runs pooled: {}", runs.len(), part_line(p)));
    }
    let mut json = serde_json::to_value(&analysis).expect("plain values");
    if let Some(fit) = &fit {
        console.line(&format!(
            "extrapolated to tau = 0: {energy:.6} +- {error:.6} (chi^2 {:.2})",
            fit.chi_squared
        ));
        json["fit"] = json!({"coefficients": fit.coefficients, "chi_squared": fit.chi_squared});
    }
    if let Some(r) = first.config.reference() {
        let (line, comparison) = r.compare(energy, error);
        console.line(&line);
        json["reference"] = comparison;
    }
    out.write(
        "analysis.json",
        serde_json::to_string_pretty(&json)
            .expect("plain values")
            .as_bytes(),
    )?;
    out.write("analysis.csv", analysis_csv(&analysis).as_bytes())?;
    console.line(&format!("analysis in {}", out.path().display()));
    Ok(analysis)
}

fn part_line(p: &Part) -> String {
    let tau = p.time_step.map_or(String::new(), |t| format!("tau {t}: "));
    let parts = p.energy_parts.map_or(String::new(), |e| {
        format!(
            "; kinetic {:.6} +- {:.6}, trap {:.6} +- {:.6}, interaction {:.6} +- {:.6}",
            e.kinetic.value,
            e.kinetic.error,
            e.trap.value,
            e.trap.error,
            e.interaction.value,
            e.interaction.error
        )
    });
    format!(
        "{tau}energy {:.6} +- {:.6} (blocking {:.6}, walker means {:.6}), {} samples{parts}",
        p.energy, p.error, p.error_blocking, p.error_walkers, p.samples
    )
}

/// analysis.csv: a row per run (and time step), then the pooled rows (`run` = "pooled").
fn analysis_csv(a: &Analysis) -> String {
    let mut text = "run,time_step,samples,energy,error,error_blocking,error_walkers,kinetic,\
                    kinetic_error,trap,trap_error,interaction,interaction_error\n"
        .to_string();
    let number = |v: f64| match v.is_finite() {
        true => v.to_string(),
        false => String::new(),
    };
    let rows = a
        .runs
        .iter()
        .flat_map(|r| r.parts.iter().map(|p| (r.dir.display().to_string(), p)))
        .chain(a.pooled.iter().map(|p| ("pooled".to_string(), p)));
    for (run, p) in rows {
        let parts = p.energy_parts.map_or(vec![f64::NAN; 6], |e| {
            [e.kinetic, e.trap, e.interaction]
                .iter()
                .flat_map(|m| [m.value, m.error])
                .collect()
        });
        let parts: Vec<String> = parts.into_iter().map(number).collect();
        text += &format!(
            "{},{},{},{},{},{},{},{}\n",
            csv_quoted(&run),
            p.time_step.map_or(String::new(), number),
            p.samples,
            number(p.energy),
            number(p.error),
            number(p.error_blocking),
            number(p.error_walkers),
            parts.join(",")
        );
    }
    text
}

/// Independent estimates pooled: the mean weighted by the samples, errors added in quadrature
/// with the same weights (one part is returned as it is).
pub fn pool(parts: &[&Part]) -> Part {
    if let [one] = parts {
        return (*one).clone();
    }
    let n: f64 = parts.iter().map(|p| p.samples).sum();
    let combine = |f: fn(&Part) -> f64| {
        parts
            .iter()
            .map(|p| (p.samples / n * f(p)).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    Part {
        time_step: parts[0].time_step,
        energy: parts.iter().map(|p| p.samples * p.energy).sum::<f64>() / n,
        error: combine(|p| p.error),
        error_blocking: combine(|p| p.error_blocking),
        error_walkers: combine(|p| p.error_walkers),
        samples: n,
        energy_parts: EnergyParts::pooled(parts),
    }
}

/// Reads the run in `dir`: its result.json and trace.csv.
fn read_run(dir: &Path, discard: usize) -> Result<Run, Error> {
    let result = read_json(&dir.join("result.json"), "result")?;
    let shown = dir.display();
    if result["status"] == "diverged" {
        return Err(Error::input(format!(
            "{shown}: the run diverged; it has no production to analyse"
        )));
    }
    let trace = dir.join("trace.csv");
    if !trace.is_file() {
        return Err(Error::input(format!(
            "{shown} holds no trace.csv: only runs that measured write one (a `run` with \
             production.steps > 0, a completed `sample`, a `dmc`)"
        )));
    }
    let config = Config::from_value(result["config"].clone(), &format!("{shown}/result.json"))?;
    let dmc = result["method"] == "dmc";
    let what = format!("trace {}", trace.display());
    let text = read_text(&trace, "trace")?;
    let walkers = config.walkers as f64;
    let parts = if dmc {
        let rows = read_trace(&text, DMC_TRACE_HEADER, &what)?;
        dmc_parts(&rows, config.dmc.equilibration as usize + discard, walkers)
    } else {
        let rows = read_trace(&text, VMC_TRACE_HEADER, &what)?;
        let stored = result["error_walkers"].as_f64().unwrap_or(f64::NAN);
        let error_walkers = if discard == 0 { stored } else { f64::NAN };
        let (skipped, kept) = rows.split_at(discard.min(rows.len()));
        let mut part = vmc_part(kept, walkers, error_walkers);
        let parts = dir.join("parts.csv");
        if parts.is_file() {
            let what = format!("energy parts {}", parts.display());
            let blocks = read_trace(&read_text(&parts, "energy parts")?, PARTS_HEADER, &what)?;
            let skip = skipped.iter().map(|r| r[1]).sum();
            part.energy_parts = EnergyParts::from_blocks(&blocks, skip);
            // As for the energy: over the whole production the run's own error (the larger
            // of its jackknife and its walker-means error) is known.
            if let (Some(e), 0) = (&mut part.energy_parts, discard) {
                let stored = |name: &str| result["observables"][name]["error"].as_f64();
                for (m, name) in [
                    (&mut e.kinetic, "kinetic"),
                    (&mut e.trap, "trap"),
                    (&mut e.interaction, "interaction"),
                ] {
                    m.error = m.error.max(stored(name).unwrap_or(f64::NAN));
                }
            }
        }
        vec![part]
    };
    if parts.is_empty() || parts.iter().any(|p| p.samples == 0.0) {
        return Err(Error::input(format!(
            "{what}: --discard {discard} leaves no measurement to analyse"
        )));
    }
    Ok(Run {
        dir: dir.to_path_buf(),
        dmc,
        fingerprint: fingerprint(&result),
        config,
        parts,
    })
}

/// A VMC trace's rows (first measurement, measurements, mean energy): the mean over the
/// measurements, and automated blocking of the rows of a full block (a shorter last row
/// enters the mean only).
fn vmc_part(rows: &[[f64; 3]], walkers: f64, error_walkers: f64) -> Part {
    let measurements: f64 = rows.iter().map(|r| r[1]).sum();
    let energy = rows.iter().map(|r| r[1] * r[2]).sum::<f64>() / measurements;
    let block = rows.first().map_or(0.0, |r| r[1]);
    let full: Vec<f64> = rows
        .iter()
        .filter(|r| r[1] == block)
        .map(|r| r[2])
        .collect();
    let error_blocking = blocking(&full).map_or(f64::NAN, |b| b.variance_of_mean.sqrt());
    Part {
        time_step: None,
        energy,
        // f64::max takes the other value when one is NaN.
        error: error_blocking.max(error_walkers),
        error_blocking,
        error_walkers,
        samples: measurements * walkers,
        energy_parts: None,
    }
}

/// A DMC trace's rows (time step, generation, energy): per time step, the generations after
/// the first `skip`.
fn dmc_parts(rows: &[[f64; 3]], skip: usize, walkers: f64) -> Vec<Part> {
    let mut taus: Vec<f64> = Vec::new();
    for r in rows {
        if !taus.contains(&r[0]) {
            taus.push(r[0]);
        }
    }
    taus.iter()
        .map(|&tau| {
            let series: Vec<f64> = rows.iter().filter(|r| r[0] == tau).map(|r| r[2]).collect();
            let measured = &series[skip.min(series.len())..];
            let error = generation_error(measured);
            Part {
                time_step: Some(tau),
                energy: measured.iter().sum::<f64>() / measured.len() as f64,
                error,
                error_blocking: blocking(measured).map_or(f64::NAN, |b| b.variance_of_mean.sqrt()),
                error_walkers: f64::NAN,
                samples: measured.len() as f64 * walkers,
                energy_parts: None,
            }
        })
        .collect()
}

/// What two runs must share to merge, as dotted keys: the method, the system, the trial
/// function's form and the parameters measured (`params_checksum`). The starting values of
/// the parameters, the sampler, the walkers, the steps and the seed may differ.
fn fingerprint(result: &Value) -> Map<String, Value> {
    let config = &result["config"];
    let mut wavefunction = config["wavefunction"].clone();
    if let Some(w) = wavefunction.as_object_mut() {
        for start in ["params", "init_scale", "jastrow_beta"] {
            w.remove(start);
        }
    }
    let whole = json!({
        "method": result.get("method").cloned().unwrap_or(json!("vmc")),
        "system": config["system"],
        "wavefunction": wavefunction,
        "params_checksum": result["params_checksum"],
    });
    let mut flat = Map::new();
    flatten("", &whole, &mut flat);
    flat
}

fn flatten(prefix: &str, value: &Value, into: &mut Map<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = match prefix {
                    "" => k.clone(),
                    p => format!("{p}.{k}"),
                };
                flatten(&key, v, into);
            }
        }
        other => {
            into.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Refuses to merge runs that differ in what their energy depends on, naming the first field.
fn refuse_mismatch(a: &Run, b: &Run) -> Result<(), Error> {
    let keys = a.fingerprint.keys().chain(b.fingerprint.keys());
    for key in keys {
        let (x, y) = (
            a.fingerprint.get(key).unwrap_or(&Value::Null),
            b.fingerprint.get(key).unwrap_or(&Value::Null),
        );
        if x != y {
            let why = match key.as_str() {
                "params_checksum" => "they measured different parameters".to_string(),
                _ => format!("`{key}` is {x} in one and {y} in the other"),
            };
            return Err(Error::input(format!(
                "cannot merge {} and {}: {why}; only runs of one system with one set of \
                 parameters merge",
                a.dir.display(),
                b.dir.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(energy: f64, error: f64, samples: f64) -> Part {
        Part {
            time_step: None,
            energy,
            error,
            error_blocking: error,
            error_walkers: error,
            samples,
            energy_parts: None,
        }
    }

    #[test]
    fn pooling_weights_by_samples() {
        let (a, b) = (part(1.0, 0.3, 100.0), part(2.0, 0.1, 300.0));
        let p = pool(&[&a, &b]);
        assert_eq!(p.energy, 1.75);
        assert!((p.error - (0.0075f64 * 0.75 + 0.005625f64).sqrt()).abs() < 1e-15);
        assert_eq!(p.samples, 400.0);
        assert_eq!(pool(&[&a]), a);
    }

    #[test]
    fn a_trace_of_single_measurements_is_blocked_as_the_run_blocks_its_series() {
        let series: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.7).sin()).collect();
        let rows: Vec<[f64; 3]> = series
            .iter()
            .enumerate()
            .map(|(i, e)| [i as f64, 1.0, *e])
            .collect();
        let p = vmc_part(&rows, 4.0, 0.001);
        let b = blocking(&series).unwrap().variance_of_mean.sqrt();
        assert_eq!(p.error_blocking, b);
        assert_eq!(p.error, b.max(0.001));
        assert_eq!(p.samples, 4000.0);
    }
}
