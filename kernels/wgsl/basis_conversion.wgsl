// basis_conversion.wgsl — fast base conversion, the steps of ModUp,
// ModDown and rescale, and bootstrapping's ModRaise (conventions:
// ARCHITECTURE.md, "Base conversion" and "Rescale"; the CPU oracle is
// src/backend/cpu/mod.rs).
//
// Entry points: scale_sources, convert, centered_overflows,
//   subtract_then_scale, lift_centered.
// Workgroup size: WORKGROUP × 1; dispatch (ceil(N / WORKGROUP), records, 1),
//   one thread per coefficient (centered_overflows: one record row, y = 1).
// Bindings: 0 args, 1 read `table` (the parameter set's conversion
//   constants), 2 read `src`, 3 read `overflow`, 4 read_write `dst`.
//
//   scale_sources       dst[k·N + c] = src[pos·N + c] · c_k mod q_k
//                       (record k: source modulus, c = (Q_S/q_s)^{-1} mod q_s)
//   convert             dst[pos·N + c] = (Σ_s src[s·N + c] · table[p2 + aux·p1 + s]
//                       + [p3 ≠ 0] overflow[c] · c_k) mod t, the sum taken in
//                       128 bits and reduced once (p1 = |S|, p2 = offset of
//                       the [target][source] matrix (Q_S/q_s) mod t; record k:
//                       target modulus t, c = (-Q_S) mod t, aux = target row)
//   centered_overflows  dst[c] = (Σ_s ((src[s·N + c] · f_s) >> 64) + 2^63) >> 64
//                       with f_s = floor(2^128/q_s) at table[p2 + 2s] (low
//                       word) and table[p2 + 2s + 1] (high word), p1 = |S|
//   subtract_then_scale dst[i] = (src[i] - dst[i]) · c_k mod q_k, i = pos·N + c
//   lift_centered       dst[pos·N + c] = r mod q_k, r the centered residue of
//                       src[c] < q_s modulo q_s = args[1] in (-q_s/2, q_s/2]
//                       (args[2] = floor(q_s/2)); rescale lifts the last
//                       limb to the limbs below it, ModRaise limb 0 to every
//                       limb of a level, q_0 included

@group(0) @binding(1) var<storage, read> table: array<W>;
@group(0) @binding(2) var<storage, read> src: array<W>;
@group(0) @binding(3) var<storage, read> overflow: array<W>;
@group(0) @binding(4) var<storage, read_write> dst: array<W>;

@compute @workgroup_size(WORKGROUP)
fn scale_sources(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let x = src[record_pos(k) * n + gid.x];
    dst[k * n + gid.x] = mod_mul_shoup(x, record_c(k), record_c_shoup(k), record_q(k));
}

@compute @workgroup_size(WORKGROUP)
fn convert(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let sources = param(1u);
    let row = param(2u) + record_aux(k) * sources;
    var acc = Wide(w_zero(), w_zero());
    for (var s = 0u; s < sources; s++) {
        acc = wide_add(acc, w_mul_wide(src[s * n + gid.x], table[row + s]));
    }
    if param(3u) != 0u {
        acc = wide_add(acc, w_mul_wide(overflow[gid.x], record_c(k)));
    }
    dst[record_pos(k) * n + gid.x] = mod_reduce_wide(acc, record_modulus(k));
}

@compute @workgroup_size(WORKGROUP)
fn centered_overflows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let sources = param(1u);
    let fractions = param(2u);
    // 2^63 in the low word: rounds the 64-bit fixed-point sum.
    var acc = wide_from(w_from(0u, 0x80000000u));
    for (var s = 0u; s < sources; s++) {
        let y = src[s * n + gid.x];
        let f_lo = table[fractions + 2u * s];
        let f_hi = table[fractions + 2u * s + 1u];
        // (y · f) >> 64 = y · f_hi + floor(y · f_lo / 2^64), exactly.
        acc = wide_add(acc, wide_add(w_mul_wide(y, f_hi), wide_from(w_mul_hi(y, f_lo))));
    }
    dst[gid.x] = acc.hi;
}

@compute @workgroup_size(WORKGROUP)
fn subtract_then_scale(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let i = record_pos(k) * n + gid.x;
    let q = record_q(k);
    dst[i] = mod_mul_shoup(mod_sub(src[i], dst[i], q), record_c(k), record_c_shoup(k), q);
}

@compute @workgroup_size(WORKGROUP)
fn lift_centered(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let x = src[gid.x];
    let q_src = param_word(1u);
    let negative = w_lt(param_word(2u), x);
    let magnitude = select(x, w_sub(q_src, x), negative);
    let q = record_q(k);
    let r = mod_reduce_wide(wide_from(magnitude), record_modulus(k));
    dst[record_pos(k) * n + gid.x] = select(r, mod_neg(r, q), negative);
}
