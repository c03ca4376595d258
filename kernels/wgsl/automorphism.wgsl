// automorphism.wgsl — the evaluation-domain automorphism X -> X^g, a
// permutation of the words of every limb (RingContext::automorphism_permutation).
//
// Entry points: automorphism.
// Workgroup size: WORKGROUP × 1; dispatch (ceil(N / WORKGROUP), limbs, 1).
// Bindings: 0 args (records unused but one per limb), 1 read `perm`
//   (N indices), 2 read `src`, 3 read_write `out`.
//
//   automorphism   out[k·N + c] = src[k·N + perm[c]]

@group(0) @binding(1) var<storage, read> perm: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<W>;
@group(0) @binding(3) var<storage, read_write> out: array<W>;

@compute @workgroup_size(WORKGROUP)
fn automorphism(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = ring_n();
    if gid.x >= n {
        return;
    }
    let base = gid.y * n;
    out[base + gid.x] = src[base + perm[gid.x]];
}
