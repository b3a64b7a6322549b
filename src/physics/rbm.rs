//! The Gaussian-binary RBM trial wave function in f64: the single CPU source of truth for
//! ln psi, its coordinate derivatives, the local energy and the parameter derivatives O_i.
//! Formulas: `docs/physics.md`; the WGSL twin is `shaders/rbm.wgsl`.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Params;
use super::factor::{Factor, Moved};

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

/// Hidden units whose softplus terms share one logarithm in `Rbm::ln_psi` (each factor
/// 1 + e^-|Q| is in (1, 2], so a product of 64 cannot overflow).
pub const SOFTPLUS_CHUNK: usize = 64;

/// The RBM trial function: psi = F^f with F the Gaussian-binary marginal of width `sigma`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rbm {
    pub sigma: f64,
    pub form: Form,
}

/// Calls `self.$method::<W>(args)` with the hidden-unit count `$n` as the compile-time
/// constant W for the common small sizes, so the loops over the hidden units unroll; W = 0
/// (a run-time count) otherwise. The method body is written once, over `width::<W>(n)`.
macro_rules! by_width {
    ($n:expr, $self:ident . $method:ident ( $($arg:expr),* )) => {
        match $n {
            1 => $self.$method::<1>($($arg),*),
            2 => $self.$method::<2>($($arg),*),
            3 => $self.$method::<3>($($arg),*),
            4 => $self.$method::<4>($($arg),*),
            _ => $self.$method::<0>($($arg),*),
        }
    };
}

/// The loop length over the hidden units: the constant W, or `n` when W = 0.
#[inline(always)]
fn width<const W: usize>(n: usize) -> usize {
    if W == 0 { n } else { W }
}

impl Rbm {
    fn inv_sigma2(&self) -> f64 {
        1.0 / (self.sigma * self.sigma)
    }

    /// Hidden-unit fields Q_n = b_n + sum_m x_m w_mn / sigma^2.
    pub fn hidden_fields(&self, p: &Params, x: &[f64], q: &mut [f64]) {
        by_width!(q.len(), self.hidden_fields_w(p, x, q))
    }

    fn hidden_fields_w<const W: usize>(&self, p: &Params, x: &[f64], q: &mut [f64]) {
        let n = width::<W>(q.len());
        let inv = self.inv_sigma2();
        let q = &mut q[..n];
        q.copy_from_slice(&p.b()[..n]);
        for (m, &xm) in x.iter().enumerate() {
            let xs = xm * inv;
            let row = &p.w_row(m)[..n];
            for k in 0..n {
                q[k] += xs * row[k];
            }
        }
    }

    /// ln psi (up to the constant -f ln Z) from x and its fields Q; fills `s` with the
    /// sigmoids S(Q_n), which share the exponentials.
    pub fn ln_psi(&self, p: &Params, x: &[f64], q: &[f64], s: &mut [f64]) -> f64 {
        let gauss: f64 = x.iter().zip(p.a()).map(|(xm, am)| (xm - am).powi(2)).sum();
        // sum_n softplus(Q_n) = sum_n max(Q_n, 0) + ln prod_n (1 + e^-|Q_n|): one logarithm
        // per 64 units (each factor is in (1, 2], so the product cannot overflow).
        let mut hidden = 0.0;
        for (s_chunk, q_chunk) in s.chunks_mut(SOFTPLUS_CHUNK).zip(q.chunks(SOFTPLUS_CHUNK)) {
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

    /// d ln psi / dx_m = f [ -(x_m - a_m) + sum_n w_mn S(Q_n) ] / sigma^2 for m in `range`,
    /// added to `out[range]`.
    pub fn gradient(&self, p: &Params, x: &[f64], s: &[f64], range: Range<usize>, out: &mut [f64]) {
        by_width!(s.len(), self.gradient_w(p, x, s, range, out))
    }

    fn gradient_w<const W: usize>(
        &self,
        p: &Params,
        x: &[f64],
        s: &[f64],
        range: Range<usize>,
        out: &mut [f64],
    ) {
        for m in range {
            out[m] += self.coordinate_terms::<W>(p, m, x[m], s).0;
        }
    }

    /// (d ln psi / dx_m, d^2 ln psi / dx_m^2) from the sigmoids: one pass over row m of w.
    /// The second is f [ -1/sigma^2 + sum_n w_mn^2 S(Q_n)(1 - S(Q_n)) / sigma^4 ].
    #[inline(always)]
    fn coordinate_terms<const W: usize>(
        &self,
        p: &Params,
        m: usize,
        xm: f64,
        s: &[f64],
    ) -> (f64, f64) {
        let n = width::<W>(s.len());
        let (f, inv) = (self.form.factor(), self.inv_sigma2());
        let (row, s) = (&p.w_row(m)[..n], &s[..n]);
        let mut drift = p.a()[m] - xm;
        let mut curvature = 0.0;
        for k in 0..n {
            drift += row[k] * s[k];
            curvature += row[k] * row[k] * s[k] * (1.0 - s[k]);
        }
        (f * drift * inv, f * (curvature * inv * inv - inv))
    }

    /// What a measurement needs from the RBM, in one pass over the weights with the fields
    /// `q` and sigmoids `s` of x: the gradient of ln psi added to `grad`, the RBM's O_i into `o`
    /// (a, b, w, and ln sigma at `o_ln_sigma` when the width is trained), and the returned
    /// sum over m of d^2 ln psi / dx_m^2.
    pub fn measure(
        &self,
        p: &Params,
        x: &[f64],
        q: &[f64],
        s: &[f64],
        grad: &mut [f64],
        o: &mut [f64],
    ) -> f64 {
        by_width!(s.len(), self.measure_w(p, x, q, s, grad, o))
    }

    fn measure_w<const W: usize>(
        &self,
        p: &Params,
        x: &[f64],
        q: &[f64],
        s: &[f64],
        grad: &mut [f64],
        o: &mut [f64],
    ) -> f64 {
        let n = width::<W>(s.len());
        let f = self.form.factor();
        let inv = self.inv_sigma2();
        let layout = p.layout();
        let (oa, rest) = o.split_at_mut(p.visible());
        let (ob, rest) = rest.split_at_mut(n);
        let (ow, extra) = rest.split_at_mut(p.visible() * n);
        for k in 0..n {
            ob[k] = f * s[k];
        }
        let mut laplacian = 0.0;
        let mut gauss = 0.0;
        for (m, ((&xm, &am), oa)) in x.iter().zip(p.a()).zip(oa.iter_mut()).enumerate() {
            *oa = f * inv * (xm - am);
            gauss += (xm - am) * (xm - am);
            let xs = f * inv * xm;
            let ow = &mut ow[m * n..(m + 1) * n];
            for k in 0..n {
                ow[k] = xs * s[k];
            }
            let (g, lap) = self.coordinate_terms::<W>(p, m, xm, s);
            grad[m] += g;
            laplacian += lap;
        }
        if let Some(i) = layout.ln_sigma_index() {
            // d ln psi / d ln sigma = f [ sum_m (x_m - a_m)^2 / sigma^2 - 2 sum_n S_n (Q_n - b_n) ].
            let hidden: f64 = (0..n).map(|k| s[k] * (q[k] - p.b()[k])).sum();
            extra[i - layout.rbm_len()] = f * (inv * gauss - 2.0 * hidden);
        }
        laplacian
    }
}

/// The RBM's cache: the hidden fields Q and sigmoids S(Q) at x and at the proposal.
pub struct RbmFactor<'a> {
    /// The RBM with this call's width.
    rbm: Rbm,
    params: &'a Params,
    dims: usize,
    q: Vec<f64>,
    s: Vec<f64>,
    qy: Vec<f64>,
    sy: Vec<f64>,
}

impl<'a> RbmFactor<'a> {
    pub fn new(rbm: Rbm, params: &'a Params, dims: usize) -> Self {
        let n = params.hidden();
        Self {
            rbm,
            params,
            dims,
            q: vec![0.0; n],
            s: vec![0.0; n],
            qy: vec![0.0; n],
            sy: vec![0.0; n],
        }
    }

    /// Sigmoids S(Q_n) of the hidden fields at x.
    pub fn sigmoids(&self) -> &[f64] {
        &self.s
    }
}

impl Factor for RbmFactor<'_> {
    fn refresh(&mut self, x: &[f64]) -> f64 {
        self.rbm.hidden_fields(self.params, x, &mut self.q);
        self.rbm.ln_psi(self.params, x, &self.q, &mut self.s)
    }

    /// Single-particle proposals update the fields in O(N D).
    fn propose(&mut self, x: &[f64], y: &[f64], moved: Moved) -> f64 {
        match moved {
            Moved::All => self.rbm.hidden_fields(self.params, y, &mut self.qy),
            Moved::Particle(_) => {
                let inv = 1.0 / (self.rbm.sigma * self.rbm.sigma);
                self.qy.copy_from_slice(&self.q);
                for m in moved.range(x.len(), self.dims) {
                    let dx = (y[m] - x[m]) * inv;
                    for (qn, &w) in self.qy.iter_mut().zip(self.params.w_row(m)) {
                        *qn += dx * w;
                    }
                }
            }
        }
        self.rbm.ln_psi(self.params, y, &self.qy, &mut self.sy)
    }

    fn accept(&mut self, _moved: Moved) {
        std::mem::swap(&mut self.q, &mut self.qy);
        std::mem::swap(&mut self.s, &mut self.sy);
    }

    fn add_gradient(&mut self, x: &[f64], y: &[f64], at_y: bool, moved: Moved, out: &mut [f64]) {
        let (pos, s) = if at_y { (y, &self.sy) } else { (x, &self.s) };
        let range = moved.range(x.len(), self.dims);
        self.rbm.gradient(self.params, pos, s, range, out);
    }

    fn measure(&mut self, x: &[f64], grad: &mut [f64], o: &mut [f64]) -> f64 {
        self.rbm.measure(self.params, x, &self.q, &self.s, grad, o)
    }
}
