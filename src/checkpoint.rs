//! Checkpoints: everything needed to continue a run exactly — parameters, optimiser state,
//! iteration, history, walker positions and step counter (the random streams' state), and the
//! config. `checkpoint.json` is the commit point: the walker file it names is written first
//! (atomically, under a name of its own), then the JSON is replaced atomically, so a crash at
//! any moment leaves the previous checkpoint whole.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::WalkerState;
use crate::error::Error;
use crate::optimize::Optimiser;
use crate::physics::RbmParams;
use crate::report::OutputDir;

pub const CHECKPOINT_FILE: &str = "checkpoint.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub version: u32,
    /// Optimisation iterations completed.
    pub iteration: u32,
    /// Wall time of the run so far, seconds.
    pub seconds: f64,
    pub config: Config,
    /// Parameters, flat: a, b, w.
    pub theta: Vec<f64>,
    pub optimiser: Optimiser,
    /// The rows of history.csv so far.
    pub history: Vec<String>,
    /// Monte Carlo steps made so far.
    pub steps_done: u64,
    /// The file holding the walker positions: little-endian f64, walker-major.
    pub walkers_file: String,
}

impl Checkpoint {
    pub fn new(
        iteration: u32,
        seconds: f64,
        config: &Config,
        params: &RbmParams,
        optimiser: &Optimiser,
        history: &[String],
        steps_done: u64,
    ) -> Self {
        Self {
            version: FORMAT_VERSION,
            iteration,
            seconds,
            config: config.clone(),
            theta: params.theta().to_vec(),
            optimiser: optimiser.clone(),
            history: history.to_vec(),
            steps_done,
            walkers_file: format!("checkpoint-walkers-{iteration}-{steps_done}.bin"),
        }
    }

    pub fn params(&self) -> RbmParams {
        let m = self.config.system().coordinates();
        RbmParams::from_theta(m, self.config.wavefunction.hidden, self.theta.clone())
            .expect("checked when read")
    }
}

/// Writes the walker file, then `checkpoint.json`, then removes walker files no checkpoint
/// names any more.
pub fn write_checkpoint(
    out: &OutputDir,
    checkpoint: &Checkpoint,
    state: &WalkerState,
) -> Result<(), Error> {
    if !out.is_writable() {
        return Ok(());
    }
    let bytes: Vec<u8> = state
        .positions
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    out.write(&checkpoint.walkers_file, &bytes)?;
    let text = serde_json::to_string_pretty(checkpoint).expect("plain values");
    out.write(CHECKPOINT_FILE, text.as_bytes())?;
    if let Ok(entries) = std::fs::read_dir(out.path()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("checkpoint-walkers-") && name != checkpoint.walkers_file {
                std::fs::remove_file(entry.path()).ok();
            }
        }
    }
    Ok(())
}

/// Reads and checks the checkpoint in `dir`: config valid, shapes consistent, walker file
/// complete.
pub fn read_checkpoint(dir: &Path) -> Result<(Checkpoint, WalkerState), Error> {
    let path = dir.join(CHECKPOINT_FILE);
    let shown = path.display().to_string();
    let text = crate::report::read_text(&path, "checkpoint").map_err(|e| {
        Error::input(format!(
            "{e}; --resume needs the output directory of a run that wrote a checkpoint"
        ))
    })?;
    let checkpoint: Checkpoint = serde_json::from_str(&text)
        .map_err(|e| Error::input(format!("checkpoint {shown} is damaged: {e}")))?;
    if checkpoint.version != FORMAT_VERSION {
        return Err(Error::input(format!(
            "checkpoint {shown} has format version {}; this program reads version {FORMAT_VERSION}",
            checkpoint.version
        )));
    }
    checkpoint.config.validate()?;
    let m = checkpoint.config.system().coordinates();
    let n = checkpoint.config.wavefunction.hidden;
    if RbmParams::from_theta(m, n, checkpoint.theta.clone()).is_none()
        || checkpoint.theta.iter().any(|t| !t.is_finite())
    {
        return Err(Error::input(format!(
            "checkpoint {shown}: the parameters do not fit the config or are not finite"
        )));
    }
    if checkpoint.walkers_file.contains(['/', '\\']) {
        return Err(Error::input(format!(
            "checkpoint {shown}: bad walker file name"
        )));
    }
    let walkers_path = dir.join(&checkpoint.walkers_file);
    let bytes = std::fs::read(&walkers_path)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", walkers_path.display())))?;
    let expected = checkpoint.config.walkers as usize * m * 8;
    if bytes.len() != expected {
        return Err(Error::input(format!(
            "{} holds {} bytes; the checkpoint's {} walkers x {m} coordinates need {expected}",
            walkers_path.display(),
            bytes.len(),
            checkpoint.config.walkers
        )));
    }
    let positions = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let state = WalkerState {
        steps_done: checkpoint.steps_done,
        positions,
    };
    Ok((checkpoint, state))
}
