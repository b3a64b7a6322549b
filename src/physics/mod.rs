//! The model in f64: the trapped system and the trial wave function, a product of factors
//! (RBM, Padé-Jastrow, Slater determinants), each in its own file.

mod factor;
mod jastrow;
mod params;
mod rbm;
mod reference;
mod slater;
mod system;
mod walker;
mod wavefunction;

pub use jastrow::{Jastrow, PairForm};
pub use params::{Layout, Params};
pub use rbm::{Form, Rbm, SOFTPLUS_CHUNK, sigmoid, softplus, softplus_and_sigmoid};
pub use reference::{Reference, reference_energy};
pub use slater::{Slater, SlaterState, closed_shell_counts};
pub use system::System;
pub use walker::Walker;
pub use wavefunction::{Statistics, Wavefunction};

use crate::rng::{PARAMS_WALKER, StepStream};

impl Params {
    /// Starting parameters: the RBM's a, b, w drawn from N(0, scale^2) from the run's seed
    /// (scale 0 gives all zeros), the Jastrow factor's and the width as given.
    pub fn initial(layout: Layout, scale: f64, seed: u64, jastrow: &[f64], sigma: f64) -> Self {
        let mut p = Self::zeros(layout);
        let mut stream = StepStream::new(seed, PARAMS_WALKER, 0);
        for t in &mut p.theta_mut()[..layout.rbm_len()] {
            *t = scale * stream.normal();
        }
        p.jastrow_mut().copy_from_slice(jastrow);
        if let Some(i) = layout.ln_sigma_index() {
            p.theta_mut()[i] = sigma.ln();
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wave function, parameters and a position to differentiate at.
    struct Case {
        label: String,
        sys: System,
        wf: Wavefunction,
        params: Params,
        x: Vec<f64>,
    }

    /// Several (P, D, N), both forms, with and without the Jastrow factor, a trained width and
    /// Slater determinants, at random parameters and positions.
    fn cases() -> Vec<Case> {
        // (particles, dims, hidden, fermions, jastrow, train_sigma)
        let (pade, simple) = (Some(PairForm::Pade), Some(PairForm::Simple));
        let shapes = [
            (2, 2, 2, false, None, false),
            (1, 1, 3, false, None, true),
            (3, 3, 4, false, None, false),
            (2, 1, 0, false, None, false),
            (2, 3, 1, false, pade, true),
            (2, 2, 2, false, pade, false),
            (2, 2, 2, false, simple, true),
            (3, 2, 2, false, simple, false),
            (3, 2, 2, false, pade, true),
            (6, 2, 3, true, pade, true),
            (6, 2, 3, true, simple, false),
            (8, 3, 2, true, pade, false),
            (8, 3, 2, true, simple, true),
            (4, 1, 2, true, None, true),
            (12, 2, 0, true, pade, false),
        ];
        let mut out = Vec::new();
        for (i, &(particles, dims, hidden, fermions, pair, train_sigma)) in
            shapes.iter().enumerate()
        {
            for form in [Form::Direct, Form::Sqrt] {
                let sys = System {
                    particles,
                    dims,
                    omega: 0.7,
                    interaction: dims > 1,
                    statistics: if fermions {
                        Statistics::Fermions
                    } else {
                        Statistics::Distinguishable
                    },
                };
                let m = sys.coordinates();
                let up = fermions.then_some(particles / 2);
                let jastrow = pair.map(|pair| Jastrow::new(particles, dims, up, pair));
                let layout = Layout {
                    visible: m,
                    hidden,
                    jastrow: jastrow.as_ref().map_or(0, Jastrow::parameters),
                    train_sigma,
                };
                let beta = jastrow.as_ref().map_or(vec![], |j| {
                    let start = j.initial(0.6);
                    start.iter().map(|b| b * 0.8 + 0.1).collect()
                });
                let wf = Wavefunction {
                    rbm: Rbm { sigma: 0.9, form },
                    jastrow,
                    slater: fermions.then(|| Slater::closed_shell(particles, dims, 0.7).unwrap()),
                    layout,
                };
                let params = Params::initial(layout, 0.3, 11 + i as u64, &beta, 1.1);
                let mut stream = crate::rng::StepStream::new(99, i as u32, 1);
                let x = (0..m).map(|_| 1.3 * stream.normal()).collect();
                let label = format!(
                    "P{particles} D{dims} N{hidden} {form:?} fermions {fermions} jastrow \
                     {pair:?} train_sigma {train_sigma}"
                );
                out.push(Case {
                    label,
                    sys,
                    wf,
                    params,
                    x,
                });
            }
        }
        out
    }

    fn shifted(x: &[f64], i: usize, h: f64) -> Vec<f64> {
        let mut y = x.to_vec();
        y[i] += h;
        y
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for c in cases() {
            let mut walker = Walker::new(&c.wf, &c.sys, &c.params);
            walker.load(&c.x);
            let f = |y: &[f64]| c.wf.ln_psi(&c.sys, &c.params, y);
            for i in 0..c.x.len() {
                let h = 1e-5;
                let fd = (f(&shifted(&c.x, i, h)) - f(&shifted(&c.x, i, -h))) / (2.0 * h);
                let g = walker.drift()[i];
                assert!(close(fd, g, 1e-7), "{}: d/dx_{i}: {fd} vs {g}", c.label);
            }
        }
    }

    #[test]
    fn log_derivatives_match_finite_differences() {
        for c in cases() {
            let mut o = vec![0.0; c.params.theta().len()];
            c.wf.local_energy(&c.sys, &c.params, &c.x, &mut o);
            for (i, &oi) in o.iter().enumerate() {
                let h = 1e-5;
                let at = |d: f64| {
                    let mut theta = c.params.theta().to_vec();
                    theta[i] += d;
                    let p = Params::from_theta(c.params.layout(), theta).unwrap();
                    c.wf.ln_psi(&c.sys, &p, &c.x)
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                let name = c.params.layout().name(i);
                assert!(close(fd, oi, 1e-7), "{}: O({name}): {fd} vs {oi}", c.label);
            }
        }
    }

    /// E_L against -1/2 (nabla^2 psi) / psi + V with psi itself differenced: checks the
    /// Laplacian of every factor and the cross terms of the product.
    #[test]
    fn local_energy_matches_laplacian_of_psi_by_finite_differences() {
        for c in cases() {
            let mut o = vec![0.0; c.params.theta().len()];
            let el = c.wf.local_energy(&c.sys, &c.params, &c.x, &mut o);
            let ln0 = c.wf.ln_psi(&c.sys, &c.params, &c.x);
            let psi = |y: &[f64]| (c.wf.ln_psi(&c.sys, &c.params, y) - ln0).exp();
            let h = 1e-4;
            let lap: f64 = (0..c.x.len())
                .map(|i| (psi(&shifted(&c.x, i, h)) - 2.0 + psi(&shifted(&c.x, i, -h))) / (h * h))
                .sum();
            let expected = -0.5 * lap + c.sys.potential(&c.x);
            assert!(
                close(el, expected, 2e-5),
                "{}: E_L {el} vs {expected}",
                c.label
            );
        }
    }

    /// Single-particle proposals (incremental) give the same ln psi and drift as a fresh
    /// evaluation at the new position, before and after acceptance.
    #[test]
    fn single_particle_moves_match_fresh_evaluations() {
        for c in cases() {
            let dims = c.sys.dims;
            let mut walker = Walker::new(&c.wf, &c.sys, &c.params);
            walker.load(&c.x);
            let mut stream = crate::rng::StepStream::new(3, 4, 5);
            for step in 0..3 * c.sys.particles {
                let k = step % c.sys.particles;
                let range = k * dims..(k + 1) * dims;
                walker.begin_proposal(&range, |_, xm| xm + 0.4 * stream.normal());
                let y = walker.y().to_vec();
                let before = walker.ln_psi();
                let change = walker.propose(&range);
                let fresh = c.wf.ln_psi(&c.sys, &c.params, &y);
                assert!(close(before + change, fresh, 1e-9), "{}", c.label);
                walker.drift_at_y(&range);
                let mut at_y = Walker::new(&c.wf, &c.sys, &c.params);
                at_y.load(&y);
                for m in range.clone() {
                    let (inc, full) = (walker.drift_y()[m], at_y.drift()[m]);
                    assert!(close(inc, full, 1e-9), "{}: {inc} vs {full}", c.label);
                }
                if step % 3 != 2 {
                    walker.accept(&range);
                    walker.drift_x(&range);
                    for m in range.clone() {
                        assert!(close(walker.drift()[m], at_y.drift()[m], 1e-9));
                    }
                }
            }
            let mut fresh = Walker::new(&c.wf, &c.sys, &c.params);
            fresh.load(walker.x());
            assert!(close(fresh.ln_psi(), walker.ln_psi(), 1e-9), "{}", c.label);
            let (e_inc, e_fresh) = (walker.local_energy(), fresh.local_energy());
            assert!(
                close(e_inc, e_fresh, 1e-8),
                "{}: {e_inc} vs {e_fresh}",
                c.label
            );
        }
    }

    #[test]
    fn exact_ground_state_has_constant_local_energy() {
        // a = w = 0, sigma^2 = 1/omega, direct form: psi is the oscillator ground state; with
        // Slater determinants the closed-shell ground state, omega sum (n + D/2) over orbitals.
        let omega = 0.5;
        for (particles, dims, fermions, exact) in [
            (3, 2, false, 3.0 * omega),
            (6, 2, true, 10.0 * omega),
            (12, 2, true, 28.0 * omega),
            (8, 3, true, 18.0 * omega),
            (6, 1, true, 9.0 * omega),
        ] {
            let sys = System {
                particles,
                dims,
                omega,
                interaction: false,
                statistics: if fermions {
                    Statistics::Fermions
                } else {
                    Statistics::Distinguishable
                },
            };
            let layout = Layout::rbm(sys.coordinates(), 2);
            let wf = Wavefunction {
                rbm: Rbm {
                    sigma: (1.0 / omega).sqrt(),
                    form: Form::Direct,
                },
                jastrow: None,
                slater: fermions.then(|| Slater::closed_shell(particles, dims, omega).unwrap()),
                layout,
            };
            let mut params = Params::zeros(layout);
            params.theta_mut()[sys.coordinates()] = 0.7; // a hidden bias: irrelevant
            let mut stream = crate::rng::StepStream::new(1, 1, 1);
            for _ in 0..5 {
                let x: Vec<f64> = (0..sys.coordinates())
                    .map(|_| 1.5 * stream.normal())
                    .collect();
                let mut o = vec![0.0; layout.len()];
                let el = wf.local_energy(&sys, &params, &x, &mut o);
                assert!(
                    (el - exact).abs() < 1e-9 * exact,
                    "P{particles} D{dims}: {el}"
                );
            }
        }
    }

    /// The Gaussian times the Padé-Jastrow factor (RBM with w = 0, a = 0) against E_L written
    /// out independently for two particles: with psi = exp(-r1^2/2s^2 - r2^2/2s^2 + u(r)),
    /// E_L = sum_k [ D/(2 s^2) - |x_k|^2/(2 s^4) ] + omega^2 (r1^2 + r2^2)/2 + 1/r
    ///       - [ u'' + (D-1) u'/r + u'^2 ] + u' r / s^2,
    /// since grad_1 ln psi = -x_1/s^2 + u' rhat and grad_2 ln psi = -x_2/s^2 - u' rhat.
    #[test]
    fn gaussian_times_pade_matches_the_closed_form() {
        for (dims, a) in [(2usize, 1.0), (3, 0.5)] {
            let (omega, sigma, beta) = (0.8, 1.2, 0.4);
            let sys = System {
                particles: 2,
                dims,
                omega,
                interaction: true,
                statistics: Statistics::Distinguishable,
            };
            let layout = Layout {
                visible: 2 * dims,
                hidden: 1,
                jastrow: 1,
                train_sigma: false,
            };
            let wf = Wavefunction {
                rbm: Rbm {
                    sigma,
                    form: Form::Direct,
                },
                jastrow: Some(Jastrow::new(2, dims, None, PairForm::Pade)),
                slater: None,
                layout,
            };
            let params = Params::initial(layout, 0.0, 1, &[beta], sigma);
            for x in [
                [0.3, -0.2, 0.9, 0.5, 0.1, -0.4],
                [1.5, 0.0, -0.7, 0.2, -1.1, 0.6],
            ] {
                let x = &x[..2 * dims];
                let (r1, r2) = (&x[..dims], &x[dims..]);
                let sq = |v: &[f64]| v.iter().map(|t| t * t).sum::<f64>();
                let diff: Vec<f64> = r1.iter().zip(r2).map(|(p, q)| p - q).collect();
                let r = sq(&diff).sqrt();
                let s2 = sigma * sigma;
                let up = a / (1.0 + beta * r).powi(2);
                let upp = -2.0 * a * beta / (1.0 + beta * r).powi(3);
                let d = dims as f64;
                let gauss = 2.0 * d / (2.0 * s2) - (sq(r1) + sq(r2)) / (2.0 * s2 * s2);
                let expected = gauss + 0.5 * omega * omega * (sq(r1) + sq(r2)) + 1.0 / r
                    - (upp + (d - 1.0) * up / r + up * up)
                    + up * r / s2;
                let mut o = vec![0.0; layout.len()];
                let el = wf.local_energy(&sys, &params, x, &mut o);
                assert!((el - expected).abs() < 1e-12, "{dims}D: {el} vs {expected}");
            }
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
