// Brute-force Metropolis: y = x + STEP (u - 1/2) on one particle or all coordinates.
// Rust twin: `Chain::metropolis` in src/engine/cpu/chain.rs (same draws, same order).

fn metropolis_move(rng: ptr<function, Stream>, start: u32, len: u32) -> u32 {
    y = x;
    for (var i = 0u; i < len; i++) {
        y[start + i] = x[start + i] + STEP * (draw_uniform(rng) - 0.5);
    }
    if (len == M) {
        fields_of_y();
    } else {
        fields_of_y_moved(start, len);
    }
    ln_psi_of_y();
    if (metropolis_test(rng, 2.0 * (ln_psi_y - ln_psi))) {
        // The gradient is not needed by this sampler; keep the walker's stale copy.
        gy = g;
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
            accepted += metropolis_move(rng, p * D, D);
        }
        return accepted;
    }
    return metropolis_move(rng, 0u, M);
}
