//! Validation of a config: every range, and the combinations that make sense, with messages
//! that name the field, its value and what is allowed.

use super::*;

impl Config {
    /// Checks every range; the error names the field, its value and what is allowed.
    pub fn validate(&self) -> Result<(), Error> {
        let s = &self.system;
        int_range("system.particles", s.particles, 1, MAX_PARTICLES)?;
        int_range("system.dims", s.dims, 1, 3)?;
        positive("system.omega", s.omega)?;
        if s.interaction && s.dims == 1 {
            return Err(Error::input(
                "config: `system.interaction` = true with `system.dims` = 1: the Coulomb energy \
                 1/|x1 - x2| diverges in one dimension for trial functions that do not vanish \
                 at coincidence; use dims 2 or 3, or interaction false",
            ));
        }
        if let Some(r) = &self.reference {
            if !r.energy.is_finite() {
                return Err(Error::input(format!(
                    "config: `reference.energy` = {}: must be a finite number",
                    compact(r.energy)
                )));
            }
            if let Some(error) = r.error {
                finite_non_negative("reference.error", error)?;
            }
        }
        let w = &self.wavefunction;
        int_range("wavefunction.hidden", w.hidden, 0, MAX_HIDDEN)?;
        if let AutoValue::Value(v) = w.sigma {
            positive("wavefunction.sigma", v)?;
        }
        // sigma = "auto" with an absurd omega.
        positive("wavefunction.sigma (auto)", self.sigma())?;
        if let Some(why) = flat_width(self.sigma(), s.omega) {
            return Err(Error::input(format!(
                "config: `wavefunction.sigma`: {why}; use a width of at most {MAX_SIGMA_LENGTHS} \
                 trap lengths (\"auto\": the trap's ground state)"
            )));
        }
        finite_non_negative("wavefunction.init_scale", w.init_scale)?;
        self.validate_factors()?;
        self.validate_observables()?;
        let sm = &self.sampler;
        for (key, size) in [("sampler.step", sm.step), ("sampler.dt", sm.dt)] {
            if let AutoValue::Value(v) = size {
                positive(key, v)?;
            }
        }
        int_range(
            "sampler.measure_every",
            sm.measure_every as usize,
            1,
            1 << 20,
        )?;
        self.validate_sampler()?;
        int_range("walkers", self.walkers as usize, 1, u32::MAX as usize)?;
        int_range("threads", self.threads, 0, MAX_THREADS)?;
        int_range(
            "steps_per_iteration",
            self.steps_per_iteration as usize,
            1,
            u32::MAX as usize,
        )?;
        if self.steps_per_iteration < sm.measure_every {
            return Err(Error::input(format!(
                "config: `steps_per_iteration` = {} is below `sampler.measure_every` = {}: an \
                 iteration would measure nothing",
                self.steps_per_iteration, sm.measure_every
            )));
        }
        if self.production.steps != 0 && self.production.steps < sm.measure_every {
            return Err(Error::input(format!(
                "config: `production.steps` = {} is below `sampler.measure_every` = {}; use 0 \
                 to skip production or at least {}",
                self.production.steps, sm.measure_every, sm.measure_every
            )));
        }
        let o = &self.optimiser;
        positive("optimiser.learning_rate", o.learning_rate)?;
        unit_interval("optimiser.beta1", o.beta1)?;
        unit_interval("optimiser.beta2", o.beta2)?;
        positive("optimiser.epsilon", o.epsilon)?;
        finite_non_negative("optimiser.diagonal_shift", o.diagonal_shift)?;
        positive("optimiser.absolute_shift", o.absolute_shift)?;
        int_range(
            "optimiser.metric_samples",
            o.metric_samples as usize,
            2,
            1 << 24,
        )?;
        positive("optimiser.t0", o.t0)?;
        if !(0.0..=1.0).contains(&o.final_fraction) {
            return Err(Error::input(format!(
                "config: `optimiser.final_fraction` = {}: must be in [0, 1] (the cosine \
                 schedule's last learning rate as a fraction of `optimiser.learning_rate`)",
                compact(o.final_fraction)
            )));
        }
        self.validate_dmc()?;
        if let Some(steps) = self.gpu.steps_per_dispatch {
            int_range("gpu.steps_per_dispatch", steps as usize, 1, 1 << 16)?;
        }
        Ok(())
    }

    /// The Jastrow factor and the statistics: combinations that make sense, closed shells.
    fn validate_observables(&self) -> Result<(), Error> {
        let o = &self.observables;
        int_range("observables.radial_bins", o.radial_bins, 1, 1000)?;
        int_range("observables.pair_bins", o.pair_bins, 1, 1000)?;
        int_range("observables.grid_bins", o.grid_bins, 1, 40)?;
        int_range(
            "observables.histogram_every",
            o.histogram_every as usize,
            1,
            1000,
        )?;
        // The densities live within a few trap lengths 1/sqrt(omega): a range far beyond puts
        // every sample in one bin or past the last, and overflows the figures' axes and the
        // GPU's f32 constants.
        let length = 1.0 / self.system.omega.sqrt();
        for (field, value) in [("r_max", o.r_max), ("pair_max", o.pair_max)] {
            let Some(r) = value else { continue };
            positive(&format!("observables.{field}"), r)?;
            if !(1e-3 * length..=1e3 * length).contains(&r) {
                return Err(Error::input(format!(
                    "config: `observables.{field}` = {}: must be within 1e-3 and 1e3 trap \
                     lengths 1/sqrt(omega) = {} (the densities live within a few); null: the \
                     default",
                    compact(r),
                    compact(length)
                )));
            }
        }
        if let Some(spec) = self.observables_spec() {
            let max = crate::spec::MAX_BINS;
            if spec.bins() > max {
                return Err(Error::input(format!(
                    "config: the observables' histograms have {} bins in all (radial_bins + \
                     pair_bins + grid_bins^2 in 2D, and 3 overflow counters), more than the \
                     {max} the GPU keeps per workgroup; use fewer bins",
                    spec.bins()
                )));
            }
        }
        Ok(())
    }

    /// The DMC settings: positive sizes, whole blocks of generations (the time step against
    /// the trap: `dmc_time_step_problem`, for `dmc` alone).
    fn validate_dmc(&self) -> Result<(), Error> {
        let d = &self.dmc;
        let taus = &d.time_step.0;
        int_range(
            "the number of dmc.time_step values",
            taus.len(),
            1,
            MAX_TIME_STEPS,
        )?;
        for &tau in taus {
            positive("dmc.time_step", tau)?;
        }
        if taus.iter().enumerate().any(|(i, t)| taus[..i].contains(t)) {
            return Err(Error::input(
                "config: `dmc.time_step`: a time step is listed twice; list each once",
            ));
        }
        int_range("dmc.generations", d.generations as usize, 1, 1 << 30)?;
        int_range("dmc.equilibration", d.equilibration as usize, 0, 1 << 30)?;
        int_range("dmc.block", d.block as usize, 1, d.generations as usize)?;
        if !d.generations.is_multiple_of(d.block) {
            return Err(Error::input(format!(
                "config: `dmc.block` = {}: must divide `dmc.generations` = {} (dmc.csv has a row \
                 per block, and its last row's running mean is the result's)",
                d.block, d.generations
            )));
        }
        positive("dmc.cutoff", d.cutoff)?;
        Ok(())
    }

    /// Why `dmc.time_step` is absurd for this trap, if it is: beyond its time scale 1/omega.
    pub fn dmc_time_step_problem(&self) -> Option<String> {
        let tau = self.dmc.time_step.0.iter().copied().fold(0.0, f64::max);
        let period = 1.0 / self.system.omega;
        (tau > period).then(|| {
            format!(
                "config: `dmc.time_step` = {}: must be at most 1 / omega = {} (the trap's time \
                 scale); DMC's time-step error grows with tau, and 0.01 / omega is typical",
                compact(tau),
                compact(period)
            )
        })
    }

    /// What the sampler's row in the table allows.
    fn validate_sampler(&self) -> Result<(), Error> {
        let (sm, w) = (&self.sampler, &self.wavefunction);
        let info = sm.kind.info();
        let kind = format!("config: `sampler.kind` = \"{}\"", info.name);
        if let Some(why) = info.needs_sqrt
            && w.form != Form::Sqrt
        {
            return Err(Error::input(format!(
                "{kind} needs `wavefunction.form` = \"sqrt\": {why}"
            )));
        }
        if info.rbm_alone
            && (w.jastrow != JastrowKind::None || self.system.statistics == Statistics::Fermions)
        {
            let others: Vec<String> = SamplerKind::ALL
                .iter()
                .map(|k| k.info())
                .filter(|i| !i.rbm_alone)
                .map(|i| format!("\"{}\"", i.name))
                .collect();
            return Err(Error::input(format!(
                "{kind} samples the RBM alone; it cannot sample a Jastrow factor or Slater \
                 determinants: use {}",
                others.join(" or ")
            )));
        }
        if let Step::Whole { no_single, .. } = info.step
            && sm.moves == Moves::Single
        {
            return Err(Error::input(format!(
                "config: `sampler.moves` = \"single\" {no_single}; use \"all\""
            )));
        }
        Ok(())
    }

    fn validate_factors(&self) -> Result<(), Error> {
        let (s, w) = (&self.system, &self.wavefunction);
        if w.jastrow != JastrowKind::None {
            let kind = serde_json::json!(w.jastrow);
            if !s.interaction {
                return Err(Error::input(format!(
                    "config: `wavefunction.jastrow` = {kind} with `system.interaction` = false: \
                     the Jastrow factor describes the Coulomb cusp; without interaction use \
                     \"none\""
                )));
            }
            if s.dims == 1 {
                return Err(Error::input(format!(
                    "config: `wavefunction.jastrow` = {kind} needs `system.dims` 2 or 3 (the \
                     cusp 1/(D-1) diverges in one dimension)"
                )));
            }
            if w.jastrow == JastrowKind::Pade {
                positive("wavefunction.jastrow_beta", w.jastrow_beta)?;
            }
            if s.particles < 2 {
                return Err(Error::input(format!(
                    "config: `wavefunction.jastrow` = {kind} needs at least two particles"
                )));
            }
        }
        if s.statistics == Statistics::Fermions
            && let Err(why) = Slater::closed_shell(s.particles, s.dims, s.omega)
        {
            return Err(Error::input(format!(
                "config: `system.particles` = {} with `system.statistics` = \"fermions\": {why}",
                s.particles
            )));
        }
        Ok(())
    }
}

/// Widths sigma beyond this many trap lengths 1/sqrt(omega) make the RBM's Gaussian too
/// flat to hold the walkers in any run of finite length.
pub const MAX_SIGMA_LENGTHS: f64 = 100.0;

/// Why a width `sigma` in a trap of frequency `omega` makes a flat trial function, if it
/// does: one whose walkers drift apart without ever sampling |psi|^2, with an energy that
/// grows with the run's length and a gradient that vanishes, so that nothing is measured or
/// optimised.
pub fn flat_width(sigma: f64, omega: f64) -> Option<String> {
    let length = 1.0 / omega.sqrt();
    (sigma > MAX_SIGMA_LENGTHS * length).then(|| {
        format!(
            "sigma = {} is {} trap lengths 1/sqrt(omega) = {}: the trial function is flat, so \
             the walkers drift apart and its energy means nothing",
            compact(sigma),
            compact(sigma / length),
            compact(length)
        )
    })
}

fn positive(field: &str, value: f64) -> Result<(), Error> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::input(format!(
            "config: `{field}` = {}: must be a finite number > 0",
            compact(value)
        )))
    }
}

fn finite_non_negative(field: &str, value: f64) -> Result<(), Error> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::input(format!(
            "config: `{field}` = {}: must be a finite number >= 0",
            compact(value)
        )))
    }
}

fn unit_interval(field: &str, value: f64) -> Result<(), Error> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "config: `{field}` = {}: must be in [0, 1)",
            compact(value)
        )))
    }
}

fn int_range(field: &str, value: usize, min: usize, max: usize) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "config: `{field}` = {value}: must be in {min}..={max}"
        )))
    }
}
