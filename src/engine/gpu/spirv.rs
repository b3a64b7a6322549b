//! Walker kernels as SPIR-V with Philox's multiplies native (Vulkan only).
//!
//! WGSL has no 32 x 32 -> 64-bit multiply, so `mul_hi_lo` in shaders/rng.wgsl builds the high
//! word from 16-bit pieces: 17 integer operations, 20 times per Philox block, which is
//! most of the two-electron kernel's instructions. SPIR-V has the multiply as one instruction
//! (`OpUMulExtended`, which NVIDIA's compiler is expected to map to one IMAD.WIDE). Here naga
//! writes the kernel's SPIR-V with wgpu's choices where they matter (the runtime checks, no
//! workgroup zero-init, the bindings numbered as wgpu-hal numbers them; the SPIR-V version is
//! naga's default 1.0), and the body of `mul_hi_lo` is replaced by that instruction: the same
//! function of the same words, so the random numbers are bit-identical to the portable
//! kernel's (tests/shaders.rs checks the multiplies and Philox blocks). The driver optimises
//! the rest of the kernel around a different function, so a float sum may round differently
//! and a walker may part at a near-tie (tests/gpu_engine.rs: whole walks).

use super::shader;

/// The function whose body becomes one `OpUMulExtended` (shaders/rng.wgsl).
const MUL_HI_LO: &str = "mul_hi_lo";

// SPIR-V opcodes (SPIR-V specification, section 3.52).
const OP_NAME: u32 = 5;
const OP_MEMBER_NAME: u32 = 6;
const OP_TYPE_INT: u32 = 21;
const OP_TYPE_STRUCT: u32 = 30;
const OP_FUNCTION: u32 = 54;
const OP_FUNCTION_PARAMETER: u32 = 55;
const OP_FUNCTION_END: u32 = 56;
const OP_COMPOSITE_CONSTRUCT: u32 = 80;
const OP_COMPOSITE_EXTRACT: u32 = 81;
const OP_UMUL_EXTENDED: u32 = 151;
const OP_LABEL: u32 = 248;
const OP_RETURN_VALUE: u32 = 254;

/// Words of the module header; word 3 is the id bound.
const HEADER: usize = 5;

/// Entry point `entry` of the kernel `module` (validated as `info`) as SPIR-V for Vulkan, with
/// `mul_hi_lo`'s body one native multiply: `checks` as wgpu's runtime checks would apply
/// them, and the bindings of `groups` numbered as wgpu numbers them in Vulkan (in order, from
/// 0 in each group).
fn native_multiply_spirv(
    (module, info): (&naga::Module, &naga::valid::ModuleInfo),
    entry: &str,
    checks: wgpu::ShaderRuntimeChecks,
    groups: &[Vec<wgpu::BindGroupLayoutEntry>],
) -> Result<Vec<u32>, String> {
    use naga::back::spv;
    use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
    let policy = if checks.bounds_checks {
        BoundsCheckPolicy::Restrict
    } else {
        BoundsCheckPolicy::Unchecked
    };
    let options = spv::Options {
        // Names locate `mul_hi_lo`; they are stripped after the patch.
        flags: spv::WriterFlags::DEBUG,
        bounds_check_policies: BoundsCheckPolicies {
            index: policy,
            buffer: policy,
            image_load: policy,
            binding_array: BoundsCheckPolicy::Unchecked,
        },
        force_loop_bounding: checks.force_loop_bounding,
        emit_int_div_checks: checks.int_div_checks,
        zero_initialize_workgroup_memory: spv::ZeroInitializeWorkgroupMemoryMode::None,
        binding_map: binding_map(groups),
        // A binding the layout lacks is an error, as in wgpu.
        fake_missing_bindings: false,
        ..Default::default()
    };
    let pipeline = spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: entry.to_string(),
    };
    let mut words = spv::write_vec(module, info, &options, Some(&pipeline))
        .map_err(|e| format!("naga's SPIR-V writer: {e}"))?;
    patch_mul_hi_lo(&mut words)?;
    Ok(words)
}

/// One instruction: where it starts, its opcode and its length in words.
#[derive(Clone, Copy)]
struct Instruction {
    at: usize,
    op: u32,
    len: usize,
}

fn instructions(words: &[u32]) -> Result<Vec<Instruction>, String> {
    let mut list = Vec::new();
    let mut at = HEADER;
    while at < words.len() {
        let (op, len) = (words[at] & 0xffff, (words[at] >> 16) as usize);
        if len == 0 || at + len > words.len() {
            return Err(format!("malformed SPIR-V instruction at word {at}"));
        }
        list.push(Instruction { at, op, len });
        at += len;
    }
    Ok(list)
}

/// The string literal that starts at `words[0]` (UTF-8, nul-terminated, little-endian words).
fn literal(words: &[u32]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn instruction(op: u32, operands: &[u32]) -> Vec<u32> {
    let mut words = vec![((operands.len() as u32 + 1) << 16) | op];
    words.extend_from_slice(operands);
    words
}

/// Replaces the body of `mul_hi_lo(a: u32, b: u32) -> vec2<u32>` (high word, low word) in
/// `words` by `OpUMulExtended`, declares the struct it returns, and drops the debug names
/// (some name ids of the old body).
fn patch_mul_hi_lo(words: &mut Vec<u32>) -> Result<(), String> {
    let list = instructions(words)?;
    let operands = |i: &Instruction| &words[i.at + 1..i.at + i.len];
    let function = list
        .iter()
        .find(|i| i.op == OP_NAME && literal(&operands(i)[1..]) == MUL_HI_LO)
        .map(|i| operands(i)[0])
        .ok_or_else(|| format!("the kernel has no function `{MUL_HI_LO}`"))?;
    let start = list
        .iter()
        .position(|i| i.op == OP_FUNCTION && operands(i)[1] == function)
        .ok_or_else(|| format!("`{MUL_HI_LO}` has no OpFunction"))?;
    let result_type = operands(&list[start])[0];
    let params = &list[start + 1..];
    let [a, b] = [0, 1].map(|k| params.get(k).filter(|i| i.op == OP_FUNCTION_PARAMETER));
    let (Some(a), Some(b)) = (a, b) else {
        return Err(format!("`{MUL_HI_LO}` does not take two parameters"));
    };
    let word_type = operands(a)[0];
    if operands(b)[0] != word_type {
        return Err(format!("`{MUL_HI_LO}`'s parameters differ in type"));
    }
    let (a, b) = (operands(a)[1], operands(b)[1]);
    let word_declared = list
        .iter()
        .find(|i| i.op == OP_TYPE_INT && operands(i) == [word_type, 32, 0])
        .ok_or_else(|| format!("`{MUL_HI_LO}` does not take u32"))?;
    let end = list[start..]
        .iter()
        .position(|i| i.op == OP_FUNCTION_END)
        .map(|k| start + k)
        .ok_or_else(|| format!("`{MUL_HI_LO}` has no end"))?;
    // The body: from the first label (right after the two parameters) to the end.
    if list.get(start + 3).map(|i| i.op) != Some(OP_LABEL) {
        return Err(format!("`{MUL_HI_LO}` takes more than two parameters"));
    }

    // New ids: the struct type, the label and the four values.
    let bound = words[3];
    let [pair, label, product, low, high, result] = std::array::from_fn(|k| bound + k as u32);
    let body = [
        instruction(OP_LABEL, &[label]),
        instruction(OP_UMUL_EXTENDED, &[pair, product, a, b]),
        instruction(OP_COMPOSITE_EXTRACT, &[word_type, low, product, 0]),
        instruction(OP_COMPOSITE_EXTRACT, &[word_type, high, product, 1]),
        instruction(OP_COMPOSITE_CONSTRUCT, &[result_type, result, high, low]),
        instruction(OP_RETURN_VALUE, &[result]),
    ]
    .concat();
    let old_body = list[start + 3].at..list[end].at;
    let mut patched = words[..HEADER].to_vec();
    patched[3] = result + 1;
    for i in &list {
        let copy = &words[i.at..i.at + i.len];
        if i.at >= old_body.start && i.at < old_body.end {
            if i.at == old_body.start {
                patched.extend_from_slice(&body);
            }
            continue;
        }
        if i.op == OP_NAME || i.op == OP_MEMBER_NAME {
            continue;
        }
        patched.extend_from_slice(copy);
        if i.at == word_declared.at {
            patched.extend(instruction(OP_TYPE_STRUCT, &[pair, word_type, word_type]));
        }
    }
    *words = patched;
    Ok(())
}

/// The pipeline of entry point `entry` of the WGSL `source`, built from its SPIR-V with
/// native multiplies, on a device that takes SPIR-V (`Gpu::takes_spirv`); `checks` as wgpu's.
/// The bind group layouts are those wgpu would derive: each entry point's bindings, from
/// naga's reflection.
pub fn native_multiply_pipeline(
    device: &wgpu::Device,
    source: &str,
    entry: &str,
    checks: wgpu::ShaderRuntimeChecks,
) -> Result<wgpu::ComputePipeline, String> {
    let (module, info) = shader::validate(source)?;
    let point = module
        .entry_points
        .iter()
        .position(|e| e.name == entry)
        .ok_or_else(|| format!("the kernel has no entry point `{entry}`"))?;
    let groups = reflected_bindings(&module, info.get_entry_point(point))?;
    let words = native_multiply_spirv((&module, &info), entry, checks, &groups)?;
    let size = module.entry_points[point].workgroup_size;
    // SAFETY: the SPIR-V is naga's translation of a module naga has just validated, with one
    // function body replaced by an instruction of the same result (module docs).
    let shader = unsafe {
        device.create_shader_module_passthrough(wgpu::ShaderModuleDescriptorPassthrough {
            label: Some(entry),
            entry_points: vec![wgpu::PassthroughShaderEntryPoint {
                name: entry.into(),
                workgroup_size: (size[0], size[1], size[2]),
            }]
            .into(),
            spirv: Some(words.into()),
            ..Default::default()
        })
    };
    let layouts: Vec<wgpu::BindGroupLayout> = groups
        .iter()
        .map(|entries| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: None,
                entries,
            })
        })
        .collect();
    let layouts: Vec<Option<&wgpu::BindGroupLayout>> = layouts.iter().map(Some).collect();
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &layouts,
        immediate_size: 0,
    });
    Ok(
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&layout),
            module: &shader,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        }),
    )
}

/// The bind group layouts wgpu would derive for the entry point that reaches `used`: group
/// by group, in the order of their binding numbers, each binding a uniform or a storage buffer
/// (read-only where the module never stores to it); any other binding is an error.
fn reflected_bindings(
    module: &naga::Module,
    used: &naga::valid::FunctionInfo,
) -> Result<Vec<Vec<wgpu::BindGroupLayoutEntry>>, String> {
    let mut groups: Vec<Vec<wgpu::BindGroupLayoutEntry>> = Vec::new();
    for (handle, global) in module.global_variables.iter() {
        let Some(binding) = &global.binding else {
            continue;
        };
        if used[handle].is_empty() {
            continue;
        }
        let ty = match global.space {
            naga::AddressSpace::Uniform => wgpu::BufferBindingType::Uniform,
            naga::AddressSpace::Storage { access } => wgpu::BufferBindingType::Storage {
                read_only: !access.contains(naga::StorageAccess::STORE),
            },
            _ => {
                let name = global.name.as_deref().unwrap_or("?");
                return Err(format!(
                    "the native multiply takes buffer bindings only, not `{name}`"
                ));
            }
        };
        // At least the type's size (a runtime-sized array's: one element), as wgpu derives it.
        let size = module.types[global.ty].inner.size(module.to_ctx());
        let group = binding.group as usize;
        groups.resize_with(groups.len().max(group + 1), Vec::new);
        groups[group].push(wgpu::BindGroupLayoutEntry {
            binding: binding.binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(size as u64),
            },
            count: None,
        });
    }
    for entries in &mut groups {
        entries.sort_by_key(|e| e.binding);
    }
    Ok(groups)
}

/// Where the bindings of `groups` land in Vulkan: wgpu numbers each group's bindings from 0
/// in the order of their numbers (wgpu-hal's `create_bind_group_layout`).
fn binding_map(groups: &[Vec<wgpu::BindGroupLayoutEntry>]) -> naga::back::spv::BindingMap {
    let mut map = naga::back::spv::BindingMap::new();
    for (group, entries) in groups.iter().enumerate() {
        for (index, entry) in entries.iter().enumerate() {
            let binding = naga::ResourceBinding {
                group: group as u32,
                binding: entry.binding,
            };
            let target = naga::back::spv::BindingInfo {
                descriptor_set: group as u32,
                binding: index as u32,
                binding_array_size: None,
            };
            map.insert(binding, target);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSpec;
    use crate::engine::gpu::shader::{OrbitalLoops, walk_source};

    fn spirv(source: &str, entry: &str) -> Result<Vec<u32>, String> {
        let (module, info) = shader::validate(source)?;
        let checks = wgpu::ShaderRuntimeChecks::unchecked();
        let groups = reflected_bindings(&module, info.get_entry_point(0))?;
        native_multiply_spirv((&module, &info), entry, checks, &groups)
    }

    fn count(words: &[u32], op: u32) -> usize {
        let list = instructions(words).unwrap();
        list.iter().filter(|i| i.op == op).count()
    }

    /// The walk kernel's `mul_hi_lo` becomes one native multiply: its 16-bit pieces' five
    /// multiplies go (the low word's `a * b` included), every other multiply stays, and the
    /// names go with the old body. (tests/shaders.rs runs it.)
    #[test]
    fn mul_hi_lo_becomes_one_native_multiply() {
        const OP_IMUL: u32 = 132;
        let spec = EngineSpec::from_config(&crate::config::Config::default());
        let source = walk_source(&spec, OrbitalLoops::Looped.into());
        let (module, info) = shader::validate(&source).unwrap();
        let options = naga::back::spv::Options {
            flags: naga::back::spv::WriterFlags::DEBUG,
            ..Default::default()
        };
        let plain = naga::back::spv::write_vec(&module, &info, &options, None).unwrap();
        let patched = spirv(&source, "walk").unwrap();
        assert_eq!(count(&plain, OP_UMUL_EXTENDED), 0);
        assert_eq!(count(&patched, OP_UMUL_EXTENDED), 1);
        assert_eq!(count(&patched, OP_IMUL), count(&plain, OP_IMUL) - 5);
        assert_eq!(count(&patched, OP_NAME), 0);
    }

    #[test]
    fn a_kernel_without_mul_hi_lo_is_refused() {
        let source = "@compute @workgroup_size(1)\nfn main() {}\n";
        let error = spirv(source, "main").unwrap_err();
        assert!(error.contains("no function `mul_hi_lo`"), "{error}");
    }
}
