//! Dense linear solves for the small, well-conditioned systems of the Remez
//! exchange (Chebyshev basis at interlacing points).

/// The solution of `matrix · x = rhs` by Gaussian elimination with partial
/// pivoting; `matrix` is `n × n`, row-major. `None` when the system is
/// singular or the shapes disagree.
pub(crate) fn solve(mut matrix: Vec<f64>, mut rhs: Vec<f64>) -> Option<Vec<f64>> {
    let n = rhs.len();
    if matrix.len() != n * n {
        return None;
    }
    for col in 0..n {
        let pivot_row = (col..n).max_by(|&i, &j| {
            matrix[i * n + col]
                .abs()
                .total_cmp(&matrix[j * n + col].abs())
        })?;
        let pivot = matrix[pivot_row * n + col];
        if pivot == 0.0 || !pivot.is_finite() {
            return None;
        }
        if pivot_row != col {
            for k in 0..n {
                matrix.swap(pivot_row * n + k, col * n + k);
            }
            rhs.swap(pivot_row, col);
        }
        for row in col + 1..n {
            let factor = matrix[row * n + col] / pivot;
            for k in col..n {
                matrix[row * n + k] -= factor * matrix[col * n + k];
            }
            rhs[row] -= factor * rhs[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|k| matrix[row * n + k] * x[k]).sum();
        x[row] = (rhs[row] - tail) / matrix[row * n + row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_system_that_needs_pivoting() {
        let x = solve(
            vec![0.0, 2.0, 1.0, 3.0, 1.0, 0.0, 1.0, 1.0, 1.0],
            vec![7.0, 5.0, 6.0],
        );
        let x = x.unwrap();
        for (got, want) in x.iter().zip([1.0, 2.0, 3.0]) {
            assert!((got - want).abs() < 1e-14, "{x:?}");
        }
    }

    #[test]
    fn singular_or_misshaped_systems_give_none() {
        assert!(solve(vec![1.0, 2.0, 2.0, 4.0], vec![1.0, 2.0]).is_none());
        assert!(solve(vec![1.0, 2.0, 3.0], vec![1.0, 2.0]).is_none());
    }
}
