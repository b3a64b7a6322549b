//! The cost of the observables in production, robust to a busy machine: the same engine
//! alternates production calls with and without observing (config `observables.enabled`
//! stays on, so the kernels are the same), and the fastest of each kind is compared, by the
//! process's CPU time (every thread, lavapipe's included), which other jobs on a busy machine
//! disturb far less than the wall time.
//! `cargo run --release --example observables_overhead -- [cpu|gpu] [KEY=VALUE]...`

use rbm_vmc::config::Config;
use rbm_vmc::driver::initial_params;
use rbm_vmc::engine::gpu::choose;
use rbm_vmc::engine::{CpuEngine, Engine, EngineSpec, GpuEngine, Measure};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let engine_kind = args.first().map_or("cpu", String::as_str).to_string();
    let mut overrides = vec![
        "walkers=1024".to_string(),
        "production.steps=2048".to_string(),
    ];
    overrides.extend(args.iter().skip(1).cloned());
    let config = Config::load(None, &overrides).expect("valid config");
    let spec = EngineSpec::from_config(&config);
    let mut engine: Box<dyn Engine> = match engine_kind.as_str() {
        "gpu" => {
            let adapter = choose(None, true, 0).expect("a GPU adapter");
            Box::new(GpuEngine::new(spec, &adapter, config.gpu.steps_per_dispatch).unwrap())
        }
        _ => Box::new(CpuEngine::new(spec, config.threads.max(1)).unwrap()),
    };
    let params = initial_params(&config).unwrap();
    let steps = config.production.steps;
    engine.sample(&params, 200, Measure::Nothing, &()).unwrap();
    let rounds = 7;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for observing in [false, true] {
            engine.observe(observing);
            let start = cpu_seconds();
            engine.sample(&params, steps, Measure::Energy, &()).unwrap();
            let seconds = cpu_seconds() - start;
            if observing { &mut on } else { &mut off }.push(seconds);
        }
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{} ({}): {} walkers x {steps} steps, {rounds} rounds, CPU time; fastest without {:.4} s, \
         with {:.4} s: overhead {:+.1} %; medians {:.4} s, {:.4} s: {:+.1} %",
        engine.describe(),
        overrides.join(" "),
        config.walkers,
        min(&off),
        min(&on),
        100.0 * (min(&on) / min(&off) - 1.0),
        median(&mut off),
        median(&mut on),
        100.0 * (median(&mut on) / median(&mut off) - 1.0),
    );
}

/// CPU time of the whole process so far.
fn cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "the process CPU clock is readable");
    t.tv_sec as f64 + 1e-9 * t.tv_nsec as f64
}
