//! The Gaussian-binary RBM trial wave function in f64: the single CPU source of truth for
//! ln psi, its coordinate derivatives, the local energy and the parameter derivatives O_i.
//! Formulas: `docs/physics.md`; the WGSL twin is `shaders/rbm.wgsl`.

use serde::{Deserialize, Serialize};

use super::System;

/// Which function of the RBM marginal F(x) is the trial wave function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// psi = F(x).
    Direct,
    /// psi = sqrt(F(x)), so |psi|^2 is the RBM marginal (required by Gibbs sampling).
    Sqrt,
}

impl Form {
    /// The exponent f in psi = F^f.
    pub fn factor(self) -> f64 {
        match self {
            Form::Direct => 1.0,
            Form::Sqrt => 0.5,
        }
    }
}

/// ln(1 + e^z) without overflow or cancellation. (ln(1 + t) rather than ln_1p is enough:
/// only the absolute accuracy of ln psi matters.)
pub fn softplus(z: f64) -> f64 {
    softplus_and_sigmoid(z).0
}

/// 1 / (1 + e^-z) without overflow.
pub fn sigmoid(z: f64) -> f64 {
    softplus_and_sigmoid(z).1
}

/// (softplus(z), sigmoid(z)) from one exponential, e^-|z| in (0, 1].
pub fn softplus_and_sigmoid(z: f64) -> (f64, f64) {
    let t = (-z.abs()).exp();
    let softplus = z.max(0.0) + (1.0 + t).ln();
    let inv = 1.0 / (1.0 + t);
    (softplus, if z >= 0.0 { inv } else { t * inv })
}

/// The variational parameters theta = (a, b, w), flat in that order, which is also the order
/// of the log-derivatives O_i and of the gradient. `w` is row-major: w[m][n] = w[m * N + n].
#[derive(Clone, Debug, PartialEq)]
pub struct RbmParams {
    visible: usize,
    hidden: usize,
    theta: Vec<f64>,
}

impl RbmParams {
    pub fn zeros(visible: usize, hidden: usize) -> Self {
        Self {
            visible,
            hidden,
            theta: vec![0.0; visible + hidden + visible * hidden],
        }
    }

    /// Builds parameters from a flat theta = (a, b, w); `None` if the length is wrong.
    pub fn from_theta(visible: usize, hidden: usize, theta: Vec<f64>) -> Option<Self> {
        (theta.len() == visible + hidden + visible * hidden).then_some(Self {
            visible,
            hidden,
            theta,
        })
    }

    /// Number of visible units M.
    pub fn visible(&self) -> usize {
        self.visible
    }

    /// Number of hidden units N.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// All parameters, flat: a (M), b (N), w (M x N).
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    pub fn theta_mut(&mut self) -> &mut [f64] {
        &mut self.theta
    }

    pub fn a(&self) -> &[f64] {
        &self.theta[..self.visible]
    }

    pub fn b(&self) -> &[f64] {
        &self.theta[self.visible..self.visible + self.hidden]
    }

    /// Weights, row-major M x N.
    pub fn w(&self) -> &[f64] {
        &self.theta[self.visible + self.hidden..]
    }

    /// Row m of the weights: w[m][0..N].
    pub fn w_row(&self, m: usize) -> &[f64] {
        let start = self.visible + self.hidden + m * self.hidden;
        &self.theta[start..start + self.hidden]
    }
}

/// The RBM trial function: psi = F^f with F the Gaussian-binary marginal of width `sigma`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rbm {
    pub sigma: f64,
    pub form: Form,
}

impl Rbm {
    fn inv_sigma2(&self) -> f64 {
        1.0 / (self.sigma * self.sigma)
    }

    /// Hidden-unit fields Q_n = b_n + sum_m x_m w_mn / sigma^2.
    pub fn hidden_fields(&self, p: &RbmParams, x: &[f64], q: &mut [f64]) {
        let inv = self.inv_sigma2();
        q.copy_from_slice(p.b());
        for (m, &xm) in x.iter().enumerate() {
            let xs = xm * inv;
            for (qn, &w) in q.iter_mut().zip(p.w_row(m)) {
                *qn += xs * w;
            }
        }
    }

    /// ln psi (up to the constant -f ln Z) from x and its fields Q; fills `s` with the
    /// sigmoids S(Q_n), which share the exponentials.
    pub fn ln_psi(&self, p: &RbmParams, x: &[f64], q: &[f64], s: &mut [f64]) -> f64 {
        let gauss: f64 = x.iter().zip(p.a()).map(|(xm, am)| (xm - am).powi(2)).sum();
        // sum_n softplus(Q_n) = sum_n max(Q_n, 0) + ln prod_n (1 + e^-|Q_n|): one logarithm
        // per 64 units (each factor is in (1, 2], so the product cannot overflow).
        let mut hidden = 0.0;
        for (s_chunk, q_chunk) in s.chunks_mut(64).zip(q.chunks(64)) {
            let mut product = 1.0;
            for (sn, &qn) in s_chunk.iter_mut().zip(q_chunk) {
                let t = (-qn.abs()).exp();
                let inv = 1.0 / (1.0 + t);
                *sn = if qn >= 0.0 { inv } else { t * inv };
                hidden += qn.max(0.0);
                product *= 1.0 + t;
            }
            hidden += product.ln();
        }
        self.form.factor() * (hidden - 0.5 * gauss * self.inv_sigma2())
    }

    /// d ln psi / dx_m = f [ -(x_m - a_m) + sum_n w_mn S(Q_n) ] / sigma^2.
    pub fn gradient(&self, p: &RbmParams, x: &[f64], s: &[f64], out: &mut [f64]) {
        for (m, g) in out.iter_mut().enumerate() {
            *g = self.coordinate_terms(p, m, x[m], s).0;
        }
    }

    /// d^2 ln psi / dx_m^2 = f [ -1/sigma^2 + sum_n w_mn^2 S(Q_n)(1 - S(Q_n)) / sigma^4 ].
    pub fn laplacian_diagonal(&self, p: &RbmParams, x: &[f64], s: &[f64], out: &mut [f64]) {
        for (m, l) in out.iter_mut().enumerate() {
            *l = self.coordinate_terms(p, m, x[m], s).1;
        }
    }

    /// (d ln psi / dx_m, d^2 ln psi / dx_m^2) from the sigmoids: one pass over row m of w.
    #[inline]
    fn coordinate_terms(&self, p: &RbmParams, m: usize, xm: f64, s: &[f64]) -> (f64, f64) {
        let (f, inv) = (self.form.factor(), self.inv_sigma2());
        let mut drift = p.a()[m] - xm;
        let mut curvature = 0.0;
        for (&w, &sn) in p.w_row(m).iter().zip(s) {
            drift += w * sn;
            curvature += w * w * sn * (1.0 - sn);
        }
        (f * drift * inv, f * (curvature * inv * inv - inv))
    }

    /// Local energy E_L = -1/2 sum_m (d2 ln psi + (d ln psi)^2) + V(x) and, into `o`, the
    /// parameter log-derivatives O_i = d ln psi / d theta_i in theta order (a, b, w), in one
    /// pass over the weights with the sigmoids `s` of x.
    pub fn local_energy(
        &self,
        sys: &System,
        p: &RbmParams,
        x: &[f64],
        s: &[f64],
        o: &mut [f64],
    ) -> f64 {
        let f = self.form.factor();
        let inv = self.inv_sigma2();
        let n_len = p.hidden();
        let (oa, rest) = o.split_at_mut(p.visible());
        let (ob, ow) = rest.split_at_mut(n_len);
        for (o, &sn) in ob.iter_mut().zip(s) {
            *o = f * sn;
        }
        let mut kinetic = 0.0;
        for (m, ((&xm, &am), oa)) in x.iter().zip(p.a()).zip(oa.iter_mut()).enumerate() {
            *oa = f * inv * (xm - am);
            let xs = f * inv * xm;
            for (o, &sn) in ow[m * n_len..(m + 1) * n_len].iter_mut().zip(s) {
                *o = xs * sn;
            }
            let (g, lap) = self.coordinate_terms(p, m, xm, s);
            kinetic -= 0.5 * (lap + g * g);
        }
        kinetic + sys.potential(x)
    }
}
