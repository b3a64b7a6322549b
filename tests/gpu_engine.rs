//! The GPU engine (on lavapipe in CI) against exact energies, against the CPU engine, and
//! under the faults it must survive. f32 on the device: exact cases hold to ~1e-6 relative
//! (the cancelling terms -g^2/2 + omega^2 x^2/2 of E_L are each rounded to 1e-7 relative).

mod common;

use common::{
    CLOSED_SHELLS, adapter, assert_rbm_energy, assert_within, biases_only, config, cpu, exact_case,
    fermion_case, gpu, hidden_biases, measure, metropolis_samplers, needs_sqrt,
    optimise_then_measure, samplers, takes_single,
};
use rbm_vmc::driver::initial_params;
use rbm_vmc::engine::{Engine, Measure, Moments, WalkerState};
use rbm_vmc::physics::Layout;
use rbm_vmc::{Estimate, Params};
use serde_json::{Value, json};

#[test]
fn non_interacting_ground_state_is_exact_on_the_gpu() {
    for (particles, dims, hidden) in [(2, 2, 2), (3, 1, 0), (1, 3, 3)] {
        for form in ["direct", "sqrt"] {
            for (kind, moves) in samplers() {
                if needs_sqrt(kind) && form == "direct" {
                    continue;
                }
                let omega = 0.5;
                let extra = json!({"walkers": 100, "seed": 5, "gpu": {"steps_per_dispatch": 7}});
                let shape = (particles, dims, hidden);
                let c = exact_case(shape, omega, form, (kind, moves), extra);
                let Some(mut engine) = gpu(&c) else { return };
                let m = particles * dims;
                let b = hidden_biases(hidden);
                let e = measure(&mut engine, &biases_only(m, &b), 20, 60);
                let exact = m as f64 * omega / 2.0;
                let label = format!("P{particles} D{dims} N{hidden} {form} {kind}/{moves}");
                assert!(
                    (e.energy - exact).abs() < 1e-5 * exact,
                    "{label}: {}",
                    e.energy
                );
                assert!(e.variance < 1e-9, "{label}: variance {}", e.variance);
                assert_eq!(e.samples, 100 * 60, "{label}");
                assert_eq!(e.resets, 0, "{label}");
            }
        }
    }
}

/// Closed shells of non-interacting fermions are exact on the GPU too (f32 determinants,
/// Sherman-Morrison updates and their periodic rebuild): six electrons with every sampler,
/// the larger shells with one each (each shader variant costs seconds to build on lavapipe).
#[test]
fn non_interacting_fermions_in_closed_shells_are_exact_on_the_gpu() {
    let metropolis = metropolis_samplers();
    for (i, (particles, dims, exact)) in CLOSED_SHELLS.into_iter().enumerate() {
        let samplers = match i {
            0 => &metropolis[..],
            _ => &metropolis[i..i + 1],
        };
        for &sampler in samplers {
            let extra = json!({"walkers": 16, "seed": 8});
            let c = fermion_case(particles, dims, sampler, extra);
            let Some(mut engine) = gpu(&c) else { return };
            let params = initial_params(&c).unwrap();
            // 70 steps: past the rebuild of the inverses at step 64.
            let e = measure(&mut engine, &params, 10, 70);
            let exact = 0.5 * exact;
            let label = format!("P{particles} D{dims} {sampler:?}");
            assert!(
                (e.energy - exact).abs() < 2e-5 * exact,
                "{label}: {}",
                e.energy
            );
            assert!(
                e.variance < 1e-6 * exact * exact,
                "{label}: variance {}",
                e.variance
            );
            assert_eq!(e.resets, 0, "{label}");
        }
    }
}

#[test]
fn two_electrons_at_zero_parameters_match_the_analytic_energies_on_the_gpu() {
    let direct = 2.0 + (std::f64::consts::PI / 2.0).sqrt();
    let sqrt = 2.5 + std::f64::consts::PI.sqrt() / 2.0;
    for (kind, moves) in samplers() {
        let (form, exact) = if needs_sqrt(kind) {
            ("sqrt", sqrt)
        } else {
            ("direct", direct)
        };
        let c = config(json!({
            "wavefunction": {"form": form, "sigma": 1.0},
            "sampler": {"kind": kind, "moves": moves, "step": 2.0, "dt": 0.2},
            "walkers": 1000, "seed": 23,
        }));
        let Some(mut engine) = gpu(&c) else { return };
        let e = measure(&mut engine, &Params::zeros(Layout::rbm(4, 2)), 200, 1000);
        let label = format!("{kind}/{moves}");
        assert_within(&label, e.energy, exact, e.error, 4.0);
        assert_within(&label, e.energy, exact, e.error_walkers, 4.0);
    }
}

/// Both engines draw the same random numbers, so from the same positions they walk the same
/// chains until an f32 rounding flips a decision: after a few steps nearly every walker
/// must stand where its CPU twin stands.
#[test]
fn gpu_walkers_follow_their_cpu_twins() {
    // The plain RBM with every sampler; then the Jastrow factor with a trained width, and
    // six fermions with it, with the Metropolis-type samplers; the simple Jastrow factor's
    // two betas with six fermions.
    let plain = samplers()
        .into_iter()
        .map(|s| (s, json!({"system": {"particles": 3, "dims": 2}})));
    let jastrow = metropolis_samplers().into_iter().map(|s| {
        let wf = json!({"jastrow": "pade", "train_sigma": true, "sigma": 0.9});
        (
            s,
            json!({"system": {"particles": 3, "dims": 2}, "wavefunction": wf}),
        )
    });
    let fermions = metropolis_samplers().into_iter().map(|s| {
        let system = json!({"particles": 6, "dims": 2, "statistics": "fermions"});
        (
            s,
            json!({"system": system, "wavefunction": {"jastrow": "pade"}}),
        )
    });
    let simple = json!({"system": {"particles": 6, "dims": 2, "statistics": "fermions"},
                        "wavefunction": {"jastrow": "simple"}});
    let simple = [(("importance", "single"), simple)];
    for ((kind, moves), extra) in plain.chain(jastrow).chain(fermions).chain(simple) {
        let form = if needs_sqrt(kind) { "sqrt" } else { "direct" };
        let mut value = json!({
            "wavefunction": {"hidden": 3, "form": form, "init_scale": 0.3},
            "sampler": {"kind": kind, "moves": moves, "dt": 0.1, "measure_every": 2},
            "walkers": 300, "seed": 77,
            "gpu": {"steps_per_dispatch": 5},
        });
        rbm_vmc::config::merge(&mut value, &extra);
        let c = config(value);
        let label = format!("{kind}/{moves} {extra}");
        let params = initial_params(&c).unwrap();
        let Some(mut g) = gpu(&c) else { return };
        let mut cpu_engine = cpu(&c);
        let mc = cpu_engine
            .sample(&params, 20, Measure::Energy, &())
            .unwrap();
        let mg = g.sample(&params, 20, Measure::Energy, &()).unwrap();
        let (sc, sg) = (cpu_engine.state().unwrap(), g.state().unwrap());
        assert_eq!(sc.steps_done, sg.steps_done);
        let same = walkers_together(&sc, &sg, c.system().coordinates());
        assert!(same >= 290, "{label}: only {same} of 300 walkers agree");
        // The sums then agree closely too (a few walkers may have parted).
        let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(1.0);
        assert!(rel(mc.energy, mg.energy) < 0.05, "{label}");
        assert!(rel(mc.accepted, mg.accepted) < 0.05, "{label}");
        assert_eq!(mc.samples, mg.samples);
        assert_eq!(mc.series.len(), mg.series.len());
        assert_eq!(mc.attempted, mg.attempted);
    }
}

/// How many walkers of `a` and `b` (`m` coordinates each) stand at the same place.
fn walkers_together(a: &WalkerState, b: &WalkerState, m: usize) -> usize {
    a.positions
        .chunks(m)
        .zip(b.positions.chunks(m))
        .filter(|(a, b)| a.iter().zip(*b).all(|(u, v)| (u - v).abs() < 1e-3))
        .count()
}

/// Kernel variants of the same arithmetic walk alike from the same start: the walk kernel
/// without runtime checks (the driver unrolls the constant loops and keeps the per-walker
/// arrays in registers) and with them (loops bounded, indices clamped: what kernels beyond 512
/// parameters get); the parameters read from a uniform buffer and from a storage buffer
/// (copied into private memory); the O sums per walker and over the workgroup (the same
/// samples summed in another order: within 1e-6). Cases: the plain RBM, the Jastrow factor with a trained
/// width (its index) and single moves, six fermions (tests/dmc.rs: the DMC kernel with
/// uniform parameters).
#[test]
fn kernel_variants_walk_alike() {
    let cases = [
        json!({}),
        json!({"system": {"particles": 3}, "wavefunction": {"jastrow": "pade", "hidden": 3,
               "train_sigma": true}, "sampler": {"kind": "metropolis", "moves": "single"}}),
        json!({"system": {"particles": 6, "statistics": "fermions"},
               "wavefunction": {"jastrow": "pade"}}),
    ];
    for setting in ["runtime_checks", "uniform_params", "workgroup_sums"] {
        for extra in &cases {
            let settings = |on: bool| json!({ setting: on });
            if !kernels_walk_alike(extra, [settings(false), settings(true)]) {
                return;
            }
        }
    }
}

/// The determinants' orbital loops unrolled (constant bounds) and looped (the job's orbital
/// count) do the same arithmetic: 6 and 12 electrons walk alike, with single-particle and
/// all-electron moves.
#[test]
fn unrolled_and_looped_orbital_loops_walk_alike() {
    for (particles, moves) in [(6, "single"), (12, "single"), (6, "all")] {
        let extra = json!({"system": {"particles": particles, "statistics": "fermions"},
                           "wavefunction": {"jastrow": "pade"},
                           "sampler": {"kind": "importance", "moves": moves}});
        let settings = |unroll: bool| json!({"unroll_orbitals": unroll});
        if !kernels_walk_alike(&extra, [settings(true), settings(false)]) {
            return;
        }
    }
}

/// Philox's multiplies as one native instruction (the kernels' SPIR-V, where the adapter is
/// Vulkan: lavapipe in CI) and from 16-bit pieces give the same numbers, so the same walks:
/// the plain RBM with all-coordinate moves, the Jastrow factor with single moves, six
/// fermions; kernels without runtime checks and with them (beyond 512 parameters).
#[test]
fn native_and_portable_multiplies_walk_alike() {
    let Some(adapter) = adapter() else { return };
    if adapter.get_info().backend != wgpu::Backend::Vulkan {
        eprintln!("skipped: native multiplies need a Vulkan adapter");
        return;
    }
    let cases = [
        json!({}),
        json!({"system": {"particles": 3}, "wavefunction": {"jastrow": "pade", "hidden": 3},
               "sampler": {"kind": "metropolis", "moves": "single"}}),
        json!({"system": {"particles": 6, "statistics": "fermions"},
               "wavefunction": {"jastrow": "pade"}}),
    ];
    for (extra, checks) in cases.iter().flat_map(|c| [(c, false), (c, true)]) {
        let settings = |native: bool| json!({"native_multiply": native, "runtime_checks": checks});
        let [(ma, sa), (mb, sb)] = two_walks(extra, [settings(true), settings(false)]).unwrap();
        // The kernels differ in code around the multiplies, so a driver may contract a float
        // multiply-add differently: a walker may part at a near-tie (one of 200 did on
        // lavapipe, six fermions).
        let same = walkers_together(&sa, &sb, sa.positions.len() / 200);
        assert!(same >= 196, "{extra}: only {same} of 200 walkers agree");
        let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(1.0);
        assert!(rel(ma.energy, mb.energy) < 0.02, "{extra}");
        assert!(rel(ma.accepted, mb.accepted) < 0.02, "{extra}");
    }
}

/// Asserts that the system `extra` walks alike from the same start with the GPU settings
/// `gpu` (two kernels of the same arithmetic): the same walkers and sums after 30 steps.
/// Both take Philox's multiplies in 16-bit pieces: the native multiply changes the code the
/// driver optimises around it, and lavapipe then rounds some float sums differently.
/// False without an adapter.
fn kernels_walk_alike(extra: &Value, gpu_settings: [Value; 2]) -> bool {
    let gpu_settings = gpu_settings.map(|mut settings| {
        settings["native_multiply"] = json!(false);
        settings
    });
    let Some([(ma, sa), (mb, sb)]) = two_walks(extra, gpu_settings) else {
        return false;
    };
    let label = extra.to_string();
    // Bit-identical on lavapipe; a driver may contract a multiply-add differently.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(1.0);
    let far = sa
        .positions
        .iter()
        .zip(&sb.positions)
        .filter(|(a, b)| !close(**a, **b))
        .count();
    assert_eq!(far, 0, "{label}: {far} coordinates differ");
    assert!(
        close(ma.energy, mb.energy),
        "{label}: {} {}",
        ma.energy,
        mb.energy
    );
    assert_eq!(ma.accepted, mb.accepted, "{label}");
    assert!(
        ma.series.iter().zip(&mb.series).all(|(a, b)| close(*a, *b)),
        "{label}"
    );
    assert!(
        ma.energy_o
            .iter()
            .zip(&mb.energy_o)
            .all(|(a, b)| close(*a, *b)),
        "{label}"
    );
    true
}

/// The sums and walkers of the system `extra` after 30 steps from the same start with each
/// of the GPU settings `gpu`; None without an adapter.
fn two_walks(extra: &Value, gpu_settings: [Value; 2]) -> Option<[(Moments, WalkerState); 2]> {
    let [Some(a), Some(b)] = gpu_settings.map(|settings| {
        let mut value = json!({
            "walkers": 200, "seed": 9, "wavefunction": {"init_scale": 0.3},
            "sampler": {"measure_every": 2},
            "gpu": {"steps_per_dispatch": 7},
        });
        rbm_vmc::config::merge(&mut value, extra);
        rbm_vmc::config::merge(&mut value, &json!({ "gpu": settings }));
        let c = config(value);
        let params = initial_params(&c).unwrap();
        let mut g = gpu(&c)?;
        let m = g.sample(&params, 30, Measure::Energy, &()).unwrap();
        Some((m, g.state().unwrap()))
    }) else {
        return None;
    };
    Some([a, b])
}

/// Mean and standard error of the energy and of every gradient component over `blocks`
/// consecutive sample calls (blocks much longer than the correlation time).
fn blocked(
    engine: &mut dyn Engine,
    params: &Params,
    blocks: usize,
    steps: u32,
) -> (Vec<f64>, Vec<f64>) {
    engine.sample(params, 200, Measure::Nothing, &()).unwrap();
    let runs: Vec<Vec<f64>> = (0..blocks)
        .map(|_| {
            let e = Estimate::from_moments(
                &engine.sample(params, steps, Measure::Energy, &()).unwrap(),
            );
            std::iter::once(e.energy).chain(e.gradient).collect()
        })
        .collect();
    let n = blocks as f64;
    let mean: Vec<f64> = (0..runs[0].len())
        .map(|i| runs.iter().map(|r| r[i]).sum::<f64>() / n)
        .collect();
    let err = (0..runs[0].len())
        .map(|i| {
            let var = runs.iter().map(|r| (r[i] - mean[i]).powi(2)).sum::<f64>() / (n - 1.0);
            (var / n).sqrt()
        })
        .collect();
    (mean, err)
}

#[test]
fn cpu_and_gpu_agree_on_energy_and_gradient() {
    let cases: [(Value, &str); 7] = [
        (
            json!({"system": {"particles": 2, "dims": 2}, "wavefunction": {"hidden": 2}}),
            "metropolis",
        ),
        (
            json!({"system": {"particles": 2, "dims": 3}, "wavefunction": {"hidden": 3}}),
            "importance",
        ),
        (
            json!({"system": {"particles": 3, "dims": 1, "interaction": false},
                "wavefunction": {"hidden": 4}}),
            "importance",
        ),
        (
            json!({"system": {"particles": 2, "dims": 2},
                "wavefunction": {"hidden": 2, "form": "sqrt", "sigma": 0.8}}),
            "gibbs",
        ),
        (
            json!({"system": {"particles": 1, "dims": 2, "interaction": false},
                "wavefunction": {"hidden": 1}}),
            "metropolis",
        ),
        (
            json!({"system": {"particles": 3, "dims": 3},
                "wavefunction": {"hidden": 2, "jastrow": "pade", "train_sigma": true}}),
            "importance",
        ),
        (
            json!({"system": {"particles": 6, "dims": 2, "statistics": "fermions"},
                "wavefunction": {"hidden": 2, "jastrow": "pade"}}),
            "metropolis",
        ),
    ];
    for (i, (mut value, kind)) in cases.into_iter().enumerate() {
        let moves = if i % 2 == 1 && takes_single(kind) {
            "single"
        } else {
            "all"
        };
        value["sampler"] = json!({"kind": kind, "moves": moves});
        value["walkers"] = json!(200);
        value["wavefunction"]["init_scale"] = json!(0.4);
        value["seed"] = json!(1000 + i);
        let c = config(value.clone());
        let params = initial_params(&c).unwrap();
        let Some(mut g) = gpu(&c) else { return };
        // Different seeds: independent chains.
        value["seed"] = json!(2000 + i);
        let mut cpu_engine = cpu(&config(value));
        let (mc, ec) = blocked(&mut cpu_engine, &params, 8, 400);
        let (mg, eg) = blocked(&mut g, &params, 8, 400);
        for j in 0..mc.len() {
            let combined = (ec[j].powi(2) + eg[j].powi(2)).sqrt();
            // 5 sigma with 8 blocks each: the error of the error is ~25%.
            let what = if j == 0 {
                "energy".to_string()
            } else {
                format!("gradient[{}]", j - 1)
            };
            assert!(
                (mc[j] - mg[j]).abs() <= 5.0 * combined + 1e-6,
                "case {i} ({kind}) {what}: cpu {} vs gpu {} (combined error {combined:.2e})",
                mc[j],
                mg[j]
            );
        }
    }
}

/// The Padé-Jastrow factor on the GPU: within 1.5 mHa of the exact 3, not below it.
#[test]
fn jastrow_brings_the_two_electron_dot_to_the_exact_energy_on_the_gpu() {
    let c = config(json!({
        "wavefunction": {"jastrow": "pade"},
        "walkers": 512, "steps_per_iteration": 400, "seed": 41,
        "optimiser": {"iterations": 40},
    }));
    let Some(mut engine) = gpu(&c) else { return };
    let e = optimise_then_measure(&mut engine, &c, 4000);
    assert!(e.energy < 3.0015, "{} +- {}", e.energy, e.error);
    assert!(
        e.energy > 3.0 - 4.0 * e.error,
        "{} +- {}",
        e.energy,
        e.error
    );
}

#[test]
fn optimisation_on_the_gpu_reaches_the_rbm_energy() {
    let c = config(json!({
        "walkers": 512, "steps_per_iteration": 400, "seed": 41,
        "optimiser": {"iterations": 80},
    }));
    let Some(mut engine) = gpu(&c) else { return };
    let e = optimise_then_measure(&mut engine, &c, 4000);
    assert_rbm_energy("gpu", &e);
}

/// A non-finite walker is detected, reset and counted, on both engines.
#[test]
fn non_finite_walkers_are_reset_and_counted() {
    let c = config(json!({"walkers": 70, "seed": 9}));
    let params = initial_params(&c).unwrap();
    let mut engines: Vec<Box<dyn Engine>> = vec![Box::new(cpu(&c))];
    if let Some(g) = gpu(&c) {
        engines.push(Box::new(g));
    }
    for engine in engines.iter_mut() {
        let mut state: WalkerState = engine.state().unwrap();
        state.positions[3 * 4 + 1] = f64::NAN;
        state.positions[65 * 4] = f64::INFINITY;
        engine.set_state(&state).unwrap();
        let e = Estimate::from_moments(&engine.sample(&params, 50, Measure::Energy, &()).unwrap());
        assert_eq!(e.resets, 2, "{}", engine.describe());
        assert!(
            e.energy.is_finite() && (3.0..3.6).contains(&e.energy),
            "{}",
            e.energy
        );
        let after = engine.state().unwrap();
        assert!(after.positions.iter().all(|v| v.is_finite()));
    }
}

/// A walker count not a multiple of the workgroup and more than 65,535 workgroups: the 2-D
/// grid must reach every walker.
#[test]
fn more_than_65535_workgroups_reach_every_walker() {
    let walkers = 65_535 * 64 + 130;
    let c = config(json!({
        "system": {"interaction": false},
        "sampler": {"kind": "metropolis", "step": 1.0},
        "walkers": walkers, "seed": 3,
    }));
    let Some(mut g) = gpu(&c) else { return };
    let before = g.state().unwrap();
    let e = Estimate::from_moments(
        &g.sample(&Params::zeros(Layout::rbm(4, 2)), 4, Measure::Energy, &())
            .unwrap(),
    );
    assert_eq!(e.samples, 4 * walkers as u64);
    let after = g.state().unwrap();
    let m = 4;
    // Every walker of the last (partial) rows made its four steps: with acceptance ~0.7 a
    // walker stays put with probability 0.3^4 < 1%.
    let tail = (walkers as usize - 5000) * m..walkers as usize * m;
    let moved = before.positions[tail.clone()]
        .chunks(m)
        .zip(after.positions[tail].chunks(m))
        .filter(|(a, b)| a != b)
        .count();
    assert!(moved > 4900, "only {moved} of the last 5000 walkers moved");
    assert!((e.acceptance - 0.7).abs() < 0.1, "{}", e.acceptance);
}

/// Mesa's llvmpipe stops a loop after 65,535 iterations without an error; the kernel counts
/// its steps and the engine must refuse the result.
#[test]
fn a_loop_cut_short_by_the_driver_is_an_error() {
    let c = config(json!({
        "walkers": 64, "seed": 1,
        "sampler": {"kind": "metropolis"},
        "gpu": {"steps_per_dispatch": 65_536},
    }));
    let Some(mut g) = gpu(&c) else { return };
    let result = g.sample(
        &Params::zeros(Layout::rbm(4, 2)),
        70_000,
        Measure::Nothing,
        &(),
    );
    if g.adapter().name.contains("llvmpipe") {
        let err = result
            .expect_err("llvmpipe caps loops at 65535 iterations")
            .to_string();
        assert!(err.contains("cut the Monte Carlo loop short"), "{err}");
    } else {
        result.expect("drivers without a loop cap make every step");
    }
}

/// The GPU's S (O rows in f32, products on the device, finished in f64) equals the CPU's at
/// the same seed from the same start, within f32 tolerances, for a subset that skips walkers
/// and measurements.
#[test]
fn gpu_metric_matches_the_cpu_metric() {
    let c = common::metric_case();
    let params = initial_params(&c).unwrap();
    let Some(mut g) = gpu(&c) else { return };
    let mut cpu_engine = cpu(&c);
    let measure = Measure::EnergyAndMetric { samples: 40 };
    let steps = 10 * c.sampler.measure_every;
    let mc = cpu_engine.sample(&params, steps, measure, &()).unwrap();
    let mg = g.sample(&params, steps, measure, &()).unwrap();
    let (sc, sg) = (mc.metric.unwrap(), mg.metric.unwrap());
    assert_eq!(sc.samples, sg.samples);
    let k = sc.parameters();
    let (a, b) = (sc.covariance(), sg.covariance());
    for i in 0..k {
        for j in 0..k {
            let scale = (a[i * k + i] * a[j * k + j]).sqrt();
            let (x, y) = (a[i * k + j], b[i * k + j]);
            assert!(
                (x - y).abs() <= 2e-3 * scale + 1e-6,
                "S[{i}][{j}]: cpu {x} gpu {y} (scale {scale})"
            );
        }
    }
    // A second call reuses the buffers; a larger subset grows them.
    let again = g.sample(
        &params,
        steps,
        Measure::EnergyAndMetric { samples: 500 },
        &(),
    );
    assert_eq!(again.unwrap().metric.unwrap().samples, 50 * 10);
}

/// With `gpu.workgroup_sums` the walk kernel sums the O_i and (E_L - shift) O_i over its
/// workgroup at each measurement, a tile of walkers at a time. At awkward sizes the sums equal
/// f64 sums of the same samples: K = 14, 104 and 554 (below, above and far above the
/// workgroup of 64, no multiple of it; 2, 16 and 64 rounds of the tile), one walker, and 65
/// walkers (one alone in the second workgroup). The O_i against the metric's O rows (every
/// sample, summed on the host in f64), the E_L O_i against the CPU twins of the walkers.
#[test]
fn workgroup_derivative_sums_match_f64_sums() {
    for (hidden, walkers) in [(2, 1), (2, 65), (20, 1), (20, 65), (110, 65)] {
        let c = config(json!({
            "wavefunction": {"hidden": hidden, "init_scale": 0.1},
            "sampler": {"kind": "metropolis", "measure_every": 1},
            "walkers": walkers, "seed": 5, "gpu": {"workgroup_sums": true},
        }));
        let label = format!("{hidden} hidden units, {walkers} walkers");
        let params = initial_params(&c).unwrap();
        let Some(mut g) = gpu(&c) else { return };
        let mut cpu_engine = cpu(&c);
        let measure = Measure::EnergyAndMetric { samples: 10_000 };
        let mg = g.sample(&params, 6, measure, &()).unwrap();
        let mc = cpu_engine.sample(&params, 6, measure, &()).unwrap();
        let (sc, sg) = (cpu_engine.state().unwrap(), g.state().unwrap());
        let same = walkers_together(&sc, &sg, c.system().coordinates());
        assert_eq!(
            same, walkers as usize,
            "{label}: walkers parted from their CPU twins"
        );
        let metric = mg.metric.as_ref().unwrap();
        assert_eq!(metric.samples, mg.samples, "{label}: every sample's row");
        let k = mg.o.len();
        assert_eq!(k, 4 + 5 * hidden, "{label}");
        for i in 0..k {
            // sqrt(n sum O_i^2) >= sum |O_i|, and sqrt(sum E^2 sum O_i^2) >= sum |E O_i|.
            let o2 = metric.oo[i * k + i];
            let scale = (mg.samples as f64 * o2).sqrt() + 1e-6;
            let (a, b) = (mg.o[i], metric.o[i]);
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{label}: sum O_{i} {a} rows {b}"
            );
            let scale = (mc.energy_sq * o2).sqrt() + 1e-6;
            let (a, b) = (mg.energy_o[i], mc.energy_o[i]);
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{label}: sum E O_{i} {a} cpu {b}"
            );
        }
    }
}

/// The kernels compute in f32: scales that f32 cannot hold are refused, naming the setting,
/// before any kernel is built.
#[test]
fn scales_beyond_f32_are_refused_with_the_setting() {
    let Some(adapter) = common::adapter() else {
        return;
    };
    let cases = [
        (json!({"system": {"omega": 1e-30}}), "system.omega^2"),
        (
            json!({"wavefunction": {"sigma": 1e-25}}),
            "wavefunction.sigma^2",
        ),
    ];
    for (value, setting) in cases {
        let config = common::config(value);
        let spec = rbm_vmc::EngineSpec::from_config(&config);
        let error = rbm_vmc::engine::GpuEngine::new(spec, &adapter, &config.gpu)
            .err()
            .expect("refused");
        let message = error.to_string();
        assert!(
            message.contains(setting) && message.contains("--engine cpu"),
            "{message}"
        );
    }
}
