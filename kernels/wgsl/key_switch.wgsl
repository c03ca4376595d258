// key_switch.wgsl — the hybrid key-switching inner product, one digit per
// dispatch, accumulated in 128 bits and reduced once after the last digit.
//
// Entry points: inner_product.
// Workgroup size: WORKGROUP × 1; dispatch (ceil(N / WORKGROUP), limbs, 1)
//   over the extended basis at the level (record k: the limb's modulus,
//   aux = the key's limb of that modulus).
// Bindings: 0 args (p1: bit 0 = first digit, bit 1 = last digit),
//   1 read `digit` (extended basis), 2 read `key_b`, 3 read `key_a` (the
//   extended basis of the key's top level), 4 read_write `acc` (4 words
//   per coefficient: the two 128-bit sums), 5 read_write `out0`,
//   6 read_write `out1` (extended basis).
//
//   inner_product  s0 = acc0 + d·b_g, s1 = acc1 + d·a_g (acc taken as 0 on
//                  the first digit); on the last digit out0 = s0 mod q,
//                  out1 = s1 mod q, otherwise acc = (s0, s1).

@group(0) @binding(1) var<storage, read> digit: array<W>;
@group(0) @binding(2) var<storage, read> key_b: array<W>;
@group(0) @binding(3) var<storage, read> key_a: array<W>;
@group(0) @binding(4) var<storage, read_write> acc: array<W>;
@group(0) @binding(5) var<storage, read_write> out0: array<W>;
@group(0) @binding(6) var<storage, read_write> out1: array<W>;

@compute @workgroup_size(WORKGROUP)
fn inner_product(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let k = gid.y;
    let i = k * n + gid.x;
    let key = record_aux(k) * n + gid.x;
    let flags = param(1u);
    let d = digit[i];
    var s0 = w_mul_wide(d, key_b[key]);
    var s1 = w_mul_wide(d, key_a[key]);
    if (flags & 1u) == 0u {
        s0 = wide_add(s0, Wide(acc[4u * i], acc[4u * i + 1u]));
        s1 = wide_add(s1, Wide(acc[4u * i + 2u], acc[4u * i + 3u]));
    }
    if (flags & 2u) != 0u {
        let m = record_modulus(k);
        out0[i] = mod_reduce_wide(s0, m);
        out1[i] = mod_reduce_wide(s1, m);
    } else {
        acc[4u * i] = s0.lo;
        acc[4u * i + 1u] = s0.hi;
        acc[4u * i + 2u] = s1.lo;
        acc[4u * i + 3u] = s1.hi;
    }
}
