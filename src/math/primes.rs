//! Primality testing and generation of NTT-friendly primes (q ≡ 1 mod 2N).

use super::Modulus;
use crate::error::{Error, Result};

/// Deterministic Miller–Rabin for every 64-bit integer.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n % p == 0 {
            return n == p;
        }
    }
    let mulmod = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let powmod = |mut b: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mulmod(r, b);
            }
            b = mulmod(b, b);
            e >>= 1;
        }
        r
    };
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    // These bases are a proven deterministic set for n < 2^64.
    'witness: for a in [2u64, 325, 9375, 28178, 450775, 9780504, 1795265022] {
        let a = a % n;
        if a == 0 {
            continue;
        }
        let mut x = powmod(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mulmod(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// Whether `q` is a prime with `q ≡ 1 (mod 2N)` for `N = 2^log_n`, below 2^62.
pub fn is_ntt_friendly(q: u64, log_n: u32) -> bool {
    q >> 62 == 0 && q % (2u64 << log_n) == 1 && is_prime(q)
}

/// `count` distinct NTT-friendly primes for `N = 2^log_n` with exactly `bits`
/// bits, the closest to 2^bits first, skipping any prime listed in `exclude`.
///
/// Candidates are taken alternately just above and just below 2^(bits-1)·2
/// ... that is, around `2^bits`-scaled centre `2^(bits - 1) * 1.5` would waste
/// precision, so the search walks down from `2^bits` (primes below 2^bits keep
/// the exact bit size).
pub fn generate_ntt_primes(
    bits: u32,
    log_n: u32,
    count: usize,
    exclude: &[u64],
) -> Result<Vec<u64>> {
    let two_n = 2u64 << log_n;
    if !(log_n + 2..=61).contains(&bits) {
        return Err(Error::InvalidParameters(format!(
            "cannot generate {bits}-bit NTT primes for N = 2^{log_n} (need {} <= bits <= 61)",
            log_n + 2
        )));
    }
    let mut primes = Vec::with_capacity(count);
    let low = 1u64 << (bits - 1);
    let mut candidate = (1u64 << bits) - two_n + 1;
    while primes.len() < count {
        if candidate <= low {
            return Err(Error::InvalidParameters(format!(
                "only {} NTT-friendly {bits}-bit primes exist for N = 2^{log_n}, {count} requested",
                primes.len()
            )));
        }
        if is_prime(candidate) && !exclude.contains(&candidate) {
            primes.push(candidate);
        }
        candidate -= two_n;
    }
    Ok(primes)
}

/// A primitive 2N-th root of unity modulo the NTT-friendly prime `q`, chosen
/// by the rule fixed in ARCHITECTURE.md ("NTT convention"): starting from
/// `q - 1` (a primitive 2nd root), take `log2(2N) - 1` successive square
/// roots with Tonelli–Shanks, using the least quadratic non-residue as `z`.
///
/// Returns `None` if `q` is not NTT-friendly for this N.
pub fn primitive_root_2n(q: u64, log_n: u32) -> Option<u64> {
    if !is_ntt_friendly(q, log_n) {
        return None;
    }
    let m = Modulus::new(q).ok()?;
    let s = (q - 1).trailing_zeros();
    let odd = (q - 1) >> s;
    let z = (2..q).find(|&z| m.pow(z, (q - 1) / 2) == q - 1)?;
    let sqrt = |n: u64| -> Option<u64> {
        // Tonelli–Shanks, as stated on its textbook page.
        let mut big_m = s;
        let mut c = m.pow(z, odd);
        let mut t = m.pow(n, odd);
        let mut r = m.pow(n, odd.div_ceil(2));
        loop {
            if t == 0 {
                return Some(0);
            }
            if t == 1 {
                return Some(r);
            }
            let mut i = 0;
            let mut t_pow = t;
            while i < big_m {
                t_pow = m.mul(t_pow, t_pow);
                i += 1;
                if t_pow == 1 {
                    break;
                }
            }
            if i == big_m {
                return None;
            }
            let b = m.pow(c, 1u64 << (big_m - i - 1));
            big_m = i;
            c = m.mul(b, b);
            t = m.mul(t, c);
            r = m.mul(r, b);
        }
    };
    let mut root = q - 1;
    for _ in 0..log_n {
        root = sqrt(root)?;
    }
    Some(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miller_rabin_matches_trial_division() {
        let trial = |n: u64| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0);
        for n in 0..5000u64 {
            assert_eq!(is_prime(n), trial(n), "n = {n}");
        }
        assert!(is_prime(0xffff_ffff_ffff_ffc5)); // largest 64-bit prime
        assert!(!is_prime(3215031751)); // strong pseudoprime to bases 2, 3, 5, 7
        assert!(is_prime(1152921504606584833));
    }

    #[test]
    fn generated_primes_are_ntt_friendly_distinct_and_exact_size() {
        for (bits, log_n) in [(30u32, 10u32), (50, 16), (60, 17), (40, 15)] {
            let primes = generate_ntt_primes(bits, log_n, 6, &[]).unwrap();
            for &q in &primes {
                assert!(is_ntt_friendly(q, log_n));
                assert_eq!(64 - q.leading_zeros(), bits);
            }
            let mut sorted = primes.clone();
            sorted.dedup();
            assert_eq!(sorted.len(), primes.len());
            let more = generate_ntt_primes(bits, log_n, 2, &primes).unwrap();
            assert!(more.iter().all(|q| !primes.contains(q)));
        }
        assert!(generate_ntt_primes(12, 10, 1000, &[]).is_err());
        assert!(generate_ntt_primes(62, 10, 1, &[]).is_err());
    }

    #[test]
    fn root_is_primitive() {
        for log_n in [10u32, 13, 16, 17] {
            let q = generate_ntt_primes(55, log_n, 1, &[]).unwrap()[0];
            let m = Modulus::new(q).unwrap();
            let psi = primitive_root_2n(q, log_n).unwrap();
            assert_eq!(m.pow(psi, 1 << log_n), q - 1);
        }
        assert_eq!(primitive_root_2n(65537 + 2, 4), None);
    }
}
