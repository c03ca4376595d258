//! NTT benchmarks: heformer's `NttTable` (fast path, own Shoup fallback and
//! plain reference) against tfhe-ntt's `prime64::Plan` used directly, at
//! N = 2^16. After the criterion runs, prints median-timing ratios
//! heformer/tfhe-ntt for a 50-bit and a 60-bit prime.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use heformer::math::{generate_ntt_primes, Modulus};
use heformer::ring::ntt::NttTable;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tfhe_ntt::prime64::Plan;

const LOG_N: u32 = 16;

struct Setup {
    bits: u32,
    table: NttTable,
    plan: Plan,
    input: Vec<u64>,
}

fn setup(bits: u32) -> Setup {
    let q = generate_ntt_primes(bits, LOG_N, 1, &[]).expect("prime")[0];
    let table = NttTable::new(Modulus::new(q).expect("modulus"), LOG_N).expect("table");
    let plan = Plan::try_new(1 << LOG_N, q).expect("tfhe-ntt plan");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let input = (0..1usize << LOG_N)
        .map(|_| rng.random_range(0..q))
        .collect();
    Setup {
        bits,
        table,
        plan,
        input,
    }
}

fn bench_ntt(c: &mut Criterion) {
    let s = setup(50);
    let tag = format!("logN={LOG_N}/q={}bit", s.bits);
    let mut buf = s.input.clone();
    let mut group = c.benchmark_group("ntt");
    group.sample_size(30);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));

    // Each transform runs in place on the same buffer; values stay in
    // [0, q) (every variant fully reduces), so repeated application is valid.
    group.bench_function(format!("cpu/ntt_forward/{tag}"), |b| {
        b.iter(|| s.table.forward(black_box(&mut buf)))
    });
    group.bench_function(format!("cpu/ntt_inverse/{tag}"), |b| {
        b.iter(|| s.table.inverse(black_box(&mut buf)))
    });
    group.bench_function(format!("tfhe-ntt/forward/{tag}"), |b| {
        b.iter(|| s.plan.fwd(black_box(&mut buf)))
    });
    group.bench_function(format!("tfhe-ntt/inverse/{tag}"), |b| {
        b.iter(|| {
            s.plan.inv(black_box(&mut buf));
            s.plan.normalize(&mut buf);
        })
    });
    group.bench_function(format!("cpu/ntt_forward_shoup/{tag}"), |b| {
        b.iter(|| s.table.forward_shoup(black_box(&mut buf)))
    });
    group.bench_function(format!("cpu/ntt_inverse_shoup/{tag}"), |b| {
        b.iter(|| s.table.inverse_shoup(black_box(&mut buf)))
    });
    group.sample_size(10);
    group.bench_function(format!("cpu/ntt_forward_reference/{tag}"), |b| {
        b.iter_batched_ref(
            || s.input.clone(),
            |v| s.table.forward_reference(black_box(v)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Median wall time of `runs` applications of `f` to a buffer.
fn median_us(runs: usize, buf: &mut [u64], mut f: impl FnMut(&mut [u64])) -> f64 {
    for _ in 0..10 {
        f(buf);
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f(black_box(&mut *buf));
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[runs / 2]
}

fn print_ratios() {
    const RUNS: usize = 200;
    for bits in [50u32, 60] {
        let s = setup(bits);
        let mut buf = s.input.clone();
        let ours_fwd = median_us(RUNS, &mut buf, |v| s.table.forward(v));
        let theirs_fwd = median_us(RUNS, &mut buf, |v| s.plan.fwd(v));
        let ours_inv = median_us(RUNS, &mut buf, |v| s.table.inverse(v));
        let theirs_inv = median_us(RUNS, &mut buf, |v| {
            s.plan.inv(v);
            s.plan.normalize(v);
        });
        let shoup_fwd = median_us(RUNS, &mut buf, |v| s.table.forward_shoup(v));
        let shoup_inv = median_us(RUNS, &mut buf, |v| s.table.inverse_shoup(v));
        let ref_fwd = median_us(20, &mut buf, |v| s.table.forward_reference(v));
        let at = format!("logN={LOG_N}, q={bits}bit");
        println!(
            "ntt ratio heformer/tfhe-ntt forward: {:.2} (heformer {ours_fwd:.1} us, tfhe-ntt {theirs_fwd:.1} us) [{at}]",
            ours_fwd / theirs_fwd
        );
        println!(
            "ntt ratio heformer/tfhe-ntt inverse: {:.2} (heformer {ours_inv:.1} us, tfhe-ntt {theirs_inv:.1} us) [{at}]",
            ours_inv / theirs_inv
        );
        println!(
            "ntt own Shoup fallback: forward {shoup_fwd:.1} us, inverse {shoup_inv:.1} us; reference forward {ref_fwd:.1} us [{at}]"
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_ntt(&mut criterion);
    criterion.final_summary();
    print_ratios();
}
