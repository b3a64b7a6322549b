// The metric's products: with u_r = (o_r - c, 1) for the sample rows r (o_r the O vector
// the walk kernel wrote, c a shift near the mean: the host's <O> of the call), the
// (K + 1) x (K + 1) sums sum_r u_r u_r^T: the centred sums of O O^T, the centred sums of O
// (last column) and the sample count (last entry). Only the tiles on or above the diagonal
// (the host mirrors them). The host finishes in f64. A dispatch adds at most a few
// thousand rows (llvmpipe's loop cap), `accumulate` adding to the earlier dispatches'.
// Rust owner: src/engine/gpu/mod.rs; `Products` mirrors src/engine/gpu/layout.rs.

struct Products {
    rows: u32,
    k: u32,
    first_row: u32,
    row_count: u32,
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> job: Products;
@group(0) @binding(1) var<storage, read> o_rows: array<f32>;
@group(0) @binding(2) var<storage, read> shift: array<f32>;
@group(0) @binding(3) var<storage, read_write> products: array<f32>;

// A workgroup of 16 x 16 threads sums a 64 x 64 tile of outputs, each thread 4 x 4 of them
// in registers; the rows go through workgroup memory 16 at a time (16 x 64 values per side).
const TILE: u32 = 64u;
const ROWS: u32 = 16u;
var<workgroup> tile_i: array<f32, 1024>;
var<workgroup> tile_j: array<f32, 1024>;

// Entry c of u_r: o_r[c] - shift[c], 1 for c = K, 0 beyond (and beyond the last row).
fn entry(r: u32, c: u32) -> f32 {
    if (r >= job.first_row + job.row_count || c > job.k) {
        return 0.0;
    }
    if (c == job.k) {
        return 1.0;
    }
    return o_rows[r * job.k + c] - shift[c];
}

@compute @workgroup_size(16, 16)
fn products_tile(@builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>,
                 @builtin(local_invocation_index) index: u32) {
    let bi = wid.y;
    let bj = wid.x;
    // The whole workgroup leaves together (uniform control flow for the barriers).
    if (bi > bj) {
        return;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let end = job.first_row + job.row_count;
    for (var r0 = job.first_row; r0 < end; r0 += ROWS) {
        for (var e = 0u; e < 4u; e++) {
            let at = index + e * 256u;
            let r = r0 + at / TILE;
            let c = at % TILE;
            tile_i[at] = entry(r, bi * TILE + c);
            tile_j[at] = entry(r, bj * TILE + c);
        }
        workgroupBarrier();
        for (var r = 0u; r < ROWS; r++) {
            let ai = r * TILE + lid.y * 4u;
            let bj4 = r * TILE + lid.x * 4u;
            let a = vec4<f32>(tile_i[ai], tile_i[ai + 1u], tile_i[ai + 2u], tile_i[ai + 3u]);
            let b = vec4<f32>(tile_j[bj4], tile_j[bj4 + 1u], tile_j[bj4 + 2u], tile_j[bj4 + 3u]);
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }
    let width = job.k + 1u;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var p = 0u; p < 4u; p++) {
        let i = bi * TILE + lid.y * 4u + p;
        for (var q = 0u; q < 4u; q++) {
            let j = bj * TILE + lid.x * 4u + q;
            if (i < width && j < width) {
                let at = i * width + j;
                if (job.accumulate != 0u) {
                    products[at] += acc[p][q];
                } else {
                    products[at] = acc[p][q];
                }
            }
        }
    }
}
