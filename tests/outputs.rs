//! What commands leave in their output directories: `--force` clears every file of an
//! earlier command but never a file the command itself reads.

mod common;

use common::{TINY, assert_refused, rbm_vmc as run, read_json, scratch, text};

/// `sample --from D --out D --force` used to delete D's params.json and result.json and then
/// fail to read them. Every way of pointing `--force` at a command's own input is refused
/// before anything is removed.
#[test]
fn force_never_removes_what_the_command_reads() {
    let dir = scratch("force-inputs");
    let d = dir.join("run");
    let ds = d.to_str().unwrap();
    let mut args = vec!["run", "--out", ds];
    args.extend(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let params = d.join("params.json");
    let ps = params.to_str().unwrap();
    let before = std::fs::read(&params).unwrap();

    let from = run(&["sample", "--from", ds, "--out", ds, "--force", "-q"]);
    assert_refused(&from, "--force would delete", "sample --from D --out D");
    let mut with_params = vec!["sample", "--params", ps, "--out", ds, "--force"];
    with_params.extend(TINY);
    assert_refused(
        &run(&with_params),
        "params.json",
        "sample --params D/params.json",
    );
    let mut start_from = vec!["run", "--out", ds, "--force"];
    start_from.extend(TINY);
    let set = format!("wavefunction.params={ps}");
    start_from.extend(["--set", &set]);
    assert_refused(
        &run(&start_from),
        "params.json",
        "run starting from D/params.json",
    );
    let sweep = d.join("sweep.json");
    std::fs::write(&sweep, r#"{"grid": {"walkers": [64]}}"#).unwrap();
    let o = run(&["sweep", sweep.to_str().unwrap(), "--out", ds, "--force"]);
    assert_refused(&o, "sweep.json", "a sweep file named like a result");

    assert_eq!(std::fs::read(&params).unwrap(), before);
    assert_eq!(read_json(&d.join("result.json"))["status"], "completed");
    assert!(d.join("history.csv").exists() && d.join("convergence.svg").exists());

    // The same command into another directory works.
    let other = dir.join("sampled");
    let o = run(&[
        "sample",
        "--from",
        ds,
        "--out",
        other.to_str().unwrap(),
        "--set",
        "production.steps=100",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--force` removed result.json but kept convergence.svg, so a crash after it left the old
/// run's figure beside the new run's files.
#[test]
fn force_removes_every_file_of_the_earlier_command() {
    let dir = scratch("force-all");
    let d = dir.join("run");
    let ds = d.to_str().unwrap();
    let mut args = vec!["run", "--out", ds];
    args.extend(TINY);
    assert!(run(&args).status.success());
    std::fs::write(d.join("notes.txt"), "mine").unwrap();
    // A sample (no optimisation: no history or convergence figure) over the run.
    let mut args = vec!["sample", "--out", ds, "--force"];
    args.extend(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for gone in ["convergence.svg", "history.csv", "checkpoint.json"] {
        assert!(!d.join(gone).exists(), "{gone} of the earlier run is left");
    }
    assert_eq!(
        std::fs::read_to_string(d.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(read_json(&d.join("result.json"))["iterations"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
