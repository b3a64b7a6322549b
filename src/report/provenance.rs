//! Where a result came from: program version and commit, command line, machine, start time
//! and duration, recorded in every result file.

use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::output::iso_utc;

static STARTED: OnceLock<SystemTime> = OnceLock::new();

/// When this command started: the first call's time (`main` calls it first thing).
pub fn command_started() -> SystemTime {
    *STARTED.get_or_init(SystemTime::now)
}

/// The provenance of this command, written now.
pub fn provenance() -> Value {
    let started = command_started();
    json!({
        "program": "rbm-vmc",
        "version": env!("CARGO_PKG_VERSION"),
        "git_commit": option_env!("RBM_VMC_GIT_COMMIT"),
        "command_line": std::env::args().collect::<Vec<_>>(),
        "host": host_name(),
        "cpu": cpu_model(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "started": iso_utc(started),
        "seconds": started.elapsed().map_or(0.0, |d| d.as_secs_f64()),
    })
}

fn host_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())?;
    Some(text.trim().to_string()).filter(|s| !s.is_empty())
}

/// The CPU model name, where the system says it.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_names_the_program_and_the_time() {
        let p = provenance();
        assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
        assert!(p["started"].as_str().unwrap().ends_with('Z'));
        assert!(p["command_line"].as_array().is_some_and(|a| !a.is_empty()));
        assert!(p["seconds"].as_f64().unwrap() >= 0.0);
    }
}
