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
    pub rescale_center: CudaFunction,
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
            rescale_center: conversion("rescale_center")?,
            inner_product: get("key_switch.cu", "inner_product")?,
        })
    }
}
