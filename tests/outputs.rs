//! What commands leave in their output directories: `--force` clears every file of an
//! earlier command but never a file the command itself reads.

mod common;

use common::{TINY, assert_failed, assert_refused, rbm_vmc as run, read_json, scratch, text};

/// `sample --from D --out D --force` used to delete D's params.json and result.json and then
/// fail to read them. Every way of pointing `--force` at a command's own input is refused
/// before anything is removed.
#[test]
fn force_never_removes_what_the_command_reads() {
    let dir = scratch("force-inputs");
    let d = dir.join("run");
    let ds = d.to_str().unwrap();
    let mut args = vec!["run", "--out", ds];
    args.extend(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let params = d.join("params.json");
    let ps = params.to_str().unwrap();
    let before = std::fs::read(&params).unwrap();

    let from = run(&["sample", "--from", ds, "--out", ds, "--force", "-q"]);
    assert_refused(&from, "--force would delete", "sample --from D --out D");
    let mut with_params = vec!["sample", "--params", ps, "--out", ds, "--force"];
    with_params.extend(TINY);
    assert_refused(
        &run(&with_params),
        "params.json",
        "sample --params D/params.json",
    );
    let mut start_from = vec!["run", "--out", ds, "--force"];
    start_from.extend(TINY);
    let set = format!("wavefunction.params={ps}");
    start_from.extend(["--set", &set]);
    assert_refused(
        &run(&start_from),
        "params.json",
        "run starting from D/params.json",
    );
    let sweep = d.join("sweep.json");
    std::fs::write(&sweep, r#"{"grid": {"walkers": [64]}}"#).unwrap();
    let o = run(&["sweep", sweep.to_str().unwrap(), "--out", ds, "--force"]);
    assert_refused(&o, "sweep.json", "a sweep file named like a result");

    assert_eq!(std::fs::read(&params).unwrap(), before);
    assert_eq!(read_json(&d.join("result.json"))["status"], "completed");
    assert!(d.join("history.csv").exists() && d.join("convergence.svg").exists());

    // The same command into another directory works.
    let other = dir.join("sampled");
    let o = run(&[
        "sample",
        "--from",
        ds,
        "--out",
        other.to_str().unwrap(),
        "--set",
        "production.steps=100",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--force` removed result.json but kept convergence.svg, so a crash after it left the old
/// run's figure beside the new run's files.
#[test]
fn force_removes_every_file_of_the_earlier_command() {
    let dir = scratch("force-all");
    let d = dir.join("run");
    let ds = d.to_str().unwrap();
    let mut args = vec!["run", "--out", ds];
    args.extend(TINY);
    assert!(run(&args).status.success());
    std::fs::write(d.join("notes.txt"), "mine").unwrap();
    // A sample (no optimisation: no history or convergence figure) over the run.
    let mut args = vec!["sample", "--out", ds, "--force"];
    args.extend(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for gone in ["convergence.svg", "history.csv", "checkpoint.json"] {
        assert!(!d.join(gone).exists(), "{gone} of the earlier run is left");
    }
    assert_eq!(
        std::fs::read_to_string(d.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(read_json(&d.join("result.json"))["iterations"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A flat trial function (a width far beyond the trap) used to complete with exit 0 while
/// its energy climbed and its gradient was 1e-110: refused before any work when configured,
/// a breakdown (exit 1, "diverged") when the optimiser drives the width there.
#[test]
fn flat_trial_functions_are_refused_or_end_the_run() {
    let dir = scratch("flat");
    for sigma in ["1e5", "1e300"] {
        let set = format!("wavefunction.sigma={sigma}");
        let mut args = vec!["run", "--out", dir.to_str().unwrap(), "--force"];
        args.extend(TINY);
        args.extend(["--set", &set]);
        assert_refused(&run(&args), "the trial function is flat", &set);
        let mut args = vec!["check", "--set", &set];
        args.extend(["--set", "walkers=64"]);
        assert_refused(&run(&args), "trap lengths", &set);
    }
    let out = dir.join("trained");
    let mut args = vec!["run", "-q", "--out", out.to_str().unwrap()];
    args.extend(TINY);
    args.extend([
        "--set",
        "wavefunction.train_sigma=true",
        "--set",
        "optimiser.learning_rate=50",
    ]);
    let stderr = assert_failed(&run(&args), "a width trained to 1e21");
    assert!(stderr.contains("the trained width sigma"), "{stderr}");
    let result = read_json(&out.join("result.json"));
    assert_eq!(result["status"], "diverged", "{result}");
    let params = read_json(&out.join("params.json"));
    let sigma = params["sigma"].as_f64().unwrap();
    assert!(sigma < 100.0, "the last good width, not {sigma}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Results that are merely weak say so (console and result.json) instead of an unexplained
/// NaN or an empty histogram.
#[test]
fn weak_results_carry_a_warning() {
    let dir = scratch("weak");
    let cases: [(&[&str], &str); 3] = [
        (
            &["--set", "walkers=1", "--set", "production.steps=1"],
            "the error bar cannot be estimated from 1 sample",
        ),
        // Importance sampling with a time step far below the trap's length scale.
        (
            &["--set", "system.omega=0.1", "--set", "sampler.dt=0.05"],
            "acceptance above 99.9 %",
        ),
        (
            &["--set", "observables.r_max=0.0011"],
            "100.0 % of the particles lie beyond observables.r_max = 0.0011",
        ),
    ];
    for (i, (extra, needle)) in cases.into_iter().enumerate() {
        let out = dir.join(i.to_string());
        let mut args = vec!["sample", "--out", out.to_str().unwrap()];
        args.extend(TINY);
        args.extend(extra);
        let o = run(&args);
        let stderr = text(&o.stderr);
        assert!(o.status.success(), "{extra:?}: {stderr}");
        assert!(stderr.contains(&format!("warning: {needle}")), "{stderr}");
        let result = read_json(&out.join("result.json"));
        let warning = result["warning"].as_str().unwrap_or_default();
        assert!(warning.contains(needle), "{result}");
    }
    // The default system with a production long for its correlation time has none of them.
    let out = dir.join("plain");
    let mut args = vec!["sample", "--out", out.to_str().unwrap()];
    args.extend(TINY);
    args.extend(["--set", "production.steps=2000"]);
    let o = run(&args);
    assert!(!text(&o.stderr).contains("warning"), "{}", text(&o.stderr));
    // P(r12) is drawn beside pair.csv, with the non-interacting reference of two particles.
    let pair = std::fs::read_to_string(out.join("pair.svg")).unwrap();
    assert!(
        pair.contains("P(r12)") && pair.contains("non-interacting"),
        "{pair}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `bench` keeps the contract of `run`: bad options exit 2, a NaN energy is a failure (it
/// was reported as agreement, exit 0).
#[test]
fn bench_refuses_bad_options_and_nan_energies() {
    let dir = scratch("bench");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let base = ["bench", "--walkers", "256", "--seconds", "0.2", "--out", o];
    let cases: [(&[&str], &str); 3] = [
        (
            &["--repeats", "18446744073709551615", "--engines", "cpu:1"],
            "--repeats",
        ),
        (&["--engines", "cpu:5000"], "1..=4096"),
        (&["--engines", "cpu:0"], "1..=4096"),
    ];
    for (extra, needle) in cases {
        let mut args = base.to_vec();
        args.extend(extra);
        assert_refused(&run(&args), needle, &format!("{extra:?}"));
    }
    let mut args = base.to_vec();
    args.extend([
        "--engines",
        "cpu:1",
        "--repeats",
        "1",
        "--set",
        "wavefunction.sigma=1e-160",
        "-q",
    ]);
    let stderr = assert_failed(&run(&args), "bench with a NaN energy");
    assert!(stderr.contains("not finite"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Starts the program with `args`, waits until its standard output shows `line`, then sends
/// it `signal`; returns its exit code and standard error.
#[cfg(unix)]
fn stop_when(args: &[&str], line: &str, signal: &str) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let mut child = common::command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let seen = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains(line));
    assert!(seen, "{args:?} never printed `{line}`");
    common::signal(child.id(), signal);
    // Drain stdout so that the program never blocks on a full pipe.
    lines.for_each(drop);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code(), stderr)
}

/// The first SIGINT or SIGTERM used to be ignored by `bench` (it measured on and exited 0):
/// it stops after the point in progress, writes the points measured and exits 130.
#[cfg(unix)]
#[test]
fn bench_stops_on_the_first_signal() {
    let dir = scratch("bench-stop");
    let out = dir.join("out");
    let args = [
        "bench",
        "--walkers",
        "256..4194304",
        "--engines",
        "cpu:1",
        "--seconds",
        "0.3",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, stderr) = stop_when(&args, "cpu", "TERM");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("bench stopped after"), "{stderr}");
    let bench = read_json(&out.join("bench.json"));
    let points = bench["points"].as_array().unwrap().len();
    assert!((1..15).contains(&points), "{points} points");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `validate` with an adapter that does not exist is bad input (exit 2), not 8 failed cases;
/// stopped by a signal, it says to validate again, not to resume a case's run.
#[cfg(unix)]
#[test]
fn validate_keeps_the_contract() {
    let dir = scratch("validate");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let args = [
        "validate",
        "--quick",
        "--engine",
        "gpu",
        "--adapter",
        "nonexistent",
    ];
    let mut with_out = args.to_vec();
    with_out.extend(["--out", o]);
    assert_refused(&run(&with_out), "no GPU adapter named like", "validate");
    let args = [
        "validate", "--quick", "--engine", "cpu", "--out", o, "--force",
    ];
    let (code, stderr) = stop_when(&args, "[1/", "INT");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("Run `rbm-vmc validate` again") && !stderr.contains("--resume"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `check` says what `run --engine gpu` would refuse: a missing adapter, buffers beyond its
/// limits.
#[test]
fn check_applies_the_gpu_limits() {
    let o = run(&[
        "check",
        "--set",
        "engine=gpu",
        "--set",
        "gpu.adapter=nonexistent",
    ]);
    assert_refused(&o, "no GPU adapter named like", "check --engine gpu");
    let args = [
        "check",
        "--set",
        "engine=gpu",
        "--set",
        "walkers=100000000",
        "--set",
        "production.steps=10",
        "--set",
        "steps_per_iteration=10",
        "--set",
        "observables.enabled=false",
    ];
    let o = run(&args);
    let stderr = text(&o.stderr);
    if stderr.contains("no GPU adapter found") && !common::gpu_required() {
        eprintln!("skipped: no GPU adapter");
        return;
    }
    assert_refused(
        &o,
        "beyond this adapter's limit",
        "check of 1e8 walkers on the GPU",
    );
}
