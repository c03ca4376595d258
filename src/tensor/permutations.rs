//! The JKLS permutations of `d × d` matrices in row-major interleaved slots,
//! as plaintext [`LinearTransform`]s over `n = P·d²` slots (formulas in the
//! [module docs](super)), applied to each of the `P` blocks alike.
//!
//! Each map is given by the entry its output `(i, j)` reads; the output slot
//! `l` reads input slot `s(l)` of the same block, so it lies on diagonal
//! `(s(l) − l) mod n`, a multiple of `P`, with coefficient 1
//! ([`permutation`]). In units of `P`: `σ` has `2d − 1` diagonals (`k` and
//! `k − d`, `0 <= k < d`), `τ` has `d` (the multiples of `d`: its output
//! `(i, j)` reads `((i + j) mod d)·d + j`), `φ^k` two (`k` and `k − d`),
//! `ψ^k` one (`k·d`), the transpose `2d − 1` (`(d − 1)·(j − i)` for the
//! entry `(i, j)`).

use std::collections::BTreeMap;

use crate::circuits::linear::{step, LinearTransform};
use crate::error::Result;
use crate::math::Complex;

use super::MatrixShape;

/// The permutation whose output entry `(i, j)` is the input entry
/// `source(i, j)` of the same block (indices taken modulo `d`).
pub fn permutation(
    shape: &MatrixShape,
    source: impl Fn(usize, usize) -> (usize, usize),
) -> Result<LinearTransform> {
    let (d, n) = (shape.dim(), shape.slots());
    let mut diagonals: BTreeMap<i64, Vec<Complex>> = BTreeMap::new();
    for i in 0..d {
        for j in 0..d {
            let (si, sj) = source(i, j);
            for b in 0..shape.blocks() {
                let (l, s) = (shape.slot(b, i, j), shape.slot(b, si % d, sj % d));
                let k = ((s + n - l) % n) as i64;
                diagonals.entry(k).or_insert_with(|| vec![Complex::ZERO; n])[l] =
                    Complex::from(1.0);
            }
        }
    }
    LinearTransform::from_diagonals(n, diagonals)
}

/// `σ(A)[i][j] = A[i][i + j]`.
pub fn sigma(shape: &MatrixShape) -> Result<LinearTransform> {
    permutation(shape, |i, j| (i, i + j))
}

/// `τ(A)[i][j] = A[i + j][j]`.
pub fn tau(shape: &MatrixShape) -> Result<LinearTransform> {
    permutation(shape, |i, j| (i + j, j))
}

/// `φ^k(A)[i][j] = A[i][j + k]` (diagonals `k` and `k − d` for `0 < k < d`).
pub fn column_shift(shape: &MatrixShape, k: usize) -> Result<LinearTransform> {
    permutation(shape, |i, j| (i, j + k))
}

/// `ψ^k(A)[i][j] = A[i + k][j]` (the rotation by `k·d·P`).
pub fn row_shift(shape: &MatrixShape, k: usize) -> Result<LinearTransform> {
    permutation(shape, |i, j| (i + k, j))
}

/// `Aᵀ[i][j] = A[j][i]`.
pub fn transpose(shape: &MatrixShape) -> Result<LinearTransform> {
    permutation(shape, |i, j| (j, i))
}

/// The rotation step of `ψ^k`: `k·d·P` as its representative in
/// `(−n/2, n/2]`.
pub fn row_shift_step(shape: &MatrixShape, k: usize) -> i64 {
    step(
        (k % shape.dim()) * shape.dim() * shape.blocks(),
        shape.slots(),
    )
}

/// The two rotation steps of `φ^k` for `0 < k < d`: `k·P` and `(k − d)·P`.
pub fn column_shift_steps(shape: &MatrixShape, k: usize) -> [i64; 2] {
    let (k, d, p) = (k as i64, shape.dim() as i64, shape.blocks() as i64);
    [k * p, (k - d) * p]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Parameters;
    use ndarray::Array2;

    /// The matrix with entry `(i, j)` equal to `i·d + j` (all distinct).
    fn numbered(d: usize) -> Array2<f64> {
        Array2::from_shape_fn((d, d), |(i, j)| (i * d + j) as f64)
    }

    /// Applies `t` to distinct blocks and checks every block.
    fn check(
        shape: &MatrixShape,
        t: &LinearTransform,
        want: impl Fn(usize, usize) -> (usize, usize),
    ) {
        let d = shape.dim();
        let blocks: Vec<Array2<f64>> = (0..shape.blocks())
            .map(|b| numbered(d) + (b * d * d) as f64)
            .collect();
        let got = shape
            .unpack_blocks(&t.apply_plain(&shape.pack_blocks(&blocks).unwrap()).unwrap())
            .unwrap();
        for (got, m) in got.iter().zip(&blocks) {
            let expected = Array2::from_shape_fn((d, d), |(i, j)| {
                let (si, sj) = want(i, j);
                m[[si % d, sj % d]]
            });
            assert_eq!(*got, expected);
        }
    }

    #[test]
    fn permutations_match_their_definitions() {
        let params = Parameters::preset("TEST_INSECURE_N11").unwrap();
        for (d, blocks) in [
            (1, 1),
            (2, 1),
            (4, 1),
            (8, 1),
            (16, 1),
            (4, 4),
            (8, 2),
            (2, 8),
        ] {
            let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
            check(&shape, &sigma(&shape).unwrap(), |i, j| (i, i + j));
            check(&shape, &tau(&shape).unwrap(), |i, j| (i + j, j));
            check(&shape, &transpose(&shape).unwrap(), |i, j| (j, i));
            for k in 0..d {
                check(&shape, &column_shift(&shape, k).unwrap(), |i, j| (i, j + k));
                check(&shape, &row_shift(&shape, k).unwrap(), |i, j| (i + k, j));
            }
            if d > 1 {
                assert_eq!(sigma(&shape).unwrap().diagonals().len(), 2 * d - 1);
                assert_eq!(tau(&shape).unwrap().diagonals().len(), d);
                assert_eq!(transpose(&shape).unwrap().diagonals().len(), 2 * d - 1);
            }
        }
    }

    #[test]
    fn shifts_are_the_stated_rotations() {
        let params = Parameters::preset("TEST_INSECURE_N11").unwrap();
        let shape = MatrixShape::with_blocks(8, 4, &params).unwrap();
        let n = shape.slots() as i64;
        for k in 1..8 {
            let steps = column_shift_steps(&shape, k);
            let phi = column_shift(&shape, k).unwrap();
            let indices: Vec<i64> = phi.diagonals().keys().map(|&i| i as i64).collect();
            let mut want: Vec<i64> = steps.iter().map(|s| s.rem_euclid(n)).collect();
            want.sort_unstable();
            assert_eq!(indices, want);
            // The two masks are complementary.
            let (near, far) = (
                phi.diagonal(steps[0]).unwrap(),
                phi.diagonal(steps[1]).unwrap(),
            );
            assert!(near
                .iter()
                .zip(far)
                .all(|(a, b)| (a.re + b.re - 1.0).abs() == 0.0));
            let psi = row_shift(&shape, k).unwrap();
            assert_eq!(psi.rotations(), vec![row_shift_step(&shape, k)]);
        }
    }
}
