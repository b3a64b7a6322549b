//! The CPU engine: f64, every walker an independent chain, parallel over fixed chunks of
//! walkers with rayon. Chunks depend only on the walker count (and whether lanes are on) and
//! are summed in order, so results are bit-identical for any number of threads. The scalar
//! path (`walk_scalar`, one walker at a time) is the reference and runs every system; the lane
//! path (`lanes`) runs the common ones 64 walkers at a time and is the default where it can.

mod chain;
mod dmc;
mod lanes;

use rayon::prelude::*;

pub use self::chain::REFRESH_EVERY;
pub(crate) use self::chain::initial_position;
use self::chain::{Chain, checks_health};
pub use self::dmc::DmcWalkers;
pub use self::lanes::{L as LANES, Simd};
use std::sync::{Mutex, MutexGuard};

use super::observables::{Binning, Histogram, ObservableSums, ObservablesSpec, SCALARS, observe};
use super::{
    Engine, EngineSpec, Measure, Metric, MetricSubset, Moments, Progress, WalkerState,
    check_host_memory, check_state,
};
use crate::error::Error;
use crate::physics::Params;

/// Steps per segment: walkers are advanced a segment at a time so the per-chunk time series
/// stays small (chunks x segment measurements) however long the call.
const SEGMENT_STEPS: u32 = 1024;

/// At most this many chunks, whatever the walker count.
const MAX_CHUNKS: usize = 512;

/// A sample's O vector with its row in the metric's subset.
type MetricRow = (usize, Vec<f64>);

/// Every walker's sums over a call: of E_L, and (observing, else empty) of the observables'
/// scalars.
type WalkerSums<'a> = (&'a mut [f64], &'a mut [[f64; SCALARS]]);

pub struct CpuEngine {
    spec: EngineSpec,
    positions: Vec<f64>,
    steps_done: u64,
    pool: rayon::ThreadPool,
    threads: usize,
    /// Walk `lanes::L` walkers at a time with these instructions (where `lanes::supports`
    /// the system); `None`: one at a time.
    lanes: Option<Simd>,
}

impl CpuEngine {
    /// Builds the engine with `threads` worker threads (0: one per core) and places every
    /// walker at its initial position.
    pub fn new(spec: EngineSpec, threads: usize) -> Result<Self, Error> {
        let walkers = spec.walkers as u64;
        let bytes = walkers * (spec.coordinates() as u64 + 1) * 8;
        check_host_memory(
            bytes,
            &format!("{walkers} walkers on the CPU engine"),
            "use fewer walkers",
        )?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::engine(format!("cannot start {threads} CPU threads: {e}")))?;
        let m = spec.coordinates();
        let mut positions = vec![0.0; spec.walkers as usize * m];
        for (w, x) in positions.chunks_mut(m.max(1)).enumerate() {
            initial_position(&spec, spec.first_walker + w as u32, x);
        }
        let threads = pool.current_num_threads();
        let lanes = lanes::supports(&spec).then(Simd::best);
        Ok(Self {
            spec,
            positions,
            steps_done: 0,
            pool,
            threads,
            lanes,
        })
    }

    /// Walks the walkers in SIMD lanes with `simd` (by default the best this CPU has) where
    /// the lane engine supports the system; `None` keeps the scalar reference engine.
    pub fn with_lanes(mut self, simd: Option<Simd>) -> Result<Self, Error> {
        let simd = lanes::checked(simd)?;
        self.lanes = simd.filter(|_| lanes::supports(&self.spec));
        Ok(self)
    }

    /// Host memory the engine for `spec` with `threads` threads (0: one per core) allocates
    /// in a call of `steps` measured steps: positions and per-walker sums, every chunk's sums
    /// of a segment (held together until added up), a chain or lane group per thread, the
    /// call's sums.
    pub fn host_bytes(spec: &EngineSpec, threads: usize, steps: u32) -> u64 {
        let w = spec.walkers as u64;
        let (m, n, k) = (
            spec.coordinates() as u64,
            spec.hidden() as u64,
            spec.parameters() as u64,
        );
        let chunks = w.div_ceil(w.div_ceil(MAX_CHUNKS as u64).max(1));
        let every = spec.sampler.measure_every;
        let segment_measurements = (SEGMENT_STEPS / every).max(1) as u64;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            t => t,
        } as u64;
        let moments = |series: u64| (2 * k + series) * 8;
        // A chain per thread, or a lane group with its sums.
        let chain = (k + 4 * m + 4 * n) * 8;
        let per_thread = match lanes::supports(spec) {
            true => chain.max(lanes::thread_bytes(spec)),
            false => chain,
        };
        // Per walker: its position and sums of E_L and, observing, of the observables' scalars.
        let observed = if spec.observables.is_some() {
            SCALARS as u64
        } else {
            0
        };
        w * (m + 1 + observed) * 8
            + chunks * moments(segment_measurements)
            + 2 * moments((steps / every) as u64)
            + threads * per_thread
    }

    /// Walkers per chunk: a whole number of lane groups for the lane engine.
    fn chunk_walkers(&self) -> usize {
        let chunk = (self.spec.walkers as usize).div_ceil(MAX_CHUNKS).max(1);
        match self.lanes {
            Some(_) => chunk.next_multiple_of(lanes::L),
            None => chunk,
        }
    }

    /// Advances every walker `len` steps from `self.steps_done`, one `Moments` per chunk,
    /// measuring `what`; `ends_call`: the segment ends the `sample` call. With a metric
    /// subset, each chunk also returns the O vectors of its selected samples with their rows.
    fn segment(
        &mut self,
        params: &Params,
        len: u32,
        what: SegmentMeasure,
        ends_call: bool,
        (walker_energy, walker_observed): WalkerSums,
        progress: &dyn Progress,
    ) -> Vec<(Moments, Vec<MetricRow>)> {
        let SegmentMeasure {
            from: measure_from,
            subset,
            observing,
        } = what;
        let spec = &self.spec;
        let m = spec.coordinates();
        let chunk = self.chunk_walkers();
        let every = spec.sampler.measure_every;
        // Measured steps of this segment: in-call indices k with k % every == 0.
        let measured: Vec<u32> = match measure_from {
            Some(first) => (0..len).filter(|i| (first + i) % every == 0).collect(),
            None => Vec::new(),
        };
        // The block of each measured step, and whether the histograms take it, when observing.
        let blocks: Vec<(usize, bool)> = match (observing, &spec.observables, measure_from) {
            (Some((calls, _)), Some(o), Some(first)) => measured
                .iter()
                .map(|k| {
                    let index = measurement_index(first, *k, every);
                    let block = ObservablesSpec::block_of(index, calls) as usize;
                    (block, o.takes_histogram(index))
                })
                .collect(),
            _ => Vec::new(),
        };
        let job = SegmentJob {
            spec,
            params,
            len,
            steps_done: self.steps_done,
            ends_call,
            measure_from,
            measured,
            blocks,
            subset,
            binning: spec.observables.as_ref().map(Binning::new),
            bins: spec.observables.as_ref().map_or(0, ObservablesSpec::bins),
            progress,
        };
        let lanes = self.lanes;
        let positions = &mut self.positions;
        // The chunks' walkers' observables sums (none when not observing).
        let observed: Vec<&mut [[f64; SCALARS]]> = match walker_observed.is_empty() {
            true => walker_energy
                .chunks(chunk)
                .map(|_| Default::default())
                .collect(),
            false => walker_observed.chunks_mut(chunk).collect(),
        };
        self.pool.install(|| {
            positions
                .par_chunks_mut(chunk * m)
                .zip(walker_energy.par_chunks_mut(chunk))
                .zip(observed)
                .enumerate()
                .map(|(c, ((xs, energies), observed))| {
                    let mut sums = Moments::zeros(spec.parameters(), job.measured.len());
                    // The thread runs this chunk to the end before any other: its counts are
                    // its own meanwhile.
                    let counts = observing.map(|(calls, threads)| {
                        sums.observables = Some(ObservableSums::scalars_only(calls));
                        let t = rayon::current_thread_index().unwrap_or(0) % threads.len();
                        threads[t].lock().expect("no panics while counting")
                    });
                    let mut out = ChunkOut {
                        sums,
                        rows: Vec::new(),
                        energies,
                        observed,
                        counts,
                    };
                    let first = (c * chunk) as u32;
                    match lanes {
                        Some(simd) => lanes::walk_chunk(simd, &job, first, xs, &mut out),
                        None => walk_scalar(&job, first, xs, &mut out),
                    }
                    (out.sums, out.rows)
                })
                .collect()
        })
    }
}

/// Walks the chunk of walkers `xs` (positions, walker-major; `first` the local index of the
/// first) through the segment `job` one walker at a time, into `out`.
fn walk_scalar(job: &SegmentJob, first: u32, xs: &mut [f64], out: &mut ChunkOut) {
    let spec = job.spec;
    let mut chain = Chain::new(spec, job.params);
    for (i, x) in xs.chunks_mut(spec.coordinates()).enumerate() {
        let local = first + i as u32;
        chain.load(spec.first_walker + local, x);
        let mut next = 0;
        for k in 0..job.len {
            let step = job.steps_done + k as u64 + 1;
            let (acc, att) = chain.mc_step(step);
            out.sums.accepted += acc as f64;
            out.sums.attempted += att as f64;
            let measuring = job.measured.get(next) == Some(&k);
            if checks_health(step, measuring, job.ends_call && k + 1 == job.len) {
                out.sums.resets += chain.check_health(step) as u64;
            }
            if measuring {
                let e = chain.local_energy();
                accumulate(&mut out.sums, chain.o(), e);
                out.energies[i] += e;
                out.sums.series[next] += e;
                job.metric_row(out, k, local, || chain.o().to_vec());
                if let Some(values) = job.observe(out, next, chain.position(), chain.energy_parts())
                {
                    for (sum, v) in out.observed[i].iter_mut().zip(values) {
                        *sum += v;
                    }
                }
                next += 1;
            }
        }
        x.copy_from_slice(chain.position());
        job.progress.advance(job.len as u64);
    }
}

/// What every chunk of a segment shares.
struct SegmentJob<'a> {
    spec: &'a EngineSpec,
    params: &'a Params,
    len: u32,
    /// Steps made before the segment (the random streams' step counter).
    steps_done: u64,
    /// The segment ends the `sample` call.
    ends_call: bool,
    /// In-call index (1-based) of the segment's first step, when the call measures.
    measure_from: Option<u32>,
    /// The segment's measured steps (0-based in the segment).
    measured: Vec<u32>,
    /// Per measured step, its observables block and whether the histograms take it; empty
    /// when not observing (every chunk then has observables sums and histogram counts).
    blocks: Vec<(usize, bool)>,
    subset: Option<MetricSubset>,
    binning: Option<Binning>,
    bins: usize,
    progress: &'a dyn Progress,
}

/// What a chunk returns, and where it adds its walkers' energies.
struct ChunkOut<'a> {
    sums: Moments,
    rows: Vec<MetricRow>,
    /// The chunk's walkers' sums of E_L.
    energies: &'a mut [f64],
    /// The chunk's walkers' sums of the observables' scalars, when observing (else empty).
    observed: &'a mut [[f64; SCALARS]],
    /// This thread's histogram counts, when observing.
    counts: Option<MutexGuard<'a, Vec<u64>>>,
}

impl SegmentJob<'_> {
    /// The in-call index of the measurement at segment step `step`.
    fn measurement(&self, step: u32) -> u32 {
        let every = self.spec.sampler.measure_every;
        measurement_index(self.measure_from.unwrap_or(1), step, every)
    }

    /// Adds walker `walker`'s O vector of segment step `step` where the metric takes it.
    fn metric_row(&self, out: &mut ChunkOut, step: u32, walker: u32, o: impl FnOnce() -> Vec<f64>) {
        if let Some(row) = self
            .subset
            .and_then(|s| s.row(walker, self.measurement(step)))
        {
            out.rows.push((row, o()));
        }
    }

    /// The observables block of the segment's measurement `index` and whether the histograms
    /// take it; `None` when not observing.
    fn observed(&self, index: usize) -> Option<(usize, bool)> {
        self.blocks.get(index).copied()
    }

    /// The histogram counts of an `observed` measurement's block with their binning, when
    /// the histograms take it.
    fn histogram<'o>(
        &'o self,
        counts: &'o mut Option<MutexGuard<Vec<u64>>>,
        (b, binned): (usize, bool),
    ) -> Option<Histogram<'o>> {
        let counts = counts.as_mut().filter(|_| binned)?;
        let bins = b * self.bins..(b + 1) * self.bins;
        Some((self.binning.as_ref()?, &mut counts[bins]))
    }

    /// Adds a walker's sample at position `x` with E_L's parts to the observables; returns
    /// the sample's scalars, when observing.
    fn observe(
        &self,
        out: &mut ChunkOut,
        index: usize,
        x: &[f64],
        parts: [f64; 3],
    ) -> Option<[f64; SCALARS]> {
        let observed = self.observed(index)?;
        let histogram = self.histogram(&mut out.counts, observed);
        let sums = out.sums.observables.as_mut().expect("observing");
        Some(observe(
            x,
            self.spec.system.dims,
            parts,
            &mut sums.blocks[observed.0],
            histogram,
        ))
    }
}

/// The in-call index of the measurement at step `step` of a segment whose first step is the
/// call's step `first` (1-based); measurements fall on the call's multiples of `every`.
fn measurement_index(first: u32, step: u32, every: u32) -> u32 {
    (first + step) / every - 1
}

/// What a segment measures: from which in-call step on (1-based; `None`: nothing), which
/// samples enter the metric, and for the observables the call's measurements per walker with
/// the histogram counts of each thread (blocks x bins; counts are whole numbers, so their sum
/// does not depend on which thread added what).
#[derive(Clone, Copy)]
struct SegmentMeasure<'a> {
    from: Option<u32>,
    subset: Option<MetricSubset>,
    observing: Option<(u32, &'a [Mutex<Vec<u64>>])>,
}

fn accumulate(sums: &mut Moments, o: &[f64], e: f64) {
    sums.samples += 1;
    sums.energy += e;
    sums.energy_sq += e * e;
    for ((so, seo), &oi) in sums.o.iter_mut().zip(sums.energy_o.iter_mut()).zip(o) {
        *so += oi;
        *seo += e * oi;
    }
}

impl Engine for CpuEngine {
    fn describe(&self) -> String {
        let plural = if self.threads == 1 { "" } else { "s" };
        let lanes = match self.lanes {
            Some(simd) => format!(", {}-wide lanes, {}", lanes::L, simd.name()),
            None => String::new(),
        };
        format!("cpu ({} thread{plural}, f64{lanes})", self.threads)
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
        let measurements = if measure.any() {
            (steps / every) as usize
        } else {
            0
        };
        let subset = measure.metric_subset(self.spec.walkers, measurements as u32);
        let mut total = Moments::zeros(self.spec.parameters(), 0);
        let mut metric = subset.map(|_| Metric::zeros(self.spec.parameters()));
        total.series.reserve(measurements);
        let mut walker_energy = vec![0.0; self.spec.walkers as usize];
        let observing = measure.observes() && measurements > 0 && self.spec.observables.is_some();
        let mut walker_observed = match observing {
            true => vec![[0.0; SCALARS]; self.spec.walkers as usize],
            false => Vec::new(),
        };
        // Histogram counts per thread, blocks x bins.
        let histogram_len = self.spec.observables.as_ref().map_or(0, |h| {
            h.bins() * ObservablesSpec::blocks(measurements as u32) as usize
        });
        let counts: Vec<Mutex<Vec<u64>>> = match observing {
            true => (0..self.threads)
                .map(|_| Mutex::new(vec![0; histogram_len]))
                .collect(),
            false => Vec::new(),
        };
        // Segments are whole multiples of the measurement interval.
        let segment = (SEGMENT_STEPS / every).max(1) * every;
        let mut done = 0;
        while done < steps {
            let len = segment.min(steps - done);
            let what = SegmentMeasure {
                from: measure.any().then_some(done + 1),
                subset,
                observing: observing.then_some((measurements as u32, counts.as_slice())),
            };
            let ends_call = done + len == steps;
            let chunks = self.segment(
                params,
                len,
                what,
                ends_call,
                (&mut walker_energy, &mut walker_observed),
                progress,
            );
            let mut sums = Moments::zeros(self.spec.parameters(), chunks[0].0.series.len());
            let mut rows = Vec::new();
            for (chunk, chunk_rows) in chunks {
                sums.add_walkers(&chunk);
                rows.extend(chunk_rows);
            }
            if let Some(metric) = &mut metric {
                // Added in row order, whatever the chunking.
                rows.sort_by_key(|(row, _)| *row);
                let flat: Vec<f64> = rows.into_iter().flat_map(|(_, o)| o).collect();
                self.pool.install(|| metric.add_rows(&flat));
            }
            total.append_steps(sums);
            self.steps_done += len as u64;
            done += len;
            if done < steps && progress.cancelled() {
                return Err(Error::Interrupted("sampling cancelled".into()));
            }
        }
        if let Some(obs) = total.observables.as_mut() {
            for sums in &walker_observed {
                obs.walkers.push(&sums.map(|s| s / measurements as f64));
            }
            let bins = histogram_len / obs.blocks.len();
            for (b, block) in obs.blocks.iter_mut().enumerate() {
                block.counts = vec![0.0; bins];
                for thread in &counts {
                    let thread = thread.lock().expect("no panics while counting");
                    for (c, &n) in block.counts.iter_mut().zip(&thread[b * bins..]) {
                        *c += n as f64;
                    }
                }
            }
        }
        total.walkers = self.spec.walkers as u64;
        total.metric = metric;
        if measurements > 0 {
            for e in &walker_energy {
                total.walker_means.push(e / measurements as f64);
            }
        }
        Ok(total)
    }

    fn state(&self) -> Result<WalkerState, Error> {
        Ok(WalkerState {
            steps_done: self.steps_done,
            positions: self.positions.clone(),
        })
    }

    fn set_state(&mut self, state: &WalkerState) -> Result<(), Error> {
        check_state(&self.spec, state)?;
        self.positions.copy_from_slice(&state.positions);
        self.steps_done = state.steps_done;
        Ok(())
    }
}
