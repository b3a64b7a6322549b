//! Fixed-node diffusion Monte Carlo: exact where the trial function is, the exact energy
//! where the nodes are (two electrons), the published fixed-node energy with a Slater
//! determinant's nodes, reproducible for any thread count, and the command as a user meets it.

mod common;

use common::{assert_refused, rbm_vmc as run, read_json, scratch, text};
use rbm_vmc::Params;
use rbm_vmc::config::Config;
use rbm_vmc::dmc::{DmcOutcome, comb, dmc};
use rbm_vmc::driver::{Context, initial_params};
use rbm_vmc::engine::{
    Branching, DmcWalkers, Engine, EngineSpec, GenerationSums, GpuDmc, Measure, Population, Simd,
    Walkers,
};
use rbm_vmc::report::OutputDir;
use serde_json::{Value, json};

/// DMC of `value` (on top of the defaults) into a scratch directory `name`.
fn dmc_of(name: &str, value: Value) -> DmcOutcome {
    let config = common::config(value);
    let dir = scratch(name);
    let out = OutputDir::create(Some(&dir.join("out")), false, &[]).unwrap();
    let outcome = dmc(&config, None, &out, &Context::solo(true)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    outcome
}

/// The non-interacting closed shell of 6 electrons with its exact trial function: E_L = 10
/// everywhere, so every weight factor is the same, and DMC returns 10 with no spread: to
/// rounding in f64 on the CPU, and to f32 rounding on the GPU.
#[test]
fn an_exact_trial_function_gives_the_exact_energy_with_constant_weights() {
    let engines = [("cpu", 1e-9), ("gpu", 1e-4)];
    for (engine, tolerance) in engines {
        if engine == "gpu" && common::adapter().is_none() {
            continue;
        }
        let o = dmc_of(
            "exact",
            json!({"system": {"particles": 6, "statistics": "fermions", "interaction": false},
                   "wavefunction": {"init_scale": 0.0}, "engine": engine,
                   "walkers": 128, "sampler": {"thermalisation": 100},
                   "dmc": {"generations": 40, "equilibration": 10, "block": 10}}),
        );
        let run = &o.runs[0];
        assert!(o.engine.starts_with(engine), "{}", o.engine);
        assert!(
            (o.energy - 10.0).abs() < tolerance,
            "{engine}: {}",
            o.energy
        );
        assert!(run.series.iter().all(|e| (e - 10.0).abs() < tolerance));
        assert!(o.error < tolerance, "{engine}: {}", o.error);
        assert!(
            run.weight_spread < tolerance,
            "{engine}: {}",
            run.weight_spread
        );
        assert!(run.acceptance > 0.99, "{engine}: {}", run.acceptance);
    }
}

/// Populations compared walker by walker: two electrons with all-electron moves, and six
/// fermions at long time steps, so that some moves reach a node: single-electron moves (the
/// ratio's sign) and all-electron moves (the determinants' signs); with their time steps.
fn following_cases() -> [(Value, f64); 3] {
    [
        (json!({"wavefunction": {"jastrow": "pade"}}), 0.02),
        (
            json!({"system": {"particles": 6, "statistics": "fermions"},
                   "wavefunction": {"jastrow": "pade"}}),
            0.2,
        ),
        (
            json!({"system": {"particles": 6, "statistics": "fermions"},
                   "wavefunction": {"jastrow": "pade"}, "dmc": {"moves": "all"}}),
            0.05,
        ),
    ]
}

/// 150 walkers of `config` (so that the third lane group has spare lanes) from |psi|^2, each
/// coordinate through `round`; their spec and the config's initial parameters.
fn start_of(config: &Config, round: impl Fn(f64) -> f64) -> (EngineSpec, Params, Vec<f64>) {
    let spec = EngineSpec {
        walkers: 150,
        ..EngineSpec::from_config(config)
    };
    let params = initial_params(config).unwrap();
    let mut vmc = common::cpu(config);
    vmc.sample(&params, 200, Measure::Nothing, &()).unwrap();
    let positions = vmc.state().unwrap().positions[..150 * spec.coordinates()]
        .iter()
        .map(|&v| round(v))
        .collect();
    (spec, params, positions)
}

/// Four generations at `tau` of two populations from the same walkers, both combed alike by
/// the first's weights; `agree` checks each generation's walkers and sums. Six fermions must
/// meet a node.
fn follow(
    (a, b): (&mut dyn Population, &mut dyn Population),
    spec: &EngineSpec,
    tau: f64,
    agree: impl Fn(&str, (&Walkers, &GenerationSums), (&Walkers, &GenerationSums)),
) {
    let (start_a, start_b) = (a.walkers().unwrap(), b.walkers().unwrap());
    let none = GenerationSums::default();
    agree("start", (&start_a, &none), (&start_b, &none));
    let start = start_a.energies.iter().sum::<f64>() / 150.0;
    let mut nodes = 0.0;
    for generation in 1..=4u64 {
        let branching = Branching {
            tau,
            tau_eff: tau,
            trial_energy: start,
            reference: start,
            cutoff: 0.2 * (spec.system.particles as f64 / tau).sqrt(),
        };
        let sa = a.generation(generation, &branching).unwrap();
        let sb = b.generation(generation, &branching).unwrap();
        let (x, y) = (a.walkers().unwrap(), b.walkers().unwrap());
        agree(&format!("generation {generation}"), (&x, &sa), (&y, &sb));
        assert_eq!(sa.proposed, sb.proposed);
        nodes += sa.node_crossings;
        let slots = comb(&x.weights, 0.5, 150).unwrap();
        a.resample(&slots, &x.positions, &x.energies).unwrap();
        b.resample(&slots, &y.positions, &y.energies).unwrap();
    }
    if spec.system.particles == 6 {
        assert!(nodes > 0.0, "no move reached a node");
    }
}

/// The GPU population (f32) against the CPU's (f64) from the same walkers: the same moves
/// walker by walker, the same weights and sums to f32 rounding, generation after generation;
/// with the parameters in a storage buffer (default) and in a uniform one.
#[test]
fn gpu_generations_follow_the_cpu_walker_by_walker() {
    let Some(adapter) = common::adapter() else {
        return;
    };
    let shapes = [json!({}), json!({"gpu": {"uniform_params": true}})];
    let cases = following_cases().into_iter().flat_map(|(value, tau)| {
        shapes.clone().map(|shape| {
            let mut value = value.clone();
            rbm_vmc::config::merge(&mut value, &shape);
            (value, tau)
        })
    });
    for (value, tau) in cases {
        let config = common::config(value.clone());
        let label = value.to_string();
        // At f32 numbers: both engines start from the same points.
        let (spec, params, positions) = start_of(&config, |v| v as f32 as f64);
        let moves = config.dmc_moves();
        let mut cpu = DmcWalkers::new(spec.clone(), moves, positions.clone(), &params, 1).unwrap();
        let mut gpu = GpuDmc::new(
            &spec,
            (moves, tau),
            &adapter,
            &config.gpu,
            &params,
            (&positions, None),
        )
        .unwrap();
        let m = spec.coordinates();
        follow(
            (&mut cpu, &mut gpu),
            &spec,
            tau,
            |what, (a, sa), (b, sb)| {
                let near = |p: f64, q: f64| (p - q).abs() <= 1e-3 * (1.0 + p.abs());
                let close = (0..150)
                    .filter(|&w| {
                        (w * m..(w + 1) * m).all(|k| near(a.positions[k], b.positions[k]))
                            && near(a.energies[w], b.energies[w])
                            && near(a.weights[w], b.weights[w])
                    })
                    .count();
                assert!(close >= 145, "{label} {what}: {close} of 150 walkers agree");
                let relative = |p: f64, q: f64| (p - q).abs() / p.abs().max(1.0);
                assert!(
                    relative(sa.weight, sb.weight) < 1e-3,
                    "{label}: {sa:?} {sb:?}"
                );
                assert!(relative(sa.weighted_energy, sb.weighted_energy) < 1e-3);
                assert!((sa.accepted - sb.accepted).abs() <= 5.0, "{sa:?} {sb:?}");
                assert!((sa.node_crossings - sb.node_crossings).abs() <= 5.0);
            },
        );
    }
}

/// The CPU population in SIMD lanes against the scalar one from the same walkers: the same
/// moves walker by walker, the same energies, weights and sums to rounding (1e-9 relative:
/// a generation's arithmetic, and the lanes' exp and ln), the same acceptances and node
/// crossings, generation after generation.
#[test]
fn lane_generations_follow_the_scalar_walker_by_walker() {
    for (value, tau) in following_cases() {
        let config = common::config(value.clone());
        let label = value.to_string();
        let (spec, params, positions) = start_of(&config, |v| v);
        let population = |simd| {
            DmcWalkers::new(
                spec.clone(),
                config.dmc_moves(),
                positions.clone(),
                &params,
                2,
            )
            .unwrap()
            .with_lanes(simd)
            .unwrap()
        };
        let (mut scalar, mut lanes) = (population(None), population(Some(Simd::best())));
        assert!(lanes.describe().contains("lanes"), "{}", lanes.describe());
        assert!(!scalar.describe().contains("lanes"));
        let near = |p: &f64, q: &f64| (p - q).abs() <= 1e-9 * (1.0 + p.abs());
        follow(
            (&mut scalar, &mut lanes),
            &spec,
            tau,
            |what, (a, sa), (b, sb)| {
                let all = |p: &[f64], q: &[f64]| p.iter().zip(q).all(|(p, q)| near(p, q));
                assert!(all(&a.positions, &b.positions), "{label} {what}: positions");
                assert!(all(&a.energies, &b.energies), "{label} {what}: energies");
                assert!(all(&a.weights, &b.weights), "{label} {what}: weights");
                assert!(
                    all(&sa.to_array(), &sb.to_array()),
                    "{label} {what}: {sa:?} {sb:?}"
                );
                assert_eq!(
                    (sa.accepted, sa.node_crossings),
                    (sb.accepted, sb.node_crossings)
                );
            },
        );
    }
}

/// Two electrons have no node: DMC from RBM x Padé-Jastrow finds Taut's exact 3, below the
/// trial function's VMC energy.
#[test]
fn two_electrons_reach_the_exact_energy_below_the_trial_function() {
    let value = json!({"wavefunction": {"jastrow": "pade", "init_scale": 0.0}, "walkers": 400,
                       "dmc": {"time_step": 0.02, "generations": 1500, "equilibration": 150}});
    let config = common::config(value.clone());
    let params = initial_params(&config).unwrap();
    let vmc = common::measure(&mut common::cpu(&config), &params, 500, 2000);
    let o = dmc_of("two", value);
    // The time-step error at tau = 0.01 is far below this tolerance.
    common::assert_within("DMC energy", o.energy, 3.0, o.error, 4.0);
    assert!(
        o.energy < vmc.energy - 4.0 * vmc.error,
        "DMC {} +- {} is not below VMC {} +- {}",
        o.energy,
        o.error,
        vmc.energy,
        vmc.error
    );
    assert_eq!(o.runs[0].node_crossing_rate, 0.0, "no determinant, no node");
}

/// DMC on the GPU, the population and its comb on the device: two electrons reach Taut's 3
/// and six the fixed-node energy, as on the CPU (short runs, so loose tolerances; the error
/// of 400 generations of 256 walkers was itself too uncertain: one run gave 20.1402(36)).
#[test]
fn the_gpu_engine_reaches_the_same_energies() {
    if common::adapter().is_none() {
        return;
    }
    let two = dmc_of(
        "gpu-two",
        json!({"wavefunction": {"jastrow": "pade", "init_scale": 0.0}, "walkers": 400,
               "engine": "gpu", "dmc": {"time_step": 0.02, "generations": 1500,
               "equilibration": 150}}),
    );
    assert!(two.engine.starts_with("gpu"), "{}", two.engine);
    common::assert_within("GPU DMC, two electrons", two.energy, 3.0, two.error, 4.0);
    let six = dmc_of(
        "gpu-six",
        json!({"system": {"particles": 6, "statistics": "fermions"},
               "wavefunction": {"jastrow": "pade", "init_scale": 0.0}, "walkers": 512,
               "engine": "gpu", "dmc": {"generations": 600, "equilibration": 150}}),
    );
    common::assert_within(
        "GPU DMC, six electrons",
        six.energy,
        20.1597,
        six.error,
        4.0,
    );
    assert!(six.runs[0].node_crossing_rate > 0.0);
}

/// Six electrons: the determinant's nodes give the published fixed-node energy 20.1597(2)
/// (a short run, so a loose tolerance; `rbm-vmc validate` holds the tight one).
#[test]
fn six_electrons_reach_the_fixed_node_energy() {
    let o = dmc_of(
        "six",
        json!({"system": {"particles": 6, "statistics": "fermions"},
               "wavefunction": {"jastrow": "pade", "init_scale": 0.0}, "walkers": 256,
               "dmc": {"generations": 400, "equilibration": 100}}),
    );
    common::assert_within("6 electrons", o.energy, 20.1597, o.error, 4.0);
    assert!(
        o.runs[0].node_crossing_rate > 0.0,
        "some proposals reach a node"
    );
    assert!(o.runs[0].acceptance > 0.99);
}

/// Every walker draws from its own stream and the sums are added in a fixed order: the
/// same run on 1 and 2 threads is the same to the last bit, and so is a repeat.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let value = |threads: usize| {
        json!({"wavefunction": {"jastrow": "pade"}, "walkers": 200, "threads": threads,
               "dmc": {"generations": 60, "equilibration": 20}})
    };
    let one = dmc_of("threads-1", value(1));
    let two = dmc_of("threads-2", value(2));
    assert_eq!(one.runs[0].series, two.runs[0].series);
    assert_eq!(one.energy.to_bits(), two.energy.to_bits());
    assert_eq!(dmc_of("threads-again", value(2)).runs, two.runs);
}

/// `rbm-vmc dmc` writes its table, figure and result, and refuses what it cannot do.
#[test]
fn the_dmc_command_writes_its_files_and_refuses_bad_input() {
    let dir = scratch("dmc-cli");
    let out = dir.join("out");
    let small = [
        "--set",
        "walkers=100",
        "--set",
        "dmc.generations=100",
        "--set",
        "dmc.equilibration=20",
        "--set",
        "sampler.thermalisation=100",
    ];
    let mut args = vec!["dmc", "--out", out.to_str().unwrap()];
    args.extend(small);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("DMC energy"),
        "{}",
        text(&o.stdout)
    );
    let result = read_json(&out.join("result.json"));
    assert_eq!(result["method"], "dmc");
    assert_eq!(result["status"], "completed");
    assert_eq!(result["generations_done"], 120);
    assert_eq!(result["reference"]["energy"], 3.0);
    for key in ["energy", "error", "tau_eff", "acceptance", "weight_spread"] {
        assert!(result[key].is_number(), "{key}: {result}");
    }
    let csv = std::fs::read_to_string(out.join("dmc.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 100 / 20, "{csv}");
    assert!(csv.starts_with("time_step,generation,energy,mean,error,"));
    assert!(
        std::fs::read_to_string(out.join("dmc.svg"))
            .unwrap()
            .starts_with("<svg")
    );

    let refused: [(&[&str], &str); 3] = [
        (&["--set", "dmc.time_step=0"], "dmc.time_step"),
        (&["--set", "dmc.time_step=5"], "at most 1 / omega"),
        (&["--set", "dmc.block=1000"], "dmc.block"),
    ];
    for (extra, needle) in refused {
        let mut args = vec!["dmc", "--out", out.to_str().unwrap(), "--force"];
        args.extend(small);
        args.extend(extra);
        assert_refused(&run(&args), needle, &format!("{extra:?}"));
    }
    // Distinguishable particles beyond two: the bosonic ground state, said so.
    let mut args = vec!["dmc", "--out", out.to_str().unwrap(), "--force"];
    args.extend(small);
    args.extend([
        "--set",
        "system.particles=3",
        "--set",
        "system.interaction=false",
    ]);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("bosonic ground state"),
        "{}",
        text(&o.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A params file from `run` is what `dmc --from` measures, with the run's config.
#[test]
fn dmc_from_a_run_uses_its_config_and_parameters() {
    let dir = scratch("dmc-from");
    let optimised = dir.join("run");
    let mut args = vec!["run", "-q", "--out", optimised.to_str().unwrap()];
    args.extend(common::TINY);
    args.extend(["--set", "system.omega=0.5"]);
    assert!(run(&args).status.success());
    let out = dir.join("dmc");
    let o = run(&[
        "dmc",
        "-q",
        "--from",
        optimised.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        "dmc.generations=40",
        "--set",
        "dmc.equilibration=10",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let result = read_json(&out.join("result.json"));
    assert_eq!(result["config"]["system"]["omega"], 0.5);
    let config: Config = serde_json::from_value(result["config"].clone()).unwrap();
    assert_eq!(config.walkers, 64);
    // A dmc run keeps no parameters: --from it says so.
    let o = run(&[
        "dmc",
        "--from",
        out.to_str().unwrap(),
        "--out",
        dir.join("again").to_str().unwrap(),
    ]);
    assert_refused(&o, "directory of a `dmc` run", "dmc --from a dmc run");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A list of time steps runs each in turn and extrapolates linearly to tau = 0: two
/// electrons at 3 within the extrapolation's error, each time step recorded.
#[test]
fn a_list_of_time_steps_is_extrapolated_to_zero() {
    let dir = scratch("dmc-taus");
    let out = dir.join("out");
    let o = run(&[
        "dmc",
        "-q",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "dmc.time_step=[0.08, 0.04, 0.02]",
        "--set",
        "sampler.dt=0.05",
        "--set",
        "wavefunction.jastrow=pade",
        "--set",
        "wavefunction.init_scale=0",
        "--set",
        "walkers=400",
        "--set",
        "dmc.generations=1600",
        "--set",
        "dmc.equilibration=200",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let result = read_json(&out.join("result.json"));
    let steps = result["per_time_step"].as_array().unwrap();
    let taus: Vec<f64> = steps
        .iter()
        .map(|s| s["time_step"].as_f64().unwrap())
        .collect();
    assert_eq!(taus, [0.08, 0.04, 0.02]);
    assert_eq!(result["fit"]["coefficients"].as_array().unwrap().len(), 2);
    let (energy, error) = (
        result["energy"].as_f64().unwrap(),
        result["error"].as_f64().unwrap(),
    );
    assert_eq!(energy, result["fit"]["coefficients"][0].as_f64().unwrap());
    common::assert_within("E0", energy, 3.0, error, 5.0);
    // The extrapolation's error exceeds the smallest time step's own.
    assert!(error > steps[2]["error"].as_f64().unwrap());
    let csv = std::fs::read_to_string(out.join("dmc.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 1600 / 20);
    assert!(
        std::fs::read_to_string(out.join("timestep.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A DMC run stopped part-way (`--max-seconds`, as by a signal) and resumed, as often as it
/// takes and on another thread count, ends with exactly the numbers of one that never
/// stopped; the stopped run's files say so and how to go on.
#[test]
fn stopped_and_resumed_runs_match_uninterrupted_ones() {
    let dir = scratch("dmc-resume");
    let settings = [
        "-q",
        "--engine",
        "cpu",
        "--set",
        "walkers=200",
        "--set",
        "dmc.time_step=[0.04, 0.02]",
        "--set",
        "dmc.generations=1200",
        "--set",
        "dmc.equilibration=100",
        "--set",
        "wavefunction.jastrow=pade",
    ];
    let (full, part) = (dir.join("full"), dir.join("part"));
    let mut args = vec!["dmc", "--out", full.to_str().unwrap()];
    args.extend(settings);
    assert!(run(&args).status.success());
    let mut args = vec![
        "dmc",
        "--out",
        part.to_str().unwrap(),
        "--max-seconds",
        "0.05",
    ];
    args.extend(settings);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("rbm-vmc dmc --resume"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(read_json(&part.join("result.json"))["status"], "stopped");
    let mut sessions = 1;
    loop {
        let threads = if sessions % 2 == 0 { "2" } else { "1" };
        let o = run(&[
            "dmc",
            "-q",
            "--resume",
            part.to_str().unwrap(),
            "--max-seconds",
            "0.05",
            "--threads",
            threads,
        ]);
        sessions += 1;
        match o.status.code() {
            Some(0) => break,
            Some(130) => assert!(sessions < 100, "never finished"),
            _ => panic!("{}", text(&o.stderr)),
        }
    }
    let (a, b) = (
        read_json(&full.join("result.json")),
        read_json(&part.join("result.json")),
    );
    for key in ["energy", "error", "per_time_step", "fit", "generations"] {
        assert_eq!(a[key], b[key], "{key} after {sessions} sessions");
    }
    let csv = |d: &std::path::Path| std::fs::read_to_string(d.join("dmc.csv")).unwrap();
    assert_eq!(csv(&full), csv(&part));
    // An edited checkpoint is refused.
    let edited = dir.join("edited");
    let mut args = vec![
        "dmc",
        "--out",
        edited.to_str().unwrap(),
        "--max-seconds",
        "1e-9",
    ];
    args.extend(settings);
    assert_eq!(run(&args).status.code(), Some(130));
    let file = edited.join("dmc-checkpoint.json");
    let mut checkpoint = read_json(&file);
    checkpoint["positions"][0] = serde_json::json!(0.125);
    std::fs::write(&file, checkpoint.to_string()).unwrap();
    let o = run(&["dmc", "--resume", edited.to_str().unwrap()]);
    assert_refused(&o, "does not match its checksum", "an edited checkpoint");
    // A finished run has nothing to resume; another directory has no checkpoint.
    let o = run(&["dmc", "--resume", part.to_str().unwrap()]);
    assert_refused(&o, "is complete", "resume of a finished run");
    let o = run(&["dmc", "--resume", dir.to_str().unwrap()]);
    assert_refused(&o, "dmc --resume", "resume without a checkpoint");
    // A run stopped on the CPU goes on on the GPU from the same walkers, to the same energy
    // within the errors.
    if common::adapter().is_some() {
        let moved = dir.join("moved");
        let mut args = vec![
            "dmc",
            "--out",
            moved.to_str().unwrap(),
            "--max-seconds",
            "0.05",
        ];
        args.extend(settings);
        assert_eq!(run(&args).status.code(), Some(130));
        let o = run(&[
            "dmc",
            "-q",
            "--resume",
            moved.to_str().unwrap(),
            "--engine",
            "gpu",
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let c = read_json(&moved.join("result.json"));
        assert!(c["engine"].as_str().unwrap().starts_with("gpu"), "{c}");
        let (e, sigma) = (c["energy"].as_f64().unwrap(), c["error"].as_f64().unwrap());
        let reference = a["energy"].as_f64().unwrap();
        common::assert_within("resumed on the GPU", e, reference, sigma * 2f64.sqrt(), 5.0);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `"mode": "dmc"` sweeps run DMC at each point: two electrons at two trap frequencies, each
/// at its exact energy (3 and 1.65977 by DMC) within loose error bars.
#[test]
fn sweeps_run_dmc_at_every_point() {
    let dir = scratch("dmc-sweep");
    let file = dir.join("sweep.json");
    let sweep = json!({
        "config": {
            "wavefunction": {"jastrow": "pade", "init_scale": 0.0}, "walkers": 200,
            "engine": "cpu",
            "dmc": {"time_step": 0.02, "generations": 800, "equilibration": 100}
        },
        "grid": {"system.omega": [0.5, 1.0]},
        "mode": "dmc"
    });
    std::fs::write(&file, sweep.to_string()).unwrap();
    let out = dir.join("out");
    let o = run(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows = read_json(&out.join("sweep.json"));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, exact) in rows.iter().zip([1.65977, 3.0]) {
        let (e, error) = (
            row["energy"].as_f64().unwrap(),
            row["error"].as_f64().unwrap(),
        );
        common::assert_within("sweep point", e, exact, error, 5.0);
    }
    let point = read_json(&out.join("points/0001/result.json"));
    assert_eq!(point["method"], "dmc");
    // A time step beyond a point's 1/omega is refused before any point runs.
    let bad = json!({"config": {"engine": "cpu"}, "grid": {"system.omega": [1.0, 2.0]},
                     "dmc": null, "mode": "dmc"});
    let mut bad = bad;
    bad.as_object_mut().unwrap().remove("dmc");
    bad["config"]["dmc"] = json!({"time_step": 0.6});
    std::fs::write(&file, bad.to_string()).unwrap();
    let refused = dir.join("refused");
    let o = run(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert_refused(
        &o,
        "point 1 (system.omega=2",
        "a DMC sweep with tau > 1/omega",
    );
    assert!(!refused.join("points").exists(), "no point ran");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A trial function whose local energy is not finite anywhere (a width of 1e-160) ends the
/// run with exit 1 and the cause, and result.json says "diverged" with no energy.
#[test]
fn broken_numbers_end_the_run_with_the_cause() {
    let dir = scratch("dmc-broken");
    let out = dir.join("out");
    let o = run(&[
        "dmc",
        "-q",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "wavefunction.sigma=1e-160",
        "--set",
        "walkers=100",
        "--set",
        "dmc.generations=40",
        "--set",
        "dmc.equilibration=0",
    ]);
    let stderr = common::assert_failed(&o, "dmc with sigma 1e-160");
    assert!(stderr.contains("non-finite local energy"), "{stderr}");
    let result = read_json(&out.join("result.json"));
    assert_eq!(result["status"], "diverged");
    assert!(result.get("energy").is_none(), "{result}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The population-control bias (weights reset at every comb) is of order 1/M: below the
/// statistical error at a few hundred walkers already, so M and 4M agree within errors.
#[test]
fn the_population_control_bias_is_below_the_error() {
    let value = |walkers: u32| {
        json!({"wavefunction": {"jastrow": "pade", "init_scale": 0.0}, "walkers": walkers,
               "dmc": {"time_step": 0.04, "generations": 1500, "equilibration": 200}})
    };
    let small = dmc_of("population-small", value(150));
    let large = dmc_of("population-large", value(600));
    let combined = (small.error.powi(2) + large.error.powi(2)).sqrt();
    common::assert_within("M against 4M", small.energy, large.energy, combined, 4.0);
}

/// One measured generation has no error bar: said on the console and in result.json.
#[test]
fn a_run_too_short_for_an_error_says_so() {
    let dir = scratch("dmc-short");
    let out = dir.join("out");
    let o = run(&[
        "dmc",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "walkers=10",
        "--set",
        "dmc.generations=1",
        "--set",
        "dmc.block=1",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("warning: the error cannot be estimated"));
    let result = read_json(&out.join("result.json"));
    assert!(
        result["warning"]
            .as_str()
            .unwrap()
            .contains("dmc.generations")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The energy cutoff follows the trap's energy scale: at omega = 10 the default cutoff gives
/// the energy of an effectively unlimited one (unscaled, 0.2 sqrt(P / tau), it clamped the
/// branching: 23.90(10) against 23.47(10)).
#[test]
fn the_cutoff_scales_with_the_trap() {
    let value = |cutoff: f64| {
        json!({"system": {"omega": 10.0}, "walkers": 400,
               "dmc": {"time_step": 0.002, "generations": 2000, "equilibration": 300,
                       "cutoff": cutoff}})
    };
    let default = dmc_of("cutoff-default", value(0.2));
    let unlimited = dmc_of("cutoff-unlimited", value(1e6));
    let combined = default.error.hypot(unlimited.error);
    common::assert_within("omega 10", default.energy, unlimited.energy, combined, 4.0);
}

/// A trial function far from the ground state (random RBM parameters at omega = 100, where
/// their scale is large against the trap length) puts many local energies beyond the cutoff:
/// the energy is then biased toward the trial function's, and the run says so.
#[test]
fn a_clamped_branching_is_warned_about() {
    let dir = scratch("dmc-clamped");
    let out = dir.join("out");
    let o = run(&[
        "dmc",
        "-q",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "system.omega=100",
        "--set",
        "walkers=100",
        "--set",
        "dmc.time_step=0.001",
        "--set",
        "dmc.generations=200",
        "--set",
        "dmc.equilibration=50",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let result = read_json(&out.join("result.json"));
    let warning = result["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("beyond the cutoff"), "{result}");
    assert!(result["clamped_rate"].as_f64().unwrap() > 0.01);
    std::fs::remove_dir_all(&dir).unwrap();
}
