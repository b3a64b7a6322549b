//! The parameters file: `{"a": [M], "b": [N], "w": [[N] x M]}` with w[m][n].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::physics::RbmParams;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    a: Vec<f64>,
    b: Vec<f64>,
    w: Vec<Vec<f64>>,
}

/// JSON text of the parameters.
pub fn params_to_json(p: &RbmParams) -> String {
    let file = ParamsFile {
        a: p.a().to_vec(),
        b: p.b().to_vec(),
        w: (0..p.visible()).map(|m| p.w_row(m).to_vec()).collect(),
    };
    serde_json::to_string_pretty(&file).expect("plain numbers serialise")
}

/// Reads a parameters file and checks it fits `visible` x `hidden` units.
pub fn read_params(path: &Path, visible: usize, hidden: usize) -> Result<RbmParams, Error> {
    let origin = path.display();
    let text = crate::report::read_text(path, "parameters file")?;
    let file: ParamsFile = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "parameters file {origin}: {e} (expected {{\"a\": [M], \"b\": [N], \"w\": [[N] x M]}})"
        ))
    })?;
    let shape_error = |what: String| {
        Error::input(format!(
            "parameters file {origin}: {what}; the config has M = {visible} visible \
             (particles x dims) and N = {hidden} hidden units"
        ))
    };
    if file.a.len() != visible {
        return Err(shape_error(format!("`a` has {} entries", file.a.len())));
    }
    if file.b.len() != hidden {
        return Err(shape_error(format!("`b` has {} entries", file.b.len())));
    }
    if file.w.len() != visible {
        return Err(shape_error(format!("`w` has {} rows", file.w.len())));
    }
    if let Some((m, row)) = file.w.iter().enumerate().find(|(_, r)| r.len() != hidden) {
        return Err(shape_error(format!("`w[{m}]` has {} entries", row.len())));
    }
    let mut theta = file.a;
    theta.extend(file.b);
    theta.extend(file.w.into_iter().flatten());
    if theta.iter().any(|t| !t.is_finite()) {
        return Err(Error::input(format!(
            "parameters file {origin}: contains a non-finite number"
        )));
    }
    Ok(RbmParams::from_theta(visible, hidden, theta).expect("shape checked above"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip_and_shapes_are_checked() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("params.json");
        let p = RbmParams::random(4, 3, 0.3, 1);
        std::fs::write(&path, params_to_json(&p)).unwrap();
        assert_eq!(read_params(&path, 4, 3).unwrap(), p);
        let err = read_params(&path, 4, 2).unwrap_err().to_string();
        assert!(
            err.contains("`b` has 3 entries") && err.contains("N = 2"),
            "{err}"
        );
        let err = read_params(&path, 6, 3).unwrap_err().to_string();
        assert!(err.contains("`a` has 4 entries"), "{err}");
        std::fs::write(&path, r#"{"a": [0], "b": [], "w": [[]], "c": 1}"#).unwrap();
        assert!(
            read_params(&path, 1, 0)
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
