//! Word-for-word comparison of every primitive with the CPU oracle on small
//! rings (N = 2^10..2^12, several limbs, 45- to 60-bit primes), in both
//! 64-bit integer modes. Without an adapter the tests say so and pass.

use std::sync::Arc;

use num_bigint::BigInt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::backend::cpu::CpuBackend;
use crate::params::Parameters;

const PRESETS: [&str; 3] = [
    "TEST_INSECURE_N10",
    "TEST_INSECURE_N11",
    "TEST_INSECURE_N12",
];

fn open(int64: Int64Mode) -> Option<WgpuBackend> {
    match WgpuBackend::new(WgpuOptions {
        allow_software: true,
        int64,
    }) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: no wgpu adapter for {int64:?}: {e}");
            None
        }
    }
}

/// The CPU oracle and the backend under test on one ring.
struct Check<'a> {
    cpu: CpuBackend,
    gpu: &'a WgpuBackend,
    ring: Arc<RingContext>,
    rng: ChaCha20Rng,
}

impl<'a> Check<'a> {
    fn new(gpu: &'a WgpuBackend, preset: &str) -> Self {
        let params = Parameters::preset(preset).unwrap();
        Self {
            cpu: CpuBackend::new(1).unwrap(),
            gpu,
            ring: Arc::new(RingContext::new(&params).unwrap()),
            rng: ChaCha20Rng::seed_from_u64(params.id()),
        }
    }

    /// Reduced random words on `basis`, with 0, 1 and q − 1 at the start of
    /// every limb.
    fn random(&mut self, basis: &[usize]) -> Vec<u64> {
        let n = self.ring.n();
        let mut words = Vec::with_capacity(n * basis.len());
        for &g in basis {
            let q = self.ring.moduli()[g].value();
            words.extend_from_slice(&[0, 1, q - 1]);
            words.extend((3..n).map(|_| self.rng.random_range(0..q)));
        }
        words
    }

    /// The same words on both backends.
    fn pair(&self, host: &[u64]) -> (Buffer, Buffer) {
        (
            self.cpu.upload(host).unwrap(),
            self.gpu.upload(host).unwrap(),
        )
    }

    fn random_pair(&mut self, basis: &[usize]) -> (Buffer, Buffer) {
        let host = self.random(basis);
        self.pair(&host)
    }

    fn assert_same(&self, what: &str, cpu: &Buffer, gpu: &Buffer, words: usize) {
        let expected = self.cpu.download(cpu, words).unwrap();
        let got = self.gpu.download(gpu, words).unwrap();
        if let Some(i) = (0..words).find(|&i| expected[i] != got[i]) {
            panic!(
                "{what}: word {i} (limb {}, coefficient {}) is {} instead of {}",
                i / self.ring.n(),
                i % self.ring.n(),
                got[i],
                expected[i]
            );
        }
    }

    fn elementwise(&mut self) {
        let shared = Arc::clone(&self.ring);
        let ring: &RingContext = &shared;
        let basis = ring.full_basis();
        let words = ring.n() * basis.len();
        let scalars: Vec<u64> = basis
            .iter()
            .map(|&g| self.rng.random_range(0..ring.moduli()[g].value()))
            .collect();
        let (a_c, a_g) = self.random_pair(&basis);
        let (b_c, b_g) = self.random_pair(&basis);
        type Op = fn(&dyn Backend, &RingContext, &mut Buffer, &Buffer, &Buffer, &[usize], &[u64]);
        let ops: [(&str, Op); 8] = [
            ("add", |be, r, x, _, b, s, _| {
                be.add_assign(r, x, b, s).unwrap()
            }),
            ("sub", |be, r, x, _, b, s, _| {
                be.sub_assign(r, x, b, s).unwrap()
            }),
            ("neg", |be, r, x, _, _, s, _| {
                be.neg_assign(r, x, s).unwrap()
            }),
            ("mul", |be, r, x, _, b, s, _| {
                be.mul_assign(r, x, b, s).unwrap()
            }),
            ("mul_add", |be, r, x, a, b, s, _| {
                be.mul_add_assign(r, x, a, b, s).unwrap()
            }),
            ("mul_scalar_add", |be, r, x, a, _, s, c| {
                be.mul_scalar_add_assign(r, x, a, c, s).unwrap()
            }),
            ("mul_scalar", |be, r, x, _, _, s, c| {
                be.mul_scalar_assign(r, x, c, s).unwrap()
            }),
            ("add_scalar", |be, r, x, _, _, s, c| {
                be.add_scalar_assign(r, x, c, s).unwrap()
            }),
        ];
        for (name, op) in ops {
            let (mut x_c, mut x_g) = self.random_pair(&basis);
            op(&self.cpu, ring, &mut x_c, &a_c, &b_c, &basis, &scalars);
            op(self.gpu, ring, &mut x_g, &a_g, &b_g, &basis, &scalars);
            self.assert_same(name, &x_c, &x_g, words);
        }
        let (c_c, c_g) = self.random_pair(&basis);
        let mut out_c: Vec<Buffer> = (0..3).map(|_| self.cpu.alloc(words).unwrap()).collect();
        let mut out_g: Vec<Buffer> = (0..3).map(|_| self.gpu.alloc(words).unwrap()).collect();
        let pair = |x: &Buffer, y: &Buffer| [x.try_clone().unwrap(), y.try_clone().unwrap()];
        self.cpu
            .tensor(
                ring,
                &pair(&a_c, &b_c),
                &pair(&c_c, &a_c),
                &mut out_c,
                &basis,
            )
            .unwrap();
        self.gpu
            .tensor(
                ring,
                &pair(&a_g, &b_g),
                &pair(&c_g, &a_g),
                &mut out_g,
                &basis,
            )
            .unwrap();
        for (x, y) in out_c.iter().zip(&out_g) {
            self.assert_same("tensor", x, y, words);
        }
    }

    fn ntt_and_automorphism(&mut self) {
        let shared = Arc::clone(&self.ring);
        let ring: &RingContext = &shared;
        let n = ring.n();
        let basis = ring.full_basis();
        let words = n * basis.len();
        let (mut c, mut g) = self.random_pair(&basis);
        self.cpu.ntt_forward(ring, &mut c, &basis).unwrap();
        self.gpu.ntt_forward(ring, &mut g, &basis).unwrap();
        self.assert_same("ntt_forward", &c, &g, words);
        let (mut c, mut g) = self.random_pair(&basis);
        self.cpu.ntt_inverse(ring, &mut c, &basis).unwrap();
        self.gpu.ntt_inverse(ring, &mut g, &basis).unwrap();
        self.assert_same("ntt_inverse", &c, &g, words);
        // A sub-basis out of order.
        let sub = [basis.len() - 1, 0, 2];
        let (mut c, mut g) = self.random_pair(&sub);
        self.cpu.ntt_forward(ring, &mut c, &sub).unwrap();
        self.gpu.ntt_forward(ring, &mut g, &sub).unwrap();
        self.assert_same("ntt_forward (sub-basis)", &c, &g, n * sub.len());
        for galois in [5, 25, 2 * n as u64 - 1] {
            let (src_c, src_g) = self.random_pair(&basis);
            let mut out_c = self.cpu.alloc(words).unwrap();
            let mut out_g = self.gpu.alloc(words).unwrap();
            self.cpu
                .automorphism(ring, &src_c, galois, &mut out_c, &basis)
                .unwrap();
            self.gpu
                .automorphism(ring, &src_g, galois, &mut out_g, &basis)
                .unwrap();
            self.assert_same("automorphism", &out_c, &out_g, words);
        }
    }

    fn key_switching(&mut self) {
        let n = self.ring.n();
        let num_q = self.ring.num_q();
        let num_p = self.ring.num_p();
        for level in [num_q - 1, 1, 0] {
            let shared = Arc::clone(&self.ring);
            let ring: &RingContext = &shared;
            let ext = ring.extended_basis(level);
            let ext_words = n * ext.len();
            let digits = ring.params().digits_at_level(level);
            // ModUp.
            let coeff = self.random(&ring.q_basis(level));
            let (coeff_c, coeff_g) = self.pair(&coeff);
            let mut eval_c = coeff_c.try_clone().unwrap();
            self.cpu
                .ntt_forward(ring, &mut eval_c, &ring.q_basis(level))
                .unwrap();
            let eval = self.cpu.download(&eval_c, n * (level + 1)).unwrap();
            let eval_g = self.gpu.upload(&eval).unwrap();
            let mut up_c: Vec<Buffer> = (0..digits)
                .map(|_| self.cpu.alloc(ext_words).unwrap())
                .collect();
            let mut up_g: Vec<Buffer> = (0..digits)
                .map(|_| self.gpu.alloc(ext_words).unwrap())
                .collect();
            self.cpu
                .mod_up(ring, &coeff_c, &eval_c, level, &mut up_c)
                .unwrap();
            self.gpu
                .mod_up(ring, &coeff_g, &eval_g, level, &mut up_g)
                .unwrap();
            for (c, g) in up_c.iter().zip(&up_g) {
                self.assert_same("mod_up", c, g, ext_words);
            }
            // Inner product with random keys on the full basis.
            let full = ring.full_basis();
            let keys: Vec<((Buffer, Buffer), (Buffer, Buffer))> = (0..digits)
                .map(|_| {
                    let (b_c, b_g) = self.random_pair(&full);
                    let (a_c, a_g) = self.random_pair(&full);
                    ((b_c, a_c), (b_g, a_g))
                })
                .collect();
            let (keys_c, keys_g): (Vec<_>, Vec<_>) = keys.into_iter().unzip();
            let mut acc_c = [(); 2].map(|_| self.cpu.alloc(ext_words).unwrap());
            let mut acc_g = [(); 2].map(|_| self.gpu.alloc(ext_words).unwrap());
            let [c0, c1] = &mut acc_c;
            self.cpu
                .key_switch_inner_product(ring, &up_c, &keys_c, level, c0, c1)
                .unwrap();
            let [g0, g1] = &mut acc_g;
            self.gpu
                .key_switch_inner_product(ring, &up_g, &keys_g, level, g0, g1)
                .unwrap();
            for (c, g) in acc_c.iter().zip(&acc_g) {
                self.assert_same("key_switch_inner_product", c, g, ext_words);
            }
            // ModDown of random extended polynomials, plain and fused.
            let extended: Vec<Vec<u64>> = (0..2).map(|_| self.random(&ext)).collect();
            let ext_c: Vec<Buffer> = extended
                .iter()
                .map(|x| self.cpu.upload(x).unwrap())
                .collect();
            let ext_g: Vec<Buffer> = extended
                .iter()
                .map(|x| self.gpu.upload(x).unwrap())
                .collect();
            let mut down_c: Vec<Buffer> = (0..2)
                .map(|_| self.cpu.alloc(n * (level + 1)).unwrap())
                .collect();
            let mut down_g: Vec<Buffer> = (0..2)
                .map(|_| self.gpu.alloc(n * (level + 1)).unwrap())
                .collect();
            self.cpu.mod_down(ring, &ext_c, level, &mut down_c).unwrap();
            self.gpu.mod_down(ring, &ext_g, level, &mut down_g).unwrap();
            for (c, g) in down_c.iter().zip(&down_g) {
                self.assert_same("mod_down", c, g, n * (level + 1));
            }
            if level == 0 {
                continue;
            }
            self.cpu
                .mod_down_rescale(ring, &ext_c, level, &mut down_c)
                .unwrap();
            self.gpu
                .mod_down_rescale(ring, &ext_g, level, &mut down_g)
                .unwrap();
            for (c, g) in down_c.iter().zip(&down_g) {
                self.assert_same("mod_down_rescale", c, g, n * level);
            }
            let (poly_c, poly_g) = self.random_pair(&ring.q_basis(level));
            let mut out_c = self.cpu.alloc(n * level).unwrap();
            let mut out_g = self.gpu.alloc(n * level).unwrap();
            self.cpu.rescale(ring, &poly_c, level, &mut out_c).unwrap();
            self.gpu.rescale(ring, &poly_g, level, &mut out_g).unwrap();
            self.assert_same("rescale", &out_c, &out_g, n * level);
        }
        assert!(num_p > 0);
    }

    /// An extended polynomial at `level` (evaluation domain), random but on
    /// the limbs at `positions` (global moduli `sources`): there, in the
    /// coefficient domain, values around S/2 (S the product of the sources)
    /// by steps of 1 (even coefficients) and of S/2^70 (odd ones), where the
    /// fixed-point rounding of the centered conversion decides.
    fn near_half(&mut self, level: usize, sources: &[usize], positions: &[usize]) -> Vec<u64> {
        let n = self.ring.n();
        let mut words = self.random(&self.ring.extended_basis(level));
        let product: BigInt = sources
            .iter()
            .map(|&g| BigInt::from(self.ring.moduli()[g].value()))
            .product();
        let half = &product >> 1usize;
        let step = std::cmp::max(&product >> 70usize, BigInt::from(1));
        for (&g, &pos) in sources.iter().zip(positions) {
            let q = BigInt::from(self.ring.moduli()[g].value());
            let limb = &mut words[pos * n..(pos + 1) * n];
            for (c, w) in limb.iter_mut().enumerate() {
                let offset = BigInt::from(c as i64 - n as i64 / 2);
                let x = if c % 2 == 0 {
                    &half + offset
                } else {
                    &half + offset * &step
                };
                *w = u64::try_from(x % &q).unwrap();
            }
            self.ring.ntt(g).forward(limb);
        }
        words
    }

    /// ModDown, ModDown-rescale and rescale where their rounding decides.
    fn rounding_boundaries(&mut self) {
        let n = self.ring.n();
        let num_q = self.ring.num_q();
        let specials: Vec<usize> = (num_q..num_q + self.ring.num_p()).collect();
        for level in [num_q - 1, 1] {
            let ring = Arc::clone(&self.ring);
            let ring: &RingContext = &ring;
            let p_positions: Vec<usize> = (level + 1..level + 1 + specials.len()).collect();
            let x = self.near_half(level, &specials, &p_positions);
            let mut sources = vec![level];
            sources.extend(&specials);
            let y = self.near_half(level, &sources, &[&[level][..], &p_positions].concat());
            let (x_c, x_g) = self.pair(&x);
            let (y_c, y_g) = self.pair(&y);
            let mut out_c = vec![self.cpu.alloc(n * (level + 1)).unwrap()];
            let mut out_g = vec![self.gpu.alloc(n * (level + 1)).unwrap()];
            self.cpu.mod_down(ring, &[x_c], level, &mut out_c).unwrap();
            self.gpu.mod_down(ring, &[x_g], level, &mut out_g).unwrap();
            self.assert_same("mod_down near P/2", &out_c[0], &out_g[0], n * (level + 1));
            self.cpu
                .mod_down_rescale(ring, &[y_c], level, &mut out_c)
                .unwrap();
            self.gpu
                .mod_down_rescale(ring, &[y_g], level, &mut out_g)
                .unwrap();
            self.assert_same(
                "mod_down_rescale near P·q/2",
                &out_c[0],
                &out_g[0],
                n * level,
            );
            let z = self.near_half(level, &[level], &[level]);
            let (z_c, z_g) = self.pair(&z[..n * (level + 1)]);
            self.cpu.rescale(ring, &z_c, level, &mut out_c[0]).unwrap();
            self.gpu.rescale(ring, &z_g, level, &mut out_g[0]).unwrap();
            self.assert_same("rescale near q/2", &out_c[0], &out_g[0], n * level);
        }
    }

    /// ModRaise at every level from limb-0 words with 0, 1, q_0 − 1 and the
    /// words around q_0/2 (where the centering flips) at the start.
    fn mod_raise(&mut self) {
        let shared = Arc::clone(&self.ring);
        let ring: &RingContext = &shared;
        let n = ring.n();
        let q0 = ring.moduli()[0].value();
        let mut src = self.random(&[0]);
        src[3..7].copy_from_slice(&[q0 / 2 - 1, q0 / 2, q0 / 2 + 1, q0 / 2 + 2]);
        let (src_c, src_g) = self.pair(&src);
        for level in 0..ring.num_q() {
            let words = n * (level + 1);
            let mut out_c = self.cpu.alloc(words).unwrap();
            let mut out_g = self.gpu.alloc(words).unwrap();
            self.cpu.mod_raise(ring, &src_c, level, &mut out_c).unwrap();
            self.gpu.mod_raise(ring, &src_g, level, &mut out_g).unwrap();
            self.assert_same(&format!("mod_raise level {level}"), &out_c, &out_g, words);
        }
    }

    fn buffers_and_errors(&mut self) {
        let shared = Arc::clone(&self.ring);
        let ring: &RingContext = &shared;
        let n = ring.n();
        let basis = ring.q_basis(1);
        let host = self.random(&basis);
        let mut g = self.gpu.upload(&host).unwrap();
        assert_eq!(self.gpu.download(&g, host.len()).unwrap(), host);
        assert_eq!(g.try_clone().unwrap().len(), host.len());
        let mut copy = self.gpu.alloc(host.len()).unwrap();
        self.gpu.copy(&g, &mut copy, host.len()).unwrap();
        assert_eq!(self.gpu.download(&copy, host.len()).unwrap(), host);
        let zeros = self.gpu.alloc_zeroed(3 * n).unwrap();
        assert!(self
            .gpu
            .download(&zeros, 3 * n)
            .unwrap()
            .iter()
            .all(|&w| w == 0));
        g.wipe();
        assert!(self
            .gpu
            .download(&g, host.len())
            .unwrap()
            .iter()
            .all(|&w| w == 0));
        assert!(self
            .gpu
            .download(&self.gpu.upload(&[]).unwrap(), 0)
            .unwrap()
            .is_empty());
        // Errors, never panics.
        let host_buffer = self.cpu.upload(&host).unwrap();
        assert!(matches!(
            self.gpu.add_assign(ring, &mut copy, &host_buffer, &basis),
            Err(Error::DeviceMismatch { .. })
        ));
        assert!(matches!(
            self.gpu
                .add_assign(ring, &mut copy, &zeros, &ring.q_basis(3)),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            self.gpu.neg_assign(ring, &mut copy, &[0, 99]),
            Err(Error::OutOfRange { .. })
        ));
        let mut out = self.gpu.alloc(host.len()).unwrap();
        assert!(self
            .gpu
            .automorphism(ring, &copy, 4, &mut out, &basis)
            .is_err());
        assert!(self.gpu.rescale(ring, &copy, 0, &mut out).is_err());
        assert!(matches!(
            self.gpu.mod_raise(ring, &copy, ring.num_q(), &mut out),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            self.gpu.mod_raise(ring, &copy, 2, &mut out),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            self.gpu.mod_raise(ring, &host_buffer, 1, &mut out),
            Err(Error::DeviceMismatch { .. })
        ));
        assert!(self.gpu.download(&copy, host.len() + 1).is_err());
        assert!(self.gpu.alloc(usize::MAX / 4).is_err());
    }
}

fn conformance(int64: Int64Mode) {
    let Some(gpu) = open(int64) else { return };
    eprintln!(
        "wgpu on {} (native u64: {})",
        gpu.device_name(),
        gpu.int64_native()
    );
    for preset in PRESETS {
        let mut check = Check::new(&gpu, preset);
        check.buffers_and_errors();
        check.elementwise();
        check.ntt_and_automorphism();
        check.key_switching();
        check.rounding_boundaries();
        check.mod_raise();
    }
}

#[test]
fn matches_cpu_with_native_u64() {
    conformance(Int64Mode::Native);
}

#[test]
fn matches_cpu_with_vec2_words() {
    conformance(Int64Mode::Emulated);
}

#[test]
fn software_adapters_need_consent() {
    match WgpuBackend::new(WgpuOptions::default()) {
        Ok(b) => assert!(
            !b.is_software(),
            "{} is a software adapter",
            b.device_name()
        ),
        Err(e) => eprintln!("refused as expected without a hardware adapter: {e}"),
    }
}

#[test]
fn buffers_of_another_device_are_refused() {
    let (Some(first), Some(second)) = (open(Int64Mode::Auto), open(Int64Mode::Auto)) else {
        return;
    };
    let ring = RingContext::new(&Parameters::preset("TEST_INSECURE_N10").unwrap()).unwrap();
    let words = ring.n();
    let theirs = second.alloc_zeroed(words).unwrap();
    let mut ours = first.alloc_zeroed(words).unwrap();
    assert!(matches!(
        first.add_assign(&ring, &mut ours, &theirs, &[0]),
        Err(Error::DeviceMismatch { .. })
    ));
    assert!(matches!(
        first.download(&theirs, words),
        Err(Error::DeviceMismatch { .. })
    ));
}
