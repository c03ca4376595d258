//! The ring layer against big-integer arithmetic, through the public
//! [`Backend`] API: CRT, the NTT convention, ModUp (fast base conversion),
//! ModDown, rescaling, automorphisms, the key-switching inner product and the
//! element-wise primitives, each checked against `num-bigint` or plain `u128`
//! arithmetic computed independently of the library's own constants.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use heformer::backend::{create_backend, Backend, BackendChoice, Buffer};
use heformer::ckks::embedding::{galois_element_for_conjugation, galois_element_for_rotation};
use heformer::params::Parameters;
use heformer::ring::RingContext;
use num_bigint::{BigInt, BigUint};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

// ---------------------------------------------------------------- helpers --

/// A ring context and a CPU backend on one preset.
struct Env {
    ring: RingContext,
    be: Arc<dyn Backend>,
}

fn env(preset: &str) -> Env {
    let params = Parameters::preset(preset).unwrap();
    Env {
        ring: RingContext::new(&params).unwrap(),
        be: create_backend(BackendChoice::Cpu, 0).unwrap(),
    }
}

impl Env {
    fn n(&self) -> usize {
        self.ring.n()
    }

    fn prime(&self, g: usize) -> u64 {
        self.ring.moduli()[g].value()
    }

    fn primes(&self, basis: &[usize]) -> Vec<u64> {
        basis.iter().map(|&g| self.prime(g)).collect()
    }

    fn upload(&self, host: &[u64]) -> Buffer {
        self.be.upload(host).unwrap()
    }

    fn download(&self, b: &Buffer) -> Vec<u64> {
        self.be.download(b, b.len()).unwrap()
    }

    /// Forward NTT of every limb through the backend.
    fn ntt_forward(&self, coeff: &[u64], basis: &[usize]) -> Vec<u64> {
        let mut b = self.upload(coeff);
        self.be.ntt_forward(&self.ring, &mut b, basis).unwrap();
        self.download(&b)
    }

    /// Inverse NTT of every limb with the limb's own `NttTable`, on the host.
    fn inverse_host(&self, data: &mut [u64], basis: &[usize]) {
        let n = self.n();
        for (limb, &g) in data.chunks_mut(n).zip(basis) {
            self.ring.ntt(g).inverse(limb);
        }
    }

    /// Random reduced limbs on `basis`, limb-major.
    fn random_limbs(&self, rng: &mut ChaCha20Rng, basis: &[usize]) -> Vec<u64> {
        let n = self.n();
        let mut v = Vec::with_capacity(n * basis.len());
        for &g in basis {
            let q = self.prime(g);
            v.extend((0..n).map(|_| rng.random_range(0..q)));
        }
        v
    }
}

fn product(primes: &[u64]) -> BigUint {
    primes.iter().fold(BigUint::from(1u32), |acc, &q| acc * q)
}

fn to_u64(x: &BigUint) -> u64 {
    let mut digits = x.iter_u64_digits();
    let low = digits.next().unwrap_or(0);
    assert!(digits.next().is_none(), "{x} does not fit in a word");
    low
}

fn mod_u64(x: &BigUint, q: u64) -> u64 {
    to_u64(&(x % q))
}

fn bigint_mod_u64(x: &BigInt, q: u64) -> u64 {
    let q = BigInt::from(q);
    let r = ((x % &q) + &q) % &q;
    to_u64(&r.to_biguint().unwrap())
}

fn mul_mod(a: u64, b: u64, q: u64) -> u64 {
    (a as u128 * b as u128 % q as u128) as u64
}

fn pow_mod(mut b: u64, mut e: u64, q: u64) -> u64 {
    let mut r = 1 % q;
    b %= q;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, b, q);
        }
        b = mul_mod(b, b, q);
        e >>= 1;
    }
    r
}

/// Uniform-ish big integer in `[0, bound)` (64 extra random bits before reducing).
fn random_below(rng: &mut ChaCha20Rng, bound: &BigUint) -> BigUint {
    let bytes = (bound.bits() as usize).div_ceil(8) + 8;
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf[..]);
    BigUint::from_bytes_le(&buf) % bound
}

/// Limb-major residues of one big integer per coefficient.
fn limbs_of(xs: &[BigUint], primes: &[u64]) -> Vec<u64> {
    let mut v = Vec::with_capacity(xs.len() * primes.len());
    for &q in primes {
        v.extend(xs.iter().map(|x| mod_u64(x, q)));
    }
    v
}

/// CRT reconstruction over a set of primes, with constants computed by
/// Fermat inversion on big integers (independent of the library).
struct Crt {
    product: BigUint,
    /// `(Q/q_i) · ((Q/q_i)^{-1} mod q_i)`.
    basis: Vec<BigUint>,
}

impl Crt {
    fn new(primes: &[u64]) -> Self {
        let product = product(primes);
        let basis = primes
            .iter()
            .map(|&q| {
                let hat = &product / q;
                let hat_mod = mod_u64(&hat, q);
                let inv = pow_mod(hat_mod, q - 2, q);
                assert_eq!(mul_mod(hat_mod, inv, q), 1);
                hat * inv
            })
            .collect();
        Self { product, basis }
    }

    fn reconstruct(&self, residues: impl IntoIterator<Item = u64>) -> BigUint {
        let sum = residues
            .into_iter()
            .zip(&self.basis)
            .fold(BigUint::from(0u32), |acc, (r, b)| acc + b * r);
        sum % &self.product
    }
}

/// Residues of coefficient `c` of a limb-major polynomial, limbs `range`.
fn column(
    data: &[u64],
    n: usize,
    c: usize,
    limbs: std::ops::Range<usize>,
) -> impl Iterator<Item = u64> + '_ {
    limbs.map(move |k| data[k * n + c])
}

/// Runs `f` and turns a panic into a test failure naming `what` (the public
/// API promises errors, never panics, on bad input).
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!("{what}: panicked instead of returning Err"),
    }
}

// ------------------------------------------------------------------- CRT --

/// Random x in [0, Q_l) → residues → backend NTT round trip → CRT == x, at
/// every level; and the ring's precomputed constants against big integers.
#[test]
fn crt_round_trip_and_ring_constants() {
    for preset in ["TEST_INSECURE_N10", "TEST_INSECURE_N11"] {
        let e = env(preset);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let n = e.n();
        let num_q = e.ring.num_q();
        let num_p = e.ring.num_p();
        for level in 0..num_q {
            let basis = e.ring.q_basis(level);
            let primes = e.primes(&basis);
            let crt = Crt::new(&primes);
            let mut xs: Vec<BigUint> = (0..n)
                .map(|_| random_below(&mut rng, &crt.product))
                .collect();
            xs[0] = BigUint::from(0u32);
            xs[1] = &crt.product - 1u32;
            xs[2] = &crt.product / 2u32;
            let limbs = limbs_of(&xs, &primes);
            for (c, x) in xs.iter().enumerate() {
                assert_eq!(
                    &crt.reconstruct(column(&limbs, n, c, 0..basis.len())),
                    x,
                    "{preset} level {level} coeff {c}"
                );
            }
            // Through the backend: forward then inverse NTT is the identity, and
            // the evaluation domain is not trivially the coefficient domain.
            let mut buf = e.upload(&limbs);
            e.be.ntt_forward(&e.ring, &mut buf, &basis).unwrap();
            let eval = e.download(&buf);
            assert_ne!(eval, limbs);
            assert!(
                eval.chunks(n)
                    .zip(&primes)
                    .all(|(l, &q)| l.iter().all(|&v| v < q)),
                "NTT output not reduced"
            );
            e.be.ntt_inverse(&e.ring, &mut buf, &basis).unwrap();
            let back = e.download(&buf);
            for (c, x) in xs.iter().enumerate() {
                assert_eq!(
                    &crt.reconstruct(column(&back, n, c, 0..basis.len())),
                    x,
                    "{preset} level {level} coeff {c} after NTT round trip"
                );
            }
        }

        // Constants of the ring context.
        let q_primes = e.primes(&e.ring.q_basis(num_q - 1));
        let p_primes = e.primes(&(num_q..num_q + num_p).collect::<Vec<_>>());
        let big_p = product(&p_primes);
        for (i, &q) in q_primes.iter().enumerate() {
            let p_mod = mod_u64(&big_p, q);
            assert_eq!(e.ring.p_mod_q(i), p_mod, "{preset}: P mod q_{i}");
            let (inv, inv_shoup) = e.ring.p_inv_mod_q(i);
            assert_eq!(mul_mod(inv, p_mod, q), 1, "{preset}: P^-1 mod q_{i}");
            assert_eq!(inv_shoup as u128, ((inv as u128) << 64) / q as u128);
            for (l, &q_l) in q_primes.iter().enumerate().skip(i + 1) {
                let (w, ws) = e.ring.rescale_inv(l, i);
                assert_eq!(mul_mod(w, q_l, q), 1, "{preset}: q_{l}^-1 mod q_{i}");
                assert_eq!(ws as u128, ((w as u128) << 64) / q as u128);
            }
        }
        // Base-conversion constants of every ModUp digit and of ModDown.
        let params = e.ring.params().clone();
        let mut convs = vec![e.ring.mod_down().clone()];
        for level in 0..num_q {
            for digit in 0..params.digits_at_level(level) {
                convs.push(e.ring.mod_up(level, digit).unwrap().clone());
            }
            assert!(e.ring.mod_up(level, params.digits_at_level(level)).is_err());
        }
        assert!(e.ring.mod_up(num_q, 0).is_err());
        for conv in &convs {
            let sp = e.primes(&conv.source);
            let qs = product(&sp);
            for (s, &q) in sp.iter().enumerate() {
                let hat = mod_u64(&(&qs / q), q);
                let inv = conv.source_hat_inv[s];
                assert_eq!(
                    mul_mod(hat, inv, q),
                    1,
                    "{preset}: (Q_S/q_s)^-1 for source {:?}",
                    conv.source
                );
            }
            for (t, &g) in conv.target.iter().enumerate() {
                let tq = e.prime(g);
                assert!(!conv.source.contains(&g), "target {g} is also a source");
                for (s, &q) in sp.iter().enumerate() {
                    assert_eq!(
                        conv.source_hat_mod_target[t * sp.len() + s],
                        mod_u64(&(&qs / q), tq)
                    );
                }
                assert_eq!(
                    conv.neg_source_product_mod_target[t],
                    (tq - mod_u64(&qs, tq)) % tq
                );
            }
        }
    }
}

// ------------------------------------------------------------------- NTT --

/// The forward NTT against the documented convention evaluated naively:
/// `A[i] = a(psi^(2·bitrev(i)+1))`, with psi a primitive 2N-th root of unity;
/// and pointwise products against the schoolbook negacyclic product.
#[test]
fn ntt_matches_naive_evaluation_and_negacyclic_product() {
    let e = env("TEST_INSECURE_N10");
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let n = e.n();
    let log_n = e.ring.log_n();
    let basis = e.ring.full_basis();
    let a = e.random_limbs(&mut rng, &basis);
    let b = e.random_limbs(&mut rng, &basis);
    let ea = e.ntt_forward(&a, &basis);
    let eb = e.ntt_forward(&b, &basis);
    for (k, &g) in basis.iter().enumerate() {
        let q = e.prime(g);
        let table = e.ring.ntt(g);
        let psi = table.psi();
        assert_eq!(pow_mod(psi, n as u64, q), q - 1, "psi^N != -1 mod q_{g}");
        let limb = &a[k * n..(k + 1) * n];
        for i in 0..n {
            let exp = 2 * heformer::ring::ntt::bit_reverse(i, log_n) + 1;
            assert_eq!(table.evaluation_exponent(i), exp);
            let w = pow_mod(psi, exp as u64, q);
            let value = limb.iter().rev().fold(0u64, |acc, &c| {
                ((mul_mod(acc, w, q) as u128 + c as u128) % q as u128) as u64
            });
            assert_eq!(ea[k * n + i], value, "NTT limb {g} index {i}");
        }
        // Negacyclic schoolbook product.
        let (la, lb) = (&a[k * n..(k + 1) * n], &b[k * n..(k + 1) * n]);
        let mut prod = vec![0u64; n];
        for (i, &x) in la.iter().enumerate() {
            for (j, &y) in lb.iter().enumerate() {
                let t = mul_mod(x, y, q);
                let idx = (i + j) % n;
                prod[idx] = if i + j < n {
                    (prod[idx] + t) % q
                } else {
                    (prod[idx] + q - t) % q
                };
            }
        }
        let mut pw: Vec<u64> = (0..n)
            .map(|i| mul_mod(ea[k * n + i], eb[k * n + i], q))
            .collect();
        table.inverse(&mut pw);
        assert_eq!(
            pw, prod,
            "pointwise product != negacyclic product on limb {g}"
        );
    }
}

// ----------------------------------------------------------------- ModUp --

fn check_mod_up(e: &Env, rng: &mut ChaCha20Rng, level: usize) -> usize {
    let n = e.n();
    let params = e.ring.params();
    let alpha = params.digit_size();
    let qb = e.ring.q_basis(level);
    let ext = e.ring.extended_basis(level);
    let qp = e.primes(&qb);
    let ep = e.primes(&ext);
    let bound = product(&qp);
    let mut xs: Vec<BigUint> = (0..n).map(|_| random_below(rng, &bound)).collect();
    xs[0] = BigUint::from(0u32);
    xs[1] = &bound - 1u32;
    let coeff = limbs_of(&xs, &qp);
    let eval = e.ntt_forward(&coeff, &qb);
    let coeff_b = e.upload(&coeff);
    let eval_b = e.upload(&eval);
    let digits = params.digits_at_level(level);
    let mut truncated = 0;
    for j in 0..digits {
        let start = j * alpha;
        let end = ((j + 1) * alpha).min(level + 1);
        let dsize = end - start;
        if dsize < alpha {
            truncated += 1;
        }
        let crt = Crt::new(&qp[start..end]);
        let mut outs: Vec<_> = (0..digits)
            .map(|_| e.be.alloc(n * ext.len()).unwrap())
            .collect();
        e.be.mod_up(&e.ring, &coeff_b, &eval_b, level, &mut outs)
            .unwrap();
        let out_eval = e.download(&outs[j]);
        // The digit's own limbs are the input, exactly.
        for pos in start..end {
            assert_eq!(
                &out_eval[pos * n..(pos + 1) * n],
                &eval[pos * n..(pos + 1) * n],
                "level {level} digit {j}: digit limb {pos} changed"
            );
        }
        let mut out_coeff = out_eval;
        e.inverse_host(&mut out_coeff, &ext);
        for pos in start..end {
            assert_eq!(
                &out_coeff[pos * n..(pos + 1) * n],
                &coeff[pos * n..(pos + 1) * n]
            );
        }
        let targets: Vec<usize> = (0..ext.len())
            .filter(|p| !(start..end).contains(p))
            .collect();
        assert_eq!(targets.len(), ext.len() - dsize);
        let mut u_count = vec![0usize; dsize];
        for c in 0..n {
            let d = crt.reconstruct(column(&coeff, n, c, start..end));
            assert_eq!(d, &xs[c] % &crt.product);
            let u = (0..dsize).find(|&u| {
                let lifted = &d + &crt.product * u as u64;
                targets
                    .iter()
                    .all(|&p| mod_u64(&lifted, ep[p]) == out_coeff[p * n + c])
            });
            match u {
                Some(u) => u_count[u] += 1,
                None => panic!(
                    "level {level} digit {j} coeff {c}: ModUp output is not d + u·Q_D for any 0 <= u < {dsize} (d = {d}); got {:?}",
                    targets.iter().map(|&p| out_coeff[p * n + c]).collect::<Vec<_>>()
                ),
            }
        }
        if dsize == 1 {
            assert_eq!(u_count[0], n, "a one-prime digit converts exactly");
        }
        println!("level {level} digit {j} (|D| = {dsize}): u histogram {u_count:?}");
    }
    truncated
}

/// ModUp of every digit at every level: per coefficient the lifted value is
/// `d + u·Q_D` with one `0 <= u < |D|` on all target limbs.
#[test]
fn mod_up_is_fast_base_conversion() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut truncated = 0;
    let e = env("TEST_INSECURE_N10");
    for level in 0..e.ring.num_q() {
        truncated += check_mod_up(&e, &mut rng, level);
    }
    for preset in ["TEST_INSECURE_N11", "TEST_INSECURE_N12"] {
        let e = env(preset);
        for level in 0..e.ring.num_q() {
            truncated += check_mod_up(&e, &mut rng, level);
        }
    }
    assert!(truncated >= 2, "no truncated last digit was exercised");
}

// --------------------------------------------------------------- ModDown --

/// round(y / P) in the documented form `(y − [y]_P)/P` with `[y]_P` the
/// centered residue in `[−P/2, P/2)`, reduced modulo `Q_l`.
fn mod_down_expected(y: &BigUint, big_p: &BigUint) -> BigInt {
    let c = y % big_p;
    let centered = if &c * 2u32 >= *big_p {
        BigInt::from(c) - BigInt::from(big_p.clone())
    } else {
        BigInt::from(c)
    };
    let diff = BigInt::from(y.clone()) - centered;
    let big_p = BigInt::from(big_p.clone());
    assert_eq!(&diff % &big_p, BigInt::from(0));
    diff / big_p
}

/// Runs ModDown at `level` on `ys` (one big integer in [0, Q_l·P) per
/// coefficient) and returns, per mismatching coefficient, a description.
fn mod_down_mismatches(e: &Env, level: usize, ys: &[BigUint]) -> Vec<String> {
    let n = e.n();
    let ext = e.ring.extended_basis(level);
    let ep = e.primes(&ext);
    let qp = &ep[..=level];
    let big_p = product(&ep[level + 1..]);
    let k = e.ring.num_p();
    let coeff = limbs_of(ys, &ep);
    let eval = e.ntt_forward(&coeff, &ext);
    let mut outs = [e.be.alloc(n * (level + 1)).unwrap()];
    e.be.mod_down(&e.ring, &[e.upload(&eval)], level, &mut outs)
        .unwrap();
    let mut got = e.download(&outs[0]);
    e.inverse_host(&mut got, &ext[..=level]);
    let mut bad = Vec::new();
    for (c, y) in ys.iter().enumerate() {
        let expected = mod_down_expected(y, &big_p);
        let ok = qp
            .iter()
            .enumerate()
            .all(|(i, &q)| got[i * n + c] == bigint_mod_u64(&expected, q));
        if !ok {
            // Which looser law does the output satisfy? out·P + (y mod P) + u·P ≡ y (mod Q_l)?
            let y_mod_p = y % &big_p;
            let loose = (0..=k).find(|&u| {
                qp.iter().enumerate().all(|(i, &q)| {
                    let lhs = (got[i * n + c] as u128 * mod_u64(&big_p, q) as u128
                        + mod_u64(&y_mod_p, q) as u128
                        + u as u128 * mod_u64(&big_p, q) as u128)
                        % q as u128;
                    lhs as u64 == mod_u64(y, q)
                })
            });
            let crt = Crt::new(qp);
            let got_int = crt.reconstruct(column(&got, n, c, 0..level + 1).collect::<Vec<_>>());
            let q_big = BigInt::from(crt.product.clone());
            let expected_mod = ((&expected % &q_big) + &q_big) % &q_big;
            bad.push(format!(
                "coeff {c}: y = {y}, y mod P = {y_mod_p} (P = {big_p}), expected round(y/P) mod Q_l = {expected_mod}, \
                 got {got_int}; out·P + (y mod P) + u·P ≡ y (mod Q_l) holds for u = {loose:?}"
            ));
        }
    }
    bad
}

/// ModDown on random inputs is exactly round(y/P) (centered residue) at every level.
#[test]
fn mod_down_is_rounded_division_by_p() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    for (preset, levels) in [
        ("TEST_INSECURE_N10", vec![0usize, 1, 2, 3]),
        ("TEST_INSECURE_N11", vec![0, 2, 5]),
        ("TEST_INSECURE_N12", vec![0, 4, 8]),
    ] {
        let e = env(preset);
        for level in levels {
            let ext = e.ring.extended_basis(level);
            let bound = product(&e.primes(&ext));
            let big_p = product(&e.primes(&ext[level + 1..]));
            let mut ys: Vec<BigUint> = (0..e.n()).map(|_| random_below(&mut rng, &bound)).collect();
            // Edges away from the rounding boundary.
            ys[0] = BigUint::from(0u32);
            ys[1] = &bound - 1u32;
            ys[2] = &big_p - 1u32;
            ys[3] = big_p.clone();
            ys[4] = (&big_p - 1u32) / 2u32; // largest residue that rounds down
            ys[5] = &bound - &big_p;
            let bad = mod_down_mismatches(&e, level, &ys);
            assert!(
                bad.is_empty(),
                "{preset} level {level}: {} mismatches, first: {}",
                bad.len(),
                bad[0]
            );
        }
    }
}

/// ModDown at the rounding boundary. The centered overflow
/// `v = round(Σ y_s/p_s)` is computed in 64-bit fixed point (the documented
/// contract of `Backend::mod_down`), so within `K·P/2^64` above `P/2` the
/// result may be `floor(y/P)` instead of `round(y/P)`; every backend computes
/// the same fixed-point value, so they still agree bit for bit. Outside that
/// band the rounding must be exact.
#[test]
fn mod_down_rounds_exactly_outside_the_fixed_point_band() {
    let e = env("TEST_INSECURE_N10");
    let level = e.ring.num_q() - 1;
    let ext = e.ring.extended_basis(level);
    let bound = product(&e.primes(&ext));
    let big_p = product(&e.primes(&ext[level + 1..]));
    let half_up = (&big_p + 1u32) / 2u32;
    let k = e.ring.num_p() as u32;
    let band = (&big_p * k) >> 64u32;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let q_l = &bound / &big_p;
    // Clearly above the band: exact rounding.
    let clear: Vec<BigUint> = (0..e.n())
        .map(|c| random_below(&mut rng, &q_l) * &big_p + &half_up + &band * 4u32 + (c as u64 % 16))
        .collect();
    let bad = mod_down_mismatches(&e, level, &clear);
    assert!(
        bad.is_empty(),
        "{} of {} coefficients misrounded; first: {}",
        bad.len(),
        clear.len(),
        bad[0]
    );
    // Inside the band: round(y/P) or floor(y/P) = round(y/P) - 1, nothing else.
    let inside: Vec<BigUint> = (0..e.n())
        .map(|c| random_below(&mut rng, &q_l) * &big_p + &half_up + (c as u64 % 16))
        .collect();
    let n = e.n();
    let ep = e.primes(&ext);
    let eval = e.ntt_forward(&limbs_of(&inside, &ep), &ext);
    let mut outs = [e.be.alloc(n * (level + 1)).unwrap()];
    e.be.mod_down(&e.ring, &[e.upload(&eval)], level, &mut outs)
        .unwrap();
    let mut got = e.download(&outs[0]);
    e.inverse_host(&mut got, &ext[..=level]);
    let crt = Crt::new(&ep[..=level]);
    let mut floors = 0;
    for (c, y) in inside.iter().enumerate() {
        let got = BigInt::from(crt.reconstruct(column(&got, n, c, 0..level + 1)));
        let q_big = BigInt::from(crt.product.clone());
        let round = mod_down_expected(y, &big_p);
        let reduce = |x: BigInt| ((x % &q_big) + &q_big) % &q_big;
        if got != reduce(round.clone()) {
            assert_eq!(
                got,
                reduce(round - 1),
                "coefficient {c}: neither round(y/P) nor floor(y/P)"
            );
            floors += 1;
        }
    }
    println!(
        "inside the {}-bit band: {floors} of {} coefficients take floor(y/P)",
        band.bits(),
        inside.len()
    );
}

/// ModDown fused with rescale: the result is `(y − [y]_{P·q_l}) / (P·q_l)`
/// with the centered residue, i.e. round(y / (P·q_l)), on `q_0..q_{l-1}`
/// (random inputs, which fall in the fixed-point band with probability ~2^-60).
#[test]
fn mod_down_rescale_is_rounded_division_by_p_q_top() {
    for preset in ["TEST_INSECURE_N10", "TEST_INSECURE_N11"] {
        let e = env(preset);
        let n = e.n();
        let mut rng = ChaCha20Rng::seed_from_u64(41);
        for level in 1..e.ring.num_q() {
            let ext = e.ring.extended_basis(level);
            let ep = e.primes(&ext);
            let bound = product(&ep);
            let divisor = product(&ep[level..]);
            let ys: Vec<BigUint> = (0..n).map(|_| random_below(&mut rng, &bound)).collect();
            let eval = e.ntt_forward(&limbs_of(&ys, &ep), &ext);
            let mut outs = [e.be.alloc(n * level).unwrap()];
            e.be.mod_down_rescale(&e.ring, &[e.upload(&eval)], level, &mut outs)
                .unwrap();
            let mut got = e.download(&outs[0]);
            e.inverse_host(&mut got, &ext[..level]);
            for (c, y) in ys.iter().enumerate() {
                let expected = mod_down_expected(y, &divisor);
                for (i, &q) in ep[..level].iter().enumerate() {
                    assert_eq!(
                        got[i * n + c],
                        bigint_mod_u64(&expected, q),
                        "{preset} level {level} coefficient {c} limb {i}"
                    );
                }
            }
        }
        let mut outs = [e.be.alloc(n * e.ring.num_q()).unwrap()];
        let any = e.be.alloc(n * e.ring.moduli().len()).unwrap();
        assert!(e
            .be
            .mod_down_rescale(&e.ring, std::slice::from_ref(&any), 0, &mut outs)
            .is_err());
    }
}

#[test]
fn rescale_is_centered_rounded_division() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    for preset in [
        "TEST_INSECURE_N10",
        "TEST_INSECURE_N11",
        "TEST_INSECURE_N12",
    ] {
        let e = env(preset);
        let n = e.n();
        for level in 1..e.ring.num_q() {
            let qb = e.ring.q_basis(level);
            let qp = e.primes(&qb);
            let q_l = qp[level];
            let bound = product(&qp);
            let mut ys: Vec<BigUint> = (0..n).map(|_| random_below(&mut rng, &bound)).collect();
            ys[0] = BigUint::from(0u32);
            ys[1] = &bound - 1u32;
            ys[2] = BigUint::from((q_l - 1) / 2); // r = (q-1)/2: rounds down
            ys[3] = BigUint::from(q_l.div_ceil(2)); // r = -(q-1)/2: rounds up
            ys[4] = BigUint::from(q_l);
            ys[5] = &bound - (q_l - 1) / 2;
            ys[6] = &bound - q_l.div_ceil(2);
            let coeff = limbs_of(&ys, &qp);
            let eval = e.ntt_forward(&coeff, &qb);
            let mut out = e.be.alloc(n * level).unwrap();
            e.be.rescale(&e.ring, &e.upload(&eval), level, &mut out)
                .unwrap();
            let mut got = e.download(&out);
            e.inverse_host(&mut got, &qb[..level]);
            for (c, y) in ys.iter().enumerate() {
                let r = mod_u64(y, q_l);
                let r = if r > q_l / 2 {
                    r as i128 - q_l as i128
                } else {
                    r as i128
                };
                let diff = BigInt::from(y.clone()) - BigInt::from(r);
                assert_eq!(&diff % BigInt::from(q_l), BigInt::from(0));
                let expected = diff / BigInt::from(q_l);
                for (i, &q) in qp[..level].iter().enumerate() {
                    assert_eq!(
                        got[i * n + c],
                        bigint_mod_u64(&expected, q),
                        "{preset} level {level} coeff {c} limb {i}"
                    );
                }
            }
        }
        // Level 0 cannot be rescaled, nor a level beyond the chain.
        let mut out = e.be.alloc(n * e.ring.num_q()).unwrap();
        let poly = e.be.alloc(n * (e.ring.num_q() + 1)).unwrap();
        assert!(no_panic("rescale level 0", || e
            .be
            .rescale(&e.ring, &poly, 0, &mut out))
        .is_err());
        assert!(no_panic("rescale past L", || e.be.rescale(
            &e.ring,
            &poly,
            e.ring.num_q(),
            &mut out
        ))
        .is_err());
    }
}

// ---------------------------------------------------------- Automorphisms --

fn apply(e: &Env, src: &[u64], g: u64, basis: &[usize]) -> Vec<u64> {
    let mut out = e.be.alloc(src.len()).unwrap();
    e.be.automorphism(&e.ring, &e.upload(src), g, &mut out, basis)
        .unwrap();
    e.download(&out)
}

/// σ_g on coefficients: `a_j X^j -> a_j X^(j·g mod 2N)`, negated when the
/// exponent reaches N.
fn automorphism_coeff(a: &[u64], g: u64, n: usize, q: u64) -> Vec<u64> {
    let mut out = vec![0u64; n];
    let two_n = 2 * n as u64;
    for (j, &x) in a.iter().enumerate() {
        let e = (j as u64 * g) % two_n;
        if e < n as u64 {
            out[e as usize] = x;
        } else {
            out[(e - n as u64) as usize] = (q - x) % q;
        }
    }
    out
}

#[test]
fn automorphisms_compose_and_match_coefficient_definition() {
    for preset in ["TEST_INSECURE_N10", "TEST_INSECURE_N11"] {
        let e = env(preset);
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let n = e.n();
        let log_n = e.ring.log_n();
        let two_n = 2 * n as u64;
        let basis = e.ring.full_basis();
        let a = e.random_limbs(&mut rng, &basis);

        assert_eq!(apply(&e, &a, 1, &basis), a, "σ_1 is not the identity");
        for _ in 0..8 {
            let g = rng.random_range(0..n as u64) * 2 + 1;
            let h = rng.random_range(0..n as u64) * 2 + 1;
            let gh = g * h % two_n;
            let lhs = apply(&e, &apply(&e, &a, h, &basis), g, &basis);
            assert_eq!(lhs, apply(&e, &a, gh, &basis), "σ_{g}∘σ_{h} != σ_{gh}");
            // σ_g ∘ σ_{g^-1} = id.
            let g_inv = (1..two_n).step_by(2).find(|&x| x * g % two_n == 1).unwrap();
            assert_eq!(apply(&e, &apply(&e, &a, g, &basis), g_inv, &basis), a);
            assert_ne!(apply(&e, &a, g, &basis), a, "σ_{g} acted as the identity");
        }

        let half = (n / 2) as i64;
        for (k1, k2) in [
            (1i64, 1i64),
            (3, 5),
            (-1, 1),
            (-7, 2),
            (half - 1, 3),
            (half, -half),
            (12345, -678),
        ] {
            let g1 = galois_element_for_rotation(log_n, k1);
            let g2 = galois_element_for_rotation(log_n, k2);
            let g12 = galois_element_for_rotation(log_n, k1 + k2);
            assert_eq!(g1 * g2 % two_n, g12, "rotation elements k1={k1} k2={k2}");
            let lhs = apply(&e, &apply(&e, &a, g1, &basis), g2, &basis);
            assert_eq!(
                lhs,
                apply(&e, &a, g12, &basis),
                "rot {k1} then {k2} != rot {}",
                k1 + k2
            );
        }
        assert_eq!(galois_element_for_rotation(log_n, 0), 1);
        assert_eq!(
            galois_element_for_rotation(log_n, half),
            1,
            "5 has order N/2 mod 2N"
        );
        let conj = galois_element_for_conjugation(log_n);
        assert_eq!(conj, two_n - 1);
        let once = apply(&e, &a, conj, &basis);
        assert_ne!(once, a);
        assert_eq!(
            apply(&e, &once, conj, &basis),
            a,
            "conjugation twice is not the identity"
        );

        // Evaluation-domain permutation against the coefficient definition.
        let coeff = e.random_limbs(&mut rng, &basis);
        let eval = e.ntt_forward(&coeff, &basis);
        let mut gs = vec![
            1u64,
            3,
            5,
            conj,
            galois_element_for_rotation(log_n, 1),
            galois_element_for_rotation(log_n, -3),
        ];
        gs.extend((0..4).map(|_| rng.random_range(0..n as u64) * 2 + 1));
        for g in gs {
            let mut expected = Vec::with_capacity(coeff.len());
            for (limb, &gi) in coeff.chunks(n).zip(&basis) {
                expected.extend(automorphism_coeff(limb, g, n, e.prime(gi)));
            }
            let expected_eval = e.ntt_forward(&expected, &basis);
            assert_eq!(
                apply(&e, &eval, g, &basis),
                expected_eval,
                "{preset}: NTT(σ_{g}(a)) != automorphism(NTT(a), {g})"
            );
        }

        // Invalid elements are errors.
        let src = e.upload(&a);
        let mut out = e.be.alloc(a.len()).unwrap();
        for g in [0u64, 2, two_n, two_n + 1, u64::MAX] {
            let r = no_panic("automorphism with a bad element", || {
                e.be.automorphism(&e.ring, &src, g, &mut out, &basis)
            });
            assert!(r.is_err(), "Galois element {g} accepted");
        }
    }
}

// --------------------------------------------------- key-switching product --

/// The inner product at `level` against the `u128` sums, with keys on the
/// extended basis of `top` (a key serving the levels up to `top`).
fn check_inner_product(
    e: &Env,
    level: usize,
    top: usize,
    digits: &[Vec<u64>],
    keys: &[(Vec<u64>, Vec<u64>)],
) {
    let n = e.n();
    let ext = e.ring.extended_basis(level);
    let key_basis = e.ring.extended_basis(top);
    let d_bufs: Vec<Buffer> = digits.iter().map(|d| e.upload(d)).collect();
    let k_bufs: Vec<(Buffer, Buffer)> = keys
        .iter()
        .map(|(b, a)| (e.upload(b), e.upload(a)))
        .collect();
    let mut out0 = e.be.alloc(n * ext.len()).unwrap();
    let mut out1 = e.be.alloc(n * ext.len()).unwrap();
    e.be.key_switch_inner_product(&e.ring, &d_bufs, &k_bufs, level, &mut out0, &mut out1)
        .unwrap();
    let (o0, o1) = (e.download(&out0), e.download(&out1));
    assert_eq!(keys[0].0.len(), n * key_basis.len());
    for (pos, &g) in ext.iter().enumerate() {
        let q = e.prime(g) as u128;
        let at = key_basis.iter().position(|&k| k == g).unwrap() * n;
        for c in 0..n {
            let (mut s0, mut s1) = (0u128, 0u128);
            for (d, (kb, ka)) in digits.iter().zip(keys) {
                let x = d[pos * n + c] as u128;
                s0 = (s0 + x * kb[at + c] as u128 % q) % q;
                s1 = (s1 + x * ka[at + c] as u128 % q) % q;
            }
            assert_eq!(
                o0[pos * n + c] as u128,
                s0,
                "level {level} top {top} limb {g} coeff {c} (out0)"
            );
            assert_eq!(
                o1[pos * n + c] as u128,
                s1,
                "level {level} top {top} limb {g} coeff {c} (out1)"
            );
        }
    }
}

#[test]
fn key_switch_inner_product_matches_u128() {
    let e = env("TEST_INSECURE_N10");
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let n = e.n();
    let full = e.ring.full_basis();
    let params = e.ring.params().clone();
    // Full keys, and keys of the level's digits only (on the extended basis
    // of the highest level they serve).
    for level in 0..e.ring.num_q() {
        let ext = e.ring.extended_basis(level);
        let count = params.digits_at_level(level);
        let digits: Vec<Vec<u64>> = (0..count).map(|_| e.random_limbs(&mut rng, &ext)).collect();
        for top in [e.ring.num_q() - 1, params.top_level_of_digits(count)] {
            let key_basis = e.ring.extended_basis(top);
            let keys: Vec<(Vec<u64>, Vec<u64>)> = (0..params.digits_at_level(top))
                .map(|_| {
                    (
                        e.random_limbs(&mut rng, &key_basis),
                        e.random_limbs(&mut rng, &key_basis),
                    )
                })
                .collect();
            check_inner_product(&e, level, top, &digits, &keys);
        }
    }

    // The widest accumulation allowed (64 digits of q−1 times keys of q−1).
    let level = e.ring.num_q() - 1;
    let ext = e.ring.extended_basis(level);
    let max_limbs = |basis: &[usize]| -> Vec<u64> {
        basis
            .iter()
            .flat_map(|&g| std::iter::repeat_n(e.prime(g) - 1, n))
            .collect()
    };
    let digits: Vec<Vec<u64>> = (0..64).map(|_| max_limbs(&ext)).collect();
    let keys: Vec<(Vec<u64>, Vec<u64>)> = (0..64)
        .map(|_| (max_limbs(&full), e.random_limbs(&mut rng, &full)))
        .collect();
    check_inner_product(&e, level, level, &digits, &keys);

    // Errors: more digits than keys, more than 64 digits, short buffers, a
    // key serving only lower levels.
    let up = |v: &Vec<u64>| e.upload(v);
    let d_bufs: Vec<Buffer> = digits.iter().map(up).collect();
    let k_bufs: Vec<(Buffer, Buffer)> = keys.iter().map(|(b, a)| (up(b), up(a))).collect();
    let mut out0 = e.be.alloc(n * ext.len()).unwrap();
    let mut out1 = e.be.alloc(n * ext.len()).unwrap();
    let call = |what: &str,
                d: &[Buffer],
                k: &[(Buffer, Buffer)],
                level: usize,
                o0: &mut Buffer,
                o1: &mut Buffer| {
        let r = no_panic(what, || {
            e.be.key_switch_inner_product(&e.ring, d, k, level, o0, o1)
        });
        assert!(r.is_err(), "{what}: accepted");
    };
    call(
        "more digits than keys",
        &d_bufs[..3],
        &k_bufs[..2],
        level,
        &mut out0,
        &mut out1,
    );
    let mut d65 = d_bufs.clone();
    d65.push(d_bufs[0].clone());
    let mut k65 = k_bufs.clone();
    k65.push(k_bufs[0].clone());
    call("65 digits", &d65, &k65, level, &mut out0, &mut out1);
    let short = e.be.alloc(n * ext.len() - 1).unwrap();
    call(
        "short digit",
        std::slice::from_ref(&short),
        &k_bufs[..1],
        level,
        &mut out0,
        &mut out1,
    );
    let short_key = e.be.alloc(n * full.len() - 1).unwrap();
    let full_key = e.be.alloc(n * full.len()).unwrap();
    call(
        "short key b",
        &d_bufs[..1],
        &[(short_key.clone(), full_key.clone())],
        level,
        &mut out0,
        &mut out1,
    );
    call(
        "short key a",
        &d_bufs[..1],
        &[(full_key, short_key)],
        level,
        &mut out0,
        &mut out1,
    );
    let low = e.ring.extended_basis(level - 1);
    let low_key = (
        e.upload(&e.random_limbs(&mut rng, &low)),
        e.upload(&e.random_limbs(&mut rng, &low)),
    );
    call(
        "a key serving lower levels",
        &d_bufs[..1],
        &[low_key],
        level,
        &mut out0,
        &mut out1,
    );
    let mut short_out = short.clone();
    call(
        "short out0",
        &d_bufs[..1],
        &k_bufs[..1],
        level,
        &mut short_out,
        &mut out1,
    );
    call(
        "short out1",
        &d_bufs[..1],
        &k_bufs[..1],
        level,
        &mut out0,
        &mut short_out,
    );
}

/// A level beyond the chain must be an error, even with buffers large enough
/// for it.
///
/// The backend's (fused) key switch gives the same words as the composition
/// of ModUp, the inner product and ModDown (or ModDown with rescale), at
/// every level, for both tails, on presets with 45- to 60-bit primes.
#[test]
fn fused_key_switch_matches_the_composition() {
    use heformer::backend::{key_switch_composed, KeySwitchTail};
    for preset in [
        "TEST_INSECURE_N10",
        "TEST_INSECURE_N11",
        "TEST_INSECURE_N12",
        "PN15_128",
    ] {
        let e = env(preset);
        let mut rng = ChaCha20Rng::seed_from_u64(77);
        let params = e.ring.params().clone();
        // Keys on the extended basis of `top`, serving the levels up to it.
        let keys_to = |rng: &mut ChaCha20Rng, top: usize| -> Vec<(Buffer, Buffer)> {
            let basis = e.ring.extended_basis(top);
            (0..params.digits_at_level(top))
                .map(|_| {
                    (
                        e.upload(&e.random_limbs(rng, &basis)),
                        e.upload(&e.random_limbs(rng, &basis)),
                    )
                })
                .collect()
        };
        let top = e.ring.num_q() - 1;
        let full_keys = keys_to(&mut rng, top);
        let levels = if preset == "PN15_128" {
            vec![top]
        } else {
            (0..=top).collect()
        };
        for level in levels {
            let capped = keys_to(
                &mut rng,
                params.top_level_of_digits(params.digits_at_level(level)),
            );
            let basis = e.ring.q_basis(level);
            let poly = e.upload(&e.random_limbs(&mut rng, &basis));
            let addend = [
                e.upload(&e.random_limbs(&mut rng, &basis)),
                e.upload(&e.random_limbs(&mut rng, &basis)),
            ];
            let two_n = 2 * e.n() as u64;
            let mut tails = vec![
                (KeySwitchTail::ModDown, level + 1),
                (
                    KeySwitchTail::ModDownAutomorphism {
                        galois_element: 5,
                        addend: &addend[0],
                    },
                    level + 1,
                ),
                (
                    KeySwitchTail::ModDownAutomorphism {
                        galois_element: two_n - 1,
                        addend: &addend[1],
                    },
                    level + 1,
                ),
            ];
            if level > 0 {
                let addend = [&addend[0], &addend[1]];
                tails.push((KeySwitchTail::ModDownRescale { addend }, level));
            }
            for ((tail, limbs), keys) in tails
                .into_iter()
                .flat_map(|t| [(t, &full_keys), (t, &capped)])
            {
                let words = e.n() * limbs;
                let mut fused = [e.be.alloc(words).unwrap(), e.be.alloc(words).unwrap()];
                let mut composed = [e.be.alloc(words).unwrap(), e.be.alloc(words).unwrap()];
                e.be.key_switch(&e.ring, &poly, keys, level, tail, &mut fused)
                    .unwrap();
                key_switch_composed(
                    e.be.as_ref(),
                    &e.ring,
                    &poly,
                    keys,
                    level,
                    tail,
                    &mut composed,
                )
                .unwrap();
                for k in 0..2 {
                    assert!(
                        e.download(&fused[k]) == e.download(&composed[k]),
                        "{preset} level {level} {tail:?}: output {k} differs"
                    );
                }
            }
        }
    }
}

#[test]
fn key_switch_inner_product_rejects_levels_beyond_the_chain() {
    let e = env("TEST_INSECURE_N10");
    let n = e.n();
    let total = e.ring.moduli().len();
    let mut failures = Vec::new();
    for level in [e.ring.num_q(), total, total + 3] {
        let words = n * (level + 1 + e.ring.num_p());
        let digit = e.be.alloc(words).unwrap();
        let key = (
            e.be.alloc(n * total).unwrap(),
            e.be.alloc(n * total).unwrap(),
        );
        let mut out0 = e.be.alloc(words).unwrap();
        let mut out1 = e.be.alloc(words).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            e.be.key_switch_inner_product(
                &e.ring,
                std::slice::from_ref(&digit),
                std::slice::from_ref(&key),
                level,
                &mut out0,
                &mut out1,
            )
        }));
        match r {
            Ok(Err(_)) => {}
            Ok(Ok(())) => failures.push(format!("level {level}: accepted (returned Ok)")),
            Err(_) => failures.push(format!("level {level}: panicked")),
        }
    }
    assert!(
        failures.is_empty(),
        "key_switch_inner_product with L = {}: {failures:?}",
        e.ring.num_q() - 1
    );
}

// ---------------------------------------------------- element-wise ops ---

/// Limb-major polynomial pairs whose first `E²` coefficients run over all
/// pairs of edge values (0, 1, 2, q−1, q−2, ⌊q/2⌋, ⌈q/2⌉), the rest random.
fn edge_pair(e: &Env, rng: &mut ChaCha20Rng, basis: &[usize]) -> (Vec<u64>, Vec<u64>) {
    let n = e.n();
    let mut a = e.random_limbs(rng, basis);
    let mut b = e.random_limbs(rng, basis);
    for (k, &g) in basis.iter().enumerate() {
        let q = e.prime(g);
        let edges = [0, 1, 2, q - 1, q - 2, q / 2, q.div_ceil(2)];
        let m = edges.len();
        for i in 0..m * m {
            a[k * n + i] = edges[i % m];
            b[k * n + i] = edges[i / m];
        }
    }
    (a, b)
}

/// The fused tensor primitive against u128 arithmetic, on the IFMA-sized and
/// the larger primes of the preset.
#[test]
fn tensor_matches_u128() {
    let e = env("TEST_INSECURE_N10");
    let n = e.n();
    let mut rng = ChaCha20Rng::seed_from_u64(51);
    let basis = e.ring.full_basis();
    let inputs: Vec<Vec<u64>> = (0..4).map(|_| e.random_limbs(&mut rng, &basis)).collect();
    let bufs: Vec<Buffer> = inputs.iter().map(|x| e.upload(x)).collect();
    let mut out: Vec<Buffer> = (0..3)
        .map(|_| e.be.alloc(n * basis.len()).unwrap())
        .collect();
    e.be.tensor(&e.ring, &bufs[..2], &bufs[2..], &mut out, &basis)
        .unwrap();
    let got: Vec<Vec<u64>> = out.iter().map(|b| e.download(b)).collect();
    for (k, &g) in basis.iter().enumerate() {
        let q = e.prime(g) as u128;
        for c in k * n..(k + 1) * n {
            let [a0, a1, b0, b1] = [0, 1, 2, 3].map(|i| inputs[i][c] as u128);
            assert_eq!(got[0][c] as u128, a0 * b0 % q, "d0 limb {k}");
            assert_eq!(
                got[1][c] as u128,
                (a0 * b1 % q + a1 * b0 % q) % q,
                "d1 limb {k}"
            );
            assert_eq!(got[2][c] as u128, a1 * b1 % q, "d2 limb {k}");
        }
    }
    let mut short: Vec<Buffer> = (0..2)
        .map(|_| e.be.alloc(n * basis.len()).unwrap())
        .collect();
    assert!(e
        .be
        .tensor(&e.ring, &bufs[..2], &bufs[2..], &mut short, &basis)
        .is_err());
}

#[test]
fn elementwise_ops_match_u128() {
    let e = env("TEST_INSECURE_N10");
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let n = e.n();
    let be = &e.be;
    let ring = &e.ring;
    // The full basis, and a sub-basis out of order to catch limb/modulus mix-ups.
    for basis in [e.ring.full_basis(), vec![4, 0, 2]] {
        let (a, b) = edge_pair(&e, &mut rng, &basis);
        let c = e.random_limbs(&mut rng, &basis);
        let words = n * basis.len();
        let check = |what: &str, got: &Buffer, f: &dyn Fn(u128, u128, u128, u128) -> u128| {
            let got = e.download(got);
            assert_eq!(got.len(), words);
            for (k, &g) in basis.iter().enumerate() {
                let q = e.prime(g) as u128;
                for i in 0..n {
                    let idx = k * n + i;
                    let expected = f(a[idx] as u128, b[idx] as u128, c[idx] as u128, q);
                    assert_eq!(
                        got[idx] as u128, expected,
                        "{what}: limb {g} coeff {i} (a = {}, b = {})",
                        a[idx], b[idx]
                    );
                }
            }
        };
        let bb = e.upload(&b);

        let mut acc = e.upload(&a);
        be.add_assign(ring, &mut acc, &bb, &basis).unwrap();
        check("add", &acc, &|a, b, _, q| (a + b) % q);

        let mut acc = e.upload(&a);
        be.sub_assign(ring, &mut acc, &bb, &basis).unwrap();
        check("sub", &acc, &|a, b, _, q| (a + q - b) % q);

        let mut acc = e.upload(&a);
        be.neg_assign(ring, &mut acc, &basis).unwrap();
        check("neg", &acc, &|a, _, _, q| (q - a) % q);

        let mut acc = e.upload(&a);
        be.mul_assign(ring, &mut acc, &bb, &basis).unwrap();
        check("mul", &acc, &|a, b, _, q| a * b % q);

        let mut acc = e.upload(&c);
        be.mul_add_assign(ring, &mut acc, &e.upload(&a), &bb, &basis)
            .unwrap();
        check("mul_add", &acc, &|a, b, c, q| (c + a * b % q) % q);

        let mut acc = e.upload(&a);
        be.copy(&bb, &mut acc, words).unwrap();
        check("copy", &acc, &|_, b, _, _| b);

        // Scalars: each edge value in turn, then random ones.
        let mut scalar_sets: Vec<Vec<u64>> = [0u64, 1, 2]
            .iter()
            .map(|&s| basis.iter().map(|&g| s % e.prime(g)).collect())
            .collect();
        scalar_sets.push(basis.iter().map(|&g| e.prime(g) - 1).collect());
        scalar_sets.push(basis.iter().map(|&g| e.prime(g) / 2).collect());
        scalar_sets.push(
            basis
                .iter()
                .map(|&g| rng.random_range(0..e.prime(g)))
                .collect(),
        );
        for s in &scalar_sets {
            let mut acc = e.upload(&a);
            be.mul_scalar_assign(ring, &mut acc, s, &basis).unwrap();
            let got = e.download(&acc);
            let mut acc2 = e.upload(&a);
            be.add_scalar_assign(ring, &mut acc2, s, &basis).unwrap();
            let got2 = e.download(&acc2);
            let mut acc3 = e.upload(&b);
            be.mul_scalar_add_assign(ring, &mut acc3, &e.upload(&a), s, &basis)
                .unwrap();
            let got3 = e.download(&acc3);
            for (k, &g) in basis.iter().enumerate() {
                let q = e.prime(g) as u128;
                for i in 0..n {
                    let x = a[k * n + i] as u128;
                    assert_eq!(
                        got3[k * n + i] as u128,
                        (b[k * n + i] as u128 + x * s[k] as u128) % q,
                        "mul_scalar_add limb {g} coeff {i} scalar {}",
                        s[k]
                    );
                    assert_eq!(
                        got[k * n + i] as u128,
                        x * s[k] as u128 % q,
                        "mul_scalar limb {g} coeff {i} scalar {}",
                        s[k]
                    );
                    assert_eq!(
                        got2[k * n + i] as u128,
                        (x + s[k] as u128) % q,
                        "add_scalar limb {g} coeff {i} scalar {}",
                        s[k]
                    );
                }
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let e = env("TEST_INSECURE_N10");
    let n = e.n();
    let be = &e.be;
    let ring = &e.ring;
    let total = ring.moduli().len();
    let basis = vec![0usize, 1];
    let bad_basis = vec![0usize, total];
    let huge_basis = vec![usize::MAX];
    let words = n * basis.len();
    let good = be.alloc(words).unwrap();
    let short = be.alloc(words - 1).unwrap();
    let big = be.alloc(n * (total + 2)).unwrap();
    let scalars = vec![1u64, 1];

    macro_rules! expect_err {
        ($what:expr, $call:expr) => {{
            let r = no_panic($what, || $call);
            assert!(r.is_err(), "{}: accepted", $what);
        }};
    }

    for b in [&bad_basis, &huge_basis] {
        let mut acc = big.clone();
        expect_err!("ntt_forward bad basis", be.ntt_forward(ring, &mut acc, b));
        expect_err!("ntt_inverse bad basis", be.ntt_inverse(ring, &mut acc, b));
        expect_err!("add bad basis", be.add_assign(ring, &mut acc, &big, b));
        expect_err!("sub bad basis", be.sub_assign(ring, &mut acc, &big, b));
        expect_err!("neg bad basis", be.neg_assign(ring, &mut acc, b));
        expect_err!("mul bad basis", be.mul_assign(ring, &mut acc, &big, b));
        expect_err!(
            "mul_add bad basis",
            be.mul_add_assign(ring, &mut acc, &big, &big, b)
        );
        let s = vec![0u64; b.len()];
        expect_err!(
            "mul_scalar bad basis",
            be.mul_scalar_assign(ring, &mut acc, &s, b)
        );
        expect_err!(
            "add_scalar bad basis",
            be.add_scalar_assign(ring, &mut acc, &s, b)
        );
        expect_err!(
            "automorphism bad basis",
            be.automorphism(ring, &big, 3, &mut acc, b)
        );
    }

    // Too-short buffers, in every operand position.
    let mut s_acc = short.clone();
    let mut acc = good.clone();
    expect_err!(
        "ntt_forward short",
        be.ntt_forward(ring, &mut s_acc, &basis)
    );
    expect_err!(
        "ntt_inverse short",
        be.ntt_inverse(ring, &mut s_acc, &basis)
    );
    expect_err!(
        "add short acc",
        be.add_assign(ring, &mut s_acc, &good, &basis)
    );
    expect_err!("add short b", be.add_assign(ring, &mut acc, &short, &basis));
    expect_err!(
        "sub short acc",
        be.sub_assign(ring, &mut s_acc, &good, &basis)
    );
    expect_err!("sub short b", be.sub_assign(ring, &mut acc, &short, &basis));
    expect_err!("neg short", be.neg_assign(ring, &mut s_acc, &basis));
    expect_err!(
        "mul short acc",
        be.mul_assign(ring, &mut s_acc, &good, &basis)
    );
    expect_err!("mul short b", be.mul_assign(ring, &mut acc, &short, &basis));
    expect_err!(
        "mul_add short acc",
        be.mul_add_assign(ring, &mut s_acc, &good, &good, &basis)
    );
    expect_err!(
        "mul_add short a",
        be.mul_add_assign(ring, &mut acc, &short, &good, &basis)
    );
    expect_err!(
        "mul_add short b",
        be.mul_add_assign(ring, &mut acc, &good, &short, &basis)
    );
    expect_err!(
        "mul_scalar short",
        be.mul_scalar_assign(ring, &mut s_acc, &scalars, &basis)
    );
    expect_err!(
        "add_scalar short",
        be.add_scalar_assign(ring, &mut s_acc, &scalars, &basis)
    );
    expect_err!(
        "automorphism short src",
        be.automorphism(ring, &short, 3, &mut acc, &basis)
    );
    expect_err!(
        "automorphism short out",
        be.automorphism(ring, &good, 3, &mut s_acc, &basis)
    );
    expect_err!("download too many", be.download(&short, words));
    expect_err!("copy short src", be.copy(&short, &mut acc, words));
    expect_err!("copy short dst", be.copy(&good, &mut s_acc, words));

    // Scalars: wrong count, unreduced.
    let q0 = e.prime(0);
    expect_err!(
        "mul_scalar count",
        be.mul_scalar_assign(ring, &mut acc, &[1], &basis)
    );
    expect_err!(
        "add_scalar count",
        be.add_scalar_assign(ring, &mut acc, &[1, 1, 1], &basis)
    );
    expect_err!(
        "mul_scalar unreduced",
        be.mul_scalar_assign(ring, &mut acc, &[q0, 1], &basis)
    );
    expect_err!(
        "add_scalar unreduced",
        be.add_scalar_assign(ring, &mut acc, &[1, u64::MAX], &basis)
    );

    // ModUp / ModDown / rescale: bad levels, bad digits, short buffers.
    let num_q = ring.num_q();
    let top = num_q - 1;
    let ext_words = n * (top + 1 + ring.num_p());
    let q_words = n * (top + 1);
    let q_buf = be.alloc(q_words).unwrap();
    let ext_buf = be.alloc(ext_words).unwrap();
    let mut out = be.alloc(ext_words + n * 4).unwrap();
    let dnum = ring.params().digits_at_level(top);
    let ext_outs = |count: usize, words: usize| -> Vec<heformer::backend::Buffer> {
        (0..count).map(|_| be.alloc(words).unwrap()).collect()
    };
    expect_err!(
        "mod_up with one output too many",
        be.mod_up(
            ring,
            &q_buf,
            &q_buf,
            top,
            &mut ext_outs(dnum + 1, ext_words)
        )
    );
    expect_err!(
        "mod_up with one output too few",
        be.mod_up(
            ring,
            &q_buf,
            &q_buf,
            top,
            &mut ext_outs(dnum - 1, ext_words)
        )
    );
    expect_err!(
        "mod_up level out of range",
        be.mod_up(
            ring,
            &big,
            &big,
            num_q,
            &mut ext_outs(dnum, ext_words + n * 4)
        )
    );
    expect_err!(
        "mod_up short coeff",
        be.mod_up(ring, &short, &q_buf, top, &mut ext_outs(dnum, ext_words))
    );
    expect_err!(
        "mod_up short eval",
        be.mod_up(ring, &q_buf, &short, top, &mut ext_outs(dnum, ext_words))
    );
    expect_err!(
        "mod_up short out",
        be.mod_up(
            ring,
            &q_buf,
            &q_buf,
            top,
            &mut ext_outs(dnum, ext_words - 1)
        )
    );
    expect_err!(
        "mod_down level out of range",
        be.mod_down(
            ring,
            std::slice::from_ref(&big),
            num_q,
            &mut ext_outs(1, ext_words + n * 4)
        )
    );
    expect_err!(
        "mod_down short input",
        be.mod_down(
            ring,
            std::slice::from_ref(&q_buf),
            top,
            &mut ext_outs(1, ext_words)
        )
    );
    expect_err!(
        "mod_down short out",
        be.mod_down(
            ring,
            std::slice::from_ref(&ext_buf),
            top,
            &mut ext_outs(1, q_words - 1)
        )
    );
    expect_err!(
        "mod_down with mismatched output count",
        be.mod_down(
            ring,
            std::slice::from_ref(&ext_buf),
            top,
            &mut ext_outs(2, q_words)
        )
    );
    expect_err!(
        "rescale short input",
        be.rescale(ring, &short, top, &mut out)
    );
    let mut s_out = be.alloc(n * top - 1).unwrap();
    expect_err!(
        "rescale short out",
        be.rescale(ring, &q_buf, top, &mut s_out)
    );
    expect_err!(
        "rescale level usize::MAX",
        be.rescale(ring, &big, usize::MAX, &mut out)
    );
    expect_err!(
        "mod_down level usize::MAX",
        be.mod_down(
            ring,
            std::slice::from_ref(&big),
            usize::MAX,
            &mut ext_outs(1, q_words)
        )
    );
    expect_err!(
        "mod_up level usize::MAX",
        be.mod_up(ring, &big, &big, usize::MAX, &mut ext_outs(dnum, ext_words))
    );
}
