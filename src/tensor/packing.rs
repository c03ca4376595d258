//! The packing of `P` real `d × d` matrices (blocks) into `P·d²` slots,
//! row-major and interleaved: entry `(i, j)` of block `b` in slot
//! `(i·d + j)·P + b` (see the [module docs](super) for why the slot count is
//! exactly `P·d²`). Wrong shapes are errors, never panics.

use ndarray::Array2;

use crate::ckks::{Ciphertext, Decryptor, Encoder, Encryptor};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::params::Parameters;

/// The side `d` of the square matrices a ciphertext holds and how many
/// (`P`, the blocks) it holds.
///
/// Invariants: `d` and `P` are powers of two and `P·d² <=` the parameters'
/// slot count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixShape {
    dim: usize,
    blocks: usize,
}

impl MatrixShape {
    /// The shape of one `dim × dim` matrix per ciphertext under `params`.
    pub fn new(dim: usize, params: &Parameters) -> Result<Self> {
        Self::with_blocks(dim, 1, params)
    }

    /// The shape of `blocks` interleaved `dim × dim` matrices per
    /// ciphertext under `params`.
    pub fn with_blocks(dim: usize, blocks: usize, params: &Parameters) -> Result<Self> {
        const OP: &str = "MatrixShape::new";
        if !dim.is_power_of_two() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("side {dim} must be a power of two (pad with zeros)"),
            });
        }
        if !blocks.is_power_of_two() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("{blocks} blocks per ciphertext: not a power of two"),
            });
        }
        let max = params.max_slots();
        match dim.checked_mul(dim).and_then(|n| n.checked_mul(blocks)) {
            Some(n) if n <= max => Ok(Self { dim, blocks }),
            _ => Err(Error::OutOfRange {
                op: OP,
                detail: format!(
                    "{blocks} blocks of {dim} x {dim} need {blocks}·{dim}² slots, the parameters have {max}"
                ),
            }),
        }
    }

    /// The side `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The blocks `P` per ciphertext.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// The slot count `P·d²`.
    pub fn slots(&self) -> usize {
        self.dim * self.dim * self.blocks
    }

    /// The slot of entry `(i, j)` of block `b`: `(i·d + j)·P + b`.
    pub fn slot(&self, b: usize, i: usize, j: usize) -> usize {
        (i * self.dim + j) * self.blocks + b
    }

    /// The slot vector with `m` (`d × d`, finite) in every block: how a
    /// matrix every block shares (a mask, a permutation's diagonal) is
    /// packed.
    pub fn pack(&self, m: &Array2<f64>) -> Result<Vec<Complex>> {
        self.pack_blocks(&vec![m.clone(); self.blocks])
    }

    /// The slot vector of `blocks` (at most `P`, each `d × d`, finite; the
    /// missing ones zero).
    pub fn pack_blocks(&self, blocks: &[Array2<f64>]) -> Result<Vec<Complex>> {
        let d = self.dim;
        if blocks.len() > self.blocks {
            return Err(Error::OutOfRange {
                op: "MatrixShape::pack",
                detail: format!(
                    "{} blocks, a ciphertext holds {}",
                    blocks.len(),
                    self.blocks
                ),
            });
        }
        if let Some(m) = blocks.iter().find(|m| m.dim() != (d, d)) {
            let (rows, cols) = m.dim();
            return Err(Error::OutOfRange {
                op: "MatrixShape::pack",
                detail: format!("matrix is {rows} x {cols}, expected {d} x {d}"),
            });
        }
        if blocks.iter().flatten().any(|v| !v.is_finite()) {
            return Err(Error::OutOfRange {
                op: "MatrixShape::pack",
                detail: "matrix entries must be finite".into(),
            });
        }
        let mut slots = vec![Complex::ZERO; self.slots()];
        for (b, m) in blocks.iter().enumerate() {
            for ((i, j), &v) in m.indexed_iter() {
                slots[self.slot(b, i, j)] = Complex::from(v);
            }
        }
        Ok(slots)
    }

    /// The slot vectors of a wide matrix `m` (`d` rows, any width, padded
    /// with zero columns to whole blocks): block `k` (columns
    /// `k·d..(k+1)·d`) is block `k mod P` of ciphertext `⌊k/P⌋`, so row `i`
    /// of every ciphertext fills its slots `i·d·P..(i+1)·d·P`.
    pub fn pack_wide(&self, m: &Array2<f64>) -> Result<Vec<Vec<Complex>>> {
        let d = self.dim;
        let (rows, cols) = m.dim();
        if rows != d || cols == 0 {
            return Err(Error::OutOfRange {
                op: "MatrixShape::pack_wide",
                detail: format!("matrix is {rows} x {cols}, expected {d} rows"),
            });
        }
        let mut padded = Array2::zeros((d, cols.div_ceil(d) * d));
        padded.slice_mut(ndarray::s![.., ..cols]).assign(m);
        let blocks: Vec<Array2<f64>> = self.split_blocks(&padded)?.concat();
        blocks
            .chunks(self.blocks)
            .map(|group| self.pack_blocks(group))
            .collect()
    }

    /// The first `width` columns of the wide matrix held by `slots` (one
    /// vector per ciphertext), the inverse of [`pack_wide`](Self::pack_wide).
    pub fn unpack_wide(&self, slots: &[Vec<Complex>], width: usize) -> Result<Array2<f64>> {
        let blocks = slots
            .iter()
            .map(|s| self.unpack_blocks(s))
            .collect::<Result<Vec<_>>>()?
            .concat();
        let joined = self.join_blocks(&[blocks])?;
        if width > joined.ncols() {
            return Err(Error::LengthMismatch {
                op: "MatrixShape::unpack_wide",
                got: joined.ncols(),
                expected: width,
            });
        }
        Ok(joined.slice(ndarray::s![.., ..width]).to_owned())
    }

    /// `m` (`r·d × c·d`) as its `r × c` grid of `d × d` blocks, row by row:
    /// block `(i, j)` holds rows `i·d..(i+1)·d`, columns `j·d..(j+1)·d`.
    /// Pad with zeros first when a side is not a multiple of `d`.
    pub fn split_blocks(&self, m: &Array2<f64>) -> Result<Vec<Vec<Array2<f64>>>> {
        let d = self.dim;
        let (rows, cols) = m.dim();
        if rows == 0 || cols == 0 || rows % d != 0 || cols % d != 0 {
            return Err(Error::OutOfRange {
                op: "MatrixShape::split_blocks",
                detail: format!("matrix is {rows} x {cols}, not a grid of {d} x {d} blocks"),
            });
        }
        Ok((0..rows / d)
            .map(|i| {
                (0..cols / d)
                    .map(|j| {
                        m.slice(ndarray::s![i * d..(i + 1) * d, j * d..(j + 1) * d])
                            .to_owned()
                    })
                    .collect()
            })
            .collect())
    }

    /// The matrix made of the grid `blocks` (rows of `d × d` blocks, every
    /// row as long), the inverse of [`split_blocks`](Self::split_blocks).
    pub fn join_blocks(&self, blocks: &[Vec<Array2<f64>>]) -> Result<Array2<f64>> {
        let d = self.dim;
        let columns = blocks.first().map_or(0, Vec::len);
        if columns == 0 || blocks.iter().any(|row| row.len() != columns) {
            return Err(Error::OutOfRange {
                op: "MatrixShape::join_blocks",
                detail: "the block rows must be non-empty and equally long".into(),
            });
        }
        if blocks.iter().flatten().any(|b| b.dim() != (d, d)) {
            return Err(Error::OutOfRange {
                op: "MatrixShape::join_blocks",
                detail: format!("every block must be {d} x {d}"),
            });
        }
        Ok(Array2::from_shape_fn(
            (blocks.len() * d, columns * d),
            |(i, j)| blocks[i / d][j / d][[i % d, j % d]],
        ))
    }

    /// Fails unless `ct` holds matrices of this shape (`P·d²` slots) at
    /// `level` or above.
    pub(crate) fn check_operand(
        &self,
        op: &'static str,
        ct: &Ciphertext,
        level: usize,
    ) -> Result<()> {
        if ct.slots() != self.slots() {
            return Err(Error::LengthMismatch {
                op,
                got: ct.slots(),
                expected: self.slots(),
            });
        }
        if ct.level() < level {
            return Err(Error::OutOfLevels {
                op,
                level: ct.level(),
                needed: level,
            });
        }
        Ok(())
    }

    /// The `P` blocks held by `slots` (`P·d²` values; real parts).
    pub fn unpack_blocks(&self, slots: &[Complex]) -> Result<Vec<Array2<f64>>> {
        if slots.len() != self.slots() {
            return Err(Error::LengthMismatch {
                op: "MatrixShape::unpack",
                got: slots.len(),
                expected: self.slots(),
            });
        }
        let d = self.dim;
        Ok((0..self.blocks)
            .map(|b| Array2::from_shape_fn((d, d), |(i, j)| slots[self.slot(b, i, j)].re))
            .collect())
    }

    /// Block 0 of `slots` (the matrix, for one block per ciphertext).
    pub fn unpack(&self, slots: &[Complex]) -> Result<Array2<f64>> {
        let mut blocks = self.unpack_blocks(slots)?;
        Ok(blocks.swap_remove(0))
    }
}

/// Encodes `m` (in every block) at `level` and `scale` and encrypts it
/// (client side).
pub fn encrypt_matrix(
    shape: &MatrixShape,
    encoder: &Encoder,
    encryptor: &mut Encryptor,
    m: &Array2<f64>,
    level: usize,
    scale: f64,
) -> Result<Ciphertext> {
    let pt = encoder.encode_complex(&shape.pack(m)?, level, scale)?;
    encryptor.encrypt(&pt)
}

/// Decrypts and decodes a ciphertext holding a `d × d` matrix: its block 0
/// (client side).
pub fn decrypt_matrix(
    shape: &MatrixShape,
    encoder: &Encoder,
    decryptor: &Decryptor,
    ct: &Ciphertext,
) -> Result<Array2<f64>> {
    shape.unpack(&encoder.decode(&decryptor.decrypt(ct)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_round_trip() {
        let params = Parameters::preset("TEST_INSECURE_N11").unwrap();
        assert!(MatrixShape::new(32, &params).is_ok());
        for bad in [0, 3, 12, 64] {
            assert!(matches!(
                MatrixShape::new(bad, &params),
                Err(Error::OutOfRange { .. })
            ));
        }
        let shape = MatrixShape::new(4, &params).unwrap();
        let m = Array2::from_shape_fn((4, 4), |(i, j)| (10 * i + j) as f64);
        let slots = shape.pack(&m).unwrap();
        assert_eq!(slots[shape.slot(0, 2, 3)].re, 23.0);
        assert_eq!(shape.unpack(&slots).unwrap(), m);
        // Column-major input is packed by entry, not by memory order.
        assert_eq!(shape.pack(&m.t().to_owned()).unwrap()[1].re, 10.0);
        for bad in [Array2::zeros((4, 3)), Array2::zeros((8, 8))] {
            assert!(matches!(shape.pack(&bad), Err(Error::OutOfRange { .. })));
        }
        let mut nan = m.clone();
        nan[[1, 1]] = f64::NAN;
        assert!(shape.pack(&nan).is_err());
        assert!(matches!(
            shape.unpack(&slots[..15]),
            Err(Error::LengthMismatch { .. })
        ));
    }

    #[test]
    fn interleaved_blocks_round_trip() {
        let params = Parameters::preset("TEST_INSECURE_N11").unwrap();
        let shape = MatrixShape::with_blocks(4, 8, &params).unwrap();
        assert_eq!(shape.slots(), 128);
        for (dim, blocks) in [(4, 3), (32, 2), (3, 2)] {
            assert!(MatrixShape::with_blocks(dim, blocks, &params).is_err());
        }
        let blocks: Vec<Array2<f64>> = (0..5)
            .map(|b| Array2::from_shape_fn((4, 4), |(i, j)| (100 * b + 10 * i + j) as f64))
            .collect();
        let slots = shape.pack_blocks(&blocks).unwrap();
        // Entry (1, 2) of block 3 sits in slot (1·4 + 2)·8 + 3.
        assert_eq!(slots[51].re, 312.0);
        let back = shape.unpack_blocks(&slots).unwrap();
        assert_eq!(&back[..5], &blocks[..]);
        assert!(back[5..].iter().all(|m| m.iter().all(|&v| v == 0.0)));
        let shared = shape.pack(&blocks[1]).unwrap();
        assert!(shape
            .unpack_blocks(&shared)
            .unwrap()
            .iter()
            .all(|m| *m == blocks[1]));
        assert!(shape.pack_blocks(&vec![blocks[0].clone(); 9]).is_err());
    }
}
