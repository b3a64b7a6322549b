//! `sweep --worker`: processes sharing one sweep directory run every point exactly once, a
//! killed worker's point is redone by another, and `--collect` rebuilds the table.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{command, read_json, scratch, text};
use serde_json::json;

/// A production sweep of `points` points of `steps` steps each, on one CPU thread.
fn sweep_file(dir: &Path, points: usize, steps: u32) -> PathBuf {
    let path = dir.join("sweep.json");
    let omegas: Vec<f64> = (0..points).map(|i| 0.5 + 0.1 * i as f64).collect();
    let sweep = json!({
        "config": {
            "wavefunction": {"init_scale": 0.0},
            "sampler": {"thermalisation": 20},
            "production": {"steps": steps},
            "walkers": 64,
            "threads": 1,
            "engine": "cpu"
        },
        "grid": {"system.omega": omegas},
        "mode": "production"
    });
    std::fs::write(&path, sweep.to_string()).unwrap();
    path
}

/// `rbm-vmc sweep FILE --out OUT` with `flags`.
fn sweep(file: &Path, out: &Path, flags: &[&str]) -> Command {
    let mut c = command();
    c.args([
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .args(flags);
    c
}

/// A worker on `out`, with a short stale time so a dead worker's point is soon taken over.
fn worker(file: &Path, out: &Path) -> Child {
    sweep(file, out, &["--worker"])
        .env("RBM_VMC_CLAIM_STALE_SECONDS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

/// The workers' point lines: how many times each point was reported finished.
fn finished_counts(outputs: &[String], points: usize) -> Vec<usize> {
    (0..points)
        .map(|i| {
            let prefix = format!("point {}/{points} ", i + 1);
            outputs
                .iter()
                .flat_map(|o| o.lines())
                .filter(|l| l.starts_with(&prefix) && l.contains(": E = "))
                .count()
        })
        .collect()
}

/// Every point once in sweep.csv, sweep.json and its row file.
fn assert_table_complete(out: &Path, points: usize) {
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let indices: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let expected: Vec<String> = (0..points).map(|i| i.to_string()).collect();
    assert_eq!(indices, expected, "{csv}");
    let rows = read_json(&out.join("sweep.json"));
    assert_eq!(rows.as_array().unwrap().len(), points);
    for i in 0..points {
        assert!(out.join(format!("points/{i:04}/row.json")).exists());
        assert_eq!(rows[i]["status"], "completed");
    }
}

fn finish(child: Child) -> (bool, String) {
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success() || o.status.code().is_none(),
        "{}",
        text(&o.stderr)
    );
    (o.status.success(), text(&o.stdout))
}

#[test]
fn two_and_three_workers_run_every_point_exactly_once() {
    for workers in [2, 3] {
        let dir = scratch(&format!("workers-{workers}"));
        let points = 7;
        let file = sweep_file(&dir, points, 20_000);
        let out = dir.join("out");
        let children: Vec<Child> = (0..workers).map(|_| worker(&file, &out)).collect();
        let outputs: Vec<String> = children
            .into_iter()
            .map(|c| {
                let (ok, stdout) = finish(c);
                assert!(ok, "{stdout}");
                stdout
            })
            .collect();
        assert_eq!(
            finished_counts(&outputs, points),
            vec![1; points],
            "{outputs:?}"
        );
        assert_table_complete(&out, points);
        // One claim per point, none taken over.
        for i in 0..points {
            assert!(out.join(format!("claims/{i:04}.0")).exists());
            assert!(!out.join(format!("claims/{i:04}.1")).exists());
        }
        // The table is rebuilt on demand, the same.
        let before = std::fs::read_to_string(out.join("sweep.json")).unwrap();
        std::fs::remove_file(out.join("sweep.csv")).unwrap();
        let o = sweep(&file, &out, &["--collect"]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(
            std::fs::read_to_string(out.join("sweep.json")).unwrap(),
            before
        );
        assert_table_complete(&out, points);
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// A worker killed mid-point leaves a claim that no heartbeat refreshes: once it is stale,
/// a surviving worker takes the point over (generation 1) and runs it; no point runs twice
/// to completion.
#[test]
fn a_killed_workers_point_is_redone_by_another() {
    let dir = scratch("workers-killed");
    let points = 4;
    let file = sweep_file(&dir, points, 600_000);
    let out = dir.join("out");
    let mut doomed = worker(&file, &out);
    let survivor = worker(&file, &out);
    // Wait until the doomed worker holds a claim, then kill it mid-point.
    let mine = format!(" {}\n", doomed.id());
    let start = Instant::now();
    let held = loop {
        let claim = std::fs::read_dir(out.join("claims"))
            .ok()
            .and_then(|entries| {
                entries.flatten().find(|e| {
                    std::fs::read_to_string(e.path()).is_ok_and(|content| content.ends_with(&mine))
                })
            });
        if let Some(claim) = claim {
            break claim.file_name().to_string_lossy().into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no claim appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(200));
    doomed.kill().unwrap();
    let index: usize = held.split('.').next().unwrap().parse().unwrap();
    let killed = doomed.wait_with_output().unwrap();
    assert!(
        !out.join(format!("points/{index:04}/row.json")).exists(),
        "the point finished before the kill; the test needs longer points"
    );
    // A third worker joins late; together they finish.
    let late = worker(&file, &out);
    let (ok, survivor) = finish(survivor);
    assert!(ok, "{survivor}");
    let (ok, late) = finish(late);
    assert!(ok, "{late}");
    let outputs = [text(&killed.stdout), survivor, late];
    assert_eq!(
        finished_counts(&outputs, points),
        vec![1; points],
        "{outputs:?}"
    );
    assert!(
        out.join(format!("claims/{index:04}.1")).exists(),
        "point {index} was not taken over"
    );
    assert_table_complete(&out, points);
    std::fs::remove_dir_all(&dir).ok();
}

/// A worker refuses another sweep's directory; --worker does not go with --resume.
#[test]
fn workers_refuse_another_sweeps_directory() {
    let dir = scratch("workers-refuse");
    let file = sweep_file(&dir, 2, 1000);
    let out = dir.join("out");
    let (ok, _) = finish(worker(&file, &out));
    assert!(ok);
    let other = dir.join("other.json");
    std::fs::write(
        &other,
        json!({"config": {"engine": "cpu"}, "grid": {"walkers": [32]}, "mode": "production"})
            .to_string(),
    )
    .unwrap();
    let o = sweep(&other, &out, &["--worker"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("a different sweep"),
        "{}",
        text(&o.stderr)
    );
    let o = sweep(&file, &out, &["--worker", "--resume"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "--worker and --resume conflict");
    std::fs::remove_dir_all(&dir).ok();
}
