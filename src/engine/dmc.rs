//! Diffusion Monte Carlo's interface to the engines: the branching factor, a generation's
//! sums, and the walker population each engine keeps (`Population`). The algorithm and its
//! estimators are in src/dmc/; the moves in src/engine/cpu/dmc.rs and shaders/dmc.wgsl.

use crate::error::Error;

/// What a generation needs besides the walkers.
#[derive(Clone, Copy, Debug)]
pub struct Branching {
    /// The time step tau of the moves.
    pub tau: f64,
    /// The effective time step of the weights (tau times the accepted share of the diffusion).
    pub tau_eff: f64,
    /// The trial energy E_T.
    pub trial_energy: f64,
    /// The reference energy E_ref of the cutoff, and the cutoff E_cut.
    pub reference: f64,
    pub cutoff: f64,
}

impl Branching {
    /// S(E_L) = E_ref + clamp(E_L - E_ref, -E_cut, E_cut) (Zen et al. 2016).
    fn limited(&self, energy: f64) -> f64 {
        self.reference + (energy - self.reference).clamp(-self.cutoff, self.cutoff)
    }

    /// The weight factor of a step from local energy `before` to `after`.
    pub fn factor(&self, before: f64, after: f64) -> f64 {
        let average = 0.5 * (self.limited(before) + self.limited(after));
        (-self.tau_eff * (average - self.trial_energy)).exp()
    }
}

/// A generation's sums over the walkers.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenerationSums {
    /// Sum of the weights, of weight x E_L, and of the squared weights.
    pub weight: f64,
    pub weighted_energy: f64,
    pub weight_squared: f64,
    pub accepted: f64,
    pub proposed: f64,
    /// Proposals refused because they crossed a node of psi.
    pub node_crossings: f64,
    /// Sums over proposals of p |dR|^2 and |dR|^2 (p the acceptance probability): their
    /// ratio times tau is the effective time step.
    pub diffusion_accepted: f64,
    pub diffusion_proposed: f64,
    /// Walkers whose local energy became non-finite (their weight is set to 0).
    pub lost: f64,
    /// Walkers whose new local energy lay beyond the cutoff from the reference.
    pub clamped: f64,
}

impl GenerationSums {
    /// The sums as numbers, for adding them over processes, and back.
    pub fn to_array(&self) -> [f64; 10] {
        [
            self.weight,
            self.weighted_energy,
            self.weight_squared,
            self.accepted,
            self.proposed,
            self.node_crossings,
            self.diffusion_accepted,
            self.diffusion_proposed,
            self.lost,
            self.clamped,
        ]
    }

    pub fn from_array(a: [f64; 10]) -> Self {
        let [
            weight,
            weighted_energy,
            weight_squared,
            accepted,
            proposed,
            node_crossings,
            diffusion_accepted,
            diffusion_proposed,
            lost,
            clamped,
        ] = a;
        Self {
            weight,
            weighted_energy,
            weight_squared,
            accepted,
            proposed,
            node_crossings,
            diffusion_accepted,
            diffusion_proposed,
            lost,
            clamped,
        }
    }

    pub fn add(&mut self, o: &Self) {
        self.weight += o.weight;
        self.weighted_energy += o.weighted_energy;
        self.weight_squared += o.weight_squared;
        self.accepted += o.accepted;
        self.proposed += o.proposed;
        self.node_crossings += o.node_crossings;
        self.diffusion_accepted += o.diffusion_accepted;
        self.diffusion_proposed += o.diffusion_proposed;
        self.lost += o.lost;
        self.clamped += o.clamped;
    }
}

/// The walkers of a DMC run in one process: positions, local energies and weights, on an
/// engine. Every generation starts from unit weights (the comb's).
pub trait Population {
    /// The engine, for the console.
    fn describe(&self) -> String;

    /// Global index of this process's first walker.
    fn first_walker(&self) -> u32;

    /// Generation `generation` (its random streams) of moves at `branching.tau`, then the
    /// weights; the sums over this process's walkers.
    fn generation(
        &mut self,
        generation: u64,
        branching: &Branching,
    ) -> Result<GenerationSums, Error>;

    /// The walkers' positions (walker-major), local energies and weights (the last
    /// generation's branching factors: the comb does not reset them).
    fn walkers(&self) -> Result<Walkers, Error>;

    /// Replaces the walkers by the walkers `slots` of the whole population (its
    /// `positions` and `energies`, as the comb chose them).
    fn resample(&mut self, slots: &[u32], positions: &[f64], energies: &[f64])
    -> Result<(), Error>;

    /// Combs the population where it lies for the uniform draw `u`, when this process holds
    /// all of it and the engine can; false when the caller must comb it (`resample`).
    fn comb_in_place(&mut self, _u: f64) -> Result<bool, Error> {
        Ok(false)
    }
}

/// The positions (`m` coordinates each) and energies of the walkers `slots` of a population,
/// with unit weights, into `kept` (whose buffers are reused): what a comb's choice leaves.
pub fn chosen(slots: &[u32], positions: &[f64], energies: &[f64], m: usize, kept: &mut Walkers) {
    kept.positions.clear();
    for &j in slots {
        let j = j as usize;
        kept.positions
            .extend_from_slice(&positions[j * m..(j + 1) * m]);
    }
    kept.energies.clear();
    kept.energies
        .extend(slots.iter().map(|&j| energies[j as usize]));
    kept.weights.clear();
    kept.weights.resize(slots.len(), 1.0);
}

/// One process's walkers as numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Walkers {
    pub positions: Vec<f64>,
    pub energies: Vec<f64>,
    pub weights: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branching factor: exp(-tau_eff ((S(E) + S(E')) / 2 - E_T)), with S clamping
    /// E - E_ref to +- E_cut.
    #[test]
    fn the_branching_factor_averages_and_cuts_the_energies() {
        let b = Branching {
            tau: 0.01,
            tau_eff: 0.009,
            trial_energy: 3.0,
            reference: 3.1,
            cutoff: 2.0,
        };
        let expected = (-0.009f64 * ((3.2 + 2.9) / 2.0 - 3.0)).exp();
        assert!((b.factor(3.2, 2.9) - expected).abs() < 1e-15);
        // E_L far beyond the cutoff counts as E_ref +- E_cut.
        let cut = (-0.009f64 * ((5.1 + 1.1) / 2.0 - 3.0)).exp();
        assert!((b.factor(1e6, -1e6) - cut).abs() < 1e-15);
        assert!(b.factor(f64::NAN, 3.0).is_nan());
    }
}
