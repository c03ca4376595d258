//! The loaded kernels of one CUDA context: every entry point of
//! `kernels/cuda/*.cu`, compiled for the device's architecture
//! ([`compile::cubins`]) and looked up by name once.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule};
use cudarc::nvrtc::Ptx;

use super::compile::{self, FILES};
use super::{backend_error, driver_error};
use crate::error::Result;

/// Every entry point the backend launches.
#[derive(Debug)]
pub(crate) struct Kernels {
    pub add_assign: CudaFunction,
    pub sub_assign: CudaFunction,
    pub neg_assign: CudaFunction,
    pub mul_assign: CudaFunction,
    pub mul_add_assign: CudaFunction,
    pub tensor: CudaFunction,
    pub mul_scalar_add_assign: CudaFunction,
    pub mul_scalar_assign: CudaFunction,
    pub add_scalar_assign: CudaFunction,
    pub ntt_forward_stage: CudaFunction,
    pub ntt_inverse_stage: CudaFunction,
    pub ntt_inverse_scale: CudaFunction,
    pub ntt_forward_phase: CudaFunction,
    pub ntt_inverse_phase: CudaFunction,
    pub automorphism: CudaFunction,
    pub scale_sources: CudaFunction,
    pub convert: CudaFunction,
    pub centered_overflows: CudaFunction,
    pub subtract_then_scale: CudaFunction,
    pub lift_centered: CudaFunction,
    pub inner_product: CudaFunction,
}

impl Kernels {
    /// Compiles (once per process and architecture) and loads every kernel
    /// file into `ctx`.
    pub fn load(ctx: &Arc<CudaContext>, arch: &str) -> Result<Self> {
        let images = compile::cubins(arch)?;
        let modules = images
            .iter()
            .zip(&FILES)
            .map(|(image, file)| {
                ctx.load_module(Ptx::from_binary(image.clone()))
                    .map_err(|e| driver_error(&format!("loading {}", file.name), e))
            })
            .collect::<Result<Vec<Arc<CudaModule>>>>()?;
        let get = |file: &str, name: &str| {
            let index = FILES
                .iter()
                .position(|f| f.name == file)
                .ok_or_else(|| backend_error(format!("no kernel file {file}")))?;
            modules[index]
                .load_function(name)
                .map_err(|e| driver_error(&format!("kernel `{name}` of {file}"), e))
        };
        let elementwise = |name: &str| get("elementwise.cu", name);
        let ntt = |name: &str| get("ntt.cu", name);
        let conversion = |name: &str| get("basis_conversion.cu", name);
        Ok(Self {
            add_assign: elementwise("add_assign")?,
            sub_assign: elementwise("sub_assign")?,
            neg_assign: elementwise("neg_assign")?,
            mul_assign: elementwise("mul_assign")?,
            mul_add_assign: elementwise("mul_add_assign")?,
            tensor: elementwise("tensor")?,
            mul_scalar_add_assign: elementwise("mul_scalar_add_assign")?,
            mul_scalar_assign: elementwise("mul_scalar_assign")?,
            add_scalar_assign: elementwise("add_scalar_assign")?,
            ntt_forward_stage: ntt("ntt_forward_stage")?,
            ntt_inverse_stage: ntt("ntt_inverse_stage")?,
            ntt_inverse_scale: ntt("ntt_inverse_scale")?,
            ntt_forward_phase: ntt("ntt_forward_phase")?,
            ntt_inverse_phase: ntt("ntt_inverse_phase")?,
            automorphism: get("automorphism.cu", "automorphism")?,
            scale_sources: conversion("scale_sources")?,
            convert: conversion("convert")?,
            centered_overflows: conversion("centered_overflows")?,
            subtract_then_scale: conversion("subtract_then_scale")?,
            lift_centered: conversion("lift_centered")?,
            inner_product: get("key_switch.cu", "inner_product")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::FILES;

    /// One kernel parameter as the host passes it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Arg {
        /// A device address (`&CudaSlice`, `&CudaView`, or a `u64` 0 for a
        /// null pointer).
        Ptr,
        U32,
        U64,
        LimbMap,
        LimbScalars,
        DigitOperands,
    }
    use Arg::*;

    /// The argument lists `mod.rs` pushes to `LaunchArgs`, in order (desk
    /// checked launch by launch; keep in step with both sides).
    const HOST_ARGS: &[(&str, &[Arg])] = &[
        ("add_assign", &[Ptr, Ptr, Ptr, LimbMap, U32]),
        ("sub_assign", &[Ptr, Ptr, Ptr, LimbMap, U32]),
        ("neg_assign", &[Ptr, Ptr, LimbMap, U32]),
        ("mul_assign", &[Ptr, Ptr, Ptr, LimbMap, U32]),
        ("mul_add_assign", &[Ptr, Ptr, Ptr, Ptr, LimbMap, U32]),
        (
            "tensor",
            &[Ptr, Ptr, Ptr, Ptr, Ptr, Ptr, Ptr, Ptr, LimbMap, U32],
        ),
        (
            "mul_scalar_add_assign",
            &[Ptr, Ptr, Ptr, LimbMap, LimbScalars, U32],
        ),
        ("mul_scalar_assign", &[Ptr, Ptr, LimbMap, LimbScalars, U32]),
        ("add_scalar_assign", &[Ptr, Ptr, LimbMap, LimbScalars, U32]),
        (
            "ntt_forward_stage",
            &[Ptr, Ptr, Ptr, Ptr, LimbMap, U32, U32],
        ),
        (
            "ntt_inverse_stage",
            &[Ptr, Ptr, Ptr, Ptr, LimbMap, U32, U32],
        ),
        ("ntt_inverse_scale", &[Ptr, Ptr, LimbMap, U32]),
        (
            "ntt_forward_phase",
            &[Ptr, Ptr, Ptr, Ptr, LimbMap, U32, U32, U32, U32, U32],
        ),
        (
            "ntt_inverse_phase",
            &[Ptr, Ptr, Ptr, Ptr, LimbMap, U32, U32, U32, U32, U32],
        ),
        ("automorphism", &[Ptr, Ptr, Ptr, U32]),
        ("scale_sources", &[Ptr, Ptr, Ptr, LimbMap, LimbScalars, U32]),
        ("centered_overflows", &[Ptr, Ptr, Ptr, U32, U32]),
        (
            "convert",
            &[Ptr, Ptr, Ptr, Ptr, LimbMap, Ptr, Ptr, U32, U32, U32],
        ),
        (
            "subtract_then_scale",
            &[Ptr, Ptr, Ptr, LimbMap, LimbScalars, U32],
        ),
        ("lift_centered", &[Ptr, Ptr, Ptr, LimbMap, U64, U32]),
        (
            "inner_product",
            &[Ptr, Ptr, DigitOperands, Ptr, LimbMap, U32, U32],
        ),
    ];

    /// Every `extern "C" __global__` entry point of `source` with its
    /// parameters classified.
    fn entry_points(source: &str) -> Vec<(String, Vec<Arg>)> {
        source
            .split("extern \"C\" __global__")
            .skip(1)
            .map(|rest| {
                let rest = match rest.split_once("__launch_bounds__(") {
                    Some((_, after)) => after.split_once(')').unwrap().1,
                    None => rest,
                };
                let (head, params) = rest.split_once('(').unwrap();
                let name = head.split_whitespace().last().unwrap().to_string();
                let params = params.split_once(')').unwrap().0;
                let args = params
                    .split(',')
                    .map(|p| {
                        let p = p.trim();
                        if p.contains('*') {
                            return Ptr;
                        }
                        match p.split_whitespace().next().unwrap() {
                            "u32" => U32,
                            "u64" => U64,
                            "LimbMap" => LimbMap,
                            "LimbScalars" => LimbScalars,
                            "DigitOperands" => DigitOperands,
                            other => panic!("{name}: parameter type `{other}` not expected"),
                        }
                    })
                    .collect();
                (name, args)
            })
            .collect()
    }

    #[test]
    fn host_argument_lists_match_the_kernel_signatures() {
        let kernels: Vec<_> = FILES.iter().flat_map(|f| entry_points(f.source)).collect();
        assert_eq!(kernels.len(), HOST_ARGS.len(), "{kernels:?}");
        for (name, args) in &kernels {
            let host = HOST_ARGS
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no host argument list for `{name}`"));
            assert_eq!(host.1, &args[..], "`{name}`");
        }
    }
}
