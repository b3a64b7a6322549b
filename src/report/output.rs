//! The output directory: chosen or timestamped, never silently overwritten, and written with
//! atomic file replacement so a crash never leaves a half-written result.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::team::Team;

/// A directory results are written into. In a team of processes only the first writes the
/// run's files; the others hold a read-only handle to the same directory.
#[derive(Clone, Debug)]
pub struct OutputDir {
    path: PathBuf,
    writable: bool,
}

impl OutputDir {
    /// Creates `path`, or `runs/<UTC timestamp>` when `None`. An existing non-empty directory
    /// is refused unless `force` is set.
    pub fn create(path: Option<&Path>, force: bool) -> Result<Self, Error> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => fresh_run_dir(Path::new("runs")),
        };
        if path.exists() {
            if !path.is_dir() {
                return Err(Error::input(format!(
                    "output {} exists and is not a directory",
                    path.display()
                )));
            }
            let occupied = fs::read_dir(&path)
                .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?
                .next()
                .is_some();
            if occupied && !force {
                return Err(Error::input(format!(
                    "output directory {} already holds files; choose another --out or pass \
                     --force to overwrite",
                    path.display()
                )));
            }
        }
        fs::create_dir_all(&path).map_err(|e| {
            Error::input(format!(
                "cannot create output directory {}: {e}",
                path.display()
            ))
        })?;
        let dir = Self {
            path,
            writable: true,
        };
        // Fail now, before any work, if the directory cannot be written.
        dir.write(".write-test", b"")
            .map_err(|e| Error::input(format!("output directory is not writable: {e}")))?;
        fs::remove_file(dir.file(".write-test")).ok();
        Ok(dir)
    }

    /// An existing output directory, to continue writing into (resume).
    pub fn existing(path: &Path) -> Result<Self, Error> {
        if !path.is_dir() {
            return Err(Error::input(format!(
                "{} is not a directory of an earlier run",
                path.display()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            writable: true,
        })
    }

    /// `create` on the team's first process, which tells the others the directory (or the
    /// error) it got; they write nothing into it.
    pub fn create_shared(path: Option<&Path>, force: bool, team: &dyn Team) -> Result<Self, Error> {
        if team.size() == 1 {
            return Self::create(path, force);
        }
        let mine = team.is_root().then(|| Self::create(path, force));
        let message = match &mine {
            Some(Ok(dir)) => format!("ok:{}", dir.path.display()),
            Some(Err(e)) => format!("error:{e}"),
            None => String::new(),
        };
        let shared = String::from_utf8_lossy(&team.broadcast(message.into_bytes())).into_owned();
        match (mine, shared.strip_prefix("ok:")) {
            (Some(result), _) => result,
            (None, Some(path)) => Ok(Self {
                path: PathBuf::from(path),
                writable: false,
            }),
            (None, None) => Err(Error::input(
                shared.trim_start_matches("error:").to_string(),
            )),
        }
    }

    /// The same directory, writable only on the team's first process.
    pub fn for_rank(self, rank: usize) -> Self {
        Self {
            writable: self.writable && rank == 0,
            ..self
        }
    }

    /// Whether this process writes the run's files.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
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

/// Replaces `path` by `bytes` so that readers see either the old or the new file, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let context = || format!("cannot write {}", path.display());
    let mut file = File::create(&tmp).map_err(|e| Error::io(context(), e))?;
    file.write_all(bytes).map_err(|e| Error::io(context(), e))?;
    file.sync_all().map_err(|e| Error::io(context(), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(context(), e))?;
    Ok(())
}

/// `base/YYYYMMDD-HHMMSS` (UTC), with a numeric suffix if that exists already.
fn fresh_run_dir(base: &Path) -> PathBuf {
    let stamp = utc_timestamp(std::time::SystemTime::now());
    let first = base.join(&stamp);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|i| base.join(format!("{stamp}-{i}")))
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

fn utc_timestamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(utc_timestamp(t), "20231114-221320");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn occupied_directories_are_refused_without_force() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-out-{}", std::process::id()));
        let out = OutputDir::create(Some(&dir), false).unwrap();
        out.write("result.json", b"{}").unwrap();
        let err = OutputDir::create(Some(&dir), false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(OutputDir::create(Some(&dir), true).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
