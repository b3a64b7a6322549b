//! What the user sees while a command works: result lines on stdout, progress bars on
//! stderr (only when stderr is a terminal), nothing at all when quiet.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Progress;

/// Writes a line to stdout; a closed stdout (e.g. piped into `head`) is not an error.
fn print_line(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
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

    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    pub fn line(&self, text: &str) {
        if !self.quiet {
            self.bar.suspend(|| print_line(text));
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
