//! criterion benches of the CKKS layer and of the backend primitives under it,
//! on the production preset PN16_128 (N = 2^16, 24 limbs, dnum = 3).
//!
//! Run: `cargo bench --bench ckks` (set `HEFORMER_BENCH_PARAMS` to another
//! preset name, `HEFORMER_BENCH_THREADS`, default 1, for the CPU pool, and
//! `HEFORMER_BENCH_BACKEND` to `cpu` (default), `cuda`, `wgpu` or `auto`).
//! Device timings wait for the device (`Backend::synchronize`) in every
//! iteration; key generation, uploads and warm-up stay outside.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use heformer::backend::{create_backend, Backend, BackendChoice};
use heformer::ckks::*;
use heformer::math::Complex;
use heformer::params::Parameters;

fn setup() -> (
    Parameters,
    std::sync::Arc<CkksContext>,
    Evaluator,
    Ciphertext,
    Ciphertext,
) {
    let name = std::env::var("HEFORMER_BENCH_PARAMS").unwrap_or_else(|_| "PN16_128".into());
    let threads = std::env::var("HEFORMER_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let choice = match std::env::var("HEFORMER_BENCH_BACKEND").as_deref() {
        Ok("cuda") => BackendChoice::Cuda,
        Ok("wgpu") => BackendChoice::Wgpu,
        Ok("auto") => BackendChoice::Auto,
        Ok("cpu") | Err(_) => BackendChoice::Cpu,
        Ok(other) => panic!("HEFORMER_BENCH_BACKEND={other}: expected cpu, cuda, wgpu or auto"),
    };
    let params = Parameters::preset(&name).expect("preset");
    let backend = create_backend(choice, threads).expect("backend");
    eprintln!("backend {} on {}", backend.kind(), backend.device_name());
    let ctx = CkksContext::new(&params, backend).expect("context");
    let mut keygen = KeyGenerator::new(ctx.clone(), Prng::from_seed(1));
    let sk = keygen.gen_secret_key().expect("sk");
    let pk = keygen.gen_public_key(&sk).expect("pk");
    let relinearization = Some(keygen.gen_relinearization_key(&sk).expect("rlk"));
    let galois = keygen
        .gen_galois_keys(&sk, &(1..=8).collect::<Vec<_>>(), false)
        .expect("gk");
    let evaluator = Evaluator::new(
        ctx.clone(),
        EvaluationKeys {
            relinearization,
            galois,
        },
    )
    .expect("evaluator");
    let encoder = Encoder::new(ctx.clone());
    let mut encryptor = Encryptor::new(ctx.clone(), EncryptionKey::Public(pk), Prng::from_seed(2))
        .expect("encryptor");
    let values: Vec<Complex> = (0..params.max_slots())
        .map(|i| Complex::new((i as f64).sin(), (i as f64).cos()))
        .collect();
    let pt = encoder
        .encode_complex(&values, params.max_level(), params.default_scale())
        .expect("encode");
    let a = encryptor.encrypt(&pt).expect("encrypt");
    let b = encryptor.encrypt(&pt).expect("encrypt");
    (params, ctx, evaluator, a, b)
}

fn benches(c: &mut Criterion) {
    let (params, ctx, ev, a, b) = setup();
    let id = |op: &str| {
        format!(
            "{}/{op}/logN={}/L={}/dnum={}",
            ctx.backend().kind(),
            params.log_n(),
            params.max_level() + 1,
            params.dnum()
        )
    };
    let mut g = c.benchmark_group("ckks");
    g.sample_size(10).measurement_time(Duration::from_secs(4));

    // Backend primitives.
    let ring = ctx.ring();
    let backend: &dyn Backend = ctx.backend();
    let level = params.max_level();
    let basis = ring.q_basis(level);
    let n = params.n();
    let poly = backend
        .download(&a_part(&a), n * basis.len())
        .expect("download");
    let mut buf = backend.upload(&poly).expect("upload");
    g.bench_function(id("ntt_forward_all_limbs"), |bench| {
        bench.iter(|| synced(backend, || backend.ntt_forward(ring, &mut buf, &basis)))
    });
    g.bench_function(id("ntt_inverse_all_limbs"), |bench| {
        bench.iter(|| synced(backend, || backend.ntt_inverse(ring, &mut buf, &basis)))
    });
    let other = backend.upload(&poly).expect("upload");
    g.bench_function(id("mul_assign"), |bench| {
        bench.iter(|| {
            synced(backend, || {
                backend.mul_assign(ring, &mut buf, &other, &basis)
            })
        })
    });
    let mut digits: Vec<_> = (0..params.digits_at_level(level))
        .map(|_| {
            backend
                .alloc(n * ring.extended_basis(level).len())
                .expect("alloc")
        })
        .collect();
    g.bench_function(id("mod_up_all_digits"), |bench| {
        bench.iter(|| {
            synced(backend, || {
                backend.mod_up(ring, &other, &other, level, &mut digits)
            })
        })
    });
    let mut down = [
        backend.alloc(n * basis.len()).expect("alloc"),
        backend.alloc(n * basis.len()).expect("alloc"),
    ];
    g.bench_function(id("mod_down_pair"), |bench| {
        bench.iter(|| {
            synced(backend, || {
                backend.mod_down(ring, &digits[..2], level, &mut down)
            })
        })
    });
    let mut rescaled = backend.alloc(n * level).expect("alloc");
    g.bench_function(id("rescale_poly"), |bench| {
        bench.iter(|| {
            synced(backend, || {
                backend.rescale(ring, &other, level, &mut rescaled)
            })
        })
    });

    // Whole operations.
    g.bench_function(id("tensor"), |bench| {
        bench.iter(|| black_box(synced(backend, || ev.tensor_new(&a, &b))))
    });
    g.bench_function(id("mul_relin"), |bench| {
        bench.iter(|| black_box(synced(backend, || ev.mul_relin_new(&a, &b))))
    });
    g.bench_function(id("mul_relin_rescale"), |bench| {
        bench.iter(|| black_box(synced(backend, || ev.mul_relin_rescale_new(&a, &b))))
    });
    let prod = ev.mul_relin_new(&a, &b).expect("mul_relin");
    g.bench_function(id("rescale"), |bench| {
        bench.iter(|| black_box(synced(backend, || ev.rescale_new(&prod))))
    });
    g.bench_function(id("rotate"), |bench| {
        bench.iter(|| black_box(synced(backend, || ev.rotate_new(&a, 1))))
    });
    let steps: Vec<i64> = (1..=8).collect();
    g.bench_function(id("rotate_hoisted_8"), |bench| {
        bench.iter(|| black_box(synced(backend, || ev.rotate_hoisted_new(&a, &steps))))
    });
    g.finish();
}

/// Runs `f`, then waits for the backend, so that an iteration's time
/// includes the device work it queued.
fn synced<T>(backend: &dyn Backend, f: impl FnOnce() -> heformer::Result<T>) -> T {
    let out = f().expect("operation");
    backend.synchronize().expect("synchronize");
    out
}

/// A copy of the first part of a ciphertext, as a stand-in polynomial.
fn a_part(ct: &Ciphertext) -> heformer::backend::Buffer {
    ct.part(0).expect("a ciphertext has a part 0").clone()
}

criterion_group!(ckks, benches);
criterion_main!(ckks);
