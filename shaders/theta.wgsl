// The variational parameters theta (binding 1 of the walk and DMC kernels), read by the
// factors through theta_at. Rust owner: src/engine/gpu/mod.rs (the walk kernel) and
// src/engine/gpu/dmc.rs.

@group(0) @binding(1) var<storage, read> theta: array<f32>;

// The parameters, copied to private memory once per dispatch (by begin()) where they are few
// (THETA_IN_PRIVATE: K <= MAX_PRIVATE_THETA): every step reads each of them, and a storage
// read per use costs more than the copy. The factors read them through theta_at. Uniform
// twin: theta_uniform.wgsl.
var<private> theta_private: array<f32, KP>;

// Called first by begin().
fn load_theta() {
    if (THETA_IN_PRIVATE) {
        for (var i = 0u; i < K; i++) {
            theta_private[i] = theta[i];
        }
    }
}

fn theta_at(i: u32) -> f32 {
    if (THETA_IN_PRIVATE) {
        return theta_private[i];
    }
    return theta[i];
}
