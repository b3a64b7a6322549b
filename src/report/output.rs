//! The output directory: chosen or timestamped, never silently overwritten, held by one
//! process at a time (an advisory lock for the life of the command), and written with atomic
//! file replacement so a crash never leaves a half-written result.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::team::Team;

/// The lock file every writing process holds; it stays behind, empty, after the command.
pub const LOCK_FILE: &str = ".rbm-vmc.lock";

/// Everything this program writes into an output directory, in one place. `OutputDir::file`
/// (through which every writer names its file) refuses a name not listed here, so a new file
/// cannot be missed by `--force`, which clears exactly these (and their `.tmp` twins).
const OUTPUT_FILES: [&str; 30] = [
    "result.json",
    "params.json",
    "history.csv",
    "checkpoint.json",
    "convergence.svg",
    "sweep.csv",
    "sweep.json",
    "sweep-definition.json",
    "row.json",
    "energy.svg",
    "error.svg",
    "bench.json",
    "bench.csv",
    "throughput.svg",
    "density.csv",
    "pair.csv",
    "density2d.csv",
    "density.svg",
    "density2d.svg",
    "pair.svg",
    "validation.csv",
    "validation.md",
    "dmc.csv",
    "dmc.svg",
    "timestep.svg",
    "dmc-checkpoint.json",
    "trace.csv",
    "parts.csv",
    "analysis.json",
    "analysis.csv",
];

/// The folders of a sweep's points and of validation's cases, each an output directory of its
/// own, and of the claims of a sweep's workers on its points.
const OUTPUT_FOLDERS: [&str; 3] = ["points", "cases", "claims"];

/// The walker files of checkpoints: `checkpoint-walkers-<iteration>-<...>.bin`.
const WALKER_FILE_PREFIX: &str = "checkpoint-walkers-";

/// Written and removed again while a directory is opened: whether it can be written.
const WRITE_TEST: &str = ".write-test";

/// Whether `name` (a file or folder directly in an output directory) is one this program
/// writes there, so that `--force` removes it.
fn is_output(name: &str) -> bool {
    let stem = |f: &str| Path::new(f).with_extension("tmp");
    OUTPUT_FILES
        .iter()
        .any(|f| name == *f || Path::new(name) == stem(f))
        || OUTPUT_FOLDERS.contains(&name)
        || name.starts_with(WALKER_FILE_PREFIX)
}

/// A directory results are written into. In a team of processes only the first writes the
/// run's files (and holds the lock); the others hold a read-only handle to the same directory.
#[derive(Clone, Debug)]
pub struct OutputDir {
    path: PathBuf,
    writable: bool,
    /// The locked lock file, shared by clones: held, never read, and released when the last
    /// clone is dropped.
    _lock: Option<Arc<File>>,
    /// Directories this process created for it, deepest first.
    created: Vec<PathBuf>,
}

impl OutputDir {
    /// Creates `path`, or `runs/<UTC timestamp>` when `None`, and locks it. An existing
    /// non-empty directory is refused unless `force` is set, which clears the results of the
    /// earlier command first; `inputs` are the files and folders the command reads, and a
    /// `force` that would remove one of them is refused before anything is removed.
    pub fn create(path: Option<&Path>, force: bool, inputs: &[PathBuf]) -> Result<Self, Error> {
        let (path, created) = match path {
            Some(p) => {
                if p.exists() && !p.is_dir() {
                    return Err(Error::input(format!(
                        "output {} exists and is not a directory",
                        p.display()
                    )));
                }
                let created = missing_ancestors(p);
                fs::create_dir_all(p).map_err(|e| {
                    Error::input(format!(
                        "cannot create output directory {}: {e}",
                        p.display()
                    ))
                })?;
                (p.to_path_buf(), created)
            }
            None => fresh_run_dir(Path::new("runs"))?,
        };
        let dir = Self::locked(path, created)?;
        let occupied = fs::read_dir(&dir.path)
            .map_err(|e| Error::input(format!("cannot read {}: {e}", dir.path.display())))?
            .flatten()
            .any(|entry| entry.file_name() != LOCK_FILE);
        if occupied {
            if !force {
                return Err(Error::input(format!(
                    "output directory {} already holds files; choose another --out or pass \
                     --force to overwrite",
                    dir.path.display()
                )));
            }
            dir.refuse_clearing(inputs)?;
            dir.clear_results()?;
        }
        // Fail now, before any work, if the directory cannot be written.
        dir.write(WRITE_TEST, b"")
            .map_err(|e| Error::input(format!("output directory is not writable: {e}")))?;
        fs::remove_file(dir.file(WRITE_TEST)).ok();
        Ok(dir)
    }

    /// An existing output directory, locked, to continue writing into (resume).
    pub fn existing(path: &Path) -> Result<Self, Error> {
        if !path.is_dir() {
            return Err(Error::input(format!(
                "{} is not a directory of an earlier run",
                path.display()
            )));
        }
        Self::locked(path.to_path_buf(), Vec::new())
    }

    /// A sweep's directory that worker processes share (created if missing): each holds the
    /// lock shared, so they exclude a plain `sweep` or `--resume` of it (which holds it
    /// alone) but not each other. They coordinate through claim files.
    pub fn for_workers(path: &Path) -> Result<Self, Error> {
        if path.exists() && !path.is_dir() {
            return Err(Error::input(format!(
                "output {} exists and is not a directory",
                path.display()
            )));
        }
        fs::create_dir_all(path).map_err(|e| {
            Error::input(format!(
                "cannot create output directory {}: {e}",
                path.display()
            ))
        })?;
        Self::lock(path.to_path_buf(), Vec::new(), true)
    }

    fn locked(path: PathBuf, created: Vec<PathBuf>) -> Result<Self, Error> {
        Self::lock(path, created, false)
    }

    /// Takes the directory's lock, alone or `shared`; refused while another process holds it
    /// in a way that excludes this one.
    fn lock(path: PathBuf, created: Vec<PathBuf>, shared: bool) -> Result<Self, Error> {
        let lock_path = path.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                Error::input(format!(
                    "cannot create the lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        let taken = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match taken {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::input(format!(
                    "another rbm-vmc process is writing to {} (it holds {LOCK_FILE}); wait for \
                     it to end or choose another --out",
                    path.display()
                )));
            }
            // File systems without advisory locks: go on without one.
            Err(fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {}
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::input(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )));
            }
        }
        Ok(Self {
            path,
            writable: true,
            _lock: Some(Arc::new(file)),
            created,
        })
    }

    /// Refuses to clear this directory when that would remove one of `inputs` (or the whole
    /// directory is one): `sample --from D --out D --force` would delete the run it measures.
    fn refuse_clearing(&self, inputs: &[PathBuf]) -> Result<(), Error> {
        let Ok(dir) = self.path.canonicalize() else {
            return Ok(());
        };
        for input in inputs {
            let Ok(input) = input.canonicalize() else {
                continue;
            };
            let removed = input == dir
                || input.strip_prefix(&dir).is_ok_and(|rest| {
                    rest.components()
                        .next()
                        .is_some_and(|first| is_output(&first.as_os_str().to_string_lossy()))
                });
            if removed {
                return Err(Error::input(format!(
                    "--force would delete {}, which this command reads, before reading it; \
                     choose another --out (or copy the input elsewhere)",
                    input.display()
                )));
            }
        }
        Ok(())
    }

    /// Removes what an earlier command wrote here (see `is_output`).
    fn clear_results(&self) -> Result<(), Error> {
        let entries = fs::read_dir(&self.path)
            .map_err(|e| Error::input(format!("cannot read {}: {e}", self.path.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_output(&name) {
                continue;
            }
            let removed = if entry.path().is_dir() {
                fs::remove_dir_all(entry.path())
            } else {
                fs::remove_file(entry.path())
            };
            removed.map_err(|e| {
                Error::input(format!(
                    "--force: cannot remove the earlier result {}: {e}",
                    entry.path().display()
                ))
            })?;
        }
        Ok(())
    }

    /// On the team's first process `open` (`create` or `existing`), whose directory (or
    /// error) the others then get; they write nothing into it.
    pub fn shared(
        team: &dyn Team,
        open: impl FnOnce() -> Result<Self, Error>,
    ) -> Result<Self, Error> {
        if team.size() == 1 {
            return open();
        }
        let (mine, path) = team.from_root_work(open, |dir| dir.path.display().to_string())?;
        Ok(mine.unwrap_or_else(|| Self {
            path: PathBuf::from(path),
            writable: false,
            _lock: None,
            created: Vec::new(),
        }))
    }

    /// After a command failed: removes the directory again if this process created it and
    /// nothing but the lock file is in it, so failed commands leave no empty folders behind.
    pub fn discard_if_unused(&self) {
        if self.created.is_empty() || !self.writable {
            return;
        }
        let unused = fs::read_dir(&self.path).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|entry| entry.file_name() == LOCK_FILE)
        });
        if unused {
            fs::remove_file(self.file(LOCK_FILE)).ok();
            for dir in &self.created {
                if fs::remove_dir(dir).is_err() {
                    break;
                }
            }
        }
    }

    /// Whether this process writes the run's files.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` (`points/0003/result.json` names a file in a point's folder). A name
    /// that `--force` would not know to remove is a bug in this program, caught here.
    pub fn file(&self, name: &str) -> PathBuf {
        let first = name.split('/').next().unwrap_or_default();
        assert!(
            is_output(first) || first == LOCK_FILE || first == WRITE_TEST,
            "{name} is written without being registered in OUTPUT_FILES"
        );
        self.path.join(name)
    }

    /// Writes `name` atomically: temporary file, fsync, rename (nothing on a read-only handle).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        if !self.writable {
            return Ok(());
        }
        write_atomic(&self.file(name), bytes)
    }
}

/// `path` and those of its ancestors that do not exist yet, deepest first.
fn missing_ancestors(path: &Path) -> Vec<PathBuf> {
    path.ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// Replaces `path` by `bytes` so that readers see either the old or the new file, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let written = File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    written.map_err(|e| {
        // A full disk must not keep the half-written copy too.
        fs::remove_file(&tmp).ok();
        Error::io(format!("cannot write {}", path.display()), e)
    })
}

/// Creates `base/YYYYMMDD-HHMMSS` (UTC), with a numeric suffix if that exists already;
/// returns it with the directories created for it.
fn fresh_run_dir(base: &Path) -> Result<(PathBuf, Vec<PathBuf>), Error> {
    let mut created = missing_ancestors(base);
    fs::create_dir_all(base).map_err(|e| {
        Error::input(format!(
            "cannot create output directory {}: {e}",
            base.display()
        ))
    })?;
    let stamp = utc_timestamp(std::time::SystemTime::now());
    for i in 1.. {
        let name = if i == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{i}")
        };
        let path = base.join(name);
        // create_dir, not create_dir_all: two commands started in the same second get
        // different directories.
        match fs::create_dir(&path) {
            Ok(()) => {
                created.insert(0, path.clone());
                return Ok((path, created));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::input(format!(
                    "cannot create output directory {}: {e}",
                    path.display()
                )));
            }
        }
    }
    unreachable!("some suffix is free")
}

fn utc_timestamp(t: std::time::SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(t);
    format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}")
}

/// `t` as an ISO 8601 UTC time, e.g. `2023-11-14T22:13:20Z`.
pub fn iso_utc(t: std::time::SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(t);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// Year, month, day, hour, minute, second of `t` in UTC.
fn utc_parts(t: std::time::SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// Proleptic Gregorian date from days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that fails leaves the old file as it was and no temporary copy behind.
    #[test]
    fn a_failed_atomic_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-atomic-{}", std::process::id()));
        let target = dir.join("result.json");
        // A directory where the file should go: the final rename fails.
        fs::create_dir_all(&target).unwrap();
        let e = write_atomic(&target, b"{}").unwrap_err();
        assert!(e.to_string().contains("cannot write"), "{e}");
        assert!(!dir.join("result.tmp").exists());
        assert!(target.is_dir());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Every file and folder any command writes goes with `--force`, validation's and the
    /// figures included; the user's own files stay.
    #[test]
    fn force_clears_every_registered_output_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-force-{}", std::process::id()));
        let out = OutputDir::create(Some(&dir), false, &[]).unwrap();
        for name in OUTPUT_FILES {
            out.write(name, b"x").unwrap();
        }
        for folder in OUTPUT_FOLDERS {
            fs::create_dir_all(out.file(&format!("{folder}/01"))).unwrap();
        }
        for name in ["convergence.tmp", "checkpoint-walkers-4-1.bin", "notes.txt"] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        drop(out);
        let _out = OutputDir::create(Some(&dir), true, &[]).unwrap();
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [LOCK_FILE, "notes.txt"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A writer that names a file `--force` does not know is a bug, caught at once.
    #[test]
    #[should_panic(expected = "without being registered")]
    fn unregistered_output_files_are_a_bug() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-unreg-{}", std::process::id()));
        let out = OutputDir::create(Some(&dir), false, &[]).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        out.file("new-figure.svg");
    }

    /// Refused before anything is removed: the directory itself, or a result file in it.
    #[test]
    fn force_refuses_to_clear_an_input() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-inputs-{}", std::process::id()));
        let out = OutputDir::create(Some(&dir), false, &[]).unwrap();
        out.write("params.json", b"{}").unwrap();
        fs::write(dir.join("config.json"), b"{}").unwrap();
        drop(out);
        for input in [dir.join("params.json"), dir.clone()] {
            let err = OutputDir::create(Some(&dir), true, std::slice::from_ref(&input));
            let err = err.unwrap_err().to_string();
            assert!(err.contains("--force would delete"), "{err}");
            assert!(dir.join("params.json").exists());
        }
        // A file that --force leaves alone may be read from the directory.
        let _out = OutputDir::create(Some(&dir), true, &[dir.join("config.json")]).unwrap();
        assert!(!dir.join("params.json").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(utc_timestamp(t), "20231114-221320");
        assert_eq!(iso_utc(t), "2023-11-14T22:13:20Z");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn occupied_directories_are_refused_without_force() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-out-{}", std::process::id()));
        // A run that stopped midway may have left it (process ids come round again).
        let _ = std::fs::remove_dir_all(&dir);
        let out = OutputDir::create(Some(&dir), false, &[]).unwrap();
        out.write("result.json", b"{}").unwrap();
        drop(out);
        let err = OutputDir::create(Some(&dir), false, &[]).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(OutputDir::create(Some(&dir), true, &[]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_writer_at_a_time_and_force_clears_only_earlier_results() {
        let base = std::env::temp_dir().join(format!("rbm-vmc-lock-{}", std::process::id()));
        // A run that stopped midway may have left it (process ids come round again).
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("a/b");
        let out = OutputDir::create(Some(&dir), false, &[]).unwrap();
        for name in ["result.json", "checkpoint-walkers-3-30.bin", "notes.txt"] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        std::fs::create_dir_all(dir.join("points/0000")).unwrap();
        for attempt in [
            OutputDir::create(Some(&dir), true, &[]),
            OutputDir::existing(&dir),
        ] {
            let err = attempt.unwrap_err().to_string();
            assert!(err.contains("another rbm-vmc process"), "{err}");
        }
        drop(out);
        let out = OutputDir::create(Some(&dir), true, &[]).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [LOCK_FILE, "notes.txt"]);
        // Not created by this handle: never discarded.
        out.discard_if_unused();
        assert!(dir.exists());
        drop(out);
        std::fs::remove_dir_all(&base).unwrap();

        // A directory created for a command that then failed goes again, with its parents.
        let out = OutputDir::create(Some(&dir), false, &[]).unwrap();
        out.discard_if_unused();
        assert!(!base.exists());
    }
}
