// Importance sampling: Langevin proposal y = x + DT v + sqrt(DT) xi (D = 1/2, F = 2 v) with v
// the drift grad ln psi limited per particle, and the Green's-function ratio in the
// Metropolis-Hastings test. Rust twin: `langevin_proposal` and `limit_drift` in
// src/engine/cpu/chain.rs (same draws, same order).

// Particle k's drift from `v` (g or gy), limited: v 2 / (1 + sqrt(1 + 2 |v|^2 DT)).
fn limit_drift(v: ptr<private, array<f32, M>>, k: u32) -> vec3<f32> {
    var out = vec3<f32>(0.0);
    for (var d = 0u; d < D; d++) {
        out[d] = (*v)[k * D + d];
    }
    return out * (2.0 / (1.0 + sqrt(1.0 + 2.0 * DT * dot(out, out))));
}

// The Langevin proposal of the `len` coordinates from `start` (whole particles) into y, with
// the factors' caches and the drift gy at y; returns the log of the Metropolis-Hastings ratio
// |psi(y)|^2 G(x|y) / (|psi(x)|^2 G(y|x)). Rust twin: `langevin_proposal`.
fn langevin_proposal(rng: ptr<function, Stream>, start: u32, len: u32) -> f32 {
    if (len != M) {
        // A single particle: its drift at x now (other particles may have moved since).
        fill_drift(false, start, len);
    }
    for (var k = start / D; k < (start + len) / D; k++) {
        let v = limit_drift(&g, k);
        for (var d = 0u; d < D; d++) {
            let m = k * D + d;
            y[m] = x[m] + DT * v[d] + sqrt(DT) * draw_normal(rng);
        }
    }
    propose(start, len);
    fill_drift(true, start, len);
    // ln G(x|y) - ln G(y|x), G(y|x) = exp(-|y - x - DT v(x)|^2 / (2 DT)).
    var ln_green = 0.0;
    for (var k = start / D; k < (start + len) / D; k++) {
        let vx = limit_drift(&g, k);
        let vy = limit_drift(&gy, k);
        for (var d = 0u; d < D; d++) {
            let m = k * D + d;
            let forward = y[m] - x[m] - DT * vx[d];
            let backward = x[m] - y[m] - DT * vy[d];
            ln_green += (forward * forward - backward * backward) / (2.0 * DT);
        }
    }
    return 2.0 * (ln_psi_y - ln_psi) + ln_green;
}

// Takes the proposal: x, the caches and the drift at y (of the moved coordinates: a single
// particle's drift at x is computed afresh before its move).
fn accept_proposal(start: u32, len: u32) {
    accept(start, len);
    for (var m = start; m < start + len; m++) {
        g[m] = gy[m];
    }
}

// Moves the `len` coordinates from `start` (whole particles); returns 1 when accepted.
fn move_coordinates(rng: ptr<function, Stream>, start: u32, len: u32) -> u32 {
    if (metropolis_test(rng, langevin_proposal(rng, start, len))) {
        accept_proposal(start, len);
        return 1u;
    }
    restore(start, len);
    return 0u;
}
