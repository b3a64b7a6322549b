// The variational parameters theta in a uniform buffer (binding 1 of the walk and DMC
// kernels, `gpu.uniform_params`), read by the factors through theta_at: every invocation of a
// dispatch reads the same words, which a GPU serves from its constant cache, and a constant
// index can become an operand of the instruction instead of a register. Needs K4 = ceil(K / 4)
// from the header (a uniform array's stride is 16 bytes). Storage twin: theta.wgsl.

@group(0) @binding(1) var<uniform> theta: array<vec4<f32>, K4>;

// Called first by begin(): nothing to copy.
fn load_theta() {}

fn theta_at(i: u32) -> f32 {
    return theta[i / 4u][i % 4u];
}
