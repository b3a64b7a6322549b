//! The trial wave function for lanes: the RBM's maths (`Rbm` in src/physics/rbm.rs, the
//! same operations in the same order) and the calls of the other factors' lane twins.

use super::*;

/// The trial wave function for lanes: the RBM's parameters and constants, and the Jastrow
/// factor when there is one.
pub(super) struct LanePsi<'a> {
    pub(super) a: &'a [f64],
    pub(super) b: &'a [f64],
    /// w[m][n] row-major.
    pub(super) w: &'a [f64],
    pub(super) m: usize,
    pub(super) n: usize,
    /// psi = F^f, and 1 / sigma^2.
    pub(super) f: f64,
    pub(super) inv: f64,
    /// Where d ln psi / d ln sigma goes in O, when the width is trained.
    pub(super) ln_sigma: Option<usize>,
    /// Parameters K, and the RBM's share of them (where the extra O_i start).
    pub(super) parameters: usize,
    pub(super) rbm_len: usize,
    pub(super) jastrow: Option<LaneJastrow<'a>>,
    pub(super) slater: Option<&'a Slater>,
}

impl<'a> LanePsi<'a> {
    pub(super) fn new(spec: &'a EngineSpec, p: &'a Params) -> Self {
        let (m, n) = (p.visible(), p.hidden());
        let rbm = spec.wavefunction.rbm_for(p);
        Self {
            a: p.a(),
            b: p.b(),
            w: p.w(),
            m,
            n,
            f: rbm.form.factor(),
            inv: 1.0 / (rbm.sigma * rbm.sigma),
            ln_sigma: p.layout().ln_sigma_index(),
            parameters: p.layout().len(),
            rbm_len: p.layout().rbm_len(),
            jastrow: spec
                .wavefunction
                .jastrow
                .as_ref()
                .map(|j| LaneJastrow::new(j, p.jastrow(), p.layout().jastrow_range())),
            slater: spec.wavefunction.slater.as_ref(),
        }
    }

    /// ln psi at an all-coordinate proposal x with its fields, the sigmoids into `s`: the
    /// RBM's and the Jastrow factor's (`Walker::propose`).
    #[inline(always)]
    pub(super) fn ln_psi_all(&self, x: &[V], q: &[V], s: &mut [V]) -> V {
        let ln_rbm = self.ln_psi(x, q, s);
        match &self.jastrow {
            Some(j) => ln_rbm + j.ln_j(x),
            None => ln_rbm,
        }
    }

    /// The whole drift grad ln psi (`walker::whole_drift`).
    #[inline(always)]
    pub(super) fn drift(&self, x: &[V], s: &[V], out: &mut [V]) {
        self.gradient(x, s, out);
        if let Some(j) = &self.jastrow {
            j.add_gradient(x, out);
        }
    }

    /// Hidden-unit fields Q_n = b_n + sum_m x_m w_mn / sigma^2 (`Rbm::hidden_fields`).
    #[inline(always)]
    pub(super) fn fields(&self, x: &[V], q: &mut [V]) {
        for (qk, &bk) in q.iter_mut().zip(self.b) {
            *qk = V::splat(bk);
        }
        for (m, xm) in x.iter().enumerate() {
            let row = &self.w[m * self.n..(m + 1) * self.n];
            let xs = *xm * self.inv;
            for (qk, &wk) in q.iter_mut().zip(row) {
                *qk += xs * wk;
            }
        }
    }

    /// ln psi from x and its fields, with the sigmoids into `s` (`Rbm::ln_psi`).
    #[inline(always)]
    pub(super) fn ln_psi(&self, x: &[V], q: &[V], s: &mut [V]) -> V {
        let mut gauss = V::ZERO;
        for (xm, &am) in x.iter().zip(self.a) {
            let d = *xm - am;
            gauss += d * d;
        }
        let mut hidden = V::ZERO;
        for (s_chunk, q_chunk) in s.chunks_mut(SOFTPLUS_CHUNK).zip(q.chunks(SOFTPLUS_CHUNK)) {
            let mut product = V::splat(1.0);
            for (sk, &qk) in s_chunk.iter_mut().zip(q_chunk) {
                let t = exp(-qk.abs());
                let inv = 1.0 / (1.0 + t);
                *sk = qk.ge(V::ZERO).select(inv, t * inv);
                hidden += qk.max(V::ZERO);
                product = product * (1.0 + t);
            }
            hidden += ln(product);
        }
        self.f * (hidden - 0.5 * gauss * self.inv)
    }

    /// (d ln psi / dx_m, d^2 ln psi / dx_m^2) (`Rbm::coordinate_terms`).
    #[inline(always)]
    pub(super) fn coordinate_terms(&self, m: usize, xm: V, s: &[V]) -> (V, V) {
        let row = &self.w[m * self.n..(m + 1) * self.n];
        let mut drift = self.a[m] - xm;
        let mut curvature = V::ZERO;
        for (&wk, &sk) in row.iter().zip(s) {
            drift += wk * sk;
            curvature += wk * wk * sk * (1.0 - sk);
        }
        let inv = self.inv;
        (self.f * drift * inv, self.f * (curvature * inv * inv - inv))
    }

    /// The drift grad ln psi at every coordinate.
    #[inline(always)]
    pub(super) fn gradient(&self, x: &[V], s: &[V], out: &mut [V]) {
        for (m, (o, &xm)) in out.iter_mut().zip(x).enumerate() {
            *o = self.coordinate_terms(m, xm, s).0;
        }
    }

    /// The gradient of ln psi into `grad`, the O_i into `o`, and the Laplacian of ln psi
    /// (`Rbm::measure`, then `Jastrow::measure`).
    #[inline(always)]
    pub(super) fn measure(&self, x: &[V], q: &[V], s: &[V], grad: &mut [V], o: &mut [V]) -> V {
        let (f, inv, n) = (self.f, self.inv, self.n);
        let (oa, rest) = o.split_at_mut(self.m);
        let (ob, rest) = rest.split_at_mut(n);
        let (ow, extra) = rest.split_at_mut(self.m * n);
        for (obk, &sk) in ob.iter_mut().zip(s) {
            *obk = f * sk;
        }
        let mut laplacian = V::ZERO;
        let mut gauss = V::ZERO;
        for (m, (&xm, &am)) in x.iter().zip(self.a).enumerate() {
            oa[m] = f * inv * (xm - am);
            gauss += (xm - am) * (xm - am);
            let xs = f * inv * xm;
            for (owk, &sk) in ow[m * n..(m + 1) * n].iter_mut().zip(s) {
                *owk = xs * sk;
            }
            let (g, lap) = self.coordinate_terms(m, xm, s);
            grad[m] = g;
            laplacian += lap;
        }
        if let Some(i) = self.ln_sigma {
            let mut hidden = V::ZERO;
            for ((&sk, &qk), &bk) in s.iter().zip(q).zip(self.b) {
                hidden += sk * (qk - bk);
            }
            extra[i - self.rbm_len] = f * (inv * gauss - 2.0 * hidden);
        }
        if let Some(j) = &self.jastrow {
            let range = j.o_range.start - self.rbm_len..j.o_range.end - self.rbm_len;
            let o = &mut extra[range];
            o.fill(V::ZERO);
            laplacian += j.measure(x, grad, o);
        }
        laplacian
    }
}
