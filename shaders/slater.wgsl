// Slater determinants of closed-shell fermions in f32: Hermite-product orbitals, one
// determinant per spin block, the inverse matrices kept per walker and updated by
// Sherman-Morrison after a single-particle move (rebuilt by refresh every 64 steps).
// Rust twin: src/physics/slater.rs (formulas: docs/physics.md). Needs from the header: P, D,
// M, NB (particles per spin block), NB2 = NB * NB, DINV = 2 NB2, HD (Hermite degrees + 1),
// SQRT_OMEGA, OMEGA, SINGLE_MOVES, UNROLL_ORBITALS and the orbital table `orbitals`; from
// walker.wgsl: x, y, gy.
//
// Block b's inverse sits at dinv[b * NB2 ..], orbital-major: Dinv_li at [l * NB + i].

var<private> dinv: array<f32, DINV>;
var<private> ln_det: f32;
// The sign of det_up det_down (the nodes are where it changes), at x and at an
// all-coordinate proposal; `built_sign` is the last slater_build's.
var<private> sign_det: f32;
var<private> sign_det_y: f32;
var<private> built_sign: f32;
// All-coordinate proposals: the inverse at y. Single-particle ones: the orbitals at the
// moved particle's new position and the determinant ratio.
var<private> dinv_y: array<f32, DINV>;
var<private> ln_det_y: f32;
var<private> phi_y: array<f32, NB>;
var<private> ratio_y: f32;
// Scratch: the matrix being inverted, Sherman-Morrison's row c, Hermite values per dimension.
var<private> work: array<f32, NB2>;
var<private> sm_row: array<f32, NB>;
var<private> hermite: array<array<f32, HD>, 3>;
// NB as a run-time value (from the job) for the rebuild's loop bounds: unrolled, its O(n^3)
// loops make shader compilers (llvmpipe's in particular) take minutes, and gain nothing.
var<private> nb: u32;

fn slater_begin() {
    nb = job.slater_n;
}

// The bound of the loops over the orbitals in a move, the drift and the measurement: the
// constant NB when UNROLL_ORBITALS (src/engine/gpu/shader.rs, `OrbitalLoops`), so that the
// compiler unrolls them and indexes phi_y, sm_row and the orbital table with constants,
// else the run-time nb.
fn orbital_bound() -> u32 {
    return select(nb, NB, UNROLL_ORBITALS);
}

// H_0..H_{HD-1} at sqrt(omega) x_d for particle k's coordinates in `pos`.
fn hermite_at(pos: ptr<private, array<f32, M>>, k: u32) {
    for (var d = 0u; d < D; d++) {
        let xi = SQRT_OMEGA * (*pos)[k * D + d];
        hermite[d][0] = 1.0;
        hermite[d][1] = 2.0 * xi;
        for (var n = 1u; n + 1u < HD; n++) {
            hermite[d][n + 1u] = 2.0 * xi * hermite[d][n] - 2.0 * f32(n) * hermite[d][n - 1u];
        }
    }
}

// phi_l at the position of the last `hermite_at`.
fn orbital_value(l: u32) -> f32 {
    var value = 1.0;
    for (var d = 0u; d < D; d++) {
        value *= hermite[d][orbitals[l][d]];
    }
    return value;
}

// (grad phi_l, lap phi_l) at the position of the last `hermite_at`.
fn orbital_derivatives(l: u32) -> vec4<f32> {
    var out = vec4<f32>(0.0);
    for (var d = 0u; d < D; d++) {
        var rest = 1.0;
        for (var e = 0u; e < D; e++) {
            if (e != d) {
                rest *= hermite[e][orbitals[l][e]];
            }
        }
        let n = orbitals[l][d];
        let first = 2.0 * f32(n) * hermite[d][max(n, 1u) - 1u];
        let second = 4.0 * f32(n * max(n, 1u) - n) * hermite[d][max(n, 2u) - 2u];
        out[d] = SQRT_OMEGA * first * rest;
        out.w += OMEGA * second * rest;
    }
    return out;
}

// Inverts `work` into out[base ..] by Gauss-Jordan elimination with partial pivoting;
// returns ln |det| (-inf when singular) and multiplies built_sign by the sign of det (a
// singular block counts as sign 1, as in Rust).
// Rust twin: `slater::invert`.
fn invert_into(out: ptr<private, array<f32, DINV>>, base: u32) -> f32 {
    for (var i = 0u; i < nb; i++) {
        for (var j = 0u; j < nb; j++) {
            (*out)[base + i * NB + j] = select(0.0, 1.0, i == j);
        }
    }
    var ln = 0.0;
    var sign_of_det = 1.0;
    for (var col = 0u; col < nb; col++) {
        var pivot = col;
        var best = abs(work[col * NB + col]);
        for (var r = col + 1u; r < nb; r++) {
            let v = abs(work[r * NB + col]);
            if (v > best) {
                best = v;
                pivot = r;
            }
        }
        if (!(best > 0.0)) {
            return bitcast<f32>(0xff800000u);
        }
        if (pivot != col) {
            sign_of_det = -sign_of_det;
            for (var j = 0u; j < nb; j++) {
                let t = work[pivot * NB + j];
                work[pivot * NB + j] = work[col * NB + j];
                work[col * NB + j] = t;
                let u = (*out)[base + pivot * NB + j];
                (*out)[base + pivot * NB + j] = (*out)[base + col * NB + j];
                (*out)[base + col * NB + j] = u;
            }
        }
        let value = work[col * NB + col];
        ln += log(abs(value));
        sign_of_det *= sign(value);
        let scale = 1.0 / value;
        for (var j = 0u; j < nb; j++) {
            work[col * NB + j] *= scale;
            (*out)[base + col * NB + j] *= scale;
        }
        for (var r = 0u; r < nb; r++) {
            let factor = work[r * NB + col];
            if (r != col && factor != 0.0) {
                for (var j = 0u; j < nb; j++) {
                    work[r * NB + j] -= factor * work[col * NB + j];
                    (*out)[base + r * NB + j] -= factor * (*out)[base + col * NB + j];
                }
            }
        }
    }
    built_sign *= sign_of_det;
    return ln;
}

// Both determinants at `pos` from scratch, their inverses into `out`; ln |det_up det_down|.
fn slater_build(pos: ptr<private, array<f32, M>>, out: ptr<private, array<f32, DINV>>) -> f32 {
    var ln = 0.0;
    built_sign = 1.0;
    for (var b = 0u; b < 2u; b++) {
        for (var i = 0u; i < nb; i++) {
            hermite_at(pos, b * NB + i);
            for (var l = 0u; l < nb; l++) {
                work[i * NB + l] = orbital_value(l);
            }
        }
        ln += invert_into(out, b * NB2);
    }
    return ln;
}

// ln |det| at the proposal: from scratch for all-coordinate moves, by the ratio
// R = sum_l phi_l(r') Dinv_li (O(n)) for a single particle (Rust twin: `SlaterState::propose`).
fn slater_propose(start: u32, len: u32) -> f32 {
    if (!SINGLE_MOVES) {
        ln_det_y = slater_build(&y, &dinv_y);
        sign_det_y = built_sign;
        return ln_det_y;
    }
    let k = start / D;
    let base = (k / NB) * NB2;
    let i = k % NB;
    hermite_at(&y, k);
    let nl = orbital_bound();
    var r = 0.0;
    for (var l = 0u; l < nl; l++) {
        phi_y[l] = orbital_value(l);
        r += phi_y[l] * dinv[base + l * NB + i];
    }
    ratio_y = r;
    ln_det_y = ln_det + log(abs(r));
    return ln_det_y;
}

// Sherman-Morrison for a single particle (Rust twin: `SlaterState::accept`).
fn slater_accept(start: u32, len: u32) {
    ln_det = ln_det_y;
    if (!SINGLE_MOVES) {
        dinv = dinv_y;
        sign_det = sign_det_y;
        return;
    }
    sign_det *= sign(ratio_y);
    let k = start / D;
    let base = (k / NB) * NB2;
    let i = k % NB;
    let nl = orbital_bound();
    for (var j = 0u; j < nl; j++) {
        var c = 0.0;
        for (var l = 0u; l < nl; l++) {
            c += phi_y[l] * dinv[base + l * NB + j];
        }
        sm_row[j] = c;
    }
    for (var l = 0u; l < nl; l++) {
        let column_i = dinv[base + l * NB + i] / ratio_y;
        for (var j = 0u; j < nl; j++) {
            dinv[base + l * NB + j] -= column_i * sm_row[j];
        }
        dinv[base + l * NB + i] = column_i;
    }
}

fn slater_refresh() -> f32 {
    ln_det = slater_build(&x, &dinv);
    sign_det = built_sign;
    return ln_det;
}

// Whether the proposal changes the sign of the determinants: crosses a node of psi (Rust
// twin: `Walker::proposal_crosses_node`).
fn slater_crosses_node() -> bool {
    if (SINGLE_MOVES) {
        return ratio_y < 0.0;
    }
    return sign_det_y != sign_det;
}

// sum_l grad phi_l Dinv_li / ratio for particle k (block row i) at the last `hermite_at`.
fn slater_gradient(inv: ptr<private, array<f32, DINV>>, k: u32, ratio: f32) -> vec3<f32> {
    let base = (k / NB) * NB2;
    let i = k % NB;
    var out = vec3<f32>(0.0);
    let nl = orbital_bound();
    for (var l = 0u; l < nl; l++) {
        out += orbital_derivatives(l).xyz * (*inv)[base + l * NB + i];
    }
    return out / ratio;
}

// grad_k ln |det| at x, or at the proposal (a single particle's before the update: divided
// by the ratio).
fn slater_drift(at_y: bool, k: u32) -> vec3<f32> {
    if (!at_y) {
        hermite_at(&x, k);
        return slater_gradient(&dinv, k, 1.0);
    }
    hermite_at(&y, k);
    if (SINGLE_MOVES) {
        return slater_gradient(&dinv, k, ratio_y);
    }
    return slater_gradient(&dinv_y, k, 1.0);
}

// The measurement at x: adds grad ln |det| to gy and returns the sum of the Laplacians,
// sum_l lap phi_l Dinv_li - |grad_i|^2 per particle.
fn slater_measure() -> f32 {
    var laplacian = 0.0;
    let nl = orbital_bound();
    for (var k = 0u; k < P; k++) {
        let base = (k / NB) * NB2;
        let i = k % NB;
        hermite_at(&x, k);
        var sum = vec4<f32>(0.0);
        for (var l = 0u; l < nl; l++) {
            sum += orbital_derivatives(l) * dinv[base + l * NB + i];
        }
        for (var d = 0u; d < D; d++) {
            gy[k * D + d] += sum[d];
        }
        laplacian += sum.w - dot(sum.xyz, sum.xyz);
    }
    return laplacian;
}
