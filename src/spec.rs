//! The config resolved into what the engines are built from (today what the observables
//! histogram), below the config so that the config can validate against it and the engines
//! read it without reading the config.

/// Most blocks one call is cut into.
pub const MAX_BLOCKS: u32 = 32;

/// Histogram bins of all kinds together, at most: the GPU keeps the radial and pair bins
/// per workgroup in workgroup memory (4 bytes a bin, next to the kernel's 4.4 KB of
/// reduction rows, within the 16 KiB every adapter offers), and blocks x copies of them all
/// in device memory.
pub const MAX_BINS: usize = 1800;

/// What to histogram, fixed for an engine's life.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservablesSpec {
    /// Radial one-body density: bins over [0, r_max).
    pub radial_bins: usize,
    pub r_max: f64,
    /// Pair distances: bins over [0, pair_max).
    pub pair_bins: usize,
    pub pair_max: f64,
    /// x-y density (D = 2 only; 0 otherwise): grid_bins^2 cells over [-r_max, r_max)^2.
    pub grid_bins: usize,
    /// The histograms take the call's measurements 0, n, 2n, ... (`takes_histogram`).
    pub histogram_every: u32,
}

impl ObservablesSpec {
    /// Index of the radial bins' overflow counter (r >= r_max) and start of the pair bins.
    pub fn radial_overflow(&self) -> usize {
        self.radial_bins
    }

    pub fn pair_offset(&self) -> usize {
        self.radial_bins + 1
    }

    pub fn grid_offset(&self) -> usize {
        self.pair_offset() + self.pair_bins + 1
    }

    /// Counters in all: every histogram's bins, each followed by one counter of what fell
    /// outside its range (the grid's only with a grid).
    pub fn bins(&self) -> usize {
        let grid = if self.grid_bins > 0 {
            self.grid_bins * self.grid_bins + 1
        } else {
            0
        };
        self.grid_offset() + grid
    }

    /// Whether the call's measurement `index` (0-based) enters the histograms.
    pub fn takes_histogram(&self, index: u32) -> bool {
        index.is_multiple_of(self.histogram_every)
    }

    /// Blocks of a call with `measurements` measurements per walker.
    pub fn blocks(measurements: u32) -> u32 {
        measurements.min(MAX_BLOCKS)
    }

    /// Block of the call's measurement `index` (0-based).
    pub fn block_of(index: u32, measurements: u32) -> u32 {
        (index as u64 * Self::blocks(measurements) as u64 / measurements as u64) as u32
    }

    /// Measurements per walker in each block of a call.
    pub fn block_lengths(measurements: u32) -> Vec<u32> {
        let mut lengths = vec![0; Self::blocks(measurements) as usize];
        for m in 0..measurements {
            lengths[Self::block_of(m, measurements) as usize] += 1;
        }
        lengths
    }
}
