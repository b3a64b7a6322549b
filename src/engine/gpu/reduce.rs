//! Segmented sums on the device (shaders/reduce.wgsl) of the walk kernel's per-workgroup
//! partial sums and series. A long sum takes two passes, a workgroup per SPAN values and
//! then one per segment over the spans' results, so that no workgroup adds more than
//! max(SPAN, count / SPAN) values: with one workgroup per segment, each measurement of the
//! series at 2^22 walkers was 65,536 values summed by 64 threads.

use super::layout::Reduce;
use super::{bind_group, grid, pass};

/// Values one workgroup of the first pass sums.
pub const SPAN: u32 = 1024;

/// One reduction from an input buffer into an output buffer: the jobs and bindings of its
/// passes, and the scratch between them where a sum has more than one span.
pub struct Reduction {
    pipeline: wgpu::ComputePipeline,
    count: u32,
    segments: u32,
    span: u32,
    max_x: u32,
    first: wgpu::Buffer,
    first_bind: wgpu::BindGroup,
    /// The second pass (scratch to output): its job and bindings.
    second: Option<(wgpu::Buffer, wgpu::BindGroup)>,
}

impl Reduction {
    /// Sums of `count` values each, for up to `segments` segments, `span` values per
    /// workgroup of the first pass; `pipeline` is the reduce kernel's.
    pub fn new(
        device: &wgpu::Device,
        pipeline: &wgpu::ComputePipeline,
        [input, output]: [&wgpu::Buffer; 2],
        count: u32,
        segments: u32,
        span: u32,
    ) -> Self {
        let uniform = || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("reduce job"),
                size: std::mem::size_of::<Reduce>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let first = uniform();
        let spans = count.div_ceil(span);
        let (first_bind, second) = if spans <= 1 {
            (bind_group(device, pipeline, &[&first, input, output]), None)
        } else {
            let scratch = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("reduce scratch"),
                size: segments as u64 * spans as u64 * 4,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            let second = uniform();
            let second_bind = bind_group(device, pipeline, &[&second, &scratch, output]);
            (
                bind_group(device, pipeline, &[&first, input, &scratch]),
                Some((second, second_bind)),
            )
        };
        Self {
            pipeline: pipeline.clone(),
            count,
            segments,
            span,
            max_x: device.limits().max_compute_workgroups_per_dimension,
            first,
            first_bind,
            second,
        }
    }

    /// Records the sums of `segments` segments laid out by the strides into
    /// output[out_offset..]. Writes the passes' jobs to `queue` now: submit `encoder` before
    /// this reduction records again.
    pub fn record(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        segments: u32,
        (stride_j, stride_i): (u32, u32),
        out_offset: u32,
    ) {
        assert!(
            segments <= self.segments,
            "more segments than the scratch holds"
        );
        let spans = self.count.div_ceil(self.span);
        let job = Reduce {
            count: self.count,
            segments,
            stride_j,
            stride_i,
            // Into the scratch, span-major per segment, when a second pass follows.
            out_offset: if self.second.is_some() { 0 } else { out_offset },
            span: self.span,
            ..Default::default()
        };
        let workgroups = segments * spans.max(1);
        self.run(
            queue,
            encoder,
            &self.first,
            &self.first_bind,
            job,
            workgroups,
        );
        if let Some((uniform, bind)) = &self.second {
            let job = Reduce {
                count: spans,
                segments,
                stride_j: spans,
                stride_i: 1,
                out_offset,
                span: spans,
                ..Default::default()
            };
            self.run(queue, encoder, uniform, bind, job, segments);
        }
    }

    fn run(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        uniform: &wgpu::Buffer,
        bind: &wgpu::BindGroup,
        mut job: Reduce,
        workgroups: u32,
    ) {
        let (x, y) = grid(workgroups, self.max_x);
        job.groups_x = x;
        queue.write_buffer(uniform, 0, bytemuck::bytes_of(&job));
        pass(encoder, &self.pipeline, bind, (x, y), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gpu::{Gpu, reduce_pipeline, shader, test_adapter};

    fn read(gpu: &Gpu, buffer: &wgpu::Buffer, len: usize) -> Vec<f32> {
        let bytes = len as u64 * 4;
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        gpu.queue.submit([encoder.finish()]);
        staging.slice(..).map_async(wgpu::MapMode::Read, |_| {});
        gpu.wait("reading the sums").unwrap();
        let view = staging.slice(..).get_mapped_range().unwrap();
        bytemuck::cast_slice(&view).to_vec()
    }

    /// The device's sums against f64 sums at awkward counts: 345 values (5 x 64 + 25) in one
    /// pass and in spans of 64 and 100 (the last span partial), 5000 values (not a multiple
    /// of 64 or SPAN) in the engine's spans; three segments, laid out as the partials
    /// (strided) and as the series (contiguous), written after an offset.
    #[test]
    fn sums_match_f64_sums_at_awkward_counts() {
        let Some(adapter) = test_adapter() else {
            return;
        };
        let gpu = Gpu::open(&adapter).unwrap();
        let device = &gpu.device;
        let pipeline = reduce_pipeline(device, &shader::reduce_source());
        let segments = 3u32;
        let offset = 2u32;
        for (count, span) in [(345u32, SPAN), (345, 64), (345, 100), (5000, SPAN)] {
            let len = (count * segments) as usize;
            // Mixed signs and magnitudes, so that a dropped or repeated value shows.
            let values: Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 1009) as f32 / 1009.0 - 0.3 + (i % 7) as f32)
                .collect();
            use wgpu::util::DeviceExt;
            let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(&values),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let output = device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: (offset + segments) as u64 * 4,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let reduction =
                Reduction::new(device, &pipeline, [&input, &output], count, segments, span);
            for (stride_j, stride_i) in [(1, segments), (count, 1)] {
                let mut encoder = device.create_command_encoder(&Default::default());
                reduction.record(
                    &gpu.queue,
                    &mut encoder,
                    segments,
                    (stride_j, stride_i),
                    offset,
                );
                gpu.queue.submit([encoder.finish()]);
                let got = read(&gpu, &output, (offset + segments) as usize);
                for j in 0..segments {
                    let terms = (0..count).map(|i| values[(j * stride_j + i * stride_i) as usize]);
                    let exact: f64 = terms.clone().map(f64::from).sum();
                    let magnitude: f64 = terms.map(|v| f64::from(v).abs()).sum();
                    // f32 sums: each value is rounded into at most ~30 additions (16 serial
                    // and 6 tree levels per pass).
                    let tolerance = 30.0 * f64::from(f32::EPSILON) * magnitude;
                    let value = f64::from(got[(offset + j) as usize]);
                    assert!(
                        (value - exact).abs() <= tolerance,
                        "count {count}, span {span}, strides ({stride_j}, {stride_i}), \
                         segment {j}: {value} vs {exact}"
                    );
                }
            }
        }
    }
}
