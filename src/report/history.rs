//! `history.csv`: one row per optimisation iteration, flushed as it is written so an
//! interrupted run keeps every finished iteration.

use std::fs::File;
use std::io::{BufWriter, Write};

use crate::error::Error;
use crate::optimiser::StepReport;
use crate::report::OutputDir;
use crate::stats::{Estimate, Summary};

/// The header of history.csv (`seconds`: the run's wall time so far, a running total;
/// `step_size`: the sampler's time step or step, tuned or given, empty for Gibbs sampling).
fn history_header() -> String {
    format!(
        "iteration,{},gradient_norm,step_norm,condition,learning_rate,resets,warning,seconds,\
         step_size",
        Summary::CSV_HEADER
    )
}

pub struct HistoryWriter {
    /// None on a read-only output directory.
    file: Option<BufWriter<File>>,
    path: String,
}

impl HistoryWriter {
    /// Starts `history.csv` in `out` with the header and the `earlier` rows (of a resumed run).
    pub fn create(out: &OutputDir, earlier: &[String]) -> Result<Self, Error> {
        let path = out.file("history.csv");
        let shown = path.display().to_string();
        let file = if out.is_writable() {
            let file =
                File::create(&path).map_err(|e| Error::io(format!("cannot create {shown}"), e))?;
            Some(BufWriter::new(file))
        } else {
            None
        };
        let mut writer = Self { file, path: shown };
        writer.line(&history_header())?;
        for row in earlier {
            writer.line(row)?;
        }
        Ok(writer)
    }

    /// Appends an iteration's row (with the warning about its sampling, `""` if none: a
    /// quoted empty text, not a missing value, for readers that tell them apart) and returns
    /// its text. `seconds`: the run's wall time so far, cumulative over its sessions.
    pub fn row(
        &mut self,
        iteration: u32,
        e: &Estimate,
        step: &StepReport,
        warning: Option<&str>,
        seconds: f64,
        step_size: Option<f64>,
    ) -> Result<String, Error> {
        let text = format!(
            "{iteration},{},{},{},{},{},{},{},{seconds:.3},{}",
            e.summary().csv(),
            e.gradient_norm(),
            step.norm,
            step.condition.map_or(String::new(), |c| c.to_string()),
            step.learning_rate,
            e.resets,
            super::csv_quoted(warning.unwrap_or_default()),
            step_size.map_or(String::new(), |s| s.to_string())
        );
        self.line(&text)?;
        Ok(text)
    }

    fn line(&mut self, text: &str) -> Result<(), Error> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        writeln!(file, "{text}")
            .and_then(|_| file.flush())
            .map_err(|e| Error::io(format!("cannot write {}", self.path), e))
    }
}

/// The energy and variance of a history row written by `HistoryWriter::row` for `iteration`;
/// `None` when `row` is not such a row (a damaged checkpoint).
pub fn history_row_numbers(row: &str, iteration: u32) -> Option<(f64, f64)> {
    if row.contains(['\n', '\r']) {
        return None;
    }
    let fields: Vec<&str> = row.splitn(7, ',').collect();
    let number = |i: usize| fields.get(i)?.parse::<f64>().ok().filter(|v| v.is_finite());
    if fields.first()?.parse::<u32>().ok()? != iteration {
        return None;
    }
    Some((number(1)?, number(5)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_with_energy_and_variance() {
        assert_eq!(
            history_row_numbers("3,3.1,0.01,0.01,0.009,2.5,0.99,1.7,0.1,0,,1.250", 3),
            Some((3.1, 2.5))
        );
        assert_eq!(history_row_numbers("3,3.1,0.01,0.01,0.009,2.5,x", 4), None);
        assert_eq!(history_row_numbers("3,NaN,0.01,0.01,0.009,2.5,x", 3), None);
        assert_eq!(history_row_numbers("3,3.1\n4,0,0,0,0,0", 3), None);
        assert_eq!(history_row_numbers("", 1), None);
    }
}
