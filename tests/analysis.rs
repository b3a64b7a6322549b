//! Production traces and `rbm-vmc analyze`; references given in the config, in sweeps and
//! their figures.

mod common;

use std::path::Path;

use common::{TINY, assert_refused, rbm_vmc, read_json, scratch, text};
use rbm_vmc::report::MAX_TRACE_ROWS;
use rbm_vmc::stats::blocking;

/// Runs the program with `args`, asserting success.
fn ok(args: &[&str]) {
    let o = rbm_vmc(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
}

/// `command` (`run`, `sample`, `dmc`) into `out` with the TINY settings and `extra`.
fn measure(command: &str, out: &Path, extra: &[&str]) {
    let mut args = vec![command, "-q", "--out", out.to_str().unwrap()];
    args.extend(TINY);
    args.extend(extra);
    ok(&args);
}

/// `analyze` of `runs` into `out`; its analysis.json.
fn analyze(runs: &[&Path], out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["analyze", "-q", "--out", out.to_str().unwrap()];
    args.extend(runs.iter().map(|r| r.to_str().unwrap()));
    args.extend(extra);
    ok(&args);
    read_json(&out.join("analysis.json"))
}

/// A VMC trace's rows: (measurements, energy).
fn trace(dir: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(dir.join("trace.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("measurement,measurements,energy"));
    lines
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
            (f[1], f[2])
        })
        .collect()
}

/// Writes `sweep` to `file` and runs it into `out`.
fn run_sweep(file: &Path, sweep: &serde_json::Value, out: &Path) -> std::path::PathBuf {
    std::fs::write(file, sweep.to_string()).unwrap();
    let (file, dir) = (file.to_str().unwrap(), out.to_str().unwrap());
    ok(&["sweep", file, "-q", "--out", dir]);
    out.to_path_buf()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn analyze_of_one_run_reproduces_its_result() {
    let dir = scratch("analyze-one");
    let run = dir.join("run");
    measure("run", &run, &[]);
    let result = read_json(&run.join("result.json"));
    let a = analyze(&[&run], &dir.join("a"), &[]);
    assert!(close(
        a["energy"].as_f64().unwrap(),
        result["energy"].as_f64().unwrap()
    ));
    // The same estimator on the same numbers: the same error, to the bit.
    assert_eq!(a["error"], result["error"], "{a}");
    let part = &a["runs"][0]["parts"][0];
    for key in ["error_blocking", "error_walkers"] {
        assert_eq!(part[key], result[key], "{key}");
    }
    assert_eq!(
        part["samples"].as_f64().unwrap(),
        result["samples"].as_f64().unwrap()
    );
    // The energy's parts, from parts.csv: result.json's values.
    for name in ["kinetic", "trap", "interaction"] {
        let (mine, run) = (&part["energy_parts"][name], &result["observables"][name]);
        assert!(close(
            mine["value"].as_f64().unwrap(),
            run["value"].as_f64().unwrap()
        ));
        let error = |m: &serde_json::Value| m["error"].as_f64().unwrap();
        assert!(
            error(mine) >= error(run),
            "{name}: at least the run's own error"
        );
    }
    let csv = std::fs::read_to_string(dir.join("a/analysis.csv")).unwrap();
    assert!(
        csv.starts_with("run,time_step,samples,energy,error,"),
        "{csv}"
    );
    // Discarded rows leave the walker-means error unknown: blocking alone.
    let later = analyze(&[&run], &dir.join("b"), &["--discard", "100"]);
    let part = &later["runs"][0]["parts"][0];
    assert!(part["error_walkers"].is_null(), "{later}");
    assert_eq!(part["samples"].as_f64().unwrap(), 64.0 * 300.0);
    assert_eq!(later["error"], part["error_blocking"]);

    // DMC: the generations after the equilibration, with the run's error rule.
    let dmc = dir.join("dmc");
    let settings = [
        "--set",
        "dmc.generations=60",
        "--set",
        "dmc.equilibration=10",
    ];
    measure("dmc", &dmc, &settings);
    let result = read_json(&dmc.join("result.json"));
    let a = analyze(&[&dmc], &dir.join("c"), &[]);
    assert_eq!(a["method"], "dmc");
    assert_eq!(a["energy"], result["energy"]);
    assert_eq!(a["error"], result["error"]);
}

#[test]
fn runs_of_one_system_and_parameters_merge_into_the_pooled_estimate() {
    let dir = scratch("analyze-merge");
    let (one, two) = (dir.join("one"), dir.join("two"));
    // Zero parameters: the same trial function whatever the seed.
    let zero = ["--set", "wavefunction.init_scale=0"];
    measure("sample", &one, &[&zero[..], &["--set", "seed=1"]].concat());
    let other = ["--set", "seed=2", "--set", "walkers=32"];
    measure("sample", &two, &[&zero[..], &other].concat());
    let a = analyze(&[&one, &two], &dir.join("a"), &[]);
    // By hand: each run's mean and error (blocking of its trace, its walker-means error),
    // then the mean weighted by samples, the errors in quadrature with the same weights.
    let mut parts = Vec::new();
    for (run, walkers) in [(&one, 64.0), (&two, 32.0)] {
        let rows = trace(run);
        assert!(rows.iter().all(|r| r.0 == 1.0));
        let energies: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let mean = energies.iter().sum::<f64>() / energies.len() as f64;
        let blocked = blocking(&energies).unwrap().variance_of_mean.sqrt();
        let walker_means = read_json(&run.join("result.json"))["error_walkers"]
            .as_f64()
            .unwrap();
        parts.push((
            mean,
            blocked.max(walker_means),
            walkers * energies.len() as f64,
        ));
    }
    let n: f64 = parts.iter().map(|p| p.2).sum();
    let energy = parts.iter().map(|p| p.0 * p.2).sum::<f64>() / n;
    let error = parts
        .iter()
        .map(|p| (p.2 / n * p.1).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        close(a["energy"].as_f64().unwrap(), energy),
        "{a} vs {energy}"
    );
    assert!(close(a["error"].as_f64().unwrap(), error), "{a} vs {error}");
    assert_eq!(a["pooled"][0]["samples"].as_f64().unwrap(), n);

    // A `sample --from` run measures the original's parameters: they merge.
    let original = dir.join("original");
    measure("run", &original, &[]);
    let again = dir.join("again");
    let o = rbm_vmc(&[
        "sample",
        "-q",
        "--from",
        original.to_str().unwrap(),
        "--set",
        "seed=9",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let a = analyze(&[&original, &again], &dir.join("b"), &[]);
    let samples = |d: &Path| {
        read_json(&d.join("result.json"))["samples"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(
        a["pooled"][0]["samples"].as_f64().unwrap(),
        samples(&original) + samples(&again)
    );

    // Another trap frequency, or other parameters: refused, naming the difference.
    let omega = dir.join("omega");
    measure(
        "sample",
        &omega,
        &[&zero[..], &["--set", "system.omega=0.5"]].concat(),
    );
    let refused = dir.join("refused");
    let pairs = [
        (&omega, "`system.omega`"),
        (&original, "different parameters"),
        (&one, "given twice"),
    ];
    for (other, needle) in pairs {
        let (one, other) = (one.to_str().unwrap(), other.to_str().unwrap());
        let o = rbm_vmc(&["analyze", one, other, "--out", refused.to_str().unwrap()]);
        assert_refused(&o, needle, other);
    }
    let o = rbm_vmc(&["analyze", dir.to_str().unwrap()]);
    assert_refused(&o, "result.json", "not a run");
}

/// A production longer than the row limit is written in blocks of a power of two.
#[test]
fn a_long_trace_is_blocked_within_the_row_limit() {
    let dir = scratch("trace-long");
    let steps = MAX_TRACE_ROWS as u32 * 2 + 500;
    let production = format!("production.steps={steps}");
    let out = dir.join("run");
    let settings = ["--set", "walkers=2", "--set", &production];
    measure("sample", &out, &settings);
    let rows = trace(&out);
    assert!(rows.len() <= MAX_TRACE_ROWS, "{} rows", rows.len());
    assert!(rows[..rows.len() - 1].iter().all(|r| r.0 == 4.0));
    let measured: f64 = rows.iter().map(|r| r.0).sum();
    assert_eq!(measured, steps as f64);
    let result = read_json(&out.join("result.json"));
    let a = analyze(&[&out], &dir.join("a"), &[]);
    assert!(close(
        a["energy"].as_f64().unwrap(),
        result["energy"].as_f64().unwrap()
    ));
}

/// A sweep's points compare with the config's `reference` where given, else with the
/// built-in table's; a production sweep at fixed parameters with neither.
#[test]
fn references_reach_the_sweep_table_and_figure() {
    let dir = scratch("sweep-references");
    let file = dir.join("sweep.json");
    let sweep = serde_json::json!({
        "config": {"walkers": 32, "steps_per_iteration": 50, "optimiser": {"iterations": 2},
                   "production": {"steps": 200}, "sampler": {"thermalisation": 20},
                   "engine": "cpu"},
        "points": [
            {"system.omega": 0.5, "reference": null},
            {"system.omega": 1.0, "reference": {"energy": 3.01, "error": 0.002, "label": "mine"}},
        ],
    });
    let out = run_sweep(&file, &sweep, &dir.join("out"));
    let mut csv = csv::Reader::from_path(out.join("sweep.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    let number = |row: usize, name: &str| rows[row][column(name)].parse::<f64>().unwrap();
    assert_eq!(number(0, "reference"), 1.65977);
    assert_eq!(number(1, "reference"), 3.01);
    let json = read_json(&out.join("sweep.json"));
    for (i, row) in json.as_array().unwrap().iter().enumerate() {
        let (e, err) = (
            row["energy"].as_f64().unwrap(),
            row["error"].as_f64().unwrap(),
        );
        let reference = row["reference"].as_f64().unwrap();
        let error = if i == 1 { err.hypot(0.002) } else { err };
        let sigma = row["difference_sigma"].as_f64().unwrap();
        assert!(close(sigma, (e - reference) / error), "{row}");
        assert!(close(number(i, "difference_sigma"), sigma));
    }
    let svg = std::fs::read_to_string(out.join("energy.svg")).unwrap();
    assert!(
        svg.contains("reference of each point"),
        "no reference marks"
    );
    assert!(svg.contains("E - E_ref"), "no residual panel");

    // Zero parameters, not optimised: the ground state is no reference for it.
    let fixed = serde_json::json!({
        "config": {"production": {"steps": 200}, "sampler": {"thermalisation": 20},
                   "wavefunction": {"init_scale": 0.0}, "engine": "cpu"},
        "grid": {"walkers": [16, 32]},
        "mode": "production",
    });
    let out = run_sweep(&file, &fixed, &dir.join("fixed"));
    let json = read_json(&out.join("sweep.json"));
    assert!(json[0].get("reference").is_none(), "{json}");
    let svg = std::fs::read_to_string(out.join("energy.svg")).unwrap();
    assert!(!svg.contains("reference"), "a ground-state reference drawn");
}

#[test]
fn bad_references_are_refused_in_one_line() {
    let dir = scratch("bad-references");
    let out = dir.join("out");
    for (value, needle) in [
        (
            r#"reference={"energy": 3, "error": -1}"#,
            "`reference.error` = -1",
        ),
        ("reference=abc", "neither a number"),
        (r#"reference={"energy": "x"}"#, "`reference`"),
        (
            r#"reference={"energy": 3, "sigma": 1}"#,
            "unknown field `sigma`",
        ),
    ] {
        let o = rbm_vmc(&["run", "--set", value, "--out", out.to_str().unwrap()]);
        assert_refused(&o, needle, value);
    }
}
