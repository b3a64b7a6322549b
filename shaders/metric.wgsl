// The metric's products: with u_r = (o_r - c, 1) for the sample rows r (o_r the O vector
// the walk kernel wrote, c a shift near the mean: the host's <O> of the call), the
// (K + 1) x (K + 1) sums sum_r u_r u_r^T: the centred sums of O O^T, the centred sums of O
// (last column) and the sample count (last entry). Tiles of 16 x 16 outputs per workgroup,
// only those on or above the diagonal (the host mirrors them); the rows go through
// workgroup memory 16 at a time. The host finishes in f64. A dispatch adds at most a few
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

const T: u32 = 16u;
var<workgroup> tile_i: array<f32, 256>;
var<workgroup> tile_j: array<f32, 256>;

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
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let bi = wid.y;
    let bj = wid.x;
    // The whole workgroup leaves together (uniform control flow for the barriers).
    if (bi > bj) {
        return;
    }
    let i = bi * T + lid.y;
    let j = bj * T + lid.x;
    var acc = 0.0;
    let end = job.first_row + job.row_count;
    for (var r0 = job.first_row; r0 < end; r0 += T) {
        tile_i[lid.y * T + lid.x] = entry(r0 + lid.y, bi * T + lid.x);
        tile_j[lid.y * T + lid.x] = entry(r0 + lid.y, bj * T + lid.x);
        workgroupBarrier();
        for (var r = 0u; r < T; r++) {
            acc += tile_i[r * T + lid.y] * tile_j[r * T + lid.x];
        }
        workgroupBarrier();
    }
    let width = job.k + 1u;
    if (i < width && j < width) {
        let at = i * width + j;
        if (job.accumulate != 0u) {
            products[at] += acc;
        } else {
            products[at] = acc;
        }
    }
}
