//! The variational parameters theta, flat, in ranges per factor: the RBM's a (M), b (N) and
//! w (M x N, row-major), then the Jastrow factor's (Padé's beta, or the simple form's betas)
//! and ln sigma of a trained width, when present. The same order indexes the
//! log-derivatives O_i, the energy gradient and the SR metric.

use std::ops::Range;

/// Which parameters theta holds, and where: a range per factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Visible units M = P D.
    pub visible: usize,
    /// Hidden units N.
    pub hidden: usize,
    /// The Jastrow factor's parameters follow w (0: no Jastrow factor).
    pub jastrow: usize,
    /// ln sigma follows (the width is trained).
    pub train_sigma: bool,
}

impl Layout {
    /// The plain RBM: a, b, w.
    pub fn rbm(visible: usize, hidden: usize) -> Self {
        Self {
            visible,
            hidden,
            jastrow: 0,
            train_sigma: false,
        }
    }

    /// Number of RBM parameters M + N + M N.
    pub fn rbm_len(&self) -> usize {
        self.visible + self.hidden + self.visible * self.hidden
    }

    /// Number of parameters K.
    pub fn len(&self) -> usize {
        self.rbm_len() + self.jastrow + self.train_sigma as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Jastrow factor's parameters in theta (empty without one).
    pub fn jastrow_range(&self) -> Range<usize> {
        self.rbm_len()..self.rbm_len() + self.jastrow
    }

    /// Index of ln sigma in theta.
    pub fn ln_sigma_index(&self) -> Option<usize> {
        self.train_sigma.then_some(self.jastrow_range().end)
    }

    /// The name of parameter `i`, for messages: "a[3]", "w[1][0]", "beta" (or "beta[1]" of
    /// several), "ln_sigma".
    pub fn name(&self, i: usize) -> String {
        let (m, n) = (self.visible, self.hidden);
        if i < m {
            format!("a[{i}]")
        } else if i < m + n {
            format!("b[{}]", i - m)
        } else if i < self.rbm_len() {
            let k = i - m - n;
            format!("w[{}][{}]", k / n, k % n)
        } else if self.jastrow_range().contains(&i) {
            match self.jastrow {
                1 => "beta".into(),
                _ => format!("beta[{}]", i - self.rbm_len()),
            }
        } else {
            "ln_sigma".into()
        }
    }
}

/// The parameters of a trial wave function: theta in the order of its `Layout`.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    layout: Layout,
    theta: Vec<f64>,
}

impl Params {
    pub fn zeros(layout: Layout) -> Self {
        Self {
            layout,
            theta: vec![0.0; layout.len()],
        }
    }

    /// Builds parameters from a flat theta; `None` if the length does not fit the layout.
    pub fn from_theta(layout: Layout, theta: Vec<f64>) -> Option<Self> {
        (theta.len() == layout.len()).then_some(Self { layout, theta })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Number of visible units M.
    pub fn visible(&self) -> usize {
        self.layout.visible
    }

    /// Number of hidden units N.
    pub fn hidden(&self) -> usize {
        self.layout.hidden
    }

    /// All parameters, flat, in layout order.
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    pub fn theta_mut(&mut self) -> &mut [f64] {
        &mut self.theta
    }

    pub fn a(&self) -> &[f64] {
        &self.theta[..self.layout.visible]
    }

    pub fn b(&self) -> &[f64] {
        let m = self.layout.visible;
        &self.theta[m..m + self.layout.hidden]
    }

    /// All weights, row-major: w[m][n] at m N + n.
    pub fn w(&self) -> &[f64] {
        let (m, n) = (self.layout.visible, self.layout.hidden);
        &self.theta[m + n..m + n + m * n]
    }

    /// Row m of the weights: w[m][0..N].
    pub fn w_row(&self, m: usize) -> &[f64] {
        let n = self.layout.hidden;
        &self.w()[m * n..(m + 1) * n]
    }

    /// The Jastrow factor's parameters (empty without one).
    pub fn jastrow(&self) -> &[f64] {
        &self.theta[self.layout.jastrow_range()]
    }

    pub fn jastrow_mut(&mut self) -> &mut [f64] {
        let range = self.layout.jastrow_range();
        &mut self.theta[range]
    }

    /// The trained width sigma = e^(ln sigma), when the layout trains it.
    pub fn sigma(&self) -> Option<f64> {
        self.layout.ln_sigma_index().map(|i| self.theta[i].exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_parameters_follow_the_weights() {
        let layout = Layout {
            visible: 4,
            hidden: 2,
            jastrow: 2,
            train_sigma: true,
        };
        assert_eq!(layout.rbm_len(), 14);
        assert_eq!(layout.len(), 17);
        assert_eq!(layout.jastrow_range(), 14..16);
        assert_eq!(layout.ln_sigma_index(), Some(16));
        let sigma_only = Layout {
            jastrow: 0,
            ..layout
        };
        assert_eq!(sigma_only.ln_sigma_index(), Some(14));
        assert!(sigma_only.jastrow_range().is_empty());
        let mut theta: Vec<f64> = (0..17).map(|i| i as f64).collect();
        theta[16] = 0.5f64.ln();
        let p = Params::from_theta(layout, theta).unwrap();
        assert_eq!(p.b(), &[4.0, 5.0]);
        assert_eq!(p.w_row(1), &[8.0, 9.0]);
        assert_eq!(p.jastrow(), &[14.0, 15.0]);
        assert!((p.sigma().unwrap() - 0.5).abs() < 1e-15);
        assert_eq!(layout.name(9), "w[1][1]");
        assert_eq!(layout.name(15), "beta[1]");
        assert_eq!(layout.name(16), "ln_sigma");
        let one = Layout {
            jastrow: 1,
            ..layout
        };
        assert_eq!(one.name(14), "beta");
        assert!(Params::from_theta(layout, vec![0.0; 16]).is_none());
    }
}
