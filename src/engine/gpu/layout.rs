//! Host mirrors of the WGSL uniform structs: `Job` in shaders/walk.wgsl, `DmcJob` (`Job` in
//! shaders/dmc.wgsl), `CombJob` (`Comb` in shaders/comb.wgsl) and `Reduce` in
//! shaders/reduce.wgsl. Keep the field names, order and types identical (a test compares
//! the layouts with naga's reflection of the shaders).

use bytemuck::{Pod, Zeroable};

/// One dispatch of the walk kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Job {
    /// Walkers of this engine.
    pub walkers: u32,
    /// Monte Carlo steps of this dispatch.
    pub steps: u32,
    /// Steps made before this dispatch (64-bit, low and high word).
    pub step_lo: u32,
    pub step_hi: u32,
    /// In-call index of the dispatch's first step (measurements fall on multiples of K).
    pub call_step: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Workgroups along x of the 2-D grid, and workgroups holding walkers.
    pub groups_x: u32,
    pub groups: u32,
    /// Measurements per walker in the whole `sample` call (for the walker means).
    pub call_measurements: u32,
    /// Global index of walker 0 (random streams use global indices).
    pub first_walker: u32,
    /// Subtracted from E_L before summing in f32.
    pub shift: f32,
    /// Particles per spin block of the Slater determinants (a run-time loop bound).
    pub slater_n: u32,
    /// The metric's sample subset (`MetricSubset`); stride 0: no metric.
    pub metric_stride: u32,
    pub metric_every: u32,
    pub metric_per_walker: u32,
    /// Blocks the call's observables are cut into (`FLAG_OBSERVE`).
    pub obs_blocks: u32,
}

/// One dispatch of the DMC generation kernel (shaders/dmc.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DmcJob {
    pub walkers: u32,
    pub first_walker: u32,
    /// The generation's index (64-bit, low and high word): its random streams.
    pub generation_lo: u32,
    pub generation_hi: u32,
    pub groups_x: u32,
    pub groups: u32,
    pub slater_n: u32,
    /// 0: only measure E_L at the positions (the start); 1: a generation.
    pub moves: u32,
    /// The branching factor's settings (`Branching`).
    pub tau_eff: f32,
    pub trial_energy: f32,
    pub reference: f32,
    pub cutoff: f32,
}

/// Components of the DMC kernel's per-workgroup sums (`GenerationSums::to_array`).
pub const DMC_SUMS: usize = 10;

/// One comb on the device (shaders/comb.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct CombJob {
    pub walkers: u32,
    pub groups_x: u32,
    /// Blocks of the scan (SCAN_WG walkers each).
    pub blocks: u32,
    /// The comb's uniform draw.
    pub u: f32,
}

pub const FLAG_MEASURE: u32 = 1;
pub const FLAG_RESET_PARTIALS: u32 = 2;
pub const FLAG_FIRST_OF_CALL: u32 = 4;
pub const FLAG_LAST_OF_CALL: u32 = 8;
/// Measure the observables (the spec's histograms and scalars) in this call.
pub const FLAG_OBSERVE: u32 = 16;

/// Copies of the histogram counts in device memory (`hist`: blocks x copies x bins), one per
/// workgroup modulo this: the x-y grid is counted there directly (it is too large for
/// workgroup memory without halving the walk kernel's occupancy, which doubled the
/// production time on an H200), and the copies spread the atomic adds to its busy central
/// cells. The host adds the copies up.
pub const HIST_COPIES: u32 = 32;

/// One segmented-sum dispatch of the reduce kernel: element i < count of segment j is
/// input[j * stride_j + i * stride_i]; each workgroup sums `span` consecutive elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Reduce {
    pub count: u32,
    pub segments: u32,
    pub stride_j: u32,
    pub stride_i: u32,
    pub out_offset: u32,
    pub groups_x: u32,
    pub span: u32,
    pub _pad0: u32,
}

/// One dispatch of the metric kernel (shaders/metric.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Products {
    /// Rows of O vectors (samples) and parameters K.
    pub rows: u32,
    pub k: u32,
    /// The rows this dispatch adds, from `first_row`; `accumulate` 0 stores instead of adding.
    pub first_row: u32,
    pub row_count: u32,
    pub accumulate: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// The scalars that lead a workgroup's partial sums: E-shift, its square, accepted moves,
/// walker mean and its square.
pub const WALKER_SCALARS: usize = 5;

/// Components of a workgroup's partial sums: the `WALKER_SCALARS`, then K sums of O_i and K
/// sums of (E-shift) O_i.
pub fn reduced_components(parameters: usize) -> usize {
    WALKER_SCALARS + 2 * parameters
}

/// Components of a workgroup's partial sums for `spec`: `reduced_components`, then with
/// observables their scalars for each of the most blocks a call has.
pub fn components(spec: &crate::engine::EngineSpec) -> usize {
    use crate::engine::observables::{MAX_BLOCKS, SCALARS};
    let observables = if spec.observables.is_some() {
        SCALARS * MAX_BLOCKS as usize
    } else {
        0
    };
    reduced_components(spec.parameters()) + observables
}
