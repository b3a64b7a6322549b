//! Known energies of the systems this program treats (`docs/physics.md`), printed beside results.

use serde::Serialize;

use crate::physics::{Statistics, System};

/// A reference energy and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reference {
    pub energy: f64,
    /// The reference's own error, where it has one (a user's Monte Carlo value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<f64>,
    pub source: String,
    /// Whether the value is exact (a variational energy may not lie below it).
    pub exact: bool,
}

impl Reference {
    /// How `energy +- error` compares with the reference: the console line, and the
    /// comparison for result.json.
    pub fn compare(&self, energy: f64, error: f64) -> (String, serde_json::Value) {
        let sigmas = self.difference_sigmas(energy, error);
        let line = format!(
            "reference {} ({}): difference {:+.6} = {:+.1} sigma",
            self.energy,
            self.source,
            energy - self.energy,
            sigmas
        );
        let mut json = serde_json::to_value(self).expect("plain values");
        json["difference_sigmas"] = serde_json::json!(sigmas);
        (line, json)
    }

    /// (energy - reference) / sqrt(error^2 + reference error^2).
    pub fn difference_sigmas(&self, energy: f64, error: f64) -> f64 {
        // An exact match has no error bar to count in: 0, not 0/0.
        match energy - self.energy {
            0.0 => 0.0,
            difference => difference / error.hypot(self.error.unwrap_or(0.0)),
        }
    }
}

/// Interacting two-electron dots (singlet): exact (Taut) or diffusion Monte Carlo.
const TWO_ELECTRONS: [(usize, f64, f64, &str, bool); 4] = [
    (
        2,
        1.0,
        3.0,
        "exact (Taut), two electrons in 2D, omega = 1",
        true,
    ),
    (
        2,
        1.0 / 6.0,
        2.0 / 3.0,
        "exact (Taut), two electrons in 2D, omega = 1/6",
        true,
    ),
    (
        3,
        0.5,
        2.0,
        "exact (Taut), two electrons in 3D, omega = 1/2",
        true,
    ),
    (
        2,
        0.5,
        1.65977,
        "diffusion Monte Carlo, two electrons in 2D, omega = 0.5",
        false,
    ),
];

/// Closed-shell electrons in 2D (particles, omega, energy): diffusion Monte Carlo, Pedersen
/// Lohne et al., Phys. Rev. B 84, 115302 (2011). Fixed-node DMC lies below any Slater-Jastrow
/// VMC energy with the same nodes, but it is not exact.
const CLOSED_SHELLS_2D: [(usize, f64, f64); 6] = [
    (6, 1.0, 20.1597),
    (6, 0.5, 11.7888),
    (12, 1.0, 65.700),
    (12, 0.5, 39.159),
    (20, 1.0, 155.868),
    (20, 0.5, 93.867),
];

/// The reference energy of `system`, where one is known. For interacting systems of more than
/// two particles only fermion references are listed: the plain RBM of distinguishable
/// particles describes no electron state there.
pub fn reference_energy(system: &System) -> Option<Reference> {
    if !system.interaction {
        return Some(Reference {
            energy: system.non_interacting_energy(),
            error: None,
            source: match system.statistics {
                Statistics::Fermions => "exact, non-interacting closed shells",
                Statistics::Distinguishable => "exact, non-interacting: P D omega / 2",
            }
            .into(),
            exact: true,
        });
    }
    let at = |omega: f64| (system.omega - omega).abs() <= 1e-12 * omega;
    if system.particles == 2 {
        return TWO_ELECTRONS
            .iter()
            .find(|&&(dims, omega, ..)| dims == system.dims && at(omega))
            .map(|&(_, _, energy, source, exact)| Reference {
                energy,
                error: None,
                source: source.into(),
                exact,
            });
    }
    if system.statistics != Statistics::Fermions || system.dims != 2 {
        return None;
    }
    CLOSED_SHELLS_2D
        .iter()
        .find(|&&(particles, omega, _)| particles == system.particles && at(omega))
        .map(|&(_, _, energy)| Reference {
            energy,
            error: None,
            source: "diffusion Monte Carlo (fixed node), closed-shell dot in 2D".into(),
            exact: false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(particles: usize, dims: usize, omega: f64, statistics: Statistics) -> System {
        System {
            particles,
            dims,
            omega,
            interaction: true,
            statistics,
        }
    }

    #[test]
    fn references_follow_the_system() {
        use Statistics::*;
        let energy = |s: System| reference_energy(&s).map(|r| r.energy);
        assert_eq!(energy(system(2, 2, 1.0, Distinguishable)), Some(3.0));
        assert_eq!(energy(system(2, 2, 1.0, Fermions)), Some(3.0));
        assert_eq!(energy(system(2, 2, 1.0 / 6.0, Fermions)), Some(2.0 / 3.0));
        assert_eq!(energy(system(2, 3, 0.5, Distinguishable)), Some(2.0));
        assert_eq!(energy(system(6, 2, 1.0, Fermions)), Some(20.1597));
        assert_eq!(energy(system(20, 2, 0.5, Fermions)), Some(93.867));
        // No electron state: no reference.
        assert_eq!(energy(system(6, 2, 1.0, Distinguishable)), None);
        assert_eq!(energy(system(6, 2, 0.7, Fermions)), None);
        let free = System {
            interaction: false,
            ..system(12, 2, 0.5, Fermions)
        };
        assert_eq!(energy(free), Some(14.0));
    }
}
