//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rbm_vmc::config::Config;
use rbm_vmc::engine::{CpuEngine, Engine, EngineSpec, Measure};
use rbm_vmc::sampler::{SamplerInfo, SamplerKind, Step};
use rbm_vmc::{Estimate, Params};
use serde_json::Value;

/// Command-line settings small enough that a CLI test takes a fraction of a second.
pub const TINY: [&str; 12] = [
    "--set",
    "walkers=64",
    "--set",
    "steps_per_iteration=100",
    "--set",
    "optimiser.iterations=3",
    "--set",
    "production.steps=400",
    "--set",
    "sampler.thermalisation=50",
    "--engine",
    "cpu",
];

/// A validated config from JSON (on top of the defaults).
pub fn config(value: Value) -> Config {
    Config::from_value(value, "test").expect("valid test config")
}

pub fn cpu(config: &Config) -> CpuEngine {
    CpuEngine::new(EngineSpec::from_config(config), config.threads).unwrap()
}

/// Thermalise, then measure `steps` steps at fixed parameters.
pub fn measure(engine: &mut dyn Engine, params: &Params, therm: u32, steps: u32) -> Estimate {
    if therm > 0 {
        engine.sample(params, therm, Measure::Nothing, &()).unwrap();
    }
    Estimate::from_moments(&engine.sample(params, steps, Measure::Energy, &()).unwrap())
}

/// Parameters with a = w = 0 and the given hidden biases (which then do not matter).
pub fn biases_only(visible: usize, b: &[f64]) -> Params {
    let mut theta = vec![0.0; visible + b.len() + visible * b.len()];
    theta[visible..visible + b.len()].copy_from_slice(b);
    Params::from_theta(rbm_vmc::physics::Layout::rbm(visible, b.len()), theta).unwrap()
}

/// Asserts |value - expected| <= k sigma, printing the numbers on failure.
pub fn assert_within(label: &str, value: f64, expected: f64, sigma: f64, k: f64) {
    assert!(
        sigma.is_finite() && sigma > 0.0,
        "{label}: error estimate {sigma} is not usable"
    );
    let z = (value - expected) / sigma;
    assert!(
        z.abs() <= k,
        "{label}: {value} vs {expected}: {z:+.2} sigma (sigma {sigma:.3e})"
    );
}

/// Every sampler setting the table allows, as (sampler.kind, sampler.moves), in
/// `SamplerKind::ALL` order: each kind with its moves of every coordinate, and of one
/// particle at a time where its steps are moves.
pub fn samplers() -> Vec<(&'static str, &'static str)> {
    SamplerKind::ALL
        .into_iter()
        .flat_map(|kind| {
            let info = kind.info();
            let moves: &[&'static str] = match info.step {
                Step::Moves { .. } => &["all", "single"],
                Step::Whole { .. } => &["all"],
            };
            moves.iter().map(move |&m| (info.name, m))
        })
        .collect()
}

/// The table's row of the sampler `kind` names.
pub fn sampler_info(kind: &str) -> SamplerInfo {
    SamplerKind::ALL
        .into_iter()
        .map(SamplerKind::info)
        .find(|info| info.name == kind)
        .expect("a sampler of the table")
}

/// Whether the sampler `kind` needs `wavefunction.form` = "sqrt".
pub fn needs_sqrt(kind: &str) -> bool {
    sampler_info(kind).needs_sqrt.is_some()
}

/// Whether the sampler `kind` takes `sampler.moves` = "single".
pub fn takes_single(kind: &str) -> bool {
    matches!(sampler_info(kind).step, Step::Moves { .. })
}

/// Whether the GPU tests must run (CI sets RBM_VMC_REQUIRE_GPU=1) rather than skip.
pub fn gpu_required() -> bool {
    std::env::var("RBM_VMC_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The best adapter, CPU implementations (lavapipe) included. Without one the test is
/// skipped with a message, unless RBM_VMC_REQUIRE_GPU=1 (set by CI), where it fails.
pub fn adapter() -> Option<wgpu::Adapter> {
    match rbm_vmc::engine::gpu::choose(None, true, 0) {
        Some(adapter) => Some(adapter),
        None if gpu_required() => {
            panic!(
                "RBM_VMC_REQUIRE_GPU=1 but no GPU adapter was found (install mesa-vulkan-drivers)"
            )
        }
        None => {
            eprintln!("skipped: no GPU adapter (install mesa-vulkan-drivers for lavapipe)");
            None
        }
    }
}

/// The GPU engine for `config` on `adapter()`.
pub fn gpu(config: &Config) -> Option<rbm_vmc::engine::GpuEngine> {
    let engine =
        rbm_vmc::engine::GpuEngine::new(EngineSpec::from_config(config), &adapter()?, &config.gpu);
    Some(engine.expect("GPU engine builds"))
}

/// The program itself, ready for arguments.
pub fn command() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_rbm-vmc"))
}

/// Runs the program with `args` and collects its output.
pub fn rbm_vmc(args: &[&str]) -> std::process::Output {
    command().args(args).output().expect("the binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rbm-vmc-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Thermalises, optimises for `config.optimiser.iterations` iterations, then measures
/// `production` steps at the optimised parameters.
pub fn optimise_then_measure(
    engine: &mut dyn Engine,
    config: &Config,
    production: u32,
) -> Estimate {
    let mut params = rbm_vmc::driver::initial_params(config).unwrap();
    engine.sample(&params, 300, Measure::Nothing, &()).unwrap();
    let mut optimiser = rbm_vmc::optimiser::Optimiser::new(&config.optimiser, params.theta().len());
    let wf = config.wavefunction();
    for _ in 0..config.optimiser.iterations {
        let moments = engine
            .sample(
                &params,
                config.steps_per_iteration,
                optimiser.measure(),
                &(),
            )
            .unwrap();
        let gradient = Estimate::from_moments(&moments).gradient;
        optimiser
            .step(&wf, &mut params, &gradient, moments.metric.as_ref())
            .unwrap();
    }
    measure(engine, &params, 0, production)
}

/// The known energy of the plain RBM with two hidden units (3.06 .. 3.08): not above 3.08 by
/// more than 4 error bars, nor below the exact 3.0 (variational bound) by more than 4. Without
/// a cusp the local energy has heavy tails in 2D, so the error bar, itself capped, decides.
pub fn assert_rbm_energy(label: &str, e: &Estimate) {
    assert!(
        e.error < 0.02,
        "{label}: error {} too large to test",
        e.error
    );
    assert!(
        e.energy < 3.08 + 4.0 * e.error,
        "{label}: {} +- {}",
        e.energy,
        e.error
    );
    assert!(
        e.energy > 3.0 - 4.0 * e.error,
        "{label}: {} +- {} violates the variational bound",
        e.energy,
        e.error
    );
}

/// A non-interacting system whose trial function is exact at a = w = 0: sigma = "auto" gives
/// sigma^2 = 1/omega for psi = F, 1/(2 omega) for psi = sqrt(F). `extra` (an object) is merged
/// on top.
pub fn exact_case(
    (particles, dims, hidden): (usize, usize, usize),
    omega: f64,
    form: &str,
    (kind, moves): (&str, &str),
    extra: Value,
) -> Config {
    let mut value = serde_json::json!({
        "system": {"particles": particles, "dims": dims, "omega": omega, "interaction": false},
        "wavefunction": {"hidden": hidden, "sigma": "auto", "form": form},
        "sampler": {"kind": kind, "moves": moves},
    });
    rbm_vmc::config::merge(&mut value, &extra);
    config(value)
}

/// Closed shells of non-interacting fermions: (particles, dims, exact energy / omega).
pub const CLOSED_SHELLS: [(usize, usize, f64); 3] = [(6, 2, 10.0), (12, 2, 28.0), (8, 3, 18.0)];

/// The samplers a Slater determinant or a Jastrow factor allows (those not `rbm_alone`).
pub fn metropolis_samplers() -> Vec<(&'static str, &'static str)> {
    let rbm_alone = |kind: &str| sampler_info(kind).rbm_alone;
    samplers()
        .into_iter()
        .filter(|&(kind, _)| !rbm_alone(kind))
        .collect()
}

/// Closed-shell fermions without interaction at a = w = 0 (the exact ground state).
pub fn fermion_case(
    particles: usize,
    dims: usize,
    (kind, moves): (&str, &str),
    extra: Value,
) -> Config {
    let mut value = serde_json::json!({
        "system": {"particles": particles, "dims": dims, "omega": 0.5, "interaction": false,
                   "statistics": "fermions"},
        "wavefunction": {"hidden": 2, "init_scale": 0.0},
        "sampler": {"kind": kind, "moves": moves},
    });
    rbm_vmc::config::merge(&mut value, &extra);
    config(value)
}

/// Hidden biases for the exact cases (which do not depend on them when w = 0).
pub fn hidden_biases(hidden: usize) -> Vec<f64> {
    (0..hidden).map(|n| 0.3 * n as f64 - 0.2).collect()
}

/// Runs `cmd` (its stdout and stderr captured), failing the test if it takes longer than
/// `seconds`: a hang is a failure, not a stuck test suite.
pub fn output_within(cmd: &mut std::process::Command, seconds: f64) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs_f64() > seconds {
            child.kill().ok();
            let o = child.wait_with_output().unwrap();
            panic!("{cmd:?} still ran after {seconds} s: {}", text(&o.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Waits until the file at `path` has at least `lines` lines.
pub fn wait_for_lines(path: &std::path::Path, lines: usize) {
    let started = std::time::Instant::now();
    while std::fs::read_to_string(path).map_or(0, |h| h.lines().count()) < lines {
        assert!(
            started.elapsed().as_secs() < 60,
            "{} never got {lines} lines",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends signal `name` (INT, TERM, HUP, KILL) to process `pid`.
#[cfg(unix)]
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Asserts a refusal: exit code 2 and one line on stderr, starting with "error: " and
/// containing `needle`.
pub fn assert_refused(o: &std::process::Output, needle: &str, what: &str) {
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: {stderr}");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{what}: `{stderr}` lacks `{needle}`"
    );
}

/// The config for the metric tests: RBM x Padé-Jastrow with a trained width (every factor
/// with parameters), 50 walkers, a few measurements each.
pub fn metric_case() -> Config {
    config(serde_json::json!({
        "wavefunction": {"hidden": 3, "init_scale": 0.2, "jastrow": "pade", "train_sigma": true},
        "sampler": {"kind": "importance", "dt": 0.1, "measure_every": 2},
        "walkers": 50, "seed": 91, "threads": 2,
        "gpu": {"steps_per_dispatch": 6},
    }))
}

/// The metric S = <O O^T> - <O><O>^T (K x K) of a set of O rows, in two passes.
pub fn covariance_of_rows(rows: &[Vec<f64>]) -> Vec<f64> {
    let k = rows[0].len();
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..k)
        .map(|i| rows.iter().map(|r| r[i]).sum::<f64>() / n)
        .collect();
    let mut s = vec![0.0; k * k];
    for r in rows {
        for i in 0..k {
            for j in 0..k {
                s[i * k + j] += (r[i] - mean[i]) * (r[j] - mean[j]) / n;
            }
        }
    }
    s
}

/// Exit 1 with one `error:` line (warnings aside); returns stderr.
pub fn assert_failed(o: &std::process::Output, what: &str) -> String {
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{what}: {stderr}");
    assert_one_error_line(&stderr, what);
    stderr
}

/// `stderr` holds one `error:` line besides its warnings.
pub fn assert_one_error_line(stderr: &str, what: &str) {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert!(
        errors.len() == 1 && errors[0].starts_with("error: "),
        "{what}: {stderr}"
    );
}
