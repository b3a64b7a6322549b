// The RBM factor F^f in f32: fields Q, sigmoids S(Q), ln F^f, its coordinate derivatives and
// log-derivatives O_i. Rust twin: src/physics/rbm.rs (formulas: docs/physics.md). Needs from
// the header: M, N, NA (= max(N, 1): array length), F (1 or 1/2), INV_S2 and TRAIN_SIGMA,
// LN_SIGMA_INDEX; from walker.wgsl: x, y, gy; and `theta_at` (a: M, b: N, w: M x N row-major)
// from the kernel (walk.wgsl).

// Fields and sigmoids at x and at the proposal y, and ln F^f there.
var<private> q: array<f32, NA>;
var<private> s: array<f32, NA>;
var<private> qy: array<f32, NA>;
var<private> sy: array<f32, NA>;
var<private> ln_rbm: f32;
var<private> ln_rbm_y: f32;
// 1/sigma^2 of this dispatch (a trained width comes from theta).
var<private> inv_s2: f32;

fn a_(m: u32) -> f32 {
    return theta_at(m);
}

fn b_(n: u32) -> f32 {
    return theta_at(M + n);
}

fn w_(m: u32, n: u32) -> f32 {
    return theta_at(M + N + m * N + n);
}

fn rbm_begin() {
    if (TRAIN_SIGMA) {
        inv_s2 = exp(-2.0 * theta_at(LN_SIGMA_INDEX));
    } else {
        inv_s2 = INV_S2;
    }
}

// Fields Q = b + pos w / sigma^2 from scratch, into `out`.
fn rbm_fields(pos: ptr<private, array<f32, M>>, out: ptr<private, array<f32, NA>>) {
    for (var n = 0u; n < N; n++) {
        var field = b_(n);
        for (var m = 0u; m < M; m++) {
            field += (*pos)[m] * w_(m, n) * inv_s2;
        }
        (*out)[n] = field;
    }
}

// ln F^f from the position and its fields; fills the sigmoids. sum softplus = sum max(Q, 0) +
// ln prod (1 + e^-|Q|), one logarithm per 64 units (each factor is in (1, 2]).
fn rbm_ln(pos: ptr<private, array<f32, M>>, fields: ptr<private, array<f32, NA>>,
          sig: ptr<private, array<f32, NA>>) -> f32 {
    var gauss = 0.0;
    for (var m = 0u; m < M; m++) {
        let d = (*pos)[m] - a_(m);
        gauss += d * d;
    }
    var hidden = 0.0;
    var product = 1.0;
    for (var n = 0u; n < N; n++) {
        let qn = (*fields)[n];
        let t = exp(-abs(qn));
        let inv = 1.0 / (1.0 + t);
        (*sig)[n] = select(t * inv, inv, qn >= 0.0);
        hidden += max(qn, 0.0);
        product *= 1.0 + t;
        if (n % 64u == 63u) {
            hidden += log(product);
            product = 1.0;
        }
    }
    return F * (hidden + log(product) - 0.5 * gauss * inv_s2);
}

// ln F^f at the proposal y, which differs from x on the `len` coordinates from `start`: the
// fields from scratch when every coordinate moved, incrementally otherwise (Rust twin:
// `Walker::propose`).
fn rbm_propose(start: u32, len: u32) -> f32 {
    if (len == M) {
        rbm_fields(&y, &qy);
    } else {
        for (var n = 0u; n < N; n++) {
            var field = q[n];
            for (var i = 0u; i < len; i++) {
                field += (y[start + i] - x[start + i]) * w_(start + i, n) * inv_s2;
            }
            qy[n] = field;
        }
    }
    ln_rbm_y = rbm_ln(&y, &qy, &sy);
    return ln_rbm_y;
}

fn rbm_accept(start: u32, len: u32) {
    q = qy;
    s = sy;
    ln_rbm = ln_rbm_y;
}

fn rbm_refresh() -> f32 {
    rbm_fields(&x, &q);
    ln_rbm = rbm_ln(&x, &q, &s);
    return ln_rbm;
}

// d ln F^f / dpos_m = f [ a_m - pos_m + sum_n w_mn S_n ] / sigma^2.
fn rbm_drift_at(pos: ptr<private, array<f32, M>>, sig: ptr<private, array<f32, NA>>, m: u32) -> f32 {
    var drift = a_(m) - (*pos)[m];
    for (var n = 0u; n < N; n++) {
        drift += w_(m, n) * (*sig)[n];
    }
    return F * drift * inv_s2;
}

fn rbm_drift(at_y: bool, k: u32) -> vec3<f32> {
    var out = vec3<f32>(0.0);
    for (var d = 0u; d < D; d++) {
        if (at_y) {
            out[d] = rbm_drift_at(&y, &sy, k * D + d);
        } else {
            out[d] = rbm_drift_at(&x, &s, k * D + d);
        }
    }
    return out;
}

// The measurement at x: the gradient of ln F^f into gy, and the returned sum of
// d2 ln F^f / dx_m^2 = f [ sum_n w_mn^2 S_n (1 - S_n) / sigma^4 - 1/sigma^2 ].
fn rbm_measure() -> f32 {
    var laplacian = 0.0;
    for (var m = 0u; m < M; m++) {
        var drift = a_(m) - x[m];
        var curvature = 0.0;
        for (var n = 0u; n < N; n++) {
            let w = w_(m, n);
            drift += w * s[n];
            curvature += w * w * s[n] * (1.0 - s[n]);
        }
        gy[m] = F * drift * inv_s2;
        laplacian += F * (curvature * inv_s2 * inv_s2 - inv_s2);
    }
    return laplacian;
}

// Adds the RBM's O_i and (E_L - shift) O_i to the sums (Rust twin: `Rbm::measure`).
fn rbm_log_derivatives(d: f32) {
    var gauss = 0.0;
    for (var m = 0u; m < M; m++) {
        let dm = x[m] - a_(m);
        gauss += dm * dm;
        add_derivative(m, F * inv_s2 * dm, d);
    }
    var hidden = 0.0;
    for (var n = 0u; n < N; n++) {
        add_derivative(M + n, F * s[n], d);
        hidden += s[n] * (q[n] - b_(n));
    }
    for (var m = 0u; m < M; m++) {
        for (var n = 0u; n < N; n++) {
            add_derivative(M + N + m * N + n, F * inv_s2 * x[m] * s[n], d);
        }
    }
    if (TRAIN_SIGMA) {
        // d ln psi / d ln sigma = f [ sum_m (x_m - a_m)^2 / sigma^2 - 2 sum_n S_n (Q_n - b_n) ].
        add_derivative(LN_SIGMA_INDEX, F * (inv_s2 * gauss - 2.0 * hidden), d);
    }
}
