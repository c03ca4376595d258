//! The WGSL sources of `kernels/wgsl/` and the compute pipelines built from
//! them, once per backend and entry point, on first use.
//!
//! A shader module is `prelude + modarith.wgsl + dispatch.wgsl + kernel`,
//! the prelude being `modarith_u64.wgsl` (native 64-bit integers) or
//! `modarith_vec2.wgsl` (`vec2<u32>` words); both implement the same word
//! interface, so every kernel is written once. Pipelines use the layout
//! wgpu derives from each entry point: a bind group holds exactly the
//! bindings that entry point uses (see [`Kernel`]).

use std::collections::HashMap;
use std::sync::Mutex;

use super::device::{backend_error, Gpu};
use crate::error::Result;

const PRELUDE_U64: &str = include_str!("../../../kernels/wgsl/modarith_u64.wgsl");
const PRELUDE_VEC2: &str = include_str!("../../../kernels/wgsl/modarith_vec2.wgsl");
const MODARITH: &str = include_str!("../../../kernels/wgsl/modarith.wgsl");
const DISPATCH: &str = include_str!("../../../kernels/wgsl/dispatch.wgsl");

/// The kernel files (basenames) and their sources.
const KERNEL_FILES: [(&str, &str); 5] = [
    (
        "elementwise",
        include_str!("../../../kernels/wgsl/elementwise.wgsl"),
    ),
    ("ntt", include_str!("../../../kernels/wgsl/ntt.wgsl")),
    (
        "automorphism",
        include_str!("../../../kernels/wgsl/automorphism.wgsl"),
    ),
    (
        "basis_conversion",
        include_str!("../../../kernels/wgsl/basis_conversion.wgsl"),
    ),
    (
        "key_switch",
        include_str!("../../../kernels/wgsl/key_switch.wgsl"),
    ),
];

/// The basenames of the WGSL kernel files, without extension.
pub fn wgsl_kernel_files() -> Vec<&'static str> {
    KERNEL_FILES.iter().map(|(name, _)| *name).collect()
}

/// The complete WGSL module of kernel file `basename` (see
/// [`wgsl_kernel_files`]) with the native-`u64` prelude or the `vec2<u32>`
/// one, exactly as the backend compiles it; `None` for an unknown name.
pub fn wgsl_module_source(basename: &str, int64_native: bool) -> Option<String> {
    let (_, kernel) = KERNEL_FILES.iter().find(|(name, _)| *name == basename)?;
    let prelude = if int64_native {
        PRELUDE_U64
    } else {
        PRELUDE_VEC2
    };
    Some([prelude, MODARITH, DISPATCH, kernel].join("\n"))
}

/// Every entry point. The bindings each one uses are listed in its file's
/// header comment; callers bind exactly those (binding 0, the argument
/// block, is always used and bound by the [`Recorder`](super::recorder::Recorder)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    AddAssign,
    SubAssign,
    NegAssign,
    MulAssign,
    MulAddAssign,
    Tensor,
    MulScalarAddAssign,
    MulScalarAssign,
    AddScalarAssign,
    NttForwardStage,
    NttInverseStage,
    NttInverseScale,
    Automorphism,
    ScaleSources,
    Convert,
    CenteredOverflows,
    SubtractThenScale,
    LiftCentered,
    InnerProduct,
}

impl Kernel {
    /// The kernel file (basename) and the entry point's name.
    fn location(self) -> (&'static str, &'static str) {
        use Kernel::*;
        match self {
            AddAssign => ("elementwise", "add_assign"),
            SubAssign => ("elementwise", "sub_assign"),
            NegAssign => ("elementwise", "neg_assign"),
            MulAssign => ("elementwise", "mul_assign"),
            MulAddAssign => ("elementwise", "mul_add_assign"),
            Tensor => ("elementwise", "tensor"),
            MulScalarAddAssign => ("elementwise", "mul_scalar_add_assign"),
            MulScalarAssign => ("elementwise", "mul_scalar_assign"),
            AddScalarAssign => ("elementwise", "add_scalar_assign"),
            NttForwardStage => ("ntt", "ntt_forward_stage"),
            NttInverseStage => ("ntt", "ntt_inverse_stage"),
            NttInverseScale => ("ntt", "ntt_inverse_scale"),
            Automorphism => ("automorphism", "automorphism"),
            ScaleSources => ("basis_conversion", "scale_sources"),
            Convert => ("basis_conversion", "convert"),
            CenteredOverflows => ("basis_conversion", "centered_overflows"),
            SubtractThenScale => ("basis_conversion", "subtract_then_scale"),
            LiftCentered => ("basis_conversion", "lift_centered"),
            InnerProduct => ("key_switch", "inner_product"),
        }
    }
}

/// Shader modules and compute pipelines of one device, built on first use.
#[derive(Debug, Default)]
pub(crate) struct Pipelines {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
}

impl Pipelines {
    /// The pipeline of `kernel`, compiled on first use (a compilation error
    /// is returned and nothing is cached).
    pub(crate) fn get(&self, gpu: &Gpu, kernel: Kernel) -> Result<wgpu::ComputePipeline> {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pipelines.get(&kernel) {
            return Ok(p.clone());
        }
        let (file, entry) = kernel.location();
        let module = self.module(gpu, file)?;
        let pipeline = gpu.scoped(entry, || {
            Ok(gpu
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                }))
        })?;
        pipelines.insert(kernel, pipeline.clone());
        Ok(pipeline)
    }

    fn module(&self, gpu: &Gpu, file: &'static str) -> Result<wgpu::ShaderModule> {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = modules.get(file) {
            return Ok(m.clone());
        }
        let source = wgsl_module_source(file, gpu.int64_native)
            .ok_or_else(|| backend_error(format!("no kernel file {file}")))?;
        let module = gpu.scoped(file, || {
            Ok(gpu
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(file),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                }))
        })?;
        modules.insert(file, module.clone());
        Ok(module)
    }
}
