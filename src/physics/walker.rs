//! One walker of a trial wave function in f64: its position, a proposal y beside it, and
//! every factor with its cache (factor.rs: the RBM first, then `Wavefunction::factors`). The
//! samplers (src/engine/cpu/chain.rs) fill y on a range of coordinates (every coordinate, or
//! one particle's) and call `propose`, `drift_*` and `accept`; single-particle proposals cost
//! O(N D) for the RBM, O(P) for the Jastrow factor and O(n) for the determinant ratio (O(n^2)
//! for its update on acceptance). The WGSL twin is `shaders/walker.wgsl` with the factor
//! files.

use std::ops::Range;

use super::factor::{Factor, Moved};
use super::rbm::RbmFactor;
use super::{Params, System, Wavefunction};

pub struct Walker<'a> {
    system: &'a System,
    /// The RBM, apart from the other factors because Gibbs sampling reads its sigmoids.
    rbm: RbmFactor<'a>,
    factors: Vec<Box<dyn Factor + 'a>>,
    x: Vec<f64>,
    ln_psi: f64,
    /// Drift grad ln psi at x: whole after `refresh` and all-coordinate moves of the
    /// importance sampler; on the moved range only after `drift_x` of a single-particle move.
    g: Vec<f64>,
    y: Vec<f64>,
    ln_psi_y: f64,
    gy: Vec<f64>,
    /// Log-derivatives O_i of the last measurement, and its scratch gradient.
    o: Vec<f64>,
    grad: Vec<f64>,
    /// E_L's parts at the last measurement: kinetic, trap, interaction.
    parts: [f64; 3],
}

/// Every factor of a walker, the RBM first: the order of psi's product, which fixes the
/// order of every sum.
fn each<'s, 'a>(
    rbm: &'s mut RbmFactor<'a>,
    factors: &'s mut [Box<dyn Factor + 'a>],
) -> impl Iterator<Item = &'s mut (dyn Factor + 'a)> {
    std::iter::once(rbm as &mut dyn Factor).chain(factors.iter_mut().map(|f| f.as_mut()))
}

impl<'a> Walker<'a> {
    pub fn new(wf: &'a Wavefunction, system: &'a System, params: &'a Params) -> Self {
        let m = system.coordinates();
        Self {
            system,
            rbm: RbmFactor::new(wf.rbm_for(params), params, system.dims),
            factors: wf.factors(params),
            x: vec![0.0; m],
            ln_psi: 0.0,
            g: vec![0.0; m],
            y: vec![0.0; m],
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
        self.rbm.sigmoids()
    }

    pub fn ln_psi(&self) -> f64 {
        self.ln_psi
    }

    /// The drift at x (valid on the range of the last `drift_x`, or whole).
    pub fn drift(&self) -> &[f64] {
        &self.g
    }

    /// The drift at the proposal, on the range of the last `drift_at_y`.
    pub fn drift_y(&self) -> &[f64] {
        &self.gy
    }

    pub fn o(&self) -> &[f64] {
        &self.o
    }

    pub fn is_finite(&self) -> bool {
        self.ln_psi.is_finite() && self.x.iter().all(|v| v.is_finite())
    }

    /// Recomputes every cache and the whole drift from x (also ends Sherman-Morrison drift).
    pub fn refresh(&mut self) {
        let mut factors = each(&mut self.rbm, &mut self.factors);
        let first = factors.next().expect("the RBM").refresh(&self.x);
        self.ln_psi = factors.fold(first, |ln, f| ln + f.refresh(&self.x));
        self.g.fill(0.0);
        for f in each(&mut self.rbm, &mut self.factors) {
            f.add_gradient(&self.x, &self.y, false, Moved::All, &mut self.g);
        }
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

    /// What a range of coordinates moves: one particle's, or every coordinate.
    fn moved(&self, range: &Range<usize>) -> Moved {
        if range.len() == self.x.len() {
            Moved::All
        } else {
            Moved::Particle(range.start / self.system.dims)
        }
    }

    /// ln |psi(y)| for the proposal, which differs from x on `range`; returns
    /// ln |psi(y)| - ln |psi(x)|.
    pub fn propose(&mut self, range: &Range<usize>) -> f64 {
        let moved = self.moved(range);
        let (x, y) = (&self.x, &self.y);
        let mut factors = each(&mut self.rbm, &mut self.factors);
        let first = factors.next().expect("the RBM").propose(x, y, moved);
        self.ln_psi_y = factors.fold(first, |ln, f| ln + f.propose(x, y, moved));
        self.ln_psi_y - self.ln_psi
    }

    /// Whether the proposal made by `propose` on `range` lies across a node of psi (a factor
    /// changes sign): fixed-node diffusion Monte Carlo rejects such moves.
    pub fn proposal_crosses_node(&self, range: &Range<usize>) -> bool {
        let moved = self.moved(range);
        self.factors.iter().any(|f| f.crosses_node(moved))
    }

    /// The drift at x on `range` (a single particle's; the whole drift is kept current).
    pub fn drift_x(&mut self, range: &Range<usize>) {
        if let moved @ Moved::Particle(_) = self.moved(range) {
            self.g[range.clone()].fill(0.0);
            for f in each(&mut self.rbm, &mut self.factors) {
                f.add_gradient(&self.x, &self.y, false, moved, &mut self.g);
            }
        }
    }

    /// The drift at the proposal on `range`, after `propose`.
    pub fn drift_at_y(&mut self, range: &Range<usize>) {
        let moved = self.moved(range);
        self.gy[range.clone()].fill(0.0);
        for f in each(&mut self.rbm, &mut self.factors) {
            f.add_gradient(&self.x, &self.y, true, moved, &mut self.gy);
        }
    }

    /// The proposal on `range` becomes the walker.
    pub fn accept(&mut self, range: &Range<usize>) {
        let moved = self.moved(range);
        std::mem::swap(&mut self.x, &mut self.y);
        std::mem::swap(&mut self.g, &mut self.gy);
        for f in each(&mut self.rbm, &mut self.factors) {
            f.accept(moved);
        }
        self.ln_psi = self.ln_psi_y;
    }

    /// E_L at x, and the O_i into `o()` (WGSL twin: `local_energy` in shaders/walker.wgsl).
    pub fn local_energy(&mut self) -> f64 {
        self.grad.fill(0.0);
        let mut factors = each(&mut self.rbm, &mut self.factors);
        let first = factors
            .next()
            .expect("the RBM")
            .measure(&self.x, &mut self.grad, &mut self.o);
        let laplacian = factors.fold(first, |lap, f| {
            lap + f.measure(&self.x, &mut self.grad, &mut self.o)
        });
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

    /// E_L's parts at the last `local_energy`: kinetic, trap and interaction energy.
    pub fn energy_parts(&self) -> [f64; 3] {
        self.parts
    }
}
