//! Config files and `--set key=value` overrides as JSON: reading a file (duplicate keys
//! refused), applying and locating overrides, merging values.

use super::*;

/// Applies `a.b.c=value` to a JSON object. The value is parsed as JSON when it can be, and
/// taken as a string otherwise, so `sampler.kind=gibbs` needs no quotes.
pub fn apply_override(root: &mut Value, item: &str) -> Result<(), Error> {
    let (path, raw) = item.split_once('=').ok_or_else(|| {
        Error::input(format!(
            "--set `{item}`: expected KEY=VALUE, e.g. system.omega=0.5"
        ))
    })?;
    let value = serde_json::from_str(raw.trim()).unwrap_or_else(|_| Value::String(raw.into()));
    set_path(root, path.trim(), value).map_err(|e| Error::input(format!("--set `{item}`: {e}")))
}

/// The last of the `key=value` overrides that set the value at the dotted `path`: its key is
/// the path, a part of it, or reaches below it.
pub(super) fn override_of<'a>(overrides: &'a [String], path: &str) -> Option<&'a str> {
    overrides.iter().rev().map(String::as_str).find(|item| {
        let key = item.split_once('=').map_or(*item, |(key, _)| key).trim();
        let within = |long: &str, short: &str| {
            long.strip_prefix(short)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        };
        within(path, key) || within(key, path)
    })
}

/// The settings that take a list of numbers.
const LIST_SETTINGS: [&str; 1] = ["dmc.time_step"];

/// The dotted path of the first JSON array within `value` outside `LIST_SETTINGS` (serde
/// would read an array in place of an object by position).
pub(super) fn array_within(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Array(items)
            if LIST_SETTINGS.contains(&path) && items.iter().all(Value::is_number) =>
        {
            None
        }
        Value::Array(_) => Some(if path.is_empty() {
            ".".into()
        } else {
            path.into()
        }),
        Value::Object(map) => map.iter().find_map(|(key, v)| {
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            array_within(v, &inner)
        }),
        _ => None,
    }
}

/// Sets the value at a dotted path (`sampler.kind`) in a JSON object, creating objects on
/// the way; the error says which part of the path is in the way.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(format!("the key `{path}` has an empty part"));
    }
    let mut node = root;
    for (i, key) in keys.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(format!("`{}` is not an object", keys[..i].join(".")));
        };
        if i + 1 == keys.len() {
            map.insert(key.to_string(), value);
            return Ok(());
        }
        node = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    unreachable!("the loop returns at the last key")
}

/// Turns numbers written as floats that are exact integers (`1e9`, `500.0`) into integers,
/// so that counts accept them; float settings accept integers anyway.
pub(super) fn exact_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().expect("an f64 number");
            // Up to 2^53 every integer is exactly representable.
            if x.fract() == 0.0 && x.abs() <= 9_007_199_254_740_992.0 {
                *value = if x < 0.0 {
                    Value::from(x as i64)
                } else {
                    Value::from(x as u64)
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(exact_integers),
        Value::Object(map) => map.values_mut().for_each(exact_integers),
        _ => {}
    }
}

/// Merges `overlay` into `base`: objects key by key (recursively), anything else replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (key, value) in o {
                merge(b.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Reads a JSON file (a regular file of at most `MAX_INPUT_BYTES`), with the path in any
/// error.
/// A run's own files given as a config: say what they are and what to do instead, rather
/// than name their first field as unknown.
pub(super) fn refuse_output_files(value: &Value, path: &Path) -> Result<(), Error> {
    let has = |key: &str| value.get(key).is_some();
    let what = if has("config") && has("version") {
        "a checkpoint written by `rbm-vmc run`: continue the run with `rbm-vmc run --resume DIR`"
    } else if has("config") && has("status") {
        "the result of a run: its `config` field is the config it ran"
    } else if has("a") && has("w") {
        "a parameters file: start from it with `--set wavefunction.params=FILE`"
    } else {
        return Ok(());
    };
    Err(Error::input(format!(
        "{} is not a config but {what}",
        path.display()
    )))
}

pub fn read_json(path: &Path, what: &str) -> Result<Value, Error> {
    let text = crate::input_file::read_text(path, what)?;
    let value = serde_json::from_str(&text)
        .map_err(|e| Error::input(format!("{what} {} is not valid JSON: {e}", path.display())))?;
    refuse_duplicate_keys(&text, what, path)?;
    Ok(value)
}

/// Refuses JSON `text` (read from `path`, a `what`) in which an object holds a key twice:
/// serde_json keeps the last silently, so the file would not mean what it says. Text that is
/// not valid JSON passes, for the parser to report.
pub fn refuse_duplicate_keys(text: &str, what: &str, path: &Path) -> Result<(), Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    match Unique(String::new()).deserialize(&mut de) {
        // Only the check itself raises data errors: it takes any value.
        Err(e) if e.is_data() => Err(Error::input(format!(
            "{what} {}: {e}; give each key once",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// A pass over JSON that takes any value and fails on the first key an object holds twice,
/// naming it by its dotted path (the value's path is `.0`).
struct Unique(String);

impl Unique {
    fn at(&self, key: &str) -> Unique {
        Unique(if self.0.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.0)
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Unique {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Unique(format!("{}[{i}]", self.0)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let inner = self.at(&key);
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(format_args!(
                    "the key `{}` appears twice",
                    inner.0
                )));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}
