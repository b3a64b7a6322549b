// The simple pair function u(r) = beta_ij r of the Jastrow factor (jastrow.wgsl): one beta
// per kind of spin pair present, JASTROW_K of them from JASTROW_INDEX in theta (parallel
// pairs' first when both kinds exist). Rust twin: `PairForm::Simple` in
// src/physics/jastrow.rs.

var<private> betas: array<f32, JASTROW_K>;

fn pair_begin() {
    for (var k = 0u; k < JASTROW_K; k++) {
        betas[k] = theta_at(JASTROW_INDEX + k);
    }
}

// Which beta the pair (i, j) takes (`Jastrow::slot`).
fn pair_slot(i: u32, j: u32) -> u32 {
    return select(0u, 1u, JASTROW_K == 2u && (i < UP) != (j < UP));
}

// (u, u', u'') of the pair (i, j) at distance r.
fn pair(i: u32, j: u32, r: f32) -> vec3<f32> {
    let b = betas[pair_slot(i, j)];
    return vec3<f32>(b * r, b, 0.0);
}

// d u / d beta_ij = r, into jastrow_o.
fn pair_derivatives(i: u32, j: u32, r: f32) {
    jastrow_o[pair_slot(i, j)] += r;
}
