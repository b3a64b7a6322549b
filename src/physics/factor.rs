//! The seam every factor of the trial wave function plugs into (in the spirit of QMCPACK's
//! `WaveFunctionComponent`). A factor owns its cache at the current position x and at the
//! proposal y, and its range of the parameters; `Walker` (walker.rs) keeps the positions and
//! loops over its factors, whose logs, gradients and Laplacians add. The factor list is
//! `Wavefunction::factors`. The WGSL twin of this seam is the hook glue that
//! `src/engine/gpu/shader.rs` generates from its list of factor files.

use std::ops::Range;

/// What a proposal moves: every coordinate, or one particle's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    All,
    Particle(usize),
}

impl Moved {
    /// The moved coordinates, for walkers of `coordinates` coordinates in `dims` dimensions.
    pub fn range(self, coordinates: usize, dims: usize) -> Range<usize> {
        match self {
            Moved::All => 0..coordinates,
            Moved::Particle(k) => k * dims..(k + 1) * dims,
        }
    }
}

/// One factor F of psi with its caches.
pub trait Factor {
    /// Computes the cache at x from scratch; returns ln |F(x)|.
    fn refresh(&mut self, x: &[f64]) -> f64;

    /// ln |F(y)| for the proposal y, which differs from x on `moved`'s coordinates.
    fn propose(&mut self, x: &[f64], y: &[f64], moved: Moved) -> f64;

    /// Whether F changes sign from x to the proposal (fixed-node DMC rejects such moves).
    fn crosses_node(&self, _moved: Moved) -> bool {
        false
    }

    /// The proposal on `moved` becomes the current position.
    fn accept(&mut self, moved: Moved);

    /// Adds grad ln F on `moved`'s coordinates to `out` (every coordinate's slot), at x or,
    /// after `propose`, at the proposal (`at_y`).
    fn add_gradient(&mut self, x: &[f64], y: &[f64], at_y: bool, moved: Moved, out: &mut [f64]);

    /// A measurement at x: adds grad ln F to `grad`, writes the log-derivatives of F's own
    /// parameters into `o` (all parameters' slots), and returns the Laplacian of ln F summed
    /// over the coordinates.
    fn measure(&mut self, x: &[f64], grad: &mut [f64], o: &mut [f64]) -> f64;
}

/// Adds `values` to `target` element by element.
pub fn add(target: &mut [f64], values: &[f64]) {
    for (t, v) in target.iter_mut().zip(values) {
        *t += v;
    }
}
