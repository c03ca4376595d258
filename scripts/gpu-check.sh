#!/usr/bin/env bash
# The whole GPU check, on a machine with an NVIDIA GPU and no Rust toolchain,
# from the binaries `scripts/gpu-bundle.sh` put in gpu-run/:
#   1. the CUDA compile report for every kernel (NVRTC, registers, spills);
#   2. the conformance suite (every primitive and CKKS operation, bit for bit
#      against the CPU oracle) on CUDA, and on wgpu if a Vulkan driver answers;
#   3. `heformer bench ckks` on CUDA (and wgpu, and the CPU with every core)
#      at PN16_128, JSON lines kept;
#   4. the criterion benches on CUDA;
# then prints a table: device, driver, commit, figures against the targets.
#
# Usage: scripts/gpu-check.sh [BUNDLE_DIR]     (default gpu-run)
# Env:   OUT     where logs and JSON go (default BUNDLE_DIR/results; the
#                device tool's $OUT when set)
#        PARAMS  preset of the `bench ckks` runs (default PN16_128, the
#                targets' parameters)
set -uo pipefail

BUNDLE="${1:-gpu-run}"
RESULTS="${OUT:-$BUNDLE/results}"
PARAMS="${PARAMS:-PN16_128}"
mkdir -p "$RESULTS"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 0700 "$XDG_RUNTIME_DIR"

# cudarc (built for CUDA 12.8) loads libnvrtc by name: libnvrtc.so, .so.12,
# .so.11, ... but never .so.13, which is what a CUDA 13 toolkit has. Point
# an unversioned libnvrtc.so at the first toolkit library found (in each folder
# a 12.x one before a newer one), and put its folder on the path for the builtins.
nvrtc=""
for dir in ${LD_LIBRARY_PATH//:/ } /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    /usr/local/cuda-*/lib64 /usr/lib/x86_64-linux-gnu; do
    for lib in "$dir"/libnvrtc.so.12* "$dir"/libnvrtc.so.1[3-9]*; do
        if [[ -e "$lib" && -z "$nvrtc" && "$lib" != *builtins* ]]; then nvrtc="$lib"; fi
    done
done
if [[ -n "$nvrtc" ]]; then
    mkdir -p "$RESULTS/lib"
    ln -sf "$nvrtc" "$RESULTS/lib/libnvrtc.so"
    export LD_LIBRARY_PATH="$RESULTS/lib:$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "nvrtc: $nvrtc"
else
    echo "nvrtc: not found (the CUDA steps will say SKIPPED or fail)"
fi

device=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
commit=$(head -1 "$BUNDLE/COMMIT" 2>/dev/null || echo unknown)
echo "device: ${device:-none}  driver: ${driver:-none}  commit: $commit" | tee "$RESULTS/device.txt"

status=0
step() {
    local name=$1
    shift
    echo "== $name"
    if "$@" >"$RESULTS/$name.log" 2>&1; then
        echo "   ok"
    else
        echo "   FAILED (exit $?): see $RESULTS/$name.log"
        tail -20 "$RESULTS/$name.log"
        status=1
    fi
}

step cuda_compile "$BUNDLE/cuda_compile" --nocapture
step conformance "$BUNDLE/conformance" --nocapture --test-threads 1
grep -h "SKIPPED\|conformance: testing" "$RESULTS/conformance.log" || true
step bench_cuda sh -c "'$BUNDLE/heformer' bench ckks --backend cuda --params '$PARAMS' --json --reps 20 --seed 1 >'$RESULTS/bench_cuda.jsonl'"
step bench_wgpu sh -c "'$BUNDLE/heformer' bench ckks --backend wgpu --params '$PARAMS' --json --reps 5 --seed 1 >'$RESULTS/bench_wgpu.jsonl'"
step bench_cpu sh -c "'$BUNDLE/heformer' bench ckks --backend cpu --threads 0 --params '$PARAMS' --json --reps 5 --seed 1 >'$RESULTS/bench_cpu.jsonl'"
step criterion_cuda env HEFORMER_BENCH_BACKEND=cuda "$BUNDLE/bench_ckks" --bench --warm-up-time 1 --measurement-time 3

# The table: H100 targets from issue 3 (N = 2^16, 24 limbs, dnum 3).
summarize() {
    python3 - "$RESULTS" "$device" "$driver" "$commit" <<'PY'
import json, os, sys
results, device, driver, commit = sys.argv[1:5]
targets = {"hmult": (0.400, 0.200), "rotate": (0.350, 0.170)}
rows = {}
for backend in ("cuda", "wgpu", "cpu"):
    path = os.path.join(results, f"bench_{backend}.jsonl")
    if not os.path.exists(path):
        continue
    for line in open(path):
        try:
            m = json.loads(line)
        except ValueError:
            continue
        rows.setdefault(m["op"], {})[backend] = m
print(f"\ndevice {device} | driver {driver} | commit {commit}")
print(f"{'op':<18} {'cuda ms':>10} {'wgpu ms':>10} {'cpu ms':>10} {'cuda GB/s':>10} {'bits':>6}  target (then) ms")
for op, by in rows.items():
    def ms(b):
        return f"{by[b]['median_ms']:.3f}" if b in by else "-"
    gbs = by.get("cuda", {}).get("gb_per_s")
    bits = by.get("cuda", {}).get("precision_min_bits")
    target = ""
    if op in targets:
        target = f"{targets[op][0]} ({targets[op][1]})"
    if op == "ntt_forward" and "cuda" in by:
        per_limb_us = by["cuda"]["median_ms"] * 1e3 / by["cuda"]["limbs"]
        target = f"{per_limb_us:.2f} us/limb vs 1 (0.5)"
    if op == "rotate_hoisted_8" and "cuda" in by and "rotate" in rows and "cuda" in rows["rotate"]:
        ratio = by["cuda"]["median_ms"] / rows["rotate"]["cuda"]["median_ms"]
        target = f"{ratio:.2f}x one rotation vs 5x"
    print(f"{op:<18} {ms('cuda'):>10} {ms('wgpu'):>10} {ms('cpu'):>10} "
          f"{(f'{gbs:.0f}' if gbs else '-'):>10} {(f'{bits:.1f}' if bits else '-'):>6}  {target}")
PY
}
if command -v python3 >/dev/null 2>&1; then
    summarize | tee "$RESULTS/summary.txt"
else
    echo "(no python3: raw JSON lines follow)"
    cat "$RESULTS"/bench_*.jsonl
fi
exit $status
