// The walk kernel: every invocation is one walker, advanced job.steps Monte Carlo steps in
// registers, measuring E_L and the O_i every MEASURE_EVERY steps. Per workgroup it writes
// the reduced sums (`partials`) and, per measurement, the summed E_L (`series_parts`).
// Rust owner: src/engine/gpu/mod.rs; `Job` mirrors src/engine/gpu/layout.rs (keep in sync).
//
// Bindings: 0 job (uniform), 1 theta, 2 positions (walker-major, M per walker),
// 3 walker_energy (per-walker sum of E_L - shift over the call; with OBSERVABLES, from
// job.walkers on, OBS_SCALARS per walker: its sums of the observables' scalars over the call,
// which the host clears first), 4 partials (groups x R),
// 5 series_parts (measurements x groups), 6 counters (0: walkers whose step count was cut
// short, 1: walkers reset after a non-finite state), 7 o_rows (SR: the O vectors of the
// samples that enter the metric, a row of K per sample, rows as `MetricSubset` numbers them),
// 8 hist (the observables' histogram counts, blocks x HIST_COPIES x HIST_BINS: `hist_slot`).

struct Job {
    walkers: u32,
    steps: u32,
    step_lo: u32,
    step_hi: u32,
    call_step: u32,
    flags: u32,
    groups_x: u32,
    groups: u32,
    call_measurements: u32,
    first_walker: u32,
    shift: f32,
    slater_n: u32,
    metric_stride: u32,
    metric_every: u32,
    metric_per_walker: u32,
    obs_blocks: u32,
}

@group(0) @binding(0) var<uniform> job: Job;
@group(0) @binding(2) var<storage, read_write> positions: array<f32>;
@group(0) @binding(3) var<storage, read_write> walker_energy: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read_write> series_parts: array<f32>;
@group(0) @binding(6) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(7) var<storage, read_write> o_rows: array<f32>;

const NO_ROW: u32 = 0xffffffffu;
// The row of o_rows the current measurement's O vector goes to, or NO_ROW.
var<private> o_row: u32 = NO_ROW;
@group(0) @binding(8) var<storage, read_write> hist: array<atomic<u32>>;

// A row per walker of the workgroup, CHUNK values wide: the measured E_L - shift of up to
// CHUNK measurements, and at the end CHUNK components of the sums at a time. Thread c then
// adds up column c. The row stride CHUNK + 1 keeps both the row writes and the column sums
// free of bank conflicts. CHUNK: shader.rs, SERIES_CHUNK.
const STRIDE: u32 = CHUNK + 1u;
var<workgroup> rows: array<f32, WG * STRIDE>;

// Per-walker sums of this dispatch, in the order of `partials` (Rust:
// layout::reduced_components): 0 E - shift, 1 its square, 2 accepted moves, 3 walker mean,
// 4 its square, 5.. the O_i, 5 + K.. the (E - shift) O_i; with WORKGROUP_SUMS only the
// first WALKER_SCALARS, the workgroup summing the O_i and (E - shift) O_i at each measurement
// (`sum_derivatives`; a K-long per-walker array leaves registers for large K). With
// OBSERVABLES, partials go on from OBS_BASE with the observables' scalars, OBS_SCALARS per
// block, which the walker sums for the current block in `observed` (a block index into
// `sums` would push the whole array out of registers: that cost every step 30-50 % on an
// H200).
var<private> sums: array<f32, SUMS_LEN>;
var<private> observed: array<f32, OBS_SCALARS>;

// With WORKGROUP_SUMS: the O vectors of TILE_ROWS walkers of the workgroup at a
// measurement, a row each, O_i in column i and E_L - shift in column K (shader.rs,
// `derivative_tile`; one float otherwise).
var<workgroup> tile: array<f32, TILE_ROWS * TILE_STRIDE>;
// The row of `tile` that add_derivative writes.
var<private> tile_row: u32;
// This thread's share of the workgroup's sums over the dispatch: O_i and (E - shift) O_i for
// i = lid + j WG (constant bounds, so registers).
var<private> o_sums: array<f32, KW>;
var<private> eo_sums: array<f32, KW>;

// This workgroup's radial and pair counts of the current block (the first GRID_OFFSET
// counters of the layout in src/engine/observables.rs: radial bins and overflow, pair bins
// and overflow), added to hist when the block changes and at the end of the dispatch. The
// grid cells go to hist directly (HIST_COPIES in src/engine/gpu/layout.rs says why).
var<workgroup> whist: array<atomic<u32>, GRID_OFFSET>;

// Counter i of block b in the histogram copy of workgroup `group`.
fn hist_slot(group: u32, b: u32, i: u32) -> u32 {
    return (b * HIST_COPIES + group % HIST_COPIES) * HIST_BINS + i;
}

// 64-bit step index (low, high) of step k of this dispatch: steps_done + k + 1.
fn step_index(k: u32) -> vec2<u32> {
    let lo = job.step_lo + k + 1u;
    return vec2<u32>(lo, job.step_hi + select(0u, 1u, lo < job.step_lo));
}

fn healthy() -> bool {
    var ok = is_finite(ln_psi);
    for (var m = 0u; m < M; m++) {
        ok = ok && is_finite(x[m]);
    }
    return ok;
}

// A fresh position from the initial distribution (Rust twin: `Chain::reset`).
fn reset(walker: u32, step: vec2<u32>) {
    var rng = stream_at(walker, step, RESET_BLOCK);
    for (var m = 0u; m < M; m++) {
        x[m] = INIT_SPREAD * draw_normal(&rng);
    }
    refresh();
}

// Adds one measurement d = E_L - shift and, per walker, the O_i (Rust twin: `accumulate` in
// src/engine/cpu/mod.rs, after `Walker::local_energy`).
fn accumulate(d: f32) {
    sums[0] += d;
    sums[1] += d * d;
    if (!WORKGROUP_SUMS) {
        log_derivatives(d);
    }
}

fn add_derivative(i: u32, o: f32, d: f32) {
    if (WORKGROUP_SUMS) {
        tile[tile_row * TILE_STRIDE + i] = o;
    } else {
        sums[WALKER_SCALARS + i] += o;
        sums[WALKER_SCALARS + K + i] += d * o;
    }
    if (o_row != NO_ROW) {
        o_rows[o_row * K + i] = o;
    }
}

// With WORKGROUP_SUMS: adds the O vectors of the workgroup's live walkers at this
// measurement, and their products with d = E_L - shift, to the threads' shares: TILE_ROWS
// walkers at a time write theirs to `tile`, then thread t adds up the columns t, t + WG, ...
// of the live rows. `row`: the walker's metric row or NO_ROW. Called in uniform control
// flow: idle lanes reach every barrier too.
fn sum_derivatives(lid: u32, group: u32, live: bool, d: f32, row: u32) {
    // The live walkers of a workgroup come first.
    let live_rows = min(WG, job.walkers - min(job.walkers, group * WG));
    for (var first = 0u; first < WG; first += TILE_ROWS) {
        // The last round's (or measurement's) readers are done with the tile.
        workgroupBarrier();
        if (live && lid >= first && lid < first + TILE_ROWS) {
            tile_row = lid - first;
            tile[tile_row * TILE_STRIDE + K] = d;
            o_row = row;
            log_derivatives(d);
            o_row = NO_ROW;
        }
        workgroupBarrier();
        let filled = min(TILE_ROWS, live_rows - min(live_rows, first));
        for (var j = 0u; j < KW; j++) {
            let i = lid + j * WG;
            if (i < K) {
                var o = 0.0;
                var eo = 0.0;
                for (var r = 0u; r < filled; r++) {
                    let v = tile[r * TILE_STRIDE + i];
                    o += v;
                    eo += tile[r * TILE_STRIDE + K] * v;
                }
                o_sums[j] += o;
                eo_sums[j] += eo;
            }
        }
    }
}

// The metric row of this walker's measurement t of the call (Rust twin:
// `MetricSubset::row`); job.metric_stride = 0 when no metric is asked for.
fn metric_row(walker: u32, t: u32) -> u32 {
    if (job.metric_stride == 0u || walker % job.metric_stride != 0u
        || t % job.metric_every != 0u || t / job.metric_every >= job.metric_per_walker) {
        return NO_ROW;
    }
    return (walker / job.metric_stride) * job.metric_per_walker + t / job.metric_every;
}

// The bin of v * scale below `bins`, or `bins` (the overflow counter) beyond (Rust twin:
// `observables::bin`).
fn hist_bin(v: f32, scale: f32, bins: u32) -> u32 {
    let t = v * scale;
    if (t >= 0.0 && t < f32(bins)) {
        return min(u32(t), bins - 1u);
    }
    return bins;
}

// Adds one sample's observables to block b: E_L's parts and the distances to the sums, and
// when `binned`, the positions to the histograms (Rust twin: `observables::observe`). Call
// after local_energy().
fn observe(group: u32, b: u32, binned: bool) {
    var r2_sum = 0.0;
    var r_sum = 0.0;
    var inv_sum = 0.0;
    for (var p = 0u; p < P; p++) {
        var r2 = 0.0;
        for (var k = 0u; k < D; k++) {
            r2 += x[p * D + k] * x[p * D + k];
        }
        r2_sum += r2;
        if (binned) {
            atomicAdd(&whist[hist_bin(sqrt(r2), RADIAL_SCALE, RADIAL_BINS)], 1u);
        }
        if (binned && GRID_BINS > 0u) {
            let ix = hist_bin(x[p * D] + R_MAX, GRID_SCALE, GRID_BINS);
            let iy = hist_bin(x[min(p * D + 1u, M - 1u)] + R_MAX, GRID_SCALE, GRID_BINS);
            var cell = GRID_BINS * GRID_BINS;
            if (ix < GRID_BINS && iy < GRID_BINS) {
                cell = iy * GRID_BINS + ix;
            }
            atomicAdd(&hist[hist_slot(group, b, GRID_OFFSET + cell)], 1u);
        }
        for (var q = p + 1u; q < P; q++) {
            var d2 = 0.0;
            for (var k = 0u; k < D; k++) {
                let d = x[p * D + k] - x[q * D + k];
                d2 += d * d;
            }
            let r = sqrt(d2);
            r_sum += r;
            inv_sum += 1.0 / r;
            if (binned) {
                atomicAdd(&whist[PAIR_OFFSET + hist_bin(r, PAIR_SCALE, PAIR_BINS)], 1u);
            }
        }
    }
    let pairs = f32(max(P * (P - 1u) / 2u, 1u));
    observed[0] += e_parts.x;
    observed[1] += e_parts.y;
    observed[2] += e_parts.z;
    observed[3] += r_sum / pairs;
    observed[4] += r2_sum / f32(P);
    observed[5] += inv_sum / pairs;
}

// Adds the workgroup's scalar observables of block b to its partials, and each live walker's
// to its own sums, and clears them; uses `rows`, so the series must be flushed first. Called
// in uniform control flow.
fn flush_observed(lid: u32, group: u32, b: u32, walker: u32, live: bool) {
    workgroupBarrier();
    for (var c = 0u; c < OBS_SCALARS; c++) {
        rows[lid * STRIDE + c] = observed[c];
        if (live) {
            walker_energy[job.walkers + walker * OBS_SCALARS + c] += observed[c];
        }
        observed[c] = 0.0;
    }
    workgroupBarrier();
    if (lid < OBS_SCALARS) {
        partials[group * R + OBS_BASE + OBS_SCALARS * b + lid] += column_sum(lid);
    }
    workgroupBarrier();
}

// Adds the workgroup's radial and pair counts to block b of its copy of hist and clears
// them. Called in uniform control flow.
fn flush_histograms(lid: u32, group: u32, b: u32) {
    workgroupBarrier();
    for (var i = lid; i < GRID_OFFSET; i += WG) {
        let count = atomicExchange(&whist[i], 0u);
        if (count != 0u) {
            atomicAdd(&hist[hist_slot(group, b, i)], count);
        }
    }
    workgroupBarrier();
}

// Sums the buffered measurements over the workgroup: measurement t goes to
// series_parts[(first + t) * groups + group]. Called in uniform control flow.
fn flush_series(lid: u32, group: u32, filled: u32, first: u32) {
    workgroupBarrier();
    if (lid < filled) {
        series_parts[(first + lid) * job.groups + group] = column_sum(lid);
    }
    workgroupBarrier();
}

fn column_sum(c: u32) -> f32 {
    var total = 0.0;
    for (var k = 0u; k < WG; k++) {
        total += rows[k * STRIDE + c];
    }
    return total;
}

// Adds value to (or, first in a batch, stores it in) partials[i].
fn add_partial(i: u32, value: f32) {
    if ((job.flags & FLAG_RESET_PARTIALS) != 0u) {
        partials[i] = value;
    } else {
        partials[i] += value;
    }
}

// Adds the dispatch's sums over the workgroup to partials[group * R ..]: the walkers' sums
// by columns of `rows`, CHUNK components at a time, then with WORKGROUP_SUMS each thread its
// share of the O sums. Called in uniform control flow.
fn reduce_sums(lid: u32, group: u32) {
    let base = group * R;
    for (var first = 0u; first < SUMS_LEN; first += CHUNK) {
        let count = min(CHUNK, SUMS_LEN - first);
        workgroupBarrier();
        for (var c = 0u; c < count; c++) {
            rows[lid * STRIDE + c] = sums[first + c];
        }
        workgroupBarrier();
        if (lid < count) {
            add_partial(base + first + lid, column_sum(lid));
        }
    }
    if (WORKGROUP_SUMS) {
        for (var j = 0u; j < KW; j++) {
            let i = lid + j * WG;
            if (i < K) {
                add_partial(base + WALKER_SCALARS + i, o_sums[j]);
                add_partial(base + WALKER_SCALARS + K + i, eo_sums[j]);
            }
        }
    }
}

@compute @workgroup_size(WG)
fn walk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let group = wid.y * job.groups_x + wid.x;
    if (group >= job.groups) {
        // A spare workgroup of the 2-D grid (the whole workgroup returns: no barrier waits).
        return;
    }
    let walker = group * WG + lid;
    let live = walker < job.walkers;
    let global_walker = job.first_walker + walker;
    begin();
    if (live) {
        for (var m = 0u; m < M; m++) {
            x[m] = positions[walker * M + m];
        }
    } else {
        // Idle lanes walk from distinct points and write nothing.
        for (var m = 0u; m < M; m++) {
            x[m] = 0.5 * f32(m + 1u);
        }
    }
    refresh();

    let measuring = (job.flags & FLAG_MEASURE) != 0u;
    let observing = OBSERVABLES && measuring && (job.flags & FLAG_OBSERVE) != 0u;
    // The block whose sums the workgroup holds (none yet).
    var block = 0xffffffffu;
    if (observing) {
        for (var i = lid; i < GRID_OFFSET; i += WG) {
            atomicStore(&whist[i], 0u);
        }
        if ((job.flags & FLAG_RESET_PARTIALS) != 0u) {
            // The block flushes add to the partials: a batch starts them at zero.
            for (var i = lid; i < R - OBS_BASE; i += WG) {
                partials[group * R + OBS_BASE + i] = 0.0;
            }
            storageBarrier();
        }
        workgroupBarrier();
    }
    var resets = 0u;
    var made = 0u;
    var buffered = 0u;
    var measured = 0u;
    for (var k = 0u; k < job.steps; k++) {
        let step = step_index(k);
        var rng = stream_at(global_walker, step, 0u);
        sums[2] += f32(mc_step(&rng));
        if (SINGLE_MOVES && step.x % REFRESH_EVERY == 0u) {
            // Single-particle moves update caches incrementally: stop f32 drift (at global
            // steps, as the CPU engine does).
            refresh();
        }
        let measures = measuring && (job.call_step + k + 1u) % MEASURE_EVERY == 0u;
        let ends_call = (job.flags & FLAG_LAST_OF_CALL) != 0u && k + 1u == job.steps;
        // Health checks where the CPU engine checks (`chain::checks_health`): in between, a
        // non-finite walker is only carried along (its proposals fail the Metropolis test).
        if ((measures || ends_call || step.x % REFRESH_EVERY == 0u) && !healthy()) {
            reset(global_walker, step);
            resets += 1u;
        }
        made += 1u;
        if (measures) {
            var b = 0u;
            // The call's measurement index.
            let index = (job.call_step + k + 1u) / MEASURE_EVERY - 1u;
            if (observing) {
                // Its block: index * blocks / measurements (the host keeps the product
                // within u32).
                b = index * job.obs_blocks / job.call_measurements;
                if (b != block) {
                    if (block != 0xffffffffu) {
                        flush_histograms(lid, group, block);
                        if (buffered > 0u) {
                            flush_series(lid, group, buffered, measured);
                            measured += buffered;
                            buffered = 0u;
                        }
                        flush_observed(lid, group, block, walker, live);
                    }
                    block = b;
                }
            }
            var d = 0.0;
            if (live) {
                d = local_energy() - job.shift;
                o_row = metric_row(walker, index);
                accumulate(d);
                o_row = NO_ROW;
                if (observing) {
                    observe(group, b, index % HIST_EVERY == 0u);
                }
            }
            if (WORKGROUP_SUMS) {
                sum_derivatives(lid, group, live, d, metric_row(walker, index));
            }
            rows[lid * STRIDE + buffered] = d;
            buffered += 1u;
            if (buffered == CHUNK) {
                flush_series(lid, group, buffered, measured);
                measured += buffered;
                buffered = 0u;
            }
        }
    }
    if (buffered > 0u) {
        flush_series(lid, group, buffered, measured);
    }
    if (observing && block != 0xffffffffu) {
        flush_histograms(lid, group, block);
        flush_observed(lid, group, block, walker, live);
    }

    if (live) {
        for (var m = 0u; m < M; m++) {
            positions[walker * M + m] = x[m];
        }
        if (measuring) {
            var total = sums[0];
            if ((job.flags & FLAG_FIRST_OF_CALL) == 0u) {
                total += walker_energy[walker];
            }
            walker_energy[walker] = total;
            if ((job.flags & FLAG_LAST_OF_CALL) != 0u) {
                let walker_mean = total / f32(job.call_measurements);
                sums[3] = walker_mean;
                sums[4] = walker_mean * walker_mean;
            }
        }
        if (made != job.steps) {
            atomicAdd(&counters[0], 1u);
        }
        if (resets > 0u) {
            atomicAdd(&counters[1], resets);
        }
    } else {
        sums[2] = 0.0;
    }
    reduce_sums(lid, group);
}
