//! The evaluator: homomorphic operations on ciphertexts, all run through the
//! backend seam.
//!
//! Naming: `op_new` returns a fresh ciphertext, `op_assign` works in place.
//! Operands at different levels are brought to the lower level (exact).
//! Operands whose scales differ are refused (`ScaleMismatch`) unless one is
//! an integer multiple of the other within 1e-9 relative, which is made
//! exact by an integer multiplication; "equal" means within 1e-12 relative.

use std::sync::Arc;

use super::ciphertext::{Ciphertext, Plaintext};
use super::context::CkksContext;
use super::embedding::{galois_element_for_conjugation, galois_element_for_rotation};
use super::keys::{GaloisKeys, RelinearizationKey, SwitchingKey};
use super::keyswitch::{apply, decompose, switch};
use crate::backend::{Buffer, KeySwitchTail};
use crate::error::{Error, Result};
use crate::math::Complex;

/// The keys a server evaluates with (never the secret key).
#[derive(Debug, Clone, Default)]
pub struct EvaluationKeys {
    /// For relinearizing products.
    pub relinearization: Option<RelinearizationKey>,
    /// For rotations and conjugation.
    pub galois: GaloisKeys,
}

/// Runs CKKS operations for one context with one set of evaluation keys.
pub struct Evaluator {
    ctx: Arc<CkksContext>,
    keys: EvaluationKeys,
    /// The monomial X^{N/2} (it encodes i in every slot), full Q basis, evaluation domain.
    imaginary_unit: Buffer,
}

const SCALE_EQUAL_TOLERANCE: f64 = 1e-12;
const SCALE_INTEGER_TOLERANCE: f64 = 1e-9;

impl Evaluator {
    /// An evaluator over `ctx` with `keys`.
    pub fn new(ctx: Arc<CkksContext>, keys: EvaluationKeys) -> Result<Self> {
        if let Some(rlk) = &keys.relinearization {
            ctx.check_params("Evaluator::new", rlk.0.params_id)?;
        }
        for g in keys.galois.keys.values() {
            ctx.check_params("Evaluator::new", g.key.params_id)?;
        }
        let n = ctx.n();
        let basis = ctx.ring().q_basis(ctx.params().max_level());
        let mut host = vec![0u64; n * basis.len()];
        for (limb, &g) in host.chunks_mut(n).zip(&basis) {
            let ntt = ctx.ring().ntt(g);
            let m = ntt.modulus();
            let unit = m.pow(ntt.psi(), (n / 2) as u64);
            let neg_unit = m.neg(unit);
            for (i, x) in limb.iter_mut().enumerate() {
                *x = if ntt.evaluation_exponent(i) % 4 == 1 {
                    unit
                } else {
                    neg_unit
                };
            }
        }
        let imaginary_unit = ctx.backend().upload(&host)?;
        Ok(Self {
            ctx,
            keys,
            imaginary_unit,
        })
    }

    /// The context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// The evaluation keys.
    pub fn keys(&self) -> &EvaluationKeys {
        &self.keys
    }

    fn check(&self, op: &'static str, ct: &Ciphertext) -> Result<()> {
        self.ctx.check_params(op, ct.params_id)?;
        self.ctx.check_level(op, ct.level)
    }

    fn basis(&self, level: usize) -> Vec<usize> {
        self.ctx.ring().q_basis(level)
    }

    // ----- levels and scales -------------------------------------------------

    /// Drops `levels` primes from the top of the chain (exact, no rescale).
    pub fn drop_level_assign(&self, ct: &mut Ciphertext, levels: usize) -> Result<()> {
        self.check("drop_level", ct)?;
        if levels > ct.level {
            return Err(Error::OutOfLevels {
                op: "drop_level",
                level: ct.level,
                needed: levels,
            });
        }
        let words = self.ctx.words_at(ct.level - levels);
        for part in ct.parts.iter_mut() {
            *part = self.ctx.duplicate(part, words)?;
        }
        ct.level -= levels;
        Ok(())
    }

    /// Bootstrapping's ModRaise: `ct` at level 0 (a higher level is dropped
    /// to 0 first) raised to the top level by lifting every coefficient of
    /// every part to its centered representative modulo `q_0`. The result
    /// decrypts to `m + q_0·I` for a small integer polynomial `I` (bounded by
    /// the secret's Hamming weight); scale and slots are unchanged.
    pub fn mod_raise_new(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.check("mod_raise", ct)?;
        let backend = self.ctx.backend();
        let ring = self.ctx.ring();
        let top = self.ctx.params().max_level();
        let n = self.ctx.n();
        let mut parts = Vec::with_capacity(ct.parts.len());
        for part in &ct.parts {
            let mut low = self.ctx.duplicate(part, n)?;
            backend.ntt_inverse(ring, &mut low, &self.basis(0))?;
            let mut raised = backend.alloc(self.ctx.words_at(top))?;
            backend.mod_raise(ring, &low, top, &mut raised)?;
            backend.ntt_forward(ring, &mut raised, &self.basis(top))?;
            parts.push(raised);
        }
        Ok(Ciphertext {
            parts,
            level: top,
            scale: ct.scale,
            slots: ct.slots,
            params_id: ct.params_id,
        })
    }

    /// Rescales by the last prime: level − 1, scale / q_level.
    pub fn rescale_assign(&self, ct: &mut Ciphertext) -> Result<()> {
        self.check("rescale", ct)?;
        if ct.level == 0 {
            return Err(Error::OutOfLevels {
                op: "rescale",
                level: 0,
                needed: 1,
            });
        }
        let backend = self.ctx.backend();
        let parts = ct
            .parts
            .iter()
            .map(|part| {
                let mut out = backend.alloc(self.ctx.words_at(ct.level - 1))?;
                backend.rescale(self.ctx.ring(), part, ct.level, &mut out)?;
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?;
        ct.parts = parts;
        ct.scale /= self.ctx.params().q()[ct.level] as f64;
        ct.level -= 1;
        Ok(())
    }

    /// Rescaled copy.
    pub fn rescale_new(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        let mut out = ct.try_clone()?;
        self.rescale_assign(&mut out)?;
        Ok(out)
    }

    /// How `from` becomes `to` exactly: `None` when they are equal, `Some(k)`
    /// when `to = k·from` for an integer k >= 2 (within 1e-9), else an error.
    fn scale_factor(op: &'static str, from: f64, to: f64) -> Result<Option<i64>> {
        let ratio = to / from;
        if (ratio - 1.0).abs() <= SCALE_EQUAL_TOLERANCE {
            return Ok(None);
        }
        let k = ratio.round();
        if k >= 2.0
            && (ratio - k).abs() <= SCALE_INTEGER_TOLERANCE * ratio
            && k < (1u64 << 32) as f64
        {
            return Ok(Some(k as i64));
        }
        Err(Error::ScaleMismatch {
            op,
            left_log2: from.log2(),
            right_log2: to.log2(),
        })
    }

    /// Brings `ct` to `level` (drop) and to `scale` by the integer `factor`.
    fn align(
        &self,
        ct: &mut Ciphertext,
        level: usize,
        scale: f64,
        factor: Option<i64>,
    ) -> Result<()> {
        if ct.level > level {
            self.drop_level_assign(ct, ct.level - level)?;
        }
        if let Some(k) = factor {
            self.mul_integer_assign(ct, k)?;
            ct.scale = scale;
        }
        Ok(())
    }

    /// Brings `a` and a copy of `b` (when `b` must change) to a common level
    /// and scale. Both alignments are checked before `a` is touched, so a
    /// refused pair leaves `a` as it was.
    fn bring_together(
        &self,
        op: &'static str,
        a: &mut Ciphertext,
        b: &Ciphertext,
    ) -> Result<Option<Ciphertext>> {
        self.check(op, a)?;
        self.check(op, b)?;
        if a.slots != b.slots {
            return Err(Error::LengthMismatch {
                op,
                got: b.slots,
                expected: a.slots,
            });
        }
        let level = a.level.min(b.level);
        let scale = a.scale.max(b.scale);
        let factor_a = Self::scale_factor(op, a.scale, scale)?;
        let factor_b = Self::scale_factor(op, b.scale, scale)?;
        self.align(a, level, scale, factor_a)?;
        if b.level == level && factor_b.is_none() {
            return Ok(None);
        }
        let mut b = b.try_clone()?;
        self.align(&mut b, level, scale, factor_b)?;
        Ok(Some(b))
    }

    // ----- additive ------------------------------------------------------------

    fn add_or_sub_assign(
        &self,
        op: &'static str,
        a: &mut Ciphertext,
        b: &Ciphertext,
        subtract: bool,
    ) -> Result<()> {
        let aligned = self.bring_together(op, a, b)?;
        let b = aligned.as_ref().unwrap_or(b);
        let basis = self.basis(a.level);
        let backend = self.ctx.backend();
        let ring = self.ctx.ring();
        while a.parts.len() < b.parts.len() {
            a.parts
                .push(backend.alloc_zeroed(self.ctx.words_at(a.level))?);
        }
        for (x, y) in a.parts.iter_mut().zip(&b.parts) {
            if subtract {
                backend.sub_assign(ring, x, y, &basis)?;
            } else {
                backend.add_assign(ring, x, y, &basis)?;
            }
        }
        Ok(())
    }

    /// `a += b` (any degrees: lazy relinearization accumulates degree-2 tensors).
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.add_or_sub_assign("add", a, b, false)
    }

    /// `a + b`.
    pub fn add_new(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut out = a.try_clone()?;
        self.add_assign(&mut out, b)?;
        Ok(out)
    }

    /// `a -= b`.
    pub fn sub_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.add_or_sub_assign("sub", a, b, true)
    }

    /// `a - b`.
    pub fn sub_new(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut out = a.try_clone()?;
        self.sub_assign(&mut out, b)?;
        Ok(out)
    }

    /// `a = -a`.
    pub fn neg_assign(&self, a: &mut Ciphertext) -> Result<()> {
        self.check("neg", a)?;
        let basis = self.basis(a.level);
        for part in a.parts.iter_mut() {
            self.ctx
                .backend()
                .neg_assign(self.ctx.ring(), part, &basis)?;
        }
        Ok(())
    }

    /// A plaintext of fewer slots than the ciphertext is the periodic
    /// extension of its slots (sparse packing replicates them), so it
    /// applies when its slot count divides the ciphertext's.
    fn check_plain(&self, op: &'static str, ct: &Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check(op, ct)?;
        self.ctx.check_params(op, pt.params_id)?;
        if pt.level < ct.level {
            return Err(Error::LevelMismatch {
                op,
                detail: format!(
                    "plaintext at level {} below ciphertext level {}",
                    pt.level, ct.level
                ),
            });
        }
        if pt.slots > ct.slots || ct.slots % pt.slots != 0 {
            return Err(Error::LengthMismatch {
                op,
                got: pt.slots,
                expected: ct.slots,
            });
        }
        Ok(())
    }

    fn check_same_scale(op: &'static str, a: f64, b: f64) -> Result<()> {
        if (a / b - 1.0).abs() > SCALE_EQUAL_TOLERANCE {
            return Err(Error::ScaleMismatch {
                op,
                left_log2: a.log2(),
                right_log2: b.log2(),
            });
        }
        Ok(())
    }

    /// The scale of a product, refused when it is not finite.
    /// The scale of a product at `level`, refused when no message of
    /// magnitude 1 could be decrypted at it (scale ≥ Q_level / 2, or not finite).
    fn product_scale(&self, op: &'static str, a: f64, b: f64, level: usize) -> Result<f64> {
        let scale = a * b;
        let log_q: f64 = self.ctx.params().q()[..=level]
            .iter()
            .map(|&q| (q as f64).log2())
            .sum();
        if !scale.is_finite() || scale.log2() >= log_q - 1.0 {
            return Err(Error::OutOfRange {
                op,
                detail: format!(
                    "the product of scales 2^{:.1} and 2^{:.1} reaches Q/2 = 2^{:.1} at level {level}: rescale first",
                    a.log2(),
                    b.log2(),
                    log_q - 1.0
                ),
            });
        }
        Ok(scale)
    }

    /// `round(x·scale)` reduced into every limb of `basis`.
    fn constant_residues(
        &self,
        op: &'static str,
        x: f64,
        scale: f64,
        basis: &[usize],
    ) -> Result<Vec<u64>> {
        let value = (x * scale).round();
        basis
            .iter()
            .map(|&g| self.ctx.ring().moduli()[g].reduce_f64_integer(value))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::OutOfRange {
                op,
                detail: format!("constant {x} times scale {scale} is not finite"),
            })
    }

    /// `ct += pt` (same scale; the plaintext may sit at a higher level).
    pub fn add_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_plain("add_plain", ct, pt)?;
        Self::check_same_scale("add_plain", ct.scale, pt.scale)?;
        let basis = self.basis(ct.level);
        self.ctx
            .backend()
            .add_assign(self.ctx.ring(), &mut ct.parts[0], &pt.poly, &basis)
    }

    /// `ct -= pt`.
    pub fn sub_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_plain("sub_plain", ct, pt)?;
        Self::check_same_scale("sub_plain", ct.scale, pt.scale)?;
        let basis = self.basis(ct.level);
        self.ctx
            .backend()
            .sub_assign(self.ctx.ring(), &mut ct.parts[0], &pt.poly, &basis)
    }

    /// The polynomial `round(c.re·scale) + round(c.im·scale)·X^{N/2}` (it holds
    /// `c` in every slot at `scale`), evaluation domain, at `level`.
    fn constant_poly(
        &self,
        op: &'static str,
        c: Complex,
        scale: f64,
        level: usize,
    ) -> Result<Buffer> {
        let basis = self.basis(level);
        let residues = |x: f64| self.constant_residues(op, x, scale, &basis);
        let backend = self.ctx.backend();
        let mut poly = self
            .ctx
            .duplicate(&self.imaginary_unit, self.ctx.words_at(level))?;
        backend.mul_scalar_assign(self.ctx.ring(), &mut poly, &residues(c.im)?, &basis)?;
        backend.add_scalar_assign(self.ctx.ring(), &mut poly, &residues(c.re)?, &basis)?;
        Ok(poly)
    }

    /// Adds the constant `c` to every slot (exact at the ciphertext's scale).
    pub fn add_const_assign(&self, ct: &mut Ciphertext, c: Complex) -> Result<()> {
        self.check("add_const", ct)?;
        let poly = self.constant_poly("add_const", c, ct.scale, ct.level)?;
        let basis = self.basis(ct.level);
        self.ctx
            .backend()
            .add_assign(self.ctx.ring(), &mut ct.parts[0], &poly, &basis)
    }

    /// Subtracts the constant `c` from every slot.
    pub fn sub_const_assign(&self, ct: &mut Ciphertext, c: Complex) -> Result<()> {
        self.add_const_assign(ct, -c)
    }

    // ----- multiplicative by constants and plaintexts ----------------------------

    /// Multiplies by an integer (exact; the scale is unchanged).
    pub fn mul_integer_assign(&self, ct: &mut Ciphertext, k: i64) -> Result<()> {
        self.check("mul_integer", ct)?;
        let basis = self.basis(ct.level);
        let residues: Vec<u64> = basis
            .iter()
            .map(|&g| self.ctx.ring().moduli()[g].reduce_i64(k))
            .collect();
        for part in ct.parts.iter_mut() {
            self.ctx
                .backend()
                .mul_scalar_assign(self.ctx.ring(), part, &residues, &basis)?;
        }
        Ok(())
    }

    /// Multiplies by a real or complex constant encoded at `const_scale`; the
    /// ciphertext's scale is multiplied by `const_scale`.
    pub fn mul_const_with_scale_assign(
        &self,
        ct: &mut Ciphertext,
        c: Complex,
        const_scale: f64,
    ) -> Result<()> {
        self.check("mul_const", ct)?;
        if !(const_scale.is_finite() && const_scale >= 1.0) {
            return Err(Error::OutOfRange {
                op: "mul_const",
                detail: format!("constant scale {const_scale} must be finite and at least 1"),
            });
        }
        let basis = self.basis(ct.level);
        let backend = self.ctx.backend();
        let scale = self.product_scale("mul_const", ct.scale, const_scale, ct.level)?;
        if c.im == 0.0 {
            let residues = self.constant_residues("mul_const", c.re, const_scale, &basis)?;
            for part in ct.parts.iter_mut() {
                backend.mul_scalar_assign(self.ctx.ring(), part, &residues, &basis)?;
            }
        } else {
            let poly = self.constant_poly("mul_const", c, const_scale, ct.level)?;
            for part in ct.parts.iter_mut() {
                backend.mul_assign(self.ctx.ring(), part, &poly, &basis)?;
            }
        }
        ct.scale = scale;
        Ok(())
    }

    /// Multiplies by a constant encoded at the scale q_level, so that a
    /// following rescale restores the ciphertext's scale exactly.
    pub fn mul_const_assign(&self, ct: &mut Ciphertext, c: Complex) -> Result<()> {
        let q_top = self.ctx.params().q()[ct.level.min(self.ctx.params().max_level())] as f64;
        self.mul_const_with_scale_assign(ct, c, q_top)
    }

    /// Multiplies every slot by i (exact: a monomial product, scale unchanged).
    pub fn mul_i_assign(&self, ct: &mut Ciphertext) -> Result<()> {
        self.check("mul_i", ct)?;
        let basis = self.basis(ct.level);
        for part in ct.parts.iter_mut() {
            self.ctx
                .backend()
                .mul_assign(self.ctx.ring(), part, &self.imaginary_unit, &basis)?;
        }
        Ok(())
    }

    /// `a + i·b`: two ciphertexts of real slots as one (exact: the product by
    /// `i` is a monomial). Linear maps with real coefficients act on both
    /// parts at once; [`complex_split_new`](Self::complex_split_new) takes
    /// them apart.
    pub fn complex_pack_new(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut z = b.try_clone()?;
        self.mul_i_assign(&mut z)?;
        self.add_assign(&mut z, a)?;
        Ok(z)
    }

    /// Twice the real and imaginary parts of the slots of `z` as two
    /// ciphertexts of real slots, `z + z̄` and `−i·(z − z̄)` (one conjugation,
    /// no level; the scale kept).
    pub fn complex_split_new(&self, z: &Ciphertext) -> Result<(Ciphertext, Ciphertext)> {
        let conjugate = self.conjugate_new(z)?;
        let real = self.add_new(z, &conjugate)?;
        let mut imaginary = self.sub_new(z, &conjugate)?;
        self.mul_i_assign(&mut imaginary)?;
        self.neg_assign(&mut imaginary)?;
        Ok((real, imaginary))
    }

    /// Multiplies by the monomial `X^power` (`X^N = −1`, so `power` is taken
    /// modulo `2N`): exact, scale unchanged. It moves coefficients, not
    /// slots: sparse ciphertexts are packed into one by such shifts (see
    /// [`crate::circuits::pack`]).
    pub fn mul_monomial_assign(&self, ct: &mut Ciphertext, power: usize) -> Result<()> {
        self.check("mul_monomial", ct)?;
        let n = self.ctx.n();
        let basis = self.basis(ct.level);
        let mut host = vec![0u64; n * basis.len()];
        for (limb, &g) in host.chunks_mut(n).zip(&basis) {
            let ntt = self.ctx.ring().ntt(g);
            let m = ntt.modulus();
            // psi^j for j < 2N, one product each (psi has order 2N).
            let powers: Vec<u64> =
                std::iter::successors(Some(1u64), |&p| Some(m.mul(p, ntt.psi())))
                    .take(2 * n)
                    .collect();
            // Evaluation index i holds a(psi^e_i): X^power becomes psi^(power·e_i).
            let power = power % (2 * n);
            for (i, x) in limb.iter_mut().enumerate() {
                *x = powers[(power * ntt.evaluation_exponent(i)) % (2 * n)];
            }
        }
        let monomial = self.ctx.backend().upload(&host)?;
        for part in ct.parts.iter_mut() {
            self.ctx
                .backend()
                .mul_assign(self.ctx.ring(), part, &monomial, &basis)?;
        }
        Ok(())
    }

    /// `ct *= pt` (scales multiply).
    pub fn mul_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_plain("mul_plain", ct, pt)?;
        let scale = self.product_scale("mul_plain", ct.scale, pt.scale, ct.level)?;
        let basis = self.basis(ct.level);
        for part in ct.parts.iter_mut() {
            self.ctx
                .backend()
                .mul_assign(self.ctx.ring(), part, &pt.poly, &basis)?;
        }
        ct.scale = scale;
        Ok(())
    }

    /// `acc += ct ⊙ pt` without a temporary (one fused pass per part): `ct`
    /// at `acc`'s level, slot count and degree, the product's scale
    /// `scale(ct)·scale(pt)` equal to `acc`'s. The sums of plaintext products
    /// of the linear transforms use it. Errors leave `acc` untouched.
    pub fn mul_plain_add_assign(
        &self,
        acc: &mut Ciphertext,
        ct: &Ciphertext,
        pt: &Plaintext,
    ) -> Result<()> {
        const OP: &str = "mul_plain_add";
        self.check(OP, acc)?;
        self.check_plain(OP, ct, pt)?;
        if ct.level != acc.level {
            return Err(Error::LevelMismatch {
                op: OP,
                detail: format!(
                    "ciphertext at level {}, accumulator at level {}",
                    ct.level, acc.level
                ),
            });
        }
        if ct.slots != acc.slots {
            return Err(Error::LengthMismatch {
                op: OP,
                got: ct.slots,
                expected: acc.slots,
            });
        }
        if ct.parts.len() != acc.parts.len() {
            return Err(Error::DegreeMismatch {
                op: OP,
                degree: ct.degree(),
                expected: acc.degree(),
            });
        }
        let scale = self.product_scale(OP, ct.scale, pt.scale, ct.level)?;
        Self::check_same_scale(OP, acc.scale, scale)?;
        let basis = self.basis(ct.level);
        for (part, term) in acc.parts.iter_mut().zip(&ct.parts) {
            self.ctx
                .backend()
                .mul_add_assign(self.ctx.ring(), part, term, &pt.poly, &basis)?;
        }
        Ok(())
    }

    // ----- ciphertext products ----------------------------------------------------

    /// The tensor product (degree 2, not relinearized); scales multiply.
    pub fn tensor_new(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check("tensor", a)?;
        self.check("tensor", b)?;
        for ct in [a, b] {
            if ct.degree() != 1 {
                return Err(Error::DegreeMismatch {
                    op: "tensor",
                    degree: ct.degree(),
                    expected: 1,
                });
            }
        }
        if a.slots != b.slots {
            return Err(Error::LengthMismatch {
                op: "tensor",
                got: b.slots,
                expected: a.slots,
            });
        }
        // Limbs 0..=level of the higher operand are the operand at `level`:
        // the primitives read only the basis' prefix, so nothing is copied.
        let level = a.level.min(b.level);
        let scale = self.product_scale("tensor", a.scale, b.scale, level)?;
        let basis = self.basis(level);
        let backend = self.ctx.backend();
        let ring = self.ctx.ring();
        let words = self.ctx.words_at(level);
        let mut parts = vec![
            backend.alloc(words)?,
            backend.alloc(words)?,
            backend.alloc(words)?,
        ];
        backend.tensor(ring, &a.parts, &b.parts, &mut parts, &basis)?;
        Ok(Ciphertext {
            parts,
            level,
            scale,
            slots: a.slots,
            params_id: a.params_id,
        })
    }

    /// Relinearizes a degree-2 ciphertext back to degree 1.
    pub fn relinearize_assign(&self, ct: &mut Ciphertext) -> Result<()> {
        self.check("relinearize", ct)?;
        if ct.degree() == 1 {
            return Ok(());
        }
        if ct.degree() != 2 {
            return Err(Error::DegreeMismatch {
                op: "relinearize",
                degree: ct.degree(),
                expected: 2,
            });
        }
        let rlk = self
            .keys
            .relinearization
            .as_ref()
            .ok_or(Error::MissingRelinearizationKey { op: "relinearize" })?;
        let (k0, k1) = switch(
            &self.ctx,
            &ct.parts[2],
            ct.level,
            &rlk.0,
            KeySwitchTail::ModDown,
        )?;
        let basis = self.basis(ct.level);
        let ring = self.ctx.ring();
        self.ctx
            .backend()
            .add_assign(ring, &mut ct.parts[0], &k0, &basis)?;
        self.ctx
            .backend()
            .add_assign(ring, &mut ct.parts[1], &k1, &basis)?;
        ct.parts.truncate(2);
        Ok(())
    }

    /// Relinearizes a degree-2 ciphertext and rescales it, in one division by
    /// `P·q_level` (saves the rescale's transforms). The result is at
    /// `level − 1` with scale `scale / q_level`, as relinearize then rescale.
    pub fn relinearize_rescale_assign(&self, ct: &mut Ciphertext) -> Result<()> {
        self.check("relinearize_rescale", ct)?;
        if ct.degree() != 2 {
            return Err(Error::DegreeMismatch {
                op: "relinearize_rescale",
                degree: ct.degree(),
                expected: 2,
            });
        }
        if ct.level == 0 {
            return Err(Error::OutOfLevels {
                op: "relinearize_rescale",
                level: 0,
                needed: 1,
            });
        }
        let rlk = self
            .keys
            .relinearization
            .as_ref()
            .ok_or(Error::MissingRelinearizationKey {
                op: "relinearize_rescale",
            })?;
        let addend = [&ct.parts[0], &ct.parts[1]];
        let tail = KeySwitchTail::ModDownRescale { addend };
        let (c0, c1) = switch(&self.ctx, &ct.parts[2], ct.level, &rlk.0, tail)?;
        ct.parts = vec![c0, c1];
        ct.scale /= self.ctx.params().q()[ct.level] as f64;
        ct.level -= 1;
        Ok(())
    }

    /// Tensor, relinearize and rescale (the fused form).
    pub fn mul_relin_rescale_new(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut out = self.tensor_new(a, b)?;
        self.relinearize_rescale_assign(&mut out)?;
        Ok(out)
    }

    /// Tensor then relinearize (no rescale).
    pub fn mul_relin_new(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut out = self.tensor_new(a, b)?;
        self.relinearize_assign(&mut out)?;
        Ok(out)
    }

    // ----- automorphisms --------------------------------------------------------------

    fn galois_key(&self, op: &'static str, g: u64, what: String) -> Result<&SwitchingKey> {
        self.keys
            .galois
            .get(g)
            .map(|k| &k.key)
            .ok_or(Error::MissingGaloisKey {
                op,
                galois_element: g,
                what,
            })
    }

    /// `σ_g(c0 + k0, k1)` for `(k0, k1)` the key switch of c1 with the key of
    /// `g`, which switches s to σ_g^{-1}(s): the result decrypts under s
    /// (hoisted rotations; a single one is fused into the key switch).
    fn automorphism_finish(
        &self,
        ct: &Ciphertext,
        g: u64,
        (mut k0, k1): (Buffer, Buffer),
    ) -> Result<Ciphertext> {
        let basis = self.basis(ct.level);
        let backend = self.ctx.backend();
        let ring = self.ctx.ring();
        backend.add_assign(ring, &mut k0, &ct.parts[0], &basis)?;
        let words = self.ctx.words_at(ct.level);
        let mut c0 = backend.alloc(words)?;
        let mut c1 = backend.alloc(words)?;
        backend.automorphism(ring, &k0, g, &mut c0, &basis)?;
        backend.automorphism(ring, &k1, g, &mut c1, &basis)?;
        Ok(Ciphertext {
            parts: vec![c0, c1],
            ..ct.clone_meta()
        })
    }

    /// `X -> X^g` on a degree-1 ciphertext, with one whole key switch.
    fn automorphism(
        &self,
        op: &'static str,
        ct: &Ciphertext,
        g: u64,
        what: String,
    ) -> Result<Ciphertext> {
        self.check(op, ct)?;
        Self::check_degree_one(op, ct)?;
        let key = self.galois_key(op, g, what)?;
        let tail = KeySwitchTail::ModDownAutomorphism {
            galois_element: g,
            addend: &ct.parts[0],
        };
        let (c0, c1) = switch(&self.ctx, &ct.parts[1], ct.level, key, tail)?;
        Ok(Ciphertext {
            parts: vec![c0, c1],
            ..ct.clone_meta()
        })
    }

    fn check_degree_one(op: &'static str, ct: &Ciphertext) -> Result<()> {
        if ct.degree() != 1 {
            return Err(Error::DegreeMismatch {
                op,
                degree: ct.degree(),
                expected: 1,
            });
        }
        Ok(())
    }

    /// Rotates the slots left by `k` (negative: right).
    pub fn rotate_new(&self, ct: &Ciphertext, k: i64) -> Result<Ciphertext> {
        let g = galois_element_for_rotation(self.ctx.params().log_n(), k);
        if g == 1 {
            self.check("rotate", ct)?;
            Self::check_degree_one("rotate", ct)?;
            return ct.try_clone();
        }
        self.automorphism("rotate", ct, g, format!("rotation by {k}"))
    }

    /// Rotations by every step in `steps`, sharing one decomposition of c1.
    pub fn rotate_hoisted_new(&self, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>> {
        self.check("rotate", ct)?;
        Self::check_degree_one("rotate", ct)?;
        let log_n = self.ctx.params().log_n();
        let dec = decompose(&self.ctx, &ct.parts[1], ct.level)?;
        steps
            .iter()
            .map(|&k| {
                let g = galois_element_for_rotation(log_n, k);
                if g == 1 {
                    return ct.try_clone();
                }
                let key = self.galois_key("rotate", g, format!("rotation by {k}"))?;
                self.automorphism_finish(ct, g, apply(&self.ctx, &dec, key)?)
            })
            .collect()
    }

    /// Complex-conjugates every slot.
    pub fn conjugate_new(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        let g = galois_element_for_conjugation(self.ctx.params().log_n());
        self.automorphism("conjugate", ct, g, "conjugation".into())
    }

    /// Slot j of the result is Σ_{i < count} slot(j + i·stride); `count` is a
    /// power of two. Needs rotation keys for `stride · 2^t`, t < log2(count)
    /// (see [`Evaluator::rotations_for_sum`]).
    pub fn rotate_and_sum_new(
        &self,
        ct: &Ciphertext,
        stride: i64,
        count: usize,
    ) -> Result<Ciphertext> {
        if count == 0 || !count.is_power_of_two() {
            return Err(Error::OutOfRange {
                op: "rotate_and_sum",
                detail: format!("count {count} must be a power of two"),
            });
        }
        let mut acc = ct.try_clone()?;
        for step in Self::rotations_for_sum(stride, count) {
            let rotated = self.rotate_new(&acc, step)?;
            self.add_assign(&mut acc, &rotated)?;
        }
        Ok(acc)
    }

    /// The rotation steps [`Evaluator::rotate_and_sum_new`] uses.
    pub fn rotations_for_sum(stride: i64, count: usize) -> Vec<i64> {
        (0..count.max(1).trailing_zeros())
            .map(|t| stride << t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{create_backend, BackendChoice};
    use crate::ckks::{Decryptor, Encoder, EncryptionKey, Encryptor, KeyGenerator, Prng};
    use crate::params::Parameters;

    /// The centered coefficients of a ciphertext's decryption at its level
    /// (at most two limbs, combined by CRT).
    fn centered_coefficients(ctx: &CkksContext, dec: &Decryptor, ct: &Ciphertext) -> Vec<i128> {
        let pt = dec.decrypt(ct).unwrap();
        let ring = ctx.ring();
        let basis = ring.q_basis(pt.level);
        let mut poly = ctx.duplicate(&pt.poly, ctx.words_at(pt.level)).unwrap();
        ctx.backend().ntt_inverse(ring, &mut poly, &basis).unwrap();
        let words = ctx
            .backend()
            .download(&poly, ctx.words_at(pt.level))
            .unwrap();
        let n = ctx.n();
        let q: Vec<i128> = basis
            .iter()
            .map(|&i| ring.moduli()[i].value() as i128)
            .collect();
        (0..n)
            .map(|c| {
                let x0 = words[c] as i128;
                let (value, modulus) = if q.len() == 1 {
                    (x0, q[0])
                } else {
                    // x = x0 + q0·((x1 − x0)·q0^{-1} mod q1).
                    let m1 = &ring.moduli()[basis[1]];
                    let inv = m1.inv((q[0] % q[1]) as u64).unwrap() as i128;
                    let t = ((words[n + c] as i128 - x0).rem_euclid(q[1]) * inv).rem_euclid(q[1]);
                    (x0 + q[0] * t, q[0] * q[1])
                };
                if value > modulus / 2 {
                    value - modulus
                } else {
                    value
                }
            })
            .collect()
    }

    #[test]
    fn mod_raise_adds_a_small_multiple_of_q0() {
        let params = Parameters::preset("TEST_INSECURE_N10").unwrap();
        let ctx =
            CkksContext::new(&params, create_backend(BackendChoice::Cpu, 1).unwrap()).unwrap();
        let mut keygen = KeyGenerator::new(ctx.clone(), Prng::from_seed(5));
        let sk = keygen.gen_secret_key().unwrap();
        let hamming_weight = sk.coefficients().iter().filter(|&&s| s != 0).count() as i128;
        let ev = Evaluator::new(ctx.clone(), EvaluationKeys::default()).unwrap();
        let dec = Decryptor::new(ctx.clone(), sk.clone()).unwrap();
        let mut enc =
            Encryptor::new(ctx.clone(), EncryptionKey::Secret(sk), Prng::from_seed(6)).unwrap();
        let values: Vec<Complex> = (0..params.max_slots())
            .map(|i| Complex::new((i as f64 * 0.37).sin(), 0.0))
            .collect();
        let pt = Encoder::new(ctx.clone())
            .encode_complex(&values, 0, params.default_scale())
            .unwrap();
        let ct = enc.encrypt(&pt).unwrap();
        let raised = ev.mod_raise_new(&ct).unwrap();
        assert_eq!(raised.level(), params.max_level());
        let mut two_limbs = raised.clone();
        ev.drop_level_assign(&mut two_limbs, params.max_level() - 1)
            .unwrap();
        let before = centered_coefficients(&ctx, &dec, &ct);
        let after = centered_coefficients(&ctx, &dec, &two_limbs);
        let q0 = params.q()[0] as i128;
        let mut largest = 0;
        for (b, a) in before.iter().zip(&after) {
            assert_eq!((a - b) % q0, 0, "not a multiple of q0");
            largest = largest.max(((a - b) / q0).abs());
        }
        eprintln!("ModRaise: largest |I| = {largest} (h = {hamming_weight})");
        // c0 + c1·s with c0, c1 centered below q0/2 in each coefficient: |I| <= (h + 1)/2.
        assert!(
            largest <= (hamming_weight + 1) / 2,
            "|I| = {largest}, h = {hamming_weight}"
        );
        assert!(
            largest > 0,
            "ModRaise added nothing: the test cannot see it"
        );
        // Dropped back to level 0 it is the same ciphertext.
        let mut back = raised;
        ev.drop_level_assign(&mut back, params.max_level()).unwrap();
        assert_eq!(centered_coefficients(&ctx, &dec, &back), before);
    }
}
