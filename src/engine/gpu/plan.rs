//! The plan of one `sample` call: the walk kernel's dispatches with their jobs and flags, and
//! after which of them the partial sums are reduced and read back. Pure, so that it is tested
//! without a device; `GpuEngine::sample` executes it.

use super::layout::{
    FLAG_FIRST_OF_CALL, FLAG_LAST_OF_CALL, FLAG_MEASURE, FLAG_OBSERVE, FLAG_RESET_PARTIALS, Job,
};
use super::{BufferSizes, FLUSH_DISPATCHES};
use crate::engine::{EngineSpec, MetricSubset};
use crate::spec::ObservablesSpec;

/// What a call asks of the dispatches.
#[derive(Clone, Copy, Debug)]
pub(super) struct Call {
    pub steps: u32,
    /// The engine's step counter before the call (the random streams' step).
    pub steps_done: u64,
    /// Measure E_L and the O_i every `measure_every` steps.
    pub measure: bool,
    /// Measure the observables too.
    pub observe: bool,
    /// The metric's sample subset, when the call measures the metric.
    pub subset: Option<MetricSubset>,
    /// Subtracted from E_L before the f32 sums.
    pub shift: f32,
}

/// The dispatches between two readbacks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Batch {
    pub dispatches: u32,
    pub steps: u64,
    /// Measurements per walker: the batch's series entries.
    pub measurements: u32,
}

/// One dispatch of the walk kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Dispatch {
    pub job: Job,
    /// Index of the dispatch in its batch: its timestamp slot.
    pub slot: u32,
    /// Measurements per walker it adds to the series, and the batch's before it.
    pub measurements: u32,
    pub series_offset: u32,
    /// The batch that ends with this dispatch, to reduce and read back.
    pub flush: Option<Batch>,
}

impl Dispatch {
    /// Whether this is the call's last dispatch.
    pub fn last(&self) -> bool {
        self.job.flags & FLAG_LAST_OF_CALL != 0
    }
}

/// Measurements per walker of a call of `steps` steps, measuring every `every` steps.
pub(super) fn call_measurements(steps: u32, every: u32, measure: bool) -> u32 {
    if measure { steps / every } else { 0 }
}

/// The dispatches of `call`: at most `steps_per_dispatch` steps each, a readback after every
/// FLUSH_DISPATCHES of them and after the last.
pub(super) fn plan(spec: &EngineSpec, sizes: &BufferSizes, call: &Call) -> Vec<Dispatch> {
    let every = spec.sampler.measure_every;
    let call_measurements = call_measurements(call.steps, every, call.measure);
    let template = Job {
        walkers: spec.walkers,
        groups_x: sizes.grid.0,
        groups: sizes.groups,
        call_measurements,
        first_walker: spec.first_walker,
        shift: call.shift,
        slater_n: spec.wavefunction.slater.as_ref().map_or(0, |s| s.n as u32),
        metric_stride: call.subset.map_or(0, |s| s.walker_stride),
        metric_every: call.subset.map_or(1, |s| s.every),
        metric_per_walker: call.subset.map_or(0, |s| s.per_walker),
        obs_blocks: ObservablesSpec::blocks(call_measurements),
        ..Job::default()
    };
    let mut dispatches = Vec::new();
    let mut batch = Batch::default();
    let mut done = 0u32;
    while done < call.steps {
        let len = sizes.steps_per_dispatch.min(call.steps - done);
        let measurements = if call.measure {
            (done + len) / every - done / every
        } else {
            0
        };
        let last = done + len == call.steps;
        let flags = [
            (call.measure, FLAG_MEASURE),
            (batch.dispatches == 0, FLAG_RESET_PARTIALS),
            (done == 0, FLAG_FIRST_OF_CALL),
            (last, FLAG_LAST_OF_CALL),
            (call.observe, FLAG_OBSERVE),
        ]
        .into_iter()
        .filter(|&(on, _)| on)
        .fold(0, |flags, (_, flag)| flags | flag);
        let step = call.steps_done + done as u64;
        let job = Job {
            steps: len,
            step_lo: step as u32,
            step_hi: (step >> 32) as u32,
            call_step: done,
            flags,
            ..template
        };
        let (slot, series_offset) = (batch.dispatches, batch.measurements);
        batch.dispatches += 1;
        batch.steps += len as u64;
        batch.measurements += measurements;
        let flush =
            (batch.dispatches == FLUSH_DISPATCHES || last).then(|| std::mem::take(&mut batch));
        dispatches.push(Dispatch {
            job,
            slot,
            measurements,
            series_offset,
            flush,
        });
        done += len;
    }
    dispatches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn spec(sets: &[&str]) -> EngineSpec {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        EngineSpec::from_config(&Config::load(None, &sets).unwrap())
    }

    fn sizes(steps_per_dispatch: u32) -> BufferSizes {
        BufferSizes {
            walkers: 100,
            coordinates: 4,
            groups: 2,
            grid: (2, 1),
            components: 19,
            steps_per_dispatch,
            measurements: steps_per_dispatch + 1,
            hist: 4,
            walker_values: 1,
        }
    }

    fn call(steps: u32, measure: bool) -> Call {
        Call {
            steps,
            steps_done: (1 << 32) - 10,
            measure,
            observe: false,
            subset: None,
            shift: 2.5,
        }
    }

    /// The dispatches cover the call's steps in order, continue the step counter across
    /// 2^32, flag the first and last of the call and of each batch, and the batches add up.
    #[test]
    fn dispatches_cover_the_call_and_batches_end_in_readbacks() {
        let spec = spec(&["walkers=100", "sampler.measure_every=3"]);
        let call = call(40 * 7 + 5, true);
        let plan = plan(&spec, &sizes(7), &call);
        assert_eq!(plan.len(), 41);
        let mut step = call.steps_done;
        let (mut batch, mut batches) = (Batch::default(), 0);
        for (i, d) in plan.iter().enumerate() {
            let job = &d.job;
            assert_eq!(job.step_lo as u64 | (job.step_hi as u64) << 32, step);
            assert_eq!(job.call_step as u64, step - call.steps_done);
            assert_eq!(job.steps, if i == 40 { 5 } else { 7 });
            assert_eq!((job.walkers, job.groups_x, job.groups), (100, 2, 2));
            assert_eq!((job.call_measurements, job.shift), (95, 2.5));
            assert_eq!(job.obs_blocks, 32);
            assert_eq!(job.metric_stride, 0);
            let flag = |f: u32| job.flags & f != 0;
            assert!(flag(FLAG_MEASURE) && !flag(FLAG_OBSERVE));
            assert_eq!(flag(FLAG_FIRST_OF_CALL), i == 0);
            assert_eq!(flag(FLAG_LAST_OF_CALL), i == 40);
            assert_eq!(d.last(), i == 40);
            assert_eq!(flag(FLAG_RESET_PARTIALS), d.slot == 0);
            assert_eq!(d.slot, i as u32 % FLUSH_DISPATCHES);
            assert_eq!(d.series_offset, batch.measurements);
            // Measurements fall on the call's steps 3, 6, 9, ... (after steps 0..3, ...).
            let first = job.call_step;
            assert_eq!(d.measurements, (first + job.steps) / 3 - first / 3);
            batch.dispatches += 1;
            batch.steps += job.steps as u64;
            batch.measurements += d.measurements;
            let ends = d.slot + 1 == FLUSH_DISPATCHES || i == 40;
            assert_eq!(d.flush, ends.then_some(batch));
            if ends {
                batches += 1;
                batch = Batch::default();
            }
            step += job.steps as u64;
        }
        assert_eq!(batches, 3);
        let measured: u32 = plan.iter().map(|d| d.measurements).sum();
        assert_eq!(measured, 95);
    }

    /// Thermalisation measures nothing; the metric's subset and the observables reach every
    /// job; a call of no steps has no dispatches.
    #[test]
    fn flags_and_subsets_follow_the_call() {
        let spec = spec(&["walkers=100"]);
        let quiet = plan(&spec, &sizes(64), &call(100, false));
        assert!(quiet.iter().all(|d| d.job.flags & FLAG_MEASURE == 0
            && d.measurements == 0
            && d.job.call_measurements == 0));
        assert_eq!(quiet.len(), 2);
        assert!(plan(&spec, &sizes(64), &call(0, true)).is_empty());
        let subset = MetricSubset::new(100, 50, 30);
        let observing = Call {
            observe: true,
            subset: Some(subset),
            ..call(50, true)
        };
        for d in plan(&spec, &sizes(64), &observing) {
            assert!(d.job.flags & FLAG_OBSERVE != 0);
            assert_eq!(d.job.metric_stride, subset.walker_stride);
            assert_eq!(d.job.metric_every, subset.every);
            assert_eq!(d.job.metric_per_walker, subset.per_walker);
        }
    }
}
