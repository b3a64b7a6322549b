//! The config resolved into the physics it describes: the system, the trial wave function,
//! the proposal sizes, the observables' ranges, the reference energy and DMC's moves. Engines
//! take these through `EngineSpec`, built once per engine.

use super::*;

impl Config {
    pub fn system(&self) -> System {
        System {
            particles: self.system.particles,
            dims: self.system.dims,
            omega: self.system.omega,
            interaction: self.system.interaction,
            statistics: self.system.statistics,
        }
    }

    /// The energy results are compared with: the config's `reference`, else the built-in
    /// table's for the system, where it knows one.
    pub fn reference(&self) -> Option<Reference> {
        match &self.reference {
            Some(r) => Some(Reference {
                energy: r.energy,
                error: r.error,
                source: r
                    .label
                    .clone()
                    .unwrap_or_else(|| "given in the config".into()),
                exact: false,
            }),
            None => reference_energy(&self.system()),
        }
    }

    /// What makes a valid config describe no physical state, for a warning.
    pub fn physics_warnings(&self) -> Vec<String> {
        let s = &self.system;
        let mut warnings = Vec::new();
        if s.interaction && s.particles > 2 && s.statistics == Statistics::Distinguishable {
            warnings.push(format!(
                "{} interacting particles with system.statistics = \"distinguishable\": the \
                 wave function is not antisymmetric, so the energy is that of distinguishable \
                 particles, not of an electron state; use \"fermions\" for electrons",
                s.particles
            ));
        }
        warnings
    }

    /// The width sigma (initial, when trained), with `"auto"` resolved.
    pub fn sigma(&self) -> f64 {
        match self.wavefunction.sigma {
            AutoValue::Value(v) => v,
            AutoValue::Auto => match self.wavefunction.form {
                Form::Direct => (1.0 / self.system.omega).sqrt(),
                Form::Sqrt => (0.5 / self.system.omega).sqrt(),
            },
        }
    }

    /// The Metropolis step and the importance-sampling time step, an `"auto"` one at the
    /// start of its tuning: a step of the trap length, a time step of a tenth of the trap's
    /// time scale 1/omega.
    pub fn proposal_sizes(&self) -> (f64, f64) {
        let omega = self.system.omega;
        let resolve = |size: AutoValue, guess: f64| match size {
            AutoValue::Value(v) => v,
            AutoValue::Auto => guess,
        };
        (
            resolve(self.sampler.step, omega.sqrt().recip()),
            resolve(self.sampler.dt, 0.1 / omega),
        )
    }

    /// The trial wave function the config describes (validated configs only).
    pub fn wavefunction(&self) -> Wavefunction {
        let (s, w) = (&self.system, &self.wavefunction);
        let fermions = s.statistics == Statistics::Fermions;
        let up = fermions.then_some(s.particles / 2);
        let jastrow = (w.jastrow.pair_form()).map(|f| Jastrow::new(s.particles, s.dims, up, f));
        Wavefunction {
            rbm: Rbm {
                sigma: self.sigma(),
                form: w.form,
            },
            slater: fermions.then(|| {
                Slater::closed_shell(s.particles, s.dims, s.omega).expect("validated closed shell")
            }),
            layout: Layout {
                visible: s.particles * s.dims,
                hidden: w.hidden,
                jastrow: jastrow.as_ref().map_or(0, Jastrow::parameters),
                train_sigma: w.train_sigma,
            },
            jastrow,
        }
    }

    /// What the engines histogram, with the ranges resolved; `None` when switched off.
    pub fn observables_spec(&self) -> Option<crate::spec::ObservablesSpec> {
        let o = &self.observables;
        let r_max = o.r_max.unwrap_or(4.0 / self.system.omega.sqrt());
        o.enabled.then(|| crate::spec::ObservablesSpec {
            radial_bins: o.radial_bins,
            r_max,
            pair_bins: o.pair_bins,
            pair_max: o.pair_max.unwrap_or(2.0 * r_max),
            grid_bins: if self.system.dims == 2 {
                o.grid_bins
            } else {
                0
            },
            histogram_every: o.histogram_every,
        })
    }

    /// The moves DMC makes: as set, else one electron at a time for fermions.
    pub fn dmc_moves(&self) -> Moves {
        self.dmc.moves.unwrap_or(match self.system.statistics {
            Statistics::Fermions => Moves::Single,
            Statistics::Distinguishable => Moves::All,
        })
    }
}
