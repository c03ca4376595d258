// dispatch.wgsl — the per-dispatch argument block shared by every kernel.
//
// No entry points. Binding 0 of group 0 is `args`, an array of words:
//
//   args[0]          N, the ring degree (low 32 bits)
//   args[1..8]       kernel parameters (see each kernel's header)
//   args[8 + 8k ..]  record k, one per limb job (the workgroup's y index):
//                    [0] q  [1] ratio_lo  [2] ratio_hi  (floor(2^128/q))
//                    [3] c  [4] c_shoup   (a per-limb constant, Shoup companion)
//                    [5] pos (a limb position)  [6] aux  [7] unused
//
// Every kernel runs workgroups of WORKGROUP × 1 threads: global x indexes
// coefficients (or butterflies), global y the record, and threads past the
// end of a limb return at once.

@group(0) @binding(0) var<storage, read> args: array<W>;

const WORKGROUP: u32 = 256u;
const HEADER_WORDS: u32 = 8u;
const RECORD_WORDS: u32 = 8u;

fn ring_n() -> u32 {
    return w_lo(args[0]);
}

fn param(i: u32) -> u32 {
    return w_lo(args[i]);
}

fn param_word(i: u32) -> W {
    return args[i];
}

fn record_word(k: u32, field: u32) -> W {
    return args[HEADER_WORDS + k * RECORD_WORDS + field];
}

fn record_modulus(k: u32) -> Modulus {
    return Modulus(record_word(k, 0u), record_word(k, 1u), record_word(k, 2u));
}

fn record_q(k: u32) -> W {
    return record_word(k, 0u);
}

fn record_c(k: u32) -> W {
    return record_word(k, 3u);
}

fn record_c_shoup(k: u32) -> W {
    return record_word(k, 4u);
}

fn record_pos(k: u32) -> u32 {
    return w_lo(record_word(k, 5u));
}

fn record_aux(k: u32) -> u32 {
    return w_lo(record_word(k, 6u));
}
