//! Bit-exact conformance of every device backend against the CPU oracle.
//!
//! One generic body per backend primitive, run for every backend compiled in
//! (CUDA; wgpu with native `u64` and with the `vec2<u32>` emulation) on rings
//! from one limb at N = 2^10 up to 33 limbs at N = 2^16, with edge values
//! (0, 1, q−2, q−1) in every limb, single-limb and many-limb batches, and
//! non-contiguous bases. A backend without a device is skipped **loudly**
//! (a `SKIPPED` line on stderr naming the backend and the reason).
//!
//! The CKKS-level tests run whole operations (HMult, rotations, hoisted
//! rotations, conjugation, rotate-and-sum) on a device backend and on the
//! CPU from the same seeds and compare every word of the results.

mod common;

use std::io::Write;
use std::sync::{Arc, OnceLock};

use heformer::backend::{cpu::CpuBackend, transfer, Backend, BackendKind, Buffer};
use heformer::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use heformer::ring::RingContext;
use heformer::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// A device backend under test, with a label for messages.
struct Device {
    label: String,
    backend: Arc<dyn Backend>,
}

/// The device backends that answer, created once per test binary.
// Which pushes happen depends on the features compiled in.
#[allow(clippy::vec_init_then_push)]
fn devices() -> &'static [Device] {
    static DEVICES: OnceLock<Vec<Device>> = OnceLock::new();
    DEVICES.get_or_init(|| {
        #[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(unused_mut))]
        let mut found: Vec<Device> = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        #[cfg(feature = "cuda")]
        match heformer::backend::cuda::CudaBackend::new(0) {
            Ok(b) => found.push(Device {
                label: format!("cuda ({})", b.device_name()),
                backend: Arc::new(b),
            }),
            Err(e) => skipped.push(format!("cuda: {e}")),
        }
        #[cfg(not(feature = "cuda"))]
        skipped.push("cuda: not compiled in (feature `cuda`)".into());
        #[cfg(feature = "wgpu")]
        {
            use heformer::backend::wgpu::{Int64Mode, WgpuBackend, WgpuOptions};
            for (mode, name) in [
                (Int64Mode::Native, "u64"),
                (Int64Mode::Emulated, "vec2<u32>"),
            ] {
                let options = WgpuOptions {
                    allow_software: true,
                    int64: mode,
                };
                match WgpuBackend::new(options) {
                    Ok(b) => found.push(Device {
                        label: format!("wgpu {name} ({})", b.device_name()),
                        backend: Arc::new(b),
                    }),
                    Err(e) => skipped.push(format!("wgpu {name}: {e}")),
                }
            }
        }
        #[cfg(not(feature = "wgpu"))]
        skipped.push("wgpu: not compiled in (feature `wgpu`)".into());
        // Straight to stderr: the test harness captures `eprintln!`, and a
        // skipped backend must show in every run.
        let mut stderr = std::io::stderr();
        for reason in &skipped {
            let _ = writeln!(stderr, "SKIPPED backend {reason}");
        }
        for d in &found {
            let _ = writeln!(stderr, "conformance: testing {}", d.label);
        }
        found
    })
}

fn oracle() -> &'static CpuBackend {
    static CPU: OnceLock<CpuBackend> = OnceLock::new();
    CPU.get_or_init(|| CpuBackend::new(0).expect("cpu backend"))
}

/// The rings of the suite: (name, ring), from 1 + 1 limbs at N = 2^10 to
/// 24 + 9 limbs at N = 2^16; primes of 45 to 60 bits.
fn rings(large: bool) -> Vec<(String, RingContext)> {
    let one_limb = ParametersLiteral::with_bit_sizes(
        "CONFORMANCE_ONE_LIMB",
        10,
        &[50],
        &[55],
        1,
        SecretDistribution::Ternary,
        40,
        SecurityLevel::Insecure,
    )
    .and_then(|l| l.validate())
    .expect("one-limb parameters");
    let mut sets = vec![
        one_limb,
        Parameters::preset("TEST_INSECURE_N10").unwrap(),
        Parameters::preset("TEST_INSECURE_N12").unwrap(),
    ];
    if large {
        sets.push(Parameters::preset("PN16_128").unwrap());
    }
    sets.into_iter()
        .map(|p| {
            let name = format!(
                "logN={} Q={} P={}",
                p.log_n(),
                p.max_level() + 1,
                p.p().len()
            );
            (name, RingContext::new(&p).unwrap())
        })
        .collect()
}

/// Random fully reduced words on `basis`, with edge values at the start of
/// every limb.
fn random_poly(ring: &RingContext, basis: &[usize], rng: &mut ChaCha20Rng) -> Vec<u64> {
    let n = ring.n();
    let mut out = Vec::with_capacity(n * basis.len());
    for &g in basis {
        let q = ring.moduli()[g].value();
        let edges = [0, 1, q - 2, q - 1];
        out.extend((0..n).map(|i| match edges.get(i) {
            Some(&e) => e,
            None => rng.random_range(0..q),
        }));
    }
    out
}

/// Bases exercised on a ring: one limb, every Q limb, a sparse mix of Q and P.
fn bases(ring: &RingContext) -> Vec<Vec<usize>> {
    let top = ring.num_q() - 1;
    let full = ring.full_basis();
    let sparse: Vec<usize> = full.iter().copied().step_by(2).collect();
    vec![vec![top], ring.q_basis(top), sparse, full]
}

/// Compares the first `words` words of two buffers, naming the first mismatch.
fn assert_same(what: &str, device: &Device, got: &Buffer, expected: &Buffer, words: usize) {
    let got = device
        .backend
        .download(got, words)
        .expect("device download");
    let expected = oracle().download(expected, words).expect("cpu download");
    if let Some(i) = got.iter().zip(&expected).position(|(a, b)| a != b) {
        panic!(
            "{what} on {}: word {i} is {} but the CPU oracle has {}",
            device.label, got[i], expected[i]
        );
    }
}

/// Uploads the same words to the device and to the oracle.
fn pair(device: &Device, words: &[u64]) -> (Buffer, Buffer) {
    (
        device.backend.upload(words).expect("device upload"),
        oracle().upload(words).expect("cpu upload"),
    )
}

/// The same words uploaded to the device (index 0) and to the oracle (1).
fn both(device: &Device, words: &[u64]) -> [Buffer; 2] {
    let (d, c) = pair(device, words);
    [d, c]
}

/// [`both`] for several polynomials: one vector of buffers per side.
fn both_all(device: &Device, polys: &[Vec<u64>]) -> [Vec<Buffer>; 2] {
    let (d, c) = polys.iter().map(|p| pair(device, p)).unzip();
    [d, c]
}

/// Runs `op(backend, side, outputs)` on the device (side 0) and on the
/// oracle (side 1), each with `count` fresh outputs of `words` words, and
/// compares every output word for word.
fn compare(
    what: &str,
    device: &Device,
    count: usize,
    words: usize,
    op: impl Fn(&dyn Backend, usize, &mut [Buffer]) -> heformer::Result<()>,
) {
    let sides: [&dyn Backend; 2] = [device.backend.as_ref(), oracle()];
    let outs: Vec<Vec<Buffer>> = sides
        .iter()
        .enumerate()
        .map(|(side, backend)| {
            let mut out: Vec<Buffer> = (0..count).map(|_| backend.alloc(words).unwrap()).collect();
            op(*backend, side, &mut out).unwrap_or_else(|e| panic!("{what} (side {side}): {e}"));
            out
        })
        .collect();
    for (k, (got, expected)) in outs[0].iter().zip(&outs[1]).enumerate() {
        assert_same(&format!("{what}, output {k}"), device, got, expected, words);
    }
}

/// Runs `body` for every device and ring.
fn for_each_case(large: bool, body: impl Fn(&Device, &str, &RingContext, &mut ChaCha20Rng)) {
    for device in devices() {
        for (name, ring) in rings(large) {
            let mut rng = ChaCha20Rng::seed_from_u64(ring.n() as u64 + ring.num_q() as u64);
            body(device, &name, &ring, &mut rng);
        }
    }
}

#[test]
fn upload_download_copy_and_zeroed() {
    for_each_case(false, |device, name, ring, rng| {
        let b = device.backend.as_ref();
        let basis = ring.full_basis();
        let words = random_poly(ring, &basis, rng);
        let buf = b.upload(&words).unwrap();
        assert_eq!(b.download(&buf, words.len()).unwrap(), words, "{name}");
        let mut copy = b.alloc(words.len()).unwrap();
        b.copy(&buf, &mut copy, words.len()).unwrap();
        assert_eq!(b.download(&copy, words.len()).unwrap(), words, "{name}");
        let cloned = buf.try_clone().unwrap();
        assert_eq!(b.download(&cloned, words.len()).unwrap(), words, "{name}");
        let zero = b.alloc_zeroed(words.len()).unwrap();
        assert!(b
            .download(&zero, words.len())
            .unwrap()
            .iter()
            .all(|&w| w == 0));
        assert_eq!(buf.kind(), b.kind());
    });
}

#[test]
fn ntt_forward_and_inverse() {
    for_each_case(true, |device, name, ring, rng| {
        for basis in bases(ring) {
            let words = random_poly(ring, &basis, rng);
            let len = words.len();
            let (mut d, mut c) = pair(device, &words);
            device.backend.ntt_forward(ring, &mut d, &basis).unwrap();
            oracle().ntt_forward(ring, &mut c, &basis).unwrap();
            assert_same(
                &format!("ntt_forward {name} {basis:?}"),
                device,
                &d,
                &c,
                len,
            );
            let (mut d, mut c) = pair(device, &words);
            device.backend.ntt_inverse(ring, &mut d, &basis).unwrap();
            oracle().ntt_inverse(ring, &mut c, &basis).unwrap();
            assert_same(
                &format!("ntt_inverse {name} {basis:?}"),
                device,
                &d,
                &c,
                len,
            );
        }
    });
}

#[test]
fn elementwise_operations() {
    /// An in-place primitive: `(backend, ring, acc, [b, c], scalars, basis)`.
    type InPlace = fn(
        &dyn Backend,
        &RingContext,
        &mut Buffer,
        [&Buffer; 2],
        &[u64],
        &[usize],
    ) -> heformer::Result<()>;
    let ops: [(&str, InPlace); 8] = [
        ("add_assign", |b, r, x, [y, _], _, s| {
            b.add_assign(r, x, y, s)
        }),
        ("sub_assign", |b, r, x, [y, _], _, s| {
            b.sub_assign(r, x, y, s)
        }),
        ("mul_assign", |b, r, x, [y, _], _, s| {
            b.mul_assign(r, x, y, s)
        }),
        ("neg_assign", |b, r, x, _, _, s| b.neg_assign(r, x, s)),
        ("mul_add_assign", |b, r, x, [y, z], _, s| {
            b.mul_add_assign(r, x, y, z, s)
        }),
        ("mul_scalar_add_assign", |b, r, x, [y, _], c, s| {
            b.mul_scalar_add_assign(r, x, y, c, s)
        }),
        ("mul_scalar_assign", |b, r, x, _, c, s| {
            b.mul_scalar_assign(r, x, c, s)
        }),
        ("add_scalar_assign", |b, r, x, _, c, s| {
            b.add_scalar_assign(r, x, c, s)
        }),
    ];
    for_each_case(true, |device, name, ring, rng| {
        for basis in bases(ring) {
            let x = random_poly(ring, &basis, rng);
            let [y, z] = [0, 1].map(|_| both(device, &random_poly(ring, &basis, rng)));
            // One scalar per limb: 0, 1, q − 1 and random ones.
            let scalars: Vec<u64> = basis
                .iter()
                .enumerate()
                .map(|(k, &g)| {
                    let q = ring.moduli()[g].value();
                    [0, 1, q - 1, rng.random_range(0..q)][k % 4]
                })
                .collect();
            for (op, f) in ops {
                compare(
                    &format!("{op} {name}"),
                    device,
                    1,
                    x.len(),
                    |b, side, out| {
                        // The output starts as x: these primitives work in place.
                        let mut acc = b.upload(&x)?;
                        f(b, ring, &mut acc, [&y[side], &z[side]], &scalars, &basis)?;
                        out[0] = acc;
                        Ok(())
                    },
                );
            }
        }
    });
}

#[test]
fn tensor_product() {
    for_each_case(true, |device, name, ring, rng| {
        let basis = ring.q_basis(ring.num_q() - 1);
        let parts: Vec<Vec<u64>> = (0..4).map(|_| random_poly(ring, &basis, rng)).collect();
        let inputs = both_all(device, &parts);
        compare(
            &format!("tensor {name}"),
            device,
            3,
            parts[0].len(),
            |b, side, out| {
                let x = &inputs[side];
                b.tensor(ring, &x[..2], &x[2..], out, &basis)
            },
        );
    });
}

#[test]
fn automorphisms() {
    for_each_case(true, |device, name, ring, rng| {
        let basis = ring.full_basis();
        let words = random_poly(ring, &basis, rng);
        let two_n = 2 * ring.n() as u64;
        let x = both(device, &words);
        for g in [1, 5, 25 % two_n, two_n - 1, two_n - 5] {
            compare(
                &format!("automorphism g={g} {name}"),
                device,
                1,
                words.len(),
                |b, side, out| b.automorphism(ring, &x[side], g, &mut out[0], &basis),
            );
        }
    });
}

/// Levels exercised: the top, one in the middle, and 0.
fn levels(ring: &RingContext) -> Vec<usize> {
    let top = ring.num_q() - 1;
    let mut l = vec![top, top / 2, 0];
    l.dedup();
    l
}

#[test]
fn mod_up_every_digit() {
    for_each_case(true, |device, name, ring, rng| {
        for level in levels(ring) {
            let basis = ring.q_basis(level);
            let coeff = random_poly(ring, &basis, rng);
            let mut eval = oracle().upload(&coeff).unwrap();
            oracle().ntt_forward(ring, &mut eval, &basis).unwrap();
            let eval = oracle().download(&eval, coeff.len()).unwrap();
            let (c, e) = (both(device, &coeff), both(device, &eval));
            let digits = ring.params().digits_at_level(level);
            let ext = ring.n() * ring.extended_basis(level).len();
            compare(
                &format!("mod_up level {level} {name}"),
                device,
                digits,
                ext,
                |b, side, out| b.mod_up(ring, &c[side], &e[side], level, out),
            );
        }
    });
}

#[test]
fn mod_down_and_mod_down_rescale() {
    for_each_case(true, |device, name, ring, rng| {
        for level in levels(ring) {
            let ext_basis = ring.extended_basis(level);
            let polys: Vec<Vec<u64>> = (0..2).map(|_| random_poly(ring, &ext_basis, rng)).collect();
            let x = both_all(device, &polys);
            let words = ring.n() * (level + 1);
            compare(
                &format!("mod_down level {level} {name}"),
                device,
                2,
                words,
                |b, side, out| b.mod_down(ring, &x[side], level, out),
            );
            if level > 0 {
                let what = format!("mod_down_rescale level {level} {name}");
                compare(&what, device, 2, ring.n() * level, |b, side, out| {
                    b.mod_down_rescale(ring, &x[side], level, out)
                });
            }
        }
    });
}

#[test]
fn key_switch_inner_product() {
    for_each_case(true, |device, name, ring, rng| {
        for level in levels(ring) {
            let digits = ring.params().digits_at_level(level);
            let ext_basis = ring.extended_basis(level);
            let digit_words: Vec<Vec<u64>> = (0..digits)
                .map(|_| random_poly(ring, &ext_basis, rng))
                .collect();
            let d = both_all(device, &digit_words);
            // Full keys, and keys of the level's digits on the extended
            // basis of the highest level they serve (capped keys).
            let top = ring.num_q() - 1;
            for (kind, top) in [
                ("full", top),
                ("capped", ring.params().top_level_of_digits(digits)),
            ] {
                let key_basis = ring.extended_basis(top);
                let key_words: Vec<Vec<u64>> = (0..2 * ring.params().digits_at_level(top))
                    .map(|_| random_poly(ring, &key_basis, rng))
                    .collect();
                let [dk, ck] = both_all(device, &key_words);
                let pairs = |k: Vec<Buffer>| -> Vec<(Buffer, Buffer)> {
                    let mut it = k.into_iter();
                    std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
                };
                let keys = [pairs(dk), pairs(ck)];
                let ext = ring.n() * ext_basis.len();
                compare(
                    &format!("inner product level {level} {kind} keys {name}"),
                    device,
                    2,
                    ext,
                    |b, side, out| {
                        let (o0, rest) = out.split_first_mut().expect("two outputs");
                        b.key_switch_inner_product(
                            ring,
                            &d[side],
                            &keys[side],
                            level,
                            o0,
                            &mut rest[0],
                        )
                    },
                );
            }
        }
    });
}

#[test]
fn rescale_by_last_prime() {
    for_each_case(true, |device, name, ring, rng| {
        for level in levels(ring).into_iter().filter(|&l| l > 0) {
            let basis = ring.q_basis(level);
            let x = both(device, &random_poly(ring, &basis, rng));
            compare(
                &format!("rescale level {level} {name}"),
                device,
                1,
                ring.n() * level,
                |b, side, out| b.rescale(ring, &x[side], level, &mut out[0]),
            );
        }
    });
}

/// Words of limb 0 (modulo q_0) for ModRaise: the edges 0, 1, q_0 − 1, the
/// words around q_0/2 where the centering flips (floor(q_0/2) stays
/// positive, floor(q_0/2) + 1 becomes negative), then random words.
fn mod_raise_source(ring: &RingContext, rng: &mut ChaCha20Rng) -> Vec<u64> {
    let q0 = ring.moduli()[0].value();
    let half = q0 / 2;
    let edges = [0, 1, q0 - 1, half - 1, half, half + 1, half + 2];
    (0..ring.n())
        .map(|i| match edges.get(i) {
            Some(&e) => e,
            None => rng.random_range(0..q0),
        })
        .collect()
}

/// ModRaise at the top, a middle and the lowest level: every target limb,
/// q_0's own included, word for word.
#[test]
fn mod_raise_every_level() {
    for_each_case(true, |device, name, ring, rng| {
        let src = both(device, &mod_raise_source(ring, rng));
        for level in levels(ring) {
            compare(
                &format!("mod_raise level {level} {name}"),
                device,
                1,
                ring.n() * (level + 1),
                |b, side, out| b.mod_raise(ring, &src[side], level, &mut out[0]),
            );
        }
    });
}

/// ModRaise refuses a level beyond the chain and short buffers with the
/// oracle's error, word for word, and leaves the output untouched.
#[test]
fn mod_raise_errors_match_the_oracle() {
    for_each_case(false, |device, name, ring, rng| {
        let n = ring.n();
        let top = ring.num_q() - 1;
        let words = mod_raise_source(ring, rng);
        let [src, src_cpu] = both(device, &words);
        let [short, short_cpu] = both(device, &words[..n - 1]);
        let filler = random_poly(ring, &ring.q_basis(top), rng);
        let cases: [(&str, usize, usize, bool); 4] = [
            ("level beyond the chain", top + 1, n * (top + 1), false),
            ("short source", top, n * (top + 1), true),
            ("short output", top, n * (top + 1) - 1, false),
            ("short output at level 0", 0, n - 1, false),
        ];
        for (what, level, out_words, short_src) in cases {
            let [mut out, mut out_cpu] = both(device, &filler[..out_words]);
            let (s, s_cpu) = if short_src {
                (&short, &short_cpu)
            } else {
                (&src, &src_cpu)
            };
            let got = device
                .backend
                .mod_raise(ring, s, level, &mut out)
                .expect_err(what);
            let expected = oracle()
                .mod_raise(ring, s_cpu, level, &mut out_cpu)
                .expect_err(what);
            assert_eq!(got.to_string(), expected.to_string(), "{what} {name}");
            assert_eq!(
                device.backend.download(&out, out_words).unwrap(),
                filler[..out_words],
                "{what} {name}: the refused call wrote its output"
            );
        }
        let mut out = device.backend.alloc(n * (top + 1)).unwrap();
        let err = device
            .backend
            .mod_raise(ring, &src_cpu, top, &mut out)
            .unwrap_err();
        assert!(matches!(err, Error::DeviceMismatch { .. }), "{name}: {err}");
    });
}

#[test]
fn foreign_and_short_buffers_are_errors() {
    for_each_case(false, |device, name, ring, rng| {
        let basis = ring.q_basis(0);
        let words = random_poly(ring, &basis, rng);
        let mut on_device = device.backend.upload(&words).unwrap();
        let on_cpu = oracle().upload(&words).unwrap();
        let err = device
            .backend
            .add_assign(ring, &mut on_device, &on_cpu, &basis)
            .unwrap_err();
        assert!(matches!(err, Error::DeviceMismatch { .. }), "{name}: {err}");
        let short = device.backend.alloc(words.len() - 1).unwrap();
        let err = device
            .backend
            .add_assign(ring, &mut on_device, &short, &basis)
            .unwrap_err();
        assert!(matches!(err, Error::LengthMismatch { .. }), "{name}: {err}");
        // Nothing was changed by the refused calls.
        assert_eq!(
            device.backend.download(&on_device, words.len()).unwrap(),
            words
        );
        // An explicit transfer keeps the words.
        let back = transfer(device.backend.as_ref(), oracle(), &on_device, words.len()).unwrap();
        assert_eq!(back.kind(), BackendKind::Cpu);
        assert_eq!(oracle().download(&back, words.len()).unwrap(), words);
    });
}

/// Whole CKKS operations on a device and on the CPU from the same seeds give
/// the same words; a result moved to the CPU decrypts there.
#[test]
fn ckks_operations_same_seed_same_bits() {
    use heformer::ckks::Ciphertext;
    for device in devices() {
        let rotations = [1, 2, 3, -1, 8];
        let mut gpu = common::Fixture::with_backend(
            "TEST_INSECURE_N12",
            &rotations,
            7,
            device.backend.clone(),
        );
        let mut cpu = common::Fixture::with_backend(
            "TEST_INSECURE_N12",
            &rotations,
            7,
            Arc::new(CpuBackend::new(0).unwrap()),
        );
        let values = cpu.random_values(cpu.slots(), 1.0);
        let (ga, ca) = (gpu.encrypt(&values), cpu.encrypt(&values));
        let (gb, cb) = (gpu.encrypt(&values), cpu.encrypt(&values));
        let same = |what: &str, g: &Ciphertext, c: &Ciphertext| {
            assert_eq!(g.degree(), c.degree(), "{what}");
            let words = gpu.params.n() * (g.level() + 1);
            for k in 0..=g.degree() {
                let gw = device.backend.download(g.part(k).unwrap(), words).unwrap();
                let cw = cpu
                    .ctx
                    .backend()
                    .download(c.part(k).unwrap(), words)
                    .unwrap();
                assert!(gw == cw, "{what} part {k} differs on {}", device.label);
            }
        };
        same("encrypt", &ga, &ca);
        let (ge, ce) = (&gpu.evaluator, &cpu.evaluator);
        same(
            "hmult",
            &ge.mul_relin_rescale_new(&ga, &gb).unwrap(),
            &ce.mul_relin_rescale_new(&ca, &cb).unwrap(),
        );
        same(
            "rotate 3",
            &ge.rotate_new(&ga, 3).unwrap(),
            &ce.rotate_new(&ca, 3).unwrap(),
        );
        same(
            "conjugate",
            &ge.conjugate_new(&ga).unwrap(),
            &ce.conjugate_new(&ca).unwrap(),
        );
        for (g, c) in ge
            .rotate_hoisted_new(&ga, &rotations)
            .unwrap()
            .iter()
            .zip(ce.rotate_hoisted_new(&ca, &rotations).unwrap().iter())
        {
            same("hoisted rotation", g, c);
        }
        same(
            "rotate_and_sum",
            &ge.rotate_and_sum_new(&ga, 1, 4).unwrap(),
            &ce.rotate_and_sum_new(&ca, 1, 4).unwrap(),
        );

        // Moved to the CPU, the device's product decrypts there.
        let product = ge.mul_relin_rescale_new(&ga, &gb).unwrap();
        let moved = cpu.ctx.transfer_ciphertext(&product, &gpu.ctx).unwrap();
        assert_eq!(moved.backend_kind(), BackendKind::Cpu);
        let expected: Vec<_> = values.iter().map(|v| *v * *v).collect();
        cpu.assert_close("device product decrypted on the CPU", &moved, &expected);
    }
}

/// The circuits of issue 4 (a polynomial, a bootstrap with its ModRaise and
/// linear transforms) on a device and on the CPU from the same seeds give
/// the same words.
#[test]
fn circuits_same_seed_same_bits() {
    use heformer::approx::ChebyshevSeries;
    use heformer::circuits::boot::{BootstrapConfig, Bootstrapper};
    use heformer::circuits::poly;
    use heformer::params::Parameters;
    const PRESET: &str = "TEST_INSECURE_BOOT_N11";
    let params = Parameters::preset(PRESET).unwrap();
    let Some(config) = BootstrapConfig::for_preset(&params) else {
        panic!("{PRESET} has a bootstrapping configuration");
    };
    for device in devices() {
        let gpu_ctx = heformer::ckks::CkksContext::new(&params, device.backend.clone()).unwrap();
        let rotations = Bootstrapper::new(gpu_ctx, config.clone())
            .unwrap()
            .rotations();
        let mut gpu = common::Fixture::with_backend(PRESET, &rotations, 9, device.backend.clone());
        let mut cpu = common::Fixture::with_backend(
            PRESET,
            &rotations,
            9,
            Arc::new(CpuBackend::new(0).unwrap()),
        );
        let (n, oracle) = (params.n(), cpu.ctx.backend_arc());
        let same = |what: &str, g: &heformer::ckks::Ciphertext, c: &heformer::ckks::Ciphertext| {
            let words = n * (g.level() + 1);
            for k in 0..=g.degree() {
                let gw = device.backend.download(g.part(k).unwrap(), words).unwrap();
                let cw = oracle.download(c.part(k).unwrap(), words).unwrap();
                assert!(gw == cw, "{what} part {k} differs on {}", device.label);
            }
        };
        let values = cpu.random_values(cpu.slots(), 1.0);
        let (ga, ca) = (gpu.encrypt(&values), cpu.encrypt(&values));
        let series =
            ChebyshevSeries::new((0..16).map(|k| 1.0 / (k + 1) as f64).collect(), (-2.0, 2.0))
                .unwrap();
        same(
            "polynomial",
            &poly::evaluate(&gpu.evaluator, &ga, &series, None).unwrap(),
            &poly::evaluate(&cpu.evaluator, &ca, &series, None).unwrap(),
        );
        let encode0 = |f: &common::Fixture| {
            f.encoder
                .encode_complex(&values, 0, f.params.default_scale())
                .unwrap()
        };
        let (g0, c0) = (
            gpu.encryptor.encrypt(&encode0(&gpu)).unwrap(),
            cpu.encryptor.encrypt(&encode0(&cpu)).unwrap(),
        );
        same("encrypt at level 0", &g0, &c0);
        let (gboot, cboot) = (
            Bootstrapper::new(gpu.ctx.clone(), config.clone()).unwrap(),
            Bootstrapper::new(cpu.ctx.clone(), config.clone()).unwrap(),
        );
        same(
            "bootstrap",
            &gboot.bootstrap(&gpu.evaluator, &g0).unwrap(),
            &cboot.bootstrap(&cpu.evaluator, &c0).unwrap(),
        );
    }
}
