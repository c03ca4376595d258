#!/usr/bin/env python3
"""Times OpenFHE's CKKS HMult and rotation on one core, for comparison with
`heformer bench ckks --params PN16_128 --threads 1`.

Uses only the public API of the `openfhe` wheel from PyPI (OpenFHE's Python
bindings). Prints one JSON object per line, with the field names of heformer's
bench records:

    {"suite": "ckks", "op": "hmult" | "rotate", "backend": "openfhe-cpu", ...}

What is timed (median / min / max over --reps repetitions, after one untimed
warm-up run):

* hmult:  EvalMult(ct_a, ct_b) (tensor product + relinearization; with
          FIXEDMANUAL scaling it does not rescale) followed by Rescale, on two
          fresh ciphertexts at the top level (all limbs).
* rotate: EvalRotate(ct_a, 1) (automorphism + hybrid key switching) on a fresh
          ciphertext at the top level.

Precision is measured against plain complex arithmetic on the same random
inputs (real and imaginary parts uniform in [-1, 1), as in heformer's bench):
precision_bits = -log2(mean slot error) and precision_min_bits =
-log2(max slot error), the same definitions as heformer's bench records.

Run it single-threaded with OMP_NUM_THREADS=1 (OpenFHE parallelises with
OpenMP) and, to pin it, under `taskset -c 0` (benches/compare/run.sh does both).
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

import openfhe as fhe

from records import cpu_model, precision


def time_op(reps, f):
    """One untimed warm-up, then `reps` timed runs; (median, min, max) ms and the last output."""
    out = f()
    times = []
    for _ in range(max(reps, 1)):
        start = time.perf_counter()
        out = f()
        times.append((time.perf_counter() - start) * 1e3)
    return (statistics.median(times), min(times), max(times)), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log-n", type=int, default=16, help="log2 of the ring dimension (default 16)")
    ap.add_argument("--depth", type=int, default=23, help="multiplicative depth: limbs = depth + 1 (default 23)")
    ap.add_argument("--dnum", type=int, default=3, help="number of key-switching digits (default 3)")
    ap.add_argument("--scale-bits", type=int, default=50, help="SetScalingModSize (default 50)")
    ap.add_argument("--first-mod-bits", type=int, default=60, help="SetFirstModSize (default 60)")
    ap.add_argument("--reps", type=int, default=10, help="timed repetitions per op (default 10)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the random inputs (keys use OpenFHE's PRNG)")
    ap.add_argument(
        "--security",
        choices=["128", "none"],
        default="128",
        help="HEStd_128_classic (default) or HEStd_NotSet (only needed if OpenFHE refuses N for the modulus)",
    )
    args = ap.parse_args()

    threads = os.environ.get("OMP_NUM_THREADS")
    if threads != "1":
        print(f"warning: OMP_NUM_THREADS={threads!r}; set OMP_NUM_THREADS=1 for a one-core run", file=sys.stderr)

    n = 1 << args.log_n
    slots = n // 2
    limbs = args.depth + 1

    params = fhe.CCParamsCKKSRNS()
    params.SetRingDim(n)
    params.SetMultiplicativeDepth(args.depth)
    params.SetScalingModSize(args.scale_bits)
    params.SetFirstModSize(args.first_mod_bits)
    params.SetNumLargeDigits(args.dnum)
    params.SetKeySwitchTechnique(fhe.KeySwitchTechnique.HYBRID)
    params.SetScalingTechnique(fhe.ScalingTechnique.FIXEDMANUAL)
    params.SetSecretKeyDist(fhe.SecretKeyDist.UNIFORM_TERNARY)
    params.SetSecurityLevel(
        fhe.SecurityLevel.HEStd_128_classic if args.security == "128" else fhe.SecurityLevel.HEStd_NotSet
    )
    params.SetBatchSize(slots)
    params.SetCKKSDataType(fhe.CKKSDataType.COMPLEX)

    t0 = time.perf_counter()
    cc = fhe.GenCryptoContext(params)
    cc.Enable(fhe.PKESchemeFeature.PKE)
    cc.Enable(fhe.PKESchemeFeature.KEYSWITCH)
    cc.Enable(fhe.PKESchemeFeature.LEVELEDSHE)
    if cc.GetRingDimension() != n:
        raise SystemExit(f"OpenFHE chose ring dimension {cc.GetRingDimension()}, wanted {n}")

    keys = cc.KeyGen()
    cc.EvalMultKeyGen(keys.secretKey)
    cc.EvalRotateKeyGen(keys.secretKey, [1])
    print(f"openfhe: context + keys in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    rng = random.Random(args.seed)
    rand_vec = lambda: [complex(rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0)) for _ in range(slots)]
    a = rand_vec()
    b = rand_vec()
    # Encoded at the top level (level 0 in OpenFHE = all limbs), scale 2^scale_bits.
    ct_a = cc.Encrypt(keys.publicKey, cc.MakeCKKSPackedPlaintext(a))
    ct_b = cc.Encrypt(keys.publicKey, cc.MakeCKKSPackedPlaintext(b))
    # OpenFHE counts levels down from the top: a fresh FIXEDMANUAL ciphertext is at
    # level 0 and carries all depth + 1 limbs (the Python API does not expose the
    # limb count itself).
    if ct_a.GetLevel() != 0 or cc.GetMultiplicativeDepth() != args.depth:
        raise SystemExit(
            f"fresh ciphertext at level {ct_a.GetLevel()} of depth {cc.GetMultiplicativeDepth()}, "
            f"expected level 0 of depth {args.depth}"
        )

    def decrypt(ct):
        pt = cc.Decrypt(ct, keys.secretKey)
        pt.SetLength(slots)
        return pt.GetCKKSPackedValue()

    common = {
        "suite": "ckks",
        "backend": "openfhe-cpu",
        "device": cpu_model(),
        "params": f"openfhe N=2^{args.log_n} depth={args.depth} scale=2^{args.scale_bits} first={args.first_mod_bits} dnum={args.dnum}",
        "log_n": args.log_n,
        "limbs": limbs,
        "dnum": args.dnum,
        "threads": int(threads) if threads and threads.isdigit() else 0,
        "reps": max(args.reps, 1),
        "library": f"openfhe {fhe.__version__}",
        "security": "HEStd_128_classic" if args.security == "128" else "HEStd_NotSet",
    }

    def emit(op, t, want, ct):
        mean_bits, min_bits, _ = precision(want, decrypt(ct))
        rec = dict(common)
        rec.update(
            op=op,
            median_ms=t[0],
            min_ms=t[1],
            max_ms=t[2],
            precision_bits=mean_bits,
            precision_min_bits=min_bits,
        )
        # Key order as in heformer's records.
        order = ["suite", "op", "backend", "device", "params", "log_n", "limbs", "dnum", "threads",
                 "median_ms", "min_ms", "max_ms", "reps", "precision_bits", "precision_min_bits",
                 "library", "security"]
        print(json.dumps({k: rec[k] for k in order}), flush=True)

    # HMult: EvalMult relinearizes (FIXEDMANUAL: no automatic rescale), then Rescale.
    def hmult():
        return cc.Rescale(cc.EvalMult(ct_a, ct_b))

    t, prod = time_op(args.reps, hmult)
    if prod.GetLevel() != 1:
        raise SystemExit(f"hmult output at level {prod.GetLevel()}, expected 1 (one limb dropped)")
    emit("hmult", t, [x * y for x, y in zip(a, b)], prod)

    t, rot = time_op(args.reps, lambda: cc.EvalRotate(ct_a, 1))
    emit("rotate", t, [a[(j + 1) % slots] for j in range(slots)], rot)


if __name__ == "__main__":
    main()
