// One walker in f32: its position x, the proposal y, the drift grad ln psi at both, and
// ln |psi| at both; the factors (rbm.wgsl, jastrow.wgsl, slater.wgsl) keep their own caches.
// The generated glue (src/engine/gpu/shader.rs) sums the factors the run uses: begin(),
// propose(start, len), accept(start, len), refresh_factors(), drift(at_y, k),
// measure_laplacian() and log_derivatives(d). Rust twin: src/physics/walker.rs.

var<private> x: array<f32, M>;
// Between moves y equals x: a proposal writes only the coordinates it moves, and a refused
// one puts them back (`restore`), so no move copies the whole walker.
var<private> y: array<f32, M>;
// Drift at x: whole after refresh() and all-coordinate importance moves; on the moving
// particle's coordinates during a single-particle move. gy: the same at y, and the
// measurement's gradient.
var<private> g: array<f32, M>;
var<private> gy: array<f32, M>;
var<private> ln_psi: f32;
var<private> ln_psi_y: f32;

// The drift at x (at_y false) or at the proposal on the `len` coordinates from `start`
// (whole particles), into g or gy.
fn fill_drift(at_y: bool, start: u32, len: u32) {
    for (var k = start / D; k < (start + len) / D; k++) {
        let v = drift(at_y, k);
        for (var d = 0u; d < D; d++) {
            if (at_y) {
                gy[k * D + d] = v[d];
            } else {
                g[k * D + d] = v[d];
            }
        }
    }
}

// Recompute every cache of the walker from its coordinates, and the whole drift.
fn refresh() {
    y = x;
    ln_psi = refresh_factors();
    fill_drift(false, 0u, M);
}

// Refuses the proposal of the `len` coordinates from `start`: y equals x again.
fn restore(start: u32, len: u32) {
    for (var m = start; m < start + len; m++) {
        y[m] = x[m];
    }
}

fn trap_energy() -> f32 {
    var r2 = 0.0;
    for (var m = 0u; m < M; m++) {
        r2 += x[m] * x[m];
    }
    return 0.5 * OMEGA2 * r2;
}

fn coulomb() -> f32 {
    var v = 0.0;
    for (var p = 0u; p < P; p++) {
        for (var p2 = p + 1u; p2 < P; p2++) {
            var d2 = 0.0;
            for (var k = 0u; k < D; k++) {
                let d = x[p * D + k] - x[p2 * D + k];
                d2 += d * d;
            }
            v += inverseSqrt(d2);
        }
    }
    return v;
}

// E_L's parts at the last local_energy(): kinetic, trap, interaction.
var<private> e_parts: vec3<f32>;

// E_L = -1/2 sum_m (l_m + g_m^2) + V at the walker, with the factors' Laplacians l and
// gradients g summed (Rust twin: `Walker::local_energy`).
fn local_energy() -> f32 {
    let laplacian = measure_laplacian();
    var g2 = 0.0;
    for (var m = 0u; m < M; m++) {
        g2 += gy[m] * gy[m];
    }
    let kinetic = -0.5 * (laplacian + g2);
    let trap = trap_energy();
    var interaction = 0.0;
    if (INTERACTION) {
        interaction = coulomb();
    }
    e_parts = vec3<f32>(kinetic, trap, interaction);
    return kinetic + (trap + interaction);
}

// Accepts with probability min(1, e^ln_ratio), drawing the uniform only when needed.
fn metropolis_test(rng: ptr<function, Stream>, ln_ratio: f32) -> bool {
    if (ln_ratio >= 0.0) {
        return true;
    }
    return draw_acceptance(rng) < exp(ln_ratio);
}

fn is_finite(v: f32) -> bool {
    // By the bits: the compiler may assume no inf/NaN in float comparisons.
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}
