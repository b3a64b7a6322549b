//! The command line as a user meets it: output files, exit codes, and messages on bad input.

mod common;

use common::{
    TINY, assert_refused, command as bin, output_within, rbm_vmc as run, read_json, scratch, text,
};

#[test]
fn run_writes_history_params_and_result() {
    let dir = scratch("run");
    let out = dir.join("out");
    let mut args = vec!["run", "--out", out.to_str().unwrap()];
    args.extend(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("iter     3"), "{stdout}");
    assert!(stdout.contains("reference 3"), "{stdout}");

    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("iteration,energy,error,"));
    // No warning is a quoted empty text `""` (it was an empty field), so readers that tell a
    // quoted empty field from a missing value read text; every row has the column.
    let mut reader = csv::Reader::from_reader(history.as_bytes());
    let warning = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "warning")
        .unwrap();
    for (record, line) in reader.records().zip(&lines[1..]) {
        let record = record.unwrap();
        let field = line.split(',').nth(warning).unwrap();
        assert!(field.starts_with('"') && field.ends_with('"'), "{line}");
        if record[warning].is_empty() {
            assert_eq!(field, "\"\"", "{line}");
        }
    }

    let params = read_json(&out.join("params.json"));
    assert_eq!(params["a"].as_array().unwrap().len(), 4);
    assert_eq!(params["b"].as_array().unwrap().len(), 2);
    assert_eq!(params["w"].as_array().unwrap().len(), 4);
    assert_eq!(params["w"][0].as_array().unwrap().len(), 2);

    let result = read_json(&out.join("result.json"));
    for key in [
        "energy",
        "error",
        "error_walkers",
        "variance",
        "acceptance",
        "tau",
        "samples",
        "engine",
        "seconds",
        "config",
    ] {
        assert!(!result[key].is_null(), "result.json lacks {key}: {result}");
    }
    assert_eq!(result["samples"], 64 * 400);
    assert_eq!(result["status"], "completed");
    assert!(result.get("reason").is_none(), "{result}");
    assert_eq!(result["config"]["walkers"], 64);
    let provenance = &result["provenance"];
    assert_eq!(provenance["program"], "rbm-vmc");
    assert!(
        provenance["started"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(provenance["command_line"][1] == "run", "{provenance}");
    let energy = result["energy"].as_f64().unwrap();
    assert!(energy > 3.0 && energy < 3.5, "{energy}");

    // Running again into the same directory is refused; --force allows it.
    let again = run(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("--force"));
    args.push("--force");
    assert!(run(&args).status.success());

    // `sample` measures at the parameters just written.
    let sampled = dir.join("sampled");
    let params_file = out.join("params.json");
    let mut args = vec![
        "sample",
        "--params",
        params_file.to_str().unwrap(),
        "--out",
        sampled.to_str().unwrap(),
    ];
    args.extend(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("iter "));
    let result = read_json(&sampled.join("result.json"));
    assert_eq!(result["iterations"], 0);
    assert!(!sampled.join("history.csv").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run's parameters know their system: `sample --from DIR` measures them with the run's
/// config (overrides still apply), and `--params` with another system is refused.
#[test]
fn sample_from_a_run_directory_uses_its_config() {
    let dir = scratch("from");
    let out = dir.join("half");
    let mut args = vec![
        "run",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "system.omega=0.5",
    ];
    args.extend(TINY);
    assert!(run(&args).status.success());
    let params = read_json(&out.join("params.json"));
    assert_eq!(params["system"]["omega"], 0.5);
    let sampled = dir.join("sampled");
    let o = run(&[
        "sample",
        "--from",
        out.to_str().unwrap(),
        "--out",
        sampled.to_str().unwrap(),
        "--set",
        "production.steps=200",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let result = read_json(&sampled.join("result.json"));
    assert_eq!(result["config"]["system"]["omega"], 0.5);
    assert_eq!(result["config"]["walkers"], 64);
    assert_eq!(result["samples"], 64 * 200);
    let params_file = out.join("params.json");
    let mut args = vec![
        "sample",
        "--params",
        params_file.to_str().unwrap(),
        "--out",
        sampled.to_str().unwrap(),
        "--force",
    ];
    args.extend(TINY);
    assert_refused(
        &run(&args),
        "omega = 0.5, but the config describes",
        "--params",
    );
    let o = run(&["sample", "--from", dir.to_str().unwrap()]);
    assert_refused(&o, "result.json", "--from a directory without a run");
    // The run's result.json with a key twice is refused; an error in a --set names it.
    let from = dir.join("from");
    std::fs::create_dir_all(&from).unwrap();
    std::fs::write(
        from.join("result.json"),
        r#"{"config": {"walkers": 8}, "config": {"walkers": 9}}"#,
    )
    .unwrap();
    let o = run(&["sample", "--from", from.to_str().unwrap()]);
    assert_refused(&o, "the key `config` appears twice", "--from, a key twice");
    std::fs::write(from.join("result.json"), r#"{"config": {"walkers": 8}}"#).unwrap();
    let args = ["sample", "--from", from.to_str().unwrap()];
    let o = run(&[&args[..], &["--set", "system.omega=abc"]].concat());
    assert_refused(
        &o,
        "--set `system.omega=abc`: `system.omega`",
        "--from, --set",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each case: extra arguments, a text the message must contain.
#[test]
fn bad_input_exits_with_code_2_and_a_reason() {
    let dir = scratch("bad");
    let bad_config = dir.join("bad.json");
    std::fs::write(&bad_config, "{ \"system\": { \"omega\": 1.0, }").unwrap();
    let wrong_shape = dir.join("params.json");
    std::fs::write(
        &wrong_shape,
        r#"{"a": [0, 0], "b": [0, 0], "w": [[0, 0], [0, 0]]}"#,
    )
    .unwrap();
    let blocker = dir.join("file");
    std::fs::write(&blocker, "").unwrap();
    let unwritable = blocker.join("sub");
    let params_override = format!("wavefunction.params=\"{}\"", wrong_shape.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--set", "system.omega=0"], "system.omega"),
        (vec!["--set", "system.omega=-1"], "system.omega"),
        (vec!["--set", "wavefunction.sigma=0"], "wavefunction.sigma"),
        (vec!["--set", "walkers=0"], "walkers"),
        (
            vec!["--set", "steps_per_iteration=0"],
            "steps_per_iteration",
        ),
        (vec!["--set", "sampler.dt=-0.01"], "sampler.dt"),
        (vec!["--set", "sampler.step=0"], "sampler.step"),
        (vec!["--set", "optimiser.learning_rate=0"], "learning_rate"),
        (vec!["--set", "system.dims=4"], "system.dims"),
        (vec!["--set", "system.dims=0"], "system.dims"),
        (vec!["--set", "system.particles=0"], "system.particles"),
        (vec!["--set", "system.omega=NaN"], "system.omega"),
        (vec!["--set", "system.omega=1e999"], "system.omega"),
        (vec!["--set", "system.dims=1"], "diverges"),
        (vec!["--set", "sampler.kind=gibbs"], "sqrt"),
        (vec!["--set", "sampler.kind=hmc"], "sampler.kind"),
        (vec!["--set", "system.omgea=1"], "omgea"),
        (vec!["--set", "walkers"], "KEY=VALUE"),
        (vec![bad_config.to_str().unwrap()], "not valid JSON"),
        (vec!["does-not-exist.json"], "cannot read config"),
        (vec!["--set", &params_override], "`a` has 2 entries"),
        (
            vec!["--out", unwritable.to_str().unwrap()],
            "cannot create output directory",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["run"];
        args.extend(TINY);
        args.extend(&extra);
        let o = run(&args);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{extra:?}: `{stderr}` lacks `{needle}`"
        );
        assert!(!stderr.contains("panicked"), "{extra:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{extra:?}: one line: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_explains_every_option() {
    let o = run(&["run", "--help"]);
    let help = text(&o.stdout);
    for option in ["--set", "--engine", "--out", "--threads", "--force"] {
        assert!(help.contains(option), "run --help lacks {option}: {help}");
    }
    let o = run(&["sample", "--help"]);
    assert!(text(&o.stdout).contains("--params"));
}

#[test]
fn gpu_engine_runs_from_the_command_line_or_says_why_not() {
    let dir = scratch("gpu");
    let out = dir.join("out");
    let mut args = vec!["run", "--out", out.to_str().unwrap()];
    args.extend(&TINY[..10]);
    args.extend(["--engine", "gpu"]);
    let o = run(&args);
    let stderr = text(&o.stderr);
    if o.status.code() == Some(2)
        && stderr.contains("no GPU adapter found")
        && !common::gpu_required()
    {
        eprintln!("skipped: no GPU adapter");
        return;
    }
    assert!(o.status.success(), "{stderr}");
    let result = read_json(&out.join("result.json"));
    assert!(
        result["engine"].as_str().unwrap().starts_with("gpu: "),
        "{result}"
    );
    let energy = result["energy"].as_f64().unwrap();
    assert!(energy > 3.0 && energy < 3.5, "{energy}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn engine_choice_errors_say_what_to_do() {
    // No adapter of this name: exit 2, pointing at `devices`.
    let mut args = vec!["run", "--engine", "gpu", "--adapter", "no-such-adapter-xyz"];
    args.extend(&TINY[..10]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("rbm-vmc devices"),
        "{}",
        text(&o.stderr)
    );

    // No backend with adapters (Metal does not exist on Linux): `gpu` is an error that says
    // how to get one, `auto` falls back to the CPU engine and says so.
    if cfg!(target_os = "linux") {
        let without_adapters = |extra: &[&str]| {
            let mut args = vec!["run"];
            args.extend(extra);
            args.extend(&TINY[..10]);
            bin()
                .args(&args)
                .env("WGPU_BACKEND", "metal")
                .output()
                .unwrap()
        };
        let o = without_adapters(&["--engine", "gpu"]);
        assert_eq!(o.status.code(), Some(2));
        let stderr = text(&o.stderr);
        assert!(
            stderr.contains("mesa-vulkan-drivers") && stderr.contains("--engine cpu"),
            "{stderr}"
        );

        let dir = scratch("auto");
        let out = dir.join("out");
        let o = without_adapters(&["--engine", "auto", "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let stdout = text(&o.stdout);
        assert!(
            stdout.contains("engine: cpu") && stdout.contains("auto: no GPU"),
            "{stdout}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    let o = run(&["devices"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("--engine auto runs on"));
}

/// A time budget beyond what a clock holds is no limit (it used to panic).
#[test]
fn a_huge_time_budget_is_no_limit() {
    let dir = scratch("budget");
    for (i, budget) in ["1e20", "1e300"].iter().enumerate() {
        let out = dir.join(format!("out{i}"));
        let mut args = vec![
            "run",
            "-q",
            "--max-seconds",
            budget,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(TINY);
        let o = run(&args);
        assert!(o.status.success(), "{budget}: {}", text(&o.stderr));
    }
    for bad in ["0", "-1", "NaN", "inf"] {
        let arg = format!("--max-seconds={bad}");
        let o = run(&["run", &arg, "--out", "/nonexistent/x"]);
        assert_refused(&o, "--max-seconds", bad);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// stdout that cannot be written (a full disk) is an error with exit code 2, also after a
/// run whose files are written; a closed pipe (`| head`) only silences the output; an
/// unwritable stderr changes no exit code. Nothing panics.
#[cfg(target_os = "linux")]
#[test]
fn output_that_cannot_be_written_is_an_error_and_a_closed_pipe_is_not() {
    use std::process::Stdio;
    let full = || {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        Stdio::from(file)
    };
    let dir = scratch("stdout");
    let out = dir.join("out");
    let mut run_args = vec!["run", "--out", out.to_str().unwrap()];
    run_args.extend(TINY);
    // Long enough a production for its error bars (no warning: stderr holds the error alone).
    run_args.extend(["--set", "production.steps=2000"]);
    for args in [vec!["devices"], vec!["check"], run_args.clone()] {
        let o = bin().args(&args).stdout(full()).output().unwrap();
        assert_refused(&o, "cannot write to standard output", args[0]);
    }
    assert!(out.join("result.json").exists());

    for args in [vec!["devices"], vec!["check"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = bin().args(&args).stdout(writer).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stderr), "", "{args:?}");
    }

    let o = bin()
        .args(["run", "--set", "walkers=0"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Inputs that are not regular files (a device, a FIFO, a directory) or larger than the
/// 64 MiB cap are refused at once with the reason, for every kind of input file.
#[cfg(unix)]
#[test]
fn inputs_that_are_not_regular_files_or_too_large_are_refused() {
    let dir = scratch("inputs");
    let fifo = dir.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let big = dir.join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let resume = dir.join("resume");
    std::fs::create_dir(&resume).unwrap();
    std::os::unix::fs::symlink("/dev/zero", resume.join("checkpoint.json")).unwrap();
    let (fifo, big, resume) = (
        fifo.to_str().unwrap(),
        big.to_str().unwrap(),
        resume.to_str().unwrap(),
    );
    let params_fifo = format!("wavefunction.params={fifo}");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["check", "/dev/zero"], "a device is not a regular file"),
        (
            vec!["check", fifo],
            "a FIFO (named pipe) is not a regular file",
        ),
        (vec!["check", "/tmp"], "a directory is not a regular file"),
        (vec!["check", big], "larger than 64 MiB"),
        (vec!["check", "--set", &params_fifo], "FIFO"),
        (
            vec!["sample", "--params", "/dev/zero", "--out", out],
            "device",
        ),
        (vec!["sweep", fifo, "--out", out], "FIFO"),
        (vec!["sweep", big, "--out", out], "64 MiB"),
        (vec!["run", "--resume", resume], "device"),
    ];
    for (args, needle) in cases {
        let o = output_within(bin().args(&args), 20.0);
        assert_refused(&o, needle, &args.join(" "));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A command that fails before writing anything leaves no empty output folder behind (the
/// test suite used to leave `runs/<timestamp>` folders in the repository).
#[test]
fn failed_commands_leave_no_empty_output_folder() {
    let dir = scratch("no-empty");
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "--engine", "gpu", "--adapter", "no-such-adapter-xyz"],
        vec!["run", "--set", "wavefunction.params=missing.json"],
        vec!["sample", "--params", "missing.json"],
        vec![
            "run",
            "--out",
            "deep/er/out",
            "--set",
            "wavefunction.params=missing.json",
        ],
    ];
    for args in cases {
        let o = bin().current_dir(&dir).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `check` estimates the time of a run and reads sweep files, counting their points.
#[test]
fn check_estimates_the_time_of_runs_and_sweeps() {
    let o = run(&["check", "--set", "walkers=1e3", "--set", "engine=cpu"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("1000 walkers"), "{stdout}");
    // Calibrated on the engine the run takes (the CPU here, whatever the machine).
    assert!(stdout.contains(" on cpu ("), "{stdout}");
    let sweep = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/sweep-hidden.json");
    let o = run(&["check", sweep]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(
        stdout.starts_with("sweep OK: 5 points over wavefunction.hidden")
            && stdout.contains(", from a short calibration of each kind of point"),
        "{stdout}"
    );
}

/// Command lines clap refuses read as every other error: one `error:` line, exit 2; help
/// and version print as before.
#[test]
fn usage_errors_are_one_error_line() {
    for (args, needle) in [
        (&["run", "--foo"][..], "unexpected argument '--foo'"),
        (&["sweep"], "required arguments were not provided: <FILE>"),
        (
            &["run", "--engine", "tpu"],
            "[possible values: auto, cpu, gpu]",
        ),
        (&["rn"], "unrecognized subcommand 'rn'"),
        (
            &["run", "--resume", "x", "--set", "a=1"],
            "cannot be used with",
        ),
    ] {
        let o = run(args);
        assert_refused(&o, needle, &args.join(" "));
        assert!(text(&o.stderr).contains("(see --help)"), "{args:?}");
    }
    let o = run(&["run", "--help"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("Usage: rbm-vmc run [OPTIONS] [CONFIG]"));
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).starts_with("rbm-vmc "));
}
