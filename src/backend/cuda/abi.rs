//! The parameter blocks passed by value to the CUDA kernels, mirrored byte
//! for byte from `kernels/cuda/modarith.cuh` and `kernels/cuda/key_switch.cu`
//! (`#[repr(C)]`, plain old data), and the per-modulus records of the prime
//! table.
//!
//! Invariants: a [`Limbs`] never holds more than [`MAX_LIMBS`] limbs and
//! every modulus index in it is below the ring's modulus count; a
//! [`LimbScalars`] entry is reduced modulo its limb's prime and carries its
//! Shoup companion.

use cudarc::driver::DeviceRepr;

use crate::error::{Error, Result};
use crate::math::Modulus;
use crate::ring::RingContext;

/// `HEFORMER_MAX_LIMBS`: most limbs one launch addresses.
pub(crate) const MAX_LIMBS: usize = 128;
/// `HEFORMER_MAX_DIGITS`: most digits one inner product accumulates.
pub(crate) const MAX_DIGITS: usize = 64;
/// `HEFORMER_BLOCK`: threads per block of word-parallel kernels.
pub(crate) const BLOCK: u32 = 256;
/// `CONVERT_TARGETS`: target limbs per thread of `convert`.
pub(crate) const CONVERT_TARGETS: u32 = 4;
/// Words per record of the prime table (`struct Prime`).
pub(crate) const PRIME_WORDS: usize = 5;

/// `struct LimbMap`: limb k of a launch uses modulus `modulus[k]` and lives
/// at limb `position[k]` of the buffer the kernel names.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct LimbMap {
    modulus: [u16; MAX_LIMBS],
    position: [u16; MAX_LIMBS],
}

// SAFETY: `LimbMap` is `#[repr(C)]` plain old data (arrays of u16) with the
// layout of the CUDA `struct LimbMap`; kernels receive it by value.
unsafe impl DeviceRepr for LimbMap {}

/// A [`LimbMap`] with the number of limbs it holds (the launch's grid.y).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limbs {
    pub map: LimbMap,
    pub len: usize,
}

impl Limbs {
    /// Limbs from `(global modulus index, buffer position)` pairs, checked
    /// against the ring's modulus count and [`MAX_LIMBS`].
    pub fn new(
        op: &'static str,
        ring: &RingContext,
        pairs: impl IntoIterator<Item = (usize, usize)>,
    ) -> Result<Self> {
        let count = ring.moduli().len();
        let mut map = LimbMap {
            modulus: [0; MAX_LIMBS],
            position: [0; MAX_LIMBS],
        };
        let mut len = 0;
        for (modulus, position) in pairs {
            if len == MAX_LIMBS {
                return Err(Error::OutOfRange {
                    op,
                    detail: format!("more than {MAX_LIMBS} limbs in one CUDA launch"),
                });
            }
            if modulus >= count {
                return Err(Error::OutOfRange {
                    op,
                    detail: format!(
                        "modulus index {modulus} out of range (the ring has {count} moduli)"
                    ),
                });
            }
            // The kernels index with u16: larger indices are refused.
            map.modulus[len] = u16::try_from(modulus).map_err(|_| too_large(op))?;
            map.position[len] = u16::try_from(position).map_err(|_| too_large(op))?;
            len += 1;
        }
        Ok(Self { map, len })
    }

    /// Limb k of `basis` at position k.
    pub fn of_basis(op: &'static str, ring: &RingContext, basis: &[usize]) -> Result<Self> {
        Self::new(op, ring, basis.iter().copied().zip(0..))
    }

    /// The limb count as a grid dimension.
    pub fn grid(&self) -> u32 {
        self.len as u32
    }
}

fn too_large(op: &'static str) -> Error {
    Error::OutOfRange {
        op,
        detail: "limb index beyond 65535".into(),
    }
}

/// `struct LimbScalars`: one reduced constant per limb with its Shoup
/// companion.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct LimbScalars {
    value: [u64; MAX_LIMBS],
    shoup: [u64; MAX_LIMBS],
}

// SAFETY: `#[repr(C)]` plain old data (arrays of u64) with the layout of the
// CUDA `struct LimbScalars`; kernels receive it by value.
unsafe impl DeviceRepr for LimbScalars {}

impl LimbScalars {
    /// Constants `values[k]` modulo `moduli[k]`; a value that is not reduced
    /// is an [`Error::OutOfRange`] naming `op`.
    pub fn new<'a>(
        op: &'static str,
        moduli: impl IntoIterator<Item = &'a Modulus>,
        values: &[u64],
    ) -> Result<Self> {
        let mut s = LimbScalars {
            value: [0; MAX_LIMBS],
            shoup: [0; MAX_LIMBS],
        };
        let mut moduli = moduli.into_iter();
        if values.len() > MAX_LIMBS {
            return Err(Error::OutOfRange {
                op,
                detail: format!("more than {MAX_LIMBS} limbs in one CUDA launch"),
            });
        }
        for (k, &c) in values.iter().enumerate() {
            let m = moduli.next().ok_or(Error::LengthMismatch {
                op,
                got: values.len(),
                expected: k,
            })?;
            if c >= m.value() {
                return Err(Error::OutOfRange {
                    op,
                    detail: format!("scalar {c} not reduced modulo {}", m.value()),
                });
            }
            s.value[k] = c;
            s.shoup[k] = m.shoup(c);
        }
        Ok(s)
    }
}

/// `struct DigitOperands`: device addresses of the digits and key parts of
/// one inner product.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct DigitOperands {
    pub digit: [u64; MAX_DIGITS],
    pub key_b: [u64; MAX_DIGITS],
    pub key_a: [u64; MAX_DIGITS],
}

// SAFETY: `#[repr(C)]` plain old data (arrays of u64 device addresses) with
// the layout of the CUDA `struct DigitOperands`; kernels receive it by value.
unsafe impl DeviceRepr for DigitOperands {}

/// The prime table (`struct Prime` per global modulus index): q,
/// floor(2^128/q) low and high words, N^{-1} mod q and its Shoup companion.
pub(crate) fn prime_records(ring: &RingContext) -> Vec<u64> {
    ring.moduli()
        .iter()
        .enumerate()
        .flat_map(|(g, m)| -> [u64; PRIME_WORDS] {
            let ratio = u128::MAX / m.value() as u128;
            let table = ring.ntt(g);
            [
                m.value(),
                ratio as u64,
                (ratio >> 64) as u64,
                table.n_inv(),
                table.n_inv_shoup(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = include_str!("../../../kernels/cuda/modarith.cuh");
    const KEY_SWITCH: &str = include_str!("../../../kernels/cuda/key_switch.cu");
    const CONVERSION: &str = include_str!("../../../kernels/cuda/basis_conversion.cu");

    fn define(source: &str, name: &str) -> usize {
        let line = source
            .lines()
            .find(|l| l.starts_with(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("#define {name} missing"));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    #[test]
    fn constants_match_the_kernel_headers() {
        assert_eq!(define(HEADER, "HEFORMER_MAX_LIMBS"), MAX_LIMBS);
        assert_eq!(define(HEADER, "HEFORMER_MAX_DIGITS"), MAX_DIGITS);
        assert_eq!(define(HEADER, "HEFORMER_BLOCK"), BLOCK as usize);
        assert_eq!(
            define(CONVERSION, "CONVERT_TARGETS"),
            CONVERT_TARGETS as usize
        );
        assert!(KEY_SWITCH.contains("struct DigitOperands"));
    }

    /// The fields of `struct NAME { ... };` in `source` as (type, name,
    /// array length), array lengths given by number or by a `#define` of
    /// the header.
    fn cuda_fields(source: &str, name: &str) -> Vec<(String, String, usize)> {
        let body = source
            .split(&format!("struct {name} {{"))
            .nth(1)
            .and_then(|s| s.split("};").next())
            .unwrap_or_else(|| panic!("struct {name} missing"));
        body.lines()
            .map(|l| l.split("//").next().unwrap().trim())
            .filter(|l| !l.is_empty())
            .map(|l| {
                let l = l.strip_suffix(';').unwrap_or_else(|| panic!("`{l}`"));
                let (ty, rest) = l.split_once(' ').unwrap();
                let (field, count) = match rest.split_once('[') {
                    Some((f, c)) => {
                        let c = c.strip_suffix(']').unwrap();
                        (f, c.parse().unwrap_or_else(|_| define(HEADER, c)))
                    }
                    None => (rest, 1),
                };
                (ty.to_string(), field.trim().to_string(), count)
            })
            .collect()
    }

    /// Checks the C layout (natural alignment, no packing) of `fields`
    /// against the Rust `(name, offset)` pairs and size.
    fn assert_layout(
        name: &str,
        fields: &[(String, String, usize)],
        rust: &[(&str, usize)],
        size: usize,
    ) {
        assert_eq!(fields.len(), rust.len(), "{name}: field count");
        let mut offset = 0usize;
        let mut align = 1usize;
        for ((ty, field, count), &(rust_field, rust_offset)) in fields.iter().zip(rust) {
            let width: usize = match ty.as_str() {
                "u16" => 2,
                "u32" => 4,
                "u64" => 8,
                other => panic!("{name}.{field}: unexpected type {other}"),
            };
            offset = offset.next_multiple_of(width);
            align = align.max(width);
            assert_eq!(field, rust_field, "{name}: field order");
            assert_eq!(offset, rust_offset, "{name}.{field}: offset");
            offset += width * count;
        }
        assert_eq!(offset.next_multiple_of(align), size, "{name}: size");
    }

    #[test]
    fn every_parameter_block_matches_its_cuda_struct_field_by_field() {
        use std::mem::{offset_of, size_of};
        assert_layout(
            "LimbMap",
            &cuda_fields(HEADER, "LimbMap"),
            &[
                ("modulus", offset_of!(LimbMap, modulus)),
                ("position", offset_of!(LimbMap, position)),
            ],
            size_of::<LimbMap>(),
        );
        assert_layout(
            "LimbScalars",
            &cuda_fields(HEADER, "LimbScalars"),
            &[
                ("value", offset_of!(LimbScalars, value)),
                ("shoup", offset_of!(LimbScalars, shoup)),
            ],
            size_of::<LimbScalars>(),
        );
        assert_layout(
            "DigitOperands",
            &cuda_fields(KEY_SWITCH, "DigitOperands"),
            &[
                ("digit", offset_of!(DigitOperands, digit)),
                ("key_b", offset_of!(DigitOperands, key_b)),
                ("key_a", offset_of!(DigitOperands, key_a)),
            ],
            size_of::<DigitOperands>(),
        );
        // `struct Prime` is read from the prime table (device memory): the
        // record of `prime_records`, PRIME_WORDS words in this order.
        assert_layout(
            "Prime",
            &cuda_fields(HEADER, "Prime"),
            &[
                ("q", 0),
                ("ratio_lo", 8),
                ("ratio_hi", 16),
                ("n_inv", 24),
                ("n_inv_shoup", 32),
            ],
            8 * PRIME_WORDS,
        );
    }

    #[test]
    fn prime_records_follow_struct_prime() {
        let params = crate::params::Parameters::preset("TEST_INSECURE_N12").unwrap();
        let ring = RingContext::new(&params).unwrap();
        let records = prime_records(&ring);
        assert_eq!(records.len(), PRIME_WORDS * ring.moduli().len());
        for (g, (m, r)) in ring
            .moduli()
            .iter()
            .zip(records.chunks(PRIME_WORDS))
            .enumerate()
        {
            let q = m.value();
            let ratio = (r[2] as u128) << 64 | r[1] as u128;
            assert_eq!(r[0], q);
            // floor(2^128 / q): ratio·q <= 2^128 - 1 < (ratio + 1)·q.
            assert!(ratio.checked_mul(q as u128).is_some());
            assert!((ratio + 1).checked_mul(q as u128).is_none());
            let n = ring.n() as u128;
            assert_eq!(r[3] as u128 * n % q as u128, 1, "N^-1 of modulus {g}");
            assert_eq!(r[4], m.shoup(r[3]));
        }
    }

    #[test]
    fn launches_beyond_the_parameter_blocks_are_errors() {
        let params = crate::params::Parameters::preset("TEST_INSECURE_N12").unwrap();
        let ring = RingContext::new(&params).unwrap();
        let count = ring.moduli().len();
        assert!(Limbs::new("t", &ring, (0..MAX_LIMBS).map(|k| (k % count, k))).is_ok());
        assert!(matches!(
            Limbs::new("t", &ring, (0..=MAX_LIMBS).map(|k| (k % count, k))),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            Limbs::new("t", &ring, [(count, 0)]),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            Limbs::new("t", &ring, [(0, 1 << 16)]),
            Err(Error::OutOfRange { .. })
        ));
        let moduli = vec![ring.moduli()[0]; MAX_LIMBS + 1];
        assert!(LimbScalars::new("t", &moduli[..MAX_LIMBS], &[0; MAX_LIMBS]).is_ok());
        assert!(matches!(
            LimbScalars::new("t", &moduli, &[0; MAX_LIMBS + 1]),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            LimbScalars::new("t", &moduli[..1], &[0, 0]),
            Err(Error::LengthMismatch { .. })
        ));
    }

    #[test]
    fn parameter_blocks_have_the_cuda_layout() {
        assert_eq!(std::mem::size_of::<LimbMap>(), 4 * MAX_LIMBS);
        assert_eq!(std::mem::size_of::<LimbScalars>(), 16 * MAX_LIMBS);
        assert_eq!(std::mem::size_of::<DigitOperands>(), 24 * MAX_DIGITS);
        // A launch passes at most a map, scalars and a few words: within the
        // 4 KiB parameter space of every CUDA architecture.
        assert!(std::mem::size_of::<LimbMap>() + std::mem::size_of::<DigitOperands>() + 64 <= 4096);
        assert!(std::mem::size_of::<LimbMap>() + std::mem::size_of::<LimbScalars>() + 64 <= 4096);
        let fields = HEADER
            .split("struct Prime {")
            .nth(1)
            .and_then(|s| s.split("};").next())
            .unwrap();
        assert_eq!(fields.matches("u64 ").count(), PRIME_WORDS);
    }
}
