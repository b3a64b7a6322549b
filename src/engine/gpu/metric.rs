//! The GPU engine's metric S for stochastic reconfiguration: the O rows the walk kernel writes
//! for a call's sample subset, their centred products on the device (shaders/metric.wgsl),
//! and the raw sums the host makes of them in f64.

use super::layout::Products;
use super::{GpuEngine, bind_group, pass, walk_bind_group};
use crate::engine::{Measure, Metric, MetricSubset, Moments};
use crate::error::Error;

/// Sample rows one dispatch of the metric kernel adds (llvmpipe's loop cap).
const METRIC_ROWS_PER_DISPATCH: u32 = 16_384;

/// SR's buffers, made on the first call that asks for the metric (and grown when a call
/// needs more rows): the O rows the walk kernel writes, the shift, the products, and their
/// readback.
pub(super) struct MetricBuffers {
    rows: usize,
    /// Bound to the walk kernels (a kernel compiled later binds it too).
    pub o_rows: wgpu::Buffer,
    shift: wgpu::Buffer,
    job: wgpu::Buffer,
    products: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind: wgpu::BindGroup,
}

/// `subset` with a smaller target where buffers of at most `limit` bytes cannot hold its
/// rows of `k` f32 values: half the rows that fit, so that `MetricSubset`'s rule (fewer than
/// 2 x target rows) stays within them.
fn fitted_subset(
    subset: MetricSubset,
    measure: Measure,
    walkers: u32,
    measurements: u32,
    limit: u64,
    k: u64,
) -> MetricSubset {
    let max_rows = (limit / (4 * k)) as usize;
    match measure {
        Measure::EnergyAndMetric { samples } if subset.rows() > max_rows => {
            let target = (max_rows / 2).min(samples as usize).max(1) as u32;
            MetricSubset::new(walkers, measurements, target)
        }
        _ => subset,
    }
}

/// The raw sums of the metric from the device's `products` ((k + 1)^2 values: the centred
/// products of the O rows and, in the last column, their centred sums) about `centre`, over
/// `rows` rows: with u = o - c, sum o = s + n c and sum o o^T = P + c s^T + s c^T + n c c^T.
fn raw_metric(products: &[f64], centre: &[f64], rows: u32) -> Metric {
    let k = centre.len();
    let width = k + 1;
    let (p, c, n) = (products, centre, rows as f64);
    let s: Vec<f64> = (0..k).map(|i| p[i * width + k]).collect();
    let mut metric = Metric::zeros(k);
    metric.samples = rows as u64;
    for i in 0..k {
        metric.o[i] = s[i] + n * c[i];
        for j in i..k {
            metric.oo[i * k + j] = p[i * width + j] + c[i] * s[j] + s[i] * c[j] + n * c[i] * c[j];
        }
    }
    metric.mirror();
    metric
}

impl GpuEngine {
    /// The subset of this call's samples that enters the metric, with the buffers for its O
    /// rows ready: `MetricSubset`'s rule, with a smaller target where the device's buffers
    /// cannot hold 2 x target rows of K values.
    pub(super) fn prepare_metric(
        &mut self,
        subset: MetricSubset,
        measure: Measure,
        measurements: u32,
    ) -> Result<MetricSubset, Error> {
        let k = self.spec.parameters().max(1) as u64;
        let limits = &self.gpu.limits;
        let limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let subset = fitted_subset(subset, measure, self.spec.walkers, measurements, limit, k);
        if self.metric.as_ref().is_none_or(|m| m.rows < subset.rows()) {
            self.allocate_metric(subset.rows(), k)?;
        }
        Ok(subset)
    }

    /// Allocates the metric's buffers for `rows` rows of `k` parameters and binds the O rows
    /// to the walk kernels.
    fn allocate_metric(&mut self, rows: usize, k: u64) -> Result<(), Error> {
        let width = k + 1;
        let device = &self.gpu.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(4),
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let o_rows = buffer("metric rows", rows as u64 * k * 4, U::STORAGE);
        let shift = buffer("metric shift", k * 4, U::STORAGE | U::COPY_DST);
        let job = buffer(
            "metric job",
            std::mem::size_of::<Products>() as u64,
            U::UNIFORM | U::COPY_DST,
        );
        let products = buffer(
            "metric products",
            width * width * 4,
            U::STORAGE | U::COPY_SRC,
        );
        let readback = buffer(
            "metric readback",
            width * width * 4,
            U::MAP_READ | U::COPY_DST,
        );
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::engine(format!(
                "cannot allocate the metric's {rows} rows of {k} parameters on {}: {e}",
                self.gpu.summary.label()
            )));
        }
        let kernels = &mut self.kernels;
        let bind = bind_group(
            device,
            &kernels.products,
            &[&job, &o_rows, &shift, &products],
        );
        for walk in std::iter::once(&mut kernels.walk).chain(kernels.observing_walk.as_mut()) {
            walk.bind = walk_bind_group(device, &walk.pipeline, &self.buffers, &o_rows);
        }
        self.metric = Some(MetricBuffers {
            rows,
            o_rows,
            shift,
            job,
            products,
            readback,
            bind,
        });
        Ok(())
    }

    /// The metric's sums over the O rows the call wrote: products on the device about the
    /// call's mean O (in f32), turned into raw sums in f64 here.
    pub(super) fn metric_sums(
        &self,
        moments: &Moments,
        subset: MetricSubset,
    ) -> Result<Metric, Error> {
        let mb = self.metric.as_ref().expect("prepared for this call");
        let k = self.spec.parameters();
        let width = k + 1;
        let n = moments.samples.max(1) as f64;
        let shift: Vec<f32> = moments.o.iter().map(|o| (o / n) as f32).collect();
        let q = &self.gpu.queue;
        q.write_buffer(&mb.shift, 0, bytemuck::cast_slice(&shift));
        let rows = subset.rows() as u32;
        // 64 x 64 outputs per workgroup (shaders/metric.wgsl).
        let blocks = (width as u32).div_ceil(64);
        let mut first = 0;
        while first < rows {
            let job = Products {
                rows,
                k: k as u32,
                first_row: first,
                row_count: METRIC_ROWS_PER_DISPATCH.min(rows - first),
                accumulate: (first > 0) as u32,
                ..Default::default()
            };
            q.write_buffer(&mb.job, 0, bytemuck::bytes_of(&job));
            let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
            let products = &self.kernels.products;
            pass(&mut encoder, products, &mb.bind, (blocks, blocks), None);
            q.submit([encoder.finish()]);
            first += job.row_count;
        }
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        let bytes = (width * width * 4) as u64;
        encoder.copy_buffer_to_buffer(&mb.products, 0, &mb.readback, 0, bytes);
        q.submit([encoder.finish()]);
        let slice = mb.readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        self.gpu.wait("computing the metric")?;
        let p: Vec<f64> = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::engine(format!("reading back the metric: {e}")))?;
            let values: &[f32] = bytemuck::cast_slice(&view);
            values[..width * width].iter().map(|&v| v as f64).collect()
        };
        mb.readback.unmap();
        let centre: Vec<f64> = shift.iter().map(|&v| v as f64).collect();
        Ok(raw_metric(&p, &centre, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Centred products about any centre give the raw sums of the rows.
    #[test]
    fn raw_sums_come_back_from_centred_products() {
        let rows = [[1.0, -2.0], [0.5, 3.0], [2.0, 0.25]];
        let centre = [0.75, -0.5];
        let (k, width) = (2, 3);
        let mut p = vec![0.0; width * width];
        for row in rows {
            let u = [row[0] - centre[0], row[1] - centre[1]];
            for i in 0..k {
                for j in 0..k {
                    p[i * width + j] += u[i] * u[j];
                }
                p[i * width + k] += u[i];
            }
        }
        let metric = raw_metric(&p, &centre, 3);
        assert_eq!(metric.samples, 3);
        for i in 0..k {
            let sum: f64 = rows.iter().map(|r| r[i]).sum();
            assert!((metric.o[i] - sum).abs() < 1e-12);
            for j in 0..k {
                let sum: f64 = rows.iter().map(|r| r[i] * r[j]).sum();
                assert!((metric.oo[i * k + j] - sum).abs() < 1e-12, "{i} {j}");
            }
        }
    }

    /// A subset whose rows do not fit the device's buffers is cut to half the rows that fit.
    #[test]
    fn subsets_fit_the_buffers() {
        let measure = Measure::EnergyAndMetric { samples: 1000 };
        let subset = MetricSubset::new(500, 100, 1000);
        assert_eq!(
            fitted_subset(subset, measure, 500, 100, 1 << 30, 10),
            subset
        );
        // 4000 bytes hold 100 rows of 10 parameters.
        let fitted = fitted_subset(subset, measure, 500, 100, 4000, 10);
        assert_eq!(fitted, MetricSubset::new(500, 100, 50));
        assert!(fitted.rows() <= 100);
    }
}
