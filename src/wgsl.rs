//! WGSL source as the host holds it: a file of shaders/ compiled into the program with the
//! name its errors are reported under. A ground module, so that the sampler table and the
//! kernel generator can both name their files.

/// A piece of WGSL source: where it comes from, and its text.
pub type Part = (&'static str, &'static str);

/// The `Part` of a file in shaders/, its text compiled in; the crate root anchors the path.
macro_rules! shader_file {
    ($name:literal) => {
        (
            concat!("shaders/", $name),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $name)),
        )
    };
}
pub(crate) use shader_file;
