//! One ensemble over MPI ranks (`--features mpi`): the program is started by `mpirun` from
//! here, since MPI initialises once per process. Needs an MPI implementation (`mpirun`).
#![cfg(feature = "mpi")]

mod common;

use std::path::Path;
use std::process::Output;

use common::{read_json, scratch, text};
use serde_json::{Value, json};

/// `mpirun -n ranks rbm-vmc args...` (as root and oversubscribed, as CI machines need).
fn mpirun(ranks: usize, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new("timeout");
    command
        .args([
            "300",
            "mpirun",
            "-n",
            &ranks.to_string(),
            env!("CARGO_BIN_EXE_rbm-vmc"),
        ])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .output()
        .expect("mpirun runs (is an MPI implementation installed?)")
}

const RUN: [&str; 14] = [
    "--set",
    "walkers=101",
    "--set",
    "steps_per_iteration=150",
    "--set",
    "optimiser.iterations=5",
    "--set",
    "production.steps=400",
    "--set",
    "sampler.thermalisation=30",
    "--set",
    "checkpoint_every=1",
    "--engine",
    "cpu",
];

fn numbers(dir: &Path) -> (f64, Vec<f64>) {
    let result = read_json(&dir.join("result.json"));
    let params = read_json(&dir.join("params.json"));
    let mut theta: Vec<f64> = Vec::new();
    for key in ["a", "b"] {
        theta.extend(
            params[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap()),
        );
    }
    for row in params["w"].as_array().unwrap() {
        theta.extend(row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()));
    }
    (result["energy"].as_f64().unwrap(), theta)
}

fn assert_close(label: &str, a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-12 * a.abs().max(1.0),
        "{label}: {a} vs {b}"
    );
}

/// 1, 2 and 3 ranks (walkers not divisible by the rank count) end with the same parameters
/// and energies: only the order of the final sums differs.
#[test]
fn one_two_and_three_ranks_agree() {
    let dir = scratch("mpi-ranks");
    let mut results = Vec::new();
    for ranks in 1..=3 {
        let out = dir.join(format!("k{ranks}"));
        let mut args = vec!["run", "--out", out.to_str().unwrap()];
        args.extend(RUN);
        let o = mpirun(ranks, &args, &[]);
        assert!(o.status.success(), "{ranks} ranks: {}", text(&o.stderr));
        let stdout = text(&o.stdout);
        // Only rank 0 reports: one result line.
        assert_eq!(stdout.matches("energy ").count(), 1, "{stdout}");
        if ranks > 1 {
            assert!(
                stdout.contains(&format!("{ranks} processes x cpu")),
                "{stdout}"
            );
        }
        results.push(numbers(&out));
    }
    // The observables are reduced over the ranks too: the same parts, and the same histograms
    // (whole counts, so the densities agree to the last digit).
    let observed = |ranks: usize| {
        let out = dir.join(format!("k{ranks}"));
        let result = read_json(&out.join("result.json"));
        let density = std::fs::read_to_string(out.join("density.csv")).unwrap();
        (result["observables"].clone(), density)
    };
    let (o1, d1) = observed(1);
    for ranks in 2..=3 {
        let (o, d) = observed(ranks);
        for key in ["kinetic", "trap", "interaction", "pair_distance"] {
            let (a, b) = (o1[key]["value"].as_f64(), o[key]["value"].as_f64());
            assert_close(&format!("{key} with {ranks} ranks"), a.unwrap(), b.unwrap());
        }
        let rho = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
                .collect()
        };
        assert_eq!(rho(&d1), rho(&d), "rho(r) with {ranks} ranks");
    }
    let (e1, p1) = &results[0];
    for (k, (e, p)) in results.iter().enumerate().skip(1) {
        assert_close(&format!("energy with {} ranks", k + 1), *e1, *e);
        for (i, (a, b)) in p1.iter().zip(p).enumerate() {
            assert_close(&format!("theta[{i}] with {} ranks", k + 1), *a, *b);
        }
    }

    // Interrupted with 2 ranks, resumed with 3: the checkpoint holds every walker.
    let part = dir.join("part");
    let mut args = vec![
        "run",
        "--max-seconds",
        "1e-9",
        "--out",
        part.to_str().unwrap(),
    ];
    args.extend(RUN);
    let o = mpirun(2, &args, &[]);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    let o = mpirun(3, &["run", "--resume", part.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (e, p) = numbers(&part);
    assert_close("energy after a resume on 3 ranks", *e1, e);
    for (a, b) in p1.iter().zip(&p) {
        assert_close("parameters after a resume on 3 ranks", *a, *b);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SR over 2 ranks: the metric is all-reduced with the other sums, and with every sample in S
/// (101 walkers x 150 measurements, below `optimiser.metric_samples`) 2 ranks end where 1
/// does, up to the order of the sums (amplified a little by the solve).
#[test]
fn sr_over_ranks_agrees_with_one_rank() {
    let dir = scratch("mpi-sr");
    let mut results = Vec::new();
    for ranks in 1..=2 {
        let out = dir.join(format!("k{ranks}"));
        let mut args = vec!["run", "--out", out.to_str().unwrap()];
        args.extend(RUN);
        args.extend(["--set", "optimiser.kind=sr"]);
        let o = mpirun(ranks, &args, &[]);
        assert!(o.status.success(), "{ranks} ranks: {}", text(&o.stderr));
        results.push(numbers(&out));
    }
    let ((e1, p1), (e2, p2)) = (&results[0], &results[1]);
    assert!((e1 - e2).abs() < 1e-8, "energy: {e1} vs {e2}");
    for (i, (a, b)) in p1.iter().zip(p2).enumerate() {
        assert!((a - b).abs() < 1e-8, "theta[{i}]: {a} vs {b}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A sweep over 2 ranks runs every point once and writes the single-process table.
#[test]
fn a_distributed_sweep_runs_every_point_once() {
    let dir = scratch("mpi-sweep");
    let file = dir.join("sweep.json");
    let sweep = json!({
        "config": {
            "wavefunction": {"init_scale": 0.2},
            "sampler": {"thermalisation": 20},
            "walkers": 40, "steps_per_iteration": 50,
            "optimiser": {"iterations": 2},
            "production": {"steps": 200}, "engine": "cpu", "threads": 1
        },
        "grid": {"wavefunction.hidden": [1, 2, 3], "sampler.kind": ["metropolis", "importance"]},
        "mode": "optimise"
    });
    std::fs::write(&file, sweep.to_string()).unwrap();
    let (one, two) = (dir.join("one"), dir.join("two"));
    let o = mpirun(
        1,
        &[
            "sweep",
            file.to_str().unwrap(),
            "--out",
            one.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = mpirun(
        2,
        &[
            "sweep",
            file.to_str().unwrap(),
            "--out",
            two.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    for i in 1..=6 {
        assert_eq!(
            stdout.matches(&format!("point {i}/6 ")).count(),
            1,
            "{stdout}"
        );
    }
    let rows =
        |d: &Path| -> Vec<Value> { read_json(&d.join("sweep.json")).as_array().unwrap().clone() };
    let (a, b) = (rows(&one), rows(&two));
    assert_eq!(b.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["index"], y["index"]);
        assert_eq!(x["values"], y["values"]);
        for key in ["energy", "error", "variance", "acceptance"] {
            assert_close(key, x[key].as_f64().unwrap(), y[key].as_f64().unwrap());
        }
    }
    let csv = std::fs::read_to_string(two.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A failure on one rank ends every rank, with the rank and the reason, not a hang; bad
/// input (the same on every rank) is exit code 2.
#[test]
fn a_failing_rank_ends_the_job_with_its_reason() {
    let dir = scratch("mpi-fail");
    let out = dir.join("out");
    let mut args = vec!["run", "--out", out.to_str().unwrap()];
    args.extend(RUN);
    let o = mpirun(3, &args, &[("RBM_VMC_FAULT_RANK", "1")]);
    let stderr = text(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert_ne!(o.status.code(), Some(124), "the job hung: {stderr}");
    assert!(
        stderr.contains("rank 1: error:") && stderr.contains("RBM_VMC_FAULT_RANK"),
        "{stderr}"
    );

    let o = mpirun(
        2,
        &["run", "--set", "system.omega=-1", "--engine", "cpu"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("system.omega"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `bench` over 2 ranks reports the aggregate throughput and the efficiency against one.
#[test]
fn bench_over_ranks_reports_parallel_efficiency() {
    let dir = scratch("mpi-bench");
    let out = dir.join("out");
    let o = mpirun(
        2,
        &[
            "bench",
            "--walkers",
            "256",
            "--engines",
            "cpu",
            "--seconds",
            "0.5",
            "--repeats",
            "2",
            "--set",
            "steps_per_iteration=50",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report = read_json(&out.join("bench.json"));
    let point = &report["points"][0];
    assert_eq!(point["processes"], 2);
    let efficiency = point["efficiency"].as_f64().unwrap();
    assert!(efficiency > 0.0 && efficiency < 2.0, "{point}");
    assert!(report["allreduce_seconds"].as_f64().unwrap() > 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// DMC over 1 and 2 ranks: each rank moves its share of the walkers with the streams of their
/// global slots, the sums are added and the comb runs over the whole population, so the
/// ranks walk the one-process population to rounding (its dmc.csv rows agree closely: to
/// f64 rounding on the CPU, to f32 rounding on the GPU, where one rank combs on the device
/// and two on the host); a run stopped on 2 ranks resumes on 1 with every walker.
#[test]
fn dmc_over_ranks_follows_one_rank() {
    dmc_over_ranks("cpu", 1e-9);
    if common::adapter().is_some() {
        dmc_over_ranks("gpu", 1e-4);
    }
}

fn dmc_over_ranks(engine: &str, tolerance: f64) {
    let dir = scratch(&format!("mpi-dmc-{engine}"));
    let settings = [
        "-q",
        "--engine",
        engine,
        "--set",
        "walkers=101",
        "--set",
        "wavefunction.jastrow=pade",
        "--set",
        "dmc.generations=200",
        "--set",
        "dmc.equilibration=40",
        "--set",
        "sampler.thermalisation=50",
    ];
    let mut energies = Vec::new();
    for ranks in 1..=2 {
        let out = dir.join(format!("k{ranks}"));
        let mut args = vec!["dmc", "--out", out.to_str().unwrap()];
        args.extend(settings);
        let o = mpirun(ranks, &args, &[]);
        assert!(o.status.success(), "{ranks} ranks: {}", text(&o.stderr));
        let csv = std::fs::read_to_string(out.join("dmc.csv")).unwrap();
        let first: f64 = csv
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        energies.push((first, read_json(&out.join("result.json"))));
    }
    let (first1, r1) = &energies[0];
    let (first2, r2) = &energies[1];
    // The first block of generations: the same population up to the order of the sums.
    assert!(
        (first1 - first2).abs() < tolerance,
        "{engine}: {first1} vs {first2}"
    );
    assert!(r2["engine"].as_str().unwrap().starts_with(engine), "{r2}");
    let (e1, e2) = (
        r1["energy"].as_f64().unwrap(),
        r2["energy"].as_f64().unwrap(),
    );
    let error = r1["error"]
        .as_f64()
        .unwrap()
        .hypot(r2["error"].as_f64().unwrap());
    assert!((e1 - e2).abs() <= 4.0 * error, "{e1} vs {e2} (+- {error})");

    let part = dir.join("part");
    let mut args = vec![
        "dmc",
        "--max-seconds",
        "1e-9",
        "--out",
        part.to_str().unwrap(),
    ];
    args.extend(settings);
    let o = mpirun(2, &args, &[]);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    let o = mpirun(1, &["dmc", "-q", "--resume", part.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let resumed = read_json(&part.join("result.json"));
    assert!(resumed["energy"].as_f64().unwrap().is_finite(), "{resumed}");
    std::fs::remove_dir_all(&dir).unwrap();
}
