//! AdamW (Loshchilov & Hutter) in `f64`, and the learning-rate schedule:
//! the plaintext twin of the encrypted optimizer.
//!
//! Step `t` (from 1) with rate `η_t`, for every trained tensor `θ` with
//! gradient `g`:
//!
//! ```text
//! m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
//! m̂ = m/(1 − β₁^t)               v̂ = v/(1 − β₂^t)
//! θ ← θ − η_t·(m̂/(√v̂ + ε) + λ·θ)   (λ only on tensors marked for decay)
//! ```
//!
//! Decoupled weight decay, scaled by the rate as in PyTorch's `AdamW`.
//! Moments start at zero and live with the optimizer, one per tensor of
//! the weights it was created for (same names and shapes, checked at every
//! step); tensors outside the [`Trainable`] selection are left untouched
//! and their moments stay zero.
//!
//! [`Schedule`]: linear warm-up from 0 to the peak over the first
//! `warmup` steps, then a linear or cosine decay to 0 at the last step (or
//! a constant rate).

use ndarray::ArrayD;

use super::params::{Parameters, Trainable};
use crate::error::{Error, Result};

/// AdamW's constants.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// `λ`, decoupled.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// `β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-8`, `λ = 0.01` (PyTorch's).
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.01,
        }
    }
}

impl AdamWConfig {
    fn check(&self) -> Result<()> {
        let unit = |b: f64| (0.0..1.0).contains(&b);
        if !(unit(self.beta1)
            && unit(self.beta2)
            && self.epsilon > 0.0
            && self.epsilon.is_finite()
            && self.weight_decay >= 0.0
            && self.weight_decay.is_finite())
        {
            return Err(Error::InvalidParameters(format!(
                "AdamW: {self:?} needs 0 ≤ β < 1, ε > 0, λ ≥ 0"
            )));
        }
        Ok(())
    }
}

/// The optimizer's state.
#[derive(Clone, Debug)]
pub struct AdamW {
    config: AdamWConfig,
    trainable: Trainable,
    step: u64,
    names: Vec<String>,
    first: Vec<ArrayD<f64>>,
    second: Vec<ArrayD<f64>>,
}

impl AdamW {
    /// Zero moments for every tensor of `weights`.
    ///
    /// Errors: constants outside their ranges.
    pub fn new<P: Parameters>(
        config: AdamWConfig,
        trainable: Trainable,
        weights: &mut P,
    ) -> Result<Self> {
        config.check()?;
        let tensors = weights.tensors_mut();
        let names = tensors.iter().map(|t| t.name.clone()).collect();
        let zeros: Vec<ArrayD<f64>> = tensors
            .iter()
            .map(|t| ArrayD::zeros(t.values.raw_dim()))
            .collect();
        Ok(Self {
            config,
            trainable,
            step: 0,
            names,
            first: zeros.clone(),
            second: zeros,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update of `weights` by `gradient` at `rate`.
    ///
    /// Errors: weights or gradient that are not the tensors this optimizer
    /// was created for, or a non-finite gradient (nothing is changed then).
    pub fn step<P: Parameters>(
        &mut self,
        weights: &mut P,
        gradient: &mut P,
        rate: f64,
    ) -> Result<()> {
        const OP: &str = "AdamW::step";
        let tensors = weights.tensors_mut();
        let gradients = gradient.tensors_mut();
        if tensors.len() != self.names.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: tensors.len(),
                expected: self.names.len(),
            });
        }
        let pairs: Vec<_> = super::params::paired(tensors, gradients)?.collect();
        for ((tensor, gradient), (name, first)) in
            pairs.iter().zip(self.names.iter().zip(&self.first))
        {
            if &tensor.name != name || tensor.values.shape() != first.shape() {
                return Err(Error::InvalidParameters(format!(
                    "{OP}: tensor {} {:?}, the optimizer holds {name} {:?}",
                    tensor.name,
                    tensor.values.shape(),
                    first.shape()
                )));
            }
            if gradient.values.iter().any(|g| !g.is_finite()) {
                return Err(Error::OutOfRange {
                    op: OP,
                    detail: format!("the gradient of {name} is not finite"),
                });
            }
        }
        self.step += 1;
        let AdamWConfig {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } = self.config;
        let t = self.step as i32;
        let first_correction = 1.0 - beta1.powi(t);
        let second_correction = 1.0 - beta2.powi(t);
        for ((mut tensor, gradient), (first, second)) in pairs
            .into_iter()
            .zip(self.first.iter_mut().zip(&mut self.second))
        {
            if !self.trainable.includes(tensor.group) {
                continue;
            }
            let decay = if tensor.decay { weight_decay } else { 0.0 };
            ndarray::Zip::from(&mut tensor.values)
                .and(&gradient.values)
                .and(first)
                .and(second)
                .for_each(|theta, &g, m, v| {
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    let m_hat = *m / first_correction;
                    let v_hat = *v / second_correction;
                    *theta -= rate * (m_hat / (v_hat.sqrt() + epsilon) + decay * *theta);
                });
        }
        Ok(())
    }
}

/// How the rate falls after the warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decay {
    /// Stays at the peak.
    Constant,
    /// Linearly to 0 at the last step.
    Linear,
    /// `peak·(1 + cos(π·p))/2` with `p` the fraction of the decay done.
    Cosine,
}

impl std::str::FromStr for Decay {
    type Err = Error;

    /// `constant`, `linear` or `cosine`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "constant" => Ok(Decay::Constant),
            "linear" => Ok(Decay::Linear),
            "cosine" => Ok(Decay::Cosine),
            other => Err(Error::InvalidParameters(format!(
                "decay `{other}`: expected constant, linear or cosine"
            ))),
        }
    }
}

/// The learning rate of every step.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Schedule {
    pub peak: f64,
    pub warmup: u64,
    pub total: u64,
    pub decay: Decay,
}

impl Schedule {
    /// Errors: a non-positive or non-finite peak, no steps, or a warm-up
    /// longer than the run.
    pub fn new(peak: f64, warmup: u64, total: u64, decay: Decay) -> Result<Self> {
        if !(peak.is_finite() && peak > 0.0) || total == 0 || warmup > total {
            return Err(Error::InvalidParameters(format!(
                "Schedule: peak {peak}, warm-up {warmup} of {total} steps \
                 (needs a positive peak and 0 ≤ warm-up ≤ steps > 0)"
            )));
        }
        Ok(Self {
            peak,
            warmup,
            total,
            decay,
        })
    }

    /// The rate of step `step` (1-based; steps past the end get the last
    /// step's rate).
    pub fn rate(&self, step: u64) -> f64 {
        let step = step.clamp(1, self.total);
        if step <= self.warmup {
            return self.peak * step as f64 / self.warmup as f64;
        }
        let span = (self.total - self.warmup) as f64;
        let done = (step - self.warmup) as f64 / span;
        match self.decay {
            Decay::Constant => self.peak,
            Decay::Linear => self.peak * (1.0 - done),
            Decay::Cosine => self.peak * 0.5 * (1.0 + (std::f64::consts::PI * done).cos()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::friendly::{Dense, FriendlyHead};
    use ndarray::{arr1, arr2};

    fn head(value: f64) -> FriendlyHead {
        let dense = |rows: usize, columns: usize| Dense {
            weight: ndarray::Array2::from_elem((rows, columns), value),
            bias: ndarray::Array1::from_elem(columns, value),
        };
        FriendlyHead {
            bottleneck: dense(2, 2),
            widen: dense(2, 3),
            classifier: dense(3, 2),
        }
    }

    #[test]
    fn first_steps_by_hand() {
        // θ = 1, g = 0.5 on every value: the bias-corrected first step is
        // θ − η·(g/(|g| + ε) + λθ) = 1 − η(1 + λ) (up to ε) on matrices,
        // 1 − η on biases.
        let config = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let mut weights = head(1.0);
        let mut optimizer = AdamW::new(config, Trainable::All, &mut weights).unwrap();
        let mut gradient = head(0.5);
        optimizer.step(&mut weights, &mut gradient, 0.01).unwrap();
        let matrix = 1.0 - 0.01 * (0.5 / (0.5 + 1e-8) + 0.1);
        let bias = 1.0 - 0.01 * (0.5 / (0.5 + 1e-8));
        assert!((weights.widen.weight[[0, 0]] - matrix).abs() < 1e-12);
        assert!((weights.widen.bias[1] - bias).abs() < 1e-12);
        // Second step with g = −0.5: m = 0.9·0.05 − 0.05 = −0.005,
        // m̂ = −0.005/0.19; v = 0.999·0.00025 + 0.00025 = v̂·(1 − 0.999²).
        let before = weights.classifier.bias[0];
        let mut gradient = head(-0.5);
        optimizer.step(&mut weights, &mut gradient, 0.02).unwrap();
        let m_hat = (0.9 * 0.05 - 0.05) / (1.0 - 0.81);
        let v_hat = (0.999 * 0.00025 + 0.001 * 0.25) / (1.0 - 0.999_f64.powi(2));
        let expected = before - 0.02 * m_hat / (v_hat.sqrt() + 1e-8);
        assert!((weights.classifier.bias[0] - expected).abs() < 1e-12);
        assert_eq!(optimizer.steps(), 2);
    }

    #[test]
    fn frozen_tensors_and_mismatches() {
        let mut weights = head(1.0);
        let mut optimizer =
            AdamW::new(AdamWConfig::default(), Trainable::LoraHead, &mut weights).unwrap();
        optimizer.step(&mut weights, &mut head(1.0), 0.1).unwrap();
        assert_ne!(weights, head(1.0), "the head is trained");
        let mut fresh = AdamW::new(AdamWConfig::default(), Trainable::All, &mut weights).unwrap();
        let mut other = head(1.0);
        other.widen.weight = arr2(&[[1.0, 2.0]]);
        assert!(fresh.step(&mut weights, &mut other, 0.1).is_err());
        let mut nan = head(1.0);
        nan.widen.bias = arr1(&[f64::NAN, 0.0, 0.0]);
        let before = weights.clone();
        assert!(fresh.step(&mut weights, &mut nan, 0.1).is_err());
        assert_eq!(weights, before);
        let bad = AdamWConfig {
            beta1: 1.0,
            ..AdamWConfig::default()
        };
        assert!(AdamW::new(bad, Trainable::All, &mut weights).is_err());
    }

    #[test]
    fn schedules() {
        let linear = Schedule::new(1.0, 10, 110, Decay::Linear).unwrap();
        assert_eq!(linear.rate(1), 0.1);
        assert_eq!(linear.rate(10), 1.0);
        assert!((linear.rate(60) - 0.5).abs() < 1e-15);
        assert_eq!(linear.rate(110), 0.0);
        let cosine = Schedule::new(2.0, 0, 100, Decay::Cosine).unwrap();
        assert!((cosine.rate(50) - 1.0).abs() < 1e-15);
        assert!(cosine.rate(100).abs() < 1e-15);
        let constant = Schedule::new(0.5, 2, 4, Decay::Constant).unwrap();
        assert_eq!([constant.rate(1), constant.rate(3)], [0.25, 0.5]);
        assert!(Schedule::new(1.0, 5, 4, Decay::Linear).is_err());
        assert!(Schedule::new(0.0, 0, 4, Decay::Linear).is_err());
        assert_eq!("cosine".parse::<Decay>().unwrap(), Decay::Cosine);
        assert!("step".parse::<Decay>().is_err());
    }
}
