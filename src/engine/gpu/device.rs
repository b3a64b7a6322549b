//! Finding adapters and opening a device: listing for `rbm-vmc devices`, the choice made by
//! `--engine auto|gpu` and `--adapter NAME`, and a device with the adapter's real limits whose
//! errors are captured instead of panicking.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::Error;

/// What a user needs to know about an adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// Largest buffer and largest storage-buffer binding, bytes.
    pub max_buffer_size: u64,
    pub max_storage_binding: u64,
    /// Whether this is a real GPU (not a CPU implementation such as lavapipe).
    pub is_gpu: bool,
}

impl AdapterSummary {
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let limits = adapter.limits();
        Self {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver,
            driver_info: info.driver_info,
            max_buffer_size: limits.max_buffer_size,
            max_storage_binding: limits.max_storage_buffer_binding_size,
            is_gpu: is_gpu(&adapter.get_info()),
        }
    }

    /// "NVIDIA H100 (Vulkan, DiscreteGpu)".
    pub fn label(&self) -> String {
        format!("{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

fn is_gpu(info: &wgpu::AdapterInfo) -> bool {
    !matches!(info.device_type, wgpu::DeviceType::Cpu)
}

/// Preference order: discrete, integrated, virtual, other, CPU; Vulkan/Metal/DX12 before GL.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (device, backend)
}

/// Every adapter of the backends allowed by `WGPU_BACKEND` (all when unset), best first.
pub fn adapters() -> Vec<wgpu::Adapter> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let mut list = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    list.sort_by_key(|a| rank(&a.get_info()));
    list
}

/// How to get an adapter, for error messages.
pub const NO_ADAPTER_HELP: &str = "install a GPU driver with Vulkan, Metal or DX12 support, \
     or Mesa's lavapipe (Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1) to run \
     the GPU engine on the CPU; or use --engine cpu";

/// The adapter to run on: among those whose name contains `name` (case-insensitive), or all,
/// best first, the `nth` (modulo their number: processes sharing a machine spread over its
/// GPUs); CPU implementations only when `allow_cpu`. `None` when there is none.
pub fn choose(name: Option<&str>, allow_cpu: bool, nth: usize) -> Option<wgpu::Adapter> {
    let wanted = name.map(str::to_lowercase);
    let mut seen = Vec::new();
    let mut matching: Vec<wgpu::Adapter> = adapters()
        .into_iter()
        .filter(|a| {
            let info = a.get_info();
            let named = wanted
                .as_ref()
                .is_none_or(|w| info.name.to_lowercase().contains(w));
            // One device seen through several backends (Vulkan, GL) counts once: the
            // first, best-ranked entry.
            let key = (info.vendor, info.device, info.name.clone());
            let fresh = !seen.contains(&key);
            seen.push(key);
            named && (allow_cpu || is_gpu(&info)) && fresh
        })
        .collect();
    if matching.is_empty() {
        return None;
    }
    let index = nth % matching.len();
    Some(matching.swap_remove(index))
}

/// A device with the adapter's own limits and an error sink in place of wgpu's panics.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub summary: AdapterSummary,
    pub limits: wgpu::Limits,
    /// Whether the device takes kernels as SPIR-V of our own (Vulkan): `spirv`'s native
    /// multiplies.
    pub takes_spirv: bool,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Gpu {
    pub fn open(adapter: &wgpu::Adapter) -> Result<Self, Error> {
        let summary = AdapterSummary::of(adapter);
        let limits = adapter.limits();
        let takes_spirv = adapter.get_info().backend == wgpu::Backend::Vulkan
            && adapter
                .features()
                .contains(wgpu::Features::PASSTHROUGH_SHADERS);
        // Timestamps let `bench` report kernel time; passthrough takes kernels as SPIR-V.
        let mut required_features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        required_features.set(wgpu::Features::PASSTHROUGH_SHADERS, takes_spirv);
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("rbm-vmc"),
            required_features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&descriptor)).map_err(|e| {
                Error::engine(format!("cannot open a device on {}: {e}", summary.label()))
            })?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().expect("error sink").push(e.to_string());
        }));
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            lost.lock()
                .expect("error sink")
                .push(format!("device lost ({reason:?}): {message}"));
        });
        Ok(Self {
            device,
            queue,
            summary,
            limits,
            takes_spirv,
            errors,
        })
    }

    /// Fails with every error the device reported since the last check.
    pub fn check(&self, doing: &str) -> Result<(), Error> {
        let mut errors = self.errors.lock().expect("error sink");
        if errors.is_empty() {
            return Ok(());
        }
        let all = errors.join("; ");
        errors.clear();
        Err(Error::engine(format!(
            "the GPU ({}) failed while {doing}: {all}",
            self.summary.label()
        )))
    }

    /// Waits for all submitted work.
    pub fn wait(&self, doing: &str) -> Result<(), Error> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::engine(format!("waiting for the GPU while {doing}: {e}")))?;
        self.check(doing)
    }
}

/// The text of `rbm-vmc devices`: every adapter, best first, and what `auto` would pick.
pub fn devices_report() -> String {
    let list: Vec<AdapterSummary> = adapters().iter().map(AdapterSummary::of).collect();
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut out = String::new();
    if list.is_empty() {
        out.push_str(&format!("no adapters found: {NO_ADAPTER_HELP}\n"));
    }
    let auto = list.iter().position(|a| a.is_gpu);
    for (i, a) in list.iter().enumerate() {
        let note = if Some(i) == auto {
            "   <- auto"
        } else if !a.is_gpu {
            "   (CPU implementation: used only with --engine gpu)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{}. {}\n   driver: {} {}; max buffer {:.1} GiB, max storage binding {:.1} GiB{note}\n",
            i + 1,
            a.label(),
            a.driver,
            a.driver_info,
            gib(a.max_buffer_size),
            gib(a.max_storage_binding),
        ));
    }
    out.push_str(match auto {
        Some(_) => "--engine auto runs on the adapter marked above.\n",
        None => "--engine auto runs on the CPU engine: there is no GPU adapter.\n",
    });
    out
}
