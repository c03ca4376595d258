//! Run-time compilation of the CUDA kernels by NVRTC, and the
//! register/spill/stack report of `ptxas`.
//!
//! The kernel sources (`kernels/cuda/*.cu`, with `modarith.cuh` supplied as
//! a named header) are embedded in the binary. [`cubins`] compiles them to
//! CUBIN for one architecture (`sm_XY`) once per process and keeps the
//! images; [`compile_report`] compiles them with `--ptxas-options=-v` and
//! parses the per-kernel figures from the program log. Only `libnvrtc` is
//! needed (no GPU, no `libcuda`); its absence is an error, never a panic.

use std::collections::HashMap;
use std::ffi::{c_char, CString};
use std::sync::{Arc, Mutex};

use cudarc::nvrtc::sys;

use super::backend_error;
use crate::error::Result;

/// One kernel file: its basename and source.
#[derive(Debug)]
pub(crate) struct KernelFile {
    pub name: &'static str,
    pub source: &'static str,
}

/// The shared header every kernel file includes.
const HEADER: (&str, &str) = (
    "modarith.cuh",
    include_str!("../../../kernels/cuda/modarith.cuh"),
);

/// Every kernel file, in the order [`cubins`] returns their images.
pub(crate) const FILES: [KernelFile; 5] = [
    KernelFile {
        name: "elementwise.cu",
        source: include_str!("../../../kernels/cuda/elementwise.cu"),
    },
    KernelFile {
        name: "ntt.cu",
        source: include_str!("../../../kernels/cuda/ntt.cu"),
    },
    KernelFile {
        name: "automorphism.cu",
        source: include_str!("../../../kernels/cuda/automorphism.cu"),
    },
    KernelFile {
        name: "basis_conversion.cu",
        source: include_str!("../../../kernels/cuda/basis_conversion.cu"),
    },
    KernelFile {
        name: "key_switch.cu",
        source: include_str!("../../../kernels/cuda/key_switch.cu"),
    },
];

/// Resource usage of one kernel as `ptxas -v` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelReport {
    /// The kernel file's basename (`ntt.cu`).
    pub file: String,
    /// The entry point.
    pub name: String,
    /// Registers per thread.
    pub registers: u32,
    /// Bytes of stack frame per thread.
    pub stack_bytes: u32,
    /// Bytes of spill stores per thread.
    pub spill_stores: u32,
    /// Bytes of spill loads per thread.
    pub spill_loads: u32,
}

/// Compiles every kernel file for `arch` (`"sm_90"`, `"sm_80"`, ...) with
/// `--ptxas-options=-v` and returns the figures of every kernel. Needs only
/// `libnvrtc`; an error when it cannot be loaded or a file does not compile.
pub fn compile_report(arch: &str) -> Result<Vec<KernelReport>> {
    let mut reports = Vec::new();
    for file in &FILES {
        let compiled = compile(file, arch, true)?;
        reports.extend(parse_ptxas_log(file.name, &compiled.log));
    }
    Ok(reports)
}

/// A compiled kernel file.
pub(crate) struct Compiled {
    pub cubin: Vec<u8>,
    pub log: String,
}

/// CUBIN images of every kernel file, by architecture.
type CubinCache = HashMap<String, Arc<Vec<Vec<u8>>>>;

/// The CUBIN images of [`FILES`] for `arch`, compiled once per process.
pub(crate) fn cubins(arch: &str) -> Result<Arc<Vec<Vec<u8>>>> {
    static CACHE: Mutex<Option<CubinCache>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    if let Some(images) = cache.get(arch) {
        return Ok(images.clone());
    }
    let images = Arc::new(
        FILES
            .iter()
            .map(|f| compile(f, arch, false).map(|c| c.cubin))
            .collect::<Result<Vec<_>>>()?,
    );
    cache.insert(arch.to_string(), images.clone());
    Ok(images)
}

/// Whether `arch` names a real architecture (`sm_` then digits, optionally
/// one letter: `sm_90a`).
fn valid_arch(arch: &str) -> bool {
    arch.strip_prefix("sm_").is_some_and(|rest| {
        let digits = rest.trim_end_matches(|c: char| c.is_ascii_lowercase());
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && rest.len() - digits.len() <= 1
    })
}

/// An NVRTC program, destroyed on drop.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: self.0 was created by nvrtcCreateProgram and is destroyed
        // only here; a failure leaks the program and is ignored.
        unsafe {
            let _ = sys::nvrtcDestroyProgram(&mut self.0);
        }
    }
}

/// Compiles one kernel file to CUBIN for `arch`; with `verbose`, ptxas
/// writes its resource report into the returned log.
pub(crate) fn compile(file: &KernelFile, arch: &str, verbose: bool) -> Result<Compiled> {
    // SAFETY: only tries to load libnvrtc dynamically and reports whether it
    // succeeded.
    if !unsafe { sys::is_culib_present() } {
        return Err(backend_error(
            "libnvrtc (CUDA 12 NVRTC) cannot be loaded; put its folder on LD_LIBRARY_PATH",
        ));
    }
    if !valid_arch(arch) {
        return Err(backend_error(format!(
            "`{arch}` is not a real GPU architecture such as sm_90"
        )));
    }
    let c_string = |s: &str| {
        CString::new(s).map_err(|_| backend_error(format!("NUL byte in `{}`", file.name)))
    };
    let source = c_string(file.source)?;
    let name = c_string(file.name)?;
    let header = c_string(HEADER.1)?;
    let header_name = c_string(HEADER.0)?;
    let mut options = vec![
        c_string(&format!("--gpu-architecture={arch}"))?,
        c_string("--std=c++17")?,
    ];
    if verbose {
        options.push(c_string("--ptxas-options=-v")?);
    }
    let option_ptrs: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
    let headers = [header.as_ptr()];
    let include_names = [header_name.as_ptr()];
    let mut program = Program(std::ptr::null_mut());
    // SAFETY: every pointer is a live NUL-terminated string (or an array of
    // them of the stated length) that outlives the program; `program.0`
    // receives the handle and is destroyed by `Program::drop`.
    unsafe {
        sys::nvrtcCreateProgram(
            &mut program.0,
            source.as_ptr(),
            name.as_ptr(),
            1,
            headers.as_ptr(),
            include_names.as_ptr(),
        )
    }
    .result()
    .map_err(|e| backend_error(format!("NVRTC cannot create {}: {e}", file.name)))?;
    // SAFETY: the program is valid and the options array holds
    // `option_ptrs.len()` live strings.
    let status = unsafe {
        sys::nvrtcCompileProgram(program.0, option_ptrs.len() as i32, option_ptrs.as_ptr())
    };
    let log = program_log(&program)?;
    status.result().map_err(|e| {
        backend_error(format!(
            "NVRTC cannot compile {} for {arch}: {e}\n{log}",
            file.name
        ))
    })?;
    let mut size = 0usize;
    // SAFETY: the program compiled; `size` receives the CUBIN size.
    unsafe { sys::nvrtcGetCUBINSize(program.0, &mut size) }
        .result()
        .map_err(|e| backend_error(format!("NVRTC has no CUBIN for {}: {e}", file.name)))?;
    let mut cubin = vec![0u8; size];
    // SAFETY: `cubin` holds exactly the `size` bytes NVRTC reported.
    unsafe { sys::nvrtcGetCUBIN(program.0, cubin.as_mut_ptr().cast()) }
        .result()
        .map_err(|e| backend_error(format!("NVRTC has no CUBIN for {}: {e}", file.name)))?;
    Ok(Compiled { cubin, log })
}

/// The program's compilation log.
fn program_log(program: &Program) -> Result<String> {
    let mut size = 0usize;
    // SAFETY: the program is valid; `size` receives the log size
    // (terminating NUL included).
    unsafe { sys::nvrtcGetProgramLogSize(program.0, &mut size) }
        .result()
        .map_err(|e| backend_error(format!("NVRTC log size: {e}")))?;
    let mut bytes = vec![0u8; size.max(1)];
    // SAFETY: `bytes` has room for the `size` bytes NVRTC writes.
    unsafe { sys::nvrtcGetProgramLog(program.0, bytes.as_mut_ptr().cast()) }
        .result()
        .map_err(|e| backend_error(format!("NVRTC log: {e}")))?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// The first unsigned integer in `text` right before `unit` (`"12 registers"`).
fn number_before(text: &str, unit: &str) -> Option<u32> {
    let head = &text[..text.find(unit)?];
    head.split_whitespace().next_back()?.parse().ok()
}

/// Parses a `ptxas -v` log: each `Compiling entry function 'NAME'` opens a
/// kernel, whose `N bytes stack frame, N bytes spill stores, N bytes spill
/// loads` and `Used N registers` lines follow.
pub(crate) fn parse_ptxas_log(file: &str, log: &str) -> Vec<KernelReport> {
    let mut reports: Vec<KernelReport> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default();
            reports.push(KernelReport {
                file: file.to_string(),
                name: name.to_string(),
                registers: 0,
                stack_bytes: 0,
                spill_stores: 0,
                spill_loads: 0,
            });
        } else if let Some(report) = reports.last_mut() {
            if line.contains("stack frame") {
                report.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
                report.spill_stores = number_before(line, "bytes spill stores").unwrap_or(0);
                report.spill_loads = number_before(line, "bytes spill loads").unwrap_or(0);
            } else if line.contains("Used") && line.contains("registers") {
                report.registers = number_before(line, "registers").unwrap_or(0);
            }
        }
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_ptxas_log() {
        let log = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'add_assign' for 'sm_90'
ptxas info    : Function properties for add_assign
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 14 registers, 908 bytes cmem[0]
ptxas info    : Compiling entry function 'convert' for 'sm_90'
ptxas info    : Function properties for convert
    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 904 bytes cmem[0]
";
        let r = parse_ptxas_log("x.cu", log);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            KernelReport {
                file: "x.cu".into(),
                name: "add_assign".into(),
                registers: 14,
                stack_bytes: 0,
                spill_stores: 0,
                spill_loads: 0,
            }
        );
        assert_eq!(
            (
                r[1].registers,
                r[1].stack_bytes,
                r[1].spill_stores,
                r[1].spill_loads
            ),
            (40, 16, 8, 4)
        );
    }

    #[test]
    fn architecture_names() {
        for ok in ["sm_80", "sm_90", "sm_90a", "sm_120"] {
            assert!(valid_arch(ok), "{ok}");
        }
        for bad in ["", "sm_", "compute_90", "sm_9x0", "sm_90ab", "sm_90 --foo"] {
            assert!(!valid_arch(bad), "{bad}");
        }
    }
}
