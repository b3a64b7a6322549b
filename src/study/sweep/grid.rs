//! A sweep's grid: the sweep file read and expanded into validated points.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::checksum::fnv1a_hex;
use crate::config::{Config, EngineChoice, merge, read_json, set_path};
use crate::error::Error;

/// Most points one sweep may hold.
pub const MAX_POINTS: usize = 10_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Optimise the parameters, then the production run.
    #[default]
    Optimise,
    /// Production only, at the config's initial (or given) parameters.
    Production,
    /// Fixed-node diffusion Monte Carlo at the config's initial (or given) parameters.
    Dmc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    base: Option<PathBuf>,
    config: Option<Value>,
    #[serde(default)]
    grid: Map<String, Value>,
    /// Points listed one by one, each setting its keys together (a paired sweep); with a
    /// grid, every listed point runs the whole grid.
    points: Option<Vec<Map<String, Value>>>,
    #[serde(default)]
    mode: Mode,
}

/// One point of the grid.
#[derive(Clone, Debug)]
pub struct PointSpec {
    pub index: usize,
    /// The swept values, in key order.
    pub values: Vec<Value>,
    pub config: Config,
}

/// A loaded, fully validated sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub keys: Vec<String>,
    pub points: Vec<PointSpec>,
    pub mode: Mode,
}

/// An axis of the sweep: its entries, each the values of the axis' keys.
type Axis = Vec<Vec<Value>>;

/// The sweep's keys and its axes, each a list of entries that set the axis' keys (in key
/// order): the listed `points` first (one axis, all its keys), then one axis per grid key.
/// The last axis varies fastest.
fn axes(file: &SweepFile) -> Result<(Vec<String>, Vec<Axis>), String> {
    let mut keys = Vec::new();
    let mut axes = Vec::new();
    if let Some(list) = &file.points {
        let first = list
            .first()
            .ok_or("`points` is empty; list at least one point, or leave it out")?;
        let listed: Vec<String> = first.keys().cloned().collect();
        if listed.is_empty() {
            return Err("`points`: point 0 sets no key; give each point its settings".into());
        }
        let mut entries = Vec::with_capacity(list.len());
        for (i, point) in list.iter().enumerate() {
            let mut mine: Vec<&String> = point.keys().collect();
            mine.sort();
            let mut expected: Vec<&String> = listed.iter().collect();
            expected.sort();
            if mine != expected {
                return Err(format!(
                    "`points`: point {i} sets {}, point 0 sets {}; every listed point sets the \
                     same keys",
                    quoted(&mine),
                    quoted(&expected)
                ));
            }
            if let Some(key) = listed.iter().find(|k| file.grid.contains_key(*k)) {
                return Err(format!(
                    "`{key}` is both in `points` and in `grid`; give it in one of them"
                ));
            }
            entries.push(listed.iter().map(|k| point[k].clone()).collect());
        }
        keys.extend(listed);
        axes.push(entries);
    }
    for (key, spec) in &file.grid {
        keys.push(key.clone());
        axes.push(
            grid_values(key, spec)?
                .into_iter()
                .map(|v| vec![v])
                .collect(),
        );
    }
    Ok((keys, axes))
}

fn quoted(keys: &[&String]) -> String {
    let names: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    names.join(", ")
}

impl Sweep {
    /// Reads and validates a sweep file; `overrides` (`key=value`) apply to the base config.
    /// Every point is validated before anything runs.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, Error> {
        let origin = path.display().to_string();
        let value = read_json(path, "sweep file")?;
        if !value.is_object() {
            // serde would read an array in place of the object by position.
            return Err(Error::input(format!(
                "sweep file {origin} must be a JSON object with `grid` (and optionally `base`, \
                 `config`, `mode`)"
            )));
        }
        let file: SweepFile = serde_path_to_error::deserialize(value).map_err(|e| {
            Error::input(format!(
                "sweep file {origin}: `{}`: {}",
                e.path(),
                e.inner()
            ))
        })?;
        let mut base = match &file.base {
            Some(base) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                read_json(&dir.join(base), "base config")?
            }
            None => Value::Object(Map::new()),
        };
        if let Some(config) = &file.config {
            if !config.is_object() {
                return Err(Error::input(format!(
                    "sweep file {origin}: `config` must be an object of config values"
                )));
            }
            merge(&mut base, config);
        }
        for item in overrides {
            crate::config::apply_override(&mut base, item)?;
        }
        if file.grid.is_empty() && file.points.is_none() {
            return Err(Error::input(format!(
                "sweep file {origin}: `grid` is empty; give at least one key with its values \
                 (or list the points in `points`)"
            )));
        }
        let (keys, axes) =
            axes(&file).map_err(|e| Error::input(format!("sweep file {origin}: {e}")))?;
        let count = axes
            .iter()
            .try_fold(1usize, |n, axis| n.checked_mul(axis.len()))
            .filter(|&n| n <= MAX_POINTS)
            .ok_or_else(|| {
                let sizes: Vec<String> = axes.iter().map(|a| a.len().to_string()).collect();
                Error::input(format!(
                    "sweep file {origin}: the grid has {} values, more than {MAX_POINTS} points",
                    sizes.join(" x ")
                ))
            })?;
        let mut points = Vec::with_capacity(count);
        for index in 0..count {
            // The last key varies fastest.
            let mut rest = index;
            let mut values = Vec::with_capacity(keys.len());
            for axis in axes.iter().rev() {
                let entry = &axis[rest % axis.len()];
                values.splice(0..0, entry.iter().cloned());
                rest /= axis.len();
            }
            let mut value = base.clone();
            for (key, v) in keys.iter().zip(&values) {
                set_path(&mut value, key, v.clone()).map_err(|e| {
                    Error::input(format!("sweep file {origin}: grid key `{key}`: {e}"))
                })?;
            }
            let label = format!("{origin}, point {index} ({})", describe(&keys, &values));
            // A grid key sets its value over an override of the same key.
            let set: Vec<String> = overrides
                .iter()
                .filter(|item| {
                    let key = item
                        .split_once('=')
                        .map_or(item.as_str(), |(k, _)| k)
                        .trim();
                    !keys
                        .iter()
                        .any(|k| key == k || key.starts_with(&format!("{k}.")))
                })
                .cloned()
                .collect();
            // The point in every message, the validation's (which names no file) included.
            let config = Config::from_value_set(value, &label, &set).map_err(|e| match e {
                Error::Input(m) if m.starts_with("config: ") => {
                    Error::input(format!("config {label}: {}", &m["config: ".len()..]))
                }
                other => other,
            })?;
            if let (Mode::Dmc, Some(why)) = (file.mode, config.dmc_time_step_problem()) {
                return Err(Error::input(format!(
                    "config {label}: {}",
                    why.trim_start_matches("config: ")
                )));
            }
            if config.production.steps == 0 {
                return Err(Error::input(format!(
                    "config {label}: `production.steps` = 0, but every sweep point ends with a \
                     production run; set it > 0"
                )));
            }
            points.push(PointSpec {
                index,
                values,
                config,
            });
        }
        Ok(Self {
            keys,
            points,
            mode: file.mode,
        })
    }

    /// What identifies the sweep's points (their values and a fingerprint of each point's
    /// whole config), stored beside the results to check a resume.
    pub(super) fn definition(&self) -> Value {
        json!({
            "keys": self.keys,
            "mode": self.mode,
            "points": self.points.iter().map(|p| json!({
                "values": p.values,
                "config": fingerprint(&p.config),
            })).collect::<Vec<_>>(),
        })
    }

    /// Why the stored `definition` is not this sweep's, if it is not.
    pub(super) fn differs_from(&self, stored: &Value) -> Option<String> {
        let mine = self.definition();
        if stored["keys"] != mine["keys"]
            || stored["mode"] != mine["mode"]
            || stored["points"].as_array().map(Vec::len) != Some(self.points.len())
        {
            return Some("a different sweep (other keys, number of points or mode)".into());
        }
        let point = (0..self.points.len()).find(|&i| stored["points"][i] != mine["points"][i])?;
        let p = &self.points[point];
        Some(
            if stored["points"][point]["values"] != mine["points"][point]["values"] {
                format!("a different sweep (other values at point {point})")
            } else {
                format!(
                    "a sweep whose point {point} ({}) had another config: the base config, the \
                 sweep file's `config` or --set changed since it started",
                    describe(&self.keys, &p.values)
                )
            },
        )
    }
}

/// FNV-1a of a point's resolved config, without what only says where it runs (engine,
/// threads, GPU adapter), which a resumed sweep may change as a resumed run may.
fn fingerprint(config: &Config) -> String {
    let mut c = config.clone();
    c.engine = EngineChoice::Auto;
    c.threads = 0;
    c.gpu.adapter = None;
    fnv1a_hex(serde_json::to_string(&c).expect("plain values").as_bytes())
}

/// "walkers=1024, wavefunction.hidden=2".
pub(super) fn describe(keys: &[String], values: &[Value]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| format!("{k}={}", plain(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as a user writes it: strings without quotes.
pub(super) fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values of one grid key: a non-empty list, or a range {from, to, factor | step}.
fn grid_values(key: &str, spec: &Value) -> Result<Vec<Value>, String> {
    match spec {
        Value::Array(list) if !list.is_empty() => Ok(list.clone()),
        Value::Array(_) => Err(format!("grid key `{key}` has an empty list of values")),
        Value::Object(range) => {
            let number = |name: &str| {
                range
                    .get(name)
                    .and_then(Value::as_f64)
                    .filter(|v| v.is_finite())
            };
            let unknown: Vec<&String> = range
                .keys()
                .filter(|k| !["from", "to", "factor", "step"].contains(&k.as_str()))
                .collect();
            if !unknown.is_empty() {
                return Err(format!(
                    "grid key `{key}`: unknown range field(s) {unknown:?}; use from, to and \
                     factor or step"
                ));
            }
            let (Some(from), Some(to)) = (number("from"), number("to")) else {
                return Err(format!(
                    "grid key `{key}`: a range needs numbers `from` and `to`"
                ));
            };
            let integers = [
                range.get("from"),
                range.get("to"),
                range.get("factor"),
                range.get("step"),
            ]
            .into_iter()
            .flatten()
            .all(|v| v.is_i64() || v.is_u64());
            let mut values = Vec::new();
            let mut v = from;
            match (number("factor"), number("step")) {
                (Some(factor), None) if factor > 1.0 && from > 0.0 => {
                    while v <= to * (1.0 + 1e-12) && values.len() <= MAX_POINTS {
                        values.push(v);
                        v *= factor;
                    }
                }
                (None, Some(step)) if step > 0.0 => {
                    while v <= to + step * 1e-9 && values.len() <= MAX_POINTS {
                        values.push(v);
                        v += step;
                    }
                }
                _ => {
                    return Err(format!(
                        "grid key `{key}`: a range needs either `factor` > 1 (with `from` > 0) \
                         or `step` > 0"
                    ));
                }
            }
            if values.is_empty() {
                return Err(format!(
                    "grid key `{key}`: the range from {from} to {to} is empty"
                ));
            }
            Ok(values
                .into_iter()
                .map(|v| {
                    if integers {
                        json!(v.round() as i64)
                    } else {
                        json!(v)
                    }
                })
                .collect())
        }
        _ => Err(format!(
            "grid key `{key}` must be a list of values or a range {{\"from\", \"to\", \
             \"factor\" or \"step\"}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ranges_expand_to_integers_or_floats() {
        let v = grid_values("walkers", &json!({"from": 1024, "to": 8192, "factor": 2})).unwrap();
        assert_eq!(v, vec![json!(1024), json!(2048), json!(4096), json!(8192)]);
        let v = grid_values(
            "system.omega",
            &json!({"from": 0.5, "to": 1.0, "step": 0.25}),
        )
        .unwrap();
        assert_eq!(v, vec![json!(0.5), json!(0.75), json!(1.0)]);
        let v = grid_values("sampler.kind", &json!(["metropolis", "importance"])).unwrap();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn bad_grid_values_say_what_is_wrong() {
        let cases = [
            (json!([]), "empty list"),
            (json!(3), "must be a list"),
            (json!({"from": 1, "to": 4}), "factor"),
            (json!({"from": 1, "to": 4, "factor": 1}), "factor"),
            (json!({"from": 8, "to": 4, "step": 1}), "empty"),
            (
                json!({"from": 1, "to": 4, "stride": 1}),
                "unknown range field",
            ),
            (json!({"to": 4, "step": 1}), "`from` and `to`"),
        ];
        for (spec, needle) in cases {
            let err = grid_values("k", &spec).unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }
}
