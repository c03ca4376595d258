#!/usr/bin/env bash
# Side-by-side, one core: heformer vs OpenFHE 1.x (PyPI wheel `openfhe`) on CKKS at
# N = 2^16, 24 limbs (depth 23), dnum 3. Prints a table of HMult (tensor +
# relinearize + rescale) and rotation-by-1 timings, their ratios, and a final
# JSON line. See benches/compare/README.md.
#
# Usage: benches/compare/run.sh [REPS]        (default 10; env REPS works too)
# Env:   VENV          venv directory          (default target/compare-venv)
#        PYTHON310     interpreter for the venv (default: pyenv's 3.10.13, else python3.10)
#        OPENFHE_SPEC  pip requirement          (default 'openfhe>=1,<2': newest 1.x)
#        SEED          fixed seed for both sides' inputs (default: fresh randomness)
#        OUT_DIR       where raw JSON lines go  (default target/compare)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

REPS="${1:-${REPS:-10}}"
VENV="${VENV:-target/compare-venv}"
OPENFHE_SPEC="${OPENFHE_SPEC:-openfhe>=1,<2}"
OUT_DIR="${OUT_DIR:-target/compare}"
PARAMS=PN16_128
mkdir -p "$OUT_DIR"

# Pin to core 0 where taskset exists; OpenMP and rayon get one thread either way.
if command -v taskset >/dev/null 2>&1; then
    PIN=(taskset -c 0)
else
    echo "warning: taskset not found; running unpinned (still one thread)" >&2
    PIN=()
fi

# --- OpenFHE's venv (the wheel carries a CPython 3.10 extension) ---
if ! "$VENV/bin/python" -c 'import openfhe' >/dev/null 2>&1; then
    if [[ -n "${PYTHON310:-}" ]]; then
        PY=("$PYTHON310")
    elif command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -qx '3.10.13'; then
        PY=(env PYENV_VERSION=3.10.13 python3.10)
    else
        PY=(python3.10)
    fi
    echo "creating $VENV with ${PY[*]} and installing '$OPENFHE_SPEC'..." >&2
    "${PY[@]}" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip >&2
    "$VENV/bin/pip" install --quiet "$OPENFHE_SPEC" >&2
fi
OPENFHE_VERSION="$("$VENV/bin/python" -c 'import openfhe; print(openfhe.__version__)')"
echo "openfhe $OPENFHE_VERSION (python: $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])'))" >&2

# --- heformer ---
echo "building heformer (release)..." >&2
cargo build --release --quiet

SEED_ARGS=()
if [[ -n "${SEED:-}" ]]; then SEED_ARGS=(--seed "$SEED"); fi

echo "heformer: bench ckks --params $PARAMS --threads 1 --reps $REPS (key generation at N = 2^16 takes a while)..." >&2
OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1 ${PIN[@]+"${PIN[@]}"} ./target/release/heformer bench ckks \
    --params "$PARAMS" --backend cpu --threads 1 --json --reps "$REPS" ${SEED_ARGS[@]+"${SEED_ARGS[@]}"} \
    | tee "$OUT_DIR/heformer.jsonl"

echo "openfhe: CKKS N = 2^16, depth 23, dnum 3, one thread, --reps $REPS..." >&2
OMP_NUM_THREADS=1 ${PIN[@]+"${PIN[@]}"} "$VENV/bin/python" benches/compare/openfhe_ckks.py \
    --log-n 16 --depth 23 --dnum 3 --scale-bits 50 --first-mod-bits 60 --reps "$REPS" ${SEED_ARGS[@]+"${SEED_ARGS[@]}"} \
    | tee "$OUT_DIR/openfhe.jsonl"

COMMIT="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then COMMIT="$COMMIT-dirty"; fi

# --- table + summary line ---
"$VENV/bin/python" - "$OUT_DIR/heformer.jsonl" "$OUT_DIR/openfhe.jsonl" "$OPENFHE_VERSION" "$COMMIT" <<'EOF'
import json, sys

def load(path):
    recs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                recs[r["op"]] = r
    return recs

he, of = load(sys.argv[1]), load(sys.argv[2])
version, commit = sys.argv[3], sys.argv[4]
for op in ("hmult", "rotate"):
    for name, recs in (("heformer", he), ("openfhe", of)):
        if op not in recs:
            sys.exit(f"no '{op}' record from {name}")
for name, recs in (("heformer", he), ("openfhe", of)):
    r = recs["hmult"]
    print(f"{name}: log_n {r['log_n']}, limbs {r['limbs']}, dnum {r['dnum']}, threads {r['threads']}, "
          f"reps {r['reps']}, device {r['device']}")

bits = lambda r, k: "-" if r.get(k) is None else f"{r[k]:.1f}"
print()
print(f"{'op':<8} {'heformer ms':>12} {'openfhe ms':>12} {'ratio':>7}   "
      f"{'heformer bits':>13} {'openfhe bits':>12}   (bits: mean / worst slot)")
ratios = {}
for op in ("hmult", "rotate"):
    h, o = he[op], of[op]
    ratios[op] = o["median_ms"] / h["median_ms"]
    print(f"{op:<8} {h['median_ms']:>12.2f} {o['median_ms']:>12.2f} {ratios[op]:>7.2f}   "
          f"{bits(h, 'precision_bits') + ' / ' + bits(h, 'precision_min_bits'):>13} "
          f"{bits(o, 'precision_bits') + ' / ' + bits(o, 'precision_min_bits'):>12}")
print("ratio = openfhe median / heformer median (> 1: heformer faster)")
print(json.dumps({
    "suite": "compare",
    "hmult_ratio": round(ratios["hmult"], 4),
    "rotate_ratio": round(ratios["rotate"], 4),
    "openfhe_version": version,
    "commit": commit,
}))
EOF
