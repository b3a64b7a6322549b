//! The GPU engine's observables: the checks that a call's counts fit the kernel's 32-bit
//! integers, the observing walk kernel and its sums set up for a call, and the readback of
//! the block scalars, histograms and walker means (the CPU twin: `engine/observables.rs`).

use super::layout::{HIST_COPIES, reduced_components};
use super::shader::WORKGROUP;
use super::{GpuEngine, walk_kernel};
use crate::engine::observables::{MAX_BLOCKS, ObservableSums, ObservablesSpec, SCALARS};
use crate::error::Error;

/// Refuses a call of `call_measurements` measurements per walker whose observables' counts
/// could overflow the kernel's u32s, on `particles` particles and `groups` workgroups; the
/// measurements of each block otherwise.
pub(super) fn block_lengths(
    o: &ObservablesSpec,
    call_measurements: u32,
    particles: usize,
    groups: u32,
) -> Result<Vec<u32>, Error> {
    // The kernel's block index m * blocks / measurements is a u32 product.
    if call_measurements as u64 * MAX_BLOCKS as u64 > u32::MAX as u64 {
        return Err(Error::input(format!(
            "{call_measurements} measurements per walker in one call are more than the GPU \
             engine's observables count ({}); use fewer production steps or a larger \
             sampler.measure_every",
            u32::MAX / MAX_BLOCKS
        )));
    }
    let lengths = ObservablesSpec::block_lengths(call_measurements);
    // The counts are u32: a bin of one copy could hold every particle (or pair) of its
    // walkers in the block's binned measurements (at most ceil(length / n) of a run of
    // `length` measurements are multiples of n).
    let p = particles as u64;
    let per_sample = p.max(p * p.saturating_sub(1) / 2);
    let longest = lengths.iter().copied().max().unwrap_or(0);
    let binned = longest.div_ceil(o.histogram_every) as u64;
    let groups_per_copy = groups.div_ceil(HIST_COPIES) as u64;
    let walkers_per_copy = groups_per_copy * WORKGROUP as u64;
    if walkers_per_copy * binned * per_sample > u32::MAX as u64 {
        return Err(Error::input(format!(
            "{walkers_per_copy} walkers per histogram copy x {binned} binned measurements per \
             block x {per_sample} particles or pairs could overflow the GPU's 32-bit \
             histogram counts; use fewer production steps per call, a larger \
             observables.histogram_every, or the CPU engine"
        )));
    }
    Ok(lengths)
}

/// Adds a flush's block scalars (the partial sums after `reduced_components`) to `obs`.
pub(super) fn add_block_scalars(obs: &mut ObservableSums, partials: &[f64], parameters: usize) {
    let base = reduced_components(parameters);
    for (b, block) in obs.blocks.iter_mut().enumerate() {
        for (c, s) in block.scalars.iter_mut().enumerate() {
            *s += partials[base + b * SCALARS + c];
        }
    }
}

impl GpuEngine {
    /// Readies a call of `call_measurements` measurements per walker to observe `o`: the
    /// observing kernel (compiled at the first such call), the block sums with their sample
    /// counts, and the device's histograms and walker sums cleared.
    pub(super) fn begin_observing(
        &mut self,
        o: &ObservablesSpec,
        call_measurements: u32,
    ) -> Result<ObservableSums, Error> {
        if self.kernels.observing_walk.is_none() {
            let o_rows = self
                .metric
                .as_ref()
                .map_or(&self.buffers.no_rows, |m| &m.o_rows);
            let walk = walk_kernel(
                &self.gpu,
                &self.spec,
                &self.buffers,
                o_rows,
                self.kernels.build,
            )?;
            self.kernels.observing_walk = Some(walk);
        }
        let particles = self.spec.system.particles;
        let lengths = block_lengths(o, call_measurements, particles, self.sizes.groups)?;
        let mut obs = ObservableSums::zeros(o, call_measurements);
        for (block, n) in obs.blocks.iter_mut().zip(lengths) {
            block.samples = n as f64 * self.spec.walkers as f64;
        }
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        encoder.clear_buffer(&self.buffers.hist, 0, None);
        // The walkers' sums of the scalars, after their energies (the kernel adds to them).
        let energies = self.sizes.walkers * 4;
        encoder.clear_buffer(&self.buffers.walker_energy, energies, None);
        self.gpu.queue.submit([encoder.finish()]);
        Ok(obs)
    }

    /// Adds the call's histogram counts (every copy's) and the walkers' means over its
    /// `measurements` measurements to `obs`.
    pub(super) fn finish_observing(
        &self,
        obs: &mut ObservableSums,
        measurements: u32,
    ) -> Result<(), Error> {
        self.read_histograms(obs)?;
        self.read_walker_means(obs, measurements)
    }

    /// Adds the call's histogram counts (every copy's) to `obs`.
    fn read_histograms(&self, obs: &mut ObservableSums) -> Result<(), Error> {
        let bins = obs.blocks.first().map_or(0, |b| b.counts.len());
        let per_block = HIST_COPIES as usize * bins;
        let bytes = (obs.blocks.len() * per_block * 4) as u64;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.buffers.hist, 0, &self.buffers.hist_readback, 0, bytes);
        self.gpu.queue.submit([encoder.finish()]);
        let slice = self.buffers.hist_readback.slice(..bytes);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        self.gpu.wait("reading the histograms")?;
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::engine(format!("reading the histograms: {e}")))?;
            let counts: &[u32] = bytemuck::cast_slice(&view);
            for (block, copies) in obs.blocks.iter_mut().zip(counts.chunks(per_block)) {
                for copy in copies.chunks(bins) {
                    for (c, &n) in block.counts.iter_mut().zip(copy) {
                        *c += n as f64;
                    }
                }
            }
        }
        self.buffers.hist_readback.unmap();
        Ok(())
    }

    /// Adds every walker's means of the observables' scalars over a call of `measurements`
    /// measurements (its sums, which the walk kernel keeps after the walkers' energies) to
    /// `obs`.
    fn read_walker_means(&self, obs: &mut ObservableSums, measurements: u32) -> Result<(), Error> {
        let walkers = self.sizes.walkers;
        let (offset, bytes) = (walkers * 4, walkers * SCALARS as u64 * 4);
        let source = &self.buffers.walker_energy;
        let sums = self.read_f32(source, offset, bytes, "reading the walkers' observables")?;
        let n = measurements as f64;
        for walker in sums.chunks_exact(SCALARS) {
            let means: [f64; SCALARS] = std::array::from_fn(|c| walker[c] as f64 / n);
            obs.walkers.push(&means);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(histogram_every: u32) -> ObservablesSpec {
        ObservablesSpec {
            radial_bins: 10,
            r_max: 4.0,
            pair_bins: 10,
            pair_max: 8.0,
            grid_bins: 0,
            histogram_every,
        }
    }

    /// Calls whose block index or histogram counts could overflow a u32 are refused, with
    /// what to change; others get the blocks' lengths.
    #[test]
    fn counts_beyond_u32_are_refused() {
        let lengths = block_lengths(&spec(1), 100, 2, 4).unwrap();
        assert_eq!(lengths.len(), 32);
        assert_eq!(lengths.iter().sum::<u32>(), 100);
        let err = block_lengths(&spec(1), u32::MAX / MAX_BLOCKS + 1, 2, 4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sampler.measure_every"), "{err}");
        // 2^20 walkers per copy x 2^10 binned measurements x 15 pairs of 6 particles.
        let groups = HIST_COPIES * (1 << 20) / WORKGROUP;
        let err = block_lengths(&spec(1), 32 << 10, 6, groups)
            .unwrap_err()
            .to_string();
        assert!(err.contains("observables.histogram_every"), "{err}");
        assert!(block_lengths(&spec(64), 32 << 10, 6, groups).is_ok());
    }
}
