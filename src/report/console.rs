//! What the user sees while a command works: result lines on stdout, progress bars on
//! stderr (only when stderr is a terminal), nothing at all when quiet.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::engine::Progress;

/// The first failed write to stdout other than a closed pipe, for `main` to report.
static STDOUT_FAILURE: Mutex<Option<String>> = Mutex::new(None);
/// Set once stdout has failed: nothing more is written to it.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout. A closed pipe (output piped into `head`) silences stdout; any
/// other failure (a full disk) is kept for `stdout_failure`. Never panics.
pub fn write_stdout(text: &str) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let mut failure = STDOUT_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
            failure.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Why writing to stdout failed, if it did for a reason other than a closed pipe.
pub fn stdout_failure() -> Option<String> {
    STDOUT_FAILURE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Writes a line to stderr; when even that fails there is nowhere left to say so.
pub fn write_stderr(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn print_line(text: &str) {
    write_stdout(&format!("{text}\n"));
}

#[derive(Clone, Copy, Debug)]
pub struct Console {
    quiet: bool,
}

impl Console {
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    /// Prints a line on stdout, above any progress bar.
    pub fn line(&self, text: &str) {
        if !self.quiet {
            print_line(text);
        }
    }

    /// Prints `warning: text` on stderr, unless quiet.
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            write_stderr(&format!("warning: {text}"));
        }
    }

    /// A progress bar counting `total` units (walker-steps, iterations, points).
    pub fn bar(&self, label: &str, total: u64, unit: &str) -> Bar {
        let target = if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let template = format!(
            "{{prefix:>12}} [{{bar:30}}] {{percent:>3}}% {{human_pos}}/{{human_len}} {unit} \
             {{msg}} (eta {{eta}})"
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("valid template")
                // No estimate before the first unit is done: it would read "0s".
                .with_key(
                    "eta",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = if state.pos() == 0 {
                            write!(w, "?")
                        } else {
                            write!(w, "{:#}", HumanDuration(state.eta()))
                        };
                    },
                )
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Bar {
            bar,
            quiet: self.quiet,
        }
    }
}

/// A progress bar; lines printed through it appear above the bar.
pub struct Bar {
    bar: ProgressBar,
    quiet: bool,
}

impl Bar {
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// How far along the bar is (another process may have done part of the work).
    pub fn set_position(&self, done: u64) {
        self.bar.set_position(done);
    }

    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    pub fn line(&self, text: &str) {
        if !self.quiet {
            self.bar.suspend(|| print_line(text));
        }
    }

    /// Prints `warning: text` on stderr above the bar, unless quiet.
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            self.bar
                .suspend(|| write_stderr(&format!("warning: {text}")));
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn advance(&self, walker_steps: u64) {
        self.bar.inc(walker_steps);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
