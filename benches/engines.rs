//! Walker-steps per second of the engines on the default system (P = 2, D = 2, N = 2),
//! brute-force Metropolis with E_L and every gradient sum measured each step (the CPU engine's
//! lanes on each instruction set the CPU has, and its scalar path); and the cost of
//! the wave-function factors (Jastrow, Slater determinants of 2..20 electrons).
//! `cargo bench --bench engines [GROUP]`; the program's own `rbm-vmc bench` covers more sizes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rbm_vmc::config::Config;
use rbm_vmc::driver::initial_params;
use rbm_vmc::engine::gpu::choose;
use rbm_vmc::engine::{CpuEngine, Engine, EngineSpec, GpuEngine, Measure, Simd};

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
    // The lane engine on each instruction set this CPU has, and the scalar engine.
    let mut paths: Vec<Option<Simd>> = [Simd::Avx512, Simd::Avx2, Simd::Baseline]
        .into_iter()
        .filter(|s| s.available())
        .map(Some)
        .collect();
    paths.push(None);
    for threads in [1, cores] {
        for every in [1, 4] {
            for &simd in &paths {
                let config = config(every);
                let params = initial_params(&config).unwrap();
                let spec = EngineSpec::from_config(&config);
                let mut engine = CpuEngine::new(spec, threads)
                    .unwrap()
                    .with_lanes(simd)
                    .unwrap();
                engine.sample(&params, 100, Measure::Nothing, &()).unwrap();
                let path = simd.map_or("scalar", Simd::name);
                let name = format!("threads={threads}/measure_every={every}/{path}");
                group.bench_function(name, |b| {
                    b.iter(|| engine.sample(&params, STEPS, Measure::Energy, &()).unwrap())
                });
            }
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
        let mut engine =
            GpuEngine::new(EngineSpec::from_config(&config), &adapter, &config.gpu).unwrap();
        engine.sample(&params, 100, Measure::Nothing, &()).unwrap();
        group.bench_function(format!("walkers={walkers}"), |b| {
            b.iter(|| engine.sample(&params, STEPS, Measure::Energy, &()).unwrap())
        });
    }
    group.finish();
}

/// One step (a sweep, for single-particle moves) of every walker with measurement, per wave
/// function: the default run's settings with and without the Jastrow factor, then closed
/// shells of 2..20 electrons (Slater x RBM x Jastrow, single-particle moves), on one CPU
/// thread and on the GPU adapter.
fn wavefunctions(c: &mut Criterion) {
    const WALKERS: u32 = 1024;
    const STEPS: u32 = 8;
    let mut group = c.benchmark_group("wavefunctions");
    group.throughput(Throughput::Elements(WALKERS as u64 * STEPS as u64));
    group.sample_size(10);
    let fermions = |n: u32| {
        vec![
            format!("system.particles={n}"),
            "system.statistics=fermions".into(),
            "wavefunction.jastrow=pade".into(),
            "sampler.moves=single".into(),
            "sampler.dt=0.1".into(),
        ]
    };
    let cases = [
        ("plain", vec![]),
        ("jastrow", vec!["wavefunction.jastrow=pade".to_string()]),
        ("fermions-2", fermions(2)),
        ("fermions-6", fermions(6)),
        ("fermions-12", fermions(12)),
        ("fermions-20", fermions(20)),
    ];
    let adapter = choose(None, true, 0);
    for (name, mut overrides) in cases {
        overrides.push(format!("walkers={WALKERS}"));
        let config = Config::load(None, &overrides).expect("valid bench config");
        let params = initial_params(&config).unwrap();
        let spec = EngineSpec::from_config(&config);
        let mut engines: Vec<(&str, Box<dyn Engine>)> =
            vec![("cpu1", Box::new(CpuEngine::new(spec.clone(), 1).unwrap()))];
        if let Some(adapter) = &adapter {
            engines.push((
                "gpu",
                Box::new(GpuEngine::new(spec, adapter, &config.gpu).unwrap()),
            ));
        }
        for (engine_name, mut engine) in engines {
            engine.sample(&params, 20, Measure::Nothing, &()).unwrap();
            group.bench_function(format!("{name}/{engine_name}"), |b| {
                b.iter(|| engine.sample(&params, STEPS, Measure::Energy, &()).unwrap())
            });
        }
    }
    group.finish();
}

/// The cost of the observables in a production call (one long call, measure_every = 1:
/// every step measured): the config with observables switched off, on but not observing
/// (what an optimisation iteration runs), and observing (production), on one CPU thread and
/// the GPU adapter.
fn observables(c: &mut Criterion) {
    const WALKERS: u32 = 1024;
    const STEPS: u32 = 2048;
    let mut group = c.benchmark_group("observables");
    group.throughput(Throughput::Elements(WALKERS as u64 * STEPS as u64));
    group.sample_size(10);
    let adapter = choose(None, true, 0);
    for engine_kind in ["cpu", "gpu"] {
        for (label, enabled, observing) in [
            ("off", false, false),
            ("on-not-observing", true, false),
            ("observing", true, true),
        ] {
            let mut config = config(1);
            config.walkers = WALKERS;
            config.observables.enabled = enabled;
            let params = initial_params(&config).unwrap();
            let spec = EngineSpec::from_config(&config);
            let mut engine: Box<dyn Engine> = match (engine_kind, &adapter) {
                ("cpu", _) => Box::new(CpuEngine::new(spec, 1).unwrap()),
                (_, Some(a)) => Box::new(GpuEngine::new(spec, a, &config.gpu).unwrap()),
                _ => continue,
            };
            engine.sample(&params, 100, Measure::Nothing, &()).unwrap();
            let measure = if observing {
                Measure::Production
            } else {
                Measure::Energy
            };
            group.bench_function(format!("{engine_kind}/{label}"), |b| {
                b.iter(|| engine.sample(&params, STEPS, measure, &()).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, cpu_engine, gpu_engine, wavefunctions, observables);
criterion_main!(benches);
