//! The Padé-Jastrow factor for lanes: `Jastrow` (src/physics/jastrow.rs) with this call's
//! beta, the same operations in the same order.

use super::simd::V;
use crate::physics::Jastrow;

/// The Padé-Jastrow factor with this call's beta, for lanes (`Jastrow`, same operations in
/// the same order).
pub struct LaneJastrow<'a> {
    j: &'a Jastrow,
    beta: f64,
    /// Where d ln psi / d beta goes in O.
    pub o_beta: usize,
}

impl<'a> LaneJastrow<'a> {
    pub fn new(j: &'a Jastrow, beta: f64, o_beta: usize) -> Self {
        Self { j, beta, o_beta }
    }

    /// (u, u', u'') of the Padé form a r / (1 + beta r) (`jastrow::pade`).
    #[inline(always)]
    fn pade(&self, a: f64, r: V) -> (V, V, V) {
        let inv = 1.0 / (1.0 + self.beta * r);
        let u1 = a * inv * inv;
        (a * r * inv, u1, -2.0 * self.beta * u1 * inv)
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
            let a = self.j.cusp(k, j);
            change += self.pade(a, between(rk, rj)).0 - self.pade(a, between(old, rj)).0;
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
            let scale = self.pade(self.j.cusp(k, j), r).1 / r;
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
                sum += self.pade(self.j.cusp(p, q), self.distance(x, p, q)).0;
            }
        }
        sum
    }

    /// Adds grad ln J into `grad`; returns the Laplacian of ln J and d ln J / d beta
    /// (`Jastrow::measure`).
    #[inline(always)]
    pub fn measure(&self, x: &[V], grad: &mut [V]) -> (V, V) {
        let dims = self.j.dims;
        let (mut laplacian, mut d_beta) = (V::ZERO, V::ZERO);
        for p in 0..self.j.particles {
            for q in p + 1..self.j.particles {
                let r = self.distance(x, p, q);
                let a = self.j.cusp(p, q);
                let (_, u1, u2) = self.pade(a, r);
                for k in 0..dims {
                    let g = u1 * (x[p * dims + k] - x[q * dims + k]) / r;
                    grad[p * dims + k] += g;
                    grad[q * dims + k] = grad[q * dims + k] - g;
                }
                laplacian += 2.0 * (u2 + (dims as f64 - 1.0) * u1 / r);
                let t = r / (1.0 + self.beta * r);
                d_beta = d_beta - a * t * t;
            }
        }
        (laplacian, d_beta)
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
