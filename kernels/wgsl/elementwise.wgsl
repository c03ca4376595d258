// elementwise.wgsl — element-wise sums and products of RNS polynomials.
//
// Entry points: add_assign, sub_assign, neg_assign, mul_assign,
//   mul_add_assign, tensor, mul_scalar_add_assign, mul_scalar_assign,
//   add_scalar_assign.
// Workgroup size: WORKGROUP × 1 (dispatch.wgsl); dispatch
//   (ceil(N / WORKGROUP), limbs, 1). Thread (c, k) handles coefficient c of
//   limb k of every operand (word k·N + c).
// Bindings: 0 args (record k: the limb's modulus; c, c_shoup the scalar of
//   the scalar operations), 1..3 read_write x0..x2, 4..7 read y0..y3.
//
//   add_assign            x0 = x0 + y0
//   sub_assign            x0 = x0 - y0
//   neg_assign            x0 = -x0
//   mul_assign            x0 = x0 · y0
//   mul_add_assign        x0 = x0 + y0 · y1 (one reduction of the 128-bit sum)
//   tensor                x0 = y0·y2, x1 = y0·y3 + y1·y2, x2 = y1·y3
//                         (y0, y1 = a[0], a[1]; y2, y3 = b[0], b[1])
//   mul_scalar_add_assign x0 = x0 + y0 · c
//   mul_scalar_assign     x0 = x0 · c
//   add_scalar_assign     x0 = x0 + c
// All modulo the limb's q, fully reduced.

@group(0) @binding(1) var<storage, read_write> x0: array<W>;
@group(0) @binding(2) var<storage, read_write> x1: array<W>;
@group(0) @binding(3) var<storage, read_write> x2: array<W>;
@group(0) @binding(4) var<storage, read> y0: array<W>;
@group(0) @binding(5) var<storage, read> y1: array<W>;
@group(0) @binding(6) var<storage, read> y2: array<W>;
@group(0) @binding(7) var<storage, read> y3: array<W>;

@compute @workgroup_size(WORKGROUP)
fn add_assign(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let i = gid.y * n + gid.x;
    x0[i] = mod_add(x0[i], y0[i], record_q(gid.y));
}

@compute @workgroup_size(WORKGROUP)
fn sub_assign(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let i = gid.y * n + gid.x;
    x0[i] = mod_sub(x0[i], y0[i], record_q(gid.y));
}

@compute @workgroup_size(WORKGROUP)
fn neg_assign(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let i = gid.y * n + gid.x;
    x0[i] = mod_neg(x0[i], record_q(gid.y));
}

@compute @workgroup_size(WORKGROUP)
fn mul_assign(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let i = gid.y * n + gid.x;
    x0[i] = mod_mul(x0[i], y0[i], record_modulus(gid.y));
}

@compute @workgroup_size(WORKGROUP)
fn mul_add_assign(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let i = gid.y * n + gid.x;
    let sum = wide_add(w_mul_wide(y0[i], y1[i]), wide_from(x0[i]));
    x0[i] = mod_reduce_wide(sum, record_modulus(gid.y));
}

@compute @workgroup_size(WORKGROUP)
fn tensor(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let i = gid.y * n + gid.x;
    let m = record_modulus(gid.y);
    let a0 = y0[i];
    let a1 = y1[i];
    let b0 = y2[i];
    let b1 = y3[i];
    x0[i] = mod_mul(a0, b0, m);
    x1[i] = mod_reduce_wide(wide_add(w_mul_wide(a0, b1), w_mul_wide(a1, b0)), m);
    x2[i] = mod_mul(a1, b1, m);
}

@compute @workgroup_size(WORKGROUP)
fn mul_scalar_add_assign(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let i = k * n + gid.x;
    let q = record_q(k);
    x0[i] = mod_add(x0[i], mod_mul_shoup(y0[i], record_c(k), record_c_shoup(k), q), q);
}

@compute @workgroup_size(WORKGROUP)
fn mul_scalar_assign(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let i = k * n + gid.x;
    x0[i] = mod_mul_shoup(x0[i], record_c(k), record_c_shoup(k), record_q(k));
}

@compute @workgroup_size(WORKGROUP)
fn add_scalar_assign(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let i = k * n + gid.x;
    x0[i] = mod_add(x0[i], record_c(k), record_q(k));
}
