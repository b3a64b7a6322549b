//! Known energies of the systems this program treats (`docs/physics.md`), printed beside results.

use serde::Serialize;

use crate::physics::System;

/// A reference energy and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reference {
    pub energy: f64,
    pub source: &'static str,
    /// Whether the value is exact (a variational energy may not lie below it).
    pub exact: bool,
}

/// The reference energy of `system`, where one is known. Only two-particle references are
/// listed for interacting systems: the RBM is spatially symmetric, which is right for two
/// electrons in the singlet state but not for more fermions.
pub fn reference_energy(system: &System) -> Option<Reference> {
    if !system.interaction {
        return Some(Reference {
            energy: system.non_interacting_energy(),
            source: "exact, non-interacting: P D omega / 2",
            exact: true,
        });
    }
    match (system.particles, system.dims) {
        (2, 2) if system.omega == 1.0 => Some(Reference {
            energy: 3.0,
            source: "exact (Taut), two electrons in 2D, omega = 1",
            exact: true,
        }),
        (2, 2) if system.omega == 0.5 => Some(Reference {
            energy: 1.65977,
            source: "diffusion Monte Carlo, two electrons in 2D, omega = 0.5",
            exact: false,
        }),
        _ => None,
    }
}
