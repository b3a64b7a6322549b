//! Diffusion Monte Carlo on the GPU: the population resident in storage buffers, a
//! generation per dispatch of the DMC kernel (shaders/dmc.wgsl: the moves, the fixed-node
//! test and the weights, in f32), its sums reduced on the device and read back as ten
//! numbers, and the stochastic comb on the device (shaders/comb.wgsl: a scan of the weights
//! and a gather into second buffers). Only the sums and, per comb, nothing at all come back
//! to the host; the walkers are read only for checkpoints. The same Philox streams as the
//! CPU population (`DmcWalkers`), so the two follow the same moves walker by walker.

use wgpu::util::DeviceExt;

use super::layout::{CombJob, DMC_SUMS, DmcJob};
use super::reduce::{Reduction, SPAN};
use super::shader::{self, SCAN_WORKGROUP, WORKGROUP};
use super::{
    Gpu, KernelBuild, bind_group, built, compute_pipeline, grid, pass, reduce_pipeline,
    theta_bytes, walker_pipeline,
};
use crate::config::GpuConfig;
use crate::engine::dmc::{Branching, GenerationSums, Population, Walkers, chosen};
use crate::engine::{EngineSpec, Sampler, check_host_memory};
use crate::error::Error;
use crate::physics::Params;
use crate::sampler::{Moves, SamplerKind};

/// Most walkers of one population: the comb counts slots in f32 (comb.wgsl).
const MAX_WALKERS: u32 = 1 << 24;

/// The buffers of the population and of the comb.
struct Buffers {
    job: wgpu::Buffer,
    comb: wgpu::Buffer,
    theta: wgpu::Buffer,
    positions: wgpu::Buffer,
    energies: wgpu::Buffer,
    weights: wgpu::Buffer,
    partials: wgpu::Buffer,
    sums: wgpu::Buffer,
    /// The comb's running sums: within blocks, and the blocks' offsets (then the total).
    cumulative: wgpu::Buffer,
    offsets: wgpu::Buffer,
    /// Where the comb gathers to, copied back over `positions` and `energies`.
    positions_out: wgpu::Buffer,
    energies_out: wgpu::Buffer,
    readback: wgpu::Buffer,
}

/// The comb's three kernels with their bindings.
struct CombKernels {
    scan_blocks: wgpu::ComputePipeline,
    scan_offsets: wgpu::ComputePipeline,
    gather: wgpu::ComputePipeline,
    bind: [wgpu::BindGroup; 3],
}

/// A DMC population on the GPU.
pub struct GpuDmc {
    spec: EngineSpec,
    gpu: Gpu,
    buffers: Buffers,
    /// The generation kernel and its bindings, for the time step `tau` (a constant of the
    /// kernel, as DT is of importance sampling's).
    generation: wgpu::ComputePipeline,
    generation_bind: wgpu::BindGroup,
    tau: f64,
    build: KernelBuild,
    sums: Reduction,
    comb: CombKernels,
    groups: u32,
}

/// `spec` with the moves of DMC: importance sampling's Langevin proposals at time step
/// `tau`, all coordinates at once or one particle after another.
fn dmc_spec(spec: &EngineSpec, moves: Moves, tau: f64) -> EngineSpec {
    EngineSpec {
        sampler: Sampler {
            kind: SamplerKind::Importance,
            moves,
            dt: tau,
            ..spec.sampler
        },
        observables: None,
        ..spec.clone()
    }
}

impl GpuDmc {
    /// The population of `spec` (this process's walkers) on `adapter`, moved by `moves` at
    /// the time step `tau`, at `positions` with the local energies `energies` they had (a
    /// checkpoint's) or, without them, measured on the device; weights 1.
    pub fn new(
        spec: &EngineSpec,
        (moves, tau): (Moves, f64),
        adapter: &wgpu::Adapter,
        options: &GpuConfig,
        params: &Params,
        (positions, energies): (&[f64], Option<&[f64]>),
    ) -> Result<Self, Error> {
        let spec = dmc_spec(spec, moves, tau);
        super::GpuEngine::check_fits(&spec, adapter, options)?;
        if spec.walkers > MAX_WALKERS {
            return Err(Error::input(format!(
                "the GPU engine's DMC takes at most {MAX_WALKERS} walkers per process; use \
                 fewer, or several processes (mpirun)"
            )));
        }
        let walkers = spec.walkers as u64;
        let m = spec.coordinates() as u64;
        check_host_memory(
            walkers * (m + 2) * 12,
            &format!("the DMC population of {walkers} walkers"),
            "use fewer walkers",
        )?;
        let gpu = Gpu::open(adapter)?;
        let groups = (walkers as u32).div_ceil(WORKGROUP);
        let buffers = Self::buffers(&gpu, &spec, groups, params, positions)?;
        let device = &gpu.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let reduce_source = shader::reduce_source();
        let reduce = reduce_pipeline(device, &reduce_source);
        let sums = Reduction::new(
            device,
            &reduce,
            [&buffers.partials, &buffers.sums],
            groups,
            DMC_SUMS as u32,
            SPAN,
        );
        let comb_source = shader::comb_source(spec.coordinates());
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("comb"),
            source: wgpu::ShaderSource::Wgsl(comb_source.as_str().into()),
        });
        let [scan_blocks, scan_offsets, gather] =
            ["scan_blocks", "scan_offsets", "gather"].map(|e| compute_pipeline(device, &module, e));
        let b = &buffers;
        // Each kernel binds the prefix of the bindings it uses (comb.wgsl).
        let all = [
            &b.comb,
            &b.offsets,
            &b.weights,
            &b.cumulative,
            &b.positions,
            &b.energies,
            &b.positions_out,
            &b.energies_out,
        ];
        let bind = [(&scan_blocks, 4), (&scan_offsets, 2), (&gather, 8)]
            .map(|(p, used)| bind_group(device, p, &all[..used]));
        built(&gpu, scope, &[&reduce_source, &comb_source], None)?;
        let build = KernelBuild::choose(&spec, options, &gpu)?;
        let (generation, generation_bind) = Self::generation_kernel(&gpu, &spec, &buffers, build)?;
        let mut population = Self {
            spec,
            gpu,
            buffers,
            generation,
            generation_bind,
            tau,
            build,
            sums,
            comb: CombKernels {
                scan_blocks,
                scan_offsets,
                gather,
                bind,
            },
            groups,
        };
        match energies {
            Some(energies) => population.write_energies(energies)?,
            None => {
                population.dispatch(0, None)?;
            }
        }
        Ok(population)
    }

    fn buffers(
        gpu: &Gpu,
        spec: &EngineSpec,
        groups: u32,
        params: &Params,
        positions: &[f64],
    ) -> Result<Buffers, Error> {
        let walkers = spec.walkers as u64;
        let m = spec.coordinates() as u64;
        if positions.len() as u64 != walkers * m {
            return Err(Error::input(format!(
                "the DMC population holds {} coordinates; its config needs {walkers} walkers \
                 x {m} coordinates",
                positions.len()
            )));
        }
        let device = &gpu.device;
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let sized = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16),
                usage,
                mapped_at_creation: false,
            })
        };
        let init = |label: &str, values: &[f32], usage: wgpu::BufferUsages| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(values),
                usage,
            })
        };
        let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        let mut theta: Vec<f32> = params.theta().iter().map(|&v| v as f32).collect();
        theta.resize(theta_bytes(spec) as usize / 4, 0.0);
        let x: Vec<f32> = positions.iter().map(|&v| v as f32).collect();
        let blocks = (walkers as u32).div_ceil(SCAN_WORKGROUP) as u64;
        Ok(Buffers {
            job: sized("dmc job", size_of::<DmcJob>() as u64, uniform),
            comb: sized("comb job", size_of::<CombJob>() as u64, uniform),
            theta: init("theta", &theta, storage | wgpu::BufferUsages::UNIFORM),
            positions: init("positions", &x, storage),
            energies: sized("energies", walkers * 4, storage),
            weights: sized("weights", walkers * 4, storage),
            partials: sized("dmc partials", groups as u64 * DMC_SUMS as u64 * 4, storage),
            sums: sized("dmc sums", DMC_SUMS as u64 * 4, storage),
            cumulative: sized("comb cumulative", walkers * 4, storage),
            offsets: sized("comb offsets", (2 * blocks + 3) * 4, storage),
            positions_out: sized("comb positions", walkers * m * 4, storage),
            energies_out: sized("comb energies", walkers * 4, storage),
            readback: sized(
                "dmc readback",
                DMC_SUMS as u64 * 4,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
        })
    }

    /// Compiles the generation kernel for `spec` (its time step) and binds the buffers.
    fn generation_kernel(
        gpu: &Gpu,
        spec: &EngineSpec,
        b: &Buffers,
        build: KernelBuild,
    ) -> Result<(wgpu::ComputePipeline, wgpu::BindGroup), Error> {
        let source = shader::dmc_source(spec, build.shape);
        let pipeline = walker_pipeline(gpu, &source, "generation", build)?;
        let bind = bind_group(
            &gpu.device,
            &pipeline,
            &[
                &b.job,
                &b.theta,
                &b.positions,
                &b.energies,
                &b.weights,
                &b.partials,
            ],
        );
        Ok((pipeline, bind))
    }

    /// One dispatch of the generation kernel: generation `generation` with `branching`, or
    /// (without) the local energies at the positions. Returns the reduced sums.
    fn dispatch(
        &mut self,
        generation: u64,
        branching: Option<&Branching>,
    ) -> Result<GenerationSums, Error> {
        let (x, y) = grid(
            self.groups,
            self.gpu.limits.max_compute_workgroups_per_dimension,
        );
        let f = |v: f64| v as f32;
        let job = DmcJob {
            walkers: self.spec.walkers,
            first_walker: self.spec.first_walker,
            generation_lo: generation as u32,
            generation_hi: (generation >> 32) as u32,
            groups_x: x,
            groups: self.groups,
            slater_n: self
                .spec
                .wavefunction
                .slater
                .as_ref()
                .map_or(0, |s| s.n as u32),
            moves: branching.is_some() as u32,
            tau_eff: branching.map_or(0.0, |b| f(b.tau_eff)),
            trial_energy: branching.map_or(0.0, |b| f(b.trial_energy)),
            reference: branching.map_or(0.0, |b| f(b.reference)),
            cutoff: branching.map_or(0.0, |b| f(b.cutoff)),
        };
        let q = &self.gpu.queue;
        q.write_buffer(&self.buffers.job, 0, bytemuck::bytes_of(&job));
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        pass(
            &mut encoder,
            &self.generation,
            &self.generation_bind,
            (x, y),
            None,
        );
        let components = DMC_SUMS as u32;
        self.sums
            .record(q, &mut encoder, components, (1, components), 0);
        let bytes = DMC_SUMS as u64 * 4;
        encoder.copy_buffer_to_buffer(&self.buffers.sums, 0, &self.buffers.readback, 0, bytes);
        q.submit([encoder.finish()]);
        let slice = self.buffers.readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        self.gpu.wait("running a DMC generation")?;
        let sums: [f64; DMC_SUMS] = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::engine(format!("reading the DMC sums: {e}")))?;
            let values: &[f32] = bytemuck::cast_slice(&view);
            std::array::from_fn(|i| values[i] as f64)
        };
        self.buffers.readback.unmap();
        let mut sums = GenerationSums::from_array(sums);
        // The kernel sums w (E_L - reference) against f32 rounding, with the f32 reference.
        sums.weighted_energy += branching.map_or(0.0, |b| f(b.reference) as f64) * sums.weight;
        Ok(sums)
    }

    fn write_energies(&mut self, energies: &[f64]) -> Result<(), Error> {
        if energies.len() != self.spec.walkers as usize {
            return Err(Error::input(format!(
                "the DMC population holds {} energies; its config needs {} walkers",
                energies.len(),
                self.spec.walkers
            )));
        }
        let q = &self.gpu.queue;
        let values: Vec<f32> = energies.iter().map(|&v| v as f32).collect();
        q.write_buffer(&self.buffers.energies, 0, bytemuck::cast_slice(&values));
        let ones = vec![1.0f32; energies.len()];
        q.write_buffer(&self.buffers.weights, 0, bytemuck::cast_slice(&ones));
        Ok(())
    }

    /// Reads `len` f32 values of `buffer` as f64.
    fn read(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f64>, Error> {
        let bytes = (len as u64 * 4).max(4);
        let staging = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dmc walkers readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, len as u64 * 4);
        self.gpu.queue.submit([encoder.finish()]);
        let slice = staging.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        self.gpu.wait("reading the DMC walkers")?;
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::engine(format!("reading the DMC walkers: {e}")))?;
        let values: &[f32] = bytemuck::cast_slice(&view);
        Ok(values[..len].iter().map(|&v| v as f64).collect())
    }
}

impl Population for GpuDmc {
    fn describe(&self) -> String {
        format!(
            "gpu ({}, {} walkers, f32{})",
            self.gpu.summary.label(),
            self.spec.walkers,
            self.build.multiply_note()
        )
    }

    fn first_walker(&self) -> u32 {
        self.spec.first_walker
    }

    fn generation(
        &mut self,
        generation: u64,
        branching: &Branching,
    ) -> Result<GenerationSums, Error> {
        if branching.tau != self.tau {
            self.spec = dmc_spec(&self.spec, self.spec.sampler.moves, branching.tau);
            (self.generation, self.generation_bind) =
                Self::generation_kernel(&self.gpu, &self.spec, &self.buffers, self.build)?;
            self.tau = branching.tau;
        }
        self.dispatch(generation, Some(branching))
    }

    fn walkers(&self) -> Result<Walkers, Error> {
        let n = self.spec.walkers as usize;
        let b = &self.buffers;
        Ok(Walkers {
            positions: self.read(&b.positions, n * self.spec.coordinates())?,
            energies: self.read(&b.energies, n)?,
            weights: self.read(&b.weights, n)?,
        })
    }

    fn resample(
        &mut self,
        slots: &[u32],
        positions: &[f64],
        energies: &[f64],
    ) -> Result<(), Error> {
        let mut kept = Walkers::default();
        chosen(
            slots,
            positions,
            energies,
            self.spec.coordinates(),
            &mut kept,
        );
        let x: Vec<f32> = kept.positions.iter().map(|&v| v as f32).collect();
        self.gpu
            .queue
            .write_buffer(&self.buffers.positions, 0, bytemuck::cast_slice(&x));
        self.write_energies(&kept.energies)
    }

    /// The comb on the device: the scan of the weights, the slots' gather, and the gathered
    /// walkers copied back. The weights buffer keeps the generation's weights: the kernel
    /// starts every generation from unit weights without reading it.
    fn comb_in_place(&mut self, u: f64) -> Result<bool, Error> {
        let walkers = self.spec.walkers;
        let blocks = walkers.div_ceil(SCAN_WORKGROUP);
        let max_x = self.gpu.limits.max_compute_workgroups_per_dimension;
        let (x, y) = grid(blocks, max_x);
        let job = CombJob {
            walkers,
            groups_x: x,
            blocks,
            u: u as f32,
        };
        let q = &self.gpu.queue;
        q.write_buffer(&self.buffers.comb, 0, bytemuck::bytes_of(&job));
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        let c = &self.comb;
        pass(&mut encoder, &c.scan_blocks, &c.bind[0], (x, y), None);
        pass(&mut encoder, &c.scan_offsets, &c.bind[1], (1, 1), None);
        pass(&mut encoder, &c.gather, &c.bind[2], (x, y), None);
        let b = &self.buffers;
        let m = self.spec.coordinates() as u64;
        let n = walkers as u64;
        encoder.copy_buffer_to_buffer(&b.positions_out, 0, &b.positions, 0, n * m * 4);
        encoder.copy_buffer_to_buffer(&b.energies_out, 0, &b.energies, 0, n * 4);
        q.submit([encoder.finish()]);
        self.gpu.check("combing the DMC population")?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::dmc::comb;
    use crate::engine::gpu::test_adapter;
    use crate::rng::StepStream;

    /// The device's comb against the Rust comb: the same walker in every slot, except where
    /// a tooth falls within f32 rounding (1e-6 W) of a running sum, at awkward sizes (1 walker, a
    /// partial block, more blocks than the offsets scan has threads) and with weights that
    /// are zero inside and at the end of the population.
    #[test]
    fn the_device_comb_picks_the_walkers_the_rust_comb_picks() {
        let Some(adapter) = test_adapter() else {
            return;
        };
        let config = Config::default();
        let params = Params::zeros(config.wavefunction().layout);
        let mut stream = StepStream::new(3, 0, 1);
        for walkers in [1u32, 1000, 70_001] {
            let spec = EngineSpec {
                walkers,
                ..EngineSpec::from_config(&config)
            };
            let m = spec.coordinates();
            // Walker j stands at x_0 = j: the gathered positions name the chosen walkers.
            let positions: Vec<f64> = (0..walkers as usize * m)
                .map(|k| if k % m == 0 { (k / m) as f64 } else { 0.5 })
                .collect();
            let mut population = GpuDmc::new(
                &spec,
                (Moves::All, 0.01),
                &adapter,
                &config.gpu,
                &params,
                (&positions, None),
            )
            .unwrap();
            let weights: Vec<f64> = (0..walkers as usize)
                .map(|j| match j % 7 {
                    _ if walkers > 1 && j + 3 >= walkers as usize => 0.0,
                    3 => 0.0,
                    _ => (2.0 * stream.uniform()) as f32 as f64,
                })
                .collect();
            let values: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
            let b = &population.buffers;
            population
                .gpu
                .queue
                .write_buffer(&b.weights, 0, bytemuck::cast_slice(&values));
            let u = stream.uniform();
            assert!(population.comb_in_place(u).unwrap());
            let chosen: Vec<usize> = population
                .walkers()
                .unwrap()
                .positions
                .chunks(m)
                .map(|x| x[0] as usize)
                .collect();
            let expected = comb(&weights, u, walkers as usize).unwrap();
            let total: f64 = weights.iter().sum();
            let mut running = vec![0.0];
            for w in &weights {
                running.push(running.last().unwrap() + w);
            }
            let mut differ = 0;
            for (k, (&got, &want)) in chosen.iter().zip(&expected).enumerate() {
                assert!(
                    weights[got] > 0.0,
                    "slot {k} took walker {got} without weight"
                );
                if got != want as usize {
                    differ += 1;
                    let tooth = (k as f64 + u) * total / walkers as f64;
                    let boundary = running[got.min(want as usize) + 1];
                    assert!(
                        (tooth - boundary).abs() < 1e-6 * total,
                        "{walkers} walkers, slot {k}: {got} against {want}"
                    );
                }
            }
            // The f32 total alone moves the last teeth by about 1e-7 W.
            assert!(differ * 1000 <= walkers as usize, "{differ} slots differ");
        }
    }
}
