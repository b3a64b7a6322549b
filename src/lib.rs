//! rbm-vmc: variational Monte Carlo for particles in a harmonic trap with a Gaussian-binary
//! restricted Boltzmann machine as trial wave function, on the CPU (f64, the reference) and
//! on the GPU (wgpu).

pub mod checkpoint;
pub mod checksum;
pub mod config;
pub mod control;
pub mod dmc;
pub mod driver;
pub mod engine;
pub mod error;
pub mod input_file;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod optimiser;
pub mod physics;
pub mod report;
pub mod rng;
pub mod sampler;
pub mod spec;
pub mod stats;
pub mod study;
pub mod team;
pub mod text;
pub mod wgsl;

pub use config::Config;
pub use engine::{Engine, EngineSpec, Moments};
pub use error::Error;
pub use physics::{Form, Params, Rbm, System};
pub use stats::Estimate;
