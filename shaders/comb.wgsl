// The stochastic comb on the device: the running sums C_j of the weights (a scan per block of
// WG walkers, then a scan of the blocks' totals), then for every slot k the walker j with
// C_{j-1} < (k + u) W / M <= C_j, whose position and energy it gathers. Rust twin:
// `dmc::comb` (src/dmc/comb.rs); owner: src/engine/gpu/dmc.rs, whose `CombJob` mirrors
// `Comb` (src/engine/gpu/layout.rs).
//
// Bindings (each kernel binds a prefix of them): 0 comb (uniform), 1 offsets (the blocks'
// exclusive running totals, then W at [blocks]), 2 weights, 3 cumulative (C_j within its
// block), 4 positions, 5 energies, 6 positions_out, 7 energies_out.

struct Comb {
    walkers: u32,
    groups_x: u32,
    blocks: u32,
    u: f32,
}

@group(0) @binding(0) var<uniform> comb: Comb;
@group(0) @binding(1) var<storage, read_write> offsets: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> cumulative: array<f32>;
@group(0) @binding(4) var<storage, read> positions: array<f32>;
@group(0) @binding(5) var<storage, read> energies: array<f32>;
@group(0) @binding(6) var<storage, read_write> positions_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> energies_out: array<f32>;

var<workgroup> scan: array<f32, SCAN_WG>;

// Inclusive scan of `value` over the workgroup's SCAN_WG threads (Hillis-Steele). Called in
// uniform control flow.
fn scan_workgroup(lid: u32, value: f32) -> f32 {
    scan[lid] = value;
    for (var width = 1u; width < SCAN_WG; width *= 2u) {
        workgroupBarrier();
        var add = 0.0;
        if (lid >= width) {
            add = scan[lid - width];
        }
        workgroupBarrier();
        scan[lid] += add;
    }
    workgroupBarrier();
    return scan[lid];
}

// Block b = workgroup: C_j within the block, and the block's total into offsets[b].
@compute @workgroup_size(SCAN_WG)
fn scan_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wid.y * comb.groups_x + wid.x;
    if (b >= comb.blocks) {
        return;
    }
    let j = b * SCAN_WG + lid;
    var w = 0.0;
    if (j < comb.walkers) {
        w = weights[j];
    }
    let c = scan_workgroup(lid, w);
    if (j < comb.walkers) {
        cumulative[j] = c;
    }
    if (lid == SCAN_WG - 1u) {
        offsets[b] = c;
    }
}

// One workgroup: the blocks' totals in offsets turn into their exclusive running sums, and
// offsets[blocks] into W. Each thread takes a run of consecutive blocks.
@compute @workgroup_size(SCAN_WG)
fn scan_offsets(@builtin(local_invocation_index) lid: u32) {
    let run = (comb.blocks + SCAN_WG - 1u) / SCAN_WG;
    let first = min(lid * run, comb.blocks);
    let end = min(first + run, comb.blocks);
    var total = 0.0;
    for (var b = first; b < end; b++) {
        total += offsets[b];
    }
    let after = scan_workgroup(lid, total);
    var running = after - total;
    for (var b = first; b < end; b++) {
        let t = offsets[b];
        offsets[b] = running;
        running += t;
    }
    if (lid == SCAN_WG - 1u) {
        offsets[comb.blocks] = after;
    }
}

fn running_sum(j: u32) -> f32 {
    return offsets[j / SCAN_WG] + cumulative[j];
}

// Slot k takes the first walker whose running sum reaches its tooth; a tooth past the last
// sum (rounding) takes the last walker with weight, as the Rust comb does.
@compute @workgroup_size(SCAN_WG)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k = (wid.y * comb.groups_x + wid.x) * SCAN_WG + lid;
    if (k >= comb.walkers) {
        return;
    }
    let spacing = offsets[comb.blocks] / f32(comb.walkers);
    let tooth = (f32(k) + comb.u) * spacing;
    var lo = 0u;
    var hi = comb.walkers;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (running_sum(mid) >= tooth) {
            hi = mid;
        } else {
            lo = mid + 1u;
        }
    }
    var j = lo;
    if (j == comb.walkers) {
        j = comb.walkers - 1u;
        while (j > 0u && !(weights[j] > 0.0)) {
            j -= 1u;
        }
    }
    for (var m = 0u; m < M; m++) {
        positions_out[k * M + m] = positions[j * M + m];
    }
    energies_out[k] = energies[j];
}
