//! The sampler table: what the config checks, the GPU engine assembles and costs, and the
//! driver warns about, for each sampler, in one `match` (`SamplerKind::info`).
//!
//! Adding a sampler takes:
//! - a variant of `SamplerKind`, in `SamplerKind::ALL`, with its row in `info` (this file);
//! - its WGSL file in shaders/: `move_coordinates(rng, start, len) -> u32` for `Step::Moves`
//!   (shaders/moves.wgsl calls it once per move), `mc_step(rng) -> u32` for `Step::Whole`;
//! - its CPU twin, one arm of `Chain::mc_step` (src/engine/cpu/chain.rs), drawing the same
//!   random numbers in the same order, as the twin tests check.

use serde::{Deserialize, Serialize};

use crate::wgsl::{Part, shader_file};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// Brute-force Metropolis with uniform proposals.
    Metropolis,
    /// Metropolis-Hastings with the Langevin (quantum force) proposal.
    Importance,
    /// Gibbs sampling of the RBM's joint distribution (sqrt form only).
    Gibbs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Moves {
    /// Every coordinate moves at once.
    All,
    /// One particle at a time; a step is one sweep over all particles.
    Single,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct SamplerInfo {
    /// Its `sampler.kind` (the serde name; a test checks they agree).
    pub name: &'static str,
    /// Its WGSL file, after the wave function's files (and moves.wgsl for `Step::Moves`).
    pub wgsl: Part,
    pub step: Step,
    /// Why it needs `wavefunction.form` = "sqrt", when it does.
    pub needs_sqrt: Option<&'static str>,
    /// Whether it samples the RBM alone: no Jastrow factor, no Slater determinants.
    pub rbm_alone: bool,
}

/// What one Monte Carlo step is.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// Metropolis-Hastings moves, of every coordinate at once or of one particle at a time
    /// (`sampler.moves`).
    Moves {
        /// The config key that sets the proposal's size, the remedy for a frozen acceptance.
        tune: &'static str,
        /// Whether an acceptance above 99.9 % means too small steps: for blind proposals, and
        /// for drift-guided ones too, which near 100 % only at steps far below the system's
        /// length scale (importance sampling at omega = 0.1 with dt = 0.05: 0.9994, tau 69).
        warn_high: bool,
        /// Whether a move computes the drift at x and at the proposal (the cost model).
        drift: bool,
    },
    /// One move that redraws every coordinate and is always accepted.
    Whole {
        /// Why `sampler.moves` = "single" does not apply (the config's error).
        no_single: &'static str,
        /// Loop iterations per step for M coordinates and N hidden units (the cost model,
        /// `loop_iterations_per_step`).
        loops: fn(u64, u64) -> u64,
    },
}

impl SamplerKind {
    pub const ALL: [SamplerKind; 3] = [Self::Metropolis, Self::Importance, Self::Gibbs];

    pub const fn info(self) -> SamplerInfo {
        match self {
            Self::Metropolis => SamplerInfo {
                name: "metropolis",
                wgsl: shader_file!("metropolis.wgsl"),
                step: Step::Moves {
                    tune: "sampler.step",
                    warn_high: true,
                    drift: false,
                },
                needs_sqrt: None,
                rbm_alone: false,
            },
            Self::Importance => SamplerInfo {
                name: "importance",
                wgsl: shader_file!("importance.wgsl"),
                step: Step::Moves {
                    tune: "sampler.dt",
                    warn_high: true,
                    drift: true,
                },
                needs_sqrt: None,
                rbm_alone: false,
            },
            Self::Gibbs => SamplerInfo {
                name: "gibbs",
                wgsl: shader_file!("gibbs.wgsl"),
                step: Step::Whole {
                    no_single: "does not apply to Gibbs sampling, which redraws every \
                                coordinate each step",
                    // A draw per hidden unit, a mean per coordinate, and a refresh.
                    loops: |m, n| n + 2 * m * n + m,
                },
                needs_sqrt: Some(
                    "Gibbs sampling draws from the RBM marginal F(x), which is |psi|^2 only \
                     for psi = sqrt(F)",
                ),
                rbm_alone: true,
            },
        }
    }

    /// Moves a walker makes per step: one per particle for single-particle moves.
    pub fn moves_per_step(self, moves: Moves, particles: usize) -> usize {
        match (self.info().step, moves) {
            (Step::Moves { .. }, Moves::Single) => particles,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_config_names() {
        for kind in SamplerKind::ALL {
            let name = serde_json::to_value(kind).unwrap();
            assert_eq!(name, kind.info().name, "{kind:?}");
        }
    }
}
