//! The range scalings of the adaptation: the attention temperature of the
//! mapped model, and the polynomial ranges of the adapted one.
//!
//! **Attention scale.** MiniLM's queries and keys were trained for
//! `softmax(q·k/√d)`. The Gaussian kernel is that softmax's numerator times
//! `exp(−(‖q‖² + ‖k‖²)/(2√d))` and is not normalised, so with MiniLM's
//! norms every weight of a row is tiny (row sums near `e^−10`): the
//! attention block passes almost nothing and its gradient vanishes.
//! [`scale_attention`] multiplies each head's query and key columns
//! (weights, biases and LoRA `B`) by `α_h`, which multiplies its exponents
//! by `α_h²`, with `α_h` chosen so that the geometric mean over the rows of
//! the samples of the row sums `Σ_j S_ij` is 1, as a softmax's are. Layers
//! are scaled in order, each measured after the previous ones are scaled.
//!
//! **Ranges.** The circuit's polynomials are only right inside the ranges
//! they were fitted on. [`RangeStats`] records the extreme input of each
//! non-linearity over full padded sequences (every row of every layer,
//! masked keys' exponents included: the circuit computes them all), and
//! [`RangeStats::fitted_ranges`] moves a config's ranges to the powers of
//! two that hold `margin ×` the extremes (widening or narrowing them).

use rayon::prelude::*;

use super::classifier::Sample;
use super::friendly::{FriendlyBackprop, FriendlyTape};
use crate::approx::MAX_EXP_SQUARINGS;
use crate::error::{Error, Result};
use crate::model::friendly::{ApproximationRanges, FriendlyWeights, Projection};

/// The bracket of `α²` searched, `[2^−24, 2^8]`.
const LOG2_SCALE_RANGE: (f64, f64) = (-24.0, 8.0);
/// Bisection steps on `log2 α²` (the bracket shrinks to 2^−40 of a unit).
const BISECTION_STEPS: usize = 45;

/// Scales each head's queries and keys so that the geometric mean row sum
/// of its Gaussian kernel over `samples` is 1 (see the module docs);
/// returns `α` per layer and head.
///
/// Errors: no samples, or those of the forward.
pub fn scale_attention(
    model: &FriendlyBackprop,
    weights: &mut FriendlyWeights,
    samples: &[Sample],
) -> Result<Vec<Vec<f64>>> {
    if samples.is_empty() {
        return Err(Error::InvalidParameters(
            "scale_attention: no samples".into(),
        ));
    }
    let heads = model.config().heads;
    let head_size = model.config().head_size();
    let mut scales = Vec::with_capacity(weights.layers.len());
    for layer in 0..weights.layers.len() {
        let tapes = full_tapes(model, weights, samples)?;
        // Per head, every real row's exponents to its real keys.
        let rows: Vec<Vec<Vec<f64>>> = (0..heads)
            .map(|head| {
                tapes
                    .iter()
                    .zip(samples)
                    .flat_map(|(tape, sample)| {
                        let exponents = &tape.layers[layer].attention.exponents[head];
                        exponents
                            .rows()
                            .into_iter()
                            .zip(&sample.mask)
                            .filter(|(_, &real)| real)
                            .map(|(row, _)| {
                                row.iter()
                                    .zip(&sample.mask)
                                    .filter(|(_, &real)| real)
                                    .map(|(&e, _)| e)
                                    .collect()
                            })
                            .collect::<Vec<Vec<f64>>>()
                    })
                    .collect()
            })
            .collect();
        let layer_scales: Vec<f64> = rows
            .iter()
            .map(|head_rows| unit_row_scale(head_rows))
            .collect();
        let target = &mut weights.layers[layer];
        for (head, &alpha) in layer_scales.iter().enumerate() {
            let columns = head * head_size..(head + 1) * head_size;
            scale_columns(&mut target.query, columns.clone(), alpha);
            scale_columns(&mut target.key, columns, alpha);
        }
        scales.push(layer_scales);
    }
    Ok(scales)
}

/// `α = √t` with `mean_i ln Σ_j exp(t·e_ij) = 0`, by bisection on `log2 t`
/// (the left side decreases in `t`; clamped to the searched bracket).
fn unit_row_scale(rows: &[Vec<f64>]) -> f64 {
    let mean_log_sum = |t: f64| {
        rows.iter()
            .map(|row| {
                let max = row.iter().fold(f64::NEG_INFINITY, |m, &e| m.max(t * e));
                max + row.iter().map(|&e| (t * e - max).exp()).sum::<f64>().ln()
            })
            .sum::<f64>()
            / rows.len().max(1) as f64
    };
    let (mut lo, mut hi) = LOG2_SCALE_RANGE;
    for _ in 0..BISECTION_STEPS {
        let mid = 0.5 * (lo + hi);
        if mean_log_sum(mid.exp2()) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (0.5 * (lo + hi)).exp2().sqrt()
}

/// Multiplies the output columns `columns` of a projection (dense weight,
/// bias, LoRA `B`) by `alpha`.
fn scale_columns(projection: &mut Projection, columns: std::ops::Range<usize>, alpha: f64) {
    use ndarray::s;
    let range = s![.., columns.clone()];
    projection
        .dense
        .weight
        .slice_mut(range)
        .mapv_inplace(|w| w * alpha);
    projection
        .dense
        .bias
        .slice_mut(s![columns])
        .mapv_inplace(|b| b * alpha);
    if let Some(lora) = &mut projection.lora {
        lora.b.slice_mut(range).mapv_inplace(|b| b * alpha);
    }
}

/// Every sample's forward with all rows.
fn full_tapes(
    model: &FriendlyBackprop,
    weights: &FriendlyWeights,
    samples: &[Sample],
) -> Result<Vec<FriendlyTape>> {
    samples
        .par_iter()
        .map(|sample| {
            model
                .forward_all_rows(weights, sample.input.view(), &sample.mask)
                .map(|(_, tape)| tape)
        })
        .collect()
}

/// The extreme input of each non-linearity over some sequences.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RangeStats {
    /// The smallest attention exponent.
    pub exp_min: f64,
    /// The largest `|x|` into ReLU.
    pub relu_max: f64,
    /// The smallest and largest LayerNorm `σ² + eps`.
    pub variance_min: f64,
    pub variance_max: f64,
    /// The largest `|x|` into tanh.
    pub tanh_max: f64,
}

impl RangeStats {
    /// Measures the exact forward of every row of `samples` (pass full
    /// padded sequences with their masks, as the circuit computes them).
    ///
    /// Errors: no samples, or those of the forward.
    pub fn measure(
        model: &FriendlyBackprop,
        weights: &FriendlyWeights,
        samples: &[Sample],
    ) -> Result<Self> {
        if samples.is_empty() {
            return Err(Error::InvalidParameters("RangeStats: no samples".into()));
        }
        let stats = samples
            .par_iter()
            .map(|sample| {
                let (_, tape) =
                    model.forward_all_rows(weights, sample.input.view(), &sample.mask)?;
                Ok(Self::of_tape(&tape))
            })
            .try_reduce(|| Self::EMPTY, |a, b| Ok(a.merge(b)))?;
        Ok(stats)
    }

    const EMPTY: Self = Self {
        exp_min: f64::INFINITY,
        relu_max: 0.0,
        variance_min: f64::INFINITY,
        variance_max: 0.0,
        tanh_max: 0.0,
    };

    fn of_tape(tape: &FriendlyTape) -> Self {
        let mut stats = Self::EMPTY;
        let mut variances = Vec::new();
        for layer in &tape.layers {
            for exponents in &layer.attention.exponents {
                stats.exp_min = exponents.iter().fold(stats.exp_min, |m, &e| m.min(e));
            }
            stats.relu_max = layer
                .gate
                .iter()
                .fold(stats.relu_max, |m, &x| m.max(x.abs()));
            variances.extend(layer.attention_norm.variances());
            variances.extend(layer.ffn_norm.variances());
        }
        if let Some(norm) = &tape.final_norm {
            variances.extend(norm.variances());
        }
        for v in variances {
            stats.variance_min = stats.variance_min.min(v);
            stats.variance_max = stats.variance_max.max(v);
        }
        stats.tanh_max = tape.head.pre_tanh.iter().fold(0.0, |m, &x| m.max(x.abs()));
        stats
    }

    fn merge(self, other: Self) -> Self {
        Self {
            exp_min: self.exp_min.min(other.exp_min),
            relu_max: self.relu_max.max(other.relu_max),
            variance_min: self.variance_min.min(other.variance_min),
            variance_max: self.variance_max.max(other.variance_max),
            tanh_max: self.tanh_max.max(other.tanh_max),
        }
    }

    /// The polynomial ranges fitted to these extremes: each bound the
    /// power of two that holds `margin ×` its extreme (the smallest
    /// variance over `margin`), so a range may narrow as well as widen (a
    /// narrower range is a more precise polynomial; the inverse square
    /// root's depth grows with its range's ratio). The other fields of
    /// `starting` are kept, and so is a bound whose extreme was never
    /// measured; the exp squarings grow when the exp range needs it.
    ///
    /// Errors: a margin below 1, or an exp range beyond
    /// `2^MAX_EXP_SQUARINGS`.
    pub fn fitted_ranges(
        &self,
        starting: &ApproximationRanges,
        margin: f64,
    ) -> Result<ApproximationRanges> {
        if !(margin.is_finite() && margin >= 1.0) {
            return Err(Error::InvalidParameters(format!(
                "RangeStats::fitted_ranges: margin {margin} is below 1"
            )));
        }
        let measured = |x: f64| x.is_finite() && x > 0.0;
        let power_above = |x: f64, keep: f64| {
            if measured(x) {
                (x * margin).log2().ceil().exp2()
            } else {
                keep
            }
        };
        let mut fitted = starting.clone();
        let (lo, hi) = starting.exp_argument;
        let new_lo = -power_above(-self.exp_min, -lo);
        let squarings = ((-new_lo).log2() as u32 + 1).max(starting.exp_squarings);
        if squarings > MAX_EXP_SQUARINGS {
            return Err(Error::InvalidParameters(format!(
                "RangeStats::fitted_ranges: attention exponents down to {} need more than \
                 {MAX_EXP_SQUARINGS} squarings",
                self.exp_min
            )));
        }
        fitted.exp_argument = (new_lo, hi);
        fitted.exp_squarings = squarings;
        fitted.relu_bound = power_above(self.relu_max, starting.relu_bound);
        fitted.tanh_bound = power_above(self.tanh_max, starting.tanh_bound);
        let (a, b) = starting.variance;
        let below = if measured(self.variance_min) {
            (self.variance_min / margin).log2().floor().exp2()
        } else {
            a
        };
        fitted.variance = (below, power_above(self.variance_max, b));
        Ok(fitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::friendly::{FriendlyConfig, FriendlyModel, Variant};
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn samples(config: &FriendlyConfig, scale: f64) -> Vec<Sample> {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        (0..6)
            .map(|i| {
                let rows = 4 + i % 4;
                Sample {
                    input: Array2::from_shape_simple_fn((rows, config.hidden), || {
                        scale * rng.random_range(-1.0..1.0)
                    }),
                    mask: (0..rows).map(|r| r < rows - 1).collect(),
                    label: 0,
                }
            })
            .collect()
    }

    #[test]
    fn attention_rows_sum_to_one_on_average() {
        let config = FriendlyConfig::tiny();
        let model = FriendlyBackprop::new(config.clone()).unwrap();
        let mut weights = FriendlyWeights::random(&config, 2);
        let data = samples(&config, 3.0);
        let scales = scale_attention(&model, &mut weights, &data).unwrap();
        assert_eq!((scales.len(), scales[0].len()), (2, 2));
        for (layer, layer_scales) in scales.iter().enumerate() {
            let tapes = full_tapes(&model, &weights, &data).unwrap();
            for (head, alpha) in layer_scales.iter().enumerate() {
                let mut log_sums = Vec::new();
                for (tape, sample) in tapes.iter().zip(&data) {
                    let weights = &tape.layers[layer].attention.weights[head];
                    for (row, &real) in weights.rows().into_iter().zip(&sample.mask) {
                        if real {
                            log_sums.push(row.sum().ln());
                        }
                    }
                }
                let mean = log_sums.iter().sum::<f64>() / log_sums.len() as f64;
                eprintln!("layer {layer} head {head}: α {alpha:.3}, mean log row sum {mean:.2e}");
                assert!(mean.abs() < 1e-9, "{mean}");
            }
        }
    }

    #[test]
    fn fitted_ranges_remove_violations() {
        let mut config = FriendlyConfig::tiny();
        config.ranges.relu_bound = 0.5;
        config.ranges.variance = (0.5, 2.0);
        config.ranges.tanh_bound = 0.25;
        config.ranges.exp_argument = (-0.5, 0.0);
        let model = FriendlyBackprop::new(config.clone()).unwrap();
        let weights = FriendlyWeights::random(&config, 4);
        let data = samples(&config, 4.0);
        let stats = RangeStats::measure(&model, &weights, &data).unwrap();
        let violations = |ranges: &ApproximationRanges| {
            let config = FriendlyConfig {
                ranges: ranges.clone(),
                ..config.clone()
            };
            let twin = FriendlyModel::new(config, weights.clone()).unwrap();
            data.iter()
                .map(|s| {
                    twin.forward(s.input.view(), &s.mask, Variant::Exact)
                        .unwrap()
                        .violations
                        .total()
                })
                .sum::<usize>()
        };
        assert!(violations(&config.ranges) > 0);
        let fitted = stats.fitted_ranges(&config.ranges, 1.5).unwrap();
        eprintln!("{stats:?} → {fitted:?}");
        assert_eq!(violations(&fitted), 0);
        assert!(fitted.relu_bound >= 1.5 * stats.relu_max);
        assert!(fitted.relu_bound < 3.0 * stats.relu_max);
        // Wide ranges narrow to the extremes; unmeasured ones stay.
        let default = ApproximationRanges::default();
        let narrow = RangeStats {
            exp_min: -1.0,
            relu_max: 0.1,
            variance_min: 1.0,
            variance_max: 1.0,
            tanh_max: 0.0,
        };
        let narrowed = narrow.fitted_ranges(&default, 1.5).unwrap();
        assert_eq!(narrowed.exp_argument, (-2.0, 0.0));
        assert_eq!(narrowed.relu_bound, 0.25);
        assert_eq!(narrowed.variance, (0.5, 2.0));
        assert_eq!(narrowed.tanh_bound, default.tanh_bound);
        assert_eq!(narrowed.exp_squarings, default.exp_squarings);
        assert!(stats.fitted_ranges(&default, 0.5).is_err());
        let deep = RangeStats {
            exp_min: -1e13,
            ..narrow
        };
        assert!(deep.fitted_ranges(&default, 1.5).is_err());
    }
}
