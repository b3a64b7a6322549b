//! Claims on a sweep's points, for workers that share one output directory (on one machine,
//! or on several over a shared file system). The worker that runs point NNNN for the G-th
//! time creates `claims/NNNN.G` with O_EXCL, which only one process can do, and refreshes
//! its mtime from a heartbeat thread while the point runs. A claim not refreshed for the
//! stale time belongs to a dead worker: the next worker creates `NNNN.(G+1)`. Claims are
//! never removed, so generations only grow and a worker that was merely slow can tell that
//! its point was taken over (it then keeps no row). A point is done when its
//! `points/NNNN/row.json` exists.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::error::Error;

/// The folder of the claim files, in the sweep's output directory.
pub const CLAIMS: &str = "claims";

/// Seconds without a heartbeat after which a claim is taken to be a dead worker's.
pub const STALE_VARIABLE: &str = "RBM_VMC_CLAIM_STALE_SECONDS";
const DEFAULT_STALE_SECONDS: f64 = 120.0;

/// The stale time: `RBM_VMC_CLAIM_STALE_SECONDS`, else two minutes (long enough for clocks of
/// machines kept in step by NTP, and for a heartbeat delayed by a loaded file server).
pub fn stale_time() -> Result<Duration, Error> {
    match std::env::var(STALE_VARIABLE) {
        Err(_) => Ok(Duration::from_secs_f64(DEFAULT_STALE_SECONDS)),
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(s) if (0.2..=1e6).contains(&s) => Ok(Duration::from_secs_f64(s)),
            _ => Err(Error::input(format!(
                "{STALE_VARIABLE}={text}: must be a number of seconds from 0.2 to 1e6"
            ))),
        },
    }
}

/// The newest claim of each point: its generation and when it was last refreshed.
pub fn newest(dir: &Path) -> io::Result<HashMap<usize, (u32, SystemTime)>> {
    let mut found: HashMap<usize, (u32, SystemTime)> = HashMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some((index, generation)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        // A claim may be read while it is created; one that vanished is no claim.
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        let slot = found.entry(index).or_insert((generation, modified));
        if generation > slot.0 {
            *slot = (generation, modified);
        }
    }
    Ok(found)
}

/// `0012.3` -> (12, 3).
fn parse_name(name: &str) -> Option<(usize, u32)> {
    let (index, generation) = name.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(index) && digits(generation)) {
        return None;
    }
    Some((index.parse().ok()?, generation.parse().ok()?))
}

fn claim_path(dir: &Path, index: usize, generation: u32) -> PathBuf {
    dir.join(format!("{index:04}.{generation}"))
}

/// A point this process runs, with its heartbeat.
pub struct Claim {
    dir: PathBuf,
    index: usize,
    generation: u32,
    stop: Option<Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Claim {
    /// Claims generation `generation` of point `index`; `None` when another process created
    /// it first. The heartbeat refreshes the claim every quarter of `stale`.
    pub fn take(
        dir: &Path,
        index: usize,
        generation: u32,
        stale: Duration,
    ) -> io::Result<Option<Self>> {
        let path = claim_path(dir, index, generation);
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e),
        };
        // Who holds it, for a person looking at the folder.
        writeln!(file, "{} {}", host(), std::process::id())?;
        let (stop, stopped) = mpsc::channel::<()>();
        let heartbeat = std::thread::spawn(move || beat(&file, &stopped, stale / 4));
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            index,
            generation,
            stop: Some(stop),
            heartbeat: Some(heartbeat),
        }))
    }

    /// Whether no other worker has taken the point over (a newer generation exists when this
    /// process's heartbeat stalled for longer than the stale time).
    pub fn is_current(&self) -> bool {
        !claim_path(&self.dir, self.index, self.generation + 1).exists()
    }

    /// Gives the point back at once (an interrupted worker): the claim is made stale, so the
    /// next worker takes it without waiting out the stale time.
    pub fn give_back(mut self) {
        self.end_heartbeat();
        let path = claim_path(&self.dir, self.index, self.generation);
        if let Ok(file) = OpenOptions::new().write(true).open(path) {
            file.set_modified(SystemTime::UNIX_EPOCH).ok();
        }
    }

    fn end_heartbeat(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.heartbeat.take() {
            thread.join().ok();
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.end_heartbeat();
    }
}

/// Refreshes the claim's mtime every `every` until told to stop (or the claim is dropped).
fn beat(file: &File, stopped: &mpsc::Receiver<()>, every: Duration) {
    loop {
        match stopped.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {
                // A failed refresh (a file server away for a moment) is retried next beat.
                file.set_modified(SystemTime::now()).ok();
            }
            _ => return,
        }
    }
}

/// Whether a claim last refreshed at `modified` has outlived `stale` (a claim given back,
/// refreshed at the epoch, has).
pub fn is_stale(modified: SystemTime, stale: Duration) -> bool {
    SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|age| age > stale)
}

/// This machine's name, for the claim file's content.
pub(super) fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names_parse_and_other_files_are_ignored() {
        assert_eq!(parse_name("0012.3"), Some((12, 3)));
        assert_eq!(parse_name("12345.0"), Some((12345, 0)));
        for other in ["collect.lock", "0012", "0012.", ".3", "0012.3.tmp", "a.1"] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    /// One process wins a generation; a stale claim is taken over by the next generation, and
    /// its holder then sees that it no longer holds the point.
    #[test]
    fn a_generation_is_claimed_once_and_a_takeover_is_seen() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-claims-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let stale = Duration::from_secs(60);
        let first = Claim::take(&dir, 7, 0, stale).unwrap().expect("free");
        assert!(Claim::take(&dir, 7, 0, stale).unwrap().is_none());
        let (generation, modified) = newest(&dir).unwrap()[&7];
        assert_eq!(generation, 0);
        assert!(!is_stale(modified, stale));
        assert!(first.is_current());
        let second = Claim::take(&dir, 7, 1, stale).unwrap().expect("free");
        assert!(!first.is_current());
        assert_eq!(newest(&dir).unwrap()[&7].0, 1);
        // Given back: stale at once.
        second.give_back();
        assert!(is_stale(newest(&dir).unwrap()[&7].1, stale));
        fs::remove_dir_all(&dir).unwrap();
    }
}
