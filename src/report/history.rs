//! `history.csv`: one row per optimisation iteration, flushed as it is written so an
//! interrupted run keeps every finished iteration.

use std::fs::File;
use std::io::{BufWriter, Write};

use crate::error::Error;
use crate::report::OutputDir;
use crate::stats::Estimate;

pub const HISTORY_HEADER: &str =
    "iteration,energy,error,error_walkers,variance,acceptance,tau,gradient_norm,resets,seconds";

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
        writer.line(HISTORY_HEADER)?;
        for row in earlier {
            writer.line(row)?;
        }
        Ok(writer)
    }

    /// Appends an iteration's row and returns its text.
    pub fn row(&mut self, iteration: u32, e: &Estimate, seconds: f64) -> Result<String, Error> {
        let text = format!(
            "{iteration},{},{},{},{},{},{},{},{},{seconds:.3}",
            e.energy,
            e.error,
            e.error_walkers,
            e.variance,
            e.acceptance,
            e.tau,
            e.gradient_norm(),
            e.resets
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
