//! Runs the CUDA kernels of `kernels/cuda/` on the CPU, without a GPU or a
//! CUDA toolkit: compiles the real `.cu` files as C++17 together with
//! `tests/cuda_host/shim.h` (CUDA stand-ins) and `tests/cuda_host/harness.cpp`
//! (which launches every kernel with the backend's geometry and checks every
//! word against independent 128-bit arithmetic), runs the harness and
//! expects `ALL OK`. A kernel that no longer compiles as C++ fails the test
//! with the compiler's messages.
//!
//! Needs a C++17 compiler: `$CXX` (may carry arguments, e.g. `ccache g++`),
//! else `g++`, else `c++`; without one the test says SKIPPED on stderr and
//! passes. No crate feature is involved. `HEFORMER_CUDA_HOST_SEED=<u64>`
//! runs the harness with another random seed. See the header of
//! `tests/cuda_host/harness.cpp` for what is covered and how to run it by
//! hand.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The harness takes a few seconds; this only stops a kernel bug that loops.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The first compiler that answers `--version`: program and leading arguments.
fn find_compiler() -> Option<Vec<String>> {
    let from_env = std::env::var("CXX")
        .ok()
        .map(|cxx| cxx.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|words| !words.is_empty());
    let candidates = from_env
        .into_iter()
        .chain([vec!["g++".to_string()], vec!["c++".to_string()]]);
    for words in candidates {
        let works = Command::new(&words[0])
            .args(&words[1..])
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Some(words);
        }
        eprintln!("cuda_host_kernels: `{}` does not run", words.join(" "));
    }
    None
}

/// Compiles the harness to `exe`; panics with the compiler's output on error.
fn compile(compiler: &[String], repo: &Path, exe: &Path) {
    let started = Instant::now();
    let output = Command::new(&compiler[0])
        .args(&compiler[1..])
        .args([
            "-std=c++17",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Wno-unknown-pragmas",
        ])
        .arg("-I")
        .arg(repo.join("kernels/cuda"))
        .arg("-I")
        .arg(repo.join("tests/cuda_host"))
        .arg(repo.join("tests/cuda_host/harness.cpp"))
        .arg("-o")
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", compiler[0]));
    let messages = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "compiling kernels/cuda/*.cu as C++ with `{}` failed ({}):\n{}{}",
        compiler.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        messages
    );
    eprintln!(
        "compiled the harness with `{}` in {:.1} s",
        compiler.join(" "),
        started.elapsed().as_secs_f64()
    );
    if !messages.trim().is_empty() {
        eprintln!("compiler warnings:\n{messages}");
    }
}

/// Runs `exe` with its output (stdout and stderr) in `log`: exit status
/// description, whether it succeeded, and the output.
fn run(exe: &Path, log: &Path) -> (String, bool, String) {
    let file = File::create(log).expect("creating the harness log");
    let mut command = Command::new(exe);
    command
        .stdout(file.try_clone().expect("log handle"))
        .stderr(file);
    if let Ok(seed) = std::env::var("HEFORMER_CUDA_HOST_SEED") {
        command.arg(seed);
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("starting the harness");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the harness") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let output = std::fs::read_to_string(log).unwrap_or_default();
            panic!(
                "the harness ran past {} s (a kernel that loops?); output:\n{output}",
                RUN_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "ran the harness in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let output = std::fs::read_to_string(log).expect("reading the harness log");
    (status.to_string(), status.success(), output)
}

/// Says why the test did not run, straight to stderr (the test harness
/// captures `eprintln!`, and a skip must show in every run).
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

#[test]
fn cuda_kernels_match_128_bit_arithmetic_on_the_host() {
    if cfg!(not(unix)) {
        skipped("the CUDA host harness needs POSIX ucontext (unix only)");
        return;
    }
    let Some(compiler) = find_compiler() else {
        skipped("no C++ compiler ($CXX, g++, c++): the CUDA kernels were NOT run on the host");
        return;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir: PathBuf =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cuda_host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the build folder");
    let exe = dir.join("harness");

    compile(&compiler, repo, &exe);
    let (status, success, output) = run(&exe, &dir.join("output.txt"));

    assert!(
        success && output.contains("ALL OK"),
        "the CUDA host harness failed ({status}); its output (files kept in {}):\n{output}",
        dir.display()
    );
    eprint!("{output}");
    let _ = std::fs::remove_dir_all(&dir);
}
