//! Property tests: modular arithmetic against `u128`, the NTT against its
//! definition and its other implementations, and the encoder's round trip.

mod common;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use common::Fixture;
use heformer::math::{generate_ntt_primes, Complex, Modulus};
use heformer::ring::ntt::NttTable;
use proptest::prelude::*;

// ------------------------------------------------------------ Modulus --

/// The three NTT-friendly primes (N = 2^10) of each bit size 20..=61.
fn primes_of(bits: u32) -> [u64; 3] {
    static PRIMES: OnceLock<Vec<[u64; 3]>> = OnceLock::new();
    PRIMES.get_or_init(|| {
        (20..=61)
            .map(|b| {
                let p = generate_ntt_primes(b, 10, 3, &[]).unwrap();
                [p[0], p[1], p[2]]
            })
            .collect()
    })[(bits - 20) as usize]
}

/// A random modulus: one of the primes of a random bit size in 20..=61.
fn modulus() -> impl Strategy<Value = Modulus> {
    (20u32..=61, 0usize..3).prop_map(|(bits, i)| {
        let q = primes_of(bits)[i];
        assert_eq!(64 - q.leading_zeros(), bits);
        Modulus::new(q).unwrap()
    })
}

/// Any word, with the edges 0.., ..u64::MAX weighted up.
fn word() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => any::<u64>(),
        1 => 0u64..4,
        1 => (u64::MAX - 3)..=u64::MAX,
    ]
}

/// Any 128-bit integer, with edges weighted up.
fn wide() -> impl Strategy<Value = u128> {
    prop_oneof![
        6 => any::<u128>(),
        1 => any::<u64>().prop_map(u128::from),
        1 => (u128::MAX - 3)..=u128::MAX,
    ]
}

/// A residue in [0, q), with 0, 1 and q - 1 weighted up.
fn residue(q: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0..q,
        1 => Just(0),
        1 => Just(1),
        1 => Just(q - 1),
    ]
}

/// A modulus with two residues.
fn modulus_and_residues() -> impl Strategy<Value = (Modulus, u64, u64)> {
    modulus().prop_flat_map(|m| (Just(m), residue(m.value()), residue(m.value())))
}

/// `base^exp mod q` by square and multiply in `u128`.
fn pow_u128(base: u64, mut exp: u64, q: u64) -> u64 {
    let q = q as u128;
    let (mut result, mut b) = (1u128 % q, base as u128 % q);
    while exp > 0 {
        if exp & 1 == 1 {
            result = result * b % q;
        }
        b = b * b % q;
        exp >>= 1;
    }
    result as u64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn modulus_mul_any_words(m in modulus(), a in word(), b in word()) {
        let q = m.value() as u128;
        prop_assert_eq!(m.mul(a, b) as u128, a as u128 * b as u128 % q);
    }

    #[test]
    fn modulus_mul_reduced((m, a, b) in modulus_and_residues()) {
        let q = m.value() as u128;
        prop_assert_eq!(m.mul(a, b) as u128, a as u128 * b as u128 % q);
    }

    #[test]
    fn modulus_reduce(m in modulus(), x in wide(), w in word(), s in any::<i64>()) {
        let q = m.value();
        prop_assert_eq!(m.reduce_u128(x) as u128, x % q as u128);
        prop_assert_eq!(m.reduce(w), w % q);
        prop_assert_eq!(m.reduce_i64(s) as i128, (s as i128).rem_euclid(q as i128));
        // Products of residues plus a residue, the key-switching shape.
        let (a, b, c) = (w % q, x as u64 % q, s.unsigned_abs() % q);
        let y = a as u128 * b as u128 + c as u128;
        prop_assert_eq!(m.reduce_u128(y) as u128, y % q as u128);
    }

    #[test]
    fn modulus_mul_shoup((m, w, _) in modulus_and_residues(), a in word()) {
        let q = m.value();
        let ws = m.shoup(w);
        prop_assert_eq!(ws as u128, ((w as u128) << 64) / q as u128);
        let want = (a as u128 * w as u128 % q as u128) as u64;
        prop_assert_eq!(m.mul_shoup(a, w, ws), want);
        let lazy = m.mul_shoup_lazy(a, w, ws);
        prop_assert!(lazy < 2 * q, "lazy result {} not below 2q", lazy);
        prop_assert_eq!(lazy % q, want);
    }

    #[test]
    fn modulus_add_sub_neg((m, a, b) in modulus_and_residues()) {
        let q = m.value() as u128;
        let (a128, b128) = (a as u128, b as u128);
        prop_assert_eq!(m.add(a, b) as u128, (a128 + b128) % q);
        prop_assert_eq!(m.sub(a, b) as u128, (a128 + q - b128) % q);
        prop_assert_eq!(m.neg(a) as u128, (q - a128) % q);
        prop_assert_eq!(m.add(m.sub(a, b), b), a);
        let c = m.center(a) as i128;
        prop_assert!(-(q as i128) / 2 < c && c <= q as i128 / 2);
        prop_assert_eq!(c.rem_euclid(q as i128) as u128, a128);
    }

    #[test]
    fn modulus_pow(m in modulus(), base in word(), exp in word()) {
        let q = m.value();
        prop_assert_eq!(m.pow(base, exp), pow_u128(base, exp, q));
        // Fermat: q is prime.
        if base % q != 0 {
            prop_assert_eq!(m.pow(base, q - 1), 1);
        }
        prop_assert_eq!(m.pow(base, 0), 1);
    }

    #[test]
    fn modulus_inv(m in modulus(), a in word()) {
        let q = m.value();
        match m.inv(a) {
            Some(x) => {
                prop_assert!(a % q != 0);
                prop_assert!(x < q);
                prop_assert_eq!(a as u128 % q as u128 * x as u128 % q as u128, 1);
                // Agrees with Fermat's inverse.
                prop_assert_eq!(x, pow_u128(a, q - 2, q));
            }
            None => prop_assert_eq!(a % q, 0, "no inverse returned for a unit"),
        }
    }
}

// ---------------------------------------------------------------- NTT --

/// NTT tables by (log_n, bits, prime index).
type TableCache = Mutex<HashMap<(u32, u32, usize), NttTable>>;

/// The NTT table for N = 2^log_n and a prime of `bits` bits (cached).
fn ntt_table(log_n: u32, bits: u32, i: usize) -> NttTable {
    static TABLES: OnceLock<TableCache> = OnceLock::new();
    let mut cache = TABLES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    cache
        .entry((log_n, bits, i))
        .or_insert_with(|| {
            let q = generate_ntt_primes(bits, log_n, 3, &[]).unwrap()[i];
            NttTable::new(Modulus::new(q).unwrap(), log_n).unwrap()
        })
        .clone()
}

/// An NTT table with two polynomials of its ring.
type TableAndPolys = (NttTable, Vec<u64>, Vec<u64>);

/// A table for N = 2^4 .. 2^8 and a prime of 20..=61 bits, with two random
/// polynomials (coefficients in [0, q)).
fn table_and_polys() -> impl Strategy<Value = TableAndPolys> {
    (4u32..=8, 20u32..=61, 0usize..3).prop_flat_map(|(log_n, bits, i)| {
        let table = ntt_table(log_n, bits, i);
        let q = table.modulus().value();
        let n = table.n();
        let poly = prop_oneof![
            8 => proptest::collection::vec(0..q, n),
            1 => Just(vec![q - 1; n]),
            1 => Just(vec![0; n]),
        ];
        (Just(table), poly.clone(), poly)
    })
}

/// `a(x) mod q` by Horner's rule.
fn evaluate(m: &Modulus, a: &[u64], x: u64) -> u64 {
    a.iter().rev().fold(0, |acc, &c| m.add(m.mul(acc, x), c))
}

/// The negacyclic product `a · b mod (X^N + 1, q)`, schoolbook in `u128`.
fn negacyclic_product(q: u64, a: &[u64], b: &[u64]) -> Vec<u64> {
    let n = a.len();
    let q = q as u128;
    let mut out = vec![0u128; n];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            let p = x as u128 * y as u128 % q;
            let k = i + j;
            if k < n {
                out[k] = (out[k] + p) % q;
            } else {
                out[k - n] = (out[k - n] + q - p) % q;
            }
        }
    }
    out.into_iter().map(|x| x as u64).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn ntt_round_trip_and_implementations_agree((t, a, _) in table_and_polys()) {
        let q = t.modulus().value();
        let mut reference = a.clone();
        t.forward_reference(&mut reference);
        let mut fast = a.clone();
        t.forward(&mut fast);
        let mut shoup = a.clone();
        t.forward_shoup(&mut shoup);
        prop_assert_eq!(&fast, &reference, "forward != forward_reference (N = {}, q = {})", t.n(), q);
        prop_assert_eq!(&shoup, &reference, "forward_shoup != forward_reference");
        prop_assert!(fast.iter().all(|&x| x < q));

        let mut back = fast.clone();
        t.inverse(&mut back);
        prop_assert_eq!(&back, &a, "inverse(forward(a)) != a (N = {}, q = {})", t.n(), q);
        let mut back_ref = reference.clone();
        t.inverse_reference(&mut back_ref);
        prop_assert_eq!(&back_ref, &a, "inverse_reference(forward_reference(a)) != a");
        let mut back_shoup = reference.clone();
        t.inverse_shoup(&mut back_shoup);
        prop_assert_eq!(&back_shoup, &a, "inverse_shoup(forward(a)) != a");

        // The inverse implementations agree on an arbitrary input too.
        let mut inv_fast = a.clone();
        t.inverse(&mut inv_fast);
        let mut inv_ref = a.clone();
        t.inverse_reference(&mut inv_ref);
        let mut inv_shoup = a.clone();
        t.inverse_shoup(&mut inv_shoup);
        prop_assert_eq!(&inv_fast, &inv_ref, "inverse != inverse_reference");
        prop_assert_eq!(&inv_shoup, &inv_ref, "inverse_shoup != inverse_reference");
        prop_assert!(inv_fast.iter().all(|&x| x < q));
    }

    #[test]
    fn ntt_matches_its_definition((t, a, _) in table_and_polys()) {
        // A[i] = a(psi^(2·bitrev(i) + 1)).
        let m = *t.modulus();
        let mut fast = a.clone();
        t.forward(&mut fast);
        for (i, &got) in fast.iter().enumerate() {
            let x = m.pow(t.psi(), t.evaluation_exponent(i) as u64);
            prop_assert_eq!(got, evaluate(&m, &a, x), "index {}", i);
        }
        // psi is a primitive 2N-th root of unity.
        prop_assert_eq!(m.pow(t.psi(), t.n() as u64), m.value() - 1);
    }

    #[test]
    fn ntt_pointwise_product_is_negacyclic_convolution((t, a, b) in table_and_polys()) {
        let m = *t.modulus();
        let (mut fa, mut fb) = (a.clone(), b.clone());
        t.forward(&mut fa);
        t.forward(&mut fb);
        let mut prod: Vec<u64> = fa.iter().zip(&fb).map(|(&x, &y)| m.mul(x, y)).collect();
        t.inverse(&mut prod);
        prop_assert_eq!(prod, negacyclic_product(m.value(), &a, &b));
    }
}

// ------------------------------------------------------------ encoder --

/// One N10 fixture shared by every case.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::new("TEST_INSECURE_N10", &[], 42))
}

/// Real vectors of a power-of-two length 1 ..= N/2 = 512 with entries in
/// (-bound, bound), and a level.
fn real_vector(max_log_len: u32) -> impl Strategy<Value = Vec<f64>> {
    (
        0..=max_log_len,
        prop_oneof![Just(1.0), Just(8.0), Just(0.01)],
    )
        .prop_flat_map(|(log_len, bound)| {
            proptest::collection::vec(-bound..bound, 1usize << log_len)
        })
}

const ROUND_TRIP_ERROR: f64 = 1.0 / (1u64 << 30) as f64;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn encode_decode_round_trip(values in real_vector(9), level in 0usize..=3) {
        let f = fixture();
        prop_assert_eq!(f.slots(), 512);
        prop_assert_eq!(f.params.max_level(), 3);
        let scale = f.params.default_scale();
        let pt = f.encoder.encode_real(&values, level, scale).unwrap();
        prop_assert_eq!(pt.slots(), values.len());
        prop_assert_eq!(pt.level(), level);
        prop_assert_eq!(pt.scale(), scale);
        let got = f.encoder.decode(&pt).unwrap();
        prop_assert_eq!(got.len(), values.len());
        for (j, (g, &v)) in got.iter().zip(&values).enumerate() {
            let err = (*g - Complex::from(v)).abs();
            prop_assert!(
                err <= ROUND_TRIP_ERROR,
                "slot {} of {}: {:?} decoded as {:?} (error 2^{:.1})",
                j, values.len(), v, g, err.log2()
            );
        }
    }

    #[test]
    fn encode_decode_pads_to_a_power_of_two(len in 1usize..=512, level in 0usize..=3) {
        let f = fixture();
        let values: Vec<Complex> = (0..len)
            .map(|j| Complex::new((j as f64 * 0.37).sin(), (j as f64 * 0.11).cos()))
            .collect();
        let pt = f
            .encoder
            .encode_complex(&values, level, f.params.default_scale())
            .unwrap();
        prop_assert_eq!(pt.slots(), len.next_power_of_two());
        let got = f.encoder.decode(&pt).unwrap();
        prop_assert_eq!(got.len(), len.next_power_of_two());
        for (j, g) in got.iter().enumerate() {
            let want = values.get(j).copied().unwrap_or(Complex::ZERO);
            prop_assert!((*g - want).abs() <= ROUND_TRIP_ERROR, "slot {}: {:?} vs {:?}", j, g, want);
        }
    }
}
