// Brute-force Metropolis: y = x + STEP (u - 1/2) on one particle or all coordinates.
// Rust twin: `Chain::metropolis` in src/engine/cpu/chain.rs (same draws, same order).

// Moves the `len` coordinates from `start`; returns 1 when the move is accepted.
fn move_coordinates(rng: ptr<function, Stream>, start: u32, len: u32) -> u32 {
    for (var i = 0u; i < len; i++) {
        y[start + i] = x[start + i] + STEP * (draw_uniform(rng) - 0.5);
    }
    propose(start, len);
    if (metropolis_test(rng, 2.0 * (ln_psi_y - ln_psi))) {
        accept(start, len);
        return 1u;
    }
    restore(start, len);
    return 0u;
}
