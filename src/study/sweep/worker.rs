//! `sweep --worker`: one of any number of processes, on one machine or on many sharing a file
//! system, that work one sweep directory together, each running points no other has
//! claimed (see `claim`). The worker that finishes the last point writes the table;
//! `sweep --collect` writes it from the points finished so far.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::driver::Context;
use crate::error::Error;
use crate::report::OutputDir;

use super::claim::{self, CLAIMS, Claim};
use super::grid::{PointSpec, Sweep};
use super::run::{
    check_definition, definition, keep_row, read_rows, report_row, row_file, run_point, summarise,
    write_csv, write_table,
};

/// Runs unclaimed points of the sweep in `dir` until every point is done, waiting while the
/// last ones run elsewhere (a worker that dies meanwhile has its point taken over here).
pub fn run_worker(sweep: &Sweep, file: &Path, dir: &Path, ctx: &Context) -> Result<(), Error> {
    if ctx.team.size() > 1 {
        return Err(Error::input(
            "--worker is one process per worker: start the workers without mpirun, or run the \
             sweep under mpirun without --worker (the points are then dealt to the ranks)",
        ));
    }
    let stale = claim::stale_time()?;
    let out = OutputDir::for_workers(dir)?;
    let claims = out.file(CLAIMS);
    fs::create_dir_all(&claims)
        .map_err(|e| Error::io(format!("cannot create {}", claims.display()), e))?;
    publish_definition(sweep, &out)?;
    let total = sweep.points.len();
    let bar = ctx.console.bar("sweep", total as u64, "points");
    let done = |p: &&PointSpec| out.file(&row_file(p.index)).exists();
    let mut finished_last = false;
    loop {
        let pending: Vec<&PointSpec> = sweep.points.iter().filter(|p| !done(p)).collect();
        bar.set_position((total - pending.len()) as u64);
        if pending.is_empty() {
            break;
        }
        if let Some(reason) = ctx.control.reason() {
            bar.finish();
            return Err(stopped(reason, sweep, file, &out));
        }
        let held = claim::newest(&claims).map_err(|e| cannot_read(&claims, e))?;
        let mut mine = None;
        for point in pending {
            let generation = match held.get(&point.index) {
                None => 0,
                Some(&(g, refreshed)) if claim::is_stale(refreshed, stale) => g + 1,
                Some(_) => continue,
            };
            let taken = Claim::take(&claims, point.index, generation, stale).map_err(|e| {
                Error::io(format!("cannot claim a point in {}", claims.display()), e)
            })?;
            // Done between the scan and the claim: the claim ends unused.
            if let Some(claim) = taken.filter(|_| !done(&point)) {
                mine = Some((point, claim));
                break;
            }
        }
        let Some((point, claim)) = mine else {
            // The points left are running in other workers: wait for them to finish or to go
            // stale, checking for a stop often.
            let wait = (stale / 4).min(Duration::from_secs(5));
            let step = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            while waited < wait && ctx.control.reason().is_none() {
                std::thread::sleep(step);
                waited += step;
            }
            continue;
        };
        match run_point(sweep, point, &out, &ctx.control) {
            Ok(mut row) if claim.is_current() => {
                keep_row(&out, sweep, &mut row)?;
                report_row(&bar, sweep, &row);
                finished_last = sweep.points.iter().all(|p| done(&p));
            }
            Ok(_) => bar.warn(&format!(
                "point {} was taken over by another worker while this one ran it (its \
                 heartbeat stalled for longer than the stale time); its result here is dropped",
                point.index
            )),
            Err(e) => {
                // Interrupted, or an error: the next worker takes the point at once.
                claim.give_back();
                bar.finish();
                return Err(match (e, ctx.control.reason()) {
                    (Error::Interrupted(_), Some(reason)) => stopped(reason, sweep, file, &out),
                    (e, _) => e,
                });
            }
        }
    }
    bar.finish();
    if finished_last || !out.file("sweep.json").exists() {
        collect_into(sweep, &out, ctx)
    } else {
        ctx.console.line(&format!(
            "every point of the sweep in {} is done; the worker that finished the last one \
             wrote sweep.csv and sweep.json",
            out.path().display()
        ));
        Ok(())
    }
}

/// `sweep --collect`: the table and figures from the points finished so far.
pub fn collect(sweep: &Sweep, dir: &Path, ctx: &Context) -> Result<(), Error> {
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "{} is not the directory of a sweep",
            dir.display()
        )));
    }
    let out = OutputDir::for_workers(dir)?;
    check_definition(sweep, &out)?;
    collect_into(sweep, &out, ctx)
}

/// Rewrites sweep.csv, sweep.json and the figures from the rows kept, one process at a time.
fn collect_into(sweep: &Sweep, out: &OutputDir, ctx: &Context) -> Result<(), Error> {
    let claims = out.file(CLAIMS);
    fs::create_dir_all(&claims)
        .map_err(|e| Error::io(format!("cannot create {}", claims.display()), e))?;
    let lock_path = claims.join("collect.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| Error::io(format!("cannot create {}", lock_path.display()), e))?;
    // File systems without advisory locks: two collections at once write the same files.
    match lock.lock() {
        Err(e) if e.kind() != io::ErrorKind::Unsupported => {
            return Err(Error::io(format!("cannot lock {}", lock_path.display()), e));
        }
        _ => {}
    }
    let mut rows = read_rows(sweep, out)?;
    write_csv(sweep, &rows, out)?;
    let plots = write_table(sweep, &mut rows, out)?;
    summarise(sweep, &rows, &plots, out, ctx)
}

/// Writes sweep-definition.json if no worker has yet, else checks that it is this sweep's.
/// Written aside and hard-linked into place: the link is atomic and fails if the file
/// exists, so a worker never reads another's half-written definition.
fn publish_definition(sweep: &Sweep, out: &OutputDir) -> Result<(), Error> {
    let path = out.file("sweep-definition.json");
    let aside = out.file(&format!(
        "{CLAIMS}/definition-{}-{}.json",
        claim::host(),
        std::process::id()
    ));
    let written = fs::write(&aside, definition(sweep)).and_then(|()| fs::hard_link(&aside, &path));
    fs::remove_file(&aside).ok();
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_definition(sweep, out),
        Err(e) => Err(Error::io(format!("cannot write {}", path.display()), e)),
    }
}

fn cannot_read(dir: &Path, e: io::Error) -> Error {
    Error::io(format!("cannot read {}", dir.display()), e)
}

/// The error of a worker stopped early: what is kept and how to go on.
fn stopped(
    reason: crate::control::StopReason,
    sweep: &Sweep,
    file: &Path,
    out: &OutputDir,
) -> Error {
    Error::Interrupted(format!(
        "{reason}: the points this worker finished are kept in {dir} and the one it was running \
         goes to the next worker; {} of {} points are done; start a worker again with `rbm-vmc \
         sweep {} --out {dir} --worker`",
        sweep
            .points
            .iter()
            .filter(|p| out.file(&row_file(p.index)).exists())
            .count(),
        sweep.points.len(),
        file.display(),
        dir = out.path().display()
    ))
}
