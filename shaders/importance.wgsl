// Importance sampling: Langevin proposal y = x + DT grad ln psi + sqrt(DT) xi (D = 1/2,
// F = 2 grad ln psi) with the Green's-function ratio in the Metropolis-Hastings test.
// Rust twin: `Chain::importance` in src/engine/cpu/chain.rs (same draws, same order).

// Moves the `len` coordinates from `start`; returns 1 when the move is accepted.
fn move_coordinates(rng: ptr<function, Stream>, start: u32, len: u32) -> u32 {
    y = x;
    for (var i = 0u; i < len; i++) {
        let m = start + i;
        y[m] = x[m] + DT * g[m] + sqrt(DT) * draw_normal(rng);
    }
    fields_of_proposal(start, len);
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
