// The Padé pair function u(r) = a_ij r / (1 + beta r) of the Jastrow factor (jastrow.wgsl),
// with the cusp a_ij fixed by D and the spins. Rust twin: `PairForm::Pade` in
// src/physics/jastrow.rs. Its one parameter, beta, sits at JASTROW_INDEX in theta.

var<private> beta: f32;

fn pair_begin() {
    beta = theta_at(JASTROW_INDEX);
}

// (u, u', u'') of the pair (i, j) at distance r.
fn pair(i: u32, j: u32, r: f32) -> vec3<f32> {
    let a = cusp(i, j);
    let t = 1.0 / (1.0 + beta * r);
    let u1 = a * t * t;
    return vec3<f32>(a * r * t, u1, -2.0 * beta * u1 * t);
}

// d u / d beta = -a r^2 / (1 + beta r)^2, into jastrow_o.
fn pair_derivatives(i: u32, j: u32, r: f32) {
    let t = 1.0 / (1.0 + beta * r);
    jastrow_o[0] -= cusp(i, j) * r * r * t * t;
}
