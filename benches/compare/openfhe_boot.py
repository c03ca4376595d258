#!/usr/bin/env python3
"""Times OpenFHE's CKKS bootstrapping on one core, for comparison with
`heformer bench boot --params PN16_BOOT_128_SPARSE_H192 --threads 1`.

Uses only the public API of the `openfhe` wheel from PyPI. The setting is
chosen to match heformer's preset as far as OpenFHE lets one choose: ring
dimension 2^16, full 2^15 complex slots, a sparse ternary secret, level
budget (3, 3) (three levels each for CoeffToSlot and SlotToCoeff), 9 levels
left after bootstrapping, 128-bit security by OpenFHE's own check, scaling
and first moduli from the command line (default 59/60 bits, OpenFHE's
recommended setting; it refuses heformer's 40-bit scale: the input's scale
degree exceeds its correction factor). Prints one JSON line with heformer's field names:

    {"suite": "boot", "op": "bootstrap", "backend": "openfhe-cpu",
     "median_ms": .., "precision_bits": .., "precision_min_bits": ..,
     "levels_left": .., "secret": "openfhe SPARSE_TERNARY", ...}

Precision: -log2 of the mean and the largest complex slot error after
bootstrapping a ciphertext at its last level, inputs uniform in [-1, 1)
(real and imaginary parts), as heformer measures it.

Run it single-threaded (OMP_NUM_THREADS=1, and `taskset -c 0` to pin).
"""

import argparse
import json
import random
import statistics
import sys
import time

import openfhe as fhe

from records import cpu_model, precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--scale-bits", type=int, default=59,
                    help="OpenFHE refuses 40 (the scale degree exceeds its correction factor)")
    ap.add_argument("--first-bits", type=int, default=60)
    ap.add_argument("--levels-after", type=int, default=9)
    ap.add_argument("--no-security-check", action="store_true",
                    help="HEStd_NotSet: OpenFHE asks for N = 2^17 at 128 bits for this depth "
                         "with 59-bit scales (its table ignores the sparse secret)")
    ap.add_argument("--log-n", type=int, default=16,
                    help="ring dimension exponent; below 16 the security check is off "
                         "(a functional check of the script only)")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    secret = fhe.SecretKeyDist.SPARSE_TERNARY
    level_budget = [3, 3]
    depth = args.levels_after + fhe.CryptoContext.GetBootstrapDepth(level_budget, secret)
    p = fhe.CCParamsCKKSRNS()
    p.SetSecretKeyDist(secret)
    secure = args.log_n >= 16 and not args.no_security_check
    p.SetSecurityLevel(fhe.SecurityLevel.HEStd_128_classic if secure
                       else fhe.SecurityLevel.HEStd_NotSet)
    p.SetRingDim(1 << args.log_n)
    p.SetScalingModSize(args.scale_bits)
    p.SetFirstModSize(args.first_bits)
    p.SetScalingTechnique(fhe.ScalingTechnique.FLEXIBLEAUTO)
    p.SetMultiplicativeDepth(depth)
    p.SetNumLargeDigits(3)
    p.SetCKKSDataType(fhe.CKKSDataType.COMPLEX)
    cc = fhe.GenCryptoContext(p)
    for feature in (fhe.PKESchemeFeature.PKE, fhe.PKESchemeFeature.KEYSWITCH,
                    fhe.PKESchemeFeature.LEVELEDSHE, fhe.PKESchemeFeature.ADVANCEDSHE,
                    fhe.PKESchemeFeature.FHE):
        cc.Enable(feature)
    slots = cc.GetRingDimension() // 2
    t0 = time.perf_counter()
    cc.EvalBootstrapSetup(level_budget)
    keys = cc.KeyGen()
    cc.EvalMultKeyGen(keys.secretKey)
    cc.EvalBootstrapKeyGen(keys.secretKey, slots)
    print(f"openfhe: N = 2^{args.log_n}, depth {depth}, setup + keys {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)

    values = [complex(rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(slots)]
    pt = cc.MakeCKKSPackedPlaintext(values, 1, depth - 1)
    ct = cc.Encrypt(keys.publicKey, pt)
    times = []
    out = cc.EvalBootstrap(ct)  # warm-up
    for _ in range(max(1, args.reps)):
        t = time.perf_counter()
        out = cc.EvalBootstrap(ct)
        times.append((time.perf_counter() - t) * 1e3)
    got = cc.Decrypt(out, keys.secretKey)
    got.SetLength(slots)
    decoded = got.GetCKKSPackedValue()
    mean_bits, min_bits, _ = precision(values, decoded[:slots])
    levels_left = depth - out.GetLevel()
    record = {
        "suite": "boot", "op": "bootstrap", "backend": "openfhe-cpu", "device": cpu_model(),
        "params": f"openfhe N=2^{args.log_n} scale={args.scale_bits} first={args.first_bits} budget=3,3",
        "log_n": args.log_n, "threads": 1,
        "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
        "reps": len(times),
        "precision_bits": mean_bits, "precision_min_bits": min_bits,
        "levels_left": levels_left, "secret": "openfhe SPARSE_TERNARY",
        "security": "HEStd_128_classic" if secure else "HEStd_NotSet",
        "library": f"openfhe {fhe.__version__ if hasattr(fhe, '__version__') else '1.x'}",
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
