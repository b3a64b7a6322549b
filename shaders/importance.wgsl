// Importance sampling: Langevin proposal y = x + DT grad ln psi + sqrt(DT) xi (D = 1/2,
// F = 2 grad ln psi) with the Green's-function ratio in the Metropolis-Hastings test.
// Rust twin: `Chain::importance` in src/engine/cpu/chain.rs (same draws, same order).

fn importance_move(rng: ptr<function, Stream>, start: u32, len: u32) -> u32 {
    y = x;
    for (var i = 0u; i < len; i++) {
        let m = start + i;
        y[m] = x[m] + DT * g[m] + sqrt(DT) * draw_normal(rng);
    }
    if (len == M) {
        fields_of_y();
    } else {
        fields_of_y_moved(start, len);
    }
    ln_psi_of_y();
    gradient_of_y();
    // ln G(x|y) - ln G(y|x), G(y|x) = exp(-|y - x - DT g(x)|^2 / (2 DT)).
    var ln_green = 0.0;
    for (var i = 0u; i < len; i++) {
        let m = start + i;
        let forward = y[m] - x[m] - DT * g[m];
        let backward = x[m] - y[m] - DT * gy[m];
        ln_green += (forward * forward - backward * backward) / (2.0 * DT);
    }
    if (metropolis_test(rng, 2.0 * (ln_psi_y - ln_psi) + ln_green)) {
        take_y();
        return 1u;
    }
    return 0u;
}

// One Monte Carlo step; returns the accepted moves.
fn mc_step(rng: ptr<function, Stream>) -> u32 {
    if (SINGLE_MOVES) {
        var accepted = 0u;
        for (var p = 0u; p < P; p++) {
            accepted += importance_move(rng, p * D, D);
        }
        return accepted;
    }
    return importance_move(rng, 0u, M);
}
