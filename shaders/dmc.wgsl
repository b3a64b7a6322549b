// A generation of fixed-node diffusion Monte Carlo: every invocation is one walker, which
// makes its drift-diffusion moves (the Langevin proposal of importance.wgsl at DT = tau),
// refuses any move across a node of psi, and takes the branching factor of its averaged,
// cut-off local energy as its weight. The walkers start each generation with the comb's unit
// weights. Per workgroup it writes the generation's sums (`partials`), which the reduce
// kernel adds up. Rust twin: src/engine/cpu/dmc.rs (`DmcWalkers::generation`); owner:
// src/engine/gpu/dmc.rs, whose `DmcJob` mirrors `Job` (src/engine/gpu/layout.rs).
//
// Bindings: 0 job (uniform), 1 theta, 2 positions (walker-major, M per walker),
// 3 energies (E_L per walker), 4 weights, 5 partials (groups x DMC_SUMS).

struct Job {
    walkers: u32,
    first_walker: u32,
    generation_lo: u32,
    generation_hi: u32,
    groups_x: u32,
    groups: u32,
    slater_n: u32,
    // 0: only measure E_L at the positions (the start); 1: a generation.
    moves: u32,
    tau_eff: f32,
    trial_energy: f32,
    reference: f32,
    cutoff: f32,
}

@group(0) @binding(0) var<uniform> job: Job;
@group(0) @binding(2) var<storage, read_write> positions: array<f32>;
@group(0) @binding(3) var<storage, read_write> energies: array<f32>;
@group(0) @binding(4) var<storage, read_write> weights: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

// The walker's sums, in the order of `GenerationSums::to_array` (energy: w (E_L - reference),
// which the host adds the reference back to).
const S_WEIGHT: u32 = 0u;
const S_ENERGY: u32 = 1u;
const S_WEIGHT2: u32 = 2u;
const S_ACCEPTED: u32 = 3u;
const S_PROPOSED: u32 = 4u;
const S_NODES: u32 = 5u;
const S_DIFFUSION_ACCEPTED: u32 = 6u;
const S_DIFFUSION_PROPOSED: u32 = 7u;
const S_LOST: u32 = 8u;
const S_CLAMPED: u32 = 9u;
var<private> sums: array<f32, DMC_SUMS>;

// A row of sums per walker of the workgroup; thread c adds up column c.
const STRIDE: u32 = DMC_SUMS + 1u;
var<workgroup> rows: array<f32, WG * STRIDE>;

// The factors' log-derivatives (the glue's log_derivatives) go nowhere: DMC optimises nothing.
fn add_derivative(i: u32, o: f32, d: f32) {}

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// S(E_L) = E_ref + clamp(E_L - E_ref, -E_cut, E_cut) (Rust twin: `Branching::limited`).
fn limited(e: f32) -> f32 {
    return job.reference + clamp(e - job.reference, -job.cutoff, job.cutoff);
}

// One fixed-node move of the `len` coordinates from `start` (Rust twin: `fixed_node_move`).
fn fixed_node_move(rng: ptr<function, Stream>, start: u32, len: u32) {
    let ln_ratio = langevin_proposal(rng, start, len);
    var moved = 0.0;
    for (var m = start; m < start + len; m++) {
        let step = y[m] - x[m];
        moved += step * step;
    }
    sums[S_PROPOSED] += 1.0;
    sums[S_DIFFUSION_PROPOSED] += moved;
    if (crosses_node()) {
        sums[S_NODES] += 1.0;
        restore(start, len);
        return;
    }
    var p = 0.0;
    if (!is_nan(ln_ratio)) {
        p = exp(min(ln_ratio, 0.0));
    }
    sums[S_DIFFUSION_ACCEPTED] += p * moved;
    if (metropolis_test(rng, ln_ratio)) {
        accept_proposal(start, len);
        sums[S_ACCEPTED] += 1.0;
    } else {
        restore(start, len);
    }
}

@compute @workgroup_size(WG)
fn generation(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let group = wid.y * job.groups_x + wid.x;
    if (group >= job.groups) {
        // A spare workgroup of the 2-D grid (the whole workgroup returns: no barrier waits).
        return;
    }
    let walker = group * WG + lid;
    let live = walker < job.walkers;
    begin();
    for (var m = 0u; m < M; m++) {
        // Idle lanes walk from distinct points and write nothing.
        x[m] = select(0.5 * f32(m + 1u), positions[min(walker, job.walkers - 1u) * M + m], live);
    }
    refresh();
    let before = energies[min(walker, job.walkers - 1u)];
    if (live && job.moves != 0u) {
        let index = vec2<u32>(job.generation_lo, job.generation_hi);
        var rng = stream_at(job.first_walker + walker, index, DMC_BLOCK);
        if (SINGLE_MOVES) {
            for (var p = 0u; p < P; p++) {
                fixed_node_move(&rng, p * D, D);
            }
        } else {
            fixed_node_move(&rng, 0u, M);
        }
    }
    let after = local_energy();
    if (live) {
        energies[walker] = after;
        if (job.moves == 0u) {
            weights[walker] = 1.0;
        } else {
            let average = 0.5 * (limited(before) + limited(after));
            let factor = exp(-job.tau_eff * (average - job.trial_energy));
            // A walker whose numbers broke down leaves the population.
            let alive = is_finite(after) && is_finite(factor);
            var w = 0.0;
            if (alive) {
                w = factor;
                sums[S_ENERGY] += w * (after - job.reference);
                sums[S_CLAMPED] += select(0.0, 1.0, abs(after - job.reference) > job.cutoff);
            } else {
                sums[S_LOST] += 1.0;
            }
            sums[S_WEIGHT] += w;
            sums[S_WEIGHT2] += w * w;
            weights[walker] = w;
            for (var m = 0u; m < M; m++) {
                positions[walker * M + m] = x[m];
            }
        }
    }
    for (var c = 0u; c < DMC_SUMS; c++) {
        rows[lid * STRIDE + c] = sums[c];
    }
    workgroupBarrier();
    if (lid < DMC_SUMS) {
        var total = 0.0;
        for (var k = 0u; k < WG; k++) {
            total += rows[k * STRIDE + lid];
        }
        partials[group * DMC_SUMS + lid] = total;
    }
}
