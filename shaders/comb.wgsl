// The stochastic comb on the device: the running sums C_j of the weights (a scan per block of
// SCAN_WG walkers, then a scan of the blocks' totals), then for every slot k the walker j with
// C_{j-1} < (k + u) W / M <= C_j, whose position and energy it gathers. Rust twin:
// `dmc::comb` (src/dmc/comb.rs); owner: src/engine/gpu/dmc.rs, whose `CombJob` mirrors
// `Comb` (src/engine/gpu/layout.rs).
//
// Precision: at a million walkers an f32 running sum keeps a tenth of a walker's weight, which
// would move the teeth by that much. So the blocks' offsets are kept in slot units (the
// spacing W / M) as an integer and a fraction in [0, 1), and a slot's tooth, k + u in those
// units, is compared with them exactly; within a block the sums are small and f32 holds them.
//
// Bindings (each kernel binds a prefix of them): 0 comb (uniform), 1 offsets ([0] the spacing,
// then per block b <= blocks at 1 + 2b the integer part of its start in slot units (the bits
// of a u32) and at 2 + 2b the fraction; scan_blocks leaves the block's total there), 2 weights,
// 3 cumulative (C_j within its block), 4 positions, 5 energies, 6 positions_out, 7 energies_out.

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
    workgroupBarrier();
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

// Block b = workgroup: C_j within the block, and the block's total into its fraction slot.
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
        offsets[2u + 2u * b] = c;
    }
}

// An offset in slot units: an integer and a fraction in [0, 1).
struct Slots {
    whole: u32,
    part: f32,
}

fn carried(s: Slots) -> Slots {
    let c = floor(s.part);
    return Slots(s.whole + u32(c), s.part - c);
}

// One workgroup: the spacing W / M, and every block's start (and at `blocks` the total) in
// slot units. Each thread takes a run of consecutive blocks.
@compute @workgroup_size(SCAN_WG)
fn scan_offsets(@builtin(local_invocation_index) lid: u32) {
    let run = (comb.blocks + SCAN_WG - 1u) / SCAN_WG;
    let first = min(lid * run, comb.blocks);
    let end = min(first + run, comb.blocks);
    var total = 0.0;
    for (var b = first; b < end; b++) {
        total += offsets[2u + 2u * b];
    }
    scan_workgroup(lid, total);
    let spacing = scan[SCAN_WG - 1u] / f32(comb.walkers);
    var mine = Slots(0u, 0.0);
    for (var b = first; b < end; b++) {
        mine = carried(Slots(mine.whole, mine.part + offsets[2u + 2u * b] / spacing));
    }
    // Whole slots below 2^24 (the host's limit on walkers) are exact in f32.
    let whole = u32(scan_workgroup(lid, f32(mine.whole))) - mine.whole;
    let part = scan_workgroup(lid, mine.part) - mine.part;
    var at = carried(Slots(whole, part));
    for (var b = first; b < end; b++) {
        let length = offsets[2u + 2u * b] / spacing;
        offsets[1u + 2u * b] = bitcast<f32>(at.whole);
        offsets[2u + 2u * b] = at.part;
        at = carried(Slots(at.whole, at.part + length));
    }
    if (lid == SCAN_WG - 1u) {
        offsets[0] = spacing;
        offsets[1u + 2u * comb.blocks] = bitcast<f32>(at.whole);
        offsets[2u + 2u * comb.blocks] = at.part;
    }
}

fn block_start(b: u32) -> Slots {
    return Slots(bitcast<u32>(offsets[1u + 2u * b]), offsets[2u + 2u * b]);
}

// The last walker from `j` down with weight, else the first after it.
fn weighted_near(j: u32) -> u32 {
    var i = j;
    while (i > 0u && !(weights[i] > 0.0)) {
        i -= 1u;
    }
    while (i + 1u < comb.walkers && !(weights[i] > 0.0)) {
        i += 1u;
    }
    return i;
}

// Slot k's tooth is k + u in slot units, stretched by the scanned total L over M (the f32
// spacing leaves L a little off M, by up to a slot near 2^24 walkers): its block is the first
// whose end reaches it, and in the block the first walker whose running sum does. A tooth
// past the last sum (rounding) takes the last walker with weight, as the Rust comb does.
@compute @workgroup_size(SCAN_WG)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k = (wid.y * comb.groups_x + wid.x) * SCAN_WG + lid;
    if (k >= comb.walkers) {
        return;
    }
    let total = block_start(comb.blocks);
    let stretch = (f32(i32(total.whole) - i32(comb.walkers)) + total.part) / f32(comb.walkers);
    let t = comb.u + (f32(k) + comb.u) * stretch;
    let tooth = Slots(u32(max(i32(k) + i32(floor(t)), 0)), t - floor(t));
    var lo = 0u;
    var hi = comb.blocks;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        let end = block_start(mid + 1u);
        if (end.whole > tooth.whole || (end.whole == tooth.whole && end.part >= tooth.part)) {
            hi = mid;
        } else {
            lo = mid + 1u;
        }
    }
    var j = comb.walkers - 1u;
    if (lo < comb.blocks) {
        let start = block_start(lo);
        // The tooth within the block, in weights; above 0 so that it never takes a walker
        // without weight at the block's start.
        let slots = f32(tooth.whole - start.whole) + (tooth.part - start.part);
        let local = max(slots * offsets[0], 1e-30);
        let last = min((lo + 1u) * SCAN_WG, comb.walkers) - 1u;
        var a = lo * SCAN_WG;
        var z = last + 1u;
        while (a < z) {
            let mid = (a + z) / 2u;
            if (cumulative[mid] >= local) {
                z = mid;
            } else {
                a = mid + 1u;
            }
        }
        j = min(a, last);
    }
    j = weighted_near(j);
    for (var m = 0u; m < M; m++) {
        positions_out[k * M + m] = positions[j * M + m];
    }
    energies_out[k] = energies[j];
}
