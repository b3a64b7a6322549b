//! The model in f64: the trapped system and the RBM trial wave function.

mod rbm;
mod system;

pub use rbm::{Form, Rbm, RbmParams, sigmoid, softplus, softplus_and_sigmoid};
pub use system::System;

use crate::rng::{PARAMS_WALKER, StepStream};

impl RbmParams {
    /// Parameters drawn from N(0, scale^2) from the run's seed (scale 0 gives all zeros).
    pub fn random(visible: usize, hidden: usize, scale: f64, seed: u64) -> Self {
        let mut p = Self::zeros(visible, hidden);
        let mut stream = StepStream::new(seed, PARAMS_WALKER, 0);
        for t in p.theta_mut() {
            *t = scale * stream.normal();
        }
        p
    }
}

impl Rbm {
    /// E_L at `x`, computing Q and S on the way (allocates: not for hot loops).
    pub fn local_energy_at(&self, system: &System, params: &RbmParams, x: &[f64]) -> f64 {
        let n = params.hidden();
        let (mut q, mut s) = (vec![0.0; n], vec![0.0; n]);
        self.hidden_fields(params, x, &mut q);
        self.ln_psi(params, x, &q, &mut s);
        let mut o = vec![0.0; params.theta().len()];
        self.local_energy(system, params, x, &s, &mut o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        sys: System,
        rbm: Rbm,
        params: RbmParams,
        x: Vec<f64>,
    }

    fn cases() -> Vec<Case> {
        let shapes = [(2, 2, 2), (1, 1, 3), (3, 3, 4), (2, 1, 0), (2, 3, 1)];
        let mut out = Vec::new();
        for (i, &(particles, dims, hidden)) in shapes.iter().enumerate() {
            for form in [Form::Direct, Form::Sqrt] {
                let sys = System {
                    particles,
                    dims,
                    omega: 0.7,
                    interaction: dims > 1,
                };
                let m = sys.coordinates();
                let params = RbmParams::random(m, hidden, 0.5, 11 + i as u64);
                let mut stream = crate::rng::StepStream::new(99, i as u32, 1);
                let x = (0..m).map(|_| stream.normal()).collect();
                let rbm = Rbm { sigma: 0.9, form };
                out.push(Case {
                    sys,
                    rbm,
                    params,
                    x,
                });
            }
        }
        out
    }

    fn ln_psi(c: &Case, params: &RbmParams, x: &[f64]) -> f64 {
        let n = params.hidden();
        let (mut q, mut s) = (vec![0.0; n], vec![0.0; n]);
        c.rbm.hidden_fields(params, x, &mut q);
        c.rbm.ln_psi(params, x, &q, &mut s)
    }

    fn sigmoids_at(c: &Case, x: &[f64]) -> Vec<f64> {
        let n = c.params.hidden();
        let (mut q, mut s) = (vec![0.0; n], vec![0.0; n]);
        c.rbm.hidden_fields(&c.params, x, &mut q);
        c.rbm.ln_psi(&c.params, x, &q, &mut s);
        s
    }

    fn shifted(x: &[f64], i: usize, h: f64) -> Vec<f64> {
        let mut y = x.to_vec();
        y[i] += h;
        y
    }

    #[test]
    fn gradient_and_laplacian_match_finite_differences() {
        for c in cases() {
            let m = c.x.len();
            let s = sigmoids_at(&c, &c.x);
            let (mut g, mut l) = (vec![0.0; m], vec![0.0; m]);
            c.rbm.gradient(&c.params, &c.x, &s, &mut g);
            c.rbm.laplacian_diagonal(&c.params, &c.x, &s, &mut l);
            let f = |y: &[f64]| ln_psi(&c, &c.params, y);
            for i in 0..m {
                let h = 1e-5;
                let fd1 = (f(&shifted(&c.x, i, h)) - f(&shifted(&c.x, i, -h))) / (2.0 * h);
                assert!((fd1 - g[i]).abs() < 1e-8, "d/dx_{i}: {fd1} vs {}", g[i]);
                let h = 1e-4;
                let fd2 =
                    (f(&shifted(&c.x, i, h)) - 2.0 * f(&c.x) + f(&shifted(&c.x, i, -h))) / (h * h);
                assert!((fd2 - l[i]).abs() < 1e-5, "d2/dx_{i}^2: {fd2} vs {}", l[i]);
            }
        }
    }

    #[test]
    fn log_derivatives_match_finite_differences() {
        for c in cases() {
            let s = sigmoids_at(&c, &c.x);
            let mut o = vec![0.0; c.params.theta().len()];
            c.rbm.local_energy(&c.sys, &c.params, &c.x, &s, &mut o);
            for (i, &oi) in o.iter().enumerate() {
                let h = 1e-5;
                let at = |d: f64| {
                    let mut theta = c.params.theta().to_vec();
                    theta[i] += d;
                    let p = RbmParams::from_theta(c.params.visible(), c.params.hidden(), theta)
                        .unwrap();
                    ln_psi(&c, &p, &c.x)
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                assert!((fd - oi).abs() < 1e-8, "O_{i}: {fd} vs {oi}");
            }
        }
    }

    #[test]
    fn local_energy_matches_laplacian_of_psi_by_finite_differences() {
        for c in cases() {
            let s = sigmoids_at(&c, &c.x);
            let mut o = vec![0.0; c.params.theta().len()];
            let el = c.rbm.local_energy(&c.sys, &c.params, &c.x, &s, &mut o);
            // -1/2 (nabla^2 psi)/psi + V, with psi itself differenced (independent of the
            // ln psi algebra); psi scaled by its value at x to stay near 1.
            let ln0 = ln_psi(&c, &c.params, &c.x);
            let psi = |y: &[f64]| (ln_psi(&c, &c.params, y) - ln0).exp();
            let h = 1e-4;
            let lap: f64 = (0..c.x.len())
                .map(|i| (psi(&shifted(&c.x, i, h)) - 2.0 + psi(&shifted(&c.x, i, -h))) / (h * h))
                .sum();
            let expected = -0.5 * lap + c.sys.potential(&c.x);
            assert!((el - expected).abs() < 1e-5, "E_L {el} vs {expected}");
        }
    }

    #[test]
    fn exact_ground_state_has_constant_local_energy() {
        // a = w = 0, sigma^2 = 1/omega, direct form: psi is the oscillator ground state.
        let omega = 0.5;
        let sys = System {
            particles: 3,
            dims: 2,
            omega,
            interaction: false,
        };
        let params = RbmParams::zeros(6, 2);
        let rbm = Rbm {
            sigma: (1.0 / omega).sqrt(),
            form: Form::Direct,
        };
        for x in [
            [0.1, -2.0, 0.3, 0.0, 1.5, 0.7],
            [3.0, 1.0, -1.0, 2.0, 0.0, 0.2],
        ] {
            let el = rbm.local_energy(&sys, &params, &x, &[0.5, 0.5], &mut [0.0; 20]);
            assert!((el - sys.non_interacting_energy()).abs() < 1e-12);
        }
    }

    #[test]
    fn softplus_and_sigmoid_are_stable_at_extremes() {
        assert_eq!(softplus(800.0), 800.0);
        assert!(softplus(-800.0) >= 0.0 && softplus(-800.0) < 1e-300);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(sigmoid(800.0), 1.0);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert!((sigmoid(1.0) + sigmoid(-1.0) - 1.0).abs() < 1e-15);
    }
}
