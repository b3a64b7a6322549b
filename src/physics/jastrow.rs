//! The Padé-Jastrow factor J = exp( sum_{i<j} a_ij r_ij / (1 + beta r_ij) ) in f64: ln J, its
//! coordinate derivatives and d ln J / d beta. The cusp a_ij makes E_L finite where two
//! particles meet. Formulas: `docs/physics.md`; the WGSL twin is `shaders/jastrow.wgsl`.

/// The pair function u(r) = a r / (1 + beta r) and its first two derivatives.
#[inline]
fn pade(a: f64, beta: f64, r: f64) -> (f64, f64, f64) {
    let inv = 1.0 / (1.0 + beta * r);
    let u1 = a * inv * inv;
    (a * r * inv, u1, -2.0 * beta * u1 * inv)
}

/// Cusps of a Padé-Jastrow factor for P particles in D dimensions.
#[derive(Clone, Debug, PartialEq)]
pub struct Jastrow {
    pub particles: usize,
    pub dims: usize,
    /// Particles 0..up have spin up, the others spin down (fermions); for distinguishable
    /// particles every pair takes `a_opposite`.
    pub up: usize,
    /// Cusp of a pair with parallel spins, 1/(D+1).
    pub a_same: f64,
    /// Cusp of a pair with antiparallel spins (and of distinguishable particles), 1/(D-1).
    pub a_opposite: f64,
}

impl Jastrow {
    /// Cusps for fermions with `up` particles of spin up (`None`: distinguishable particles,
    /// or the two-electron singlet, where every pair is antiparallel). Needs D >= 2.
    pub fn new(particles: usize, dims: usize, up: Option<usize>) -> Self {
        let d = dims as f64;
        let a_opposite = 1.0 / (d - 1.0);
        Self {
            particles,
            dims,
            up: up.unwrap_or(particles),
            a_same: if up.is_some() {
                1.0 / (d + 1.0)
            } else {
                a_opposite
            },
            a_opposite,
        }
    }

    /// The cusp a_ij of the pair (i, j).
    #[inline]
    pub fn cusp(&self, i: usize, j: usize) -> f64 {
        if (i < self.up) == (j < self.up) {
            self.a_same
        } else {
            self.a_opposite
        }
    }

    fn distance(&self, ri: &[f64], rj: &[f64]) -> f64 {
        ri.iter()
            .zip(rj)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt()
    }

    fn particle<'x>(&self, x: &'x [f64], k: usize) -> &'x [f64] {
        &x[k * self.dims..(k + 1) * self.dims]
    }

    /// ln J at x.
    pub fn ln_j(&self, beta: f64, x: &[f64]) -> f64 {
        let mut sum = 0.0;
        for i in 0..self.particles {
            for j in i + 1..self.particles {
                let r = self.distance(self.particle(x, i), self.particle(x, j));
                sum += pade(self.cusp(i, j), beta, r).0;
            }
        }
        sum
    }

    /// ln J(y) - ln J(x) when y differs from x only in particle k's position `rk`: O(P).
    pub fn ln_j_change(&self, beta: f64, x: &[f64], k: usize, rk: &[f64]) -> f64 {
        let old = self.particle(x, k);
        let mut change = 0.0;
        for j in (0..self.particles).filter(|&j| j != k) {
            let rj = self.particle(x, j);
            let a = self.cusp(k, j);
            change +=
                pade(a, beta, self.distance(rk, rj)).0 - pade(a, beta, self.distance(old, rj)).0;
        }
        change
    }

    /// grad_k ln J = sum_{j != k} u'(r_kj) (r_k - r_j) / r_kj at x, with particle k at `rk`
    /// (its position in x is ignored), into `out` (D values).
    pub fn particle_gradient(&self, beta: f64, x: &[f64], k: usize, rk: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for j in (0..self.particles).filter(|&j| j != k) {
            let rj = self.particle(x, j);
            let r = self.distance(rk, rj);
            let scale = pade(self.cusp(k, j), beta, r).1 / r;
            for d in 0..self.dims {
                out[d] += scale * (rk[d] - rj[d]);
            }
        }
    }

    /// What a measurement needs, in one pass over the pairs: adds grad ln J to `grad` (per
    /// coordinate) and returns (sum over coordinates of d^2 ln J / dx^2, d ln J / d beta).
    /// Per particle, lap_k ln J = sum_{j != k} [u''(r_kj) + (D - 1) u'(r_kj) / r_kj].
    pub fn measure(&self, beta: f64, x: &[f64], grad: &mut [f64]) -> (f64, f64) {
        let dims = self.dims;
        let (mut laplacian, mut d_beta) = (0.0, 0.0);
        for i in 0..self.particles {
            for j in i + 1..self.particles {
                let r = self.distance(self.particle(x, i), self.particle(x, j));
                let a = self.cusp(i, j);
                let (_, u1, u2) = pade(a, beta, r);
                for d in 0..dims {
                    let g = u1 * (x[i * dims + d] - x[j * dims + d]) / r;
                    grad[i * dims + d] += g;
                    grad[j * dims + d] -= g;
                }
                // Both particles of the pair get the same Laplacian term.
                laplacian += 2.0 * (u2 + (dims as f64 - 1.0) * u1 / r);
                let t = r / (1.0 + beta * r);
                d_beta -= a * t * t;
            }
        }
        (laplacian, d_beta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(particles: usize, dims: usize, seed: u32) -> Vec<f64> {
        let mut stream = crate::rng::StepStream::new(5, seed, 1);
        (0..particles * dims).map(|_| stream.normal()).collect()
    }

    #[test]
    fn cusps_follow_the_spins_and_the_dimension() {
        let j = Jastrow::new(4, 2, Some(2));
        assert_eq!((j.cusp(0, 1), j.cusp(2, 3)), (1.0 / 3.0, 1.0 / 3.0));
        assert_eq!((j.cusp(0, 2), j.cusp(3, 1)), (1.0, 1.0));
        let singlet = Jastrow::new(2, 3, None);
        assert_eq!(singlet.cusp(0, 1), 0.5);
        let fermions = Jastrow::new(2, 3, Some(1));
        assert_eq!(fermions.cusp(0, 1), 0.5);
        assert_eq!(Jastrow::new(4, 3, Some(2)).cusp(0, 1), 0.25);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for (particles, dims, up) in [(2, 2, None), (3, 3, None), (4, 2, Some(2)), (6, 3, Some(3))]
        {
            let jas = Jastrow::new(particles, dims, up);
            let beta = 0.7;
            let x = positions(particles, dims, particles as u32);
            let m = x.len();
            let mut grad = vec![0.0; m];
            let (lap, d_beta) = jas.measure(beta, &x, &mut grad);
            let f = |y: &[f64]| jas.ln_j(beta, y);
            let mut fd_lap = 0.0;
            for i in 0..m {
                let (mut up_, mut down) = (x.clone(), x.clone());
                up_[i] += 1e-5;
                down[i] -= 1e-5;
                let fd = (f(&up_) - f(&down)) / 2e-5;
                assert!((fd - grad[i]).abs() < 1e-8, "d/dx_{i}: {fd} vs {}", grad[i]);
                up_[i] += 1e-4 - 1e-5;
                down[i] -= 1e-4 - 1e-5;
                fd_lap += (f(&up_) - 2.0 * f(&x) + f(&down)) / 1e-8;
            }
            assert!((fd_lap - lap).abs() < 1e-4, "laplacian {fd_lap} vs {lap}");
            let fd_beta = (jas.ln_j(beta + 1e-6, &x) - jas.ln_j(beta - 1e-6, &x)) / 2e-6;
            assert!((fd_beta - d_beta).abs() < 1e-8, "{fd_beta} vs {d_beta}");
            // One particle: the change of ln J and its gradient.
            let k = particles - 1;
            let rk: Vec<f64> = (0..dims).map(|d| x[k * dims + d] + 0.3).collect();
            let mut y = x.clone();
            y[k * dims..].copy_from_slice(&rk);
            let change = jas.ln_j_change(beta, &x, k, &rk);
            assert!((change - (f(&y) - f(&x))).abs() < 1e-12);
            let mut gk = vec![0.0; dims];
            jas.particle_gradient(beta, &x, k, &x[k * dims..], &mut gk);
            for d in 0..dims {
                assert!((gk[d] - grad[k * dims + d]).abs() < 1e-12);
            }
        }
    }
}
