// Segmented sums: out[out_offset + j] = sum_{i < count} input[j * stride_j + i * stride_i].
// Reduces the per-workgroup partials (j = component) and the per-workgroup series
// (j = measurement) over the workgroups, on the device, before the host reads them.
// Rust owner: src/engine/gpu/mod.rs; `Reduce` mirrors src/engine/gpu/layout.rs.

struct Reduce {
    count: u32,
    segments: u32,
    stride_j: u32,
    stride_i: u32,
    out_offset: u32,
    groups_x: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> job: Reduce;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

var<workgroup> scratch: array<f32, 64>;

@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = wid.y * job.groups_x + wid.x;
    if (j >= job.segments) {
        return;
    }
    var sum = 0.0;
    for (var i = lid; i < job.count; i += 64u) {
        sum += input[j * job.stride_j + i * job.stride_i];
    }
    scratch[lid] = sum;
    for (var width = 32u; width > 0u; width /= 2u) {
        workgroupBarrier();
        if (lid < width) {
            scratch[lid] += scratch[lid + width];
        }
    }
    if (lid == 0u) {
        output[job.out_offset + j] = scratch[0];
    }
}
