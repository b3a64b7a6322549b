//! `sampler.dt` and `sampler.step` = "auto" (the default): tuned during thermalisation to the
//! sampler's target acceptance, the same value for the same config and seed, on either
//! engine, and recorded in result.json and history.csv.

mod common;

use common::{rbm_vmc, read_json, scratch, text};
use rbm_vmc::driver::target_acceptance;
use rbm_vmc::sampler::SamplerKind;
use serde_json::Value;

/// `sample` of the two-electron dot with `kind` on `engine`; its result.json.
fn sample(dir: &std::path::Path, name: &str, kind: &str, engine: &str, omega: f64) -> Value {
    let out = dir.join(name);
    let set = [
        "walkers=256".to_string(),
        "sampler.thermalisation=1200".into(),
        "production.steps=400".into(),
        format!("sampler.kind={kind}"),
        format!("system.omega={omega}"),
    ];
    let mut args = vec!["sample", "--out", out.to_str().unwrap(), "--engine", engine];
    for s in &set {
        args.extend(["--set", s]);
    }
    let o = rbm_vmc(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    read_json(&out.join("result.json"))
}

#[test]
fn auto_step_sizes_reach_their_target_acceptance_and_are_reproducible() {
    let dir = scratch("tuning");
    for (kind, key, sampler) in [
        ("importance", "dt", SamplerKind::Importance),
        ("metropolis", "step", SamplerKind::Metropolis),
    ] {
        let target = target_acceptance(sampler);
        // A trap whose time and length scales differ tenfold from the old fixed defaults'.
        for omega in [1.0, 0.1] {
            let first = sample(&dir, &format!("{kind}-{omega}-a"), kind, "cpu", omega);
            let tuned = &first["tuned"];
            assert_eq!(tuned["key"], format!("sampler.{key}"));
            let value = tuned["value"].as_f64().unwrap();
            // The config in result.json holds the value, so `sample --from` reuses it.
            assert_eq!(first["config"]["sampler"][key].as_f64(), Some(value));
            let acceptance = first["acceptance"].as_f64().unwrap();
            assert!(
                (acceptance - target).abs() < 0.05,
                "{kind} at omega {omega}: {key} = {value} gives acceptance {acceptance}, not \
                 about {target}"
            );
            assert!(first.get("warning").is_none(), "{first}");
            let second = sample(&dir, &format!("{kind}-{omega}-b"), kind, "cpu", omega);
            assert_eq!(second["tuned"]["value"], tuned["value"], "reproducible");
            assert_eq!(second["energy"], first["energy"], "the same chain");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The GPU engine (lavapipe where there is no GPU) tunes to the CPU engine's value: its
/// acceptance counts differ by a few f32 roundings, which the bisection's decisions do not
/// see.
#[test]
fn both_engines_tune_to_the_same_value() {
    if common::adapter().is_none() {
        return;
    }
    let dir = scratch("tuning-gpu");
    for kind in ["importance", "metropolis"] {
        let cpu = sample(&dir, &format!("{kind}-cpu"), kind, "cpu", 1.0);
        let gpu = sample(&dir, &format!("{kind}-gpu"), kind, "gpu", 1.0);
        assert_eq!(cpu["tuned"]["value"], gpu["tuned"]["value"], "{kind}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// history.csv gives each iteration's step size, the tuned one.
#[test]
fn history_records_the_tuned_step_size() {
    let dir = scratch("tuning-history");
    let out = dir.join("run");
    let mut args = vec!["run", "--out", out.to_str().unwrap()];
    args.extend(common::TINY);
    let o = rbm_vmc(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let value = read_json(&out.join("result.json"))["tuned"]["value"]
        .as_f64()
        .unwrap();
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let mut lines = history.lines();
    assert!(lines.next().unwrap().ends_with(",seconds,step_size"));
    for line in lines {
        let last: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        assert_eq!(last, value, "{line}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
