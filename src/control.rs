//! When to stop early: a stop flag (set by the command line's handler of Ctrl-C, SIGTERM and
//! SIGHUP) and an optional wall-clock budget. The driver checks it between iterations and
//! lets thermalisation and production be cancelled; either way the run ends with a
//! checkpoint to resume from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
    pub fn reason(&self) -> Option<&'static str> {
        if self.stop.load(Ordering::SeqCst) {
            Some("interrupted (Ctrl-C or a termination signal)")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some("the time budget (--max-seconds) is spent")
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
        assert!(c.reason().unwrap().contains("--max-seconds"));
    }
}
