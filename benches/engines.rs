//! Walker-steps per second of the engines on the default system (P = 2, D = 2, N = 2),
//! brute-force Metropolis with E_L and every gradient sum measured each step.
//! `cargo bench --bench engines`; the program's own `rbm-vmc bench` covers more sizes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rbm_vmc::config::Config;
use rbm_vmc::driver::initial_params;
use rbm_vmc::engine::gpu::choose;
use rbm_vmc::engine::{CpuEngine, Engine, EngineSpec, GpuEngine, Measure};

const WALKERS: u32 = 4096;
const STEPS: u32 = 64;

fn config(measure_every: u32) -> Config {
    let mut overrides = vec![
        format!("walkers={WALKERS}"),
        "sampler.kind=metropolis".to_string(),
    ];
    overrides.push(format!("sampler.measure_every={measure_every}"));
    Config::load(None, &overrides).expect("valid bench config")
}

fn cpu_engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu");
    group.throughput(Throughput::Elements(WALKERS as u64 * STEPS as u64));
    group.sample_size(20);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores] {
        for every in [1, 4] {
            let config = config(every);
            let params = initial_params(&config).unwrap();
            let mut engine = CpuEngine::new(EngineSpec::from_config(&config), threads).unwrap();
            engine.sample(&params, 100, Measure::Nothing, &()).unwrap();
            group.bench_function(format!("threads={threads}/measure_every={every}"), |b| {
                b.iter(|| engine.sample(&params, STEPS, Measure::Energy, &()).unwrap())
            });
        }
    }
    group.finish();
}

/// One `sample` call: the dispatches, the on-device reduction and the readback, on the
/// adapter `auto` would take (or lavapipe when that is all there is).
fn gpu_engine(c: &mut Criterion) {
    let Some(adapter) = choose(None, true, 0) else {
        eprintln!("no GPU adapter: skipping the GPU benchmark");
        return;
    };
    let mut group = c.benchmark_group(format!("gpu/{}", adapter.get_info().name));
    group.sample_size(20);
    for walkers in [WALKERS, 1 << 16] {
        group.throughput(Throughput::Elements(walkers as u64 * STEPS as u64));
        let mut config = config(1);
        config.walkers = walkers;
        let params = initial_params(&config).unwrap();
        let mut engine = GpuEngine::new(EngineSpec::from_config(&config), &adapter, None).unwrap();
        engine.sample(&params, 100, Measure::Nothing, &()).unwrap();
        group.bench_function(format!("walkers={walkers}"), |b| {
            b.iter(|| engine.sample(&params, STEPS, Measure::Energy, &()).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, cpu_engine, gpu_engine);
criterion_main!(benches);
