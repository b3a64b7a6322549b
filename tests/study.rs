//! `bench` and `sweep` from the command line on tiny sizes: their files, their rows, resume,
//! and the errors for bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{rbm_vmc as run, read_json, scratch, text};
use serde_json::{Value, json};

fn have_gpu() -> bool {
    let required = std::env::var("RBM_VMC_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let found = rbm_vmc::engine::gpu::choose(None, true, 0).is_some();
    assert!(
        found || !required,
        "RBM_VMC_REQUIRE_GPU=1 but no GPU adapter was found"
    );
    found
}

#[test]
fn bench_writes_consistent_table_files_and_plot() {
    let dir = scratch("bench");
    let out = dir.join("out");
    let engines = if have_gpu() {
        "cpu:1,cpu,gpu"
    } else {
        "cpu:1,cpu"
    };
    let o = run(&[
        "bench",
        "--walkers",
        "64..128",
        "--engines",
        engines,
        "--seconds",
        "0.3",
        "--repeats",
        "2",
        "--set",
        "steps_per_iteration=40",
        "--set",
        "sampler.kind=metropolis",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("agreement:"), "{stdout}");

    let n_engines = engines.split(',').count();
    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("engine,walkers,steps,repeats,walker_steps_per_s"));
    assert_eq!(lines.len(), 1 + 2 * n_engines, "{csv}");
    for line in &lines[1..] {
        // From the end (the engine label may hold commas): efficiency, one_process,
        // processes, ratio, kernel, iteration_seconds, samples, max, min, rate, repeats, steps.
        let fields: Vec<&str> = line.rsplitn(14, ',').collect();
        assert_eq!(fields.len(), 14, "{line}");
        let rate: f64 = fields[9].parse().unwrap();
        let (low, high): (f64, f64) = (fields[8].parse().unwrap(), fields[7].parse().unwrap());
        assert!(rate > 0.0 && low <= rate && rate <= high, "{line}");
        let steps: u32 = fields[11].parse().unwrap();
        assert_eq!(fields[2], "1", "one process: {line}");
        assert!((1..=40).contains(&steps), "{line}");
    }
    let report = read_json(&out.join("bench.json"));
    assert!(report["machine"]["threads"].as_u64().unwrap() >= 1);
    assert_eq!(report["points"].as_array().unwrap().len(), 2 * n_engines);
    assert_eq!(report["agreement"].as_array().unwrap().len(), n_engines);
    for a in report["agreement"].as_array().unwrap() {
        assert!(a["sigmas"].as_f64().unwrap().abs() <= 4.0, "{a}");
    }
    // The GPU points carry ratios to the all-thread CPU engine.
    for p in report["points"].as_array().unwrap() {
        if p["engine"].as_str().unwrap().starts_with("gpu") {
            assert!(p["ratio_to_cpu"].as_f64().unwrap() > 0.0, "{p}");
        }
    }
    let svg = std::fs::read_to_string(out.join("throughput.svg")).unwrap();
    assert!(svg.contains("walker-steps per second") && svg.contains("cpu (1 thread)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_rejects_bad_lists() {
    for (args, needle) in [
        (vec!["--engines", "tpu"], "tpu"),
        (vec!["--engines", "cpu:0"], "cpu:0"),
        (vec!["--walkers", "0"], "--walkers"),
        (vec!["--walkers", "100..10"], "--walkers"),
        (vec!["--seconds", "0"], "--seconds"),
        (vec!["--repeats", "0"], "--repeats"),
    ] {
        let mut all = vec!["bench", "--out", "/nonexistent/never-created"];
        all.extend(&args);
        let o = run(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(needle),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
}

fn tiny_sweep(dir: &Path) -> PathBuf {
    let path = dir.join("sweep.json");
    let sweep = json!({
        "config": {
            "wavefunction": {"init_scale": 0.0},
            "sampler": {"thermalisation": 20},
            "production": {"steps": 1000},
            "engine": "cpu"
        },
        "grid": {
            "walkers": {"from": 32, "to": 64, "factor": 2},
            "sampler.kind": ["metropolis", "importance"]
        },
        "mode": "production"
    });
    std::fs::write(&path, sweep.to_string()).unwrap();
    path
}

#[test]
fn sweep_writes_rows_and_plots_and_resume_skips_finished_points() {
    let dir = scratch("sweep");
    let file = tiny_sweep(&dir);
    let out = dir.join("out");
    let o = run(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "index,walkers,sampler.kind,energy,error,error_blocking,error_walkers,variance,acceptance,\
tau,reference,difference_sigma,kinetic,kinetic_error,trap,trap_error,interaction,\
interaction_error,virial_ratio,\
virial_ratio_error,pair_distance,pair_distance_error,inverse_pair_distance,\
inverse_pair_distance_error,square_radius,square_radius_error,density_outside,samples,\
point_seconds,engine,status,warning"
    );
    assert_eq!(lines.len(), 5);
    // The last key varies fastest.
    assert!(lines[1].starts_with("0,32,metropolis,") && lines[4].starts_with("3,64,importance,"));
    let rows = read_json(&out.join("sweep.json"));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    // The observables' columns carry sweep.json's names and numbers, <1/r_ij> and the
    // density beyond its range included.
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let first = reader.records().next().unwrap().unwrap();
    for name in ["pair_distance", "inverse_pair_distance", "square_radius"] {
        let value: f64 = first[column(name)].parse().unwrap();
        let error: f64 = first[column(&format!("{name}_error"))].parse().unwrap();
        assert_eq!(
            value,
            rows[0]["observables"][name]["value"].as_f64().unwrap()
        );
        assert_eq!(
            error,
            rows[0]["observables"][name]["error"].as_f64().unwrap()
        );
    }
    // No warning is a quoted empty text, `""`, present in every row.
    assert!(first[column("warning")].is_empty());
    assert!(lines[1..].iter().all(|l| l.ends_with(",\"\"")), "{csv}");
    let outside: f64 = first[column("density_outside")].parse().unwrap();
    assert_eq!(
        outside,
        rows[0]["observables"]["density_outside"].as_f64().unwrap()
    );
    for row in rows {
        let walkers = row["values"]["walkers"].as_u64().unwrap();
        assert_eq!(row["samples"].as_u64().unwrap(), walkers * 1000);
        let e = row["energy"].as_f64().unwrap();
        assert!((e - 3.2533).abs() < 0.2, "{row}");
    }
    for file in ["energy.svg", "error.svg", "points/0003/result.json"] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    // The legend names each line; the axis says `walkers` once (it read "walkers (walkers)").
    let svg = std::fs::read_to_string(out.join("energy.svg")).unwrap();
    let texts: Vec<&str> = svg.lines().collect();
    for text in [
        "sampler.kind=metropolis",
        "sampler.kind=importance",
        "walkers",
    ] {
        assert!(texts.contains(&text), "energy.svg lacks `{text}`");
    }
    assert!(!svg.contains("walkers (walkers)"));

    // Interrupted after two points: keep only their rows, then resume.
    let kept: Vec<Value> = rows[..2].to_vec();
    std::fs::write(
        out.join("sweep.json"),
        serde_json::to_string(&kept).unwrap(),
    )
    .unwrap();
    for dropped in [2, 3] {
        std::fs::remove_file(out.join(format!("points/{dropped:04}/row.json"))).unwrap();
    }
    let finished = std::fs::metadata(out.join("points/0000/result.json"))
        .unwrap()
        .modified()
        .unwrap();
    let o = run(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--resume",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("resuming: 2 of 4 points done"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        !text(&o.stdout).contains("point 1/4"),
        "finished points must not run again"
    );
    let again = std::fs::metadata(out.join("points/0000/result.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(finished, again);
    let rows = read_json(&out.join("sweep.json"));
    assert_eq!(rows.as_array().unwrap().len(), 4);
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");

    // Without --resume or --force the directory is not overwritten.
    let o = run(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_sweep_files_exit_2_naming_the_problem() {
    let dir = scratch("bad-sweep");
    let cases = [
        (json!({"grid": {"walkerz": [1, 2]}}), "walkerz"),
        (json!({"grid": {}}), "`grid` is empty"),
        (json!({"grid": {"walkers": []}}), "empty list"),
        (json!({"grid": {"walkers": ["many"]}}), "walkers"),
        (json!({"grid": {"walkers": 5}}), "must be a list"),
        (
            json!({"grid": {"system.omega": [1.0, -1.0]}}),
            "system.omega",
        ),
        // A point's validation error names the point, with its grid values.
        (
            json!({"grid": {"walkers": [8], "system.omega": [1.0, -1.0]}}),
            ", point 1 (walkers=8, system.omega=-1.0): `system.omega` = -1: must be",
        ),
        // An array in place of the object would be read by position.
        (
            json!([null, null, {"walkers": [8]}]),
            "must be a JSON object",
        ),
        (
            json!({"grid": {"system": [[2, 2, 1.0, true, "distinguishable"]]}}),
            "`system`: a JSON array",
        ),
        (json!({"grid": {"walkers": {"from": 1, "to": 8}}}), "factor"),
        (json!({"grid": {"walkers": [8]}, "mode": "train"}), "mode"),
        (
            json!({"grid": {"walkers": [8]}, "base": "missing.json"}),
            "missing.json",
        ),
        (json!({"grid": {"walkers": [8]}, "extra": 1}), "extra"),
        (
            json!({"grid": {"walkers": [8]}, "config": {"production": {"steps": 0}}}),
            "production.steps",
        ),
    ];
    for (i, (sweep, needle)) in cases.iter().enumerate() {
        let path = dir.join(format!("sweep-{i}.json"));
        std::fs::write(&path, sweep.to_string()).unwrap();
        let out = dir.join(format!("out-{i}"));
        let o = run(&[
            "sweep",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{sweep}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{sweep}: `{stderr}` lacks `{needle}`"
        );
        assert!(
            !out.exists(),
            "{sweep}: nothing may be written for a bad sweep"
        );
    }
    // A key given twice (the last used to win silently), here and in the base config.
    let base = dir.join("base.json");
    std::fs::write(&base, r#"{"system": {"omega": 0.5, "omega": 2}}"#).unwrap();
    for (text, needle) in [
        (
            r#"{"grid": {"walkers": [8]}, "grid": {"walkers": [16]}}"#,
            "the key `grid` appears twice",
        ),
        (
            r#"{"base": "base.json", "grid": {"walkers": [8]}}"#,
            "the key `system.omega` appears twice",
        ),
    ] {
        let path = dir.join("twice.json");
        std::fs::write(&path, text).unwrap();
        let o = run(&["sweep", path.to_str().unwrap()]);
        common::assert_refused(&o, needle, text);
    }
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, r#"{"grid": {"walkers": [1, "#).unwrap();
    let o = run(&["sweep", truncated.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not valid JSON"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn sweep_into(file: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    run(&args)
}

/// A point whose numbers break down is a failed row (status and no numbers), not a NaN
/// result; the other points still run, and the sweep ends with exit 1 naming the failure.
#[test]
fn a_point_that_breaks_down_is_marked_failed() {
    let dir = scratch("sweep-fails");
    let file = dir.join("sweep.json");
    let sweep = json!({
        "config": {
            "walkers": 32, "sampler": {"thermalisation": 20}, "production": {"steps": 100},
            "engine": "cpu"
        },
        "grid": {"wavefunction.sigma": [1.0, 1e-160]},
        "mode": "production"
    });
    std::fs::write(&file, sweep.to_string()).unwrap();
    let out = dir.join("out");
    let o = sweep_into(&file, &out, &[]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "1 of 2 points failed (point 1: the production run: the energy is not finite"
        ),
        "{stderr}"
    );
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[1].contains(",\"completed\","), "{csv}");
    assert!(
        lines[2].starts_with("1,1e-160,,,,,,,,,") && lines[2].contains("\"failed: "),
        "{csv}"
    );
    let rows = read_json(&out.join("sweep.json"));
    assert!(rows[1]["status"].as_str().unwrap().starts_with("failed: "));
    assert!(rows[0]["energy"].as_f64().unwrap().is_finite());
    // Resuming runs nothing again and still reports the failed point.
    let o = sweep_into(&file, &out, &["--resume"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A resumed sweep must be the same sweep point for point: a changed --set or `config`
/// section (which used to mix two systems in one sweep.csv) is refused, naming the point.
#[test]
fn resuming_with_a_changed_config_is_refused() {
    let dir = scratch("sweep-changed");
    let file = tiny_sweep(&dir);
    let out = dir.join("out");
    assert!(sweep_into(&file, &out, &[]).status.success());
    let o = sweep_into(&file, &out, &["--resume", "--set", "system.omega=0.5"]);
    common::assert_refused(
        &o,
        "point 0 (walkers=32, sampler.kind=metropolis) had another config",
        "--set",
    );
    let mut edited: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    edited["config"]["production"]["steps"] = json!(300);
    std::fs::write(&file, edited.to_string()).unwrap();
    let o = sweep_into(&file, &out, &["--resume"]);
    common::assert_refused(&o, "had another config", "edited config");
    // Where it runs may change, as for a resumed run.
    let file = tiny_sweep(&dir);
    let o = sweep_into(&file, &out, &["--resume", "--set", "threads=1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Grids whose point count overflows (4 keys of 65,536 values wrapped to 0 points) are
/// refused like any grid above the cap.
#[test]
fn grids_too_large_to_count_are_refused() {
    let dir = scratch("sweep-huge");
    let values: Vec<u32> = (1..=65_536).collect();
    let keys = [
        "walkers",
        "seed",
        "steps_per_iteration",
        "sampler.thermalisation",
    ];
    let grid: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| (k.to_string(), json!(values)))
        .collect();
    let file = dir.join("sweep.json");
    std::fs::write(&file, json!({"grid": grid}).to_string()).unwrap();
    let out = dir.join("out");
    let o = sweep_into(&file, &out, &[]);
    common::assert_refused(&o, "more than 10000 points", "4 x 65536");
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Rows read back from sweep.json are checked: a row with no values, of a point the sweep
/// does not have, or twice the same point is refused (the first used to panic).
#[test]
fn a_tampered_sweep_json_is_refused() {
    let dir = scratch("sweep-tampered");
    let file = tiny_sweep(&dir);
    let out = dir.join("out");
    assert!(sweep_into(&file, &out, &[]).status.success());
    let rows = read_json(&out.join("sweep.json"));
    type Tamper = fn(&mut Value);
    let cases: [(&str, Tamper); 8] = [
        ("values", |r| r[0]["values"] = json!({})),
        ("the sweep does not have", |r| r[0]["index"] = json!(99)),
        ("two rows of point 1", |r| r[0] = r[1].clone()),
        ("neither completed", |r| r[0]["energy"] = Value::Null),
        ("unknown field", |r| r[0]["extra"] = json!(1)),
        // Rows edited in place used to survive the resume, into sweep.csv and the plots.
        ("point 0 was changed after it was written", |r| {
            r[0]["energy"] = json!(-1e6)
        }),
        ("point 1 was changed after it was written", |r| {
            r[1]["status"] = json!("failed: edited")
        }),
        ("point 0 has no checksum", |r| {
            r[0].as_object_mut().unwrap().remove("checksum");
        }),
    ];
    for (needle, tamper) in cases {
        let mut tampered = rows.clone();
        tamper(&mut tampered);
        std::fs::write(out.join("sweep.json"), tampered.to_string()).unwrap();
        let o = sweep_into(&file, &out, &["--resume"]);
        common::assert_refused(&o, needle, needle);
        assert!(text(&o.stderr).contains("sweep.json is damaged"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A damaged sweep-definition.json is called damaged, with what is wrong, on resume (it was
/// said to be missing); a missing one is still called missing.
#[test]
fn a_damaged_sweep_definition_says_what_is_wrong() {
    let dir = scratch("sweep-definition");
    let file = tiny_sweep(&dir);
    let out = dir.join("out");
    assert!(sweep_into(&file, &out, &[]).status.success());
    let definition = out.join("sweep-definition.json");
    let written = std::fs::read_to_string(&definition).unwrap();
    for (damaged, needle) in [
        (&written[..written.len() / 2], "is not valid JSON"),
        ("{}", "is damaged: it lacks `keys`, `mode` or `points`"),
        (
            r#"{"keys": [], "keys": [], "mode": "production", "points": []}"#,
            "the key `keys` appears twice",
        ),
    ] {
        std::fs::write(&definition, damaged).unwrap();
        let o = sweep_into(&file, &out, &["--resume"]);
        common::assert_refused(&o, needle, damaged);
        assert!(!text(&o.stderr).contains("holds no"), "{damaged}");
    }
    std::fs::remove_file(&definition).unwrap();
    let o = sweep_into(&file, &out, &["--resume"]);
    common::assert_refused(&o, "holds no sweep-definition.json", "missing");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The closing line lists the plots actually written: without a finite error bar (one
/// walker, one step) there is no error.svg, and the sweep used to say there was.
#[test]
fn the_sweep_names_only_the_files_it_wrote() {
    let dir = scratch("sweep-files");
    let file = dir.join("sweep.json");
    let sweep = json!({
        "config": {
            "sampler": {"thermalisation": 10}, "production": {"steps": 1}, "engine": "cpu"
        },
        "grid": {"walkers": [1]},
        "mode": "production"
    });
    std::fs::write(&file, sweep.to_string()).unwrap();
    let out = dir.join("out");
    let o = sweep_into(&file, &out, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("sweep.csv, sweep.json, energy.svg, density.svg"),
        "{stdout}"
    );
    assert!(!stdout.contains("error.svg") && !out.join("error.svg").exists());
    // One line: the legend says what it is (it said "energy").
    let svg = std::fs::read_to_string(out.join("energy.svg")).unwrap();
    assert!(
        svg.lines().any(|l| l == "VMC energy (bars: +- 1 error)"),
        "{svg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// sweep.csv stays a table whatever the grid's values hold: text with commas, quotes and
/// line breaks, and whole objects, are quoted (RFC 4180), so a CSV reader finds the header's
/// columns in every row and the values as written.
#[test]
fn sweep_csv_rows_keep_their_columns_whatever_the_values() {
    let dir = scratch("sweep-csv");
    let file = dir.join("sweep.json");
    let adapters = ["a,b", "say \"hi\"", "two\nlines\r\n"];
    let systems = [
        json!({"particles": 2, "dims": 2}),
        json!({"particles": 2, "dims": 2, "omega": 0.5}),
    ];
    let sweep = json!({
        "config": {
            "walkers": 8, "sampler": {"thermalisation": 10}, "production": {"steps": 20},
            "engine": "cpu", "threads": 1
        },
        "grid": {"gpu.adapter": adapters, "system": systems},
        "mode": "production"
    });
    std::fs::write(&file, sweep.to_string()).unwrap();
    let out = dir.join("out");
    let o = sweep_into(&file, &out, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut reader = csv::Reader::from_path(out.join("sweep.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[1], "gpu.adapter");
    assert_eq!(&header[2], "system");
    assert_eq!(header.iter().next_back(), Some("warning"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 6);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.len(), header.len(), "row {i}: {record:?}");
        assert_eq!(record[0], i.to_string());
        assert_eq!(&record[1], adapters[i / 2], "row {i}");
        let system: Value = serde_json::from_str(&record[2]).unwrap();
        assert_eq!(system, systems[i % 2], "row {i}");
        let status = header.iter().position(|h| h == "status").unwrap();
        assert_eq!(&record[status], "completed", "row {i}");
        let energy: f64 = record[3].parse().unwrap();
        assert!(energy.is_finite(), "row {i}: {record:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A sweep of more than 8 points drew density.svg while it had 8 and left it there, showing
/// the first 8 points only; past 8 it is removed.
#[test]
fn a_sweep_past_eight_points_leaves_no_partial_density_figure() {
    let dir = scratch("sweep-density");
    let file = dir.join("sweep.json");
    let sweep = json!({
        "config": {
            "wavefunction": {"init_scale": 0.0},
            "sampler": {"thermalisation": 10}, "production": {"steps": 20}, "engine": "cpu",
            "walkers": 16
        },
        "grid": {"system.omega": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3]},
        "mode": "production"
    });
    std::fs::write(&file, sweep.to_string()).unwrap();
    let out = dir.join("out");
    let o = sweep_into(&file, &out, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.join("energy.svg").exists());
    assert!(
        !out.join("density.svg").exists(),
        "a density.svg of 8 of 9 points"
    );
    assert!(
        !text(&o.stdout).contains("density.svg"),
        "{}",
        text(&o.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A paired sweep lists its points with their settings (here omega with a time step to match)
/// and runs the whole grid at each, in order; `check` knows it as a sweep, and `--resume`
/// finds every point done.
#[test]
fn a_paired_sweep_runs_its_listed_points_in_order() {
    let dir = scratch("sweep-paired");
    let file = dir.join("sweep.json");
    let sweep = json!({
        "config": {
            "wavefunction": {"init_scale": 0.0}, "engine": "cpu",
            "sampler": {"thermalisation": 10}, "production": {"steps": 40}
        },
        "points": [
            {"system.omega": 0.5, "sampler.dt": 0.1},
            {"system.omega": 1.0, "sampler.dt": 0.05}
        ],
        "grid": {"walkers": [16, 32]},
        "mode": "production"
    });
    std::fs::write(&file, sweep.to_string()).unwrap();
    let o = run(&["check", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("sweep OK: 4 points"),
        "{}",
        text(&o.stdout)
    );
    let out = dir.join("out");
    let o = sweep_into(&file, &out, &["-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows = read_json(&out.join("sweep.json"));
    let seen: Vec<(f64, f64, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let v = &r["values"];
            let number = |k: &str| v[k].as_f64().unwrap();
            (
                number("system.omega"),
                number("sampler.dt"),
                v["walkers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (0.5, 0.1, 16),
            (0.5, 0.1, 32),
            (1.0, 0.05, 16),
            (1.0, 0.05, 32)
        ]
    );
    let point = read_json(&out.join("points/0001/result.json"));
    assert_eq!(point["config"]["sampler"]["dt"], 0.1);
    assert_eq!(point["config"]["walkers"], 32);
    let header = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(
        header.starts_with("index,system.omega,sampler.dt,walkers,"),
        "{header}"
    );
    let o = sweep_into(&file, &out, &["--resume", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        read_json(&out.join("sweep.json")).as_array().unwrap().len(),
        4
    );

    for (points, needle) in [
        (
            json!([{"system.omega": 0.5}, {"sampler.dt": 0.1}]),
            "every listed point sets the same keys",
        ),
        (json!([{"walkers": 8}]), "both in `points` and in `grid`"),
        (json!([]), "`points` is empty"),
    ] {
        let bad = json!({"points": points, "grid": {"walkers": [16]}});
        std::fs::write(&file, bad.to_string()).unwrap();
        let o = sweep_into(&file, &dir.join("bad"), &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains(needle), "{}", text(&o.stderr));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
