// One Monte Carlo step of the Metropolis-type samplers: a move of every coordinate at once,
// or one move per particle (a sweep). `move_coordinates(rng, start, len)` comes from the
// sampler's file (metropolis.wgsl, importance.wgsl). Rust twin: `Chain::mc_step`.

// Returns the accepted moves.
fn mc_step(rng: ptr<function, Stream>) -> u32 {
    if (SINGLE_MOVES) {
        var accepted = 0u;
        for (var p = 0u; p < P; p++) {
            accepted += move_coordinates(rng, p * D, D);
        }
        return accepted;
    }
    return move_coordinates(rng, 0u, M);
}
