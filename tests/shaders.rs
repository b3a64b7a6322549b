//! Single shader functions at fixed points against their f64 Rust twins: a probe kernel,
//! appended to the walk kernel's assembled source, evaluates ln psi, the drift, the local
//! energy and the O_i where the test puts the walker, and the CPU `Walker` evaluates the
//! same. Every value must agree within F32_TOLERANCE relative to max(1, |f64 value|), far
//! below what a wrong term or index gives.

mod common;

use common::{adapter, config};
use rbm_vmc::Params;
use rbm_vmc::config::Config;
use rbm_vmc::driver::initial_params;
use rbm_vmc::engine::EngineSpec;
use rbm_vmc::physics::Walker;
use rbm_vmc::testing::{
    Gpu, Job, KernelShape, OrbitalLoops, native_multiply_pipeline, walk_source,
};
use serde_json::json;
use wgpu::util::DeviceExt;

/// Agreement asked of f32 against f64, relative to max(1, |value|): 32 f32 epsilons, ten
/// times the largest difference seen on lavapipe (3e-7, ln psi with the Jastrow factor).
const F32_TOLERANCE: f64 = 4e-6;

/// Per point: ln psi, E_L and the drift (M values) into `out`, the O_i into the metric rows
/// (`o_rows`, a row of K per point) through the kernel's own `accumulate`.
const PROBE: &str = r"
@group(1) @binding(0) var<storage, read> points: array<f32>;
@group(1) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(1)
fn probe(@builtin(workgroup_id) wid: vec3<u32>) {
    let point = wid.x;
    if (point >= job.walkers) {
        return;
    }
    begin();
    for (var m = 0u; m < M; m++) {
        x[m] = points[point * M + m];
    }
    refresh();
    let base = point * (2u + M);
    out[base] = ln_psi;
    for (var m = 0u; m < M; m++) {
        out[base + 2u + m] = g[m];
    }
    out[base + 1u] = local_energy();
    o_row = point;
    accumulate(0.0);
}
";

/// What the probe measures at one point.
#[derive(Debug)]
struct Values {
    ln_psi: f64,
    energy: f64,
    drift: Vec<f64>,
    o: Vec<f64>,
}

/// Fixed parameters away from every symmetric point: the config's initial ones, shifted by a
/// deterministic pattern of +-0.15.
fn fixed_params(config: &Config) -> Params {
    let params = initial_params(config).unwrap();
    let theta = params
        .theta()
        .iter()
        .enumerate()
        .map(|(i, t)| t + 0.15 * (1.7 * i as f64 + 0.4).sin())
        .collect();
    Params::from_theta(params.layout(), theta).unwrap()
}

/// Fixed positions of spread about 1, distinct for every point and coordinate.
fn fixed_points(points: usize, m: usize) -> Vec<f64> {
    (0..points * m)
        .map(|i| 1.1 * (0.9 * i as f64 + 0.3).sin() + 0.2 * (i % 3) as f64)
        .collect()
}

/// Fixed 2-D positions of `particles` for many fermions: a sunflower spiral of radius about
/// sqrt(particles) (the closed shells' extent), turned and stretched differently for every
/// point. Clustered points like `fixed_points` put 12 or more fermions next to a node of the
/// determinants, where E_L is a cancellation that f32 cannot follow.
fn spiral_points(points: usize, particles: usize) -> Vec<f64> {
    (0..points)
        .flat_map(|p| {
            (0..particles).flat_map(move |k| {
                let r = (0.8 + 0.05 * p as f64) * (k as f64 + 0.5).sqrt();
                let angle = 2.39996 * k as f64 + 0.7 * p as f64;
                [r * angle.cos(), r * angle.sin()]
            })
        })
        .collect()
}

fn cpu_values(spec: &EngineSpec, params: &Params, x: &[f64]) -> Values {
    let mut walker = Walker::new(&spec.wavefunction, &spec.system, params);
    walker.load(x);
    let (ln_psi, drift) = (walker.ln_psi(), walker.drift().to_vec());
    let energy = walker.local_energy();
    Values {
        ln_psi,
        energy,
        drift,
        o: walker.o().to_vec(),
    }
}

fn storage(gpu: &Gpu, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents,
            usage: wgpu::BufferUsages::STORAGE | usage,
        })
}

fn read(gpu: &Gpu, buffer: &wgpu::Buffer) -> Vec<f64> {
    let words = read_words(gpu, buffer);
    words.iter().map(|&v| f32::from_bits(v) as f64).collect()
}

fn read_words(gpu: &Gpu, buffer: &wgpu::Buffer) -> Vec<u32> {
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    gpu.queue.submit([encoder.finish()]);
    staging.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    gpu.wait("reading the probe").unwrap();
    let view = staging.slice(..).get_mapped_range().unwrap();
    bytemuck::cast_slice(&view).to_vec()
}

/// The probe's values at `points` (M coordinates each) on the device, the kernel shaped as
/// `shape` says.
fn gpu_values(
    gpu: &Gpu,
    (spec, shape): (&EngineSpec, KernelShape),
    params: &Params,
    points: &[f64],
) -> Vec<Values> {
    let (m, k) = (spec.coordinates(), spec.parameters());
    let count = points.len() / m;
    let source = walk_source(spec, shape) + PROBE;
    let device = &gpu.device;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("probe"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("probe"),
        layout: None,
        module: &module,
        entry_point: Some("probe"),
        compilation_options: Default::default(),
        cache: None,
    });
    let job = Job {
        walkers: count as u32,
        slater_n: spec.wavefunction.slater.as_ref().map_or(0, |s| s.n as u32),
        ..Default::default()
    };
    let job = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::bytes_of(&job),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let none = wgpu::BufferUsages::empty();
    // Whole vec4s, as a uniform binding (theta_uniform.wgsl) needs.
    let mut theta = f32s(params.theta());
    theta.resize(k.div_ceil(4) * 4, 0.0);
    let theta = storage(
        gpu,
        bytemuck::cast_slice(&theta),
        wgpu::BufferUsages::UNIFORM,
    );
    let copy = wgpu::BufferUsages::COPY_SRC;
    let o_rows = storage(gpu, bytemuck::cast_slice(&vec![0f32; count * k]), copy);
    let input = storage(gpu, bytemuck::cast_slice(&f32s(points)), none);
    let out = storage(
        gpu,
        bytemuck::cast_slice(&vec![0f32; count * (2 + m)]),
        copy,
    );
    let bind = |group: u32, entries: &[(u32, &wgpu::Buffer)]| {
        let entries: Vec<_> = entries
            .iter()
            .map(|&(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(group),
            entries: &entries,
        })
    };
    // The walk kernel's bindings the probed functions use: job, theta and the metric rows.
    let kernel = bind(0, &[(0, &job), (1, &theta), (7, &o_rows)]);
    let probe = bind(1, &[(0, &input), (1, &out)]);
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &kernel, &[]);
        pass.set_bind_group(1, &probe, &[]);
        pass.dispatch_workgroups(count as u32, 1, 1);
    }
    gpu.queue.submit([encoder.finish()]);
    if let Some(e) = pollster::block_on(scope.pop()) {
        panic!("the probe kernel does not build: {e}");
    }
    let (out, o) = (read(gpu, &out), read(gpu, &o_rows));
    (0..count)
        .map(|p| {
            let row = &out[p * (2 + m)..(p + 1) * (2 + m)];
            Values {
                ln_psi: row[0],
                energy: row[1],
                drift: row[2..].to_vec(),
                o: o[p * k..(p + 1) * k].to_vec(),
            }
        })
        .collect()
}

fn assert_close(label: &str, what: &str, gpu: f64, cpu: f64) {
    assert!(
        (gpu - cpu).abs() <= F32_TOLERANCE * cpu.abs().max(1.0),
        "{label}: {what}: f32 {gpu} vs f64 {cpu} (difference {:.2e})",
        gpu - cpu
    );
}

/// The plain RBM (both forms), the Jastrow factor with a trained width, and 6, 12 and 20
/// fermions with the Jastrow factor (the determinants' orbital loops unrolled and looped for
/// 6 and 12; 20 as the engine builds them), each at three fixed points; each also with the
/// parameters in a uniform buffer.
#[test]
fn shader_functions_match_their_f64_twins_at_fixed_points() {
    let Some(adapter) = adapter() else { return };
    let gpu = Gpu::open(&adapter).unwrap();
    let cases = [
        (
            "RBM, direct form",
            json!({"system": {"particles": 3, "dims": 2}, "wavefunction": {"hidden": 3}}),
        ),
        (
            "RBM, sqrt form, 3-D",
            json!({"system": {"particles": 2, "dims": 3},
                   "wavefunction": {"hidden": 4, "form": "sqrt", "sigma": 0.8}}),
        ),
        (
            "RBM with Jastrow factor and trained width",
            json!({"system": {"particles": 3, "dims": 2},
                   "wavefunction": {"jastrow": "pade", "train_sigma": true, "sigma": 0.9}}),
        ),
        (
            "RBM with the simple Jastrow factor, 3-D",
            json!({"system": {"particles": 3, "dims": 3},
                   "wavefunction": {"jastrow": "simple", "train_sigma": true, "sigma": 0.9}}),
        ),
        (
            "six fermions with the simple Jastrow factor (two betas)",
            json!({"system": {"particles": 6, "dims": 2, "statistics": "fermions"},
                   "wavefunction": {"jastrow": "simple"}}),
        ),
    ];
    let fermions = [6, 12, 20].map(|n| {
        let label = format!("{n} fermions with Jastrow factor");
        let value = json!({"system": {"particles": n, "dims": 2, "statistics": "fermions"},
                           "wavefunction": {"jastrow": "pade"}});
        (label, value)
    });
    let cases = cases.map(|(label, value)| (label.to_string(), value));
    for (label, value) in cases.into_iter().chain(fermions) {
        let config = config(value);
        let spec = EngineSpec::from_config(&config);
        let params = fixed_params(&config);
        let m = spec.coordinates();
        let points = match spec.wavefunction.slater {
            Some(_) => spiral_points(3, spec.system.particles),
            None => fixed_points(3, m),
        };
        let default = OrbitalLoops::choose(&spec, None);
        let mut variants: Vec<KernelShape> = match &spec.wavefunction.slater {
            Some(_) if default == OrbitalLoops::Unrolled => {
                vec![OrbitalLoops::Unrolled.into(), OrbitalLoops::Looped.into()]
            }
            _ => vec![default.into()],
        };
        variants.push(KernelShape {
            uniform_params: true,
            ..default.into()
        });
        for shape in variants {
            let device = gpu_values(&gpu, (&spec, shape), &params, &points);
            for (p, (got, x)) in device.iter().zip(points.chunks(m)).enumerate() {
                let want = cpu_values(&spec, &params, x);
                let label = format!("{label}, {shape:?}, point {p}");
                assert_close(&label, "ln psi", got.ln_psi, want.ln_psi);
                assert_close(&label, "E_L", got.energy, want.energy);
                for (i, (g, w)) in got.drift.iter().zip(&want.drift).enumerate() {
                    assert_close(&label, &format!("drift {i}"), *g, *w);
                }
                assert_eq!(got.o.len(), want.o.len());
                for (i, (g, w)) in got.o.iter().zip(&want.o).enumerate() {
                    assert_close(&label, &format!("O_{i}"), *g, *w);
                }
            }
        }
    }
}

/// Per pair of words (a, b): mul_hi_lo(a, b) (high, low) and the Philox block of the counter
/// (a, b, pair, 7) under the key (b, a).
const RNG_PROBE: &str = r"
@group(0) @binding(20) var<storage, read> words: array<u32>;
@group(0) @binding(21) var<storage, read_write> drawn: array<u32>;

@compute @workgroup_size(1)
fn rng_probe(@builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.x;
    let a = words[2u * i];
    let b = words[2u * i + 1u];
    let product = mul_hi_lo(a, b);
    drawn[6u * i] = product.x;
    drawn[6u * i + 1u] = product.y;
    let block = philox(vec4<u32>(a, b, i, 7u), vec2<u32>(b, a));
    for (var k = 0u; k < 4u; k++) {
        drawn[6u * i + 2u + k] = block[k];
    }
}
";

/// Philox's multiplies and blocks on the device match the Rust twins (u64 products,
/// `philox4x32_10`) at words that reach every carry of the 16-bit pieces (zero, one, the
/// halves' edges, the multipliers, the largest word) and a spread of others: in the portable
/// kernel and, where the device takes SPIR-V (Vulkan: lavapipe in CI), with the native
/// multiply (`gpu.native_multiply`).
#[test]
fn philox_on_the_device_matches_its_rust_twin() {
    let Some(adapter) = adapter() else { return };
    let gpu = Gpu::open(&adapter).unwrap();
    if adapter.get_info().backend == wgpu::Backend::Vulkan {
        assert!(gpu.takes_spirv, "a Vulkan device takes SPIR-V kernels");
    }
    let edges = [
        0u32,
        1,
        2,
        0xffff,
        0x1_0000,
        0x1_0001,
        0x7fff_ffff,
        0x8000_0000,
        0xd251_1f53,
        0xcd9e_8d57,
        0xffff_0000,
        0xffff_fffe,
        0xffff_ffff,
    ];
    let mut words: Vec<u32> = edges
        .iter()
        .flat_map(|&a| edges.iter().flat_map(move |&b| [a, b]))
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2 * 256 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        words.push((state >> 32) as u32);
    }
    let pairs = words.len() / 2;
    let source = walk_source(
        &EngineSpec::from_config(&config(json!({}))),
        OrbitalLoops::Looped.into(),
    ) + RNG_PROBE;
    let device = &gpu.device;
    let portable = || {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("rng probe"),
            source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
        });
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("rng probe"),
            layout: None,
            module: &module,
            entry_point: Some("rng_probe"),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let native = || {
        let checks = wgpu::ShaderRuntimeChecks::unchecked();
        native_multiply_pipeline(device, &source, "rng_probe", checks).unwrap()
    };
    let mut variants = vec![("portable", portable())];
    if gpu.takes_spirv {
        variants.push(("native multiply", native()));
    }
    for (label, pipeline) in variants {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let input = storage(
            &gpu,
            bytemuck::cast_slice(&words),
            wgpu::BufferUsages::empty(),
        );
        let zeros = vec![0u32; 6 * pairs];
        let out = storage(
            &gpu,
            bytemuck::cast_slice(&zeros),
            wgpu::BufferUsages::COPY_SRC,
        );
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 20,
                    resource: input.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 21,
                    resource: out.as_entire_binding(),
                },
            ],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(pairs as u32, 1, 1);
        }
        gpu.queue.submit([encoder.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            panic!("{label}: the probe kernel does not build: {e}");
        }
        gpu.check(label).unwrap();
        let drawn = read_words(&gpu, &out);
        for (i, pair) in words.chunks(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            let product = a as u64 * b as u64;
            let got = &drawn[6 * i..6 * i + 6];
            assert_eq!(
                got[..2],
                [(product >> 32) as u32, product as u32],
                "{label}: mul_hi_lo({a:#x}, {b:#x})"
            );
            let block = rbm_vmc::rng::philox4x32_10([a, b, i as u32, 7], [b, a]);
            assert_eq!(got[2..], block, "{label}: Philox block of ({a:#x}, {b:#x})");
        }
    }
}
