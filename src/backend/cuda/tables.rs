//! The device tables of one parameter set, uploaded once per backend and
//! kept: the prime table, every NTT twiddle table with Shoup companions, and
//! the constants of every base conversion of the [`RingContext`] (ModUp of
//! every level and digit, ModDown, ModDown fused with rescale).
//!
//! Layouts (all `u64` words):
//! * `primes`: [`abi::prime_records`], [`abi::PRIME_WORDS`] words per global
//!   modulus index.
//! * `twiddles`: four tables of `moduli × N` words, in the order of
//!   [`Twiddles`]; table t, modulus g, entry k is at `(t·moduli + g)·N + k`.
//! * `conversions`: per conversion, `hat` (`targets × sources`, row-major as
//!   in [`BaseConversion::source_hat_mod_target`]), `neg_product`
//!   (`targets`), `fraction` (`sources` low words then `sources` high
//!   words); [`ConvTable`] holds the offsets.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, CudaView};

use super::abi::{self, LimbScalars};
use super::driver_error;
use crate::error::Result;
use crate::ring::{BaseConversion, RingContext};

/// Which twiddle table.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Twiddles {
    Forward = 0,
    ForwardShoup = 1,
    Inverse = 2,
    InverseShoup = 3,
}

/// Where one base conversion's constants live, and its per-source scalars.
#[derive(Debug)]
pub(crate) struct ConvTable {
    pub sources: usize,
    pub targets: usize,
    /// `(Q_S/q_s)^{-1} mod q_s` per source, passed by value.
    pub hat_inv: LimbScalars,
    hat: usize,
    neg_product: usize,
    fraction: usize,
}

impl ConvTable {
    /// Appends the constants of `conv` to `words` and records where.
    fn pack(ring: &RingContext, conv: &BaseConversion, words: &mut Vec<u64>) -> Result<Self> {
        let sources = conv.source.len();
        let targets = conv.target.len();
        let hat = words.len();
        words.extend_from_slice(&conv.source_hat_mod_target);
        let neg_product = words.len();
        words.extend_from_slice(&conv.neg_source_product_mod_target);
        let fraction = words.len();
        words.extend(conv.source_fraction.iter().map(|&f| f as u64));
        words.extend(conv.source_fraction.iter().map(|&f| (f >> 64) as u64));
        let hat_inv = LimbScalars::new(
            "cuda tables",
            conv.source.iter().map(|&g| &ring.moduli()[g]),
            &conv.source_hat_inv,
        )?;
        Ok(Self {
            sources,
            targets,
            hat_inv,
            hat,
            neg_product,
            fraction,
        })
    }
}

/// Every device table of one parameter set.
#[derive(Debug)]
pub(crate) struct RingTables {
    moduli: usize,
    n: usize,
    pub primes: CudaSlice<u64>,
    twiddles: CudaSlice<u64>,
    conversions: CudaSlice<u64>,
    /// `mod_up[level][digit]`.
    pub mod_up: Vec<Vec<ConvTable>>,
    pub mod_down: ConvTable,
    /// `mod_down_rescale[level]` for `level >= 1`.
    pub mod_down_rescale: Vec<Option<ConvTable>>,
}

impl RingTables {
    /// Builds and uploads every table of `ring` on `stream`.
    pub fn upload(ring: &RingContext, stream: &Arc<CudaStream>) -> Result<Self> {
        let moduli = ring.moduli().len();
        let n = ring.n();
        let mut twiddles = Vec::with_capacity(4 * moduli * n);
        for table in 0..4 {
            for g in 0..moduli {
                let t = ring.ntt(g);
                twiddles.extend_from_slice(match table {
                    0 => t.forward_twiddles(),
                    1 => t.forward_twiddles_shoup(),
                    2 => t.inverse_twiddles(),
                    _ => t.inverse_twiddles_shoup(),
                });
            }
        }
        let mut words = Vec::new();
        let mut mod_up = Vec::with_capacity(ring.num_q());
        for level in 0..ring.num_q() {
            let digits = ring.params().digits_at_level(level);
            mod_up.push(
                (0..digits)
                    .map(|j| ConvTable::pack(ring, ring.mod_up(level, j)?, &mut words))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        let mod_down = ConvTable::pack(ring, ring.mod_down(), &mut words)?;
        let mod_down_rescale = (0..ring.num_q())
            .map(|level| match level {
                0 => Ok(None),
                _ => ConvTable::pack(ring, ring.mod_down_rescale(level)?.0, &mut words).map(Some),
            })
            .collect::<Result<Vec<_>>>()?;
        let upload = |words: &[u64]| {
            stream
                .clone_htod(words)
                .map_err(|e| driver_error("uploading tables", e))
        };
        Ok(Self {
            moduli,
            n,
            primes: upload(&abi::prime_records(ring))?,
            twiddles: upload(&twiddles)?,
            conversions: upload(&words)?,
            mod_up,
            mod_down,
            mod_down_rescale,
        })
    }

    /// One twiddle table of every modulus.
    pub fn twiddles(&self, which: Twiddles) -> CudaView<'_, u64> {
        let len = self.moduli * self.n;
        let start = which as usize * len;
        self.twiddles.slice(start..start + len)
    }

    /// The `hat` matrix, `neg_product` and `fraction` arrays of `conv`.
    pub fn conversion(
        &self,
        conv: &ConvTable,
    ) -> (CudaView<'_, u64>, CudaView<'_, u64>, CudaView<'_, u64>) {
        let (s, t) = (conv.sources, conv.targets);
        (
            self.conversions.slice(conv.hat..conv.hat + s * t),
            self.conversions
                .slice(conv.neg_product..conv.neg_product + t),
            self.conversions.slice(conv.fraction..conv.fraction + 2 * s),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Parameters;

    #[test]
    fn conversions_pack_in_the_documented_layout() {
        let params = Parameters::preset("TEST_INSECURE_N12").unwrap();
        let ring = RingContext::new(&params).unwrap();
        let conv = ring.mod_down_rescale(2).unwrap().0;
        let mut words = vec![7u64; 3];
        let table = ConvTable::pack(&ring, conv, &mut words).unwrap();
        let (s, t) = (conv.source.len(), conv.target.len());
        assert_eq!((table.sources, table.targets), (s, t));
        assert_eq!(
            &words[table.hat..table.hat + s * t],
            &conv.source_hat_mod_target[..]
        );
        assert_eq!(
            &words[table.neg_product..table.neg_product + t],
            &conv.neg_source_product_mod_target[..]
        );
        for (i, &f) in conv.source_fraction.iter().enumerate() {
            assert_eq!(words[table.fraction + i], f as u64);
            assert_eq!(words[table.fraction + s + i], (f >> 64) as u64);
        }
        assert_eq!(words.len(), 3 + s * t + t + 2 * s);
    }
}
