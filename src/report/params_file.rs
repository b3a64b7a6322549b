//! The parameters file: `{"a": [M], "b": [N], "w": [[N] x M], "jastrow": j, "beta": b,
//! "sigma": s, "form": f, "system": {...}}` with w[m][n]; `jastrow` ("pade" or "simple") and
//! `beta` (Padé's number, the simple form's array) only with a Jastrow factor; `sigma`, `form`
//! and `system` what the parameters were made for (files of older versions lack them, and
//! `jastrow`, and still load).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::flat_width;
use crate::error::Error;
use crate::physics::{Form, PairForm, Params, System, Wavefunction};
use crate::report::compact;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    a: Vec<f64>,
    b: Vec<f64>,
    w: Vec<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jastrow: Option<PairForm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    beta: Option<Betas>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sigma: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    form: Option<Form>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system: Option<System>,
}

/// The Jastrow parameters: Padé's one beta, or the simple form's list.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Betas {
    One(f64),
    List(Vec<f64>),
}

impl Betas {
    fn to_vec(&self) -> Vec<f64> {
        match self {
            Betas::One(b) => vec![*b],
            Betas::List(list) => list.clone(),
        }
    }
}

/// JSON text of the parameters of `wf` for `system`.
pub fn params_to_json(p: &Params, wf: &Wavefunction, system: &System) -> String {
    let file = ParamsFile {
        a: p.a().to_vec(),
        b: p.b().to_vec(),
        w: (0..p.visible()).map(|m| p.w_row(m).to_vec()).collect(),
        jastrow: wf.jastrow.as_ref().map(|j| j.form),
        beta: wf.jastrow.as_ref().map(|j| match j.form {
            PairForm::Pade => Betas::One(p.jastrow()[0]),
            PairForm::Simple => Betas::List(p.jastrow().to_vec()),
        }),
        sigma: Some(wf.rbm_for(p).sigma),
        form: Some(wf.rbm.form),
        system: Some(system.clone()),
    };
    serde_json::to_string_pretty(&file).expect("plain numbers serialise")
}

/// Reads a parameters file for `wf` and `system`: the shapes, the forms and the system (where
/// the file names them) must fit; missing Jastrow parameters take `default_jastrow`; the width
/// must be the config's unless the config trains it (then the file's is the starting value).
pub fn read_params(
    path: &Path,
    wf: &Wavefunction,
    system: &System,
    default_jastrow: &[f64],
) -> Result<Params, Error> {
    let origin = path.display();
    let layout = wf.layout;
    let (visible, hidden) = (layout.visible, layout.hidden);
    let text = crate::report::read_text(path, "parameters file")?;
    crate::config::refuse_duplicate_keys(&text, "parameters file", path)?;
    // serde would read an array in place of the file's object, or of `system`, by position.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let array = if value.is_array() {
            Some("the file")
        } else {
            value
                .get("system")
                .is_some_and(|s| s.is_array())
                .then_some("`system`")
        };
        if let Some(what) = array {
            return Err(Error::input(format!(
                "parameters file {origin}: {what} is a JSON array; write an object of named fields"
            )));
        }
    }
    let file: ParamsFile = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "parameters file {origin}: {e} (expected {{\"a\": [M], \"b\": [N], \"w\": [[N] x M]}} \
             and optionally \"beta\", \"sigma\")"
        ))
    })?;
    if let Some(made_for) = file.system.as_ref().filter(|s| *s != system) {
        return Err(Error::input(format!(
            "parameters file {origin} was made for {}, but the config describes {}; measure \
             a run's parameters with its own config by `--from RUN_DIR` (`sample` or `dmc`), or \
             remove \"system\" from the file to use its numbers anyway",
            describe(made_for),
            describe(system)
        )));
    }
    if let Some(form) = file.form.filter(|f| *f != wf.rbm.form) {
        return Err(Error::input(format!(
            "parameters file {origin} was made for the {} form, but the config has \
             `wavefunction.form` = {}",
            serde_json::json!(form),
            serde_json::json!(wf.rbm.form)
        )));
    }
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
    let betas = jastrow_params(&file, wf, default_jastrow)
        .map_err(|why| Error::input(format!("parameters file {origin} {why}")))?;
    let mut theta = file.a;
    theta.extend(file.b);
    theta.extend(file.w.into_iter().flatten());
    theta.extend(betas);
    let sigma = wf.rbm.sigma;
    if let Some(s) = file.sigma {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::input(format!(
                "parameters file {origin}: `sigma` = {}: a width must be a finite number > 0",
                compact(s)
            )));
        }
        if let Some(why) = flat_width(s, system.omega) {
            return Err(Error::input(format!("parameters file {origin}: {why}")));
        }
    }
    match (layout.train_sigma, file.sigma) {
        (true, from_file) => theta.push(from_file.unwrap_or(sigma).ln()),
        (false, Some(s)) if (s - sigma).abs() > 1e-9 * sigma => {
            return Err(Error::input(format!(
                "parameters file {origin} was made with sigma = {s}, but the config's width is \
                 {sigma} (another omega or form?); set `wavefunction.sigma` = {s}, or \
                 `wavefunction.train_sigma` = true to start from it"
            )));
        }
        (false, _) => {}
    }
    if theta.iter().any(|t| !t.is_finite()) {
        return Err(Error::input(format!(
            "parameters file {origin}: contains a non-finite number"
        )));
    }
    let pade = wf
        .jastrow
        .as_ref()
        .is_some_and(|j| j.form == PairForm::Pade);
    if let Some(&beta) = theta[layout.jastrow_range()]
        .first()
        .filter(|b| pade && **b < 0.0)
    {
        return Err(Error::input(format!(
            "parameters file {origin}: `beta` = {beta} must be >= 0"
        )));
    }
    Ok(Params::from_theta(layout, theta).expect("shape checked above"))
}

/// The Jastrow parameters of a parameters file for `wf` (its defaults where the file has
/// none), or why they do not fit (a phrase after the file's name).
fn jastrow_params(
    file: &ParamsFile,
    wf: &Wavefunction,
    default_jastrow: &[f64],
) -> Result<Vec<f64>, String> {
    // Files of older versions name no form: their beta is Padé's.
    let made_with = file.jastrow.or(file.beta.as_ref().map(|_| PairForm::Pade));
    match (&wf.jastrow, made_with) {
        (Some(j), Some(form)) if form != j.form => Err(format!(
            "was made with `wavefunction.jastrow` = {}, but the config has {}",
            serde_json::json!(form),
            serde_json::json!(j.form)
        )),
        (Some(j), _) => {
            let betas = file
                .beta
                .as_ref()
                .map_or(default_jastrow.to_vec(), Betas::to_vec);
            if betas.len() != j.parameters() {
                return Err(format!(
                    "has {} entries in `beta`, where the config's Jastrow factor has {}",
                    betas.len(),
                    j.parameters()
                ));
            }
            Ok(betas)
        }
        (None, Some(form)) => Err(format!(
            "has Jastrow parameters, but the config has `wavefunction.jastrow` = \"none\"; set \
             it to {}",
            serde_json::json!(form)
        )),
        (None, None) => Ok(vec![]),
    }
}

fn describe(s: &System) -> String {
    format!(
        "{} particles ({}) in {}D at omega = {}{}",
        s.particles,
        serde_json::json!(s.statistics).as_str().unwrap_or_default(),
        s.dims,
        s.omega,
        if s.interaction {
            ""
        } else {
            " without interaction"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::{Jastrow, Layout, Rbm, Statistics};

    fn system(particles: usize, omega: f64) -> System {
        System {
            particles,
            dims: 2,
            omega,
            interaction: true,
            statistics: Statistics::Distinguishable,
        }
    }

    fn wavefunction(
        visible: usize,
        hidden: usize,
        jastrow: Option<PairForm>,
        train_sigma: bool,
    ) -> Wavefunction {
        let jastrow = jastrow.map(|form| Jastrow::new(visible / 2, 2, None, form));
        Wavefunction {
            rbm: Rbm {
                sigma: 0.8,
                form: Form::Direct,
            },
            layout: Layout {
                visible,
                hidden,
                jastrow: jastrow.as_ref().map_or(0, Jastrow::parameters),
                train_sigma,
            },
            jastrow,
            slater: None,
        }
    }

    #[test]
    fn parameters_round_trip_and_shapes_are_checked() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("params.json");
        let wf = wavefunction(4, 3, None, false);
        let p = Params::initial(wf.layout, 0.3, 1, &[], 0.8);
        std::fs::write(&path, params_to_json(&p, &wf, &system(2, 1.0))).unwrap();
        assert_eq!(read_params(&path, &wf, &system(2, 1.0), &[0.5]).unwrap(), p);
        let err = read_params(
            &path,
            &wavefunction(4, 2, None, false),
            &system(2, 1.0),
            &[0.5],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`b` has 3 entries") && err.contains("N = 2"),
            "{err}"
        );
        let err = read_params(
            &path,
            &wavefunction(6, 3, None, false),
            &system(2, 1.0),
            &[0.5],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`a` has 4 entries"), "{err}");
        // Another system or form: refused, naming both.
        let err = read_params(&path, &wf, &system(2, 0.5), &[0.5])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("omega = 1, but") && err.contains("--from"),
            "{err}"
        );
        let mut sqrt = wf.clone();
        sqrt.rbm.form = Form::Sqrt;
        let err = read_params(&path, &sqrt, &system(2, 1.0), &[0.5])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"direct\" form"), "{err}");
        // Another width: refused, unless trained (then the file's is the start).
        let mut wider = wf.clone();
        wider.rbm.sigma = 1.0;
        let err = read_params(&path, &wider, &system(2, 1.0), &[0.5])
            .unwrap_err()
            .to_string();
        assert!(err.contains("sigma = 0.8"), "{err}");
        wider.layout.train_sigma = true;
        let trained = read_params(&path, &wider, &system(2, 1.0), &[0.5]).unwrap();
        assert!((trained.sigma().unwrap() - 0.8).abs() < 1e-15);
        std::fs::write(&path, r#"{"a": [0], "b": [], "w": [[]], "c": 1}"#).unwrap();
        assert!(
            read_params(
                &path,
                &wavefunction(1, 0, None, false),
                &system(2, 1.0),
                &[0.5]
            )
            .unwrap_err()
            .to_string()
            .contains("unknown field")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A width of 0, below 0 or far beyond the trap is named as such: it used to read "a
    /// non-finite number", with a hint to set `wavefunction.sigma` = -1.
    #[test]
    fn impossible_widths_are_named() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-width-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("params.json");
        for wf in [
            wavefunction(2, 1, None, false),
            wavefunction(2, 1, None, true),
        ] {
            for (sigma, needle) in [
                ("0", "`sigma` = 0: a width must be a finite number > 0"),
                ("-1", "`sigma` = -1: a width must be a finite number > 0"),
                ("1e300", "the trial function is flat"),
            ] {
                let text =
                    format!(r#"{{"a": [0, 0], "b": [0], "w": [[0], [0]], "sigma": {sigma}}}"#);
                std::fs::write(&path, text).unwrap();
                let err = read_params(&path, &wf, &system(1, 1.0), &[0.5])
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(needle), "{err}");
                assert!(
                    !err.contains("non-finite") && !err.contains("= -1;"),
                    "{err}"
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A key given twice, or an array read by position in place of the file's object or of
    /// `system`, is refused (each used to load: the last key, the positions).
    #[test]
    fn duplicate_keys_and_arrays_for_objects_are_refused() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-params-dup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("params.json");
        let wf = wavefunction(1, 0, None, false);
        for (text, needle) in [
            (
                r#"{"a": [0], "b": [], "w": [[]], "a": [1]}"#,
                "the key `a` appears twice",
            ),
            (r#"[[0], [], [[]]]"#, "the file is a JSON array"),
            (
                r#"{"a": [0], "b": [], "w": [[]], "system": [2, 2, 1.0, true, "distinguishable"]}"#,
                "`system` is a JSON array",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = read_params(&path, &wf, &system(2, 1.0), &[0.5])
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Files without beta (older versions, or runs without the factor) load with the
    /// config's initial beta; a beta for a config without the factor is refused.
    #[test]
    fn beta_is_carried_and_old_files_still_load() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-beta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("params.json");
        std::fs::write(
            &path,
            r#"{"a": [0.1, 0.2], "b": [0.3], "w": [[0.4], [0.5]]}"#,
        )
        .unwrap();
        let with = wavefunction(2, 1, Some(PairForm::Pade), false);
        // A file without a system loads for any.
        let p = read_params(&path, &with, &system(7, 0.3), &[0.7]).unwrap();
        assert_eq!(p.jastrow(), &[0.7]);
        let mut q = p.clone();
        q.theta_mut()[5] = 0.35;
        std::fs::write(&path, params_to_json(&q, &with, &system(1, 1.0))).unwrap();
        assert_eq!(
            read_params(&path, &with, &system(1, 1.0), &[0.7])
                .unwrap()
                .jastrow(),
            &[0.35]
        );
        let err = read_params(
            &path,
            &wavefunction(2, 1, None, false),
            &system(1, 1.0),
            &[0.7],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("jastrow"), "{err}");
        // The simple form's betas are a list, and files of one form refuse the other.
        let simple = wavefunction(4, 1, Some(PairForm::Simple), false);
        let mut p = Params::initial(simple.layout, 0.2, 3, &[0.9], 0.8);
        p.jastrow_mut()[0] = -0.25;
        std::fs::write(&path, params_to_json(&p, &simple, &system(2, 1.0))).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"simple\"") && text.contains("-0.25"),
            "{text}"
        );
        assert_eq!(
            read_params(&path, &simple, &system(2, 1.0), &[0.9]).unwrap(),
            p
        );
        let pade = wavefunction(4, 1, Some(PairForm::Pade), false);
        let err = read_params(&path, &pade, &system(2, 1.0), &[0.5])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"simple\", but the config has \"pade\""),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
