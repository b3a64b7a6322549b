//! The GPU engine: walkers resident in storage buffers for the whole run, the Markov loop
//! inside the walk kernel (many steps per dispatch), sums reduced on the device, and one
//! small readback per `sample` call (or per FLUSH_DISPATCHES dispatches on long calls) that
//! the host finishes in f64. Set up in three parts, as wgpu's `repeated_compute` example
//! does: the sizes (`BufferSizes`, computed once) and the buffers allocated by them, the
//! kernels bound to those buffers, and the timestamp queries.
//!
//! A `sample` call is planned, then executed: `plan` lays out its dispatches (jobs, flags,
//! readbacks) without a device, `execute` encodes and submits them and adds each batch's
//! readback to the moments. What a call measures beyond the energy lives beside: the metric
//! for SR in `metric`, the observables in `observables`, the device reductions in `reduce`.

mod device;
mod dmc;
pub(crate) mod layout;
mod metric;
mod observables;
mod plan;
mod reduce;
pub(crate) mod shader;
pub(crate) mod spirv;

pub use device::{AdapterSummary, Gpu, NO_ADAPTER_HELP, adapters, choose, devices_report};
pub use dmc::GpuDmc;

use wgpu::util::DeviceExt;

use self::layout::{HIST_COPIES, Job, components, reduced_components};
use self::metric::MetricBuffers;
use self::plan::{Batch, Call, Dispatch, call_measurements, plan};
use self::reduce::{Reduction, SPAN};
use self::shader::{KernelShape, OrbitalLoops, WORKGROUP};
use super::observables::{MAX_BLOCKS, SCALARS};
use super::{
    Engine, EngineSpec, Measure, Moments, Progress, WalkerState, check_host_memory, check_state,
};
use crate::config::GpuConfig;
use crate::engine::cpu::initial_position;
use crate::error::Error;
use crate::physics::Params;

/// Dispatches between readbacks: bounds how long f32 partial sums accumulate on the device.
const FLUSH_DISPATCHES: u32 = 16;

/// Largest parameter count the kernel's per-walker accumulators are sized for.
pub const MAX_GPU_PARAMETERS: usize = 1024;

/// Series entries (workgroups x measurements) one dispatch may write.
const MAX_SERIES_PARTS: u64 = 1 << 24;

/// Every size the engine's buffers and dispatches follow, computed once from the spec and
/// the adapter (as vello's `BufferSizes`): the limit checks and the allocation read the
/// same numbers.
struct BufferSizes {
    walkers: u64,
    /// Coordinates per walker.
    coordinates: u64,
    /// Workgroups holding walkers, and their 2-D grid.
    groups: u32,
    grid: (u32, u32),
    /// Components of a workgroup's partial sums (`layout::components`).
    components: u64,
    steps_per_dispatch: u32,
    /// Measurements one dispatch holds at most.
    measurements: u32,
    /// Bytes of the observables' histogram counts.
    hist: u64,
    /// Values per walker of the walker sums: E_L, then with observables their scalars.
    walker_values: u64,
}

impl BufferSizes {
    fn new(
        spec: &EngineSpec,
        adapter: &AdapterSummary,
        limits: &wgpu::Limits,
        options: &GpuConfig,
    ) -> Self {
        let groups = spec.walkers.div_ceil(WORKGROUP);
        let every = spec.sampler.measure_every;
        let steps = options.steps_per_dispatch.unwrap_or_else(|| {
            let workgroup_sums = options.workgroup_sums.unwrap_or(false);
            let cpu_loops =
                (!adapter.is_gpu).then(|| shader::loop_iterations_per_step(spec, workgroup_sums));
            auto_steps(spec.walkers, every, cpu_loops)
        });
        let most = (MAX_SERIES_PARTS / groups as u64).max(1) as u32;
        // A dispatch of s steps holds at most s / K + 1 measurements.
        let steps = steps.min(most.saturating_sub(1).max(1) * every);
        Self {
            walkers: spec.walkers as u64,
            coordinates: spec.coordinates() as u64,
            groups,
            grid: grid(groups, limits.max_compute_workgroups_per_dimension),
            components: components(spec) as u64,
            steps_per_dispatch: steps,
            measurements: steps / every + 1,
            hist: spec.observables.as_ref().map_or(4, |o| {
                MAX_BLOCKS as u64 * HIST_COPIES as u64 * o.bins() as u64 * 4
            }),
            walker_values: 1 + spec.observables.as_ref().map_or(0, |_| SCALARS as u64),
        }
    }

    /// The buffers that grow with the walkers: what they hold, and their bytes.
    fn per_walker(&self) -> [(&'static str, u64); 4] {
        let groups = self.groups as u64;
        [
            ("walker positions", self.walkers * self.coordinates * 4),
            ("walker sums", self.walkers * self.walker_values * 4),
            ("per-workgroup sums", groups * self.components * 4),
            (
                "per-workgroup series",
                groups * self.measurements as u64 * 4,
            ),
        ]
    }

    /// Refuses buffers beyond the adapter's limit per buffer.
    fn check(&self, adapter: &AdapterSummary, limits: &wgpu::Limits) -> Result<(), Error> {
        let limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let walkers = self.walkers;
        for (what, bytes) in self.per_walker() {
            if bytes > limit {
                let per_walker = bytes / walkers.max(1);
                return Err(Error::input(format!(
                    "{walkers} walkers need {bytes} bytes of {what}, beyond this adapter's limit \
                     of {limit} bytes per buffer ({}); use at most {} walkers or the CPU engine",
                    adapter.label(),
                    limit / per_walker.max(1)
                )));
            }
        }
        Ok(())
    }

    /// Series values one readback holds.
    fn series_capacity(&self) -> u64 {
        FLUSH_DISPATCHES as u64 * self.measurements as u64
    }

    fn readback(&self) -> ReadbackLayout {
        ReadbackLayout::new(self.components, self.series_capacity())
    }
}

struct Buffers {
    job: wgpu::Buffer,
    theta: wgpu::Buffer,
    positions: wgpu::Buffer,
    counters: wgpu::Buffer,
    partials_out: wgpu::Buffer,
    series_out: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// The observables' histogram counts (u32, blocks x bins), and their readback.
    hist: wgpu::Buffer,
    hist_readback: wgpu::Buffer,
    /// Bound where the metric's O rows go until a call asks for the metric.
    no_rows: wgpu::Buffer,
    walker_energy: wgpu::Buffer,
    partials: wgpu::Buffer,
    series_parts: wgpu::Buffer,
}

impl Buffers {
    /// Allocates every buffer by `sizes`, the walkers at their initial positions.
    fn new(gpu: &Gpu, spec: &EngineSpec, sizes: &BufferSizes) -> Result<Self, Error> {
        let walkers = sizes.walkers;
        let initial = initial_positions(spec)?;
        let device = &gpu.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let storage = |label: &str, bytes: u64, extra: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(4),
                usage: wgpu::BufferUsages::STORAGE | extra,
                mapped_at_creation: false,
            })
        };
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let mapped = |label: &str, bytes: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let [_, energies, partials, series] = sizes.per_walker().map(|(_, bytes)| bytes);
        let none = wgpu::BufferUsages::empty();
        let buffers = Self {
            job: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("job"),
                size: std::mem::size_of::<Job>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            theta: storage(
                "theta",
                theta_bytes(spec),
                copy | wgpu::BufferUsages::UNIFORM,
            ),
            positions: device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("positions"),
                contents: bytemuck::cast_slice(&initial),
                usage: wgpu::BufferUsages::STORAGE | copy,
            }),
            counters: storage("counters", 8, copy),
            partials_out: storage("partials out", sizes.components * 4, copy),
            series_out: storage("series out", sizes.series_capacity() * 4, copy),
            readback: mapped("readback", sizes.readback().size),
            hist: storage("histograms", sizes.hist, copy),
            hist_readback: mapped("histograms readback", sizes.hist),
            no_rows: storage("no metric rows", 4, none),
            walker_energy: storage("walker sums", energies, copy),
            partials: storage("partials", partials, none),
            series_parts: storage("series parts", series, none),
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::engine(format!(
                "cannot allocate the walker buffers for {walkers} walkers on {}: {e}",
                gpu.summary.label()
            )));
        }
        Ok(buffers)
    }
}

/// The walkers' initial positions, in f32.
fn initial_positions(spec: &EngineSpec) -> Result<Vec<f32>, Error> {
    let walkers = spec.walkers as u64;
    let m = spec.coordinates();
    check_host_memory(
        walkers * m as u64 * 12,
        &format!("the initial positions of {walkers} walkers"),
        "use fewer walkers",
    )?;
    let mut initial = vec![0.0f32; walkers as usize * m];
    let mut x = vec![0.0; m];
    for (w, chunk) in initial.chunks_mut(m).enumerate() {
        initial_position(spec, spec.first_walker + w as u32, &mut x);
        for (dst, src) in chunk.iter_mut().zip(&x) {
            *dst = *src as f32;
        }
    }
    Ok(initial)
}

/// Bytes of the parameters' buffer: K floats, rounded up to whole vec4s for a uniform binding
/// (theta_uniform.wgsl).
fn theta_bytes(spec: &EngineSpec) -> u64 {
    // The most a uniform binding may hold on every adapter (wgpu's downlevel limit).
    const _: () = assert!(MAX_GPU_PARAMETERS * 4 <= 16384);
    spec.parameters().div_ceil(4) as u64 * 16
}

/// A walk kernel with its bindings.
struct Walk {
    pipeline: wgpu::ComputePipeline,
    bind: wgpu::BindGroup,
}

/// Compiles the walk kernel for `spec` and binds `buffers` (with `o_rows` for the metric's O
/// rows) to it.
fn walk_kernel(
    gpu: &Gpu,
    spec: &EngineSpec,
    b: &Buffers,
    o_rows: &wgpu::Buffer,
    build: KernelBuild,
) -> Result<Walk, Error> {
    let pipeline = walker_pipeline(gpu, &shader::walk_source(spec, build.shape), "walk", build)?;
    let bind = walk_bind_group(&gpu.device, &pipeline, b, o_rows);
    Ok(Walk { pipeline, bind })
}

/// How the kernels that move walkers (walk and DMC generation) are built: with or without
/// wgpu's runtime checks, with which orbital loops, and with which of Philox's multiplies.
#[derive(Clone, Copy, Debug)]
pub(super) struct KernelBuild {
    checks: wgpu::ShaderRuntimeChecks,
    shape: KernelShape,
    /// Philox's multiplies native (`spirv`).
    native_multiply: bool,
}

impl KernelBuild {
    /// As the `gpu` options say, else by the size of `spec`'s wave function and what `gpu`
    /// takes.
    pub(super) fn choose(spec: &EngineSpec, options: &GpuConfig, gpu: &Gpu) -> Result<Self, Error> {
        if options.native_multiply == Some(true) && !gpu.takes_spirv {
            return Err(Error::input(format!(
                "gpu.native_multiply = true needs a Vulkan adapter, and {} is not one; leave \
                 the setting out",
                gpu.summary.label()
            )));
        }
        Ok(Self {
            checks: runtime_checks(spec.parameters(), options.runtime_checks),
            shape: KernelShape {
                loops: OrbitalLoops::choose(spec, options.unroll_orbitals),
                uniform_params: options.uniform_params.unwrap_or(false),
                workgroup_sums: options.workgroup_sums.unwrap_or(false),
            },
            native_multiply: options.native_multiply.unwrap_or(gpu.takes_spirv),
        })
    }

    /// What an engine's description says of the multiplies: where they are native.
    pub(super) fn multiply_note(&self) -> &'static str {
        if self.native_multiply {
            ", native multiply"
        } else {
            ""
        }
    }
}

/// The pipeline of entry point `entry` of a walker kernel's `source`, built as `build` says.
fn walker_pipeline(
    gpu: &Gpu,
    source: &str,
    entry: &str,
    build: KernelBuild,
) -> Result<wgpu::ComputePipeline, Error> {
    let device = &gpu.device;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    // SAFETY: wgpu's default runtime checks bound every loop (against hangs) and clamp
    // every index (against out-of-bounds access), which keeps drivers from unrolling loops
    // and can push private arrays to local memory; `build.checks` turns them off up to
    // MAX_UNCHECKED_PARAMETERS (or as `gpu.runtime_checks` says). Our walker kernels are
    // generated for the run: every loop bound is a compile-time constant or a `Job` field
    // the host sets from the same sizes it allocated the buffers with (the walker count, the
    // steps of a dispatch, the Slater block size, the metric's subset and the observables'
    // blocks), every private index is below its constant array length, and naga still
    // validates the module (types, bindings, uniformity) when it is created.
    const NATIVE_OFF: &str = "the portable kernel builds with `--set gpu.native_multiply=false`";
    let pipeline = if build.native_multiply {
        spirv::native_multiply_pipeline(device, source, entry, build.checks)
            .map_err(|e| Error::engine(format!("{e}; {NATIVE_OFF}")))?
    } else {
        let module = unsafe {
            device.create_shader_module_trusted(
                wgpu::ShaderModuleDescriptor {
                    label: Some(entry),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                },
                build.checks,
            )
        };
        compute_pipeline(device, &module, entry)
    };
    // A driver that fails on the native multiply or the unchecked kernel may build the other.
    let hints: Vec<&str> = [
        build.native_multiply.then_some(NATIVE_OFF),
        (!build.checks.force_loop_bounding)
            .then_some("the driver may build it with `--set gpu.runtime_checks=true` (slower)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let hint = hints.join("; or ");
    built(gpu, scope, &[source], (!hint.is_empty()).then_some(&hint))?;
    Ok(pipeline)
}

/// Most parameters for which the walk kernel goes without runtime checks. Unchecked, the
/// driver unrolls the loops over the parameters and keeps the per-walker sums in registers
/// (4.2x the rate of the checked kernel on an H200, default system); at K = 1000 (199 hidden
/// units and a Jastrow factor) NVIDIA's driver 580 lost the device after 18 s of compiling
/// that, and built the checked kernel at once. Unchecked kernels ran there up to K = 805
/// (with 10-14 s of compiling); 512 keeps a margin for other drivers.
const MAX_UNCHECKED_PARAMETERS: usize = 512;

/// The runtime checks of a walk kernel with `parameters` parameters: as `forced`
/// (`gpu.runtime_checks`), else on beyond `MAX_UNCHECKED_PARAMETERS`.
fn runtime_checks(parameters: usize, forced: Option<bool>) -> wgpu::ShaderRuntimeChecks {
    if forced.unwrap_or(parameters > MAX_UNCHECKED_PARAMETERS) {
        wgpu::ShaderRuntimeChecks::checked()
    } else {
        wgpu::ShaderRuntimeChecks::unchecked()
    }
}

/// Fails with the error `scope` caught while kernels were built from `sources`, named by
/// the shader file and line where naga finds one (wgpu's report numbers the lines of the
/// assembled source); `hint` follows a driver's own error.
fn built(
    gpu: &Gpu,
    scope: wgpu::ErrorScopeGuard,
    sources: &[&str],
    hint: Option<&str>,
) -> Result<(), Error> {
    let caught = pollster::block_on(scope.pop());
    // A driver that fails to compile a kernel raises an internal or out-of-memory error,
    // which the device's error sink holds: it is the cause of the validation errors after it
    // (an invalid pipeline), so it is the one reported.
    gpu.check("building the kernels").map_err(|e| match hint {
        Some(hint) => Error::engine(format!("{e}; {hint}")),
        None => e,
    })?;
    let Some(e) = caught else {
        return Ok(());
    };
    let why = sources
        .iter()
        .find_map(|source| shader::validate(source).err())
        .unwrap_or_else(|| e.to_string());
    Err(Error::engine(format!(
        "the GPU kernels do not build on {}: {why}",
        gpu.summary.label()
    )))
}

fn compute_pipeline(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    entry: &str,
) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: None,
        module,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions {
            zero_initialize_workgroup_memory: false,
            ..Default::default()
        },
        cache: None,
    })
}

/// The reduce kernel from `source` (`shader::reduce_source`). Its loops run to sizes the
/// host passes at run time: it keeps wgpu's runtime checks.
fn reduce_pipeline(device: &wgpu::Device, source: &str) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("reduce"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    compute_pipeline(device, &module, "reduce")
}

/// `buffers` bound in order (binding i = buffers[i]) to `pipeline`'s group 0.
fn bind_group(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Records one compute pass of `grid` workgroups, timed where `timestamps` are given.
fn pass(
    encoder: &mut wgpu::CommandEncoder,
    pipeline: &wgpu::ComputePipeline,
    bind: &wgpu::BindGroup,
    grid: (u32, u32),
    timestamp_writes: Option<wgpu::ComputePassTimestampWrites>,
) {
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: None,
        timestamp_writes,
    });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind, &[]);
    pass.dispatch_workgroups(grid.0, grid.1, 1);
}

/// The engine's kernels with their bindings: the walk kernels, the metric's products and
/// the reductions of the partial sums and of the series.
struct Kernels {
    /// The walk kernel without observables (optimisation, thermalisation), and the one with
    /// them, compiled at the first call that observes (production only: its histograms in
    /// workgroup memory slow every step on some adapters, lavapipe by 3x).
    walk: Walk,
    observing_walk: Option<Walk>,
    /// How the walk kernels are built.
    build: KernelBuild,
    products: wgpu::ComputePipeline,
    partials: Reduction,
    series: Reduction,
}

impl Kernels {
    fn new(
        gpu: &Gpu,
        spec: &EngineSpec,
        b: &Buffers,
        sizes: &BufferSizes,
        build: KernelBuild,
    ) -> Result<Self, Error> {
        let plain = EngineSpec {
            observables: None,
            ..spec.clone()
        };
        let walk = walk_kernel(gpu, &plain, b, &b.no_rows, build)?;
        let device = &gpu.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        // The metric kernel's tile loops run to sizes the host passes at run time: it keeps
        // wgpu's checks.
        let (metric, reduce_source) = (shader::metric_source(), shader::reduce_source());
        let metric_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("metric"),
            source: wgpu::ShaderSource::Wgsl(metric.as_str().into()),
        });
        let products = compute_pipeline(device, &metric_module, "products_tile");
        let reduce = reduce_pipeline(device, &reduce_source);
        let partials = Reduction::new(
            device,
            &reduce,
            [&b.partials, &b.partials_out],
            sizes.groups,
            sizes.components as u32,
            SPAN,
        );
        let series = Reduction::new(
            device,
            &reduce,
            [&b.series_parts, &b.series_out],
            sizes.groups,
            sizes.measurements,
            SPAN,
        );
        built(gpu, scope, &[&metric, &reduce_source], None)?;
        Ok(Self {
            walk,
            observing_walk: None,
            build,
            products,
            partials,
            series,
        })
    }
}

/// Where each part of a flush lands in the readback buffer (bytes).
#[derive(Clone, Copy, Debug)]
struct ReadbackLayout {
    partials: u64,
    series: u64,
    counters: u64,
    timestamps: u64,
    size: u64,
}

impl ReadbackLayout {
    fn new(components: u64, series_capacity: u64) -> Self {
        let series = components * 4;
        let counters = series + series_capacity * 4;
        // u64 timestamps need 8-byte alignment.
        let timestamps = (counters + 8).next_multiple_of(8);
        Self {
            partials: 0,
            series,
            counters,
            timestamps,
            size: timestamps + 2 * FLUSH_DISPATCHES as u64 * 8,
        }
    }
}

/// GPU time of the walk passes from timestamp queries, where the adapter has them: a pair
/// of query slots for each walk dispatch between readbacks.
struct Timing {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
}

impl Timing {
    fn new(gpu: &Gpu) -> Option<Self> {
        let device = &gpu.device;
        device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            .then(|| Self {
                queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("walk timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2 * FLUSH_DISPATCHES,
                }),
                resolve: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps"),
                    size: 2 * FLUSH_DISPATCHES as u64 * 8,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                period: gpu.queue.get_timestamp_period() as f64,
            })
    }

    /// The writes that time dispatch `slot` of a batch.
    fn writes(&self, slot: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * slot),
            end_of_pass_write_index: Some(2 * slot + 1),
        }
    }

    /// Records the copy of the first `dispatches` dispatches' ticks to `target` at `offset`.
    fn copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        dispatches: u32,
        target: &wgpu::Buffer,
        offset: u64,
    ) {
        let n = 2 * dispatches;
        encoder.resolve_query_set(&self.queries, 0..n, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, target, offset, n as u64 * 8);
    }

    /// Seconds of the dispatches whose (begin, end) ticks `ticks` holds.
    fn seconds(&self, ticks: &[u64]) -> f64 {
        ticks
            .chunks(2)
            .map(|p| p[1].saturating_sub(p[0]) as f64 * self.period * 1e-9)
            .sum()
    }
}

pub struct GpuEngine {
    spec: EngineSpec,
    gpu: Gpu,
    sizes: BufferSizes,
    buffers: Buffers,
    kernels: Kernels,
    metric: Option<MetricBuffers>,
    timing: Option<Timing>,
    /// GPU time of the walk passes of the last `sample` call.
    kernel_seconds: Option<f64>,
    steps_done: u64,
    /// Subtracted from E_L before f32 sums: the last energy measured.
    shift: Option<f64>,
}

/// What a batch's readback holds, in f64 where the host sums it.
struct BatchSums {
    /// The reduced partial sums (`layout::reduced_components`, then any block scalars).
    partials: Vec<f64>,
    /// The batch's series: shifted energy sums over the walkers, one per measurement.
    series: Vec<f32>,
    /// Walkers found with a non-finite state and reset (`Moments::resets`).
    resets: u32,
    kernel_seconds: Option<f64>,
}

impl BatchSums {
    /// Adds the batch (of `walkers` walkers making `moves_per_step` moves a step, E_L
    /// shifted by `shift`) to `moments`, un-shifted; the walker means with the call's
    /// `last` batch.
    fn add_to(
        &self,
        moments: &mut Moments,
        batch: &Batch,
        shift: f64,
        last: bool,
        walkers: f64,
        moves_per_step: f64,
    ) {
        let (p, k) = (&self.partials, moments.o.len());
        let samples = walkers * batch.measurements as f64;
        let (sum_d, sum_d2) = (p[0], p[1]);
        moments.samples += samples as u64;
        moments.energy += sum_d + samples * shift;
        moments.energy_sq += sum_d2 + 2.0 * shift * sum_d + samples * shift * shift;
        moments.accepted += p[2].round();
        moments.attempted += walkers * batch.steps as f64 * moves_per_step;
        let (o, eo) = p[5..].split_at(k);
        for i in 0..k {
            moments.o[i] += o[i];
            moments.energy_o[i] += eo[i] + shift * o[i];
        }
        moments
            .series
            .extend(self.series.iter().map(|&v| v as f64 + walkers * shift));
        moments.resets += self.resets as u64;
        if let Some(obs) = moments.observables.as_mut() {
            observables::add_block_scalars(obs, p, k);
        }
        if last && moments.samples > 0 {
            let (wm, wm2) = (p[3], p[4]);
            moments.walker_means.count += walkers as u64;
            moments.walker_means.sum += wm + walkers * shift;
            moments.walker_means.sum_sq += wm2 + 2.0 * shift * wm + walkers * shift * shift;
        }
    }
}

/// The kernels compute in f32 and take the system's scales as f32 constants: each must be a
/// normal f32 number there, not 0 or inf.
fn check_f32_scales(spec: &EngineSpec) -> Result<(), Error> {
    let (omega, sigma) = (spec.system.omega, spec.wavefunction.rbm.sigma);
    let mut scales = vec![
        ("system.omega^2", omega * omega),
        ("1 / wavefunction.sigma^2", 1.0 / (sigma * sigma)),
    ];
    if let Some(o) = &spec.observables {
        scales.extend([
            ("observables.r_max", o.r_max),
            ("observables.pair_max", o.pair_max),
        ]);
    }
    match scales.into_iter().find(|(_, v)| !(*v as f32).is_normal()) {
        Some((name, v)) => Err(Error::input(format!(
            "the GPU engine computes in f32, which cannot hold {name} = {}; use --engine cpu \
             (f64), or an omega nearer 1 (natural units)",
            crate::text::compact(v)
        ))),
        None => Ok(()),
    }
}

impl GpuEngine {
    /// Builds the engine on `adapter`: sizes the buffers for `spec` (refusing sizes beyond
    /// the device's limits), allocates them with the initial positions, and compiles and
    /// binds the kernels.
    pub fn new(
        spec: EngineSpec,
        adapter: &wgpu::Adapter,
        options: &GpuConfig,
    ) -> Result<Self, Error> {
        Self::check_fits(&spec, adapter, options)?;
        let gpu = Gpu::open(adapter)?;
        let sizes = BufferSizes::new(&spec, &gpu.summary, &gpu.limits, options);
        let buffers = Buffers::new(&gpu, &spec, &sizes)?;
        let build = KernelBuild::choose(&spec, options, &gpu)?;
        let kernels = Kernels::new(&gpu, &spec, &buffers, &sizes, build)?;
        let timing = Timing::new(&gpu);
        Ok(Self {
            spec,
            gpu,
            sizes,
            buffers,
            kernels,
            metric: None,
            timing,
            kernel_seconds: None,
            steps_done: 0,
            shift: None,
        })
    }

    /// What `new` refuses before it opens a device: too many parameters, scales f32 cannot
    /// hold, buffers beyond the adapter's limits (`rbm-vmc check` asks it too).
    pub fn check_fits(
        spec: &EngineSpec,
        adapter: &wgpu::Adapter,
        options: &GpuConfig,
    ) -> Result<(), Error> {
        let parameters = spec.parameters();
        if parameters > MAX_GPU_PARAMETERS {
            return Err(Error::input(format!(
                "the GPU engine supports up to {MAX_GPU_PARAMETERS} variational parameters; \
                 this system has {parameters} (M + N + M N); use --engine cpu or fewer hidden units"
            )));
        }
        check_f32_scales(spec)?;
        let (summary, limits) = (AdapterSummary::of(adapter), adapter.limits());
        BufferSizes::new(spec, &summary, &limits, options).check(&summary, &limits)
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.gpu.summary
    }

    /// Destroys the device, as a driver reset would: every later call fails. For tests of
    /// the fault handling.
    pub fn destroy_device(&self) {
        self.gpu.device.destroy();
    }

    /// Moves made per walker per step.
    fn moves_per_step(&self) -> f64 {
        let sampler = &self.spec.sampler;
        sampler
            .kind
            .moves_per_step(sampler.moves, self.spec.system.particles) as f64
    }

    /// Reads `bytes` from the start of `source` (a COPY_SRC buffer) through the readback buffer.
    fn read(&self, encoder: wgpu::CommandEncoder, doing: &str) -> Result<Vec<u8>, Error> {
        self.gpu.queue.submit([encoder.finish()]);
        let slice = self.buffers.readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        self.gpu.wait(doing)?;
        let bytes = slice
            .get_mapped_range()
            .map_err(|e| Error::engine(format!("reading back from the GPU while {doing}: {e}")))?
            .to_vec();
        self.buffers.readback.unmap();
        Ok(bytes)
    }

    /// Reduces the batch's partials and reads them with its series, the counters and the
    /// timestamps (the observing kernel's partials carry the observables' scalars too);
    /// refuses a batch whose loops the driver cut short.
    fn read_batch(&self, batch: &Batch, observing: bool) -> Result<BatchSums, Error> {
        let mut r = reduced_components(self.spec.parameters());
        if observing {
            r += SCALARS * MAX_BLOCKS as usize;
        }
        let q = &self.gpu.queue;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        // Partials are laid out group-major, r components per workgroup.
        let components = r as u32;
        self.kernels
            .partials
            .record(q, &mut encoder, components, (1, components), 0);
        let b = &self.buffers;
        let l = self.sizes.readback();
        encoder.copy_buffer_to_buffer(&b.partials_out, 0, &b.readback, l.partials, r as u64 * 4);
        if batch.measurements > 0 {
            let bytes = batch.measurements as u64 * 4;
            encoder.copy_buffer_to_buffer(&b.series_out, 0, &b.readback, l.series, bytes);
        }
        encoder.copy_buffer_to_buffer(&b.counters, 0, &b.readback, l.counters, 8);
        if let Some(t) = &self.timing {
            t.copy(&mut encoder, batch.dispatches, &b.readback, l.timestamps);
        }
        let bytes = self.read(encoder, "sampling")?;
        let floats: &[f32] = bytemuck::cast_slice(&bytes[..l.counters as usize]);
        let counters: &[u32] = bytemuck::cast_slice(&bytes[l.counters as usize..][..8]);
        let kernel_seconds = self.timing.as_ref().map(|t| {
            let ticks: &[u64] = bytemuck::cast_slice(&bytes[l.timestamps as usize..]);
            t.seconds(&ticks[..2 * batch.dispatches as usize])
        });
        if counters[0] > 0 {
            return Err(Error::engine(format!(
                "the GPU driver ({}) cut the Monte Carlo loop short for {} walkers (fewer steps \
                 than the {} asked per dispatch); lower gpu.steps_per_dispatch",
                self.gpu.summary.label(),
                counters[0],
                self.sizes.steps_per_dispatch
            )));
        }
        q.write_buffer(&b.counters, 0, &[0u8; 8]);
        let first = (l.series / 4) as usize;
        Ok(BatchSums {
            partials: floats[..r].iter().map(|&v| v as f64).collect(),
            series: floats[first..first + batch.measurements as usize].to_vec(),
            resets: counters[1],
            kernel_seconds,
        })
    }

    /// Reads a batch and adds its sums to `moments`; its kernels' seconds where timed.
    fn flush(
        &self,
        moments: &mut Moments,
        batch: &Batch,
        shift: f64,
        last: bool,
    ) -> Result<Option<f64>, Error> {
        let sums = self.read_batch(batch, moments.observables.is_some())?;
        let walkers = self.spec.walkers as f64;
        sums.add_to(moments, batch, shift, last, walkers, self.moves_per_step());
        Ok(sums.kernel_seconds)
    }

    /// Uploads `params` and clears the counters for a call; the shift its kernels subtract
    /// from E_L: the last energy measured, else (when the call measures) an estimate.
    fn begin_call(&self, params: &Params, measure: bool) -> Result<f64, Error> {
        let theta: Vec<f32> = params.theta().iter().map(|&t| t as f32).collect();
        let q = &self.gpu.queue;
        q.write_buffer(&self.buffers.theta, 0, bytemuck::cast_slice(&theta));
        q.write_buffer(&self.buffers.counters, 0, &[0u8; 8]);
        let shift = match (measure, self.shift) {
            (_, Some(s)) => s,
            (true, None) => self.estimate_shift(params)?,
            (false, None) => 0.0,
        };
        // The kernels subtract the f32 shift: add back exactly that value.
        Ok(shift as f32 as f64)
    }

    /// Runs the planned dispatches, adding each batch's sums to `moments`; stops with
    /// `Error::Interrupted` between batches when `progress` says so.
    fn execute(
        &mut self,
        dispatches: &[Dispatch],
        moments: &mut Moments,
        shift: f64,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        let walk = match moments.observables {
            Some(_) => self
                .kernels
                .observing_walk
                .as_ref()
                .expect("built to observe"),
            None => &self.kernels.walk,
        };
        self.kernel_seconds = None;
        let q = &self.gpu.queue;
        for d in dispatches {
            q.write_buffer(&self.buffers.job, 0, bytemuck::bytes_of(&d.job));
            let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
            let timestamps = self.timing.as_ref().map(|t| t.writes(d.slot));
            pass(
                &mut encoder,
                &walk.pipeline,
                &walk.bind,
                self.sizes.grid,
                timestamps,
            );
            if d.measurements > 0 {
                // The series is measurement-major, a value per workgroup.
                let strides = (self.sizes.groups, 1);
                let series = &self.kernels.series;
                series.record(q, &mut encoder, d.measurements, strides, d.series_offset);
            }
            q.submit([encoder.finish()]);
            self.steps_done += d.job.steps as u64;
            let Some(batch) = d.flush else {
                continue;
            };
            // The shift applies to the whole call, so `last` marks the walker means.
            if let Some(seconds) = self.flush(moments, &batch, shift, d.last())? {
                *self.kernel_seconds.get_or_insert(0.0) += seconds;
            }
            progress.advance(batch.steps * self.spec.walkers as u64);
            if !d.last() && progress.cancelled() {
                return Err(Error::Interrupted("sampling cancelled".into()));
            }
        }
        Ok(())
    }

    /// Positions of the first `count` walkers, as f64.
    fn read_positions(&self, count: u32) -> Result<Vec<f64>, Error> {
        let bytes = count as u64 * self.spec.coordinates() as u64 * 4;
        let values = self.read_f32(
            &self.buffers.positions,
            0,
            bytes,
            "reading walker positions",
        )?;
        Ok(values.iter().map(|&v| v as f64).collect())
    }

    /// The f32 values in `bytes` bytes of `source` from `offset`, through a staging buffer of
    /// their own; `doing` names the read in errors.
    fn read_f32(
        &self,
        source: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
        doing: &str,
    ) -> Result<Vec<f32>, Error> {
        let staging = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(doing),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(source, offset, &staging, 0, bytes);
        self.gpu.queue.submit([encoder.finish()]);
        let slice = staging.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        self.gpu.wait(doing)?;
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::engine(format!("{doing}: {e}")))?;
        let values: &[f32] = bytemuck::cast_slice(&view);
        Ok(values[..(bytes / 4) as usize].to_vec())
    }

    /// A first shift: the mean local energy of up to 256 walkers where they stand.
    fn estimate_shift(&self, params: &Params) -> Result<f64, Error> {
        let count = self.spec.walkers.min(256);
        let positions = self.read_positions(count)?;
        let m = self.spec.coordinates();
        let energies: Vec<f64> = positions
            .chunks(m)
            .map(|x| {
                let mut o = vec![0.0; params.theta().len()];
                let wf = &self.spec.wavefunction;
                wf.local_energy(&self.spec.system, params, x, &mut o)
            })
            .filter(|e| e.is_finite())
            .collect();
        Ok(if energies.is_empty() {
            0.0
        } else {
            energies.iter().sum::<f64>() / energies.len() as f64
        })
    }
}

/// The walk kernel's bindings, with `o_rows` for the metric's O rows (binding 7) and the
/// observables' histograms (binding 8).
fn walk_bind_group(
    device: &wgpu::Device,
    walk: &wgpu::ComputePipeline,
    b: &Buffers,
    o_rows: &wgpu::Buffer,
) -> wgpu::BindGroup {
    bind_group(
        device,
        walk,
        &[
            &b.job,
            &b.theta,
            &b.positions,
            &b.walker_energy,
            &b.partials,
            &b.series_parts,
            &b.counters,
            o_rows,
            &b.hist,
        ],
    )
}

/// Loop iterations llvmpipe lets one invocation run (65,535), less a margin.
const CPU_ADAPTER_LOOP_BUDGET: u64 = 50_000;

/// Fewest steps per dispatch, where llvmpipe's loop cap allows. Besides its steps, a
/// dispatch loads and refreshes every walker and reduces the R sums over each workgroup:
/// by the kernel's loops (not yet timed on a real GPU) about the work of one or two steps,
/// so 128 steps keep that prologue and epilogue under 2 % (3-6 % at the former floor of 32,
/// which 2^21 walkers and more reached).
const MIN_STEPS: u64 = 128;

/// Steps per dispatch: about 2^26 walker-steps, at least MIN_STEPS and one measurement
/// interval. On CPU adapters such as lavapipe (`loops_per_step` given) about 2^20, and few
/// enough that the loops stay within llvmpipe's cap.
fn auto_steps(walkers: u32, every: u32, loops_per_step: Option<u64>) -> u32 {
    let (target, most): (u64, u64) = match loops_per_step {
        Some(per_step) => (1 << 20, (CPU_ADAPTER_LOOP_BUDGET / per_step).clamp(1, 512)),
        None => (1 << 26, 4096),
    };
    let steps = (target / walkers as u64).clamp(MIN_STEPS.min(most), most);
    steps.max((every as u64).min(most)) as u32
}

/// A 2-D grid of at least `groups` workgroups with at most `x` along x, balanced so that
/// fewer than one row is spare: the spare workgroups return at once, but a grid of `x` wide
/// rows would double the work at `x + 1` workgroups (2^22 walkers on NVIDIA ran at 58 % of
/// the rate of 2^20).
fn grid(groups: u32, x: u32) -> (u32, u32) {
    let rows = groups.div_ceil(x.max(1)).max(1);
    (groups.div_ceil(rows).max(1), rows)
}

impl Engine for GpuEngine {
    fn describe(&self) -> String {
        format!(
            "gpu: {} (f32{})",
            self.gpu.summary.label(),
            self.kernels.build.multiply_note()
        )
    }

    fn spec(&self) -> &EngineSpec {
        &self.spec
    }

    fn sample(
        &mut self,
        params: &Params,
        steps: u32,
        measure: Measure,
        progress: &dyn Progress,
    ) -> Result<Moments, Error> {
        let every = self.spec.sampler.measure_every;
        let call_measurements = call_measurements(steps, every, measure.any());
        let subset = match measure.metric_subset(self.spec.walkers, call_measurements) {
            Some(subset) => Some(self.prepare_metric(subset, measure, call_measurements)?),
            None => None,
        };
        let shift = self.begin_call(params, measure.any())?;
        let mut moments = Moments::zeros(self.spec.parameters(), 0);
        moments.series.reserve(call_measurements as usize);
        let observing = match &self.spec.observables {
            Some(o) if measure.observes() && call_measurements > 0 => Some(o.clone()),
            _ => None,
        };
        if let Some(o) = &observing {
            moments.observables = Some(self.begin_observing(o, call_measurements)?);
        }
        let call = Call {
            steps,
            steps_done: self.steps_done,
            measure: measure.any(),
            observe: observing.is_some(),
            subset,
            shift: shift as f32,
        };
        let dispatches = plan(&self.spec, &self.sizes, &call);
        self.execute(&dispatches, &mut moments, shift, progress)?;
        if let Some(mut obs) = moments.observables.take() {
            self.finish_observing(&mut obs, call_measurements)?;
            moments.observables = Some(obs);
        }
        moments.walkers = self.spec.walkers as u64;
        if let Some(subset) = subset {
            moments.metric = Some(self.metric_sums(&moments, subset)?);
        }
        if measure.any() && moments.samples > 0 {
            self.shift = Some(moments.energy / moments.samples as f64).filter(|e| e.is_finite());
        }
        Ok(moments)
    }

    fn kernel_seconds(&self) -> Option<f64> {
        self.kernel_seconds
    }

    fn state(&self) -> Result<WalkerState, Error> {
        Ok(WalkerState {
            steps_done: self.steps_done,
            positions: self.read_positions(self.spec.walkers)?,
        })
    }

    fn set_state(&mut self, state: &WalkerState) -> Result<(), Error> {
        check_state(&self.spec, state)?;
        let values: Vec<f32> = state.positions.iter().map(|&v| v as f32).collect();
        self.gpu
            .queue
            .write_buffer(&self.buffers.positions, 0, bytemuck::cast_slice(&values));
        self.steps_done = state.steps_done;
        self.gpu.wait("uploading walker positions")
    }
}

/// The adapter of the unit tests that need a device, CPU implementations included; `None`
/// (the test skips) without one, unless RBM_VMC_REQUIRE_GPU=1.
#[cfg(test)]
fn test_adapter() -> Option<wgpu::Adapter> {
    let adapter = choose(None, true, 0);
    if adapter.is_none() {
        assert!(
            !std::env::var("RBM_VMC_REQUIRE_GPU").is_ok_and(|v| v == "1"),
            "RBM_VMC_REQUIRE_GPU=1 but no GPU adapter was found"
        );
        eprintln!("skipped: no GPU adapter");
    }
    adapter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// 2^26 walker-steps per dispatch until the floor: from 2^20 walkers on the dispatches
    /// keep MIN_STEPS steps (or a longer measurement interval); CPU adapters stay within
    /// llvmpipe's loop cap.
    #[test]
    fn dispatches_keep_enough_steps_at_many_walkers() {
        assert_eq!(auto_steps(1 << 16, 1, None), 1024);
        assert_eq!(auto_steps(1 << 19, 1, None), 128);
        for walkers in [1 << 20, 1 << 21, 1 << 22, u32::MAX] {
            assert_eq!(auto_steps(walkers, 1, None), 128, "{walkers}");
            assert_eq!(auto_steps(walkers, 200, None), 200, "{walkers}");
        }
        assert_eq!(auto_steps(1 << 21, 1, Some(1000)), 50);
        assert_eq!(auto_steps(1 << 12, 1, Some(100)), 256);
    }

    /// Kernels up to 512 parameters go unchecked; larger ones bound their loops (the driver
    /// that failed at K = 1000 built them so); `gpu.runtime_checks` decides when given.
    #[test]
    fn large_kernels_keep_the_runtime_checks() {
        let bounded = |k: usize, forced| runtime_checks(k, forced).force_loop_bounding;
        assert!(!bounded(14, None) && !bounded(452, None) && !bounded(512, None));
        assert!(bounded(513, None) && bounded(1000, None));
        assert!(bounded(14, Some(true)) && !bounded(1000, Some(false)));
    }

    /// The grid covers the workgroups within the per-dimension limit with fewer than one
    /// row to spare.
    #[test]
    fn grids_are_balanced() {
        for (groups, x) in [
            (1, 65535),
            (65535, 65535),
            (65536, 65535),
            (131071, 65535),
            (7, 3),
        ] {
            let (gx, gy) = grid(groups, x);
            assert!(gx <= x, "{groups} {x}");
            assert!(
                gx * gy >= groups && gx * gy - groups < gy,
                "{groups} {x}: {gx} x {gy}"
            );
        }
        assert_eq!(grid(65536, 65535), (32768, 2));
    }

    /// Two shifts that round to the same f32 give the device the same work, so the results
    /// must be identical: the host adds back the shift the kernels subtracted, not the f64
    /// one it started from.
    #[test]
    fn the_shift_added_back_is_the_one_subtracted() {
        let Some(adapter) = test_adapter() else {
            return;
        };
        let config = Config::load(None, &["walkers=100".into()]).unwrap();
        let mut engine =
            GpuEngine::new(EngineSpec::from_config(&config), &adapter, &config.gpu).unwrap();
        let params = crate::driver::initial_params(&config).unwrap();
        engine.sample(&params, 50, Measure::Nothing, &()).unwrap();
        let start = engine.state().unwrap();
        let exact = 3.25f32 as f64;
        let near = exact + 0.1 * f64::from(f32::EPSILON) * exact;
        assert_eq!(near as f32 as f64, exact);
        let mut measure = |shift: f64| {
            engine.set_state(&start).unwrap();
            engine.shift = Some(shift);
            engine.sample(&params, 64, Measure::Energy, &()).unwrap()
        };
        let (a, b) = (measure(exact), measure(near));
        assert_eq!(a.energy, b.energy);
        assert_eq!(a.series, b.series);
        assert_eq!(a.energy_o, b.energy_o);
    }
}
