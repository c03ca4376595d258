//! The row-major packing of a `d × d` real matrix into `d²` slots: entry
//! `(i, j)` in slot `i·d + j` (see the [module docs](super) for why the slot
//! count is exactly `d²`). Wrong shapes are errors, never panics.

use ndarray::Array2;

use crate::ckks::{Ciphertext, Decryptor, Encoder, Encryptor};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::params::Parameters;

/// The side `d` of the square matrices a ciphertext holds.
///
/// Invariants: `d` is a power of two and `d² <=` the parameters' slot count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixShape {
    dim: usize,
}

impl MatrixShape {
    /// The shape of `dim × dim` matrices under `params`.
    pub fn new(dim: usize, params: &Parameters) -> Result<Self> {
        const OP: &str = "MatrixShape::new";
        if !dim.is_power_of_two() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("side {dim} must be a power of two (pad with zeros)"),
            });
        }
        let max = params.max_slots();
        match dim.checked_mul(dim) {
            Some(n) if n <= max => Ok(Self { dim }),
            _ => Err(Error::OutOfRange {
                op: OP,
                detail: format!(
                    "a {dim} x {dim} matrix needs {dim}² slots, the parameters have {max}"
                ),
            }),
        }
    }

    /// The side `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The slot count `d²`.
    pub fn slots(&self) -> usize {
        self.dim * self.dim
    }

    /// The slot of entry `(i, j)`: `i·d + j`.
    pub fn slot(&self, i: usize, j: usize) -> usize {
        i * self.dim + j
    }

    /// The slot vector of `m` (`d × d`, finite).
    pub fn pack(&self, m: &Array2<f64>) -> Result<Vec<Complex>> {
        let d = self.dim;
        if m.dim() != (d, d) {
            let (rows, cols) = m.dim();
            return Err(Error::OutOfRange {
                op: "MatrixShape::pack",
                detail: format!("matrix is {rows} x {cols}, expected {d} x {d}"),
            });
        }
        if m.iter().any(|v| !v.is_finite()) {
            return Err(Error::OutOfRange {
                op: "MatrixShape::pack",
                detail: "matrix entries must be finite".into(),
            });
        }
        // `iter` visits the entries in logical row-major order, whatever the
        // memory layout.
        Ok(m.iter().map(|&v| Complex::from(v)).collect())
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

    /// Fails unless `ct` holds a matrix of this shape (`d²` slots) at
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

    /// The matrix held by `slots` (`d²` values; real parts).
    pub fn unpack(&self, slots: &[Complex]) -> Result<Array2<f64>> {
        if slots.len() != self.slots() {
            return Err(Error::LengthMismatch {
                op: "MatrixShape::unpack",
                got: slots.len(),
                expected: self.slots(),
            });
        }
        let d = self.dim;
        Ok(Array2::from_shape_fn((d, d), |(i, j)| {
            slots[self.slot(i, j)].re
        }))
    }
}

/// Encodes `m` at `level` and `scale` and encrypts it (client side).
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

/// Decrypts and decodes a ciphertext holding a `d × d` matrix (client side).
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
        assert_eq!(slots[shape.slot(2, 3)].re, 23.0);
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
}
