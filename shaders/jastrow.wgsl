// The Padé-Jastrow factor J = exp( sum_{i<j} a_ij r_ij / (1 + beta r_ij) ) in f32.
// Rust twin: src/physics/jastrow.rs (formulas: docs/physics.md). Needs from the header: P, D,
// UP (particles 0..UP have spin up), A_SAME, A_OPPOSITE, BETA_INDEX; from walker.wgsl: x, y,
// gy; and `theta_at`.

var<private> ln_j: f32;
var<private> ln_j_y: f32;
var<private> beta: f32;
// d ln J / d beta of the last measurement.
var<private> jastrow_d_beta: f32;

fn jastrow_begin() {
    beta = theta_at(BETA_INDEX);
}

fn cusp(i: u32, j: u32) -> f32 {
    return select(A_OPPOSITE, A_SAME, (i < UP) == (j < UP));
}

fn distance(pos: ptr<private, array<f32, M>>, i: u32, j: u32) -> f32 {
    var r2 = 0.0;
    for (var d = 0u; d < D; d++) {
        let t = (*pos)[i * D + d] - (*pos)[j * D + d];
        r2 += t * t;
    }
    return sqrt(r2);
}

fn pade(a: f32, r: f32) -> f32 {
    return a * r / (1.0 + beta * r);
}

fn jastrow_ln(pos: ptr<private, array<f32, M>>) -> f32 {
    var sum = 0.0;
    for (var i = 0u; i < P; i++) {
        for (var j = i + 1u; j < P; j++) {
            sum += pade(cusp(i, j), distance(pos, i, j));
        }
    }
    return sum;
}

// ln J at the proposal: from scratch, or O(P) for a single particle (Rust twin:
// `Jastrow::ln_j_change`).
fn jastrow_propose(start: u32, len: u32) -> f32 {
    if (len == M) {
        ln_j_y = jastrow_ln(&y);
    } else {
        let k = start / D;
        var change = 0.0;
        for (var j = 0u; j < P; j++) {
            if (j != k) {
                let a = cusp(k, j);
                change += pade(a, distance(&y, k, j)) - pade(a, distance(&x, k, j));
            }
        }
        ln_j_y = ln_j + change;
    }
    return ln_j_y;
}

fn jastrow_accept() {
    ln_j = ln_j_y;
}

fn jastrow_refresh() -> f32 {
    ln_j = jastrow_ln(&x);
    return ln_j;
}

// grad_k ln J = sum_{j != k} u'(r_kj) (r_k - r_j) / r_kj at `pos`.
fn jastrow_drift(pos: ptr<private, array<f32, M>>, k: u32) -> vec3<f32> {
    var out = vec3<f32>(0.0);
    for (var j = 0u; j < P; j++) {
        if (j != k) {
            let r = distance(pos, k, j);
            let t = 1.0 / (1.0 + beta * r);
            let scale = cusp(k, j) * t * t / r;
            for (var d = 0u; d < D; d++) {
                out[d] += scale * ((*pos)[k * D + d] - (*pos)[j * D + d]);
            }
        }
    }
    return out;
}

fn jastrow_drift_particle(at_y: bool, k: u32) -> vec3<f32> {
    if (at_y) {
        return jastrow_drift(&y, k);
    }
    return jastrow_drift(&x, k);
}

// The measurement at x: adds grad ln J to gy, keeps d ln J / d beta, and returns the sum of
// the Laplacians, 2 [u''(r) + (D - 1) u'(r) / r] per pair.
fn jastrow_measure() -> f32 {
    var laplacian = 0.0;
    var d_beta = 0.0;
    for (var i = 0u; i < P; i++) {
        for (var j = i + 1u; j < P; j++) {
            let r = distance(&x, i, j);
            let a = cusp(i, j);
            let t = 1.0 / (1.0 + beta * r);
            let u1 = a * t * t;
            let u2 = -2.0 * beta * u1 * t;
            for (var d = 0u; d < D; d++) {
                let g = u1 * (x[i * D + d] - x[j * D + d]) / r;
                gy[i * D + d] += g;
                gy[j * D + d] -= g;
            }
            laplacian += 2.0 * (u2 + f32(D - 1u) * u1 / r);
            d_beta -= a * r * r * t * t;
        }
    }
    jastrow_d_beta = d_beta;
    return laplacian;
}

fn jastrow_log_derivatives(d: f32) {
    add_derivative(BETA_INDEX, jastrow_d_beta, d);
}
