//! Runs that survive: exact resume, crash-safe checkpoints, divergence, hostile input and a
//! lost GPU.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use common::{config, rbm_vmc as bin, scratch, text};
use rbm_vmc::config::EngineChoice;
use rbm_vmc::driver::{self, Context};
use rbm_vmc::engine::{Engine, EngineSpec, GpuEngine, Moments, Progress, WalkerState};
use rbm_vmc::report::OutputDir;
use rbm_vmc::rng::StepStream;
use rbm_vmc::{Error, RbmParams};
use serde_json::{Value, json};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// history.csv without the wall-time column.
fn history_numbers(dir: &Path) -> Vec<String> {
    read(&dir.join("history.csv"))
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
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
    let (full, part) = (dir.join("full"), dir.join("part"));
    let mut args = vec!["run", "-q", "--out", full.to_str().unwrap()];
    args.extend(TINY);
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
    assert!(partial["status"].as_str().unwrap().contains("time budget"));
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
    assert_eq!(history_numbers(&full), history_numbers(&part));
    let energy = |d: &Path| -> f64 {
        let r: Value = serde_json::from_str(&read(&d.join("result.json"))).unwrap();
        r["energy"].as_f64().unwrap()
    };
    assert_eq!(energy(&full).to_bits(), energy(&part).to_bits());
    // A finished run has nothing to resume.
    let o = bin(&["run", "--resume", part.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
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
    let leaves = leaf_paths(&base, "");
    let (mut rejected, mut accepted) = (0, 0);
    let count = 1200;
    for i in 0..count {
        let mut rng = StepStream::new(2024, i, 0);
        let mut pick = |n: usize| ((rng.uniform() * n as f64) as usize).min(n - 1);
        let kind = pick(6);
        let mut value = base.clone();
        let mut source = value.to_string();
        match kind {
            0 | 1 => {
                let path = &leaves[pick(leaves.len())];
                source = with_leaf(&base, path, HOSTILE[pick(HOSTILE.len())]);
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
    fn kind(&self) -> &'static str {
        "gpu"
    }
    fn spec(&self) -> &EngineSpec {
        self.inner.spec()
    }
    fn sample(
        &mut self,
        params: &RbmParams,
        steps: u32,
        measure: bool,
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
        "sampler": {"thermalisation": 20},
        "optimiser": {"iterations": 6}, "production": {"steps": 200},
        "checkpoint_every": 2, "engine": "gpu",
    }));
    let Some(gpu) = common::gpu(&c) else { return };
    let dir = scratch("lost");
    let out = OutputDir::create(Some(&dir.join("out")), false).unwrap();
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
/// and exit 130.
#[cfg(unix)]
#[test]
fn stop_signals_end_the_iteration_with_a_checkpoint() {
    let dir = scratch("signals");
    for name in ["INT", "TERM", "HUP"] {
        let out = dir.join(name);
        let child = start_long_run(&mut common::command(), &out, &[]);
        common::signal(child.id(), name);
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
        assert_eq!(
            read(&out.join("history.csv")).lines().count() as u64,
            done + 1
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
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
