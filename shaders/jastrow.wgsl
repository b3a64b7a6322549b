// The Jastrow factor J = exp( sum_{i<j} u_ij(r_ij) ) in f32: the pair loops, with the pair
// function u from shaders/pade.wgsl or shaders/simple_pair.wgsl (`pair_begin`, `pair`,
// `pair_derivatives`). Rust twin: src/physics/jastrow.rs (formulas: docs/physics.md). Needs
// from the header: P, D, UP (particles 0..UP have spin up), A_SAME, A_OPPOSITE, JASTROW_INDEX
// and JASTROW_K (where its parameters sit in theta, and how many); from walker.wgsl: x, y,
// gy; and `add_derivative`.

var<private> ln_j: f32;
var<private> ln_j_y: f32;
// d ln J / d theta of the last measurement.
var<private> jastrow_o: array<f32, JASTROW_K>;

fn jastrow_begin() {
    pair_begin();
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

fn jastrow_ln(pos: ptr<private, array<f32, M>>) -> f32 {
    var sum = 0.0;
    for (var i = 0u; i < P; i++) {
        for (var j = i + 1u; j < P; j++) {
            sum += pair(i, j, distance(pos, i, j)).x;
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
                change += pair(k, j, distance(&y, k, j)).x - pair(k, j, distance(&x, k, j)).x;
            }
        }
        ln_j_y = ln_j + change;
    }
    return ln_j_y;
}

fn jastrow_accept(start: u32, len: u32) {
    ln_j = ln_j_y;
}

fn jastrow_refresh() -> f32 {
    ln_j = jastrow_ln(&x);
    return ln_j;
}

// grad_k ln J = sum_{j != k} u'(r_kj) (r_k - r_j) / r_kj at `pos`.
fn jastrow_gradient_at(pos: ptr<private, array<f32, M>>, k: u32) -> vec3<f32> {
    var out = vec3<f32>(0.0);
    for (var j = 0u; j < P; j++) {
        if (j != k) {
            let r = distance(pos, k, j);
            let scale = pair(k, j, r).y / r;
            for (var d = 0u; d < D; d++) {
                out[d] += scale * ((*pos)[k * D + d] - (*pos)[j * D + d]);
            }
        }
    }
    return out;
}

fn jastrow_drift(at_y: bool, k: u32) -> vec3<f32> {
    if (at_y) {
        return jastrow_gradient_at(&y, k);
    }
    return jastrow_gradient_at(&x, k);
}

// The measurement at x: adds grad ln J to gy, keeps d ln J / d theta, and returns the sum of
// the Laplacians, 2 [u''(r) + (D - 1) u'(r) / r] per pair.
fn jastrow_measure() -> f32 {
    var laplacian = 0.0;
    for (var k = 0u; k < JASTROW_K; k++) {
        jastrow_o[k] = 0.0;
    }
    for (var i = 0u; i < P; i++) {
        for (var j = i + 1u; j < P; j++) {
            let r = distance(&x, i, j);
            let u = pair(i, j, r);
            for (var d = 0u; d < D; d++) {
                let g = u.y * (x[i * D + d] - x[j * D + d]) / r;
                gy[i * D + d] += g;
                gy[j * D + d] -= g;
            }
            laplacian += 2.0 * (u.z + f32(D - 1u) * u.y / r);
            pair_derivatives(i, j, r);
        }
    }
    return laplacian;
}

fn jastrow_log_derivatives(d: f32) {
    for (var k = 0u; k < JASTROW_K; k++) {
        add_derivative(JASTROW_INDEX + k, jastrow_o[k], d);
    }
}
