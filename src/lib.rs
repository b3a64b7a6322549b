//! rbm-vmc: variational Monte Carlo for particles in a harmonic trap with a Gaussian-binary
//! restricted Boltzmann machine as trial wave function, on the CPU (f64, the reference) and
//! on the GPU (wgpu).

pub(crate) mod checkpoint;
pub(crate) mod checksum;
pub mod config;
pub mod control;
pub mod dmc;
pub mod driver;
pub mod engine;
pub(crate) mod error;
pub(crate) mod input_file;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod optimiser;
pub mod physics;
pub mod report;
pub mod rng;
pub mod sampler;
pub(crate) mod spec;
pub mod stats;
pub mod study;
pub mod team;
pub(crate) mod text;
pub(crate) mod wgsl;

pub use config::Config;
pub use engine::{Engine, EngineSpec, Moments};
pub use error::Error;
pub use physics::{Form, Params, Rbm, System};
pub use stats::Estimate;

/// What the integration tests reach below the public interface: the GPU kernels' source
/// and the walk kernel's job, to probe the shaders against the f64 physics.
#[doc(hidden)]
pub mod testing {
    pub use crate::engine::gpu::Gpu;
    pub use crate::engine::gpu::layout::Job;
    pub use crate::engine::gpu::shader::{KernelShape, OrbitalLoops, walk_source};
    pub use crate::engine::gpu::spirv::native_multiply_pipeline;
}
