//! Runs that survive: exact resume, crash-safe checkpoints, divergence, hostile input and a
//! lost GPU.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use common::{assert_failed, config, rbm_vmc as bin, scratch, text};
use rbm_vmc::config::EngineChoice;
use rbm_vmc::driver::{self, Context};
use rbm_vmc::engine::{Engine, EngineSpec, GpuEngine, Measure, Moments, Progress, WalkerState};
use rbm_vmc::report::OutputDir;
use rbm_vmc::rng::StepStream;
use rbm_vmc::{Error, Params};
use serde_json::{Value, json};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// history.csv without the wall-time column (`seconds`, before `step_size`).
fn history_numbers(dir: &Path) -> Vec<String> {
    read(&dir.join("history.csv"))
        .lines()
        .map(|l| {
            let (rest, step_size) = l.rsplit_once(',').unwrap();
            format!("{},{step_size}", rest.rsplit_once(',').unwrap().0)
        })
        .collect()
}

const TINY: [&str; 14] = [
    "--set",
    "walkers=64",
    "--set",
    "steps_per_iteration=100",
    "--set",
    "optimiser.iterations=6",
    "--set",
    "production.steps=300",
    "--set",
    "sampler.thermalisation=20",
    "--set",
    "checkpoint_every=2",
    "--engine",
    "cpu",
];

/// In `dir`: `full`, an uninterrupted tiny run, and `part`, the same run stopped by a tiny
/// --max-seconds after its first iteration (whose output is returned).
fn full_and_stopped(dir: &Path) -> (PathBuf, PathBuf, Output) {
    full_and_stopped_with(dir, &[])
}

/// `full_and_stopped` with `extra` arguments for both runs.
fn full_and_stopped_with(dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf, Output) {
    let (full, part) = (dir.join("full"), dir.join("part"));
    let mut args = vec!["run", "-q", "--out", full.to_str().unwrap()];
    args.extend(TINY);
    args.extend(extra);
    assert!(bin(&args).status.success());
    let mut args = vec![
        "run",
        "-q",
        "--max-seconds",
        "1e-9",
        "--out",
        part.to_str().unwrap(),
    ];
    args.extend(TINY);
    args.extend(extra);
    let stopped = bin(&args);
    assert_eq!(
        stopped.status.code(),
        Some(130),
        "{}",
        text(&stopped.stderr)
    );
    (full, part, stopped)
}

/// A run stopped after every iteration (a tiny --max-seconds) and resumed each time ends
/// with exactly the parameters, history and energy of an uninterrupted run.
#[test]
fn interrupted_and_resumed_runs_match_uninterrupted_ones_bit_for_bit() {
    let dir = scratch("resume");
    let (full, part, o) = full_and_stopped(&dir);
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("after iteration 1 of 6") && stderr.contains("--resume"),
        "{stderr}"
    );
    let partial: Value = serde_json::from_str(&read(&part.join("result.json"))).unwrap();
    assert_eq!(partial["iterations"], 1);
    assert_eq!(partial["status"], "stopped");
    assert_eq!(partial["reason"], "time_budget");
    resume_after_every_iteration_and_compare(&full, &part);
    // A finished run has nothing to resume.
    let o = bin(&["run", "--resume", part.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same for stochastic reconfiguration with a schedule: the metric and the solve are
/// deterministic, so a resumed SR run is bit-exact too.
#[test]
fn resumed_sr_runs_match_uninterrupted_ones_bit_for_bit() {
    let dir = scratch("resume-sr");
    let extra = [
        "--set",
        "optimiser.kind=sr",
        "--set",
        "optimiser.schedule=cosine",
        "--set",
        "wavefunction.jastrow=pade",
    ];
    let (full, part, _) = full_and_stopped_with(&dir, &extra);
    let history = read(&full.join("history.csv"));
    let row: Vec<&str> = history.lines().nth(1).unwrap().split(',').collect();
    // step_norm and condition are filled in for SR.
    assert!(row[9].parse::<f64>().unwrap() > 0.0, "{history}");
    assert!(row[10].parse::<f64>().unwrap() >= 1.0, "{history}");
    resume_after_every_iteration_and_compare(&full, &part);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Resumes `part` (stopped after its first iteration) with a tiny time budget until it
/// completes, one stop after each iteration, and checks that it ends exactly as `full`.
fn resume_after_every_iteration_and_compare(full: &Path, part: &Path) {
    let mut stops = 1;
    loop {
        let o = bin(&[
            "run",
            "-q",
            "--max-seconds",
            "1e-9",
            "--resume",
            part.to_str().unwrap(),
        ]);
        match o.status.code() {
            Some(130) => stops += 1,
            Some(0) => break,
            other => panic!("resume exited {other:?}: {}", text(&o.stderr)),
        }
        assert!(stops <= 6, "more stops than iterations");
    }
    assert_eq!(stops, 6, "one stop after each iteration");
    assert_eq!(
        read(&full.join("params.json")),
        read(&part.join("params.json"))
    );
    assert_eq!(history_numbers(full), history_numbers(part));
    let energy = |d: &Path| -> f64 {
        let r: Value = serde_json::from_str(&read(&d.join("result.json"))).unwrap();
        r["energy"].as_f64().unwrap()
    };
    assert_eq!(energy(full).to_bits(), energy(part).to_bits());
}

/// A crash while a checkpoint was being written leaves a half-written temporary file (and
/// maybe a walker file nobody names yet): the previous checkpoint still resumes.
#[test]
fn a_crash_during_a_checkpoint_write_leaves_the_previous_one_loadable() {
    let dir = scratch("crash");
    let (full, part, _) = full_and_stopped(&dir);

    let checkpoint = read(&part.join("checkpoint.json"));
    std::fs::write(
        part.join("checkpoint.tmp"),
        &checkpoint[..checkpoint.len() / 3],
    )
    .unwrap();
    std::fs::write(part.join("checkpoint-walkers-2-9999.bin"), [1u8, 2, 3]).unwrap();
    std::fs::write(part.join("checkpoint-walkers-2-9999.tmp"), [7u8; 5]).unwrap();
    let o = bin(&["run", "-q", "--resume", part.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        read(&full.join("params.json")),
        read(&part.join("params.json"))
    );

    // A damaged checkpoint is refused with a reason, not a panic.
    std::fs::write(part.join("result.json"), "{}").unwrap();
    std::fs::write(
        part.join("checkpoint.json"),
        &checkpoint[..checkpoint.len() / 2],
    )
    .unwrap();
    let o = bin(&["run", "--resume", part.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("damaged"), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn divergence_stops_with_the_last_good_parameters() {
    let dir = scratch("diverge");
    let out = dir.join("out");
    let mut args = vec!["run", "-q", "--out", out.to_str().unwrap()];
    args.extend(TINY);
    args.extend([
        "--set",
        "optimiser.kind=sgd",
        "--set",
        "optimiser.learning_rate=1e6",
        "--set",
        "optimiser.iterations=30",
    ]);
    let o = bin(&args);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("learning rate") && stderr.contains("params.json"),
        "{stderr}"
    );
    let params: Value = serde_json::from_str(&read(&out.join("params.json"))).unwrap();
    let numbers: Vec<f64> = ["a", "b"]
        .iter()
        .flat_map(|k| {
            params[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
        })
        .collect();
    assert!(numbers.iter().all(|v| v.is_finite()));
    // The last good parameters give a finite energy.
    let sampled = dir.join("sampled");
    let o = bin(&[
        "sample",
        "-q",
        "--engine",
        "cpu",
        "--set",
        "walkers=64",
        "--set",
        "production.steps=200",
        "--params",
        out.join("params.json").to_str().unwrap(),
        "--out",
        sampled.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: Value = serde_json::from_str(&read(&sampled.join("result.json"))).unwrap();
    assert!(r["energy"].as_f64().unwrap().is_finite());
    std::fs::remove_dir_all(&dir).unwrap();
}

const HOSTILE: [&str; 24] = [
    "-1",
    "0",
    "-0.0",
    "2.5",
    "1e308",
    "-1e308",
    "1e999",
    "NaN",
    "Infinity",
    "\"NaN\"",
    "null",
    "true",
    "\"text\"",
    "[]",
    "{}",
    "4294967296",
    "1e12",
    "1e6",
    "-4294967296",
    "18446744073709551616",
    "\"\"",
    "[1, 2]",
    "{\"x\": 1}",
    "99999999999999999999999",
];

/// Seeded mutations of a valid config: hostile values, unknown keys, deleted keys, lost
/// braces, truncation. `rbm-vmc check` must exit 0 (still valid) or 2 with one line of
/// reason, never panic.
#[test]
fn a_thousand_mutated_configs_get_a_clear_verdict() {
    let dir = scratch("fuzz");
    let base = json!({
        "system": {"particles": 2, "dims": 2, "omega": 1.0, "interaction": true},
        "wavefunction": {"hidden": 2, "sigma": 1.0, "form": "direct", "init_scale": 0.1},
        "sampler": {"kind": "importance", "moves": "all", "step": 1.0, "dt": 0.05,
                    "thermalisation": 10, "measure_every": 1},
        "walkers": 16, "steps_per_iteration": 10, "seed": 1, "engine": "cpu", "threads": 1,
        "optimiser": {"kind": "adam", "learning_rate": 0.05, "iterations": 2},
        "production": {"steps": 10}, "checkpoint_every": 1,
        "gpu": {"steps_per_dispatch": 16}
    });
    let (mut rejected, mut accepted) = (0, 0);
    let count = 1200;
    for i in 0..count {
        let source = mutation(&base, 2024, i);
        let path = dir.join(format!("c{i}.json"));
        std::fs::write(&path, &source).unwrap();
        let o = bin(&["check", path.to_str().unwrap()]);
        let stderr = text(&o.stderr);
        match o.status.code() {
            Some(0) => accepted += 1,
            Some(2) => {
                rejected += 1;
                assert!(stderr.starts_with("error: "), "{source}: {stderr}");
                assert_eq!(stderr.trim_end().lines().count(), 1, "{source}: {stderr}");
            }
            other => panic!("{source}: exit {other:?}: {stderr}"),
        }
        assert!(!stderr.contains("panicked"), "{source}: {stderr}");
    }
    assert!(
        rejected > count * 6 / 10,
        "{rejected} rejected, {accepted} accepted"
    );
    assert!(accepted > 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Mutation `i` (seeded) of the JSON `base`: a hostile value at a leaf, an unknown key, a
/// deleted key, a lost brace or quote, or truncation.
fn mutation(base: &Value, seed: u64, i: u32) -> String {
    let leaves = leaf_paths(base, "");
    let mut rng = StepStream::new(seed, i, 0);
    let mut pick = |n: usize| ((rng.uniform() * n as f64) as usize).min(n - 1);
    let kind = pick(6);
    let mut value = base.clone();
    let mut source = value.to_string();
    match kind {
        0 | 1 => {
            let path = &leaves[pick(leaves.len())];
            source = with_leaf(base, path, HOSTILE[pick(HOSTILE.len())]);
        }
        2 => {
            let path = &leaves[pick(leaves.len())];
            let (parent, _) = path.rsplit_once('.').unwrap_or(("", path));
            let target = if parent.is_empty() {
                &mut value
            } else {
                pointer(&mut value, parent)
            };
            target
                .as_object_mut()
                .unwrap()
                .insert(format!("unknown_{i}"), json!(1));
            source = value.to_string();
        }
        3 => {
            let path = &leaves[pick(leaves.len())];
            let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
            let target = if parent.is_empty() {
                &mut value
            } else {
                pointer(&mut value, parent)
            };
            target.as_object_mut().unwrap().remove(key);
            source = value.to_string();
        }
        4 => {
            let braces: Vec<usize> = source
                .match_indices(['{', '}', '[', ']', ',', ':', '"'])
                .map(|(i, _)| i)
                .collect();
            source.remove(braces[pick(braces.len())]);
        }
        _ => {
            let at = pick(source.len());
            source.truncate(at);
        }
    }
    source
}

/// A verdict on hostile input to a command that does work: done (0), a failure of the run
/// (1) or refused (2) with one line saying why, or stopped by the time budget (130); never a
/// panic or another exit.
fn assert_clear_verdict(o: &Output, what: &str) -> i32 {
    let stderr = text(&o.stderr);
    let code = o.status.code();
    assert!(
        matches!(code, Some(0 | 1 | 2 | 130)),
        "{what}: exit {code:?}: {stderr}"
    );
    if matches!(code, Some(1 | 2)) {
        common::assert_one_error_line(&stderr, what);
    }
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    code.unwrap()
}

/// Seeded mutations of a checkpoint (its JSON, and bytes of its walker file) and of a sweep
/// file: resuming or sweeping gives a clear verdict, and damage is refused far more often
/// than not. A budget bounds what a mutated size would make run.
#[test]
fn mutated_checkpoints_walker_files_and_sweep_files_get_a_clear_verdict() {
    let dir = scratch("fuzz-files");
    let (_, part, _) = full_and_stopped(&dir);
    let checkpoint: Value = serde_json::from_str(&read(&part.join("checkpoint.json"))).unwrap();
    let mut refused = 0;
    let count = 120;
    for i in 0..count {
        let copy = copy_run(&part, &dir.join(format!("resume{i}")));
        if i % 4 == 3 {
            // A byte of the walker file changed, or the file cut short.
            let path = walkers_file(&copy);
            let mut bytes = std::fs::read(&path).unwrap();
            let mut rng = StepStream::new(77, i, 0);
            let at = (rng.uniform() * bytes.len() as f64) as usize % bytes.len();
            if i % 8 == 3 {
                bytes.truncate(at);
            } else {
                bytes[at] ^= 1 + (rng.uniform() * 254.0) as u8;
            }
            std::fs::write(&path, bytes).unwrap();
        } else {
            let source = mutation(&checkpoint, 4048, i);
            std::fs::write(copy.join("checkpoint.json"), &source).unwrap();
        }
        let o = bin(&[
            "run",
            "-q",
            "--max-seconds",
            "0.3",
            "--resume",
            copy.to_str().unwrap(),
        ]);
        refused += (assert_clear_verdict(&o, &format!("checkpoint mutation {i}")) == 2) as u32;
        std::fs::remove_dir_all(&copy).unwrap();
    }
    assert!(refused > count * 7 / 10, "{refused} of {count} refused");

    let sweep = json!({
        "config": {"walkers": 16, "steps_per_iteration": 20, "sampler": {"thermalisation": 10},
                   "optimiser": {"iterations": 1}, "production": {"steps": 50},
                   "engine": "cpu", "threads": 1},
        "grid": {"walkers": {"from": 16, "to": 32, "factor": 2}, "seed": [1, 2]},
        "mode": "production"
    });
    let mut refused = 0;
    for i in 0..count {
        let file = dir.join(format!("sweep{i}.json"));
        std::fs::write(&file, mutation(&sweep, 8096, i)).unwrap();
        let out = dir.join(format!("sweep{i}"));
        let o = bin(&[
            "sweep",
            file.to_str().unwrap(),
            "-q",
            "--max-seconds",
            "0.3",
            "--out",
            out.to_str().unwrap(),
        ]);
        refused += (assert_clear_verdict(&o, &format!("sweep mutation {i}")) == 2) as u32;
        std::fs::remove_dir_all(&out).ok();
    }
    assert!(refused > count / 2, "{refused} of {count} refused");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn leaf_paths(v: &Value, prefix: &str) -> Vec<String> {
    match v {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &p)
            })
            .collect(),
        _ => vec![prefix.to_string()],
    }
}

fn pointer<'a>(v: &'a mut Value, dotted: &str) -> &'a mut Value {
    v.pointer_mut(&format!("/{}", dotted.replace('.', "/")))
        .unwrap()
}

/// The config's text with the leaf at `path` replaced by raw `literal` (which may not even
/// be valid JSON).
fn with_leaf(base: &Value, path: &str, literal: &str) -> String {
    let mut v = base.clone();
    *pointer(&mut v, path) = json!("__HOLE__");
    v.to_string().replace("\"__HOLE__\"", literal)
}

/// Sizes beyond memory are refused up front with the estimate and the limit.
#[test]
fn absurd_sizes_are_refused_before_any_work() {
    for (set, needle) in [
        ("walkers=4294967295", "GiB"),
        ("production.steps=4294967295", "GiB"),
        ("wavefunction.hidden=1000000", "wavefunction.hidden"),
        ("system.particles=100000", "system.particles"),
    ] {
        let o = bin(&["check", "--set", set]);
        assert_eq!(o.status.code(), Some(2), "{set}");
        assert!(
            text(&o.stderr).contains(needle),
            "{set}: {}",
            text(&o.stderr)
        );
        let o = bin(&[
            "run",
            "--engine",
            "cpu",
            "--set",
            set,
            "--out",
            "/nonexistent/x",
        ]);
        assert_eq!(o.status.code(), Some(2), "{set}");
    }
}

/// Passes every call to a GPU engine and destroys its device before call `fault_at`.
struct LosesDevice {
    inner: GpuEngine,
    calls: u32,
    fault_at: u32,
}

impl Engine for LosesDevice {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn spec(&self) -> &EngineSpec {
        self.inner.spec()
    }
    fn sample(
        &mut self,
        params: &Params,
        steps: u32,
        measure: Measure,
        progress: &dyn Progress,
    ) -> Result<Moments, Error> {
        self.calls += 1;
        if self.calls == self.fault_at {
            self.inner.destroy_device();
        }
        self.inner.sample(params, steps, measure, progress)
    }
    fn state(&self) -> Result<WalkerState, Error> {
        self.inner.state()
    }
    fn set_state(&mut self, state: &WalkerState) -> Result<(), Error> {
        self.inner.set_state(state)
    }
}

/// A device lost mid-run stops the run with a clear message; its last checkpoint resumes on
/// the CPU engine.
#[test]
fn a_lost_gpu_keeps_the_last_checkpoint_which_resumes_on_the_cpu() {
    let c = config(json!({
        "walkers": 64, "steps_per_iteration": 50, "seed": 4,
        // A fixed dt: tuning would rebuild the engine, replacing the one that loses its device.
        "sampler": {"thermalisation": 20, "dt": 0.05},
        "optimiser": {"iterations": 6}, "production": {"steps": 200},
        "checkpoint_every": 2, "engine": "gpu",
    }));
    let Some(gpu) = common::gpu(&c) else { return };
    let dir = scratch("lost");
    let out = OutputDir::create(Some(&dir.join("out")), false, &[]).unwrap();
    let quiet = Context::solo(true);
    // Call 1 thermalises; calls 2.. are iterations 1..: the device goes in iteration 4.
    let engine = Box::new(LosesDevice {
        inner: gpu,
        calls: 0,
        fault_at: 5,
    });
    let err = driver::run_on(engine, &c, &out, &quiet).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Engine(_)), "{message}");
    assert!(
        message.contains("after iteration 2") && message.contains("--resume"),
        "{message}"
    );
    assert_eq!(err.exit_code(), 1);

    let outcome = driver::resume(&out, Some(EngineChoice::Cpu), None, None, &quiet).unwrap();
    assert_eq!(outcome.iterations, 6);
    assert!(outcome.engine.starts_with("cpu"));
    let e = outcome.production.unwrap();
    assert!(e.energy > 3.0 && e.energy < 3.4, "{}", e.energy);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Starts a long run into `out` (with `extra` arguments) and waits for its first finished
/// iteration.
#[cfg(unix)]
fn start_long_run(program: &mut std::process::Command, out: &Path, extra: &[&str]) -> Child {
    let child = program
        .args([
            "run",
            "-q",
            "--engine",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--set", "walkers=200", "--set", "steps_per_iteration=2000"])
        .args([
            "--set",
            "optimiser.iterations=1000",
            "--set",
            "checkpoint_every=1000",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_lines(&out.join("history.csv"), 2);
    child
}

/// Ctrl-C (SIGINT), SIGTERM (a batch scheduler's time limit) and SIGHUP (a closed terminal)
/// each finish the iteration, write a checkpoint and the partial results, say how to resume
/// and exit 130; so does one signal delivered twice at once (as `timeout` sends it).
#[cfg(unix)]
#[test]
fn stop_signals_end_the_iteration_with_a_checkpoint() {
    let dir = scratch("signals");
    for (name, times) in [("INT", 1), ("TERM", 1), ("HUP", 1), ("INT", 2)] {
        let out = dir.join(format!("{name}-{times}"));
        let child = start_long_run(&mut from_a_terminal(), &out, &[]);
        for _ in 0..times {
            common::signal(child.id(), name);
        }
        let o = child.wait_with_output().unwrap();
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{name}: {stderr}");
        assert!(
            stderr.contains("interrupted (Ctrl-C or a termination signal) after iteration")
                && stderr.contains("--resume"),
            "{name}: {stderr}"
        );
        let checkpoint: Value = serde_json::from_str(&read(&out.join("checkpoint.json"))).unwrap();
        let done = checkpoint["iteration"].as_u64().unwrap();
        assert!(done >= 1);
        let result: Value = serde_json::from_str(&read(&out.join("result.json"))).unwrap();
        assert_eq!(result["iterations"].as_u64().unwrap(), done);
        assert_eq!(result["status"], "stopped", "{name} x {times}");
        assert_eq!(
            read(&out.join("history.csv")).lines().count() as u64,
            done + 1
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The program with SIGHUP at its default action, as started from a terminal, even where
/// these tests run under `nohup` (whose "ignore" the program would inherit and keep).
#[cfg(unix)]
fn from_a_terminal() -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut command = common::command();
    // SAFETY: the hook only calls signal(), which is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
    command
}

/// Under `nohup` a closed terminal (SIGHUP) does not stop the run; SIGTERM still does.
#[cfg(unix)]
#[test]
fn a_run_under_nohup_ignores_sighup() {
    let dir = scratch("nohup");
    let mut nohup = std::process::Command::new("nohup");
    nohup.arg(env!("CARGO_BIN_EXE_rbm-vmc"));
    let mut child = start_long_run(&mut nohup, &dir.join("out"), &[]);
    common::signal(child.id(), "HUP");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the run"
    );
    common::signal(child.id(), "TERM");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two writers never share a directory: while a run writes, another run (even with --force)
/// or a resume into it is refused; --force clears the earlier results before the new run
/// writes anything, so a crash leaves a checkpoint that resumes, not a mixture.
#[cfg(unix)]
#[test]
fn one_run_at_a_time_writes_into_a_directory() {
    let dir = scratch("lock");
    let out = dir.join("out");
    let o_str = out.to_str().unwrap();
    let mut args = vec!["run", "-q", "--out", o_str];
    args.extend(TINY);
    assert!(bin(&args).status.success());
    let mut child = start_long_run(&mut common::command(), &out, &["--force"]);
    // The new run's first checkpoint (iteration 0; the earlier run's was 6).
    let started = std::time::Instant::now();
    while std::fs::read_to_string(out.join("checkpoint.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_none_or(|c| c["iteration"] != 0)
    {
        assert!(started.elapsed().as_secs() < 60, "no new checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for old in ["result.json", "params.json"] {
        assert!(!out.join(old).exists(), "the earlier {old} is still there");
    }
    for second in [
        vec!["run", "--force", "--out", o_str],
        vec!["sample", "--force", "--out", o_str],
        vec!["run", "--resume", o_str],
    ] {
        let mut args = second.clone();
        args.extend(TINY.iter().filter(|_| second[1] != "--resume"));
        common::assert_refused(&bin(&args), "another rbm-vmc process", &second.join(" "));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = bin(&["run", "-q", "--max-seconds", "1e-9", "--resume", o_str]);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Numbers that break down (non-finite, mass walker resets, below the lowest energy the
/// system has, exploding or collapsing after an update) end the run with exit 1 and the
/// cause; result.json then says "diverged" (and why) and holds no energy, and params.json the last good
/// parameters. They used to end with exit 0, "completed" and `"energy": null`.
#[test]
fn broken_numbers_end_with_exit_1_naming_the_cause() {
    let dir = scratch("broken");
    let huge = dir.join("huge.json");
    let row = |n: usize| format!("[{}]", vec!["1e308"; n].join(", "));
    std::fs::write(
        &huge,
        format!(
            r#"{{"a": {}, "b": {}, "w": [{}]}}"#,
            row(4),
            row(2),
            vec![row(2); 4].join(", ")
        ),
    )
    .unwrap();
    let huge = huge.to_str().unwrap();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("sample", vec!["--params", huge], "starting parameters"),
        (
            "sample",
            vec!["--set", "wavefunction.sigma=1e-160"],
            "not finite",
        ),
        ("sample", vec!["--set", "system.omega=1e300"], "not finite"),
        (
            "sample",
            // A fixed dt: an "auto" one shrinks with the width and the walkers cope.
            vec![
                "--set",
                "wavefunction.sigma=1e-8",
                "--set",
                "sampler.dt=0.05",
            ],
            "lowest energy",
        ),
        (
            "run",
            vec![
                "--set",
                "system.omega=1e-320",
                "--set",
                "wavefunction.sigma=1",
            ],
            "system.omega = 1e-320",
        ),
        (
            "run",
            vec![
                "--set",
                "optimiser.learning_rate=1e6",
                "--set",
                "optimiser.iterations=30",
            ],
            "learning rate",
        ),
        (
            "run",
            vec![
                "--set",
                "optimiser.kind=sgd",
                "--set",
                "optimiser.learning_rate=1e6",
                "--set",
                "optimiser.iterations=1",
            ],
            "the production run",
        ),
    ];
    for (i, (command, extra, needle)) in cases.into_iter().enumerate() {
        let out = dir.join(format!("out{i}"));
        let mut args = vec![command, "-q", "--out", out.to_str().unwrap()];
        args.extend(TINY);
        args.extend(&extra);
        let what = format!("{command} {extra:?}");
        let stderr = assert_failed(&bin(&args), &what);
        assert!(stderr.contains(needle), "{what}: {stderr}");
        if needle != "learning rate" && needle != "the production run" {
            assert!(!stderr.contains("learning rate"), "{what}: {stderr}");
        }
        let result: Value = serde_json::from_str(&read(&out.join("result.json"))).unwrap();
        assert_eq!(result["status"], "diverged", "{what}: {result}");
        assert!(
            result["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{what}: {result}"
        );
        assert!(result.get("energy").is_none(), "{what}: {result}");
        if command == "run" && out.join("params.json").exists() {
            // The last good parameters: those the optimiser started from, not 1e6-sized ones.
            let params = read(&out.join("params.json"));
            let p: Value = serde_json::from_str(&params).unwrap();
            let a = p["a"].as_array().unwrap();
            assert!(
                a.iter().all(|v| v.as_f64().unwrap().abs() < 10.0),
                "{what}: {params}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Frozen sampling (a Metropolis step so large nothing is accepted) is warned about on the
/// console, in result.json and in history.csv, and its error bar is the honest walker-mean
/// one, not blocking's 7e-15.
#[test]
fn frozen_sampling_is_warned_about_everywhere() {
    let dir = scratch("frozen");
    let out = dir.join("out");
    let mut args = vec!["run", "--out", out.to_str().unwrap()];
    args.extend(TINY);
    args.extend([
        "--set",
        "sampler.kind=metropolis",
        "--set",
        "sampler.step=1e10",
    ]);
    let o = bin(&args);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("warning: acceptance below 1 %"), "{stderr}");
    assert!(text(&o.stdout).contains("WARNING: acceptance below 1 %"));
    let result: Value = serde_json::from_str(&read(&out.join("result.json"))).unwrap();
    assert!(
        result["warning"].as_str().unwrap().contains("sampler.step"),
        "{result}"
    );
    assert!(result["error"].as_f64().unwrap() > 1e-3, "{result}");
    let history = read(&out.join("history.csv"));
    assert!(
        history
            .lines()
            .skip(1)
            .all(|l| l.contains("acceptance below 1 %")),
        "{history}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A stop request during thermalisation acts within a segment (it used to wait for the end
/// of thermalisation), writes a checkpoint, and the run resumes to exactly the numbers of an
/// uninterrupted one. `sample` stops the same way.
#[test]
fn a_stop_during_thermalisation_acts_at_once_and_resumes_exactly() {
    let dir = scratch("thermalise");
    let (full, part) = (dir.join("full"), dir.join("part"));
    let sizes = [
        "--set",
        "walkers=64",
        "--set",
        // The first 600 steps tune dt (a stop acts after the tuning); the rest is stopped in.
        "sampler.thermalisation=6000",
        "--set",
        "steps_per_iteration=100",
        "--set",
        "optimiser.iterations=2",
        "--set",
        "production.steps=300",
        "--engine",
        "cpu",
    ];
    let mut args = vec!["run", "-q", "--out", full.to_str().unwrap()];
    args.extend(sizes);
    assert!(bin(&args).status.success());
    let mut args = vec!["run", "-q", "--max-seconds", "1e-9"];
    args.extend(["--out", part.to_str().unwrap()]);
    args.extend(sizes);
    let o = bin(&args);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("during thermalisation") && stderr.contains("--resume"),
        "{stderr}"
    );
    let checkpoint: Value = serde_json::from_str(&read(&part.join("checkpoint.json"))).unwrap();
    assert_eq!(checkpoint["iteration"], 0);
    assert!(checkpoint["steps_done"].as_u64().unwrap() < 6000);
    let mut stops = 1;
    loop {
        let o = bin(&["run", "-q", "--max-seconds", "1e-9", "--resume"]
            .into_iter()
            .chain([part.to_str().unwrap()])
            .collect::<Vec<_>>());
        match o.status.code() {
            Some(130) => stops += 1,
            Some(0) => break,
            other => panic!("resume exited {other:?}: {}", text(&o.stderr)),
        }
        assert!(stops <= 10, "no progress");
    }
    assert!(stops >= 4, "{stops} stops");
    assert_eq!(
        read(&full.join("params.json")),
        read(&part.join("params.json"))
    );
    let energy = |d: &Path| -> u64 {
        let r: Value = serde_json::from_str(&read(&d.join("result.json"))).unwrap();
        r["energy"].as_f64().unwrap().to_bits()
    };
    assert_eq!(energy(&full), energy(&part));

    let sampled = dir.join("sampled");
    let o = common::output_within(
        common::command().args([
            "sample",
            "-q",
            "--engine",
            "cpu",
            "--set",
            "walkers=64",
            "--set",
            "sampler.thermalisation=100000000",
            "--max-seconds",
            "0.3",
            "--out",
            sampled.to_str().unwrap(),
        ]),
        20.0,
    );
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("during thermalisation"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file that cannot be written mid-run (a full disk; here a directory in the way of the
/// checkpoint after iteration 2) stops the run with the way to resume it, which then works.
#[test]
fn a_write_failure_mid_run_says_how_to_resume() {
    let c = config(json!({
        "walkers": 16, "steps_per_iteration": 10, "seed": 4, "engine": "cpu", "threads": 1,
        "sampler": {"thermalisation": 10}, "optimiser": {"iterations": 4},
        "production": {"steps": 20}, "checkpoint_every": 1,
    }));
    let dir = scratch("write-fails");
    let out = OutputDir::create(Some(&dir.join("out")), false, &[]).unwrap();
    // Steps after iteration 2: 10 of thermalisation + 2 x 10.
    let obstacle = out.file("checkpoint-walkers-2-30.tmp");
    std::fs::create_dir(&obstacle).unwrap();
    let err = driver::run(&c, &out, &Context::solo(true)).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{message}");
    assert!(
        message.contains("after iteration 1") && message.contains("--resume"),
        "{message}"
    );
    std::fs::remove_dir(&obstacle).unwrap();
    let outcome = driver::resume(&out, None, None, None, &Context::solo(true)).unwrap();
    assert_eq!(outcome.iterations, 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `check` counts every large allocation: with P = 256, D = 3 and N = 1024 (788,224
/// parameters) the CPU engine's per-chunk sums alone take 6 GB (it used to say 3 MiB).
#[test]
fn memory_estimates_count_the_engines_per_chunk_sums() {
    let o = bin(&[
        "check",
        "--set",
        "system.particles=256",
        "--set",
        "system.dims=3",
        "--set",
        "wavefunction.hidden=1024",
        "--set",
        "walkers=1024",
        "--set",
        "engine=cpu",
    ]);
    match o.status.code() {
        Some(0) => {
            let stdout = text(&o.stdout);
            let mib: f64 = stdout
                .split("about ")
                .nth(1)
                .and_then(|s| s.split(" MiB").next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{stdout}"));
            assert!(mib > 6000.0, "{stdout}");
        }
        _ => common::assert_refused(&o, "GiB of memory", "check"),
    }
}

/// In `dir`, a copy of the run directory `from` (its files, not subdirectories).
fn copy_run(from: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    dir.to_path_buf()
}

/// The walker file of the checkpoint in `dir`.
fn walkers_file(dir: &Path) -> PathBuf {
    let checkpoint: Value = serde_json::from_str(&read(&dir.join("checkpoint.json"))).unwrap();
    dir.join(checkpoint["walkers_file"].as_str().unwrap())
}

/// Checkpoints and walker files are checked, not trusted: an impossible iteration, optimiser
/// state that does not fit, a history that does not match, another run's walker file of the
/// same size, or positions changed behind the checkpoint's back are refused with the reason.
#[test]
fn tampered_checkpoints_and_walker_files_are_refused() {
    let dir = scratch("tampered");
    let (_, part, _) = full_and_stopped(&dir);
    // Another run, stopped at the same point: same walker file name and size.
    let other = dir.join("other");
    let mut args = vec![
        "run",
        "-q",
        "--max-seconds",
        "1e-9",
        "--out",
        other.to_str().unwrap(),
    ];
    args.extend(TINY);
    args.extend(["--set", "seed=7"]);
    assert_eq!(bin(&args).status.code(), Some(130));

    type Tamper = Box<dyn Fn(&mut Value)>;
    let json_cases: Vec<(&str, Tamper)> = vec![
        ("iteration", Box::new(|c| c["iteration"] = json!(u32::MAX))),
        (
            "moment vectors",
            Box::new(|c| c["optimiser"]["m"] = json!([0.0])),
        ),
        (
            "settings differ",
            Box::new(|c| c["optimiser"]["config"]["beta1"] = json!(2.0)),
        ),
        (
            "beta1",
            Box::new(|c| c["config"]["optimiser"]["beta1"] = json!(2.0)),
        ),
        ("history", Box::new(|c| c["history"] = json!([]))),
        (
            "history",
            Box::new(|c| c["history"][0] = json!("1,3.0\n2,1,1,1,1,1")),
        ),
        ("steps_done", Box::new(|c| c["steps_done"] = json!(1))),
        ("theta", Box::new(|c| c["theta"] = json!([0.0]))),
        (
            "previous_theta",
            Box::new(|c| c["previous_theta"] = json!([1e308, 1.0])),
        ),
        (
            "walkers_file",
            Box::new(|c| c["walkers_file"] = json!("../other.bin")),
        ),
        ("run_id", Box::new(|c| c["run_id"] = json!("zz"))),
        (
            "checksum",
            Box::new(|c| c["walkers_checksum"] = json!("0000000000000000")),
        ),
        // A valid config edited in place would continue another system's run, its history
        // mixing two systems: the checksum of the config refuses it.
        (
            "`config` is not the one it was written with",
            Box::new(|c| c["config"]["system"]["omega"] = json!(0.5)),
        ),
        (
            "`config` is not the one it was written with",
            Box::new(|c| c["config"]["seed"] = json!(7)),
        ),
        (
            "`config` is not the one it was written with",
            Box::new(|c| c["config"]["sampler"]["kind"] = json!("metropolis")),
        ),
        (
            "config_checksum",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("config_checksum");
            }),
        ),
        (
            "has format version 2; this program reads version 3",
            Box::new(|c| c["version"] = json!(2)),
        ),
    ];
    // A key given twice (the last used to win).
    let copy = copy_run(&part, &dir.join("twice"));
    let text = read(&copy.join("checkpoint.json")).replacen('{', "{\"iteration\": 0,", 1);
    std::fs::write(copy.join("checkpoint.json"), text).unwrap();
    let o = bin(&["run", "-q", "--resume", copy.to_str().unwrap()]);
    common::assert_refused(&o, "the key `iteration` appears twice", "twice");
    for (i, (needle, tamper)) in json_cases.iter().enumerate() {
        let copy = copy_run(&part, &dir.join(format!("json{i}")));
        let mut checkpoint: Value =
            serde_json::from_str(&read(&copy.join("checkpoint.json"))).unwrap();
        tamper(&mut checkpoint);
        std::fs::write(copy.join("checkpoint.json"), checkpoint.to_string()).unwrap();
        let o = bin(&["run", "-q", "--resume", copy.to_str().unwrap()]);
        common::assert_refused(&o, needle, needle);
    }

    type Damage = Box<dyn Fn(&Path)>;
    let other_walkers = walkers_file(&other);
    let file_cases: Vec<(&str, Damage)> = vec![
        (
            "checksum",
            Box::new(|w| {
                let mut bytes = std::fs::read(w).unwrap();
                let at = bytes.len() - 8;
                bytes[at..].copy_from_slice(&f64::NAN.to_le_bytes());
                std::fs::write(w, bytes).unwrap();
            }),
        ),
        (
            "belongs to run",
            Box::new(move |w| {
                std::fs::copy(&other_walkers, w).unwrap();
            }),
        ),
        (
            "bytes",
            Box::new(|w| {
                let bytes = std::fs::read(w).unwrap();
                std::fs::write(w, &bytes[..bytes.len() - 1]).unwrap();
            }),
        ),
        // One byte too many read "larger than 6.3 KiB, the most this program reads".
        (
            "bytes; the checkpoint's 64 walkers need",
            Box::new(|w| {
                let mut bytes = std::fs::read(w).unwrap();
                bytes.push(0);
                std::fs::write(w, bytes).unwrap();
            }),
        ),
    ];
    for (i, (needle, damage)) in file_cases.iter().enumerate() {
        let copy = copy_run(&part, &dir.join(format!("file{i}")));
        damage(&walkers_file(&copy));
        let o = bin(&["run", "-q", "--resume", copy.to_str().unwrap()]);
        common::assert_refused(&o, needle, needle);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
