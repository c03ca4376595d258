//! The binary format of `heformer::ckks::serialize`: round trips of every
//! object kind and rejection of malformed, truncated and corrupt files.

mod common;

use common::{Fixture, PrecisionStats};
use heformer::ckks::serialize::{self, ObjectKind, CHECKSUM_LEN, HEADER_LEN};
use heformer::ckks::*;
use heformer::math::Complex;
use heformer::params::Parameters;
use heformer::Error;
use rand::{Rng, SeedableRng};

const PRESET: &str = "TEST_INSECURE_N10";
const ROTATIONS: &[i64] = &[1, 3];

/// 64-bit FNV-1a, written independently of the crate's.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Rewrites the checksum of a frame after its header or payload was edited.
fn reseal(frame: &mut [u8]) {
    let end = frame.len() - CHECKSUM_LEN;
    let sum = fnv1a64(&frame[..end]);
    frame[end..].copy_from_slice(&sum.to_le_bytes());
}

fn set_u64(frame: &mut [u8], offset: usize, value: u64) {
    frame[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

fn get_u64(frame: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(frame[offset..offset + 8].try_into().unwrap())
}

/// A frame with a new payload, consistent length field and a valid checksum.
fn with_payload(frame: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = frame[..HEADER_LEN].to_vec();
    out[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&[0; CHECKSUM_LEN]);
    reseal(&mut out);
    out
}

fn payload(frame: &[u8]) -> &[u8] {
    &frame[HEADER_LEN..frame.len() - CHECKSUM_LEN]
}

fn assert_format_err<T: std::fmt::Debug>(r: heformer::Result<T>, what: &str, needle: &str) {
    match r {
        Err(Error::Format { what: w, detail }) => {
            assert_eq!(w, what, "detail: {detail}");
            assert!(
                detail.contains(needle),
                "`{detail}` does not mention `{needle}`"
            );
        }
        other => panic!("expected a {what} format error mentioning `{needle}`, got {other:?}"),
    }
}

struct Objects {
    f: Fixture,
    values: Vec<Complex>,
    ct: Ciphertext,
    rlk: RelinearizationKey,
    gks: GaloisKeys,
    pt: Plaintext,
}

fn objects(seed: u64) -> Objects {
    let mut f = Fixture::new(PRESET, ROTATIONS, seed);
    let values = f.random_values(f.slots(), 1.0);
    let ct = f.encrypt(&values);
    let rlk = f.evaluator.keys().relinearization.clone().unwrap();
    let gks = f.evaluator.keys().galois.clone();
    let pt = f
        .encoder
        .encode_complex(&values, 1, f.params.default_scale())
        .unwrap();
    Objects {
        f,
        values,
        ct,
        rlk,
        gks,
        pt,
    }
}

/// One valid frame of every kind, with its kind.
fn all_frames(o: &Objects) -> Vec<(ObjectKind, Vec<u8>)> {
    let ctx = &o.f.ctx;
    vec![
        (
            ObjectKind::Parameters,
            serialize::parameters_to_bytes(o.f.params.literal()).unwrap(),
        ),
        (
            ObjectKind::PublicKey,
            serialize::public_key_to_bytes(ctx, &o.f.pk).unwrap(),
        ),
        (
            ObjectKind::RelinearizationKey,
            serialize::relinearization_key_to_bytes(ctx, &o.rlk).unwrap(),
        ),
        (
            ObjectKind::GaloisKeys,
            serialize::galois_keys_to_bytes(ctx, &o.gks).unwrap(),
        ),
        (
            ObjectKind::Plaintext,
            serialize::plaintext_to_bytes(ctx, &o.pt).unwrap(),
        ),
        (
            ObjectKind::Ciphertext,
            serialize::ciphertext_to_bytes(ctx, &o.ct).unwrap(),
        ),
        (
            ObjectKind::SecretKey,
            serialize::secret_key_to_bytes(ctx, &o.f.sk).unwrap(),
        ),
    ]
}

/// Decodes `bytes` as `kind` from memory; `Ok(())` when accepted.
fn decode(ctx: &CkksContext, kind: ObjectKind, bytes: &[u8]) -> heformer::Result<()> {
    match kind {
        ObjectKind::Parameters => serialize::parameters_from_bytes(bytes).map(drop),
        ObjectKind::PublicKey => serialize::public_key_from_bytes(ctx, bytes).map(drop),
        ObjectKind::RelinearizationKey => {
            serialize::relinearization_key_from_bytes(ctx, bytes).map(drop)
        }
        ObjectKind::GaloisKeys => serialize::galois_keys_from_bytes(ctx, bytes).map(drop),
        ObjectKind::Plaintext => serialize::plaintext_from_bytes(ctx, bytes).map(drop),
        ObjectKind::Ciphertext => serialize::ciphertext_from_bytes(ctx, bytes).map(drop),
        ObjectKind::SecretKey => serialize::secret_key_from_bytes(ctx, bytes).map(drop),
    }
}

/// Reads `bytes` as `kind` from a stream.
fn read_stream(ctx: &CkksContext, kind: ObjectKind, mut bytes: &[u8]) -> heformer::Result<()> {
    let r = &mut bytes;
    match kind {
        ObjectKind::Parameters => serialize::read_parameters(r).map(drop),
        ObjectKind::PublicKey => serialize::read_public_key(ctx, r).map(drop),
        ObjectKind::RelinearizationKey => serialize::read_relinearization_key(ctx, r).map(drop),
        ObjectKind::GaloisKeys => serialize::read_galois_keys(ctx, r).map(drop),
        ObjectKind::Plaintext => serialize::read_plaintext(ctx, r).map(drop),
        ObjectKind::Ciphertext => serialize::read_ciphertext(ctx, r).map(drop),
        ObjectKind::SecretKey => serialize::read_secret_key(ctx, r).map(drop),
    }
}

fn assert_close(what: &str, got: &[Complex], want: &[Complex], bits: f64) {
    let stats = PrecisionStats::compare(want, &got[..want.len()]);
    assert!(
        stats.min_bits >= bits,
        "{what}: {:.1} bits < {bits:.1}",
        stats.min_bits
    );
}

// ----- round trips -----------------------------------------------------------------

#[test]
fn parameters_round_trip() {
    for name in ["TEST_INSECURE_N10", "TEST_INSECURE_N11", "PN15_128"] {
        let params = Parameters::preset(name).unwrap();
        let bytes = serialize::parameters_to_bytes(params.literal()).unwrap();
        assert_eq!(&bytes[0..4], b"HEFM");
        assert_eq!(
            u16::from_le_bytes([bytes[4], bytes[5]]),
            serialize::FORMAT_VERSION
        );
        assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 1);
        assert_eq!(get_u64(&bytes, 8), 0, "a parameter set carries id 0");
        assert_eq!(
            get_u64(&bytes, 16) as usize,
            bytes.len() - HEADER_LEN - CHECKSUM_LEN
        );
        let literal = serialize::parameters_from_bytes(&bytes).unwrap();
        assert_eq!(&literal, params.literal());
        assert_eq!(literal.validate().unwrap().id(), params.id());
        assert_eq!(serialize::parameters_to_bytes(&literal).unwrap(), bytes);
        let mut stream = Vec::new();
        serialize::write_parameters(params.literal(), &mut stream).unwrap();
        assert_eq!(stream, bytes);
        assert_eq!(
            &serialize::read_parameters(&mut stream.as_slice()).unwrap(),
            params.literal()
        );
    }
}

#[test]
fn key_round_trips() {
    let mut o = objects(11);
    let ctx = o.f.ctx.clone();
    let n = ctx.n();
    let slots = o.f.slots();
    let scale = o.f.params.default_scale();

    // Secret key: same coefficients; it decrypts.
    let sk_bytes = serialize::secret_key_to_bytes(&ctx, &o.f.sk).unwrap();
    assert_eq!(sk_bytes.len(), HEADER_LEN + 8 + n + CHECKSUM_LEN);
    let sk = serialize::secret_key_from_bytes(&ctx, &sk_bytes).unwrap();
    assert_eq!(sk.coefficients(), o.f.sk.coefficients());
    assert_eq!(sk.params_id(), o.f.params.id());
    assert_eq!(serialize::secret_key_to_bytes(&ctx, &sk).unwrap(), sk_bytes);
    let decryptor = Decryptor::new(ctx.clone(), sk).unwrap();
    let got =
        o.f.encoder
            .decode(&decryptor.decrypt(&o.ct).unwrap())
            .unwrap();
    assert_close(
        "loaded secret key",
        &got,
        &o.values,
        o.f.required_bits(scale),
    );

    // Public key: encryptions under the loaded key decrypt.
    let pk_bytes = serialize::public_key_to_bytes(&ctx, &o.f.pk).unwrap();
    let pk = serialize::public_key_from_bytes(&ctx, &pk_bytes).unwrap();
    assert_eq!(serialize::public_key_to_bytes(&ctx, &pk).unwrap(), pk_bytes);
    let mut enc =
        Encryptor::new(ctx.clone(), EncryptionKey::Public(pk), Prng::from_seed(5)).unwrap();
    let v = o.f.random_values(slots, 1.0);
    let pt =
        o.f.encoder
            .encode_complex(&v, o.f.params.max_level(), scale)
            .unwrap();
    let ct = enc.encrypt(&pt).unwrap();
    o.f.assert_close("encryption under the loaded public key", &ct, &v);

    // Relinearization and Galois keys: an evaluator built from the loaded keys works.
    let rlk_bytes = serialize::relinearization_key_to_bytes(&ctx, &o.rlk).unwrap();
    let rlk = serialize::relinearization_key_from_bytes(&ctx, &rlk_bytes).unwrap();
    assert_eq!(
        serialize::relinearization_key_to_bytes(&ctx, &rlk).unwrap(),
        rlk_bytes
    );
    let gk_bytes = serialize::galois_keys_to_bytes(&ctx, &o.gks).unwrap();
    let gks = serialize::galois_keys_from_bytes(&ctx, &gk_bytes).unwrap();
    assert_eq!(gks.elements(), o.gks.elements());
    assert_eq!(gks.len(), ROTATIONS.len() + 1);
    assert_eq!(
        serialize::galois_keys_to_bytes(&ctx, &gks).unwrap(),
        gk_bytes
    );
    let ev = Evaluator::new(
        ctx.clone(),
        EvaluationKeys {
            relinearization: Some(rlk),
            galois: gks,
        },
    )
    .unwrap();
    let mut prod = ev.mul_relin_new(&o.ct, &ct).unwrap();
    ev.rescale_assign(&mut prod).unwrap();
    let want: Vec<Complex> = o.values.iter().zip(&v).map(|(x, y)| *x * *y).collect();
    o.f.assert_close("product with the loaded relinearization key", &prod, &want);
    for &k in ROTATIONS {
        let rot = ev.rotate_new(&o.ct, k).unwrap();
        let want: Vec<Complex> = (0..slots)
            .map(|j| o.values[(j + k as usize) % slots])
            .collect();
        o.f.assert_close("rotation with a loaded Galois key", &rot, &want);
    }
    let conj = ev.conjugate_new(&o.ct).unwrap();
    let want: Vec<Complex> = o.values.iter().map(|x| Complex::new(x.re, -x.im)).collect();
    o.f.assert_close("conjugation with a loaded Galois key", &conj, &want);

    // An empty Galois key set round-trips too.
    let empty = serialize::galois_keys_to_bytes(&ctx, &GaloisKeys::default()).unwrap();
    assert!(serialize::galois_keys_from_bytes(&ctx, &empty)
        .unwrap()
        .is_empty());
}

#[test]
fn plaintext_and_ciphertext_round_trips() {
    let mut o = objects(12);
    let ctx = o.f.ctx.clone();
    let scale = o.f.params.default_scale();

    // Plaintexts at several levels and slot counts.
    for (level, slots) in [
        (0usize, 1usize),
        (1, 4),
        (o.f.params.max_level(), o.f.slots()),
    ] {
        let v = o.f.random_values(slots, 2.0);
        let pt = o.f.encoder.encode_complex(&v, level, scale).unwrap();
        let bytes = serialize::plaintext_to_bytes(&ctx, &pt).unwrap();
        assert_eq!(
            bytes.len(),
            HEADER_LEN + 32 + 8 * ctx.words_at(level) + CHECKSUM_LEN
        );
        let back = serialize::plaintext_from_bytes(&ctx, &bytes).unwrap();
        assert_eq!(
            (back.level(), back.slots(), back.scale()),
            (level, slots, scale)
        );
        assert_eq!(
            o.f.encoder.decode(&back).unwrap(),
            o.f.encoder.decode(&pt).unwrap()
        );
        assert_eq!(serialize::plaintext_to_bytes(&ctx, &back).unwrap(), bytes);
    }

    // A fresh ciphertext, and one rescaled to a lower level with a non-default scale.
    let ct_bytes = serialize::ciphertext_to_bytes(&ctx, &o.ct).unwrap();
    let back = serialize::ciphertext_from_bytes(&ctx, &ct_bytes).unwrap();
    assert_eq!(
        (back.level(), back.degree(), back.scale()),
        (o.ct.level(), 1, o.ct.scale())
    );
    assert_eq!(o.f.decrypt(&back), o.f.decrypt(&o.ct));
    o.f.assert_close("loaded ciphertext", &back, &o.values);
    assert_eq!(
        serialize::ciphertext_to_bytes(&ctx, &back).unwrap(),
        ct_bytes
    );

    let mut low = o.f.evaluator.mul_relin_new(&o.ct, &o.ct).unwrap();
    o.f.evaluator.rescale_assign(&mut low).unwrap();
    let squares: Vec<Complex> = o.values.iter().map(|x| *x * *x).collect();
    let bytes = serialize::ciphertext_to_bytes(&ctx, &low).unwrap();
    let back = serialize::ciphertext_from_bytes(&ctx, &bytes).unwrap();
    assert_eq!((back.level(), back.scale()), (low.level(), low.scale()));
    o.f.assert_close("loaded rescaled ciphertext", &back, &squares);
    assert_eq!(serialize::ciphertext_to_bytes(&ctx, &back).unwrap(), bytes);

    // Degree 2: the loaded tensor decrypts, and relinearizes to the same result.
    let tensor = o.f.evaluator.tensor_new(&o.ct, &o.ct).unwrap();
    let bytes = serialize::ciphertext_to_bytes(&ctx, &tensor).unwrap();
    assert_eq!(get_u64(&bytes, HEADER_LEN + 24), 2, "degree field");
    assert_eq!(
        bytes.len(),
        HEADER_LEN + 32 + 3 * 8 * ctx.words_at(tensor.level()) + CHECKSUM_LEN
    );
    let back = serialize::ciphertext_from_bytes(&ctx, &bytes).unwrap();
    assert_eq!(back.degree(), 2);
    assert_eq!(o.f.decrypt(&back), o.f.decrypt(&tensor));
    assert_eq!(serialize::ciphertext_to_bytes(&ctx, &back).unwrap(), bytes);
    let mut relin = back.clone();
    o.f.evaluator.relinearize_assign(&mut relin).unwrap();
    o.f.evaluator.rescale_assign(&mut relin).unwrap();
    o.f.assert_close("loaded degree-2 ciphertext, relinearized", &relin, &squares);
}

#[test]
fn concatenated_frames_in_one_stream() {
    let o = objects(13);
    let ctx = &o.f.ctx;
    let mut stream = Vec::new();
    serialize::write_parameters(o.f.params.literal(), &mut stream).unwrap();
    serialize::write_ciphertext(ctx, &o.ct, &mut stream).unwrap();
    serialize::write_public_key(ctx, &o.f.pk, &mut stream).unwrap();
    serialize::write_ciphertext(ctx, &o.ct, &mut stream).unwrap();
    let mut r = stream.as_slice();
    assert_eq!(
        &serialize::read_parameters(&mut r).unwrap(),
        o.f.params.literal()
    );
    let a = serialize::read_ciphertext(ctx, &mut r).unwrap();
    serialize::read_public_key(ctx, &mut r).unwrap();
    let b = serialize::read_ciphertext(ctx, &mut r).unwrap();
    assert!(r.is_empty());
    assert_eq!(o.f.decrypt(&a), o.f.decrypt(&b));
    // The stream is exhausted: the next read is a truncation, not a panic.
    assert_format_err(
        serialize::read_ciphertext(ctx, &mut r),
        "ciphertext",
        "truncated",
    );
    // Through a `dyn` reader and writer.
    let mut out: Vec<u8> = Vec::new();
    let w: &mut dyn std::io::Write = &mut out;
    serialize::write_ciphertext(ctx, &o.ct, w).unwrap();
    let mut slice = out.as_slice();
    let r: &mut dyn std::io::Read = &mut slice;
    serialize::read_ciphertext(ctx, r).unwrap();
}

#[test]
fn save_and_load_files() {
    let o = objects(14);
    let ctx = &o.f.ctx;
    let dir = std::env::temp_dir().join(format!("heformer-serialize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name);

    serialize::save_parameters(o.f.params.literal(), path("params.hefm")).unwrap();
    assert_eq!(
        &serialize::load_parameters(path("params.hefm")).unwrap(),
        o.f.params.literal()
    );
    serialize::save_ciphertext(ctx, &o.ct, path("ct.hefm")).unwrap();
    let ct = serialize::load_ciphertext(ctx, path("ct.hefm")).unwrap();
    assert_eq!(o.f.decrypt(&ct), o.f.decrypt(&o.ct));
    assert_eq!(
        std::fs::read(path("ct.hefm")).unwrap(),
        serialize::ciphertext_to_bytes(ctx, &o.ct).unwrap()
    );
    serialize::save_plaintext(ctx, &o.pt, path("pt.hefm")).unwrap();
    serialize::load_plaintext(ctx, path("pt.hefm")).unwrap();
    serialize::save_public_key(ctx, &o.f.pk, path("pk.hefm")).unwrap();
    serialize::load_public_key(ctx, path("pk.hefm")).unwrap();
    serialize::save_relinearization_key(ctx, &o.rlk, path("rlk.hefm")).unwrap();
    serialize::load_relinearization_key(ctx, path("rlk.hefm")).unwrap();
    serialize::save_galois_keys(ctx, &o.gks, path("gk.hefm")).unwrap();
    serialize::load_galois_keys(ctx, path("gk.hefm")).unwrap();
    serialize::save_secret_key(ctx, &o.f.sk, path("sk.hefm")).unwrap();
    serialize::load_secret_key(ctx, path("sk.hefm")).unwrap();
    // A file of another kind, trailing bytes in a file, a missing file.
    assert_format_err(
        serialize::load_ciphertext(ctx, path("pk.hefm")),
        "ciphertext",
        "public key",
    );
    let mut bytes = std::fs::read(path("ct.hefm")).unwrap();
    bytes.push(0);
    std::fs::write(path("ct2.hefm"), &bytes).unwrap();
    assert_format_err(
        serialize::load_ciphertext(ctx, path("ct2.hefm")),
        "ciphertext",
        "trailing",
    );
    match serialize::load_ciphertext(ctx, path("missing.hefm")) {
        Err(Error::Io { context, .. }) => assert!(context.contains("missing.hefm"), "{context}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    match serialize::save_ciphertext(ctx, &o.ct, dir.join("no-such-dir").join("ct.hefm")) {
        Err(Error::Io { context, .. }) => assert!(context.contains("no-such-dir"), "{context}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----- rejection -----------------------------------------------------------------------

#[test]
fn truncations_are_rejected() {
    let o = objects(21);
    let ctx = &o.f.ctx;
    for (kind, frame) in all_frames(&o) {
        let len = frame.len();
        let payload_len = len - HEADER_LEN - CHECKSUM_LEN;
        for cut in [
            0,
            1,
            HEADER_LEN - 1,
            HEADER_LEN,
            HEADER_LEN + payload_len / 2,
            len - CHECKSUM_LEN,
            len - 1,
        ] {
            let bytes = &frame[..cut];
            for r in [decode(ctx, kind, bytes), read_stream(ctx, kind, bytes)] {
                assert_format_err(r, kind.name(), "truncated");
            }
        }
        decode(ctx, kind, &frame).unwrap();
        read_stream(ctx, kind, &frame).unwrap();
    }
}

#[test]
fn random_byte_flips_are_rejected() {
    let o = objects(22);
    let ctx = &o.f.ctx;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x5eed);
    for (kind, frame) in all_frames(&o) {
        let mut bytes = frame.clone();
        for _ in 0..200 {
            let at = rng.random_range(0..bytes.len());
            let flip: u8 = rng.random_range(1..=255);
            bytes[at] ^= flip;
            let r = decode(ctx, kind, &bytes);
            if at >= HEADER_LEN {
                // Payload or checksum: the checksum catches it.
                assert_format_err(r, kind.name(), "checksum");
            } else {
                assert!(
                    r.is_err(),
                    "{kind}: header byte {at} flipped by {flip:#04x} accepted"
                );
            }
            assert!(
                read_stream(ctx, kind, &bytes).is_err(),
                "{kind}: stream read of a flipped byte accepted"
            );
            bytes[at] ^= flip;
        }
        assert_eq!(bytes, frame);
    }
}

#[test]
fn header_fields_are_checked() {
    let o = objects(23);
    let ctx = &o.f.ctx;
    let ct = serialize::ciphertext_to_bytes(ctx, &o.ct).unwrap();

    let mut bad = ct.clone();
    bad[0..4].copy_from_slice(b"HEFX");
    reseal(&mut bad);
    assert_format_err(
        serialize::ciphertext_from_bytes(ctx, &bad),
        "ciphertext",
        "magic",
    );

    for version in [0u16, 1, 3, u16::MAX] {
        let mut bad = ct.clone();
        bad[4..6].copy_from_slice(&version.to_le_bytes());
        reseal(&mut bad);
        assert_format_err(
            serialize::ciphertext_from_bytes(ctx, &bad),
            "ciphertext",
            "version",
        );
    }

    for code in [0u16, 8, 999] {
        let mut bad = ct.clone();
        bad[6..8].copy_from_slice(&code.to_le_bytes());
        reseal(&mut bad);
        assert_format_err(
            serialize::ciphertext_from_bytes(ctx, &bad),
            "ciphertext",
            "unknown object kind",
        );
    }

    // Every kind read as every other kind.
    let frames = all_frames(&o);
    for (written, frame) in &frames {
        for (expected, _) in &frames {
            if written != expected {
                assert_format_err(
                    decode(ctx, *expected, frame),
                    expected.name(),
                    written.name(),
                );
            }
        }
    }
    let pk = serialize::public_key_to_bytes(ctx, &o.f.pk).unwrap();
    assert_format_err(
        serialize::ciphertext_from_bytes(ctx, &pk),
        "ciphertext",
        "public key",
    );

    // A parameter-set frame must carry id 0.
    let mut params = serialize::parameters_to_bytes(o.f.params.literal()).unwrap();
    set_u64(&mut params, 8, 7);
    reseal(&mut params);
    assert_format_err(
        serialize::parameters_from_bytes(&params),
        "parameters",
        "id 0",
    );

    // Trailing garbage after a valid frame.
    for (kind, mut frame) in frames {
        frame.extend_from_slice(b"garbage");
        assert_format_err(decode(ctx, kind, &frame), kind.name(), "7 trailing bytes");
    }
}

#[test]
fn another_parameter_set_is_a_mismatch() {
    let o = objects(24);
    let ctx10 = &o.f.ctx;
    let mut f11 = Fixture::new("TEST_INSECURE_N11", &[], 25);
    let v = f11.random_values(4, 1.0);
    let ct11 = f11.encrypt(&v);
    let bytes = serialize::ciphertext_to_bytes(&f11.ctx, &ct11).unwrap();
    let check = |r: heformer::Result<Ciphertext>| match r {
        Err(Error::ParameterMismatch { left, right, .. }) => {
            assert_eq!(left, o.f.params.id());
            assert_eq!(right, f11.params.id());
        }
        other => panic!("expected a parameter mismatch, got {other:?}"),
    };
    check(serialize::ciphertext_from_bytes(ctx10, &bytes));
    check(serialize::read_ciphertext(ctx10, &mut bytes.as_slice()));
    let sk = serialize::secret_key_to_bytes(&f11.ctx, &f11.sk).unwrap();
    assert!(matches!(
        serialize::secret_key_from_bytes(ctx10, &sk),
        Err(Error::ParameterMismatch { .. })
    ));
    // Writers refuse objects of another set.
    assert!(matches!(
        serialize::ciphertext_to_bytes(ctx10, &ct11),
        Err(Error::ParameterMismatch { .. })
    ));
    assert!(matches!(
        serialize::public_key_to_bytes(ctx10, &f11.pk),
        Err(Error::ParameterMismatch { .. })
    ));
}

#[test]
fn huge_payload_lengths_are_rejected_without_allocating() {
    let o = objects(26);
    let ctx = &o.f.ctx;
    for (kind, frame) in all_frames(&o) {
        for len in [u64::MAX, u64::MAX / 2, 1 << 62, 1 << 40] {
            let mut bad = frame.clone();
            set_u64(&mut bad, 16, len);
            reseal(&mut bad);
            assert_format_err(decode(ctx, kind, &bad), kind.name(), "exceeds");
            assert_format_err(read_stream(ctx, kind, &bad), kind.name(), "exceeds");
        }
    }
    // A length within the bound (N Galois keys, about 200 MB) but beyond the
    // data: the stream reader grows its buffer only with bytes present.
    let mut gk = serialize::galois_keys_to_bytes(ctx, &o.gks).unwrap();
    set_u64(&mut gk, 16, 150_000_000);
    reseal(&mut gk);
    assert_format_err(
        read_stream(ctx, ObjectKind::GaloisKeys, &gk),
        "galois keys",
        "truncated",
    );
    assert_format_err(
        decode(ctx, ObjectKind::GaloisKeys, &gk),
        "galois keys",
        "truncated",
    );
    // A huge key count inside a correctly sealed payload.
    let mut p = payload(&gk).to_vec();
    set_u64(&mut p, 0, u64::MAX);
    let bad = with_payload(&gk, &p);
    assert_format_err(
        decode(ctx, ObjectKind::GaloisKeys, &bad),
        "galois keys",
        "keys",
    );
}

#[test]
fn sealed_but_invalid_payloads_are_rejected() {
    let o = objects(27);
    let ctx = &o.f.ctx;
    let n = ctx.n();
    let max_level = o.f.params.max_level() as u64;
    let q0 = o.f.params.q()[0];

    // Ciphertext fields: level, scale, slots, degree, words; offsets in the payload.
    let ct = serialize::ciphertext_to_bytes(ctx, &o.ct).unwrap();
    let edit = |offset: usize, value: u64| {
        let mut p = payload(&ct).to_vec();
        set_u64(&mut p, offset, value);
        with_payload(&ct, &p)
    };
    let ct_err = |bytes: Vec<u8>, needle: &str| {
        assert_format_err(
            serialize::ciphertext_from_bytes(ctx, &bytes),
            "ciphertext",
            needle,
        );
        assert_format_err(
            serialize::read_ciphertext(ctx, &mut bytes.as_slice()),
            "ciphertext",
            needle,
        );
    };
    ct_err(edit(0, max_level + 1), "level");
    ct_err(edit(0, u64::MAX), "level");
    for scale in [f64::NAN, f64::INFINITY, -1.0, 0.0, 0.5] {
        ct_err(edit(8, scale.to_bits()), "scale");
    }
    for slots in [0u64, 3, 24, n as u64, 2 * n as u64, u64::MAX] {
        ct_err(edit(16, slots), "slots");
    }
    for degree in [0u64, 3, u64::MAX] {
        ct_err(edit(24, degree), "degree");
    }
    // A lower level in the prefix than the words present: the lengths disagree.
    ct_err(edit(0, max_level - 1), "needs");
    // Degree 2 declared, only two parts present.
    ct_err(edit(24, 2), "needs");
    // Unreduced words: in limb 0 (>= q_0) and the last word of the last limb.
    ct_err(edit(32, q0), "not reduced");
    ct_err(edit(32 + 8 * 7, u64::MAX), "not reduced");
    let last = payload(&ct).len() - 8;
    ct_err(edit(last, u64::MAX), "not reduced");

    // Plaintext: degree must be 0.
    let pt = serialize::plaintext_to_bytes(ctx, &o.pt).unwrap();
    let mut p = payload(&pt).to_vec();
    set_u64(&mut p, 24, 1);
    assert_format_err(
        serialize::plaintext_from_bytes(ctx, &with_payload(&pt, &p)),
        "plaintext",
        "degree",
    );

    // Public key: the limb count must be the full basis' (version 1 stored Q only).
    let pk = serialize::public_key_to_bytes(ctx, &o.f.pk).unwrap();
    let mut p = payload(&pk).to_vec();
    set_u64(&mut p, 0, max_level + 1);
    assert_format_err(
        serialize::public_key_from_bytes(ctx, &with_payload(&pk, &p)),
        "public key",
        "limbs",
    );
    let mut p = payload(&pk).to_vec();
    set_u64(&mut p, 8, q0 + 1);
    assert_format_err(
        serialize::public_key_from_bytes(ctx, &with_payload(&pk, &p)),
        "public key",
        "not reduced",
    );

    // Relinearization key: digit and limb counts, and a word of a special prime.
    let rlk = serialize::relinearization_key_to_bytes(ctx, &o.rlk).unwrap();
    for (offset, needle) in [(0usize, "digits"), (8, "limbs")] {
        let mut p = payload(&rlk).to_vec();
        let old = get_u64(&p, offset);
        set_u64(&mut p, offset, old + 1);
        assert_format_err(
            serialize::relinearization_key_from_bytes(ctx, &with_payload(&rlk, &p)),
            "relinearization key",
            needle,
        );
    }
    let mut p = payload(&rlk).to_vec();
    let limbs = get_u64(&p, 8) as usize;
    // The first word of the last limb (the last special prime) of b_0.
    let p_last = *o.f.params.p().last().unwrap();
    set_u64(&mut p, 16 + 8 * n * (limbs - 1), p_last);
    assert_format_err(
        serialize::relinearization_key_from_bytes(ctx, &with_payload(&rlk, &p)),
        "relinearization key",
        "not reduced",
    );
    // A payload one word short (the header length agrees, the fields do not).
    let short = with_payload(&rlk, &payload(&rlk)[..payload(&rlk).len() - 8]);
    assert_format_err(
        serialize::relinearization_key_from_bytes(ctx, &short),
        "relinearization key",
        "needs",
    );

    // Galois keys: elements odd, below 2N, strictly increasing.
    let gk = serialize::galois_keys_to_bytes(ctx, &o.gks).unwrap();
    let key_len = (payload(&gk).len() - 8) / o.gks.len();
    for (element, needle) in [
        (4u64, "not odd"),
        (2 * n as u64 + 1, "below 2N"),
        (u64::MAX, "below 2N"),
    ] {
        let mut p = payload(&gk).to_vec();
        set_u64(&mut p, 8, element);
        assert_format_err(
            serialize::galois_keys_from_bytes(ctx, &with_payload(&gk, &p)),
            "galois keys",
            needle,
        );
    }
    let mut p = payload(&gk).to_vec();
    let first = get_u64(&p, 8);
    set_u64(&mut p, 8 + key_len, first);
    assert_format_err(
        serialize::galois_keys_from_bytes(ctx, &with_payload(&gk, &p)),
        "galois keys",
        "increasing",
    );
    let mut p = payload(&gk).to_vec();
    set_u64(&mut p, 0, o.gks.len() as u64 + 1);
    assert_format_err(
        serialize::galois_keys_from_bytes(ctx, &with_payload(&gk, &p)),
        "galois keys",
        "needs",
    );

    // Secret key: count N and ternary coefficients.
    let sk = serialize::secret_key_to_bytes(ctx, &o.f.sk).unwrap();
    for bad in [2u8, 0x80, 0xfe] {
        let mut p = payload(&sk).to_vec();
        p[8 + n / 2] = bad;
        assert_format_err(
            serialize::secret_key_from_bytes(ctx, &with_payload(&sk, &p)),
            "secret key",
            "coefficient",
        );
    }
    let mut p = payload(&sk).to_vec();
    set_u64(&mut p, 0, n as u64 - 1);
    assert_format_err(
        serialize::secret_key_from_bytes(ctx, &with_payload(&sk, &p)),
        "secret key",
        "coefficients",
    );
    let short = with_payload(&sk, &payload(&sk)[..8 + n - 1]);
    assert_format_err(
        serialize::secret_key_from_bytes(ctx, &short),
        "secret key",
        "needs",
    );

    // Parameters: invalid JSON, an invalid set, and a recorded id that does not match.
    let params = serialize::parameters_to_bytes(o.f.params.literal()).unwrap();
    let mut p = payload(&params).to_vec();
    p.truncate(p.len() - 1);
    assert_format_err(
        serialize::parameters_from_bytes(&with_payload(&params, &p)),
        "parameters",
        "JSON",
    );
    let mut literal = o.f.params.literal().clone();
    literal.dnum = 0;
    let mut p = payload(&params)[..8].to_vec();
    p.extend_from_slice(&serde_json::to_vec(&literal).unwrap());
    assert_format_err(
        serialize::parameters_from_bytes(&with_payload(&params, &p)),
        "parameters",
        "invalid parameter set",
    );
    let mut p = payload(&params).to_vec();
    set_u64(&mut p, 0, 12345);
    assert_format_err(
        serialize::parameters_from_bytes(&with_payload(&params, &p)),
        "parameters",
        "id",
    );
    let mut p = payload(&params).to_vec();
    p.truncate(4);
    assert_format_err(
        serialize::parameters_from_bytes(&with_payload(&params, &p)),
        "parameters",
        "truncated",
    );
}

#[test]
fn writers_refuse_malformed_objects() {
    let o = objects(28);
    let ctx = o.f.ctx.clone();
    let keygen = KeyGenerator::new(ctx.clone(), Prng::from_seed(1));
    let mut coefficients = o.f.sk.coefficients().to_vec();
    coefficients[3] = 2;
    let sk = keygen.secret_key_from_coefficients(coefficients).unwrap();
    assert!(matches!(
        serialize::secret_key_to_bytes(&ctx, &sk),
        Err(Error::OutOfRange {
            op: "write_secret_key",
            ..
        })
    ));
    let mut literal = o.f.params.literal().clone();
    literal.log_n = 3;
    assert!(matches!(
        serialize::parameters_to_bytes(&literal),
        Err(Error::InvalidParameters(_))
    ));
}

/// A Galois key capped at a level has that level's digits only: it rotates
/// ciphertexts up to its level, refuses those above with a clear error,
/// and round-trips beside full keys; a digit count of 0 or above the
/// parameter set's is rejected.
#[test]
fn level_capped_galois_keys() {
    let mut f = Fixture::new(PRESET, &[], 41);
    let params = f.params.clone();
    let g = heformer::ckks::embedding::galois_element_for_rotation(params.log_n(), 5);
    let full_g = heformer::ckks::embedding::galois_element_for_rotation(params.log_n(), 3);
    let mut keygen = KeyGenerator::new(f.ctx.clone(), Prng::from_seed(41));
    // The fixture's secret, so that its decryptor reads the rotations.
    let capped = keygen.gen_galois_key_to_level(&f.sk, g, 1).unwrap();
    let full = keygen.gen_galois_key(&f.sk, full_g).unwrap();
    assert_eq!(capped.max_level(&params), 1);
    assert_eq!(full.max_level(&params), params.max_level());
    let mut galois = GaloisKeys::default();
    galois.insert(capped);
    galois.insert(full);
    let ctx = f.ctx.clone();
    let bytes = serialize::galois_keys_to_bytes(&ctx, &galois).unwrap();
    let galois = serialize::galois_keys_from_bytes(&ctx, &bytes).unwrap();
    assert_eq!(galois.get(g).unwrap().max_level(&params), 1);
    let relinearization = f.evaluator.keys().relinearization.clone();
    let ev = Evaluator::new(
        ctx.clone(),
        EvaluationKeys {
            relinearization,
            galois,
        },
    )
    .unwrap();
    let values = f.random_values(f.slots(), 1.0);
    let top = f.encrypt(&values);
    assert!(matches!(
        ev.rotate_new(&top, 5),
        Err(Error::LevelMismatch { .. })
    ));
    assert!(ev.rotate_new(&top, 3).is_ok());
    let mut low = top.try_clone().unwrap();
    ev.drop_level_assign(&mut low, top.level() - 1).unwrap();
    let rotated = f.decrypt(&ev.rotate_new(&low, 5).unwrap());
    let want: Vec<Complex> = (0..values.len())
        .map(|i| values[(i + 5) % values.len()])
        .collect();
    assert_close("capped rotation", &rotated, &want, 20.0);
    // The capped key is stored on the extended basis of its top level, the
    // full one on the full basis (each key: element, digit count, limb
    // count, digits), and a capped key claiming the full basis is refused.
    let frame = serialize::galois_keys_to_bytes(&ctx, &GaloisKeys::default()).unwrap();
    let mut p = payload(&bytes).to_vec();
    let ring = ctx.ring();
    let word = |p: &[u8], at: usize| u64::from_le_bytes(p[at..at + 8].try_into().unwrap()) as usize;
    let mut limbs_at = std::collections::BTreeMap::new();
    let mut at = 8;
    while at < p.len() {
        let (element, digits, limbs) = (word(&p, at), word(&p, at + 8), word(&p, at + 16));
        limbs_at.insert(element as u64, (at + 16, digits, limbs));
        at += 24 + 2 * digits * 8 * params.n() * limbs;
    }
    assert_eq!(at, p.len());
    let capped_basis = ring.extended_basis(1).len();
    assert!(capped_basis < ring.full_basis().len());
    assert_eq!(limbs_at[&g].1, params.digits_at_level(1));
    assert_eq!(limbs_at[&g].2, capped_basis);
    assert_eq!(limbs_at[&full_g].2, ring.full_basis().len());
    let mut wrong = p.clone();
    set_u64(&mut wrong, limbs_at[&g].0, ring.full_basis().len() as u64);
    assert_format_err(
        serialize::galois_keys_from_bytes(&ctx, &with_payload(&frame, &wrong)),
        "galois keys",
        "limbs",
    );
    // The digit count of the first key.
    for digits in [0u64, params.dnum() as u64 + 1] {
        set_u64(&mut p, 16, digits);
        assert_format_err(
            serialize::galois_keys_from_bytes(&ctx, &with_payload(&frame, &p)),
            "galois keys",
            "digits",
        );
    }
}
