//! The Slater determinants of `L` walkers: `SlaterState` (src/physics/slater.rs) lane by
//! lane, with the same operations in the same order. The ratio of a single-particle move,
//! the Sherman-Morrison update, the drift and the Laplacian run in lanes; the inverses are
//! built from scratch through the scalar `SlaterState`, one lane at a time: Gauss-Jordan's
//! pivots differ per walker, and a refresh comes once every `REFRESH_EVERY` steps.

// Lane loops index several arrays at one lane: the form that vectorises cleanly.
#![allow(clippy::needless_range_loop)]

use super::simd::{L, Mask, V, ln};
use crate::physics::{Slater, SlaterState};

/// The determinants' state of a lane group (`SlaterState`).
pub struct LaneDets {
    /// Inverse of each block, orbital-major: dinv[b][l * n + i].
    dinv: [Vec<V>; 2],
    /// ln |det| of each block, and the sign of det_up det_down.
    ln_det: [V; 2],
    sign: V,
    /// Orbital values at a proposed position, and the determinant ratio of that move.
    phi_new: Vec<V>,
    ratio: V,
    /// Scratch: Hermite values per dimension (degree + 1 each), orbital gradients and
    /// Laplacians, Sherman-Morrison's row.
    hermite: Vec<V>,
    grad: Vec<V>,
    lap: Vec<V>,
    c: Vec<V>,
    /// Highest Hermite degree of the orbitals.
    degree: usize,
    /// One walker's state and position, for the refresh.
    scalar: SlaterState,
    x: Vec<f64>,
}

impl LaneDets {
    pub fn new(slater: &Slater) -> Self {
        let (n, dims) = (slater.n, slater.dims);
        let degree = slater.orbitals.iter().flatten().copied().max().unwrap_or(0);
        let zeros = |len| vec![V::ZERO; len];
        Self {
            dinv: [zeros(n * n), zeros(n * n)],
            ln_det: [V::ZERO; 2],
            sign: V::splat(1.0),
            phi_new: zeros(n),
            ratio: V::splat(1.0),
            hermite: zeros(dims * (degree + 1)),
            grad: zeros(n * dims),
            lap: zeros(n),
            c: zeros(n),
            degree,
            scalar: SlaterState::new(slater),
            x: vec![0.0; 2 * n * dims],
        }
    }

    /// Host bytes of a group's state for `slater` (`lanes::thread_bytes`).
    pub fn bytes(slater: &Slater) -> u64 {
        let (n, dims) = (slater.n as u64, slater.dims as u64);
        let degree = slater.orbitals.iter().flatten().copied().max().unwrap_or(0) as u64;
        (2 * n * n + 3 + n + dims * (degree + 1) + n * dims + 2 * n) * L as u64 * 8
    }

    /// ln |det_up det_down| (`SlaterState::ln_abs`).
    #[inline(always)]
    pub fn ln_abs(&self) -> V {
        self.ln_det[0] + self.ln_det[1]
    }

    /// The sign of det_up det_down (`SlaterState::sign`).
    #[inline(always)]
    pub fn sign(&self) -> V {
        self.sign
    }

    /// The ratio of the last `propose`.
    #[inline(always)]
    pub fn ratio(&self) -> V {
        self.ratio
    }

    /// Takes the state of `other` in the lanes of `lanes` (an accepted all-coordinate move).
    #[inline(always)]
    pub fn take(&mut self, other: &LaneDets, lanes: Mask) {
        for (to, from) in self.dinv.iter_mut().zip(&other.dinv) {
            for (t, &f) in to.iter_mut().zip(from) {
                *t = lanes.select(f, *t);
            }
        }
        for (t, &f) in self.ln_det.iter_mut().zip(&other.ln_det) {
            *t = lanes.select(f, *t);
        }
        self.sign = lanes.select(other.sign, self.sign);
    }

    /// Builds the lanes in `lanes` from scratch at x, one walker at a time through
    /// `SlaterState::refresh`; returns ln |det_up det_down|.
    pub fn refresh(&mut self, slater: &Slater, x: &[V], lanes: Mask) -> V {
        for l in (0..L).filter(|&l| lanes.get(l)) {
            for (xc, v) in self.x.iter_mut().zip(x) {
                *xc = v.0[l];
            }
            self.scalar.refresh(slater, &self.x);
            for b in 0..2 {
                for (d, &s) in self.dinv[b].iter_mut().zip(&self.scalar.dinv[b]) {
                    d.0[l] = s;
                }
                self.ln_det[b].0[l] = self.scalar.ln_det[b];
            }
            self.sign.0[l] = self.scalar.sign();
        }
        self.ln_abs()
    }

    /// `hermite` at xi = sqrt(omega) r_d for every dimension (`Slater::table`).
    #[inline(always)]
    fn table(&mut self, slater: &Slater, r: &[V]) {
        let sqrt_omega = slater.omega.sqrt();
        let width = self.degree + 1;
        for d in 0..slater.dims {
            let h = &mut self.hermite[d * width..(d + 1) * width];
            let xi = sqrt_omega * r[d];
            // `physics::slater::hermite`.
            h[0] = V::splat(1.0);
            if self.degree >= 1 {
                h[1] = 2.0 * xi;
            }
            for k in 1..self.degree {
                h[k + 1] = 2.0 * xi * h[k] - 2.0 * k as f64 * h[k - 1];
            }
        }
    }

    /// H_k at dimension d of the last `table`.
    #[inline(always)]
    fn h(&self, d: usize, k: usize) -> V {
        self.hermite[d * (self.degree + 1) + k]
    }

    /// phi_l(r) for every orbital l, into `phi_new` (`Slater::orbital_values`).
    #[inline(always)]
    fn orbital_values(&mut self, slater: &Slater, r: &[V]) {
        self.table(slater, r);
        for (l, q) in slater.orbitals.iter().enumerate() {
            let mut value = V::splat(1.0);
            for d in 0..slater.dims {
                value = value * self.h(d, q[d]);
            }
            self.phi_new[l] = value;
        }
    }

    /// grad phi_l(r) into `grad` (D per orbital) and lap phi_l(r) into `lap`, for every l
    /// (`Slater::orbital_derivatives`).
    #[inline(always)]
    fn orbital_derivatives(&mut self, slater: &Slater, r: &[V]) {
        self.table(slater, r);
        let (dims, omega) = (slater.dims, slater.omega);
        let sqrt_omega = omega.sqrt();
        for (l, q) in slater.orbitals.iter().enumerate() {
            let mut laplacian = V::ZERO;
            for d in 0..dims {
                // The product over the other dimensions.
                let mut rest = V::splat(1.0);
                for e in (0..dims).filter(|&e| e != d) {
                    rest = rest * self.h(e, q[e]);
                }
                let k = q[d];
                let first = match k {
                    0 => V::ZERO,
                    _ => 2.0 * k as f64 * self.h(d, k - 1),
                };
                let second = match k {
                    0 | 1 => V::ZERO,
                    _ => 4.0 * (k * (k - 1)) as f64 * self.h(d, k - 2),
                };
                self.grad[l * dims + d] = sqrt_omega * first * rest;
                laplacian += omega * second * rest;
            }
            self.lap[l] = laplacian;
        }
    }

    /// The ratio det'/det when particle k moves to `rk` (`SlaterState::propose`); keeps the
    /// orbital values for `accept`.
    #[inline(always)]
    pub fn propose(&mut self, slater: &Slater, k: usize, rk: &[V]) -> V {
        let (b, i) = slater.block_of(k);
        let n = slater.n;
        self.orbital_values(slater, rk);
        let dinv = &self.dinv[b];
        let mut ratio = V::ZERO;
        for l in 0..n {
            ratio += self.phi_new[l] * dinv[l * n + i];
        }
        self.ratio = ratio;
        ratio
    }

    /// Applies the proposed move of particle k in the lanes of `accept` (after `propose`):
    /// Sherman-Morrison (`SlaterState::accept`).
    #[inline(always)]
    pub fn accept(&mut self, slater: &Slater, k: usize, accept: Mask) {
        let (b, i) = slater.block_of(k);
        let n = slater.n;
        let r = self.ratio;
        let dinv = &mut self.dinv[b];
        // c_j = sum_l phi_l(r') Dinv_lj (c_i = R).
        for j in 0..n {
            let mut c = V::ZERO;
            for l in 0..n {
                c += self.phi_new[l] * dinv[l * n + j];
            }
            self.c[j] = c;
        }
        for l in 0..n {
            let column_i = dinv[l * n + i] / r;
            for j in 0..n {
                let updated = dinv[l * n + j] - column_i * self.c[j];
                dinv[l * n + j] = accept.select(updated, dinv[l * n + j]);
            }
            dinv[l * n + i] = accept.select(column_i, dinv[l * n + i]);
        }
        self.ln_det[b] = accept.select(self.ln_det[b] + ln(r.abs()), self.ln_det[b]);
        self.sign = accept.and(r.lt(V::ZERO)).select(-self.sign, self.sign);
    }

    /// grad_k ln|det| with particle k at `rk` into `out`: at the current position, or at the
    /// `proposed` one divided by the proposal's ratio, before `accept`
    /// (`SlaterState::particle_gradient`, whose ratio 1 at the current position changes
    /// nothing).
    #[inline(always)]
    pub fn particle_gradient(
        &mut self,
        slater: &Slater,
        k: usize,
        rk: &[V],
        proposed: bool,
        out: &mut [V],
    ) {
        let (b, i) = slater.block_of(k);
        let (n, dims) = (slater.n, slater.dims);
        self.orbital_derivatives(slater, rk);
        let dinv = &self.dinv[b];
        for (d, o) in out.iter_mut().enumerate().take(dims) {
            let mut g = V::ZERO;
            for l in 0..n {
                g += self.grad[l * dims + d] * dinv[l * n + i];
            }
            *o = match proposed {
                true => g / self.ratio,
                false => g,
            };
        }
    }

    /// Adds grad ln|det| to `grad` and returns the sum over coordinates of d^2 ln|det| / dx^2
    /// (`SlaterState::measure`).
    #[inline(always)]
    pub fn measure(&mut self, slater: &Slater, x: &[V], grad: &mut [V]) -> V {
        let (n, dims) = (slater.n, slater.dims);
        let mut laplacian = V::ZERO;
        for k in 0..2 * n {
            let (b, i) = slater.block_of(k);
            self.orbital_derivatives(slater, &x[k * dims..(k + 1) * dims]);
            let dinv = &self.dinv[b];
            let mut lap = V::ZERO;
            for l in 0..n {
                lap += self.lap[l] * dinv[l * n + i];
            }
            for d in 0..dims {
                let mut g = V::ZERO;
                for l in 0..n {
                    g += self.grad[l * dims + d] * dinv[l * n + i];
                }
                grad[k * dims + d] += g;
                lap = lap - g * g;
            }
            laplacian += lap;
        }
        laplacian
    }
}
