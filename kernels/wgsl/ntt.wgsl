// ntt.wgsl — radix-2 negacyclic NTT stages, every limb of a basis batched
// in one dispatch per stage (convention: src/ring/ntt.rs).
//
// Entry points: ntt_forward_stage, ntt_inverse_stage, ntt_inverse_scale.
// Workgroup size: WORKGROUP × 1; dispatch (ceil(N/2 / WORKGROUP), limbs, 1)
//   for the stages (one thread per butterfly), (ceil(N / WORKGROUP), limbs, 1)
//   for the scaling (one thread per coefficient).
// Bindings: 0 args (p1 = m, the stage's number of blocks; record k: the
//   limb's modulus, c = N^{-1} mod q with c_shoup, pos = the limb's position
//   in `poly`, aux = its global modulus index g), 1 read `twiddles`
//   (forward or inverse table, words [2(g·N + j)] = w_j and [2(g·N + j) + 1]
//   = floor(w_j·2^64/q)), 2 read_write `poly`.
//
//   ntt_forward_stage   Cooley–Tukey stage m (t = N/2m): butterfly b of
//                       block i = b / t, j = 2it + b mod t, w = fwd[m + i]:
//                       (a_j, a_{j+t}) <- (a_j + w a_{j+t}, a_j - w a_{j+t})
//   ntt_inverse_stage   Gentleman–Sande stage m, w = inv[m + i]:
//                       (a_j, a_{j+t}) <- (a_j + a_{j+t}, (a_j - a_{j+t}) w)
//   ntt_inverse_scale   a_c <- a_c · N^{-1}
// Every stage leaves its words fully reduced, so the result is the exact
// transform the CPU computes.

@group(0) @binding(1) var<storage, read> twiddles: array<W>;
@group(0) @binding(2) var<storage, read_write> poly: array<W>;

struct Butterfly {
    lo: u32,
    hi: u32,
    w: W,
    w_shoup: W,
}

fn butterfly(b: u32, k: u32) -> Butterfly {
    let n = ring_n();
    let m = param(1u);
    let t = (n >> 1u) / m;
    let i = b / t;
    let lo = record_pos(k) * n + 2u * i * t + b % t;
    let tw = 2u * (record_aux(k) * n + m + i);
    return Butterfly(lo, lo + t, twiddles[tw], twiddles[tw + 1u]);
}

@compute @workgroup_size(WORKGROUP)
fn ntt_forward_stage(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= ring_n() >> 1u {
        return;
    }
    let bf = butterfly(gid.x, gid.y);
    let q = record_q(gid.y);
    let u = poly[bf.lo];
    let v = mod_mul_shoup(poly[bf.hi], bf.w, bf.w_shoup, q);
    poly[bf.lo] = mod_add(u, v, q);
    poly[bf.hi] = mod_sub(u, v, q);
}

@compute @workgroup_size(WORKGROUP)
fn ntt_inverse_stage(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= ring_n() >> 1u {
        return;
    }
    let bf = butterfly(gid.x, gid.y);
    let q = record_q(gid.y);
    let u = poly[bf.lo];
    let v = poly[bf.hi];
    poly[bf.lo] = mod_add(u, v, q);
    poly[bf.hi] = mod_mul_shoup(mod_sub(u, v, q), bf.w, bf.w_shoup, q);
}

@compute @workgroup_size(WORKGROUP)
fn ntt_inverse_scale(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let i = record_pos(k) * n + gid.x;
    poly[i] = mod_mul_shoup(poly[i], record_c(k), record_c_shoup(k), record_q(k));
}
