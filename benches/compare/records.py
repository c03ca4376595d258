"""What the comparison scripts share: the machine's name and the precision
of a decrypted result, with the definitions of heformer's bench records."""

import math
import os
import sys


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def precision(want, got):
    """(mean bits, min bits, max abs error): -log2 of the mean / max complex slot error."""
    errors = [abs(w - g) for w, g in zip(want, got)]
    if len(errors) != len(want):
        raise SystemExit(f"decrypted {len(got)} slots, expected {len(want)}")
    bits = lambda e: -math.log2(max(e, sys.float_info.min))
    max_err = max(errors)
    mean_err = sum(errors) / len(errors)
    return bits(mean_err), bits(max_err), max_err
