// Segmented sums: out[out_offset + j * spans + c] = sum of input[j * stride_j + i * stride_i]
// over the span c of `span` values of i < count, for every segment j < segments (spans =
// ceil(count / span)). Reduces the per-workgroup partials (j = component) and series
// (j = measurement) over the workgroups, on the device, before the host reads them; a
// second dispatch with span >= count sums the spans' results when there are several.
// Rust owner: src/engine/gpu/reduce.rs; `Reduce` mirrors src/engine/gpu/layout.rs. Needs
// from the header: WG (a power of two).

struct Reduce {
    count: u32,
    segments: u32,
    stride_j: u32,
    stride_i: u32,
    out_offset: u32,
    groups_x: u32,
    span: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> job: Reduce;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

var<workgroup> scratch: array<f32, WG>;

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let spans = (job.count + job.span - 1u) / job.span;
    let flat = wid.y * job.groups_x + wid.x;
    let j = flat / spans;
    let c = flat % spans;
    if (j >= job.segments) {
        return;
    }
    let end = min(job.count, (c + 1u) * job.span);
    var sum = 0.0;
    for (var i = c * job.span + lid; i < end; i += WG) {
        sum += input[j * job.stride_j + i * job.stride_i];
    }
    scratch[lid] = sum;
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        workgroupBarrier();
        if (lid < width) {
            scratch[lid] += scratch[lid + width];
        }
    }
    if (lid == 0u) {
        output[job.out_offset + j * spans + c] = scratch[0];
    }
}
