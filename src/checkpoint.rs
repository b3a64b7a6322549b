//! Checkpoints: everything needed to continue a run exactly — parameters (and the last good
//! ones before the last update), optimiser state, iteration, history, walker positions and
//! step counter (the random streams' state), and the config. `checkpoint.json` is the commit
//! point: the walker file it names is written first (atomically, under a name of its own),
//! then the JSON is replaced atomically, so a crash at any moment leaves the previous
//! checkpoint whole. Everything read back is checked: the JSON against itself and the
//! config, the config against the checksum the JSON records (an edited `omega` or `seed`
//! would continue another system's run), the walker file against the run identity and
//! checksum the JSON records.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::checksum::{fnv1a, fnv1a_hex};
use crate::config::Config;
use crate::engine::WalkerState;
use crate::error::Error;
use crate::optimiser::Optimiser;
use crate::physics::Params;
use crate::report::{OutputDir, history_row_numbers, read_bytes, read_text};

pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// 3: the config's checksum (`config_checksum`) added.
const FORMAT_VERSION: u32 = 3;

/// The walker file: this magic, then little-endian u64 run id, step counter and number of
/// values, then the positions as little-endian f64, walker-major.
const WALKERS_MAGIC: &[u8; 8] = b"RBMWALK2";
const WALKERS_HEADER: usize = 32;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub version: u32,
    /// The run this checkpoint belongs to (16 hex digits), also written into its walker file.
    pub run_id: String,
    /// Optimisation iterations completed.
    pub iteration: u32,
    /// Wall time of the run so far, seconds.
    pub seconds: f64,
    pub config: Config,
    /// FNV-1a of `config` as this program writes it (16 hex digits).
    pub config_checksum: String,
    /// Parameters, flat: a, b, w.
    pub theta: Vec<f64>,
    /// The parameters before the last update: the last ones whose estimate was checked.
    pub previous_theta: Option<Vec<f64>>,
    pub optimiser: Optimiser,
    /// The rows of history.csv so far.
    pub history: Vec<String>,
    /// Monte Carlo steps made so far.
    pub steps_done: u64,
    /// The file holding the walkers (see `WALKERS_MAGIC`).
    pub walkers_file: String,
    /// FNV-1a of the walker file (16 hex digits).
    pub walkers_checksum: String,
    /// Who wrote it: program, commit, command line, machine, time (not checked on resume).
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// Where a run stands: what a session carries and a checkpoint keeps, besides the walkers and
/// the optimiser's state.
#[derive(Clone, Debug)]
pub struct RunState {
    /// The run's identity (see `Checkpoint::run_id`).
    pub run_id: u64,
    pub config: Config,
    /// Wall time of the run's earlier sessions, seconds.
    pub seconds_before: f64,
    /// Iterations completed.
    pub iteration: u32,
    pub params: Params,
    /// The parameters before the last update.
    pub previous: Option<Params>,
    /// The rows of history.csv so far.
    pub history: Vec<String>,
}

impl RunState {
    /// A new run of `config` from `params`, under a new identity.
    pub fn start(config: &Config, params: Params) -> Self {
        Self {
            run_id: new_run_id(config),
            config: config.clone(),
            seconds_before: 0.0,
            iteration: 0,
            params,
            previous: None,
            history: Vec::new(),
        }
    }
}

/// A run identity, different for every run started: recorded in its checkpoints and walker
/// files so that another run's walker file is never taken for this one's.
fn new_run_id(config: &Config) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let config = serde_json::to_string(config).expect("plain values");
    fnv1a(format!("{nanos} {} {config}", std::process::id()).as_bytes())
}

impl Checkpoint {
    /// The checkpoint of `run` (optimised by `optimiser`) after `seconds` of wall time, with
    /// the bytes of its walker file.
    pub fn new(
        run: &RunState,
        optimiser: &Optimiser,
        seconds: f64,
        state: &WalkerState,
    ) -> (Self, Vec<u8>) {
        let mut bytes = Vec::with_capacity(WALKERS_HEADER + state.positions.len() * 8);
        bytes.extend_from_slice(WALKERS_MAGIC);
        for word in [run.run_id, state.steps_done, state.positions.len() as u64] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.extend(state.positions.iter().flat_map(|v| v.to_le_bytes()));
        let checkpoint = Self {
            version: FORMAT_VERSION,
            run_id: format!("{:016x}", run.run_id),
            iteration: run.iteration,
            seconds,
            config: run.config.clone(),
            config_checksum: config_checksum(&run.config),
            theta: run.params.theta().to_vec(),
            previous_theta: run.previous.as_ref().map(|p| p.theta().to_vec()),
            optimiser: optimiser.clone(),
            history: run.history.clone(),
            steps_done: state.steps_done,
            walkers_file: walkers_file_name(run.iteration, state.steps_done),
            walkers_checksum: fnv1a_hex(&bytes),
            provenance: crate::report::provenance(),
        };
        (checkpoint, bytes)
    }

    /// The run identity as a number (checked when read).
    fn run_id(&self) -> u64 {
        u64::from_str_radix(&self.run_id, 16).expect("checked when read")
    }

    /// Where the run stood (checked when read); the optimiser's state is `optimiser`.
    pub fn run_state(&self) -> RunState {
        let layout = self.config.wavefunction().layout;
        let params = |theta: &Vec<f64>| {
            Params::from_theta(layout, theta.clone()).expect("checked when read")
        };
        RunState {
            run_id: self.run_id(),
            config: self.config.clone(),
            seconds_before: self.seconds,
            iteration: self.iteration,
            params: params(&self.theta),
            previous: self.previous_theta.as_ref().map(params),
            history: self.history.clone(),
        }
    }

    /// Why the checkpoint contradicts itself or its config, if it does.
    fn problem(&self) -> Option<String> {
        if self.version != FORMAT_VERSION {
            return Some(format!(
                "it has format version {}; this program reads version {FORMAT_VERSION}",
                self.version
            ));
        }
        let c = &self.config;
        if self.run_id.len() != 16 || u64::from_str_radix(&self.run_id, 16).is_err() {
            return Some(format!("`run_id` = {:?} is not 16 hex digits", self.run_id));
        }
        let total = c.optimiser.iterations;
        if self.iteration > total {
            return Some(format!(
                "`iteration` = {} is beyond the config's {total} iterations",
                self.iteration
            ));
        }
        if !(self.seconds.is_finite() && self.seconds >= 0.0) {
            return Some(format!("`seconds` = {} is not a duration", self.seconds));
        }
        // Thermalisation, then steps_per_iteration per iteration; a stop during
        // thermalisation leaves fewer steps at iteration 0.
        let therm = c.sampler.thermalisation as u64;
        let expected = therm + self.iteration as u64 * c.steps_per_iteration as u64;
        let thermalising = self.iteration == 0 && self.steps_done < therm;
        if self.steps_done != expected && !thermalising {
            return Some(format!(
                "`steps_done` = {} does not fit iteration {} (thermalisation {therm} + {} steps \
                 per iteration)",
                self.steps_done, self.iteration, c.steps_per_iteration
            ));
        }
        let parameters = c.wavefunction().layout.len();
        for (name, theta) in [
            ("theta", Some(&self.theta)),
            ("previous_theta", self.previous_theta.as_ref()),
        ] {
            if let Some(theta) = theta
                && (theta.len() != parameters || theta.iter().any(|t| !t.is_finite()))
            {
                return Some(format!(
                    "`{name}` does not hold {parameters} finite parameters for the config"
                ));
            }
        }
        if let Some(why) = self
            .optimiser
            .mismatch(&c.optimiser, parameters, self.iteration)
        {
            return Some(format!("`optimiser`: {why}"));
        }
        if self.history.len() != self.iteration as usize {
            return Some(format!(
                "`history` has {} rows for {} iterations",
                self.history.len(),
                self.iteration
            ));
        }
        if let Some(i) = (0..self.history.len())
            .find(|&i| history_row_numbers(&self.history[i], i as u32 + 1).is_none())
        {
            return Some(format!(
                "`history` row {} is not a row of iteration {}",
                i,
                i + 1
            ));
        }
        if self.walkers_file != walkers_file_name(self.iteration, self.steps_done) {
            return Some(format!(
                "`walkers_file` = {:?} is not the name of this checkpoint's walker file",
                self.walkers_file
            ));
        }
        None
    }
}

/// FNV-1a of the config's JSON text, which is the same for the same config (the numbers
/// round-trip exactly).
fn config_checksum(config: &Config) -> String {
    fnv1a_hex(
        serde_json::to_string(config)
            .expect("plain values")
            .as_bytes(),
    )
}

fn walkers_file_name(iteration: u32, steps_done: u64) -> String {
    format!("checkpoint-walkers-{iteration}-{steps_done}.bin")
}

/// Writes the walker file, then `checkpoint.json`, then removes walker files no checkpoint
/// names any more.
fn write_checkpoint(
    out: &OutputDir,
    checkpoint: &Checkpoint,
    walker_bytes: &[u8],
) -> Result<(), Error> {
    if !out.is_writable() {
        return Ok(());
    }
    out.write(&checkpoint.walkers_file, walker_bytes)?;
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

/// Writes checkpoints on a background thread, one at a time, so that sampling goes on while
/// a checkpoint is serialised, written and synced (a quarter of a second at 2^20 walkers).
/// Each keeps the atomic commit of `write_checkpoint`; dropping the writer waits for the one
/// in flight.
#[derive(Default)]
pub struct CheckpointWriter {
    /// The iteration of the checkpoint being written, and its thread.
    pending: Option<(u32, JoinHandle<Result<(), Error>>)>,
}

impl CheckpointWriter {
    /// Starts writing the checkpoint of `run` (after `seconds` of wall time) into `out`; the
    /// one before must be finished (`finish`).
    pub fn start(
        &mut self,
        out: &OutputDir,
        run: RunState,
        optimiser: Optimiser,
        seconds: f64,
        walkers: WalkerState,
    ) {
        debug_assert!(self.pending.is_none(), "one checkpoint at a time");
        let out = out.clone();
        let iteration = run.iteration;
        let thread = std::thread::spawn(move || {
            let (checkpoint, bytes) = Checkpoint::new(&run, &optimiser, seconds, &walkers);
            write_checkpoint(&out, &checkpoint, &bytes)
        });
        self.pending = Some((iteration, thread));
    }

    /// The iteration of the checkpoint being written, if any.
    pub fn pending(&self) -> Option<u32> {
        self.pending.as_ref().map(|(iteration, _)| *iteration)
    }

    /// The iteration of the checkpoint in flight if it has been written by now, or why it
    /// failed; does not wait.
    pub fn poll(&mut self) -> Result<Option<u32>, Error> {
        match &self.pending {
            Some((_, thread)) if thread.is_finished() => self.finish(),
            _ => Ok(None),
        }
    }

    /// Waits for the checkpoint in flight, if any: its iteration once written, or why it
    /// failed.
    pub fn finish(&mut self) -> Result<Option<u32>, Error> {
        let Some((iteration, thread)) = self.pending.take() else {
            return Ok(None);
        };
        match thread.join() {
            Ok(written) => written.map(|()| Some(iteration)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        if let Some((_, thread)) = self.pending.take() {
            // Already reported or superseded by another error: only the wait matters here.
            thread.join().ok();
        }
    }
}

/// Reads and checks the checkpoint in `dir`: consistent with itself and its config, and a
/// walker file of this run, whole (checksum) and finite.
pub fn read_checkpoint(dir: &Path) -> Result<(Checkpoint, WalkerState), Error> {
    let path = dir.join(CHECKPOINT_FILE);
    let shown = path.display().to_string();
    let text = read_text(&path, "checkpoint").map_err(|e| {
        Error::input(format!(
            "{e}; --resume needs the output directory of a run that wrote a checkpoint"
        ))
    })?;
    crate::config::refuse_duplicate_keys(&text, "checkpoint", &path)?;
    // Another format's fields would read as damage: say which version it is instead.
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
    if let Some(version) = version.filter(|&v| v != FORMAT_VERSION as u64) {
        return Err(Error::input(format!(
            "checkpoint {shown} has format version {version}; this program reads version \
             {FORMAT_VERSION}: resume it with the version of rbm-vmc that wrote it, or start \
             the run again"
        )));
    }
    let checkpoint: Checkpoint = serde_json::from_str(&text)
        .map_err(|e| Error::input(format!("checkpoint {shown} is damaged: {e}")))?;
    checkpoint
        .config
        .validate()
        .map_err(|e| Error::input(format!("checkpoint {shown}: {e}")))?;
    if let Some(why) = checkpoint.problem() {
        return Err(Error::input(format!(
            "checkpoint {shown} is damaged: {why}"
        )));
    }
    if config_checksum(&checkpoint.config) != checkpoint.config_checksum {
        return Err(Error::input(format!(
            "checkpoint {shown} is damaged: its `config` is not the one it was written with \
             (the checksum differs); it continues only the run of its own config"
        )));
    }
    let walkers_path = dir.join(&checkpoint.walkers_file);
    let shown = walkers_path.display();
    let values = checkpoint.config.walkers as u64 * checkpoint.config.system().coordinates() as u64;
    let size = WALKERS_HEADER as u64 + values * 8;
    let damaged = |why: String| {
        Error::input(format!(
            "walker file {shown} {why}; it cannot resume this run"
        ))
    };
    // A file of the wrong size is damaged or another run's, whatever the size.
    if let Ok(meta) = std::fs::metadata(&walkers_path)
        && meta.is_file()
        && meta.len() != size
    {
        return Err(damaged(format!(
            "holds {} bytes; the checkpoint's {} walkers need {size}",
            meta.len(),
            checkpoint.config.walkers
        )));
    }
    let bytes = read_bytes(&walkers_path, "walker file", size)?;
    if bytes.len() as u64 != size {
        return Err(damaged(format!(
            "holds {} bytes; the checkpoint's {} walkers need {size}",
            bytes.len(),
            checkpoint.config.walkers
        )));
    }
    let word =
        |i: usize| u64::from_le_bytes(bytes[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
    if &bytes[..8] != WALKERS_MAGIC {
        return Err(damaged(
            "is not a walker file of this program's version".into(),
        ));
    }
    if word(0) != checkpoint.run_id() {
        return Err(damaged(format!(
            "belongs to run {:016x}, not to run {} of the checkpoint",
            word(0),
            checkpoint.run_id
        )));
    }
    if word(1) != checkpoint.steps_done || word(2) != values {
        return Err(damaged(
            "does not match the checkpoint's step count and walkers".into(),
        ));
    }
    if fnv1a_hex(&bytes) != checkpoint.walkers_checksum {
        return Err(damaged(
            "is damaged (its checksum differs from the checkpoint's)".into(),
        ));
    }
    let positions: Vec<f64> = bytes[WALKERS_HEADER..]
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    if positions.iter().any(|x| !x.is_finite()) {
        return Err(damaged("holds non-finite positions".into()));
    }
    let state = WalkerState {
        steps_done: checkpoint.steps_done,
        positions,
    };
    Ok((checkpoint, state))
}
