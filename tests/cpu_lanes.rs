//! The CPU engine's lane path (64 walkers at a time in SIMD lanes) against the scalar
//! reference engine: the same chains to rounding, from the same start, on every system and
//! sampler the lane path takes (closed-shell fermions among them);
//! bit-identical results on every instruction set the CPU has.

mod common;

use rbm_vmc::Params;
use rbm_vmc::driver::initial_params;
use rbm_vmc::engine::{CpuEngine, Engine, EngineSpec, Measure, Moments, Simd};
use serde_json::{Value, json};

/// Systems and samplers the lane path runs: both samplers; the RBM with and without the
/// Padé-Jastrow factor (2 electrons in 2D, 4 in 3D); the sqrt form with a trained
/// width; 3 particles in 3D without interaction (an odd coordinate count, so Box-Muller's
/// last pair is half used); 70 hidden units (two chunks of the softplus product) and none; walker
/// counts that leave spare lanes; measurements every other step; 6 closed-shell fermions
/// (their determinants rebuilt at every all-coordinate proposal). Single-particle moves: 3
/// particles in 3D with the Jastrow factor (normals of a Box-Muller pair split between two
/// moves); closed-shell fermions, Slater x RBM x Jastrow, 6 and 20 electrons in 2D (one group
/// and one with spare lanes, and one short group) and 8 in 3D; 250 steps cross three of the
/// determinants' periodic refreshes.
fn cases() -> Vec<Value> {
    let mut cases = Vec::new();
    for kind in ["metropolis", "importance"] {
        let single = json!({"kind": kind, "moves": "single", "step": 0.8, "dt": 0.1});
        cases.push(json!({
            "sampler": single,
            "system": {"particles": 3, "dims": 3, "omega": 0.5},
            "wavefunction": {"jastrow": "pade", "hidden": 3},
            "walkers": 11,
        }));
        for (particles, dims, walkers) in [(6, 2, 70), (20, 2, 37), (8, 3, 5)] {
            cases.push(json!({
                "sampler": single,
                "system": {"particles": particles, "dims": dims, "statistics": "fermions"},
                "wavefunction": {"jastrow": "pade", "hidden": 4, "sigma": "auto",
                                 "train_sigma": true},
                "walkers": walkers,
            }));
        }
        cases.push(json!({
            "sampler": single,
            "system": {"particles": 6, "statistics": "fermions"},
            "wavefunction": {"jastrow": "simple", "hidden": 2},
            "walkers": 19,
        }));
        cases.push(json!({"sampler": {"kind": kind}, "walkers": 37}));
        cases.push(json!({
            "sampler": {"kind": kind, "step": 0.5, "dt": 0.05},
            "system": {"particles": 6, "statistics": "fermions"},
            "wavefunction": {"jastrow": "pade", "hidden": 4},
            "walkers": 70,
        }));
        cases.push(json!({
            "sampler": {"kind": kind, "measure_every": 2},
            "wavefunction": {"form": "sqrt", "train_sigma": true, "sigma": "auto", "hidden": 3},
            "walkers": 16,
        }));
        cases.push(json!({
            "sampler": {"kind": kind, "dt": 0.1},
            "system": {"particles": 3, "dims": 3, "interaction": false, "omega": 0.5},
            "walkers": 9,
        }));
        cases
            .push(json!({"sampler": {"kind": kind}, "wavefunction": {"hidden": 70}, "walkers": 8}));
        cases.push(json!({"sampler": {"kind": kind}, "wavefunction": {"hidden": 0}, "walkers": 3}));
        cases.push(json!({
            "sampler": {"kind": kind},
            "wavefunction": {"jastrow": "pade", "sigma": "auto", "train_sigma": true},
            "walkers": 20,
        }));
        cases.push(json!({
            "sampler": {"kind": kind, "dt": 0.02},
            "system": {"particles": 4, "dims": 3, "omega": 0.5},
            "wavefunction": {"jastrow": "pade", "hidden": 5},
            "walkers": 10,
        }));
    }
    cases
}

/// Parameters away from zero, so that every term of psi matters.
fn params(config: &rbm_vmc::config::Config) -> Params {
    let mut params = initial_params(config).unwrap();
    for (i, t) in params.theta_mut().iter_mut().enumerate() {
        *t += 0.05 * ((i as f64 * 0.7).sin());
    }
    params
}

fn engine(spec: &EngineSpec, simd: Option<Simd>) -> CpuEngine {
    CpuEngine::new(spec.clone(), 2)
        .unwrap()
        .with_lanes(simd)
        .unwrap()
}

fn close(label: &str, a: f64, b: f64) {
    let tolerance = 1e-9 * a.abs().max(b.abs()).max(1.0);
    assert!((a - b).abs() <= tolerance, "{label}: {a} vs {b}");
}

fn assert_agree(label: &str, lanes: &Moments, scalar: &Moments) {
    assert_eq!(lanes.samples, scalar.samples, "{label}: samples");
    assert_eq!(lanes.attempted, scalar.attempted, "{label}: attempted");
    assert_eq!(lanes.accepted, scalar.accepted, "{label}: accepted");
    assert_eq!(lanes.resets, scalar.resets, "{label}: resets");
    close(label, lanes.energy, scalar.energy);
    close(label, lanes.energy_sq, scalar.energy_sq);
    for (a, b) in lanes.o.iter().zip(&scalar.o) {
        close(label, *a, *b);
    }
    for (a, b) in lanes.energy_o.iter().zip(&scalar.energy_o) {
        close(label, *a, *b);
    }
    for (a, b) in lanes.series.iter().zip(&scalar.series) {
        close(label, *a, *b);
    }
    close(label, lanes.walker_means.sum, scalar.walker_means.sum);
    close(label, lanes.walker_means.sum_sq, scalar.walker_means.sum_sq);
}

#[test]
fn lanes_walk_the_scalar_engines_chains() {
    for case in cases() {
        let config = common::config(case.clone());
        let spec = EngineSpec::from_config(&config);
        let params = params(&config);
        let mut scalar = engine(&spec, None);
        let mut lanes = engine(&spec, Some(Simd::best()));
        assert!(
            lanes.describe().contains("lanes"),
            "{case}: {}",
            lanes.describe()
        );
        assert!(!scalar.describe().contains("lanes"));
        for (steps, measure) in [(50, Measure::Nothing), (200, Measure::Energy)] {
            let a = lanes.sample(&params, steps, measure, &()).unwrap();
            let b = scalar.sample(&params, steps, measure, &()).unwrap();
            assert_agree(&case.to_string(), &a, &b);
        }
        let (a, b) = (lanes.state().unwrap(), scalar.state().unwrap());
        assert_eq!(a.steps_done, b.steps_done);
        for (x, y) in a.positions.iter().zip(&b.positions) {
            close(&format!("{case}: position"), *x, *y);
        }
    }
}

#[test]
fn every_instruction_set_gives_the_same_numbers() {
    let available: Vec<Simd> = [Simd::Avx512, Simd::Avx2, Simd::Baseline]
        .into_iter()
        .filter(|s| s.available())
        .collect();
    assert!(available.contains(&Simd::best()));
    for case in cases() {
        let config = common::config(case.clone());
        let spec = EngineSpec::from_config(&config);
        let params = params(&config);
        let runs: Vec<(Moments, Vec<f64>)> = available
            .iter()
            .map(|&simd| {
                let mut e = engine(&spec, Some(simd));
                let m = e.sample(&params, 100, Measure::Production, &()).unwrap();
                (m, e.state().unwrap().positions)
            })
            .collect();
        for run in &runs[1..] {
            assert_eq!(run, &runs[0], "{case}");
        }
    }
}

/// Metric rows and observables: on the default system (one group with spare lanes); on
/// three particles in 3D without interaction (three chunks; the distances computed for the
/// observables alone); on three in 2D (every histogram, pair distances from E_L); with the
/// histograms taking every third of every other step's measurements; and with two groups in
/// one chunk (above 512 chunks of 64 walkers), the second with spare lanes.
#[test]
fn metric_rows_and_observables_agree_with_the_scalar_engine() {
    let cases = [
        json!({"walkers": 24}),
        json!({"walkers": 130, "system": {"particles": 3, "dims": 3, "interaction": false}}),
        json!({"walkers": 70, "system": {"particles": 3, "dims": 2}}),
        json!({"walkers": 70, "sampler": {"measure_every": 2}, "observables": {"histogram_every": 3}}),
        json!({"walkers": 33000}),
    ];
    for case in cases {
        let mut config = common::config(case.clone());
        if case.get("observables").is_none() {
            config.observables.histogram_every = 1;
        }
        let spec = EngineSpec::from_config(&config);
        let params = params(&config);
        // A call with the metric, then a production call with the observables.
        let [lanes, scalar] =
            [engine(&spec, Some(Simd::best())), engine(&spec, None)].map(|mut e| {
                let measure = Measure::EnergyAndMetric { samples: 64 };
                let metric = e.sample(&params, 40, measure, &()).unwrap();
                (
                    metric,
                    e.sample(&params, 40, Measure::Production, &()).unwrap(),
                )
            });
        assert_agree(&format!("metric, {case}"), &lanes.0, &scalar.0);
        assert_agree(&format!("observables, {case}"), &lanes.1, &scalar.1);
        let (a, b) = (
            lanes.0.metric.as_ref().unwrap(),
            scalar.0.metric.as_ref().unwrap(),
        );
        assert_eq!(a.samples, b.samples);
        assert!(a.samples > 0);
        for (x, y) in a.o.iter().zip(&b.o).chain(a.oo.iter().zip(&b.oo)) {
            close("metric", *x, *y);
        }
        let (a, b) = (
            lanes.1.observables.as_ref().unwrap(),
            scalar.1.observables.as_ref().unwrap(),
        );
        let counted: f64 = a.blocks.iter().flat_map(|x| &x.counts).sum();
        assert!(counted > 0.0, "{case}");
        for (x, y) in a.blocks.iter().zip(&b.blocks) {
            assert_eq!(x.samples, y.samples, "{case}");
            assert_eq!(x.counts, y.counts, "{case}");
            for (s, t) in x.scalars.iter().zip(&y.scalars) {
                close(&format!("observables, {case}"), *s, *t);
            }
        }
        // The walkers' means of the scalars, for their walker-means errors.
        let (x, y) = (&a.walkers, &b.walkers);
        assert_eq!(x.count, spec.walkers as f64, "{case}");
        assert_eq!(x.count, y.count, "{case}");
        for (s, t) in x
            .sum
            .iter()
            .chain(&x.products)
            .zip(y.sum.iter().chain(&y.products))
        {
            close(&format!("walker means, {case}"), *s, *t);
        }
    }
}

/// Resets on the default system, and of fermions with single-particle moves (the second
/// walker in the group with spare lanes; the others keep their determinants and caches).
#[test]
fn a_non_finite_walker_is_reset_as_the_scalar_engine_resets_it() {
    let fermions = json!({
        "walkers": 70,
        "system": {"particles": 6, "statistics": "fermions"},
        "sampler": {"moves": "single", "dt": 0.1},
        "wavefunction": {"jastrow": "pade"},
    });
    for (case, sick) in [
        (
            json!({"walkers": 12, "sampler": {"kind": "metropolis"}}),
            [3, 9],
        ),
        (fermions, [3, 65]),
    ] {
        let config = common::config(case.clone());
        let spec = EngineSpec::from_config(&config);
        let m = spec.coordinates();
        let params = params(&config);
        let [lanes, scalar] = [Some(Simd::best()), None].map(|simd| {
            let mut e = engine(&spec, simd);
            let mut state = e.state().unwrap();
            state.positions[sick[0] * m + 1] = f64::NAN;
            state.positions[sick[1] * m] = f64::INFINITY;
            e.set_state(&state).unwrap();
            let m = e.sample(&params, 70, Measure::Energy, &()).unwrap();
            (m, e.state().unwrap().positions)
        });
        assert_eq!(lanes.0.resets, 2, "{case}");
        assert_agree(&format!("resets, {case}"), &lanes.0, &scalar.0);
        assert!(lanes.1.iter().all(|x| x.is_finite()));
        for (x, y) in lanes.1.iter().zip(&scalar.1) {
            close(&format!("reset positions, {case}"), *x, *y);
        }
    }
}

#[test]
fn other_systems_keep_the_scalar_engine() {
    for case in [
        json!({"sampler": {"kind": "gibbs"}, "wavefunction": {"form": "sqrt"}}),
        json!({"cpu_lanes": false}),
    ] {
        let config = common::config(case.clone());
        let engine =
            rbm_vmc::driver::cpu_engine(EngineSpec::from_config(&config), &config, config.threads)
                .unwrap();
        assert!(!engine.describe().contains("lanes"), "{case}");
    }
    for case in [
        json!({}),
        json!({"sampler": {"kind": "metropolis", "moves": "single"}}),
        json!({"system": {"statistics": "fermions", "particles": 6}, "sampler": {"moves": "single"}}),
        json!({"system": {"statistics": "fermions", "particles": 6}}),
    ] {
        let config = common::config(case.clone());
        let engine =
            rbm_vmc::driver::cpu_engine(EngineSpec::from_config(&config), &config, 1).unwrap();
        assert!(engine.describe().contains("lanes"), "{case}");
    }
}
