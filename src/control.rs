//! When to stop early: a stop flag (set by the command line's Ctrl-C handler) and an optional
//! wall-clock budget. The driver checks it between iterations and lets a production run be
//! cancelled; either way the run ends with a checkpoint to resume from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Control {
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Control {
    /// Stops when `stop` is set or, with `max_seconds`, when that much time has passed.
    pub fn new(stop: Arc<AtomicBool>, max_seconds: Option<f64>) -> Self {
        Self {
            stop,
            deadline: max_seconds.map(|s| Instant::now() + Duration::from_secs_f64(s)),
        }
    }

    /// Never stops early.
    pub fn none() -> Self {
        Self::new(Arc::new(AtomicBool::new(false)), None)
    }

    /// Why the run should stop now, if it should.
    pub fn reason(&self) -> Option<&'static str> {
        if self.stop.load(Ordering::SeqCst) {
            Some("interrupted (Ctrl-C)")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some("the time budget (--max-seconds) is spent")
        } else {
            None
        }
    }
}
