//! The Jastrow factor for lanes: `Jastrow` (src/physics/jastrow.rs) with this call's
//! parameters, the same operations in the same order, for either pair function.

use std::ops::Range;

use super::simd::V;
use crate::physics::{Jastrow, PairForm};

/// Most parameters a Jastrow factor has (the simple form's two betas).
const MAX_PARAMETERS: usize = 2;

/// The Jastrow factor with this call's parameters, for lanes (`Jastrow`, same operations in
/// the same order).
pub struct LaneJastrow<'a> {
    j: &'a Jastrow,
    theta: &'a [f64],
    /// Where the factor's log-derivatives go in O.
    pub o_range: Range<usize>,
}

impl<'a> LaneJastrow<'a> {
    pub fn new(j: &'a Jastrow, theta: &'a [f64], o_range: Range<usize>) -> Self {
        assert!(theta.len() <= MAX_PARAMETERS);
        Self { j, theta, o_range }
    }

    /// (u, u', u'') of the pair (p, q) at distance r (`Jastrow::pair`).
    #[inline(always)]
    fn pair(&self, p: usize, q: usize, r: V) -> (V, V, V) {
        match self.j.form {
            PairForm::Pade => {
                let (a, beta) = (self.j.cusp(p, q), self.theta[0]);
                let inv = 1.0 / (1.0 + beta * r);
                let u1 = a * inv * inv;
                (a * r * inv, u1, -2.0 * beta * u1 * inv)
            }
            PairForm::Simple => {
                let b = self.theta[self.j.slot(p, q)];
                (b * r, V::splat(b), V::ZERO)
            }
        }
    }

    /// Adds d u_pq / d theta at distance r into `o` (`Jastrow::add_pair_derivatives`).
    #[inline(always)]
    fn add_pair_derivatives(&self, p: usize, q: usize, r: V, o: &mut [V]) {
        match self.j.form {
            PairForm::Pade => {
                let t = r / (1.0 + self.theta[0] * r);
                o[0] = o[0] - self.j.cusp(p, q) * t * t;
            }
            PairForm::Simple => o[self.j.slot(p, q)] += r,
        }
    }

    /// |r_p - r_q|.
    #[inline(always)]
    fn distance(&self, x: &[V], p: usize, q: usize) -> V {
        between(self.particle(x, p), self.particle(x, q))
    }

    #[inline(always)]
    fn particle<'x>(&self, x: &'x [V], k: usize) -> &'x [V] {
        &x[k * self.j.dims..(k + 1) * self.j.dims]
    }

    /// ln J(y) - ln J(x) when y differs from x only in particle k's position `rk`
    /// (`Jastrow::ln_j_change`).
    #[inline(always)]
    pub fn ln_j_change(&self, x: &[V], k: usize, rk: &[V]) -> V {
        let old = self.particle(x, k);
        let mut change = V::ZERO;
        for j in (0..self.j.particles).filter(|&j| j != k) {
            let rj = self.particle(x, j);
            change += self.pair(k, j, between(rk, rj)).0 - self.pair(k, j, between(old, rj)).0;
        }
        change
    }

    /// grad_k ln J at x with particle k at `rk` (its position in x is ignored), into `out`
    /// (`Jastrow::particle_gradient`).
    #[inline(always)]
    pub fn particle_gradient(&self, x: &[V], k: usize, rk: &[V], out: &mut [V]) {
        out.fill(V::ZERO);
        for j in (0..self.j.particles).filter(|&j| j != k) {
            let rj = self.particle(x, j);
            let r = between(rk, rj);
            let scale = self.pair(k, j, r).1 / r;
            for (d, o) in out.iter_mut().enumerate() {
                *o += scale * (rk[d] - rj[d]);
            }
        }
    }

    #[inline(always)]
    pub fn ln_j(&self, x: &[V]) -> V {
        let mut sum = V::ZERO;
        for p in 0..self.j.particles {
            for q in p + 1..self.j.particles {
                sum += self.pair(p, q, self.distance(x, p, q)).0;
            }
        }
        sum
    }

    /// Adds grad ln J into `grad` and d ln J / d theta into `o` (zero on entry); returns
    /// the Laplacian of ln J (`Jastrow::measure`).
    #[inline(always)]
    pub fn measure(&self, x: &[V], grad: &mut [V], o: &mut [V]) -> V {
        let dims = self.j.dims;
        let mut laplacian = V::ZERO;
        for p in 0..self.j.particles {
            for q in p + 1..self.j.particles {
                let r = self.distance(x, p, q);
                let (_, u1, u2) = self.pair(p, q, r);
                for k in 0..dims {
                    let g = u1 * (x[p * dims + k] - x[q * dims + k]) / r;
                    grad[p * dims + k] += g;
                    grad[q * dims + k] = grad[q * dims + k] - g;
                }
                laplacian += 2.0 * (u2 + (dims as f64 - 1.0) * u1 / r);
                self.add_pair_derivatives(p, q, r, o);
            }
        }
        laplacian
    }

    /// Adds grad ln J into `grad` (the whole drift; the log-derivatives are dropped).
    #[inline(always)]
    pub fn add_gradient(&self, x: &[V], grad: &mut [V]) {
        let mut o = [V::ZERO; MAX_PARAMETERS];
        self.measure(x, grad, &mut o);
    }
}

/// |ri - rj| (`Jastrow::distance`).
#[inline(always)]
fn between(ri: &[V], rj: &[V]) -> V {
    let mut r2 = V::ZERO;
    for (&a, &b) in ri.iter().zip(rj) {
        let diff = a - b;
        r2 += diff * diff;
    }
    r2.sqrt()
}
