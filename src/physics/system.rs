//! The Hamiltonian's potential part: a harmonic trap and, optionally, Coulomb repulsion; and
//! the particles' statistics, which decide the non-interacting ground state.

use super::{
    Statistics,
    slater::{closed_shell_orbitals, hermite},
};

/// P particles in D dimensions in an isotropic harmonic trap of frequency `omega`.
/// Coordinates are flat: particle p, dimension d is `x[p * dims + d]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub particles: usize,
    pub dims: usize,
    pub omega: f64,
    /// Coulomb repulsion 1/r between every pair.
    pub interaction: bool,
    pub statistics: Statistics,
}

impl System {
    /// Number of coordinates M = P * D.
    pub fn coordinates(&self) -> usize {
        self.particles * self.dims
    }

    /// Potential energy: 1/2 omega^2 |x|^2 plus, with interaction, sum over pairs of 1/r.
    pub fn potential(&self, x: &[f64]) -> f64 {
        let trap = self.trap(x);
        if self.interaction {
            trap + self.coulomb(x)
        } else {
            trap
        }
    }

    /// Trap energy 1/2 omega^2 |x|^2.
    pub fn trap(&self, x: &[f64]) -> f64 {
        0.5 * self.omega * self.omega * x.iter().map(|v| v * v).sum::<f64>()
    }

    /// Sum over pairs p < q of 1 / |r_p - r_q|.
    pub fn coulomb(&self, x: &[f64]) -> f64 {
        let d = self.dims;
        let mut sum = 0.0;
        for p in 0..self.particles {
            for q in p + 1..self.particles {
                let r2: f64 = (0..d).map(|k| (x[p * d + k] - x[q * d + k]).powi(2)).sum();
                sum += 1.0 / r2.sqrt();
            }
        }
        sum
    }

    /// Ground-state energy of the non-interacting system: P D omega / 2 for distinguishable
    /// particles (all in the lowest orbital); for closed-shell fermions omega times the sum of
    /// (n_x + .. + D/2) over the occupied orbitals of both spins.
    pub fn non_interacting_energy(&self) -> f64 {
        let orbitals = match self.statistics {
            Statistics::Fermions => closed_shell_orbitals(self.dims, self.particles / 2),
            Statistics::Distinguishable => None,
        };
        match orbitals {
            Some(orbitals) => {
                let quanta: usize = orbitals.iter().flatten().sum();
                2.0 * self.omega * (quanta as f64 + orbitals.len() as f64 * self.dims as f64 / 2.0)
            }
            None => self.coordinates() as f64 * self.omega / 2.0,
        }
    }

    /// One-body density of the non-interacting ground state at distance `r` from the centre,
    /// normalised to P: P (omega/pi)^(D/2) exp(-omega r^2) for distinguishable particles; for
    /// closed-shell fermions twice the sum of the occupied orbitals' |phi|^2 (a closed shell
    /// is isotropic, so the value on the x axis is the radial one). `None` for open shells.
    pub fn non_interacting_density(&self, r: f64) -> Option<f64> {
        let w = self.omega;
        let ground = (w / std::f64::consts::PI).powf(self.dims as f64 / 2.0) * (-w * r * r).exp();
        let orbitals = match self.statistics {
            Statistics::Distinguishable => return Some(self.particles as f64 * ground),
            Statistics::Fermions => closed_shell_orbitals(self.dims, self.particles / 2)?,
        };
        let degree = orbitals.iter().flatten().copied().max().unwrap_or(0);
        let mut h_r = vec![0.0; degree + 1];
        let mut h_0 = vec![0.0; degree + 1];
        hermite(w.sqrt() * r, degree, &mut h_r);
        hermite(0.0, degree, &mut h_0);
        // |phi_n(xi)|^2 relative to the ground state's: H_n(xi)^2 / (2^n n!).
        let weight = |h: &[f64], n: usize| {
            let norm: f64 = (1..=n).map(|k| 2.0 * k as f64).product();
            h[n] * h[n] / norm
        };
        let sum: f64 = orbitals
            .iter()
            .map(|q| (1..self.dims).fold(weight(&h_r, q[0]), |acc, d| acc * weight(&h_0, q[d])))
            .sum();
        Some(2.0 * sum * ground)
    }

    /// The pair-distance distribution of the non-interacting ground state of distinguishable
    /// particles at `r`, normalised to the P (P - 1) / 2 pairs: each pair's separation is
    /// Gaussian with variance 1/omega per coordinate, so
    /// P(r) = pairs S_D r^(D-1) (omega / 2 pi)^(D/2) exp(-omega r^2 / 2), S_D = 2, 2 pi, 4 pi.
    /// `None` for fermions (the antisymmetry correlates the pairs).
    pub fn non_interacting_pair_density(&self, r: f64) -> Option<f64> {
        if self.statistics != Statistics::Distinguishable {
            return None;
        }
        let pi = std::f64::consts::PI;
        let pairs = (self.particles * self.particles.saturating_sub(1) / 2) as f64;
        let surface = match self.dims {
            1 => 2.0,
            2 => 2.0 * pi,
            _ => 4.0 * pi,
        };
        let w = self.omega;
        let gaussian = (w / (2.0 * pi)).powf(self.dims as f64 / 2.0) * (-w * r * r / 2.0).exp();
        Some(pairs * surface * r.powi(self.dims as i32 - 1) * gaussian)
    }

    /// No state of this system (with its statistics) has a lower energy: the non-interacting
    /// ground state, since Coulomb repulsion only adds energy. An estimate well below it is a
    /// numerical failure.
    pub fn energy_lower_bound(&self) -> f64 {
        self.non_interacting_energy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The non-interacting P(r12) integrates to the number of pairs in 1, 2 and 3 dimensions;
    /// fermions have none.
    #[test]
    fn the_non_interacting_pair_density_counts_the_pairs() {
        for (dims, particles, omega) in [(1, 3, 0.5), (2, 2, 1.0), (3, 4, 2.0)] {
            let system = System {
                particles,
                dims,
                omega,
                interaction: false,
                statistics: Statistics::Distinguishable,
            };
            let dr = 1e-3;
            let total: f64 = (0..20_000)
                .map(|i| {
                    system
                        .non_interacting_pair_density((i as f64 + 0.5) * dr)
                        .unwrap()
                        * dr
                })
                .sum();
            let pairs = (particles * (particles - 1) / 2) as f64;
            assert!(
                (total - pairs).abs() < 1e-6 * pairs,
                "{dims}D: {total} vs {pairs}"
            );
        }
        let fermions = System {
            particles: 6,
            dims: 2,
            omega: 1.0,
            interaction: true,
            statistics: Statistics::Fermions,
        };
        assert_eq!(fermions.non_interacting_pair_density(1.0), None);
    }

    #[test]
    fn potential_of_two_particles_in_two_dimensions() {
        let s = System {
            particles: 2,
            dims: 2,
            omega: 0.5,
            interaction: true,
            statistics: Statistics::Distinguishable,
        };
        let x = [1.0, 0.0, -2.0, 4.0];
        let trap = 0.5 * 0.25 * (1.0 + 4.0 + 16.0);
        assert!((s.potential(&x) - (trap + 1.0 / 5.0)).abs() < 1e-15);
        assert_eq!(s.non_interacting_energy(), 1.0);
        assert_eq!(s.energy_lower_bound(), 1.0);
    }

    /// The densities integrate to P over space (radial quadrature over shells).
    #[test]
    fn non_interacting_densities_hold_every_particle() {
        for (particles, dims, statistics) in [
            (2, 2, Statistics::Distinguishable),
            (3, 3, Statistics::Distinguishable),
            (6, 2, Statistics::Fermions),
            (12, 2, Statistics::Fermions),
            (8, 3, Statistics::Fermions),
            (4, 1, Statistics::Fermions),
        ] {
            let s = System {
                particles,
                dims,
                omega: 0.7,
                interaction: false,
                statistics,
            };
            let dr = 1e-3;
            let area = |r: f64| match dims {
                1 => 2.0,
                2 => 2.0 * std::f64::consts::PI * r,
                _ => 4.0 * std::f64::consts::PI * r * r,
            };
            let total: f64 = (0..20_000)
                .map(|i| {
                    let r = (i as f64 + 0.5) * dr;
                    s.non_interacting_density(r).unwrap() * area(r) * dr
                })
                .sum();
            assert!(
                (total - particles as f64).abs() < 1e-5,
                "{particles} {dims}: {total}"
            );
        }
    }

    #[test]
    fn closed_shells_of_fermions_have_the_textbook_energies() {
        for (particles, dims, exact) in [
            (2, 2, 2.0),
            (6, 2, 10.0),
            (12, 2, 28.0),
            (20, 2, 60.0),
            (8, 3, 18.0),
            (20, 3, 60.0),
            (4, 1, 4.0),
        ] {
            let s = System {
                particles,
                dims,
                omega: 0.5,
                interaction: false,
                statistics: Statistics::Fermions,
            };
            assert_eq!(
                s.non_interacting_energy(),
                0.5 * exact,
                "P{particles} D{dims}"
            );
        }
    }
}
