//! The trial wave function as a product of factors: psi = F_RBM^f x J x det_up x det_down,
//! each optional but the RBM (J: the Padé or the simple Jastrow factor). Logs add, so per coordinate the gradient of ln psi and the
//! Laplacian are sums over the factors, and E_L = -1/2 sum_m (l_m + g_m^2) + V keeps one form.
//! `Walker` (walker.rs) holds one configuration with every factor's cache; this file has the
//! description and a from-scratch evaluation for tests and one-off uses.

use serde::{Deserialize, Serialize};

use super::factor::Factor;
use super::jastrow::JastrowFactor;
use super::slater::SlaterFactor;
use super::{Jastrow, Layout, Params, Rbm, Slater, System, Walker};

/// What the particles are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistics {
    /// No exchange symmetry imposed: the plain RBM (exact for the two-electron singlet).
    #[default]
    Distinguishable,
    /// Spin-1/2 fermions, half up and half down, in closed shells: Slater determinants.
    Fermions,
}

/// The factors of a trial wave function and the parameter layout they share.
#[derive(Clone, Debug, PartialEq)]
pub struct Wavefunction {
    /// Form and, unless trained, width of the RBM.
    pub rbm: Rbm,
    pub jastrow: Option<Jastrow>,
    pub slater: Option<Slater>,
    pub layout: Layout,
}

impl Wavefunction {
    /// The plain RBM with `hidden` units for `system`.
    pub fn rbm_only(system: &System, hidden: usize, rbm: Rbm) -> Self {
        Self {
            rbm,
            jastrow: None,
            slater: None,
            layout: Layout::rbm(system.coordinates(), hidden),
        }
    }

    /// Number of variational parameters K.
    pub fn parameters(&self) -> usize {
        self.layout.len()
    }

    /// The RBM with the width of `params` (trained) or the fixed one.
    pub fn rbm_for(&self, params: &Params) -> Rbm {
        Rbm {
            sigma: params.sigma().unwrap_or(self.rbm.sigma),
            form: self.rbm.form,
        }
    }

    /// The factor list: every factor but the RBM, in the order of psi, each with a fresh
    /// cache. A new factor is one file implementing `Factor`, one line here, its parameter
    /// range in `Layout` and its config key.
    pub fn factors<'a>(&'a self, params: &'a Params) -> Vec<Box<dyn Factor + 'a>> {
        let mut out: Vec<Box<dyn Factor + 'a>> = Vec::new();
        if let Some(j) = &self.jastrow {
            out.push(Box::new(JastrowFactor::new(j, params)));
        }
        if let Some(sl) = &self.slater {
            out.push(Box::new(SlaterFactor::new(sl)));
        }
        out
    }

    /// Moves the parameters back into their factors' domains after an update.
    pub fn keep_in_domain(&self, params: &mut Params) {
        if let Some(j) = &self.jastrow {
            j.keep_in_domain(params.jastrow_mut());
        }
    }

    /// ln |psi| at x (allocates: not for hot loops).
    pub fn ln_psi(&self, system: &System, params: &Params, x: &[f64]) -> f64 {
        let mut walker = Walker::new(self, system, params);
        walker.load(x);
        walker.ln_psi()
    }

    /// E_L at x and, into `o`, the log-derivatives O_i (allocates: not for hot loops).
    pub fn local_energy(&self, system: &System, params: &Params, x: &[f64], o: &mut [f64]) -> f64 {
        let mut walker = Walker::new(self, system, params);
        walker.load(x);
        let e = walker.local_energy();
        o.copy_from_slice(walker.o());
        e
    }
}
