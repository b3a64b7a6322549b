// Philox4x32-10 and the per-walker, per-step random stream.
// Rust twin: src/rng.rs — the same draws in the same order, so both engines see the same
// numbers. Needs from the header: SEED_LO, SEED_HI, RESET_BLOCK.

// Word layout (`StepStream` in src/rng.rs): uniforms take the high 24 bits of a word, and an
// acceptance uniform takes the last three pooled low bytes when three have been pooled since
// the previous one: a move of up to four coordinates and its test cost one Philox block.
struct Stream {
    counter: vec4<u32>,
    block: vec4<u32>,
    next: u32,
    spare: f32,
    has_spare: bool,
    pool: u32,
    pooled: u32,
}


// (high, low) words of the 64-bit product a * b, from 16-bit halves (WGSL has no u64): 17
// operations (Hacker's Delight, mulhu; no partial sum overflows 32 bits). The walker kernels
// replace the body by one native multiply where they can (src/engine/gpu/spirv.rs).
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let t = a1 * b0 + ((a0 * b0) >> 16u);
    let u = a0 * b1 + (t & 0xffffu);
    return vec2<u32>(a1 * b1 + (t >> 16u) + (u >> 16u), a * b);
}

fn philox(counter: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key_in;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let p0 = mul_hi_lo(0xD2511F53u, c.x);
        let p1 = mul_hi_lo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// The stream of walker `walker` in step `step` (low, high words), from draw block `block`.
fn stream_at(walker: u32, step: vec2<u32>, block: u32) -> Stream {
    return Stream(vec4<u32>(walker, step.x, step.y, block), vec4<u32>(0u), 4u, 0.0, false, 0u, 0u);
}

fn next_bits24(s: ptr<function, Stream>) -> u32 {
    if ((*s).next == 4u) {
        (*s).block = philox((*s).counter, vec2<u32>(SEED_LO, SEED_HI));
        (*s).counter.w += 1u;
        (*s).next = 0u;
    }
    let word = (*s).block[(*s).next];
    (*s).next += 1u;
    (*s).pool = ((*s).pool << 8u) | (word & 0xffu);
    (*s).pooled = min((*s).pooled + 1u, 3u);
    return word >> 8u;
}

// Uniform on [0, 1) for an accept/reject test: the pooled low bytes when there are three.
fn draw_acceptance(s: ptr<function, Stream>) -> f32 {
    if ((*s).pooled == 3u) {
        (*s).pooled = 0u;
        return f32((*s).pool & 0xffffffu) / 16777216.0;
    }
    return draw_uniform(s);
}

// Uniform on [0, 1), 24 bits: exact in f32.
fn draw_uniform(s: ptr<function, Stream>) -> f32 {
    return f32(next_bits24(s)) / 16777216.0;
}

// Uniform on (0, 1]: safe for log.
fn draw_uniform_open(s: ptr<function, Stream>) -> f32 {
    return f32(next_bits24(s) + 1u) / 16777216.0;
}

// Box-Muller with the angle in [-pi, pi), where sin and cos are accurate; keeps the spare.
fn draw_normal(s: ptr<function, Stream>) -> f32 {
    if ((*s).has_spare) {
        (*s).has_spare = false;
        return (*s).spare;
    }
    let radius = sqrt(-2.0 * log(draw_uniform_open(s)));
    let angle = 6.2831853 * draw_uniform(s) - 3.1415927;
    (*s).spare = radius * sin(angle);
    (*s).has_spare = true;
    return radius * cos(angle);
}
