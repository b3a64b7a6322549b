//! `check`'s calibration runs the run's own work: its engine and wave function (determinants,
//! Jastrow), each phase's measurements (SR's metric, the observables) and the optimiser's
//! update. Checked on what it ran, not on timings.

mod common;

use std::path::Path;

use rbm_vmc::config::Config;
use rbm_vmc::driver::{calibrate, initial_params};
use rbm_vmc::engine::{EngineSpec, Measure};
use rbm_vmc::optimiser::Optimiser;

fn load(file: Option<&str>, set: &[&str]) -> Config {
    let path = file.map(|f| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(f)
    });
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    Config::load(path.as_deref(), &set).unwrap()
}

/// Six electrons (determinants, Jastrow) optimised by SR with observables on.
#[test]
fn calibration_runs_the_runs_own_work() {
    let config = load(
        Some("fermions-6.json"),
        &["optimiser.kind=sr", "engine=cpu", "walkers=128"],
    );
    let cal = calibrate(&config, &initial_params(&config).unwrap())
        .unwrap()
        .expect("small enough to calibrate");
    // The run's spec whole: determinants, Jastrow, sampler, walkers.
    assert_eq!(cal.spec, EngineSpec::from_config(&config));
    assert!(cal.engine.starts_with("cpu"), "{}", cal.engine);
    let work: Vec<(&str, Measure, bool)> = cal
        .phases
        .iter()
        .map(|p| (p.phase, p.measure, p.observables))
        .collect();
    let optimise = Optimiser::new(&config.optimiser, cal.spec.parameters()).measure();
    assert!(matches!(optimise, Measure::EnergyAndMetric { .. }));
    assert_eq!(
        work,
        [
            ("thermalise", Measure::Nothing, false),
            ("optimise", optimise, false),
            ("production", Measure::Production, true),
        ]
    );
    assert!(cal.update_seconds > 0.0);
    assert!(cal.phases.iter().all(|p| p.seconds_per_walker_step > 0.0));
    // fermions-6.json gives its dt: no tuning rounds to count.
    assert!(!cal.tunes);

    // Adam measures the energy and its gradient sums; observables off stay off.
    let config = load(None, &["engine=cpu", "observables.enabled=false"]);
    let cal = calibrate(&config, &initial_params(&config).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(cal.phases[1].measure, Measure::Energy);
    assert!(!cal.phases[2].observables);
    assert!(cal.tunes, "the default dt is \"auto\"");
}

/// A GPU run is calibrated on the GPU engine (lavapipe where there is no GPU).
#[test]
fn a_gpu_run_is_calibrated_on_the_gpu() {
    if common::adapter().is_none() {
        return;
    }
    let config = load(None, &["engine=gpu", "walkers=256"]);
    let cal = calibrate(&config, &initial_params(&config).unwrap())
        .unwrap()
        .unwrap();
    assert!(cal.engine.starts_with("gpu"), "{}", cal.engine);
    assert_eq!(cal.spec, EngineSpec::from_config(&config));
}

/// `check --from DIR` estimates `sample --from DIR`: the run's config (its tuned dt too) at
/// its parameters, with thermalisation and production only.
#[test]
fn check_from_a_run_estimates_its_sample() {
    let dir = common::scratch("check-from");
    let out = dir.join("run");
    let mut args = vec!["run", "--out", out.to_str().unwrap()];
    args.extend(common::TINY);
    assert!(common::rbm_vmc(&args).status.success());
    let o = common::rbm_vmc(&["check", "--from", out.to_str().unwrap()]);
    let stdout = common::text(&o.stdout);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    // 64 walkers x (50 thermalisation + 400 production steps).
    assert!(
        stdout.contains("64 walkers; 2.880e4 walker-steps"),
        "{stdout}"
    );
    assert!(
        stdout.contains("about ") && stdout.contains(" on cpu ("),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
