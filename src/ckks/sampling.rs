//! Randomness: a ChaCha20 CSPRNG seeded from the operating system by default,
//! or from an explicit seed for reproducible tests and benchmarks, and the
//! samplers of CKKS (uniform residues, ternary, sparse ternary, discrete
//! Gaussian).

use rand::{Rng, RngCore, SeedableRng, TryRngCore};
use rand_chacha::ChaCha20Rng;

use crate::error::{Error, Result};
use crate::math::Modulus;
use crate::params::SecretDistribution;

/// A cryptographically secure generator (ChaCha20).
#[derive(Debug, Clone)]
pub struct Prng {
    rng: ChaCha20Rng,
}

impl Prng {
    /// Seeded from the operating system's entropy source.
    pub fn from_os() -> Result<Self> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| Error::Backend {
                backend: "os-rng".into(),
                detail: format!("cannot read OS entropy: {e}"),
            })?;
        Ok(Self {
            rng: ChaCha20Rng::from_seed(seed),
        })
    }

    /// Deterministic stream for tests and benchmarks. Never use for real keys.
    pub fn from_seed(seed: u64) -> Self {
        Self {
            rng: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    /// An independent generator seeded with 32 bytes of this one's stream
    /// (for work split across threads; as secure as this generator).
    pub fn fork(&mut self) -> Self {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        Self {
            rng: ChaCha20Rng::from_seed(seed),
        }
    }

    /// A uniform 64-bit word.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform residues modulo `m` (rejection sampling, no bias).
    pub fn fill_uniform(&mut self, m: &Modulus, out: &mut [u64]) {
        let q = m.value();
        let mask = u64::MAX >> q.leading_zeros();
        for x in out.iter_mut() {
            *x = loop {
                let v = self.rng.next_u64() & mask;
                if v < q {
                    break v;
                }
            };
        }
    }

    /// N coefficients in {-1, 0, 1}, each with probability 1/3.
    pub fn ternary(&mut self, n: usize) -> Vec<i64> {
        (0..n).map(|_| self.rng.random_range(0..3i64) - 1).collect()
    }

    /// N coefficients with exactly `h` nonzero entries, each ±1 uniformly, at uniform positions.
    pub fn sparse_ternary(&mut self, n: usize, h: usize) -> Vec<i64> {
        let mut v = vec![0i64; n];
        // Partial Fisher–Yates over positions.
        let mut positions: Vec<usize> = (0..n).collect();
        for i in 0..h.min(n) {
            let j = self.rng.random_range(i..n);
            positions.swap(i, j);
            v[positions[i]] = if self.rng.random::<bool>() { 1 } else { -1 };
        }
        v
    }

    /// A secret of the given distribution.
    pub fn secret(&mut self, n: usize, dist: SecretDistribution) -> Vec<i64> {
        match dist {
            SecretDistribution::Ternary => self.ternary(n),
            SecretDistribution::SparseTernary { hamming_weight } => {
                self.sparse_ternary(n, hamming_weight)
            }
        }
    }

    /// N samples of the discrete Gaussian of standard deviation `sigma`,
    /// truncated at 6σ, by inversion of its cumulative table.
    pub fn gaussian(&mut self, n: usize, sigma: f64) -> Vec<i64> {
        let table = GaussianTable::new(sigma);
        (0..n).map(|_| table.sample(&mut self.rng)).collect()
    }
}

/// Cumulative distribution of |x| for the discrete Gaussian, as 64-bit fixed point.
struct GaussianTable {
    cumulative: Vec<u64>,
}

impl GaussianTable {
    fn new(sigma: f64) -> Self {
        let bound = (6.0 * sigma).ceil() as i64;
        let weight = |x: i64| (-(x * x) as f64 / (2.0 * sigma * sigma)).exp();
        // Mass of |x| = k: weight(0) once, 2·weight(k) for k > 0.
        let masses: Vec<f64> = (0..=bound)
            .map(|k| if k == 0 { weight(0) } else { 2.0 * weight(k) })
            .collect();
        let total: f64 = masses.iter().sum();
        let mut acc = 0.0;
        let cumulative = masses
            .iter()
            .map(|m| {
                acc += m / total;
                (acc * 2f64.powi(64)).min(u64::MAX as f64) as u64
            })
            .collect::<Vec<_>>();
        let mut cumulative = cumulative;
        if let Some(last) = cumulative.last_mut() {
            *last = u64::MAX;
        }
        Self { cumulative }
    }

    fn sample(&self, rng: &mut ChaCha20Rng) -> i64 {
        let u = rng.next_u64();
        let k = self.cumulative.partition_point(|&c| c < u) as i64;
        if k != 0 && rng.random::<bool>() {
            -k
        } else {
            k
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_streams_repeat_and_os_streams_differ() {
        let a: Vec<u64> = (0..4).map(|_| Prng::from_seed(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = Prng::from_os().unwrap();
        let mut y = Prng::from_os().unwrap();
        assert_ne!(x.next_u64(), y.next_u64());
    }

    #[test]
    fn ternary_is_balanced() {
        let v = Prng::from_seed(1).ternary(30_000);
        for t in -1..=1 {
            let count = v.iter().filter(|&&x| x == t).count();
            assert!((9_000..11_000).contains(&count), "{t}: {count}");
        }
    }

    #[test]
    fn sparse_ternary_has_exact_weight() {
        let v = Prng::from_seed(2).sparse_ternary(4096, 192);
        assert_eq!(v.iter().filter(|&&x| x != 0).count(), 192);
        assert!(v.iter().all(|&x| (-1..=1).contains(&x)));
    }

    #[test]
    fn gaussian_has_the_right_moments() {
        let sigma = 3.2;
        let v = Prng::from_seed(3).gaussian(200_000, sigma);
        let mean = v.iter().sum::<i64>() as f64 / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - sigma).abs() < 0.05, "std {}", var.sqrt());
        assert!(v.iter().all(|x| x.abs() <= 20));
    }

    #[test]
    fn uniform_residues_cover_the_range() {
        let m = Modulus::new(97).unwrap();
        let mut out = vec![0u64; 10_000];
        Prng::from_seed(4).fill_uniform(&m, &mut out);
        assert!(out.iter().all(|&x| x < 97));
        assert!(out.contains(&0) && out.contains(&96));
    }
}
