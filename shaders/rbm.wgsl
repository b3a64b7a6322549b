// The RBM trial function in f32 on the walker's private state.
// Rust twin: src/physics/rbm.rs (formulas: docs/physics.md). Needs from the header:
// M, N, NA (= max(N, 1): array length), F (1 or 1/2), INV_S2 (1/sigma^2), OMEGA2, P, D,
// INTERACTION; and `theta` (a: M, b: N, w: M x N row-major) bound by the kernel.

// The walker: coordinates, fields Q, sigmoids S(Q), gradient of ln psi, ln psi.
var<private> x: array<f32, M>;
var<private> q: array<f32, NA>;
var<private> s: array<f32, NA>;
var<private> g: array<f32, M>;
var<private> ln_psi: f32;
// The proposal y and the same quantities there.
var<private> y: array<f32, M>;
var<private> qy: array<f32, NA>;
var<private> sy: array<f32, NA>;
var<private> gy: array<f32, M>;
var<private> ln_psi_y: f32;

fn a_(m: u32) -> f32 {
    return theta[m];
}

fn b_(n: u32) -> f32 {
    return theta[M + n];
}

fn w_(m: u32, n: u32) -> f32 {
    return theta[M + N + m * N + n];
}

// qy = b + y w / sigma^2, from scratch.
fn fields_of_y() {
    for (var n = 0u; n < N; n++) {
        var field = b_(n);
        for (var m = 0u; m < M; m++) {
            field += y[m] * w_(m, n) * INV_S2;
        }
        qy[n] = field;
    }
}

// qy = q + (y - x) w / sigma^2 over the `len` coordinates from `start` (single-particle moves).
fn fields_of_y_moved(start: u32, len: u32) {
    for (var n = 0u; n < N; n++) {
        var field = q[n];
        for (var i = 0u; i < len; i++) {
            field += (y[start + i] - x[start + i]) * w_(start + i, n) * INV_S2;
        }
        qy[n] = field;
    }
}

// qy for a proposal that moved the `len` coordinates from `start`: from scratch when every
// coordinate moved, incrementally otherwise (Rust twin: `Chain::propose_fields`).
fn fields_of_proposal(start: u32, len: u32) {
    if (len == M) {
        fields_of_y();
    } else {
        fields_of_y_moved(start, len);
    }
}

// ln psi at y from y and qy; fills sy. sum softplus = sum max(Q, 0) + ln prod (1 + e^-|Q|),
// one logarithm per 64 units (each factor is in (1, 2]).
fn ln_psi_of_y() {
    var gauss = 0.0;
    for (var m = 0u; m < M; m++) {
        let d = y[m] - a_(m);
        gauss += d * d;
    }
    var hidden = 0.0;
    var product = 1.0;
    for (var n = 0u; n < N; n++) {
        let t = exp(-abs(qy[n]));
        let inv = 1.0 / (1.0 + t);
        sy[n] = select(t * inv, inv, qy[n] >= 0.0);
        hidden += max(qy[n], 0.0);
        product *= 1.0 + t;
        if (n % 64u == 63u) {
            hidden += log(product);
            product = 1.0;
        }
    }
    ln_psi_y = F * (hidden + log(product) - 0.5 * gauss * INV_S2);
}

// gy = d ln psi / dy from y and sy.
fn gradient_of_y() {
    for (var m = 0u; m < M; m++) {
        var drift = a_(m) - y[m];
        for (var n = 0u; n < N; n++) {
            drift += w_(m, n) * sy[n];
        }
        gy[m] = F * drift * INV_S2;
    }
}

// The proposal becomes the walker.
fn take_y() {
    x = y;
    q = qy;
    s = sy;
    g = gy;
    ln_psi = ln_psi_y;
}

// Recompute every cache of the walker from its coordinates.
fn refresh() {
    y = x;
    fields_of_y();
    ln_psi_of_y();
    gradient_of_y();
    take_y();
}

fn potential() -> f32 {
    var r2 = 0.0;
    for (var m = 0u; m < M; m++) {
        r2 += x[m] * x[m];
    }
    var v = 0.5 * OMEGA2 * r2;
    if (INTERACTION) {
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
    }
    return v;
}

// E_L = -1/2 sum_m (d2 ln psi + (d ln psi)^2) + V at the walker (needs s current).
fn local_energy() -> f32 {
    var kinetic = 0.0;
    for (var m = 0u; m < M; m++) {
        var drift = a_(m) - x[m];
        var curvature = 0.0;
        for (var n = 0u; n < N; n++) {
            let w = w_(m, n);
            drift += w * s[n];
            curvature += w * w * s[n] * (1.0 - s[n]);
        }
        let grad = F * drift * INV_S2;
        let lap = F * (curvature * INV_S2 * INV_S2 - INV_S2);
        kinetic -= 0.5 * (lap + grad * grad);
    }
    return kinetic + potential();
}

// Accepts with probability min(1, e^ln_ratio), drawing the uniform only when needed.
fn metropolis_test(rng: ptr<function, Stream>, ln_ratio: f32) -> bool {
    if (ln_ratio >= 0.0) {
        return true;
    }
    return draw_uniform(rng) < exp(ln_ratio);
}
