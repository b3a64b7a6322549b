//! When to stop early: a stop flag (set by the command line's handler of Ctrl-C, SIGTERM and
//! SIGHUP) and an optional wall-clock budget. The driver checks it between iterations and
//! lets thermalisation and production be cancelled; either way the run ends with a
//! checkpoint to resume from.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why a run stopped early; result.json records it in snake case (`"time_budget"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Ctrl-C or a termination signal.
    Interrupted,
    /// `--max-seconds` passed.
    TimeBudget,
    /// Another process of the team had to stop.
    AnotherProcess,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interrupted => "interrupted (Ctrl-C or a termination signal)",
            Self::TimeBudget => "the time budget (--max-seconds) is spent",
            Self::AnotherProcess => "stopped on another process",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Control {
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Control {
    /// Stops when `stop` is set or, with `max_seconds` (> 0), when that much time has
    /// passed; a budget beyond what a clock can hold is no limit.
    pub fn new(stop: Arc<AtomicBool>, max_seconds: Option<f64>) -> Self {
        let deadline = max_seconds
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .and_then(|d| Instant::now().checked_add(d));
        Self { stop, deadline }
    }

    /// Never stops early.
    pub fn none() -> Self {
        Self::new(Arc::new(AtomicBool::new(false)), None)
    }

    /// Why the run should stop now, if it should.
    pub fn reason(&self) -> Option<StopReason> {
        if self.stop.load(Ordering::SeqCst) {
            Some(StopReason::Interrupted)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(StopReason::TimeBudget)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_budgets_are_no_limit() {
        for s in [1e20, 1e300, f64::MAX] {
            let c = Control::new(Arc::new(AtomicBool::new(false)), Some(s));
            assert_eq!(c.reason(), None, "{s}");
        }
        let c = Control::new(Arc::new(AtomicBool::new(false)), Some(1e-9));
        assert_eq!(c.reason(), Some(StopReason::TimeBudget));
    }
}
