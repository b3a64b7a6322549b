//! One walker of a trial wave function in f64: its position with every factor's cache (the
//! RBM's fields Q and sigmoids, ln J, the inverse Slater matrices), and a proposal y beside
//! it. The samplers (src/engine/cpu/chain.rs) fill y on a range of coordinates (every
//! coordinate, or one particle's) and call `propose`, `drift_*` and `accept`; single-particle
//! proposals cost O(N D) for the RBM, O(P) for the Jastrow factor and O(n) for the
//! determinant ratio (O(n^2) for its update on acceptance). The WGSL twin is
//! `shaders/walker.wgsl` with the factor files.

use std::ops::Range;

use super::{Params, Rbm, SlaterState, System, Wavefunction};

pub struct Walker<'a> {
    wf: &'a Wavefunction,
    system: &'a System,
    params: &'a Params,
    /// The RBM with this call's width, and the Jastrow beta.
    rbm: Rbm,
    beta: f64,
    x: Vec<f64>,
    q: Vec<f64>,
    s: Vec<f64>,
    ln_rbm: f64,
    ln_j: f64,
    slater: Option<SlaterState>,
    ln_psi: f64,
    /// Drift grad ln psi at x: whole after `refresh` and all-coordinate moves of the
    /// importance sampler; on the moved range only after `drift_x` of a single-particle move.
    g: Vec<f64>,
    y: Vec<f64>,
    qy: Vec<f64>,
    sy: Vec<f64>,
    ln_rbm_y: f64,
    ln_j_y: f64,
    /// The determinants at y, for all-coordinate proposals (single ones use the ratio).
    slater_y: Option<SlaterState>,
    ln_psi_y: f64,
    gy: Vec<f64>,
    /// Log-derivatives O_i of the last measurement, and its scratch gradient.
    o: Vec<f64>,
    grad: Vec<f64>,
    /// E_L's parts at the last measurement: kinetic, trap, interaction.
    parts: [f64; 3],
}

impl<'a> Walker<'a> {
    pub fn new(wf: &'a Wavefunction, system: &'a System, params: &'a Params) -> Self {
        let m = system.coordinates();
        let n = params.hidden();
        let slater = wf.slater.as_ref().map(SlaterState::new);
        Self {
            wf,
            system,
            params,
            rbm: wf.rbm_for(params),
            beta: params.beta().unwrap_or(0.0),
            x: vec![0.0; m],
            q: vec![0.0; n],
            s: vec![0.0; n],
            ln_rbm: 0.0,
            ln_j: 0.0,
            slater_y: slater.clone(),
            slater,
            ln_psi: 0.0,
            g: vec![0.0; m],
            y: vec![0.0; m],
            qy: vec![0.0; n],
            sy: vec![0.0; n],
            ln_rbm_y: 0.0,
            ln_j_y: 0.0,
            ln_psi_y: 0.0,
            gy: vec![0.0; m],
            o: vec![0.0; wf.parameters()],
            grad: vec![0.0; m],
            parts: [0.0; 3],
        }
    }

    /// Places the walker at `x`, every cache computed from scratch.
    pub fn load(&mut self, x: &[f64]) {
        self.x.copy_from_slice(x);
        self.refresh();
    }

    pub fn x(&self) -> &[f64] {
        &self.x
    }

    /// The position, to overwrite before `refresh` (Gibbs sampling, resets).
    pub fn x_mut(&mut self) -> &mut [f64] {
        &mut self.x
    }

    /// Sigmoids S(Q_n) of the RBM's hidden fields at x.
    pub fn sigmoids(&self) -> &[f64] {
        &self.s
    }

    pub fn ln_psi(&self) -> f64 {
        self.ln_psi
    }

    /// The drift grad ln psi at x (valid on the range of the last `drift_x`, or whole).
    pub fn drift(&self) -> &[f64] {
        &self.g
    }

    /// The drift at the proposal, on the range of the last `drift_y`.
    pub fn drift_y(&self) -> &[f64] {
        &self.gy
    }

    pub fn o(&self) -> &[f64] {
        &self.o
    }

    pub fn is_finite(&self) -> bool {
        self.ln_psi.is_finite() && self.x.iter().all(|v| v.is_finite())
    }

    /// Recomputes every cache from x (also ends Sherman-Morrison drift).
    pub fn refresh(&mut self) {
        self.rbm.hidden_fields(self.params, &self.x, &mut self.q);
        self.ln_rbm = self.rbm.ln_psi(self.params, &self.x, &self.q, &mut self.s);
        if let Some(j) = &self.wf.jastrow {
            self.ln_j = j.ln_j(self.beta, &self.x);
        }
        let ln_det = match (&self.wf.slater, &mut self.slater) {
            (Some(sl), Some(state)) => state.refresh(sl, &self.x),
            _ => 0.0,
        };
        self.ln_psi = self.ln_rbm + self.ln_j + ln_det;
        let state = self.slater.as_mut();
        let at = At {
            x: &self.x,
            s: &self.s,
            slater: state,
        };
        whole_drift(self.wf, &self.rbm, self.params, self.beta, at, &mut self.g);
    }

    /// The proposal's position.
    pub fn y(&self) -> &[f64] {
        &self.y
    }

    /// Starts a proposal: y = x except on `range`, where y_m = new(m, x_m), in coordinate
    /// order.
    pub fn begin_proposal(&mut self, range: &Range<usize>, mut new: impl FnMut(usize, f64) -> f64) {
        self.y.copy_from_slice(&self.x);
        for m in range.clone() {
            self.y[m] = new(m, self.x[m]);
        }
    }

    /// The particle a single-particle range belongs to, `None` for every coordinate.
    fn particle(&self, range: &Range<usize>) -> Option<usize> {
        (range.len() != self.x.len()).then(|| range.start / self.system.dims)
    }

    /// ln |psi(y)| for the proposal, which differs from x on `range`; returns
    /// ln |psi(y)| - ln |psi(x)|.
    pub fn propose(&mut self, range: &Range<usize>) -> f64 {
        let particle = self.particle(range);
        match particle {
            None => self.rbm.hidden_fields(self.params, &self.y, &mut self.qy),
            Some(_) => {
                let inv = 1.0 / (self.rbm.sigma * self.rbm.sigma);
                self.qy.copy_from_slice(&self.q);
                for m in range.clone() {
                    let dx = (self.y[m] - self.x[m]) * inv;
                    for (qn, &w) in self.qy.iter_mut().zip(self.params.w_row(m)) {
                        *qn += dx * w;
                    }
                }
            }
        }
        self.ln_rbm_y = self
            .rbm
            .ln_psi(self.params, &self.y, &self.qy, &mut self.sy);
        if let Some(j) = &self.wf.jastrow {
            self.ln_j_y = match particle {
                None => j.ln_j(self.beta, &self.y),
                Some(k) => self.ln_j + j.ln_j_change(self.beta, &self.x, k, &self.y[range.clone()]),
            };
        }
        let ln_det_y = match (&self.wf.slater, &mut self.slater, &mut self.slater_y) {
            (Some(sl), Some(state), Some(at_y)) => match particle {
                None => at_y.refresh(sl, &self.y),
                Some(k) => state.ln_abs() + state.propose(sl, k, &self.y[range.clone()]).abs().ln(),
            },
            _ => 0.0,
        };
        self.ln_psi_y = self.ln_rbm_y + self.ln_j_y + ln_det_y;
        self.ln_psi_y - self.ln_psi
    }

    /// Whether the proposal made by `propose` on `range` lies across a node of psi (the
    /// determinants change sign; the RBM and Jastrow factors are positive): fixed-node
    /// diffusion Monte Carlo rejects such moves.
    pub fn proposal_crosses_node(&self, range: &Range<usize>) -> bool {
        match (&self.slater, &self.slater_y, self.particle(range)) {
            (Some(state), _, Some(_)) => state.ratio < 0.0,
            (Some(state), Some(at_y), None) => at_y.sign() != state.sign(),
            _ => false,
        }
    }

    /// The drift at x on `range` (a single particle's; the whole drift is kept current).
    pub fn drift_x(&mut self, range: &Range<usize>) {
        let Some(k) = self.particle(range) else {
            return;
        };
        self.rbm
            .gradient(self.params, &self.x, &self.s, range.clone(), &mut self.g);
        let mut extra = [0.0; 3];
        let dims = self.system.dims;
        let extra = &mut extra[..dims];
        if let Some(j) = &self.wf.jastrow {
            j.particle_gradient(self.beta, &self.x, k, &self.x[range.clone()], extra);
            add(&mut self.g[range.clone()], extra);
        }
        if let (Some(sl), Some(state)) = (&self.wf.slater, &mut self.slater) {
            state.particle_gradient(sl, k, &self.x[range.clone()], 1.0, extra);
            add(&mut self.g[range.clone()], extra);
        }
    }

    /// The drift at the proposal on `range`, after `propose`.
    pub fn drift_at_y(&mut self, range: &Range<usize>) {
        let Some(k) = self.particle(range) else {
            self.full_drift_of_y();
            return;
        };
        self.rbm
            .gradient(self.params, &self.y, &self.sy, range.clone(), &mut self.gy);
        let mut extra = [0.0; 3];
        let extra = &mut extra[..self.system.dims];
        if let Some(j) = &self.wf.jastrow {
            j.particle_gradient(self.beta, &self.x, k, &self.y[range.clone()], extra);
            add(&mut self.gy[range.clone()], extra);
        }
        if let (Some(sl), Some(state)) = (&self.wf.slater, &mut self.slater) {
            let ratio = state.ratio;
            state.particle_gradient(sl, k, &self.y[range.clone()], ratio, extra);
            add(&mut self.gy[range.clone()], extra);
        }
    }

    /// The whole drift at y (the determinants at y in `slater_y`).
    fn full_drift_of_y(&mut self) {
        let state = self.slater_y.as_mut();
        let at = At {
            x: &self.y,
            s: &self.sy,
            slater: state,
        };
        whole_drift(self.wf, &self.rbm, self.params, self.beta, at, &mut self.gy);
    }

    /// The proposal on `range` becomes the walker.
    pub fn accept(&mut self, range: &Range<usize>) {
        std::mem::swap(&mut self.x, &mut self.y);
        std::mem::swap(&mut self.q, &mut self.qy);
        std::mem::swap(&mut self.s, &mut self.sy);
        std::mem::swap(&mut self.g, &mut self.gy);
        self.ln_rbm = self.ln_rbm_y;
        self.ln_j = self.ln_j_y;
        let particle = self.particle(range);
        if let (Some(sl), Some(state)) = (&self.wf.slater, &mut self.slater) {
            match particle {
                None => std::mem::swap(state, self.slater_y.as_mut().expect("with slater")),
                Some(k) => state.accept(sl, k),
            }
        }
        self.ln_psi = self.ln_psi_y;
    }

    /// E_L at x, and the O_i into `o()` (WGSL twin: `local_energy` in shaders/walker.wgsl).
    pub fn local_energy(&mut self) -> f64 {
        let mut laplacian = self.rbm.measure(
            self.params,
            &self.x,
            &self.q,
            &self.s,
            &mut self.grad,
            &mut self.o,
        );
        if let Some(j) = &self.wf.jastrow {
            let (lap, d_beta) = j.measure(self.beta, &self.x, &mut self.grad);
            laplacian += lap;
            let i = self
                .params
                .layout()
                .beta_index()
                .expect("a Jastrow layout has beta");
            self.o[i] = d_beta;
        }
        if let (Some(sl), Some(state)) = (&self.wf.slater, &mut self.slater) {
            laplacian += state.measure(sl, &self.x, &mut self.grad);
        }
        let g2: f64 = self.grad.iter().map(|g| g * g).sum();
        let kinetic = -0.5 * (laplacian + g2);
        let trap = self.system.trap(&self.x);
        // Summed as `System::potential` does: E_L is the same number as before the split.
        let (interaction, potential) = if self.system.interaction {
            let c = self.system.coulomb(&self.x);
            (c, trap + c)
        } else {
            (0.0, trap)
        };
        self.parts = [kinetic, trap, interaction];
        kinetic + potential
    }

    /// E_L's parts at the last `measure`: kinetic, trap and interaction energy.
    pub fn energy_parts(&self) -> [f64; 3] {
        self.parts
    }
}

/// A configuration with the caches the drift needs.
struct At<'s> {
    x: &'s [f64],
    s: &'s [f64],
    slater: Option<&'s mut SlaterState>,
}

/// grad ln psi at every coordinate, into `out`.
fn whole_drift(wf: &Wavefunction, rbm: &Rbm, params: &Params, beta: f64, at: At, out: &mut [f64]) {
    rbm.gradient(params, at.x, at.s, 0..at.x.len(), out);
    if let Some(j) = &wf.jastrow {
        j.measure(beta, at.x, out);
    }
    if let (Some(sl), Some(state)) = (&wf.slater, at.slater) {
        state.measure(sl, at.x, out);
    }
}

fn add(target: &mut [f64], values: &[f64]) {
    for (t, v) in target.iter_mut().zip(values) {
        *t += v;
    }
}
