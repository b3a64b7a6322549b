//! Slater determinants of closed-shell fermions in f64: harmonic-oscillator orbitals as
//! Hermite products phi(r) = prod_d H_{n_d}(sqrt(omega) x_d) (the Gaussian comes from the
//! RBM), one determinant per spin block, its inverse kept per walker and updated by
//! Sherman-Morrison after a single-particle move. Formulas: `docs/physics.md`; the WGSL twin
//! is `shaders/slater.wgsl`.
//!
//! Particles 0..n have spin up, n..2n spin down. Block b's matrix is D_il = phi_l(r_{bn+i})
//! (particle i, orbital l); its inverse is stored orbital-major: `dinv[l * n + i]`.

use super::factor::{Factor, Moved, add};

/// Highest shell the orbital tables go to (Hermite degree), enough for every allowed count.
pub const MAX_SHELL: usize = 31;

/// The orbitals' quantum numbers (n_x, n_y, n_z) of shell `shell` in `dims` dimensions.
fn shell(dims: usize, shell: usize) -> Vec<[usize; 3]> {
    let mut out = Vec::new();
    for nx in (0..=shell).rev() {
        match dims {
            1 => {
                if nx == shell {
                    out.push([nx, 0, 0]);
                }
            }
            2 => out.push([nx, shell - nx, 0]),
            _ => {
                for ny in (0..=shell - nx).rev() {
                    out.push([nx, ny, shell - nx - ny]);
                }
            }
        }
    }
    out
}

/// Electron counts (both spins) of the closed shells in `dims` dimensions, up to `most`.
pub fn closed_shell_counts(dims: usize, most: usize) -> Vec<usize> {
    let mut counts = Vec::new();
    let mut filled = 0;
    for s in 0..=MAX_SHELL {
        filled += shell(dims, s).len();
        if 2 * filled > most {
            break;
        }
        counts.push(2 * filled);
    }
    counts
}

/// Orbitals filled shell by shell for `per_spin` electrons of one spin; `None` unless the
/// last shell is full.
pub fn closed_shell_orbitals(dims: usize, per_spin: usize) -> Option<Vec<[usize; 3]>> {
    let mut orbitals = Vec::new();
    for s in 0..=MAX_SHELL {
        if orbitals.len() >= per_spin {
            break;
        }
        orbitals.extend(shell(dims, s));
    }
    (orbitals.len() == per_spin).then_some(orbitals)
}

/// Physicists' Hermite polynomials H_0..H_{n} at xi, into `h[..=n]`.
pub(crate) fn hermite(xi: f64, n: usize, h: &mut [f64]) {
    h[0] = 1.0;
    if n >= 1 {
        h[1] = 2.0 * xi;
    }
    for k in 1..n {
        h[k + 1] = 2.0 * xi * h[k] - 2.0 * k as f64 * h[k - 1];
    }
}

/// The closed-shell Slater part: two spin blocks of `n` particles each.
#[derive(Clone, Debug, PartialEq)]
pub struct Slater {
    pub dims: usize,
    /// Particles per spin block.
    pub n: usize,
    pub omega: f64,
    /// Quantum numbers of orbital l.
    pub orbitals: Vec<[usize; 3]>,
    /// Highest Hermite degree needed.
    degree: usize,
}

/// Hermite values at one position, per dimension.
type HermiteTable = [[f64; MAX_SHELL + 1]; 3];

impl Slater {
    /// The Slater part of `particles` fermions (half of each spin) in closed shells; the
    /// error lists the allowed counts.
    pub fn closed_shell(particles: usize, dims: usize, omega: f64) -> Result<Self, String> {
        let orbitals = particles
            .is_multiple_of(2)
            .then(|| closed_shell_orbitals(dims, particles / 2))
            .flatten()
            .ok_or_else(|| {
                let counts: Vec<String> = closed_shell_counts(dims, 64)
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                format!(
                    "{particles} fermions in {dims}D do not fill closed shells; the closed-shell \
                     counts are {}",
                    counts.join(", ")
                )
            })?;
        let degree = orbitals.iter().flatten().copied().max().unwrap_or(0);
        Ok(Self {
            dims,
            n: particles / 2,
            omega,
            orbitals,
            degree,
        })
    }

    /// Block and row of particle k.
    #[inline]
    pub fn block_of(&self, k: usize) -> (usize, usize) {
        (k / self.n, k % self.n)
    }

    fn table(&self, r: &[f64]) -> HermiteTable {
        let mut h = [[0.0; MAX_SHELL + 1]; 3];
        let sqrt_omega = self.omega.sqrt();
        for d in 0..self.dims {
            hermite(sqrt_omega * r[d], self.degree, &mut h[d]);
        }
        h
    }

    /// phi_l(r) for every orbital l, into `phi` (n values).
    pub fn orbital_values(&self, r: &[f64], phi: &mut [f64]) {
        let h = self.table(r);
        for (value, q) in phi.iter_mut().zip(&self.orbitals) {
            *value = (0..self.dims).map(|d| h[d][q[d]]).product();
        }
    }

    /// grad phi_l(r) (into `grad`, D per orbital) and lap phi_l(r) (into `lap`) for every l.
    pub fn orbital_derivatives(&self, r: &[f64], grad: &mut [f64], lap: &mut [f64]) {
        let h = self.table(r);
        let (dims, omega) = (self.dims, self.omega);
        let sqrt_omega = omega.sqrt();
        for (l, q) in self.orbitals.iter().enumerate() {
            let mut laplacian = 0.0;
            for d in 0..dims {
                // The product over the other dimensions.
                let rest: f64 = (0..dims).filter(|&e| e != d).map(|e| h[e][q[e]]).product();
                let k = q[d];
                let first = if k >= 1 {
                    2.0 * k as f64 * h[d][k - 1]
                } else {
                    0.0
                };
                let second = if k >= 2 {
                    4.0 * (k * (k - 1)) as f64 * h[d][k - 2]
                } else {
                    0.0
                };
                grad[l * dims + d] = sqrt_omega * first * rest;
                laplacian += omega * second * rest;
            }
            lap[l] = laplacian;
        }
    }
}

/// One walker's determinants: the inverse matrices and ln|det| of both spin blocks, plus
/// scratch for moves.
#[derive(Clone, Debug)]
pub struct SlaterState {
    /// Inverse of each block, orbital-major: dinv[b][l * n + i].
    pub dinv: [Vec<f64>; 2],
    /// ln |det| of each block (-inf when singular), and its sign.
    pub ln_det: [f64; 2],
    pub sign: [f64; 2],
    /// Orbital values at a proposed position, and the determinant ratio of that move.
    pub phi_new: Vec<f64>,
    pub ratio: f64,
    work: Vec<f64>,
    grad: Vec<f64>,
    lap: Vec<f64>,
}

impl SlaterState {
    pub fn new(slater: &Slater) -> Self {
        let n = slater.n;
        Self {
            dinv: [vec![0.0; n * n], vec![0.0; n * n]],
            ln_det: [0.0; 2],
            sign: [1.0; 2],
            phi_new: vec![0.0; n],
            ratio: 1.0,
            work: vec![0.0; n * n],
            grad: vec![0.0; n * slater.dims],
            lap: vec![0.0; n],
        }
    }

    /// ln |det_up det_down|.
    pub fn ln_abs(&self) -> f64 {
        self.ln_det[0] + self.ln_det[1]
    }

    /// The sign of det_up det_down: the nodes of the trial function are where it changes.
    pub fn sign(&self) -> f64 {
        self.sign[0] * self.sign[1]
    }

    /// Builds both determinants at x from scratch; returns ln |det_up det_down|.
    pub fn refresh(&mut self, slater: &Slater, x: &[f64]) -> f64 {
        let (n, dims) = (slater.n, slater.dims);
        for b in 0..2 {
            for i in 0..n {
                let k = b * n + i;
                slater.orbital_values(&x[k * dims..(k + 1) * dims], &mut self.phi_new);
                self.work[i * n..(i + 1) * n].copy_from_slice(&self.phi_new);
            }
            (self.ln_det[b], self.sign[b]) = invert(&mut self.work, &mut self.dinv[b], n);
        }
        self.ln_abs()
    }

    /// The ratio det'/det when particle k moves to `rk`: sum_l phi_l(rk) Dinv_li (O(n));
    /// keeps the orbital values for `accept`.
    pub fn propose(&mut self, slater: &Slater, k: usize, rk: &[f64]) -> f64 {
        let (b, i) = slater.block_of(k);
        let n = slater.n;
        slater.orbital_values(rk, &mut self.phi_new);
        let dinv = &self.dinv[b];
        self.ratio = (0..n).map(|l| self.phi_new[l] * dinv[l * n + i]).sum();
        self.ratio
    }

    /// Applies the proposed move of particle k (after `propose`): Sherman-Morrison, O(n^2).
    pub fn accept(&mut self, slater: &Slater, k: usize) {
        let (b, i) = slater.block_of(k);
        let n = slater.n;
        let r = self.ratio;
        let dinv = &mut self.dinv[b];
        // c_j = sum_l phi_l(r') Dinv_lj, into `lap` as scratch (c_i = R).
        let c = &mut self.lap;
        for j in 0..n {
            c[j] = (0..n).map(|l| self.phi_new[l] * dinv[l * n + j]).sum();
        }
        for l in 0..n {
            let column_i = dinv[l * n + i] / r;
            for j in 0..n {
                dinv[l * n + j] -= column_i * c[j];
            }
            dinv[l * n + i] = column_i;
        }
        self.ln_det[b] += r.abs().ln();
        self.sign[b] *= r.signum();
    }

    /// grad_k ln|det| with particle k at `rk` divided by `ratio` (1 at the current position;
    /// the proposal's ratio for a proposed position, before `accept`), into `out` (D values).
    pub fn particle_gradient(
        &mut self,
        slater: &Slater,
        k: usize,
        rk: &[f64],
        ratio: f64,
        out: &mut [f64],
    ) {
        let (b, i) = slater.block_of(k);
        let (n, dims) = (slater.n, slater.dims);
        slater.orbital_derivatives(rk, &mut self.grad, &mut self.lap);
        let dinv = &self.dinv[b];
        for (d, o) in out.iter_mut().enumerate().take(dims) {
            *o = (0..n)
                .map(|l| self.grad[l * dims + d] * dinv[l * n + i])
                .sum::<f64>()
                / ratio;
        }
    }

    /// What a measurement needs: adds grad ln|det| to `grad` (per coordinate) and returns the
    /// sum over coordinates of d^2 ln|det| / dx^2 (lap_i = sum_l lap phi_l Dinv_li - |grad_i|^2).
    pub fn measure(&mut self, slater: &Slater, x: &[f64], grad: &mut [f64]) -> f64 {
        let (n, dims) = (slater.n, slater.dims);
        let mut laplacian = 0.0;
        for k in 0..2 * n {
            let (b, i) = slater.block_of(k);
            let rk = &x[k * dims..(k + 1) * dims];
            slater.orbital_derivatives(rk, &mut self.grad, &mut self.lap);
            let dinv = &self.dinv[b];
            let mut lap = 0.0;
            for l in 0..n {
                lap += self.lap[l] * dinv[l * n + i];
            }
            for d in 0..dims {
                let g: f64 = (0..n)
                    .map(|l| self.grad[l * dims + d] * dinv[l * n + i])
                    .sum();
                grad[k * dims + d] += g;
                lap -= g * g;
            }
            laplacian += lap;
        }
        laplacian
    }
}

/// The determinants' cache: the inverses at x, and at an all-coordinate proposal.
pub struct SlaterFactor<'a> {
    slater: &'a Slater,
    state: SlaterState,
    /// The determinants at y, for all-coordinate proposals (single ones use the ratio).
    at_y: SlaterState,
    extra: [f64; 3],
}

impl<'a> SlaterFactor<'a> {
    pub fn new(slater: &'a Slater) -> Self {
        let state = SlaterState::new(slater);
        Self {
            slater,
            at_y: state.clone(),
            state,
            extra: [0.0; 3],
        }
    }
}

impl Factor for SlaterFactor<'_> {
    fn refresh(&mut self, x: &[f64]) -> f64 {
        self.state.refresh(self.slater, x)
    }

    /// A single particle's move costs the ratio, O(n); all coordinates a rebuild at y.
    fn propose(&mut self, _x: &[f64], y: &[f64], moved: Moved) -> f64 {
        match moved {
            Moved::All => self.at_y.refresh(self.slater, y),
            Moved::Particle(k) => {
                let rk = &y[moved.range(y.len(), self.slater.dims)];
                self.state.ln_abs() + self.state.propose(self.slater, k, rk).abs().ln()
            }
        }
    }

    fn crosses_node(&self, moved: Moved) -> bool {
        match moved {
            Moved::All => self.at_y.sign() != self.state.sign(),
            Moved::Particle(_) => self.state.ratio < 0.0,
        }
    }

    fn accept(&mut self, moved: Moved) {
        match moved {
            Moved::All => std::mem::swap(&mut self.state, &mut self.at_y),
            Moved::Particle(k) => self.state.accept(self.slater, k),
        }
    }

    fn add_gradient(&mut self, x: &[f64], y: &[f64], at_y: bool, moved: Moved, out: &mut [f64]) {
        match moved {
            Moved::All => {
                let (state, pos) = if at_y {
                    (&mut self.at_y, y)
                } else {
                    (&mut self.state, x)
                };
                state.measure(self.slater, pos, out);
            }
            Moved::Particle(k) => {
                let range = moved.range(x.len(), self.slater.dims);
                let (pos, ratio) = if at_y {
                    (y, self.state.ratio)
                } else {
                    (x, 1.0)
                };
                let extra = &mut self.extra[..self.slater.dims];
                let rk = &pos[range.clone()];
                self.state
                    .particle_gradient(self.slater, k, rk, ratio, extra);
                add(&mut out[range], extra);
            }
        }
    }

    /// The determinants have no variational parameters.
    fn measure(&mut self, x: &[f64], grad: &mut [f64], _o: &mut [f64]) -> f64 {
        self.state.measure(self.slater, x, grad)
    }
}

/// Inverts the n x n row-major matrix `a` (destroyed) into `inv` by Gauss-Jordan elimination
/// with partial pivoting; returns ln |det a| (-inf when singular, and `inv` is then garbage)
/// and the sign of det a.
pub fn invert(a: &mut [f64], inv: &mut [f64], n: usize) -> (f64, f64) {
    inv.fill(0.0);
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    let (mut ln_det, mut sign) = (0.0, 1.0);
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&p, &q| a[p * n + col].abs().total_cmp(&a[q * n + col].abs()))
            .expect("col < n");
        let value = a[pivot * n + col];
        if value == 0.0 || !value.is_finite() {
            return (f64::NEG_INFINITY, 1.0);
        }
        sign *= value.signum();
        if pivot != col {
            sign = -sign;
            for j in 0..n {
                a.swap(pivot * n + j, col * n + j);
                inv.swap(pivot * n + j, col * n + j);
            }
        }
        ln_det += value.abs().ln();
        let scale = 1.0 / value;
        for j in 0..n {
            a[col * n + j] *= scale;
            inv[col * n + j] *= scale;
        }
        for row in (0..n).filter(|&r| r != col) {
            let factor = a[row * n + col];
            if factor != 0.0 {
                for j in 0..n {
                    a[row * n + j] -= factor * a[col * n + j];
                    inv[row * n + j] -= factor * inv[col * n + j];
                }
            }
        }
    }
    (ln_det, sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(particles: usize, dims: usize, seed: u32) -> Vec<f64> {
        let mut stream = crate::rng::StepStream::new(8, seed, 1);
        (0..particles * dims)
            .map(|_| 1.2 * stream.normal())
            .collect()
    }

    /// ln |det| from scratch (the reference for the incremental paths).
    fn ln_det(slater: &Slater, x: &[f64]) -> f64 {
        SlaterState::new(slater).refresh(slater, x)
    }

    #[test]
    fn closed_shells_are_filled_shell_by_shell() {
        assert_eq!(closed_shell_counts(2, 60), vec![2, 6, 12, 20, 30, 42, 56]);
        assert_eq!(closed_shell_counts(3, 40), vec![2, 8, 20, 40]);
        assert_eq!(closed_shell_counts(1, 8), vec![2, 4, 6, 8]);
        let s = Slater::closed_shell(12, 2, 1.0).unwrap();
        assert_eq!(s.orbitals.len(), 6);
        assert_eq!(s.orbitals.iter().map(|q| q[0] + q[1]).max(), Some(2));
        let err = Slater::closed_shell(8, 2, 1.0).unwrap_err();
        assert!(err.contains("2, 6, 12, 20, 30, 42, 56"), "{err}");
        assert!(Slater::closed_shell(7, 1, 1.0).is_err());
    }

    #[test]
    fn inverse_and_determinant_are_right() {
        let a = [2.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 4.0];
        let mut work = a;
        let mut inv = [0.0; 9];
        let (ln, sign) = invert(&mut work, &mut inv, 3);
        assert!((ln - 18f64.ln()).abs() < 1e-14);
        assert_eq!(sign, 1.0);
        // Rows swapped (a pivot swap of its own) and a negative pivot: the sign follows.
        let mut swapped = [1.0, 3.0, 1.0, 2.0, 1.0, 0.0, 0.0, 1.0, 4.0];
        assert_eq!(invert(&mut swapped, &mut [0.0; 9], 3).1, -1.0);
        let mut negative = [-2.0, 0.0, 0.0, 3.0];
        assert_eq!(invert(&mut negative, &mut [0.0; 4], 2).1, -1.0);
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((p - (i == j) as u8 as f64).abs() < 1e-14);
            }
        }
        let mut singular = [1.0, 2.0, 2.0, 4.0];
        assert_eq!(invert(&mut singular, &mut [0.0; 4], 2).0, f64::NEG_INFINITY);
    }

    #[test]
    fn orbital_derivatives_match_finite_differences() {
        for dims in 1..=3 {
            let s = Slater::closed_shell(if dims == 3 { 20 } else { 12 }, dims, 0.7).unwrap();
            let r: Vec<f64> = (0..dims).map(|d| 0.4 - 0.3 * d as f64).collect();
            let n = s.n;
            let (mut grad, mut lap) = (vec![0.0; n * dims], vec![0.0; n]);
            s.orbital_derivatives(&r, &mut grad, &mut lap);
            let value = |r: &[f64], l: usize| {
                let mut phi = vec![0.0; n];
                s.orbital_values(r, &mut phi);
                phi[l]
            };
            for l in 0..n {
                let mut fd_lap = 0.0;
                for d in 0..dims {
                    let (mut up, mut down) = (r.clone(), r.clone());
                    up[d] += 1e-5;
                    down[d] -= 1e-5;
                    let fd = (value(&up, l) - value(&down, l)) / 2e-5;
                    let g = grad[l * dims + d];
                    assert!((fd - g).abs() < 1e-6 * (1.0 + g.abs()), "{fd} vs {g}");
                    up[d] += 1e-3 - 1e-5;
                    down[d] -= 1e-3 - 1e-5;
                    fd_lap += (value(&up, l) - 2.0 * value(&r, l) + value(&down, l)) / 1e-6;
                }
                assert!((fd_lap - lap[l]).abs() < 1e-4 * (1.0 + lap[l].abs()));
            }
        }
    }

    #[test]
    fn gradient_and_laplacian_of_ln_det_match_finite_differences() {
        for (particles, dims) in [(6, 2), (12, 2), (8, 3), (4, 1)] {
            let s = Slater::closed_shell(particles, dims, 0.8).unwrap();
            let x = positions(particles, dims, particles as u32);
            let mut state = SlaterState::new(&s);
            state.refresh(&s, &x);
            let mut grad = vec![0.0; x.len()];
            let lap = state.measure(&s, &x, &mut grad);
            let mut fd_lap = 0.0;
            for m in 0..x.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[m] += 1e-5;
                down[m] -= 1e-5;
                let fd = (ln_det(&s, &up) - ln_det(&s, &down)) / 2e-5;
                assert!(
                    (fd - grad[m]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{fd} vs {}",
                    grad[m]
                );
                up[m] += 1e-4 - 1e-5;
                down[m] -= 1e-4 - 1e-5;
                fd_lap += (ln_det(&s, &up) - 2.0 * ln_det(&s, &x) + ln_det(&s, &down)) / 1e-8;
            }
            assert!(
                (fd_lap - lap).abs() < 1e-3 * (1.0 + lap.abs()),
                "{fd_lap} vs {lap}"
            );
        }
    }

    /// Ratios and Sherman-Morrison updates after many moves agree with a fresh inverse.
    #[test]
    fn sherman_morrison_tracks_a_fresh_inverse() {
        let (particles, dims) = (12, 2);
        let s = Slater::closed_shell(particles, dims, 1.0).unwrap();
        let mut x = positions(particles, dims, 3);
        let mut state = SlaterState::new(&s);
        state.refresh(&s, &x);
        let mut stream = crate::rng::StepStream::new(1, 2, 3);
        for step in 0..500 {
            let k = step % particles;
            let rk: Vec<f64> = (0..dims)
                .map(|d| x[k * dims + d] + 0.5 * stream.normal())
                .collect();
            let mut y = x.clone();
            y[k * dims..(k + 1) * dims].copy_from_slice(&rk);
            let ratio = state.propose(&s, k, &rk);
            let expected = ln_det(&s, &y) - ln_det(&s, &x);
            assert!((ratio.abs().ln() - expected).abs() < 1e-8, "step {step}");
            // The moved particle's gradient at the proposal, before the update.
            let mut g = vec![0.0; dims];
            state.particle_gradient(&s, k, &rk, ratio, &mut g);
            state.accept(&s, k);
            x = y;
            let mut after = vec![0.0; dims];
            state.particle_gradient(&s, k, &rk, 1.0, &mut after);
            for d in 0..dims {
                assert!((g[d] - after[d]).abs() < 1e-8 * (1.0 + g[d].abs()));
            }
        }
        let mut fresh = SlaterState::new(&s);
        fresh.refresh(&s, &x);
        assert!((fresh.ln_abs() - state.ln_abs()).abs() < 1e-9);
        for b in 0..2 {
            for (u, v) in fresh.dinv[b].iter().zip(&state.dinv[b]) {
                assert!((u - v).abs() < 1e-9 * (1.0 + u.abs()), "{u} vs {v}");
            }
        }
    }

    /// Swapping two particles of one spin flips the sign of the determinant and keeps |det|.
    #[test]
    fn same_spin_swaps_flip_the_sign() {
        let (particles, dims) = (6, 2);
        let s = Slater::closed_shell(particles, dims, 1.0).unwrap();
        let x = positions(particles, dims, 9);
        let det = |x: &[f64], b: usize| {
            let n = s.n;
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                let k = b * n + i;
                s.orbital_values(&x[k * dims..(k + 1) * dims], &mut a[i * n..(i + 1) * n]);
            }
            determinant(&a, n)
        };
        let mut swapped = x.clone();
        for d in 0..dims {
            swapped.swap(d, 2 * dims + d); // particles 0 and 2: both spin up
        }
        assert!((det(&x, 0) + det(&swapped, 0)).abs() < 1e-10 * det(&x, 0).abs());
        assert_eq!(det(&x, 1), det(&swapped, 1));
        assert!((ln_det(&s, &x) - ln_det(&s, &swapped)).abs() < 1e-12);
        // The state's sign is the Laplace expansion's, from scratch and after moves.
        let mut state = SlaterState::new(&s);
        let signs = |x: &[f64]| det(x, 0).signum() * det(x, 1).signum();
        state.refresh(&s, &x);
        assert_eq!(state.sign(), signs(&x));
        state.refresh(&s, &swapped);
        assert_eq!(state.sign(), signs(&swapped));
        let mut y = swapped.clone();
        for step in 0..40u32 {
            let k = step as usize % particles;
            let moved = positions(1, dims, 100 + step);
            state.propose(&s, k, &moved);
            state.accept(&s, k);
            y[k * dims..(k + 1) * dims].copy_from_slice(&moved);
            assert_eq!(state.sign(), signs(&y), "move {step}");
        }
    }

    /// A signed determinant by Laplace expansion (independent of `invert`).
    fn determinant(a: &[f64], n: usize) -> f64 {
        if n == 1 {
            return a[0];
        }
        (0..n)
            .map(|j| {
                let minor: Vec<f64> = (1..n)
                    .flat_map(|i| (0..n).filter(move |&c| c != j).map(move |c| a[i * n + c]))
                    .collect();
                let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
                sign * a[j] * determinant(&minor, n - 1)
            })
            .sum()
    }
}
