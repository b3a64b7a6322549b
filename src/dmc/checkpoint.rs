//! A DMC run's checkpoint, `dmc-checkpoint.json`: the config, the parameters, where the run
//! stands (`DmcState`) and the walkers' positions and local energies, with a checksum over
//! all of it. Every random number is a function of (walker slot, generation), so a run
//! resumed from it ends with exactly the numbers of one that never stopped.

use serde::{Deserialize, Serialize};

use crate::checksum::fnv1a_hex;
use crate::config::{Config, read_json};
use crate::engine::Population;
use crate::error::Error;
use crate::physics::Params;
use crate::report::OutputDir;
use crate::team::Team;

use super::DmcState;

const FILE: &str = "dmc-checkpoint.json";

/// The format this program writes and reads.
const VERSION: u32 = 1;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Checkpoint {
    version: u32,
    pub config: Config,
    pub theta: Vec<f64>,
    pub state: DmcState,
    pub positions: Vec<f64>,
    pub energies: Vec<f64>,
    /// FNV-1a of the checkpoint's JSON with this field empty.
    checksum: String,
}

impl Checkpoint {
    /// The checksum of everything else.
    fn sum(&self) -> String {
        let unsummed = Checkpoint {
            checksum: String::new(),
            ..self.clone()
        };
        fnv1a_hex(
            serde_json::to_string(&unsummed)
                .expect("plain values serialise")
                .as_bytes(),
        )
    }
}

/// Writes the checkpoint of a run at `state` (atomically, as every file).
pub(super) fn write(
    config: &Config,
    params: &Params,
    state: &DmcState,
    walkers: &dyn Population,
    seconds: f64,
    team: &dyn Team,
    out: &OutputDir,
) -> Result<(), Error> {
    // Every process sends its walkers; the first writes.
    let mine = walkers.walkers()?;
    let (positions, energies) = (team.gather(&mine.positions), team.gather(&mine.energies));
    if !out.is_writable() {
        return Ok(());
    }
    let mut checkpoint = Checkpoint {
        version: VERSION,
        config: config.clone(),
        theta: params.theta().to_vec(),
        state: DmcState {
            seconds_before: seconds,
            ..state.clone()
        },
        positions,
        energies,
        checksum: String::new(),
    };
    checkpoint.checksum = checkpoint.sum();
    let text = serde_json::to_string(&checkpoint).expect("plain values serialise");
    out.write(FILE, text.as_bytes())
}

/// Reads and checks the checkpoint in `out`.
pub(super) fn read(out: &OutputDir) -> Result<Checkpoint, Error> {
    let path = out.file(FILE);
    let shown = path.display();
    let value = read_json(&path, "DMC checkpoint").map_err(|e| {
        Error::input(format!(
            "{e}; `dmc --resume` needs the output directory of a `dmc` run that wrote a \
             checkpoint"
        ))
    })?;
    if value.get("version").and_then(|v| v.as_u64()) != Some(VERSION as u64) {
        return Err(Error::input(format!(
            "DMC checkpoint {shown} is not of format version {VERSION}: resume it with the \
             version of rbm-vmc that wrote it"
        )));
    }
    let checkpoint: Checkpoint = serde_json::from_value(value)
        .map_err(|e| Error::input(format!("DMC checkpoint {shown} is damaged: {e}")))?;
    if checkpoint.sum() != checkpoint.checksum {
        return Err(Error::input(format!(
            "DMC checkpoint {shown} does not match its checksum: it was edited or damaged"
        )));
    }
    checkpoint
        .config
        .validate()
        .map_err(|e| Error::input(format!("DMC checkpoint {shown}: {e}")))?;
    Ok(checkpoint)
}
