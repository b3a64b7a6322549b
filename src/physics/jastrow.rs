//! The Jastrow factor J = exp( sum_{i<j} u_ij(r_ij) ) in f64: ln J, its coordinate
//! derivatives and its log-derivatives. Two pair functions share the pair loops: the
//! Padé form u = a_ij r / (1 + beta r), whose cusp a_ij makes E_L finite where two particles
//! meet, and the simple form u = beta_ij r with one beta per kind of spin pair. Formulas:
//! `docs/physics.md`; the WGSL twins are `shaders/jastrow.wgsl` with `shaders/pade.wgsl` or
//! `shaders/simple_pair.wgsl`, the lanes twin `src/engine/cpu/lanes/jastrow.rs`.

use serde::{Deserialize, Serialize};

use super::factor::{Factor, Moved, add};

/// The pair function u(r) of a Jastrow factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairForm {
    /// u = a_ij r / (1 + beta r): the cusp a_ij fixed by D and the spins, one beta.
    Pade,
    /// u = beta_ij r: one beta per kind of spin pair present (parallel, antiparallel).
    Simple,
}

/// The Padé pair function u(r) = a r / (1 + beta r) and its first two derivatives.
#[inline]
fn pade(a: f64, beta: f64, r: f64) -> (f64, f64, f64) {
    let inv = 1.0 / (1.0 + beta * r);
    let u1 = a * inv * inv;
    (a * r * inv, u1, -2.0 * beta * u1 * inv)
}

/// A Jastrow factor for P particles in D dimensions.
#[derive(Clone, Debug, PartialEq)]
pub struct Jastrow {
    pub particles: usize,
    pub dims: usize,
    /// Particles 0..up have spin up, the others spin down (fermions); for distinguishable
    /// particles every pair is of one kind, with the cusp `a_opposite`.
    pub up: usize,
    /// Cusp of a pair with parallel spins, 1/(D+1).
    pub a_same: f64,
    /// Cusp of a pair with antiparallel spins (and of distinguishable particles), 1/(D-1).
    pub a_opposite: f64,
    pub form: PairForm,
}

impl Jastrow {
    /// The factor for fermions with `up` particles of spin up (`None`: distinguishable
    /// particles, or the two-electron singlet, where every pair is antiparallel). Needs
    /// D >= 2.
    pub fn new(particles: usize, dims: usize, up: Option<usize>, form: PairForm) -> Self {
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
            form,
        }
    }

    /// The cusp a_ij of the pair (i, j).
    #[inline]
    pub fn cusp(&self, i: usize, j: usize) -> f64 {
        if self.same_kind(i, j) {
            self.a_same
        } else {
            self.a_opposite
        }
    }

    #[inline]
    fn same_kind(&self, i: usize, j: usize) -> bool {
        (i < self.up) == (j < self.up)
    }

    /// Whether pairs of each kind exist: (parallel, antiparallel).
    fn kinds(&self) -> (bool, bool) {
        let down = self.particles - self.up;
        let parallel = self.up >= 2 || down >= 2;
        (parallel, self.up > 0 && down > 0)
    }

    /// The number of variational parameters: Padé's beta, or the simple form's betas.
    pub fn parameters(&self) -> usize {
        match self.form {
            PairForm::Pade => 1,
            PairForm::Simple => {
                let (parallel, antiparallel) = self.kinds();
                (parallel as usize + antiparallel as usize).max(1)
            }
        }
    }

    /// The index among the parameters of the pair (i, j)'s beta: 0 for Padé's one beta;
    /// for the simple form, parallel pairs' beta first when both kinds exist.
    #[inline]
    pub fn slot(&self, i: usize, j: usize) -> usize {
        match self.form {
            PairForm::Pade => 0,
            PairForm::Simple => (self.parameters() == 2 && !self.same_kind(i, j)) as usize,
        }
    }

    /// Starting parameters: Padé's beta as given, the simple form's betas at the cusps
    /// (exp(a r) meets the cusp condition).
    pub fn initial(&self, beta: f64) -> Vec<f64> {
        match self.form {
            PairForm::Pade => vec![beta],
            PairForm::Simple => {
                let mut out = vec![0.0; self.parameters()];
                for i in 0..self.particles {
                    for j in i + 1..self.particles {
                        out[self.slot(i, j)] = self.cusp(i, j);
                    }
                }
                out
            }
        }
    }

    /// Moves the parameters back into their domain after an update: Padé's beta >= 0 (a
    /// negative beta puts a pole at r = -1/beta); any simple beta is allowed.
    pub fn keep_in_domain(&self, theta: &mut [f64]) {
        if self.form == PairForm::Pade {
            theta[0] = theta[0].max(0.0);
        }
    }

    /// (u, u', u'') of the pair (i, j) at distance r, with the parameters `theta`.
    #[inline]
    pub fn pair(&self, theta: &[f64], i: usize, j: usize, r: f64) -> (f64, f64, f64) {
        match self.form {
            PairForm::Pade => pade(self.cusp(i, j), theta[0], r),
            PairForm::Simple => {
                let b = theta[self.slot(i, j)];
                (b * r, b, 0.0)
            }
        }
    }

    /// Adds d u_ij / d theta at distance r into `o` (the factor's log-derivatives).
    #[inline]
    fn add_pair_derivatives(&self, theta: &[f64], i: usize, j: usize, r: f64, o: &mut [f64]) {
        match self.form {
            PairForm::Pade => {
                let t = r / (1.0 + theta[0] * r);
                o[0] -= self.cusp(i, j) * t * t;
            }
            PairForm::Simple => o[self.slot(i, j)] += r,
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
    pub fn ln_j(&self, theta: &[f64], x: &[f64]) -> f64 {
        let mut sum = 0.0;
        for i in 0..self.particles {
            for j in i + 1..self.particles {
                let r = self.distance(self.particle(x, i), self.particle(x, j));
                sum += self.pair(theta, i, j, r).0;
            }
        }
        sum
    }

    /// ln J(y) - ln J(x) when y differs from x only in particle k's position `rk`: O(P).
    pub fn ln_j_change(&self, theta: &[f64], x: &[f64], k: usize, rk: &[f64]) -> f64 {
        let old = self.particle(x, k);
        let mut change = 0.0;
        for j in (0..self.particles).filter(|&j| j != k) {
            let rj = self.particle(x, j);
            change += self.pair(theta, k, j, self.distance(rk, rj)).0
                - self.pair(theta, k, j, self.distance(old, rj)).0;
        }
        change
    }

    /// grad_k ln J = sum_{j != k} u'(r_kj) (r_k - r_j) / r_kj at x, with particle k at `rk`
    /// (its position in x is ignored), into `out` (D values).
    pub fn particle_gradient(
        &self,
        theta: &[f64],
        x: &[f64],
        k: usize,
        rk: &[f64],
        out: &mut [f64],
    ) {
        out.fill(0.0);
        for j in (0..self.particles).filter(|&j| j != k) {
            let rj = self.particle(x, j);
            let r = self.distance(rk, rj);
            let scale = self.pair(theta, k, j, r).1 / r;
            for d in 0..self.dims {
                out[d] += scale * (rk[d] - rj[d]);
            }
        }
    }

    /// What a measurement needs, in one pass over the pairs: adds grad ln J to `grad` (per
    /// coordinate) and d ln J / d theta to `o` (the factor's log-derivatives, zero on
    /// entry), and returns the sum over coordinates of d^2 ln J / dx^2. Per particle,
    /// lap_k ln J = sum_{j != k} [u''(r_kj) + (D - 1) u'(r_kj) / r_kj].
    pub fn measure(&self, theta: &[f64], x: &[f64], grad: &mut [f64], o: &mut [f64]) -> f64 {
        let dims = self.dims;
        let mut laplacian = 0.0;
        for i in 0..self.particles {
            for j in i + 1..self.particles {
                let r = self.distance(self.particle(x, i), self.particle(x, j));
                let (_, u1, u2) = self.pair(theta, i, j, r);
                for d in 0..dims {
                    let g = u1 * (x[i * dims + d] - x[j * dims + d]) / r;
                    grad[i * dims + d] += g;
                    grad[j * dims + d] -= g;
                }
                // Both particles of the pair get the same Laplacian term.
                laplacian += 2.0 * (u2 + (dims as f64 - 1.0) * u1 / r);
                self.add_pair_derivatives(theta, i, j, r, o);
            }
        }
        laplacian
    }
}

/// The Jastrow factor's cache: ln J at x and at the proposal.
pub struct JastrowFactor<'a> {
    j: &'a Jastrow,
    /// The factor's parameters, and where they sit in theta.
    theta: &'a [f64],
    range: std::ops::Range<usize>,
    ln_j: f64,
    ln_j_y: f64,
    /// Scratch: one particle's gradient, and the unused log-derivatives of a whole drift.
    extra: [f64; 3],
    o: Vec<f64>,
}

impl<'a> JastrowFactor<'a> {
    pub fn new(j: &'a Jastrow, params: &'a super::Params) -> Self {
        let range = params.layout().jastrow_range();
        Self {
            j,
            theta: &params.theta()[range.clone()],
            o: vec![0.0; range.len()],
            range,
            ln_j: 0.0,
            ln_j_y: 0.0,
            extra: [0.0; 3],
        }
    }
}

impl Factor for JastrowFactor<'_> {
    fn refresh(&mut self, x: &[f64]) -> f64 {
        self.ln_j = self.j.ln_j(self.theta, x);
        self.ln_j
    }

    fn propose(&mut self, x: &[f64], y: &[f64], moved: Moved) -> f64 {
        let dims = self.j.dims;
        self.ln_j_y = match moved {
            Moved::All => self.j.ln_j(self.theta, y),
            Moved::Particle(k) => {
                let rk = &y[k * dims..(k + 1) * dims];
                self.ln_j + self.j.ln_j_change(self.theta, x, k, rk)
            }
        };
        self.ln_j_y
    }

    fn accept(&mut self, _moved: Moved) {
        self.ln_j = self.ln_j_y;
    }

    fn add_gradient(&mut self, x: &[f64], y: &[f64], at_y: bool, moved: Moved, out: &mut [f64]) {
        let pos = if at_y { y } else { x };
        match moved {
            Moved::All => {
                self.o.fill(0.0);
                self.j.measure(self.theta, pos, out, &mut self.o);
            }
            Moved::Particle(k) => {
                let range = moved.range(x.len(), self.j.dims);
                let extra = &mut self.extra[..self.j.dims];
                // The other particles sit at x whether or not k has moved.
                self.j
                    .particle_gradient(self.theta, x, k, &pos[range.clone()], extra);
                add(&mut out[range], extra);
            }
        }
    }

    fn measure(&mut self, x: &[f64], grad: &mut [f64], o: &mut [f64]) -> f64 {
        let o = &mut o[self.range.clone()];
        o.fill(0.0);
        self.j.measure(self.theta, x, grad, o)
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
        let j = Jastrow::new(4, 2, Some(2), PairForm::Pade);
        assert_eq!((j.cusp(0, 1), j.cusp(2, 3)), (1.0 / 3.0, 1.0 / 3.0));
        assert_eq!((j.cusp(0, 2), j.cusp(3, 1)), (1.0, 1.0));
        let singlet = Jastrow::new(2, 3, None, PairForm::Pade);
        assert_eq!(singlet.cusp(0, 1), 0.5);
        let fermions = Jastrow::new(2, 3, Some(1), PairForm::Pade);
        assert_eq!(fermions.cusp(0, 1), 0.5);
        assert_eq!(Jastrow::new(4, 3, Some(2), PairForm::Pade).cusp(0, 1), 0.25);
    }

    /// The simple form has one beta per kind of spin pair present, starting at its cusp.
    #[test]
    fn simple_betas_follow_the_pair_kinds() {
        let simple = |p, up| Jastrow::new(p, 2, up, PairForm::Simple);
        assert_eq!(simple(2, None).initial(0.5), vec![1.0]);
        assert_eq!(simple(3, None).initial(0.5), vec![1.0]);
        assert_eq!(simple(2, Some(1)).initial(0.5), vec![1.0]);
        let six = simple(6, Some(3));
        assert_eq!(six.initial(0.5), vec![1.0 / 3.0, 1.0]);
        assert_eq!((six.slot(0, 2), six.slot(3, 5), six.slot(2, 3)), (0, 0, 1));
        let pade = Jastrow::new(6, 2, Some(3), PairForm::Pade);
        assert_eq!((pade.parameters(), pade.initial(0.5)), (1, vec![0.5]));
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for form in [PairForm::Pade, PairForm::Simple] {
            for (particles, dims, up) in
                [(2, 2, None), (3, 3, None), (4, 2, Some(2)), (6, 3, Some(3))]
            {
                check_derivatives(&Jastrow::new(particles, dims, up, form));
            }
        }
    }

    fn check_derivatives(jas: &Jastrow) {
        let (particles, dims) = (jas.particles, jas.dims);
        let theta: Vec<f64> = (0..jas.parameters())
            .map(|i| 0.7 - 0.3 * i as f64)
            .collect();
        let x = positions(particles, dims, particles as u32);
        let m = x.len();
        let mut grad = vec![0.0; m];
        let mut o = vec![0.0; theta.len()];
        let lap = jas.measure(&theta, &x, &mut grad, &mut o);
        let f = |y: &[f64]| jas.ln_j(&theta, y);
        let label = format!("{:?} P{particles} D{dims}", jas.form);
        let mut fd_lap = 0.0;
        for i in 0..m {
            let (mut up_, mut down) = (x.clone(), x.clone());
            up_[i] += 1e-5;
            down[i] -= 1e-5;
            let fd = (f(&up_) - f(&down)) / 2e-5;
            assert!(
                (fd - grad[i]).abs() < 1e-8,
                "{label} d/dx_{i}: {fd} vs {}",
                grad[i]
            );
            up_[i] += 1e-4 - 1e-5;
            down[i] -= 1e-4 - 1e-5;
            fd_lap += (f(&up_) - 2.0 * f(&x) + f(&down)) / 1e-8;
        }
        assert!(
            (fd_lap - lap).abs() < 1e-4,
            "{label} laplacian {fd_lap} vs {lap}"
        );
        for (i, &oi) in o.iter().enumerate() {
            let at = |h: f64| {
                let mut t = theta.clone();
                t[i] += h;
                jas.ln_j(&t, &x)
            };
            let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
            assert!((fd - oi).abs() < 1e-8, "{label} O_{i}: {fd} vs {oi}");
        }
        // One particle: the change of ln J and its gradient.
        let k = particles - 1;
        let rk: Vec<f64> = (0..dims).map(|d| x[k * dims + d] + 0.3).collect();
        let mut y = x.clone();
        y[k * dims..].copy_from_slice(&rk);
        let change = jas.ln_j_change(&theta, &x, k, &rk);
        assert!((change - (f(&y) - f(&x))).abs() < 1e-12, "{label}");
        let mut gk = vec![0.0; dims];
        jas.particle_gradient(&theta, &x, k, &x[k * dims..], &mut gk);
        for d in 0..dims {
            assert!((gk[d] - grad[k * dims + d]).abs() < 1e-12, "{label}");
        }
    }
}
