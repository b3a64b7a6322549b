//! Observables beyond the energy on both engines: the energy's parts and the virial ratio,
//! distances, and the density histograms, against closed forms (docs/physics.md) and CPU
//! against GPU.

mod common;

use common::*;
use rbm_vmc::config::Config;
use rbm_vmc::engine::observables::SCALARS;
use rbm_vmc::engine::{Engine, EngineSpec, Measure};
use rbm_vmc::physics::Layout;
use rbm_vmc::stats::chi_squared_quantile_99;
use rbm_vmc::stats::observables::{Histogram, Observed, Value};
use rbm_vmc::{Estimate, Params};
use serde_json::json;
use std::f64::consts::PI;

/// Thermalises without observables, then measures `steps` steps with them.
fn observe(engine: &mut dyn Engine, params: &Params, steps: u32) -> (Estimate, Observed) {
    engine.sample(params, 300, Measure::Nothing, &()).unwrap();
    let m = engine
        .sample(params, steps, Measure::Production, &())
        .unwrap();
    let spec = engine.spec().clone();
    let o = Observed::from_sums(
        m.observables.as_ref().expect("observables measured"),
        spec.observables.as_ref().unwrap(),
        spec.system.particles,
        spec.system.dims,
    )
    .unwrap();
    (Estimate::from_moments(&m), o)
}

/// The radial shell volume between r0 and r1 in `dims` dimensions.
fn shell(dims: usize, r0: f64, r1: f64) -> f64 {
    let ball = |r: f64| match dims {
        1 => 2.0 * r,
        2 => PI * r * r,
        _ => 4.0 / 3.0 * PI * r.powi(3),
    };
    ball(r1) - ball(r0)
}

/// Fewest counts a bin must expect to enter a chi-square: in sparser bins (the far tail)
/// the block errors are too rough (a single count in one block gives a tiny error).
const MIN_COUNTS: f64 = 50.0;

/// Chi-square of a histogram against `exact` bin averages, over the bins that expect at least
/// `MIN_COUNTS` counts (`counts[i]`: expected value to counts) and whose error is known;
/// returns (chi2, bins).
fn chi_square(h: &Histogram, exact: &[f64], counts: impl Fn(usize) -> f64) -> (f64, u32) {
    let mut chi2 = 0.0;
    let mut n = 0;
    for (i, ((v, e), x)) in h.values.iter().zip(&h.errors).zip(exact).enumerate() {
        if e.is_finite() && *e > 0.0 && x * counts(i) >= MIN_COUNTS {
            chi2 += ((v - x) / e).powi(2);
            n += 1;
        }
    }
    (chi2, n)
}

/// Chi-square below the 99 % quantile, with room for errors estimated from 32 blocks (their
/// own spread of ~13 % inflates chi-square by a few per cent on average).
fn assert_chi_square(label: &str, chi2: f64, dof: u32) {
    assert!(dof >= 5, "{label}: only {dof} bins with counts");
    let limit = 1.2 * chi_squared_quantile_99(dof);
    assert!(
        chi2 < limit,
        "{label}: chi2 {chi2:.1} over {dof} bins (limit {limit:.1})"
    );
}

/// Bin averages of f over the bins of `h`, by the midpoint rule on 50 sub-intervals, weighted
/// by `measure` (dV/dr for densities, 1 for distributions).
fn bin_averages(h: &Histogram, f: impl Fn(f64) -> f64, measure: impl Fn(f64) -> f64) -> Vec<f64> {
    h.centres
        .iter()
        .map(|&c| {
            let (a, w) = (c - h.width / 2.0, h.width / 50.0);
            let (mut num, mut den) = (0.0, 0.0);
            for k in 0..50 {
                let r = a + (k as f64 + 0.5) * w;
                num += f(r) * measure(r) * w;
                den += measure(r) * w;
            }
            num / den
        })
        .collect()
}

/// Sum of value x bin measure, plus what fell outside: the histogram's total.
fn total(h: &Histogram, measure: impl Fn(usize) -> f64) -> f64 {
    h.values
        .iter()
        .enumerate()
        .map(|(i, v)| v * measure(i))
        .sum::<f64>()
        + h.outside
}

/// Checks the non-interacting exact state: <T> = <V_trap> = E/2, virial ratio 1, <r^2> =
/// D / (2 omega), rho(r) the Gaussian P (omega/pi)^(D/2) exp(-omega r^2), and the
/// normalisations.
fn check_non_interacting(label: &str, c: &Config, e: &Estimate, o: &Observed) {
    let (p, d, w) = (c.system.particles, c.system.dims, c.system.omega);
    let exact = p as f64 * d as f64 * w / 2.0;
    assert!((e.energy - exact).abs() < 1e-4, "{label}: E {}", e.energy);
    assert_within(
        &format!("{label} <T>"),
        o.kinetic.value,
        exact / 2.0,
        o.kinetic.error,
        4.5,
    );
    assert_within(
        &format!("{label} <V>"),
        o.trap.value,
        exact / 2.0,
        o.trap.error,
        4.5,
    );
    // The parts fluctuate although their sum does not.
    assert!(o.trap.error > 1e-4, "{label}: trap error {}", o.trap.error);
    assert!(
        (o.kinetic.value + o.trap.value + o.interaction.value - e.energy).abs() < 1e-3,
        "{label}: the parts do not add up to E"
    );
    assert_eq!(o.interaction.value, 0.0);
    let v = &o.virial_ratio;
    assert_within(&format!("{label} virial"), v.value, 1.0, v.error, 4.5);
    let r2 = &o.square_radius;
    assert_within(
        &format!("{label} <r^2>"),
        r2.value,
        d as f64 / (2.0 * w),
        r2.error,
        4.5,
    );

    let rho = |r: f64| p as f64 * (w / PI).powf(d as f64 / 2.0) * (-w * r * r).exp();
    let dv = |r: f64| match d {
        1 => 2.0,
        2 => 2.0 * PI * r,
        _ => 4.0 * PI * r * r,
    };
    let expected = bin_averages(&o.radial, rho, dv);
    let h = &o.radial;
    let volume = |i: usize| shell(d, i as f64 * h.width, (i + 1) as f64 * h.width);
    let (chi2, bins) = chi_square(h, &expected, |i| volume(i) * h.samples);
    eprintln!(
        "{label}: E {:.6}, T {:.5} +- {:.5}, V {:.5} +- {:.5}, virial {:.5} +- {:.5}, r2 {:.5} +- \
         {:.5} (exact {}), rho chi2 {chi2:.1} / {bins}",
        e.energy,
        o.kinetic.value,
        o.kinetic.error,
        o.trap.value,
        o.trap.error,
        v.value,
        v.error,
        r2.value,
        r2.error,
        d as f64 / (2.0 * w)
    );
    assert_chi_square(&format!("{label} rho(r)"), chi2, bins);

    let ones = total(h, volume);
    assert!(
        (ones - p as f64).abs() < 1e-9,
        "{label}: rho integrates to {ones}"
    );
    let pairs = total(&o.pair, |_| o.pair.width);
    let want = (p * (p - 1) / 2) as f64;
    assert!(
        (pairs - want).abs() < 1e-9,
        "{label}: P(r) integrates to {pairs}"
    );
    if let Some(g) = &o.grid {
        let cells: f64 = g.values.iter().map(|v| v * g.width * g.width).sum::<f64>() + g.outside;
        assert!(
            (cells - p as f64).abs() < 1e-9,
            "{label}: n(x, y) integrates to {cells}"
        );
    } else {
        assert_ne!(d, 2, "{label}: 2D has a grid");
    }
    // In 1D <1/r_ij> diverges: it is not reported.
    assert_eq!(o.inverse_pair_distance.is_some(), p > 1 && d > 1, "{label}");
    assert_eq!(o.pair_distance.is_some(), p > 1, "{label}");
}

fn zero_params(c: &Config) -> Params {
    let m = c.system.particles * c.system.dims;
    biases_only(m, &hidden_biases(c.wavefunction.hidden))
}

#[test]
fn non_interacting_parts_distances_and_density_are_exact_on_the_cpu() {
    for (i, (shape, omega, sampler)) in [
        ((2, 2, 2), 1.0, ("metropolis", "all")),
        ((3, 3, 2), 0.5, ("importance", "single")),
        ((2, 1, 1), 1.5, ("metropolis", "single")),
    ]
    .into_iter()
    .enumerate()
    {
        let c = exact_case(
            shape,
            omega,
            "direct",
            sampler,
            json!({"walkers": 200, "seed": 300 + i, "sampler": {"step": 2.0, "dt": 0.3}}),
        );
        let mut engine = cpu(&c);
        let (e, o) = observe(&mut engine, &zero_params(&c), 4000);
        check_non_interacting(&format!("cpu {shape:?}"), &c, &e, &o);
    }
}

/// Two electrons in 2D at omega = 1 with the Gaussian product state (sigma = 1, zero
/// parameters): r12 is Rayleigh-distributed with unit scale, so <r12> = <1/r12> = sqrt(pi/2)
/// and P(r12) = r12 exp(-r12^2 / 2).
fn check_two_electrons(label: &str, e: &Estimate, o: &Observed) {
    let exact = (PI / 2.0).sqrt();
    let v = &o.interaction;
    assert_within(&format!("{label} <V_int>"), v.value, exact, v.error, 4.5);
    let r = o.pair_distance.unwrap();
    assert_within(&format!("{label} <r12>"), r.value, exact, r.error, 4.5);
    let inv = o.inverse_pair_distance.unwrap();
    assert!((inv.value - v.value).abs() < 1e-5, "{label}: one pair");
    assert_within(
        &format!("{label} <r^2>"),
        o.square_radius.value,
        1.0,
        o.square_radius.error,
        4.5,
    );
    let sum = o.kinetic.value + o.trap.value + o.interaction.value;
    assert!(
        (sum - e.energy).abs() < 1e-4 * e.energy,
        "{label}: parts {sum} vs E {}",
        e.energy
    );
    // The same as the program's non-interacting P(r12) of two particles (one pair).
    let system = rbm_vmc::System {
        particles: 2,
        dims: 2,
        omega: 1.0,
        interaction: true,
        statistics: rbm_vmc::physics::Statistics::Distinguishable,
    };
    let reference = |r: f64| system.non_interacting_pair_density(r).unwrap();
    assert!((reference(1.3) - 1.3 * (-1.3f64 * 1.3 / 2.0).exp()).abs() < 1e-15);
    let expected = bin_averages(&o.pair, reference, |_| 1.0);
    let (chi2, bins) = chi_square(&o.pair, &expected, |_| o.pair.width * o.pair.samples);
    eprintln!(
        "{label}: V_int {:.5} +- {:.5}, r12 {:.5} +- {:.5} (exact {exact:.5}), virial {:.4} +- \
         {:.4}, P(r12) chi2 {chi2:.1} / {bins}",
        v.value, v.error, r.value, r.error, o.virial_ratio.value, o.virial_ratio.error
    );
    assert_chi_square(&format!("{label} P(r12)"), chi2, bins);
}

fn two_electrons(seed: u64) -> Config {
    config(json!({
        "wavefunction": {"form": "direct", "sigma": 1.0},
        "sampler": {"kind": "metropolis", "moves": "all", "step": 2.0},
        "walkers": 256, "seed": seed,
    }))
}

#[test]
fn two_electrons_at_zero_parameters_match_the_closed_forms_on_the_cpu() {
    let c = two_electrons(41);
    let mut engine = cpu(&c);
    let (e, o) = observe(&mut engine, &Params::zeros(Layout::rbm(4, 2)), 4000);
    check_two_electrons("cpu", &e, &o);
}

/// The histograms take the call's measurements 0, n, 2n, ... (n = histogram_every): each
/// puts every particle of every walker in a radial bin or the overflow counter. One block
/// per measurement here.
fn assert_binned_every(c: &Config, blocks: &[rbm_vmc::engine::observables::Block]) {
    let n = c.observables.histogram_every as usize;
    assert!(n > 1, "the default stride is tested");
    let radial = c.observables.radial_bins;
    for (m, b) in blocks.iter().enumerate() {
        let binned: f64 = b.counts[..=radial].iter().sum();
        let expected = if m % n == 0 { 2.0 * 256.0 } else { 0.0 };
        assert_eq!(binned, expected, "measurement {m}");
    }
}

#[test]
fn observables_are_measured_only_when_asked() {
    let c = two_electrons(5);
    let mut engine = cpu(&c);
    let params = Params::zeros(Layout::rbm(4, 2));
    let observed = |engine: &mut dyn Engine, measure: Measure| {
        let m = engine.sample(&params, 20, measure, &()).unwrap();
        m.observables.map(|o| o.blocks)
    };
    assert!(observed(&mut engine, Measure::Energy).is_none());
    assert!(observed(&mut engine, Measure::Nothing).is_none());
    let blocks = observed(&mut engine, Measure::Production).unwrap();
    assert_eq!(blocks.len(), 20);
    assert!(blocks.iter().all(|b| b.samples == 256.0));
    assert_binned_every(&c, &blocks);
    if let Some(mut g) = gpu(&c) {
        assert_binned_every(&c, &observed(&mut g, Measure::Production).unwrap());
    }
    let off = config(json!({"observables": {"enabled": false}, "walkers": 4}));
    let mut engine = cpu(&off);
    assert!(observed(&mut engine, Measure::Production).is_none());
}

#[test]
fn the_gpu_measures_the_same_observables() {
    // The non-interacting 2D case (with its grid) and the two electrons.
    let c = exact_case(
        (2, 2, 2),
        1.0,
        "direct",
        ("metropolis", "all"),
        json!({"walkers": 256, "seed": 71, "sampler": {"step": 2.0}}),
    );
    let Some(mut g) = gpu(&c) else { return };
    let (e, o) = observe(&mut g, &zero_params(&c), 2000);
    check_non_interacting("gpu", &c, &e, &o);

    let c = two_electrons(42);
    let Some(mut g) = gpu(&c) else { return };
    let params = Params::zeros(Layout::rbm(4, 2));
    let (eg, og) = observe(&mut g, &params, 2000);
    check_two_electrons("gpu", &eg, &og);

    // CPU against GPU (independent chains): parts, distances and every histogram.
    let mut other = two_electrons(43);
    other.walkers = 256;
    let mut engine = cpu(&other);
    let (_, oc) = observe(&mut engine, &params, 2000);
    // Walker measurements the histograms took (every `histogram_every`-th).
    let samples = oc.radial.samples.min(og.radial.samples);
    let pairs = [
        ("kinetic", oc.kinetic, og.kinetic),
        ("trap", oc.trap, og.trap),
        ("interaction", oc.interaction, og.interaction),
        ("r12", oc.pair_distance.unwrap(), og.pair_distance.unwrap()),
        ("r2", oc.square_radius, og.square_radius),
    ];
    for (what, a, b) in pairs {
        let combined = (a.error.powi(2) + b.error.powi(2)).sqrt();
        assert_within(
            &format!("cpu vs gpu {what}"),
            a.value,
            b.value,
            combined,
            4.5,
        );
    }
    let (a, b) = (&oc.radial, &og.radial);
    let volume = |i: usize| shell(2, i as f64 * a.width, (i + 1) as f64 * a.width);
    let rho = (&a.values, &a.errors, &b.values, &b.errors);
    check_agreement("rho(r)", rho, volume, samples);
    let (a, b) = (&oc.pair, &og.pair);
    let pair = (&a.values, &a.errors, &b.values, &b.errors);
    check_agreement("P(r12)", pair, |_| a.width, samples);
    let (a, b) = (oc.grid.as_ref().unwrap(), og.grid.as_ref().unwrap());
    let grid = (&a.values, &a.errors, &b.values, &b.errors);
    check_agreement("n(x, y)", grid, |_| a.width * a.width, samples);
}

/// Every walker's means of the scalars add up to the blocks' sums on both engines, call
/// after call (the GPU keeps the walkers' sums after their energies and clears them for each
/// call).
#[test]
fn walker_means_add_up_to_the_block_sums() {
    let c = two_electrons(44);
    let params = Params::zeros(Layout::rbm(4, 2));
    let mut engines: Vec<Box<dyn Engine>> = vec![Box::new(cpu(&c))];
    engines.extend(gpu(&c).map(|g| Box::new(g) as Box<dyn Engine>));
    for engine in &mut engines {
        for steps in [100, 37] {
            let m = engine
                .sample(&params, steps, Measure::Production, &())
                .unwrap();
            let measurements = m.samples as f64 / m.walkers as f64;
            let obs = m.observables.unwrap();
            let w = &obs.walkers;
            assert_eq!(w.count, c.walkers as f64);
            for s in 0..SCALARS {
                let blocks: f64 = obs.blocks.iter().map(|b| b.scalars[s]).sum();
                let walkers = w.sum[s] * measurements;
                let label = format!("{} scalar {s}, {steps} steps", engine.describe());
                let tolerance = 1e-4 * blocks.abs().max(m.samples as f64);
                assert!(
                    (walkers - blocks).abs() < tolerance,
                    "{label}: {walkers} vs {blocks}"
                );
                assert!(w.covariance(s, s) >= 0.0, "{label}");
            }
        }
    }
}

/// Values and errors of two histograms.
type Pair<'a> = (&'a Vec<f64>, &'a Vec<f64>, &'a Vec<f64>, &'a Vec<f64>);

/// Chi-square of two histograms' difference over the bins with at least `MIN_COUNTS` counts
/// (`measure`: a bin's volume, width or area; `samples`: walker measurements of each).
fn check_agreement(what: &str, (a, ea, b, eb): Pair, measure: impl Fn(usize) -> f64, samples: f64) {
    let (mut chi2, mut n) = (0.0, 0);
    for (i, ((x, y), (ex, ey))) in a.iter().zip(b).zip(ea.iter().zip(eb)).enumerate() {
        let var = ex * ex + ey * ey;
        let counts = (x + y) / 2.0 * measure(i) * samples;
        if var > 0.0 && var.is_finite() && counts >= MIN_COUNTS {
            chi2 += (x - y).powi(2) / var;
            n += 1;
        }
    }
    eprintln!("cpu vs gpu {what}: chi2 {chi2:.1} / {n}");
    assert_chi_square(&format!("cpu vs gpu {what}"), chi2, n);
}

#[test]
fn spec_ranges_follow_omega() {
    let c = config(json!({"system": {"omega": 0.25}}));
    let o = EngineSpec::from_config(&c).observables.unwrap();
    assert_eq!(o.r_max, 8.0);
    assert_eq!(o.pair_max, 16.0);
    assert_eq!((o.radial_bins, o.pair_bins, o.grid_bins), (50, 50, 40));
    let c = config(json!({"system": {"dims": 3}, "observables": {"r_max": 3.0}}));
    let o = EngineSpec::from_config(&c).observables.unwrap();
    assert_eq!((o.r_max, o.pair_max, o.grid_bins), (3.0, 6.0, 0));
    let err = Config::from_value(
        json!({"observables": {"radial_bins": 900, "pair_bins": 900}}),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bins"), "{err}");
}

#[test]
fn sample_writes_the_observables_files_and_fields() {
    let dir = scratch("observables");
    let out = dir.join("out");
    let args = [
        "sample",
        "--out",
        out.to_str().unwrap(),
        "--engine",
        "cpu",
        "--set",
        "walkers=64",
        "--set",
        "production.steps=400",
        "--set",
        "sampler.thermalisation=50",
    ];
    let o = rbm_vmc(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("virial ratio"), "{stdout}");
    assert!(stdout.contains("<r_ij>"), "{stdout}");
    let result = read_json(&out.join("result.json"));
    let obs = &result["observables"];
    for key in [
        "kinetic",
        "trap",
        "interaction",
        "virial_ratio",
        "square_radius",
        "pair_distance",
    ] {
        assert!(obs[key]["value"].is_number(), "{key}: {obs}");
        assert!(obs[key]["error"].as_f64().unwrap() > 0.0, "{key}: {obs}");
    }
    // The walkers whose means give the walker-means errors.
    assert_eq!(obs["walkers"], 64, "{obs}");
    let parts = ["kinetic", "trap", "interaction"]
        .iter()
        .map(|k| obs[*k]["value"].as_f64().unwrap())
        .sum::<f64>();
    let energy = result["energy"].as_f64().unwrap();
    assert!(
        (parts - energy).abs() < 1e-9 * energy.abs(),
        "{parts} vs {energy}"
    );
    let density = std::fs::read_to_string(out.join("density.csv")).unwrap();
    let lines: Vec<&str> = density.lines().collect();
    assert_eq!(lines[0], "r,rho,error,rho_non_interacting");
    assert_eq!(lines.len(), 51);
    let pair = std::fs::read_to_string(out.join("pair.csv")).unwrap();
    assert_eq!(pair.lines().next(), Some("r12,p,error"));
    let grid = std::fs::read_to_string(out.join("density2d.csv")).unwrap();
    assert_eq!(grid.lines().count(), 1 + 40 * 40);
    for svg in ["density.svg", "density2d.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(
            text.contains("<svg") && text.contains("natural units"),
            "{svg}"
        );
    }

    // Switched off: no observables, no files.
    let off = dir.join("off");
    let mut off_args = args.to_vec();
    off_args[2] = off.to_str().unwrap();
    off_args.extend(["--set", "observables.enabled=false"]);
    let o = rbm_vmc(&off_args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(read_json(&off.join("result.json"))["observables"].is_null());
    assert!(!off.join("density.csv").exists());

    // One particle has no pairs: no pair.csv, and the files listed are those written.
    let one = dir.join("one");
    let mut args = args.to_vec();
    args[2] = one.to_str().unwrap();
    args.extend([
        "--set",
        "system.particles=1",
        "--set",
        "system.interaction=false",
    ]);
    let o = rbm_vmc(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let files = &read_json(&one.join("result.json"))["observables"]["files"];
    assert!(!one.join("pair.csv").exists());
    for file in files.as_array().unwrap() {
        assert!(one.join(file.as_str().unwrap()).exists(), "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Closed shells of non-interacting fermions (Slater determinants, the exact state): rho(r)
/// is twice the sum of the occupied orbitals' densities, the reference density.svg draws.
#[test]
fn closed_shell_fermions_have_the_shell_density() {
    let c = fermion_case(
        6,
        2,
        ("metropolis", "single"),
        json!({"walkers": 128, "seed": 61, "sampler": {"step": 2.5}}),
    );
    let mut engine = cpu(&c);
    let params = rbm_vmc::driver::initial_params(&c).unwrap();
    let (e, o) = observe(&mut engine, &params, 2000);
    assert!((e.energy - 5.0).abs() < 1e-6, "E {}", e.energy);
    let system = c.system();
    let h = &o.radial;
    let expected = bin_averages(
        h,
        |r| system.non_interacting_density(r).unwrap(),
        |r| 2.0 * PI * r,
    );
    let volume = |i: usize| shell(2, i as f64 * h.width, (i + 1) as f64 * h.width);
    let (chi2, bins) = chi_square(h, &expected, |i| volume(i) * h.samples);
    eprintln!("fermions: rho chi2 {chi2:.1} / {bins}");
    assert_chi_square("6 fermions rho(r)", chi2, bins);
    let v = &o.virial_ratio;
    assert_within("6 fermions virial", v.value, 1.0, v.error, 4.5);
}

/// One of the scalars an `Observed` reports.
type Part = fn(&Observed) -> Value;

/// The observables' error bars against the spread of independent runs where the correlation
/// time is long beside the time blocks (two electrons in 3D at omega = 0.1, importance
/// sampling at dt = 0.05: 32 blocks of 62 measurements, the energy's tau near 90): over K
/// runs of 8 walkers, the mean reported error must match the standard deviation of the
/// estimates, within 4 times that ratio's own sampling spread, 1 / sqrt(2 (K - 1)). The
/// jackknife over the time blocks alone reported 0.51-0.58 of the spread here; with the
/// walker-means error the ratios are 0.97-1.07.
#[test]
fn observables_error_bars_match_the_spread_of_independent_runs() {
    const K: usize = 128;
    let runs: Vec<(Estimate, Observed)> = (0..K)
        .map(|seed| {
            let c = config(json!({
                "system": {"particles": 2, "dims": 3, "omega": 0.1, "interaction": true},
                "wavefunction": {"form": "direct", "sigma": "auto", "hidden": 2},
                "sampler": {"kind": "importance", "moves": "all", "dt": 0.05},
                "walkers": 8, "threads": 1, "seed": 900 + seed,
            }));
            let mut engine = cpu(&c);
            let params = zero_params(&c);
            // Thermalised far beyond the slow relaxation of the radii.
            engine.sample(&params, 8000, Measure::Nothing, &()).unwrap();
            observe(&mut engine, &params, 2000)
        })
        .collect();
    let tau = runs.iter().map(|(e, _)| e.tau).sum::<f64>() / K as f64;
    eprintln!("energy's tau {tau:.1} measurements");
    let tolerance = 4.0 / (2.0 * (K as f64 - 1.0)).sqrt();
    // Not the virial ratio: at zero parameters its denominator comes near zero.
    let parts: [(&str, Part); 6] = [
        ("kinetic", |o| o.kinetic),
        ("trap", |o| o.trap),
        ("interaction", |o| o.interaction),
        ("<1/r_ij>", |o| o.inverse_pair_distance.unwrap()),
        ("<r^2>", |o| o.square_radius),
        ("<r_ij>", |o| o.pair_distance.unwrap()),
    ];
    let mut failures = Vec::new();
    for (name, part) in parts {
        let values: Vec<f64> = runs.iter().map(|(_, o)| part(o).value).collect();
        let mean = values.iter().sum::<f64>() / K as f64;
        let spread =
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (K - 1) as f64).sqrt();
        let reported = runs.iter().map(|(_, o)| part(o).error).sum::<f64>() / K as f64;
        let ratio = reported / spread;
        eprintln!("{name}: mean error {reported:.3e}, spread {spread:.3e}, ratio {ratio:.3}");
        if (ratio - 1.0).abs() > tolerance {
            failures.push(format!("{name} {ratio:.3}"));
        }
    }
    assert!(
        failures.is_empty(),
        "error / spread outside 1 +- {tolerance:.3}: {failures:?}"
    );
}
