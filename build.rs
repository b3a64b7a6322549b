//! Embeds the git commit the program is built from (when built inside a git checkout), for
//! the provenance recorded in every result file.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(commit) = git(&["rev-parse", "HEAD"]) {
        println!("cargo:rustc-env=RBM_VMC_GIT_COMMIT={commit}");
    }
    // A new commit changes HEAD or a ref; watch only what exists (a missing path would make
    // cargo run this script on every build).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for name in ["HEAD", "refs", "packed-refs"] {
            let path = Path::new(&dir).join(name);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
