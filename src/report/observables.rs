//! The observables beyond the energy, for the user: console lines, result.json fields, the
//! CSV files (density.csv, pair.csv, density2d.csv) and the figures.

use serde_json::{Value, json};

use super::OutputDir;
use crate::error::Error;
use crate::physics::System;
use crate::stats::Observed;
use crate::stats::observables::Value as Measured;

/// `value +- error` with six decimals, or seven significant digits where six decimals would
/// hide them.
fn pm(v: &Measured) -> String {
    let size = v.value.abs();
    if size != 0.0 && !(1e-2..1e6).contains(&size) {
        format!("{:.6e} +- {:.2e}", v.value, v.error)
    } else {
        format!("{:.6} +- {:.6}", v.value, v.error)
    }
}

/// The console summary: the energy's parts, the virial ratio and the distances.
pub fn observables_lines(o: &Observed) -> Vec<String> {
    let mut lines = vec![
        format!(
            "kinetic {}, trap {}, interaction {} (the parts of the energy)",
            pm(&o.kinetic),
            pm(&o.trap),
            pm(&o.interaction)
        ),
        format!(
            "virial ratio 2<T> / (2<V_trap> - <V_int>) = {} (1 for an exact eigenstate)",
            pm(&o.virial_ratio)
        ),
    ];
    let mut distances = format!("<r^2> = {}", pm(&o.square_radius));
    if let Some(r) = &o.pair_distance {
        distances += &format!(", <r_ij> = {}", pm(r));
    }
    if let Some(inv) = &o.inverse_pair_distance {
        distances += &format!(", <1/r_ij> = {}", pm(inv));
    }
    lines.push(distances);
    lines
}

/// The fields result.json gets under "observables".
pub fn observables_json(o: &Observed) -> Value {
    let v = |m: &Measured| json!({"value": m.value, "error": m.error});
    let opt = |m: &Option<Measured>| m.as_ref().map_or(Value::Null, v);
    json!({
        "kinetic": v(&o.kinetic),
        "trap": v(&o.trap),
        "interaction": v(&o.interaction),
        "virial_ratio": v(&o.virial_ratio),
        "square_radius": v(&o.square_radius),
        "pair_distance": opt(&o.pair_distance),
        "inverse_pair_distance": opt(&o.inverse_pair_distance),
        "blocks": o.blocks,
        "histogram_blocks": o.histogram_blocks,
        "walkers": o.walkers,
        "density_outside": o.radial.outside,
        "pairs_outside": o.pair.outside,
        "files": files(o),
    })
}

fn files(o: &Observed) -> Vec<&'static str> {
    let mut names = vec!["density.csv", "density.svg"];
    if o.pair_distance.is_some() {
        names.push("pair.csv");
    }
    if o.grid.is_some() {
        names.extend(["density2d.csv", "density2d.svg"]);
    }
    names
}

/// The radial density as CSV: r, rho, its error and the non-interacting density.
pub fn density_csv(o: &Observed, system: &System) -> String {
    let mut text = String::from("r,rho,error,rho_non_interacting\n");
    let h = &o.radial;
    for i in 0..h.values.len() {
        let r = h.centres[i];
        let reference = system
            .non_interacting_density(r)
            .map_or(String::new(), |v| format!("{v:.9e}"));
        text += &format!(
            "{r:.9e},{:.9e},{:.9e},{reference}\n",
            h.values[i], h.errors[i]
        );
    }
    text
}

/// The pair-distance distribution as CSV: r12, P(r12) and its error.
pub fn pair_csv(o: &Observed) -> String {
    let mut text = String::from("r12,p,error\n");
    let h = &o.pair;
    for i in 0..h.values.len() {
        text += &format!(
            "{:.9e},{:.9e},{:.9e}\n",
            h.centres[i], h.values[i], h.errors[i]
        );
    }
    text
}

/// The x-y density as CSV in long form (one row per cell): x, y, density and its error.
pub fn density2d_csv(o: &Observed) -> Option<String> {
    let g = o.grid.as_ref()?;
    let n = g.centres.len();
    let mut text = String::from("x,y,density,error\n");
    for iy in 0..n {
        for ix in 0..n {
            let i = iy * n + ix;
            text += &format!(
                "{:.9e},{:.9e},{:.9e},{:.9e}\n",
                g.centres[ix], g.centres[iy], g.values[i], g.errors[i]
            );
        }
    }
    Some(text)
}

/// Writes the observables' files and figures into `out` (on the writing process alone: the
/// others' figures would race for the same temporary files).
pub fn write_observables(o: &Observed, system: &System, out: &OutputDir) -> Result<(), Error> {
    if !out.is_writable() {
        return Ok(());
    }
    out.write("density.csv", density_csv(o, system).as_bytes())?;
    // One particle has no pairs.
    if o.pair_distance.is_some() {
        out.write("pair.csv", pair_csv(o).as_bytes())?;
    }
    if let Some(text) = density2d_csv(o) {
        out.write("density2d.csv", text.as_bytes())?;
    }
    super::density_plot::density_svg(&out.file("density.svg"), o, system)?;
    if o.pair_distance.is_some() {
        super::density_plot::pair_svg(&out.file("pair.svg"), o, system)?;
    }
    if let Some(g) = &o.grid {
        super::density_plot::density2d_svg(&out.file("density2d.svg"), g, system)?;
    }
    Ok(())
}
