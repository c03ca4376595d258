#!/usr/bin/env python3
"""Times Lattigo's CKKS bootstrapping on one core, for comparison with
`heformer bench boot --params PN16_BOOT_128_SPARSE_H192 --threads 1`.

Lattigo (v6) comes compiled inside the PyPI wheel `orion-fhe` as
`orion/backend/lattigo/lattigo-linux.so`; this script calls that library's
exported functions directly through ctypes (Orion's own Python layer needs
PyTorch, which the comparison does not). Install with
`pip install --no-deps orion-fhe`.

Setting: N = 2^16, full 2^15 slots, secret of Hamming weight 192, residual
chain q_0 = 60 bits and 9 levels of 40 bits (heformer's preset), scale
2^40; the bootstrapping levels are Lattigo's defaults, which Orion's library
appends. The library's interface encodes and decodes real values as 32-bit
floats, so inputs are real (uniform in [-1, 1)) and precision cannot show
above about 24 bits. Prints one JSON line with heformer's field names.

Run it single-threaded: GOMAXPROCS=1 (and `taskset -c 0` to pin).
"""

import argparse
import ctypes
import importlib.util
import json
import os
import random
import statistics
import sys
import time

from records import cpu_model, precision


class FloatArray(ctypes.Structure):
    _fields_ = [("Data", ctypes.POINTER(ctypes.c_float)), ("Length", ctypes.c_ulong)]


def load():
    spec = importlib.util.find_spec("orion")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("orion-fhe is not installed (pip install --no-deps orion-fhe)")
    root = list(spec.submodule_search_locations)[0]
    lib = ctypes.CDLL(os.path.join(root, "backend", "lattigo", "lattigo-linux.so"))
    int_p = ctypes.POINTER(ctypes.c_int)
    sig = {
        "NewScheme": ([ctypes.c_int, int_p, ctypes.c_int, int_p, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p], None),
        "NewKeyGenerator": ([], None), "GenerateSecretKey": ([], None),
        "GeneratePublicKey": ([], None), "GenerateRelinearizationKey": ([], None),
        "GenerateEvaluationKeys": ([], None), "NewEncoder": ([], None),
        "NewEncryptor": ([], None), "NewDecryptor": ([], None), "NewEvaluator": ([], None),
        "Encode": ([ctypes.POINTER(ctypes.c_float), ctypes.c_int, ctypes.c_int, ctypes.c_ulong],
                   ctypes.c_int),
        "Decode": ([ctypes.c_int], FloatArray),
        "Encrypt": ([ctypes.c_int], ctypes.c_int), "Decrypt": ([ctypes.c_int], ctypes.c_int),
        "GetCiphertextLevel": ([ctypes.c_int], ctypes.c_int),
        "NewBootstrapper": ([int_p, ctypes.c_int, ctypes.c_int], None),
        "Bootstrap": ([ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "FreeCArray": ([ctypes.c_void_p], None),
    }
    for name, (args, res) in sig.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, res
    return lib


def ints(values):
    return (ctypes.c_int * len(values))(*values), len(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--log-n", type=int, default=16)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    lib = load()
    logq = [60] + [40] * 9
    logp = [61] * 5
    t0 = time.perf_counter()
    lib.NewScheme(args.log_n, *ints(logq), *ints(logp), 40, 192, b"standard", b"", b"none")
    for f in ("NewKeyGenerator", "GenerateSecretKey", "GeneratePublicKey",
              "GenerateRelinearizationKey", "GenerateEvaluationKeys", "NewEncoder",
              "NewEncryptor", "NewDecryptor", "NewEvaluator"):
        getattr(lib, f)()
    slots = 1 << (args.log_n - 1)
    lib.NewBootstrapper(*ints(logp), slots)
    print(f"lattigo: N = 2^{args.log_n}, setup + keys {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)

    values = [rng.uniform(-1, 1) for _ in range(slots)]
    buf = (ctypes.c_float * slots)(*values)
    pt = lib.Encode(buf, slots, 0, 1 << 40)
    ct = lib.Encrypt(pt)
    out = lib.Bootstrap(ct, slots)  # warm-up
    times = []
    for _ in range(max(1, args.reps)):
        t = time.perf_counter()
        out = lib.Bootstrap(ct, slots)
        times.append((time.perf_counter() - t) * 1e3)
    res = lib.Decode(lib.Decrypt(out))
    got = [res.Data[i] for i in range(min(res.Length, slots))]
    lib.FreeCArray(ctypes.cast(res.Data, ctypes.c_void_p))
    mean_bits, min_bits, _ = precision(values, got)
    print(json.dumps({
        "suite": "boot", "op": "bootstrap", "backend": "lattigo-cpu", "device": cpu_model(),
        "params": f"lattigo (orion-fhe) N=2^{args.log_n} residual 60+9x40 scale 2^40 h=192",
        "log_n": args.log_n, "threads": 1,
        "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
        "reps": len(times),
        "precision_bits": mean_bits, "precision_min_bits": min_bits,
        "levels_left": lib.GetCiphertextLevel(out), "secret": "lattigo ternary h=192 (defaults)",
        "input": "real, float32 I/O",
    }))


if __name__ == "__main__":
    main()
