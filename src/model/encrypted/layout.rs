//! How the friendly transformer's activations sit in `d × d` blocks, `P`
//! blocks per ciphertext.
//!
//! The block side `d` is the model's sequence length (a power of two with
//! `d² <=` the slot count): an activation of `d` tokens and `w` features
//! (`w` zero-padded to a multiple of `d`) is `w/d` blocks, block `b`
//! holding the columns `b·d .. (b+1)·d`, row-major; ciphertext `g` holds the
//! blocks `g·P .. g·P + P − 1`, interleaved ([`MatrixShape`]). `P` is the
//! hidden size's block count rounded up to a power of two, at most what the
//! slots hold: the residual stream fills one ciphertext where it fits.
//! `d` must divide `hidden` and be a multiple of the head width, so that
//! every head lies inside one block.
//!
//! The client always sends `d` tokens (the tokenizer pads to the sequence
//! length) and the padding mask encrypted as the `d × d` matrix whose row
//! `j` is `m_j` everywhere, in every block ([`BlockLayout::mask_matrix`]):
//! the server multiplies the values `V` of every head by it, which zeroes
//! the masked keys' terms.

use ndarray::{s, Array1, Array2};

use crate::error::{Error, Result};
use crate::math::Complex;
use crate::model::friendly::FriendlyConfig;
use crate::params::Parameters;
use crate::tensor::{replicated_rows, DenseProduct, MatrixProduct, MatrixShape, Transpose};

const OP: &str = "BlockLayout";

/// The block shape of one model under one parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLayout {
    shape: MatrixShape,
    hidden_blocks: usize,
    heads: usize,
    head_size: usize,
}

impl BlockLayout {
    /// The layout of `config` under `params`.
    ///
    /// Errors: [`Error::InvalidParameters`] when the sequence length is not
    /// a power of two, does not divide `hidden`, is not a multiple of the
    /// head width, or needs more than the parameters' slots.
    pub fn new(config: &FriendlyConfig, params: &Parameters) -> Result<Self> {
        let d = config.seq_len;
        let invalid = |why: String| Error::InvalidParameters(format!("encrypted layout: {why}"));
        if !d.is_power_of_two() {
            return Err(invalid(format!(
                "the sequence length {d} is the block side and must be a power of two"
            )));
        }
        if config.hidden % d != 0 {
            return Err(invalid(format!(
                "the block side {d} must divide hidden = {}",
                config.hidden
            )));
        }
        if d % config.head_size() != 0 {
            return Err(invalid(format!(
                "the block side {d} must be a multiple of the head width {}",
                config.head_size()
            )));
        }
        let hidden_blocks = config.hidden / d;
        let fit = (params.max_slots() / (d * d)).max(1);
        let blocks = hidden_blocks.next_power_of_two().min(fit);
        let shape =
            MatrixShape::with_blocks(d, blocks, params).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            shape,
            hidden_blocks,
            heads: config.heads,
            head_size: config.head_size(),
        })
    }

    /// The width of the heads' layout (queries, keys, values, kernels):
    /// one block per head.
    pub fn heads_width(&self) -> usize {
        self.heads * self.dim()
    }

    /// The column of the heads' layout that holds feature `j` of a
    /// projection: head `h = j / width` in block `h`, at the offset its
    /// columns have within their block of the stream.
    pub fn head_column(&self, j: usize) -> usize {
        let (head, offset) = (j / self.head_size, j % self.head_size);
        head * self.dim() + (head * self.head_size) % self.dim() + offset
    }

    /// The block shape.
    pub fn shape(&self) -> MatrixShape {
        self.shape
    }

    /// The block side `d` (the tokens per activation).
    pub fn dim(&self) -> usize {
        self.shape.dim()
    }

    /// Blocks of the residual stream.
    pub fn hidden_blocks(&self) -> usize {
        self.hidden_blocks
    }

    /// Ciphertexts of the residual stream.
    pub fn hidden_ciphertexts(&self) -> usize {
        self.ciphertexts_for(self.hidden_blocks * self.dim())
    }

    /// Blocks of `width` features (padded up to a multiple of `d`).
    pub fn blocks_for(&self, width: usize) -> usize {
        width.div_ceil(self.dim())
    }

    /// Ciphertexts of `width` features.
    pub fn ciphertexts_for(&self, width: usize) -> usize {
        self.blocks_for(width).div_ceil(self.shape.blocks()).max(1)
    }

    /// `m` (`rows × cols`, at most `d_rows × d_cols` after padding) padded
    /// with zeros to `rows_to × cols_to`.
    pub fn padded(m: &Array2<f64>, rows_to: usize, cols_to: usize) -> Result<Array2<f64>> {
        let (rows, cols) = m.dim();
        if rows > rows_to || cols > cols_to {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("a {rows} x {cols} matrix does not fit {rows_to} x {cols_to}"),
            });
        }
        let mut out = Array2::zeros((rows_to, cols_to));
        out.slice_mut(s![..rows, ..cols]).assign(m);
        Ok(out)
    }

    /// The slot vectors of an activation `d × w`: one per ciphertext
    /// ([`MatrixShape::pack_wide`]).
    pub fn pack(&self, activation: &Array2<f64>) -> Result<Vec<Vec<Complex>>> {
        self.shape.pack_wide(activation)
    }

    /// The first `width` columns of the activation whose ciphertexts hold
    /// `slots`.
    pub fn unpack(&self, slots: &[Vec<Complex>], width: usize) -> Result<Array2<f64>> {
        self.shape.unpack_wide(slots, width)
    }

    /// The rotation steps of the circuit (the dense products', CCMM's, the
    /// transpose's; the bootstrapper's come on top), with the
    /// relinearization key.
    pub fn rotations(&self) -> Result<Vec<i64>> {
        let mut steps = MatrixProduct::ccmm_rotations(&self.shape)?;
        steps.extend(Transpose::rotations(&self.shape)?);
        steps.extend(DenseProduct::rotations(&self.shape));
        steps.sort_unstable();
        steps.dedup();
        Ok(steps)
    }

    /// The padding mask as the `d × d` matrix whose row `j` is `m_j`.
    pub fn mask_matrix(&self, mask: &[bool]) -> Result<Array2<f64>> {
        let d = self.dim();
        if mask.len() != d {
            return Err(Error::LengthMismatch {
                op: OP,
                got: mask.len(),
                expected: d,
            });
        }
        Ok(Array2::from_shape_fn((d, d), |(j, _)| {
            f64::from(u8::from(mask[j]))
        }))
    }

    /// The slot vectors of `v` (length at most `k·d`) zero-padded and
    /// replicated on every row of its `k` blocks: how a bias is added.
    pub fn replicated_row(&self, v: &Array1<f64>) -> Result<Vec<Vec<Complex>>> {
        self.pack(&replicated_rows(self.dim(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_checks() {
        let params = Parameters::preset("TEST_INSECURE_N11").unwrap();
        let config = FriendlyConfig::tiny();
        let layout = BlockLayout::new(&config, &params).unwrap();
        assert_eq!((layout.dim(), layout.hidden_blocks()), (8, 2));
        assert_eq!(
            (layout.shape().blocks(), layout.hidden_ciphertexts()),
            (2, 1)
        );
        let m = Array2::from_shape_fn((8, 20), |(i, j)| (i * 100 + j) as f64);
        let slots = layout.pack(&m).unwrap();
        assert_eq!(slots.len(), layout.ciphertexts_for(20));
        // Column 19 is column 3 of block 2: block 0 of the second ciphertext.
        let shape = layout.shape();
        assert_eq!(slots[1][shape.slot(0, 1, 3)].re, 119.0);
        assert_eq!(slots[1][shape.slot(0, 1, 4)].re, 0.0);
        assert_eq!(layout.unpack(&slots, 20).unwrap(), m);
        let mask = layout
            .mask_matrix(&[true, true, false, true, true, true, false, false])
            .unwrap();
        assert_eq!((mask[[2, 5]], mask[[3, 0]]), (0.0, 1.0));
        let bias = layout
            .replicated_row(&Array1::from_vec(vec![1.0, 2.0, 3.0]))
            .unwrap();
        let bias = layout.unpack(&bias, 8).unwrap();
        assert_eq!((bias[[7, 2]], bias[[7, 3]]), (3.0, 0.0));
        let mut bad = config.clone();
        bad.seq_len = 6;
        assert!(BlockLayout::new(&bad, &params).is_err());
        bad.seq_len = 32;
        assert!(BlockLayout::new(&bad, &params).is_err());
        assert!(layout.pack(&Array2::zeros((4, 16))).is_err());
    }
}
