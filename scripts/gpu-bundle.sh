#!/usr/bin/env bash
# Builds everything the GPU check needs into gpu-run/ (ignored by git), on a
# machine with the Rust toolchain: the release test binaries (conformance,
# CUDA compile report), the criterion bench binary and the heformer binary,
# stripped, plus the commit id. Then, on a machine with an NVIDIA GPU and no
# Rust toolchain, `scripts/gpu-check.sh` runs them.
#
# Usage: scripts/gpu-bundle.sh            (writes gpu-run/)
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=gpu-run
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE"

# Test and bench executables, by target name, from cargo's JSON messages.
executables() {
    cargo "$@" --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])
'
}

cargo build --release --quiet
cp target/release/heformer "$BUNDLE/heformer"
while read -r name path; do
    case "$name" in
        conformance | cuda_compile) cp "$path" "$BUNDLE/$name" ;;
    esac
done < <(executables test --release --test conformance --test cuda_compile)
while read -r name path; do
    [[ "$name" == ckks ]] && cp "$path" "$BUNDLE/bench_ckks"
done < <(executables bench --bench ckks)

strip "$BUNDLE"/* 2>/dev/null || true
cp scripts/gpu-check.sh "$BUNDLE/"
git rev-parse --short=12 HEAD >"$BUNDLE/COMMIT"
if ! git diff --quiet HEAD 2>/dev/null; then echo "dirty" >>"$BUNDLE/COMMIT"; fi
du -sh "$BUNDLE"
ls -l "$BUNDLE"
