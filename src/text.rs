//! Numbers as the user reads them, for every layer's messages and files.

/// `v` as a user would write it: 1e-160 rather than 0.000...0001.
pub fn compact(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}
