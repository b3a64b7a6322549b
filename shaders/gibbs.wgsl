// Gibbs sampling of the RBM (sqrt form): h_n ~ Bernoulli(S(Q_n(x))), then
// x_m ~ Normal(a_m + sum_n w_mn h_n, sigma^2). Every move is accepted.
// Rust twin: `Chain::gibbs` in src/engine/cpu/chain.rs (same draws, same order).

fn mc_step(rng: ptr<function, Stream>) -> u32 {
    var h: array<f32, NA>;
    for (var n = 0u; n < N; n++) {
        h[n] = select(0.0, 1.0, draw_uniform(rng) < s[n]);
    }
    let sigma = inverseSqrt(inv_s2);
    for (var m = 0u; m < M; m++) {
        var mean = a_(m);
        for (var n = 0u; n < N; n++) {
            mean += w_(m, n) * h[n];
        }
        x[m] = mean + sigma * draw_normal(rng);
    }
    refresh();
    return 1u;
}
