//! The cost of the observables in production, robust to a busy machine: the same engine
//! alternates production calls with and without observing (config `observables.enabled`
//! stays on, so the kernels are the same), and the fastest of each kind is compared, by the
//! process's CPU time (every thread, lavapipe's included), which other jobs on a busy machine
//! disturb far less than the wall time. The wall time is printed as well: on a real GPU the
//! work is on the device, and the wall time is the figure that counts.
//! `cargo run --release --example observables_overhead -- [cpu|gpu] [KEY=VALUE]...`

use rbm_vmc::config::Config;
use rbm_vmc::driver::cpu_engine;
use rbm_vmc::driver::initial_params;
use rbm_vmc::engine::gpu::choose;
use rbm_vmc::engine::{Engine, EngineSpec, GpuEngine, Measure};
use std::time::Instant;

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
            Box::new(GpuEngine::new(spec, &adapter, &config.gpu).unwrap())
        }
        _ => Box::new(cpu_engine(spec, &config, config.threads.max(1)).unwrap()),
    };
    let params = initial_params(&config).unwrap();
    let steps = config.production.steps;
    engine.sample(&params, 200, Measure::Nothing, &()).unwrap();
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7usize)
        .max(1);
    // [observing][clock]: clock 0 is the process CPU time, 1 the wall time.
    let mut times: [[Vec<f64>; 2]; 2] = Default::default();
    for _ in 0..rounds {
        for observing in [false, true] {
            let measure = if observing {
                Measure::Production
            } else {
                Measure::Energy
            };
            let (cpu, wall) = (cpu_seconds(), Instant::now());
            engine.sample(&params, steps, measure, &()).unwrap();
            times[observing as usize][0].push(cpu_seconds() - cpu);
            times[observing as usize][1].push(wall.elapsed().as_secs_f64());
        }
    }
    println!(
        "{} ({}): {} walkers x {steps} steps, {rounds} rounds",
        engine.describe(),
        overrides.join(" "),
        config.walkers,
    );
    // Each round's pair ran back to back: the median of their ratios is robust to a machine
    // whose speed drifts between rounds.
    let mut paired: Vec<f64> = (0..rounds)
        .map(|r| times[1][0][r] / times[0][0][r])
        .collect();
    paired.sort_by(f64::total_cmp);
    println!(
        "  CPU time, paired: median overhead {:+.1} % (rounds {:+.1} % .. {:+.1} %)",
        100.0 * (paired[rounds / 2] - 1.0),
        100.0 * (paired[0] - 1.0),
        100.0 * (paired[rounds - 1] - 1.0),
    );
    for (clock, name) in ["CPU time", "wall time"].iter().enumerate() {
        let [off, on] = [&mut times[0][clock].clone(), &mut times[1][clock].clone()].map(|v| {
            v.sort_by(f64::total_cmp);
            (v[0], v[v.len() / 2])
        });
        println!(
            "  {name}: fastest without {:.4} s, with {:.4} s: overhead {:+.1} %; medians {:.4} s, \
             {:.4} s: {:+.1} %",
            off.0,
            on.0,
            100.0 * (on.0 / off.0 - 1.0),
            off.1,
            on.1,
            100.0 * (on.1 / off.1 - 1.0),
        );
    }
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
