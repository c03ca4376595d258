//! The WGSL kernels parse and validate with naga alone (no GPU): every
//! kernel file with the native-`u64` prelude under `SHADER_INT64`, and with
//! the `vec2<u32>` prelude under no capability at all; each declares exactly
//! the entry points it shares with the CUDA kernels, and opens with its
//! header comment.
#![cfg(feature = "wgpu")]

use heformer::backend::wgpu::{wgsl_kernel_files, wgsl_module_source};
use naga::valid::{Capabilities, ValidationFlags, Validator};

/// Kernel files and their entry points (the same names as `kernels/cuda/`).
const ENTRY_POINTS: [(&str, &[&str]); 5] = [
    (
        "elementwise",
        &[
            "add_assign",
            "sub_assign",
            "neg_assign",
            "mul_assign",
            "mul_add_assign",
            "tensor",
            "mul_scalar_add_assign",
            "mul_scalar_assign",
            "add_scalar_assign",
        ],
    ),
    (
        "ntt",
        &[
            "ntt_forward_stage",
            "ntt_inverse_stage",
            "ntt_inverse_scale",
        ],
    ),
    ("automorphism", &["automorphism"]),
    (
        "basis_conversion",
        &[
            "scale_sources",
            "convert",
            "centered_overflows",
            "subtract_then_scale",
            "lift_centered",
        ],
    ),
    ("key_switch", &["inner_product"]),
];

/// Files without entry points: the two preludes and the shared parts.
const SHARED: [&str; 4] = ["modarith_u64", "modarith_vec2", "modarith", "dispatch"];

/// Parses and validates one module; returns its entry point names, or the
/// error as text.
fn validate(file: &str, native: bool, capabilities: Capabilities) -> Result<Vec<String>, String> {
    let source = wgsl_module_source(file, native).ok_or(format!("no module {file}"))?;
    let module = naga::front::wgsl::parse_str(&source)
        .map_err(|e| e.emit_to_string_with_path(&source, file))?;
    Validator::new(ValidationFlags::all(), capabilities)
        .validate(&module)
        .map_err(|e| e.emit_to_string_with_path(&source, file))?;
    Ok(module.entry_points.iter().map(|e| e.name.clone()).collect())
}

fn check_all(native: bool, capabilities: Capabilities) {
    for (file, expected) in ENTRY_POINTS {
        let mut names = validate(file, native, capabilities)
            .unwrap_or_else(|e| panic!("{file}.wgsl (native u64: {native}):\n{e}"));
        let mut expected: Vec<&str> = expected.to_vec();
        names.sort();
        expected.sort();
        assert_eq!(names, expected, "entry points of {file}.wgsl");
    }
}

#[test]
fn kernel_files_are_the_expected_ones() {
    let expected: Vec<&str> = ENTRY_POINTS.iter().map(|(f, _)| *f).collect();
    assert_eq!(wgsl_kernel_files(), expected);
    assert!(wgsl_module_source("no_such_kernel", true).is_none());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/wgsl");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = expected
        .iter()
        .chain(&SHARED)
        .map(|f| format!("{f}.wgsl"))
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed, "files in kernels/wgsl");
    for name in listed {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(
            text.starts_with(&format!("// {name} — ")),
            "{name} must open with its header comment"
        );
    }
}

#[test]
fn native_u64_modules_validate_with_shader_int64() {
    check_all(true, Capabilities::SHADER_INT64);
}

#[test]
fn vec2_modules_validate_without_any_capability() {
    check_all(false, Capabilities::empty());
}

#[test]
fn native_u64_modules_need_shader_int64() {
    for (file, _) in ENTRY_POINTS {
        assert!(
            validate(file, true, Capabilities::empty()).is_err(),
            "{file}.wgsl with the u64 prelude validated without SHADER_INT64"
        );
    }
}
