//! The Hamiltonian's potential part: a harmonic trap and, optionally, Coulomb repulsion.

/// P particles in D dimensions in an isotropic harmonic trap of frequency `omega`.
/// Coordinates are flat: particle p, dimension d is `x[p * dims + d]`.
#[derive(Clone, Debug, PartialEq)]
pub struct System {
    pub particles: usize,
    pub dims: usize,
    pub omega: f64,
    /// Coulomb repulsion 1/r between every pair.
    pub interaction: bool,
}

impl System {
    /// Number of coordinates M = P * D.
    pub fn coordinates(&self) -> usize {
        self.particles * self.dims
    }

    /// Potential energy: 1/2 omega^2 |x|^2 plus, with interaction, sum over pairs of 1/r.
    pub fn potential(&self, x: &[f64]) -> f64 {
        let trap = 0.5 * self.omega * self.omega * x.iter().map(|v| v * v).sum::<f64>();
        if self.interaction {
            trap + self.coulomb(x)
        } else {
            trap
        }
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

    /// Ground-state energy of the non-interacting system (the trial functions are bosonic /
    /// spatially symmetric, so every particle sits in the lowest orbital): P * D * omega / 2.
    pub fn non_interacting_energy(&self) -> f64 {
        self.coordinates() as f64 * self.omega / 2.0
    }

    /// No state of this system has a lower energy: the non-interacting ground state, since
    /// Coulomb repulsion only adds energy. An estimate well below it is a numerical failure.
    /// (For fermions the bound is higher; the trial functions here are spatially symmetric.)
    pub fn energy_lower_bound(&self) -> f64 {
        self.non_interacting_energy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn potential_of_two_particles_in_two_dimensions() {
        let s = System {
            particles: 2,
            dims: 2,
            omega: 0.5,
            interaction: true,
        };
        let x = [1.0, 0.0, -2.0, 4.0];
        let trap = 0.5 * 0.25 * (1.0 + 4.0 + 16.0);
        assert!((s.potential(&x) - (trap + 1.0 / 5.0)).abs() < 1e-15);
        assert_eq!(s.non_interacting_energy(), 1.0);
        assert_eq!(s.energy_lower_bound(), 1.0);
    }
}
