// harness.cpp: runs the real CUDA kernels of kernels/cuda/ on the CPU and
// checks every word they write against plain 128-bit integer arithmetic
// written independently here. No GPU and no CUDA toolkit are needed: the
// .cu files are compiled as C++17 with shim.h standing in for CUDA.
//
// Run by the integration test tests/cuda_host_kernels.rs (`cargo test
// --release --test cuda_host_kernels`). By hand, from the repository root:
//
//   g++ -std=c++17 -O2 -I kernels/cuda -I tests/cuda_host -o /tmp/cuda_host tests/cuda_host/harness.cpp
//   /tmp/cuda_host [seed]
//
// It prints one line per group of checks and ends with "ALL OK (...)" and
// exit status 0, or "FAILED (...)" and status 1 after the first mismatches.
//
// How kernels run: a launch takes the grid and block of the real launch in
// src/backend/cuda/mod.rs (words_grid for word-parallel kernels, the phase
// plan of src/backend/cuda/ntt_plan.rs for the fused NTT). Kernels without
// barriers run thread after thread. Kernels with __syncthreads (the fused
// NTT) run each block's threads as fibers switched at every barrier, in
// ascending order between one pair of barriers and descending order between
// the next, over a shared-memory tile poisoned before each block; threads
// that do not all reach the same barrier are reported. Every device buffer
// has canary words on both sides, so a write outside it is caught.
//
// What is checked (the host-side meaning of every argument follows
// src/backend/cuda/mod.rs, the formulas src/backend/cpu/mod.rs):
// * modarith.cuh: reduce_wide on random and edge 128-bit values.
// * elementwise.cu: all nine entry points, limbs of 61/60/50/30-bit primes
//   in a shuffled limb map, operands 0 and q-1 in every combination, a
//   length that is not a multiple of the block and one below it.
// * ntt.cu: the radix-2 kernels (stage launches + inverse scale) and the
//   fused phase kernels for N = 2^1 .. 2^17, compared with each other, with
//   the naive evaluation a(psi^(2·bitrev(i)+1)) (sampled for large N) and by
//   round trips; one limb of every launch is all q-1 (the largest lazy
//   values).
// * automorphism.cu, key_switch.cu (inner_product, up to 64 digits of q-1).
// * basis_conversion.cu: scale_sources (also in place), centered_overflows,
//   convert (approximate and centered, a target count that is not a multiple
//   of 4, rows beyond it untouched), subtract_then_scale, lift_centered
//   (source prime above, between, below and equal to a target: ModRaise);
//   once against the formulas with 58..61-bit primes and once against exact
//   CRT arithmetic with 30-bit sources (Q_S < 2^128).

#if defined(__APPLE__) && !defined(_XOPEN_SOURCE)
#define _XOPEN_SOURCE 700 // for the (deprecated there) ucontext routines
#endif

#include "shim.h"

#include <ucontext.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "elementwise.cu"
#include "ntt.cu"
#include "automorphism.cu"
#include "basis_conversion.cu"
#include "key_switch.cu"

typedef unsigned __int128 u128;
typedef __int128 i128;

// ---------------------------------------------------------------- checks --

static long checks = 0;
static long failures = 0;

static void fail(const char *fmt, ...) {
    failures++;
    if (failures > 25) {
        return;
    }
    va_list args;
    va_start(args, fmt);
    printf("FAIL: ");
    vprintf(fmt, args);
    printf("\n");
    va_end(args);
}

#define EXPECT(cond, ...)                                                                  \
    do {                                                                                   \
        checks++;                                                                          \
        if (!(cond)) {                                                                     \
            fail(__VA_ARGS__);                                                             \
        }                                                                                  \
    } while (0)

// Reports the first mismatch of got[0..len) against expected and how many.
static void expect_words(const std::string &what, const u64 *got, const std::vector<u64> &expected) {
    size_t wrong = 0, first = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        if (got[i] != expected[i] && wrong++ == 0) {
            first = i;
        }
    }
    EXPECT(wrong == 0, "%s: %zu of %zu words differ, first at %zu: got %llu, expected %llu",
           what.c_str(), wrong, expected.size(), first, got[first], expected[first]);
}

// ------------------------------------------------------------ randomness --

static u64 rng_state = 0x9e3779b97f4a7c15ull;

static u64 random_word() { // splitmix64
    u64 z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static u64 random_below(u64 q) { return (u64)(((u128)random_word() << 64 | random_word()) % q); }

// ------------------------------------------- reference arithmetic (128-bit) --

static u64 add_ref(u64 a, u64 b, u64 q) { return (u64)(((u128)a + b) % q); }
static u64 sub_ref(u64 a, u64 b, u64 q) { return (u64)(((u128)a + q - b % q) % q); }
static u64 mul_ref(u64 a, u64 b, u64 q) { return (u64)((u128)a * b % q); }

static u64 pow_ref(u64 b, u64 e, u64 q) {
    u64 r = 1 % q;
    for (b %= q; e; e >>= 1, b = mul_ref(b, b, q)) {
        if (e & 1) {
            r = mul_ref(r, b, q);
        }
    }
    return r;
}

static u64 inv_ref(u64 a, u64 q) { return pow_ref(a, q - 2, q); }

// A signed value modulo q.
static u64 mod_signed(i128 x, u64 q) {
    i128 r = x % (i128)q;
    return (u64)(r < 0 ? r + q : r);
}

// floor(w·2^64 / q), the Shoup companion of w < q.
static u64 shoup(u64 w, u64 q) { return (u64)(((u128)w << 64) / q); }

static bool is_prime(u64 n) {
    if (n < 2) {
        return false;
    }
    for (u64 p : {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37}) {
        if (n % p == 0) {
            return n == p;
        }
    }
    u64 d = n - 1;
    int s = 0;
    for (; d % 2 == 0; d /= 2) {
        s++;
    }
    for (u64 a : {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37}) { // Miller-Rabin, exact below 2^64
        u64 x = pow_ref(a, d, n);
        bool probable = x == 1 || x == n - 1;
        for (int i = 1; i < s && !probable; ++i) {
            x = mul_ref(x, x, n);
            probable = x == n - 1;
        }
        if (!probable) {
            return false;
        }
    }
    return true;
}

// The `index`-th largest prime below 2^bits with q ≡ 1 mod 2^18 (NTT-friendly
// for every N <= 2^17).
static u64 ntt_prime(int bits, int index = 0) {
    const u64 step = 1ull << 18;
    for (u64 q = ((1ull << bits) - 1) / step * step + 1;; q -= step) {
        if (is_prime(q) && index-- == 0) {
            return q;
        }
    }
}

static u32 bitrev(u32 x, u32 bits) {
    u32 r = 0;
    for (u32 i = 0; i < bits; ++i, x >>= 1) {
        r = (r << 1) | (x & 1);
    }
    return r;
}

// ------------------------------------------------- device-side parameters --

// The record of src/backend/cuda/abi.rs::prime_records for a ring of N words.
static Prime prime_record(u64 q, u64 n) {
    u128 ratio = ~(u128)0 / q;
    u64 n_inv = inv_ref(n % q, q);
    return Prime{q, (u64)ratio, (u64)(ratio >> 64), n_inv, shoup(n_inv, q)};
}

static std::vector<Prime> prime_table(const std::vector<u64> &moduli, u64 n) {
    std::vector<Prime> t;
    for (u64 q : moduli) {
        t.push_back(prime_record(q, n));
    }
    return t;
}

// Limb k: modulus index modulus[k], buffer position position[k].
static LimbMap limb_map(const std::vector<unsigned> &modulus, const std::vector<unsigned> &position) {
    LimbMap map;
    memset(&map, 0xff, sizeof map);
    for (size_t k = 0; k < modulus.size(); ++k) {
        map.modulus[k] = (u16)modulus[k];
        map.position[k] = (u16)position[k];
    }
    return map;
}

static LimbScalars limb_scalars(const std::vector<u64> &values, const std::vector<u64> &moduli) {
    LimbScalars s;
    memset(&s, 0, sizeof s);
    for (size_t k = 0; k < values.size(); ++k) {
        s.value[k] = values[k];
        s.shoup[k] = shoup(values[k], moduli[k]);
    }
    return s;
}

// ------------------------------------------------------------ buffers --

// Device memory: `len` words with canary words on both sides.
class Buffer {
  public:
    explicit Buffer(size_t len, u64 fill = 0) : len_(len), words_(len + 2 * PAD, CANARY) {
        std::fill(data(), data() + len, fill);
    }
    u64 *data() { return words_.data() + PAD; }
    const u64 *data() const { return words_.data() + PAD; }
    u64 &operator[](size_t i) { return data()[i]; }
    u64 operator[](size_t i) const { return data()[i]; }
    size_t size() const { return len_; }
    std::vector<u64> values() const { return std::vector<u64>(data(), data() + len_); }
    bool canaries_intact() const {
        for (size_t i = 0; i < PAD; ++i) {
            if (words_[i] != CANARY || words_[PAD + len_ + i] != CANARY) {
                return false;
            }
        }
        return true;
    }

  private:
    static constexpr size_t PAD = 64;
    static constexpr u64 CANARY = 0xca9a11e5ca9a11e5ull;
    size_t len_;
    std::vector<u64> words_;
};

// The words of `got` against `expected`, and nothing written outside it.
static void expect_buffer(const std::string &what, const Buffer &got, const std::vector<u64> &expected) {
    EXPECT(got.size() == expected.size(), "%s: %zu words, expected %zu", what.c_str(), got.size(), expected.size());
    if (got.size() == expected.size()) {
        expect_words(what, got.data(), expected);
    }
    EXPECT(got.canaries_intact(), "%s: a kernel wrote outside the buffer", what.c_str());
}

// -------------------------------------------------------------- launches --

struct Grid {
    unsigned x, y, block;
};

// src/backend/cuda/mod.rs::words_grid: `words` threads per limb, `limbs` limbs.
static Grid words_grid(unsigned words, unsigned limbs) {
    unsigned block = std::min(std::max(words, 1u), (unsigned)HEFORMER_BLOCK);
    return Grid{(words + block - 1) / block, limbs, block};
}

static void enter_block(const Grid &g, unsigned x, unsigned y) {
    blockDim = {g.block, 1, 1};
    gridDim = {g.x, g.y, 1};
    blockIdx = {x, y, 0};
}

// A kernel without barriers: every thread of every block, one after another.
template <class Kernel> static void launch(const Grid &g, Kernel kernel) {
    for (unsigned y = 0; y < g.y; ++y) {
        for (unsigned x = 0; x < g.x; ++x) {
            enter_block(g, x, y);
            for (unsigned t = 0; t < g.block; ++t) {
                threadIdx = {t, 0, 0};
                kernel();
            }
        }
    }
}

// Cooperative launches: the threads of a block are fibers (ucontext) that
// return to the scheduler at every __syncthreads().
namespace fibers {
constexpr size_t STACK_BYTES = 64 * 1024;
struct Fiber {
    ucontext_t context;
    std::unique_ptr<char[]> stack{new char[STACK_BYTES]};
    bool done = false;
};
static ucontext_t scheduler;
static std::vector<Fiber> pool(HEFORMER_BLOCK);
static Fiber *running = nullptr;
static const std::function<void()> *body = nullptr;

static void entry() {
    (*body)();
    running->done = true; // returning resumes `scheduler` (uc_link)
}
} // namespace fibers

void __syncthreads() {
    if (fibers::running == nullptr) {
        fprintf(stderr, "__syncthreads() in a kernel launched without barriers\n");
        abort();
    }
    swapcontext(&fibers::running->context, &fibers::scheduler);
}

// A kernel with barriers, `shared_words` words of dynamic shared memory.
static void launch_cooperative(const Grid &g, unsigned shared_words, const std::function<void()> &kernel) {
    using namespace fibers;
    if (g.block > HEFORMER_BLOCK || shared_words > SHARED_WORDS) {
        fail("launch of %u threads with %u shared words exceeds the limits", g.block, shared_words);
        return;
    }
    body = &kernel;
    for (unsigned y = 0; y < g.y; ++y) {
        for (unsigned x = 0; x < g.x; ++x) {
            enter_block(g, x, y);
            std::fill(tile, tile + SHARED_WORDS, 0xdeadbeefdeadbeefull);
            for (unsigned t = 0; t < g.block; ++t) {
                Fiber &f = pool[t];
                getcontext(&f.context);
                f.context.uc_stack.ss_sp = f.stack.get();
                f.context.uc_stack.ss_size = STACK_BYTES;
                f.context.uc_link = &scheduler;
                makecontext(&f.context, entry, 0);
                f.done = false;
            }
            for (unsigned round = 0;; ++round) {
                for (unsigned i = 0; i < g.block; ++i) {
                    unsigned t = round % 2 ? g.block - 1 - i : i;
                    if (!pool[t].done) {
                        threadIdx = {t, 0, 0};
                        running = &pool[t];
                        swapcontext(&scheduler, &pool[t].context);
                    }
                }
                running = nullptr;
                unsigned finished = 0;
                for (unsigned t = 0; t < g.block; ++t) {
                    finished += pool[t].done;
                }
                if (finished == g.block) {
                    break;
                }
                if (finished != 0) {
                    fail("block (%u, %u): %u of %u threads left before a barrier the others wait at",
                         x, y, finished, g.block);
                    break;
                }
            }
        }
    }
    body = nullptr;
}

// ----------------------------------------------------------- test inputs --

// Edge values by offset: e >= 0 stands for e, e < 0 for q + e (-1: q-1).
typedef std::vector<long long> Edges;

static u64 edge_value(long long e, u64 q) { return e >= 0 ? (u64)e % q : q - (u64)(-e); }

// A buffer with limb k of n words at position map.position[k] (for k <
// limbs) reduced modulo moduli[map.modulus[k]]: random words, the first of
// them replaced by `edges`. Positions no limb uses hold 7.
static Buffer random_poly(const std::vector<u64> &moduli, const LimbMap &map, unsigned limbs, unsigned n,
                          const Edges &edges = {}) {
    unsigned positions = 0;
    for (unsigned k = 0; k < limbs; ++k) {
        positions = std::max(positions, map.position[k] + 1u);
    }
    Buffer b(positions * n, 7);
    for (unsigned k = 0; k < limbs; ++k) {
        u64 q = moduli[map.modulus[k]];
        for (unsigned c = 0; c < n; ++c) {
            b[map.position[k] * n + c] = c < edges.size() ? edge_value(edges[c], q) : random_below(q);
        }
    }
    return b;
}

// -------------------------------------------------------- modarith.cuh --

static void test_reduce_wide() {
    for (u64 q : {ntt_prime(30), ntt_prime(50), ntt_prime(60), ntt_prime(61), ntt_prime(62), 3ull}) {
        Prime p = prime_record(q, 2);
        std::vector<u128> xs = {0, 1, q - 1, q, (u128)q * q - 1, ~(u128)0, ~(u128)0 / q * q,
                                ~(u128)0 / q * q - 1, (u128)1 << 64, ((u128)1 << 64) - 1};
        for (int i = 0; i < 20000; ++i) {
            u128 x = (u128)random_word() << 64 | random_word();
            xs.push_back(x >> (random_word() % 128));
        }
        for (u128 x : xs) {
            u64 got = reduce_wide(Wide{(u64)x, (u64)(x >> 64)}, p);
            EXPECT(got == (u64)(x % q), "reduce_wide(%016llx%016llx) mod %llu", (u64)(x >> 64), (u64)x, q);
        }
    }
    printf("ok   reduce_wide\n");
}

// ------------------------------------------------------- elementwise.cu --

static void test_elementwise(unsigned n) {
    const std::vector<u64> moduli = {ntt_prime(61), ntt_prime(60), ntt_prime(50), ntt_prime(30)};
    const std::vector<Prime> primes = prime_table(moduli, 1024);
    const unsigned L = 4;
    const LimbMap map = limb_map({2, 0, 3, 1}, {1, 3, 0, 2});
    const Grid grid = words_grid(n, L);
    // Operand pairs (a, b) of the first words: every combination of 0, 1, q-1.
    const Edges ea = {0, 0, -1, -1, 1, -1, 0, 1, 1}, eb = {0, -1, 0, -1, -1, 1, 1, 0, 1};
    const Buffer a = random_poly(moduli, map, L, n, ea), b = random_poly(moduli, map, L, n, eb);
    const Buffer a1 = random_poly(moduli, map, L, n, eb), b1 = random_poly(moduli, map, L, n, ea);
    std::vector<u64> limb_q(L); // modulus of limb k
    std::vector<u64> scalar(L); // per-limb constants: q-1, 0, 1, random
    for (unsigned k = 0; k < L; ++k) {
        limb_q[k] = moduli[map.modulus[k]];
        scalar[k] = k == 0 ? limb_q[k] - 1 : k == 1 ? 0 : k == 2 ? 1 : random_below(limb_q[k]);
    }
    const LimbScalars sc = limb_scalars(scalar, limb_q);

    // expected[position k, word c] = f(k, word index in the buffer, q)
    auto expected = [&](auto f) {
        std::vector<u64> e(L * n);
        for (unsigned k = 0; k < L; ++k) {
            for (unsigned c = 0; c < n; ++c) {
                size_t at = map.position[k] * n + c;
                e[at] = f(k, at, limb_q[k]);
            }
        }
        return e;
    };
    const std::string tag = " (n=" + std::to_string(n) + ")";
    Buffer acc(0);

    acc = a;
    launch(grid, [&] { add_assign(acc.data(), b.data(), primes.data(), map, n); });
    expect_buffer("add_assign" + tag, acc, expected([&](unsigned, size_t i, u64 q) { return add_ref(a[i], b[i], q); }));

    acc = a;
    launch(grid, [&] { sub_assign(acc.data(), b.data(), primes.data(), map, n); });
    expect_buffer("sub_assign" + tag, acc, expected([&](unsigned, size_t i, u64 q) { return sub_ref(a[i], b[i], q); }));

    acc = a;
    launch(grid, [&] { neg_assign(acc.data(), primes.data(), map, n); });
    expect_buffer("neg_assign" + tag, acc, expected([&](unsigned, size_t i, u64 q) { return sub_ref(0, a[i], q); }));

    acc = a;
    launch(grid, [&] { mul_assign(acc.data(), b.data(), primes.data(), map, n); });
    expect_buffer("mul_assign" + tag, acc, expected([&](unsigned, size_t i, u64 q) { return mul_ref(a[i], b[i], q); }));

    acc = a;
    launch(grid, [&] { mul_add_assign(acc.data(), a1.data(), b1.data(), primes.data(), map, n); });
    expect_buffer("mul_add_assign" + tag, acc,
                  expected([&](unsigned, size_t i, u64 q) { return add_ref(a[i], mul_ref(a1[i], b1[i], q), q); }));

    Buffer d0(L * n), d1(L * n), d2(L * n);
    launch(grid, [&] {
        tensor(a.data(), a1.data(), b.data(), b1.data(), d0.data(), d1.data(), d2.data(), primes.data(), map, n);
    });
    expect_buffer("tensor d0" + tag, d0, expected([&](unsigned, size_t i, u64 q) { return mul_ref(a[i], b[i], q); }));
    expect_buffer("tensor d1" + tag, d1, expected([&](unsigned, size_t i, u64 q) {
                      return add_ref(mul_ref(a[i], b1[i], q), mul_ref(a1[i], b[i], q), q);
                  }));
    expect_buffer("tensor d2" + tag, d2, expected([&](unsigned, size_t i, u64 q) { return mul_ref(a1[i], b1[i], q); }));

    acc = a;
    launch(grid, [&] { mul_scalar_add_assign(acc.data(), b.data(), primes.data(), map, sc, n); });
    expect_buffer("mul_scalar_add_assign" + tag, acc, expected([&](unsigned k, size_t i, u64 q) {
                      return add_ref(a[i], mul_ref(b[i], scalar[k], q), q);
                  }));

    acc = a;
    launch(grid, [&] { mul_scalar_assign(acc.data(), primes.data(), map, sc, n); });
    expect_buffer("mul_scalar_assign" + tag, acc,
                  expected([&](unsigned k, size_t i, u64 q) { return mul_ref(a[i], scalar[k], q); }));

    acc = a;
    launch(grid, [&] { add_scalar_assign(acc.data(), primes.data(), map, sc, n); });
    expect_buffer("add_scalar_assign" + tag, acc,
                  expected([&](unsigned k, size_t i, u64 q) { return add_ref(a[i], scalar[k], q); }));

    printf("ok   elementwise.cu, 9 entry points, n=%u\n", n);
}

// ------------------------------------------------------------------ NTT --

// One launch of the fused NTT: a port of src/backend/cuda/ntt_plan.rs.
struct Phase {
    unsigned first_stage, stages, log_group;
    unsigned log_stride(unsigned log_n) const { return log_n - first_stage - stages; }
    unsigned blocks(unsigned log_n) const { return 1u << (first_stage + log_stride(log_n) - log_group); }
    unsigned threads() const { return std::min(1u << (stages + log_group - 1), 256u); }
    unsigned shared_words() const { return 1u << (stages + log_group); }
};

static std::vector<Phase> ntt_phases(unsigned log_n) {
    const unsigned tile_log = 11, max_leading = tile_log - 3;
    unsigned last_stages = std::min(log_n, tile_log);
    unsigned leading = log_n - last_stages;
    unsigned count = (leading + max_leading - 1) / max_leading;
    std::vector<Phase> plan;
    unsigned first = 0;
    for (unsigned i = 0; i < count; ++i) {
        unsigned stages = (leading - first + (count - i) - 1) / (count - i);
        unsigned log_stride = log_n - first - stages;
        plan.push_back({first, stages, std::min(tile_log - stages, log_stride)});
        first += stages;
    }
    plan.push_back({first, last_stages, 0});
    return plan;
}

// The invariants and the documented N = 2^16 plan of ntt_plan.rs, so that
// the port and the Rust original cannot drift apart unnoticed.
static void test_phase_plan() {
    for (unsigned log_n = 1; log_n <= 17; ++log_n) {
        unsigned next = 0;
        for (const Phase &p : ntt_phases(log_n)) {
            EXPECT(p.first_stage == next && p.stages >= 1 && p.shared_words() <= SHARED_WORDS &&
                       p.log_group <= p.log_stride(log_n),
                   "ntt_phases(%u): phase at stage %u", log_n, p.first_stage);
            next += p.stages;
        }
        const Phase last = ntt_phases(log_n).back();
        EXPECT(next == log_n && last.log_group == 0 && last.log_stride(log_n) == 0, "ntt_phases(%u)", log_n);
    }
    std::vector<Phase> p16 = ntt_phases(16);
    EXPECT(p16.size() == 2 && p16[0].first_stage == 0 && p16[0].stages == 5 && p16[0].log_group == 6 &&
               p16[1].first_stage == 5 && p16[1].stages == 11 && p16[1].log_group == 0,
           "ntt_phases(16) is not the plan of ntt_plan.rs");
    printf("ok   fused NTT phase plan (port of ntt_plan.rs)\n");
}

// The twiddle tables of src/backend/cuda/tables.rs for `moduli`: table t
// (forward, forward Shoup, inverse, inverse Shoup), modulus g, entry k at
// (t·M + g)·N + k; forward psi_g^bitrev(k), inverse psi_g^-bitrev(k).
struct NttTables {
    unsigned log_n, n;
    std::vector<u64> moduli, psi;
    std::vector<Prime> primes;
    std::vector<u64> twiddles;
    const u64 *table(int t) const { return twiddles.data() + (size_t)t * moduli.size() * n; }
};

static NttTables ntt_tables(const std::vector<u64> &moduli, unsigned log_n) {
    NttTables t{log_n, 1u << log_n, moduli, {}, prime_table(moduli, 1ull << log_n), {}};
    const size_t M = moduli.size(), n = t.n;
    t.twiddles.resize(4 * M * n);
    for (size_t g = 0; g < M; ++g) {
        u64 q = moduli[g], psi = 0;
        for (u64 x = 2; psi == 0; ++x) { // a primitive 2N-th root: psi^N = -1
            u64 c = pow_ref(x, (q - 1) / (2 * n), q);
            psi = pow_ref(c, n, q) == q - 1 ? c : 0;
        }
        t.psi.push_back(psi);
        u64 psi_inv = inv_ref(psi, q);
        for (size_t k = 0; k < n; ++k) {
            u64 e = bitrev((u32)k, log_n), w = pow_ref(psi, e, q), wi = pow_ref(psi_inv, e, q);
            t.twiddles[(0 * M + g) * n + k] = w;
            t.twiddles[(1 * M + g) * n + k] = shoup(w, q);
            t.twiddles[(2 * M + g) * n + k] = wi;
            t.twiddles[(3 * M + g) * n + k] = shoup(wi, q);
        }
    }
    return t;
}

static void ntt_radix2(Buffer &data, const NttTables &t, const LimbMap &map, unsigned limbs, bool inverse) {
    const u64 *tw = t.table(inverse ? 2 : 0), *tws = t.table(inverse ? 3 : 1);
    for (unsigned s = 0; s < t.log_n; ++s) {
        u32 m = 1u << (inverse ? t.log_n - 1 - s : s);
        launch(words_grid(t.n / 2, limbs), [&] {
            if (inverse) {
                ntt_inverse_stage(data.data(), tw, tws, t.primes.data(), map, t.n, m);
            } else {
                ntt_forward_stage(data.data(), tw, tws, t.primes.data(), map, t.n, m);
            }
        });
    }
    if (inverse) {
        launch(words_grid(t.n, limbs), [&] { ntt_inverse_scale(data.data(), t.primes.data(), map, t.n); });
    }
}

// The launches of CudaBackend::ntt with the fused strategy.
static void ntt_fused(Buffer &data, const NttTables &t, const LimbMap &map, unsigned limbs, bool inverse) {
    const u64 *tw = t.table(inverse ? 2 : 0), *tws = t.table(inverse ? 3 : 1);
    std::vector<Phase> plan = ntt_phases(t.log_n);
    if (inverse) {
        std::reverse(plan.begin(), plan.end());
    }
    for (size_t i = 0; i < plan.size(); ++i) {
        const Phase p = plan[i];
        const u32 last = i + 1 == plan.size();
        Grid g{p.blocks(t.log_n), limbs, p.threads()};
        launch_cooperative(g, p.shared_words(), [&] {
            if (inverse) {
                ntt_inverse_phase(data.data(), tw, tws, t.primes.data(), map, t.log_n, p.first_stage, p.stages,
                                  p.log_group, last);
            } else {
                ntt_forward_phase(data.data(), tw, tws, t.primes.data(), map, t.log_n, p.first_stage, p.stages,
                                  p.log_group, last);
            }
        });
    }
}

// a(x) mod q for the n coefficients of `a` (Horner).
static u64 evaluate(const u64 *a, unsigned n, u64 x, u64 q) {
    u64 acc = 0;
    for (unsigned j = n; j-- > 0;) {
        acc = (u64)(((u128)acc * x + a[j]) % q);
    }
    return acc;
}

static void test_ntt(unsigned log_n) {
    // Limbs 61, 50, 30 bits, a second 61-bit one holding q-1 everywhere and
    // for N <= 2^12 a prime just below 2^62 (the bound of modarith.cuh).
    std::vector<u64> moduli = {ntt_prime(30), ntt_prime(61), ntt_prime(50), ntt_prime(61, 1)};
    if (log_n <= 12) {
        moduli.push_back(ntt_prime(62));
    }
    const unsigned L = moduli.size(), n = 1u << log_n;
    const NttTables t = ntt_tables(moduli, log_n);
    std::vector<unsigned> modulus(L), position(L);
    for (unsigned k = 0; k < L; ++k) {
        modulus[k] = (k + 1) % L;        // limb k: modulus k+1, ...
        position[k] = (k + L - 2) % L;   // ... at a shuffled position
    }
    const LimbMap map = limb_map(modulus, position);
    Buffer a = random_poly(moduli, map, L, n, {-1, 0, -1, 1});
    for (unsigned k = 0; k < L; ++k) {
        if (map.modulus[k] == 3) {
            for (unsigned c = 0; c < n; ++c) {
                a[map.position[k] * n + c] = moduli[3] - 1;
            }
        }
    }
    const std::string tag = " (log_n=" + std::to_string(log_n) + ")";

    Buffer fused = a, radix2 = a;
    ntt_fused(fused, t, map, L, false);
    ntt_radix2(radix2, t, map, L, false);
    expect_buffer("fused forward == radix-2 forward" + tag, fused, radix2.values());

    // Index i holds a(psi^(2·bitrev(i)+1)) (src/ring/ntt.rs).
    std::vector<unsigned> points = {0, n - 1, n / 2};
    for (unsigned i = 0; i < (n <= 64 ? n : 8u); ++i) {
        points.push_back(n <= 64 ? i : (unsigned)random_below(n));
    }
    for (unsigned k = 0; k < L; ++k) {
        const u64 q = moduli[map.modulus[k]], psi = t.psi[map.modulus[k]];
        const size_t base = (size_t)map.position[k] * n;
        for (unsigned i : points) {
            u64 x = pow_ref(psi, 2 * bitrev(i, log_n) + 1, q);
            u64 want = evaluate(a.data() + base, n, x, q);
            EXPECT(fused[base + i] == want, "forward NTT%s limb %u index %u: got %llu, expected %llu", tag.c_str(),
                   k, i, fused[base + i], want);
        }
    }

    Buffer back = fused;
    ntt_fused(back, t, map, L, true);
    expect_buffer("fused inverse(forward(a)) == a" + tag, back, a.values());
    back = radix2;
    ntt_radix2(back, t, map, L, true);
    expect_buffer("radix-2 inverse(forward(a)) == a" + tag, back, a.values());

    // The other way round: an arbitrary evaluation vector.
    Buffer e = random_poly(moduli, map, L, n, {-1, 0});
    Buffer coeffs = e;
    ntt_fused(coeffs, t, map, L, true);
    Buffer coeffs2 = e;
    ntt_radix2(coeffs2, t, map, L, true);
    expect_buffer("fused inverse == radix-2 inverse" + tag, coeffs, coeffs2.values());
    ntt_fused(coeffs, t, map, L, false);
    expect_buffer("fused forward(inverse(e)) == e" + tag, coeffs, e.values());

    printf("ok   ntt.cu, N=2^%u, %u limbs, %zu fused phases\n", log_n, L, ntt_phases(log_n).size());
}

// ------------------------------------------------------- automorphism.cu --

static void test_automorphism() {
    const unsigned n = 1000, L = 3;
    std::vector<u32> perm(n);
    for (unsigned i = 0; i < n; ++i) {
        perm[i] = i;
    }
    for (unsigned i = n - 1; i > 0; --i) {
        std::swap(perm[i], perm[random_below(i + 1)]);
    }
    Buffer src(L * n), out(L * n);
    for (size_t i = 0; i < src.size(); ++i) {
        src[i] = random_word();
    }
    launch(words_grid(n, L), [&] { automorphism(out.data(), src.data(), perm.data(), n); });
    std::vector<u64> want(L * n);
    for (unsigned k = 0; k < L; ++k) {
        for (unsigned i = 0; i < n; ++i) {
            want[k * n + i] = src[k * n + perm[i]];
        }
    }
    expect_buffer("automorphism", out, want);
    printf("ok   automorphism.cu\n");
}

// --------------------------------------------------------- key_switch.cu --

// Extended-basis limb k has modulus map.modulus[k] and lies at limb k of the
// digits and outputs, at limb map.position[k] of the keys (the full basis).
static void test_inner_product(unsigned digits, bool all_max) {
    const unsigned n = 300, L = 4;
    const std::vector<u64> moduli = {ntt_prime(61), ntt_prime(61, 1), ntt_prime(50), ntt_prime(30)};
    const std::vector<Prime> primes = prime_table(moduli, 1024);
    const LimbMap map = limb_map({1, 0, 3, 2}, {4, 0, 5, 2}); // keys: 6 limbs
    const LimbMap ext = limb_map({1, 0, 3, 2}, {0, 1, 2, 3});
    const Edges e1 = all_max ? Edges(n, -1) : Edges{0, -1, -1, 1, 0};
    const Edges e2 = all_max ? Edges(n, -1) : Edges{-1, 0, -1, -1, 1};
    std::vector<Buffer> d, kb, ka;
    DigitOperands ops;
    for (unsigned j = 0; j < digits; ++j) {
        d.push_back(random_poly(moduli, ext, L, n, e1));
        kb.push_back(random_poly(moduli, map, L, n, e2));
        ka.push_back(random_poly(moduli, map, L, n, e1));
    }
    for (unsigned j = 0; j < digits; ++j) { // the vectors no longer grow
        ops.digit[j] = (u64)d[j].data();
        ops.key_b[j] = (u64)kb[j].data();
        ops.key_a[j] = (u64)ka[j].data();
    }
    Buffer out0(L * n), out1(L * n);
    launch(words_grid(n, L), [&] { inner_product(out0.data(), out1.data(), ops, primes.data(), map, digits, n); });
    std::vector<u64> want0(L * n), want1(L * n);
    for (unsigned k = 0; k < L; ++k) {
        u64 q = moduli[map.modulus[k]];
        for (unsigned c = 0; c < n; ++c) {
            size_t at = k * n + c, key_at = map.position[k] * n + c;
            for (unsigned j = 0; j < digits; ++j) {
                want0[at] = add_ref(want0[at], mul_ref(d[j][at], kb[j][key_at], q), q);
                want1[at] = add_ref(want1[at], mul_ref(d[j][at], ka[j][key_at], q), q);
            }
        }
    }
    std::string tag = " (" + std::to_string(digits) + " digits" + (all_max ? " of q-1)" : ")");
    expect_buffer("inner_product out0" + tag, out0, want0);
    expect_buffer("inner_product out1" + tag, out1, want1);
    printf("ok   key_switch.cu inner_product%s\n", tag.c_str());
}

// --------------------------------------------------- basis_conversion.cu --

// The constants of BaseConversion (src/ring/context.rs) from sources S to
// targets T (values of primes), laid out as src/backend/cuda/tables.rs.
struct Conversion {
    std::vector<u64> source, target;
    std::vector<u64> hat_inv;  // (Q_S/q_s)^-1 mod q_s
    std::vector<u64> hat;      // Q_S/q_s mod t_r, [r][s]
    std::vector<u64> neg;      // -Q_S mod t_r
    std::vector<u64> fraction; // floor(2^128/q_s): S low words, S high words
};

static Conversion conversion(const std::vector<u64> &source, const std::vector<u64> &target) {
    Conversion c{source, target, {}, {}, {}, {}};
    const size_t S = source.size();
    auto hat_mod = [&](size_t s, u64 m) {
        u64 h = 1;
        for (size_t o = 0; o < S; ++o) {
            h = o == s ? h : mul_ref(h, source[o] % m, m);
        }
        return h;
    };
    for (size_t s = 0; s < S; ++s) {
        c.hat_inv.push_back(inv_ref(hat_mod(s, source[s]), source[s]));
    }
    for (u64 t : target) {
        u64 product = 1;
        for (size_t s = 0; s < S; ++s) {
            c.hat.push_back(hat_mod(s, t));
            product = mul_ref(product, source[s] % t, t);
        }
        c.neg.push_back(sub_ref(0, product, t));
    }
    c.fraction.resize(2 * S);
    for (size_t s = 0; s < S; ++s) {
        u128 f = ~(u128)0 / source[s];
        c.fraction[s] = (u64)f;
        c.fraction[S + s] = (u64)(f >> 64);
    }
    return c;
}

// The kernels' results of one conversion of `x` (sources at positions
// `source_position` of x) into the first `count` targets, each target row r
// written at out position `target_position[r]`; rows >= count must stay 777.
struct Converted {
    Buffer scaled, overflows, approximate, centered;
};

static Converted run_conversion(const Conversion &c, const Buffer &x, const std::vector<unsigned> &source_position,
                                const std::vector<unsigned> &target_position, unsigned count, unsigned n) {
    const unsigned S = c.source.size(), T = c.target.size();
    std::vector<u64> moduli = c.source; // prime table: sources then targets
    moduli.insert(moduli.end(), c.target.begin(), c.target.end());
    const std::vector<Prime> primes = prime_table(moduli, 1024);
    std::vector<unsigned> smod(S), tmod(T);
    for (unsigned s = 0; s < S; ++s) {
        smod[s] = s;
    }
    for (unsigned r = 0; r < T; ++r) {
        tmod[r] = S + r;
    }
    const LimbMap sources = limb_map(smod, source_position), targets = limb_map(tmod, target_position);
    const LimbScalars hat_inv = limb_scalars(c.hat_inv, c.source);
    Converted out{Buffer(S * n), Buffer(n), Buffer(T * n, 777), Buffer(T * n, 777)};
    launch(words_grid(n, S),
           [&] { scale_sources(out.scaled.data(), x.data(), primes.data(), sources, hat_inv, n); });
    launch(words_grid(n, 1),
           [&] { centered_overflows(out.overflows.data(), out.scaled.data(), c.fraction.data(), S, n); });
    Grid g = words_grid(n, 1);
    g.y = (count + 3) / 4; // CONVERT_TARGETS per thread
    for (Buffer *o : {&out.approximate, &out.centered}) {
        const u64 *v = o == &out.centered ? out.overflows.data() : nullptr;
        launch(g, [&] {
            convert(o->data(), out.scaled.data(), v, primes.data(), targets, c.hat.data(), c.neg.data(), S, count, n);
        });
    }
    return out;
}

// Sources of 58..61 bits, word results against the formulas of the CPU
// oracle (scale_sources, centered_overflows, convert_range).
static void test_conversion_formulas() {
    const unsigned n = 300;
    const Conversion c = conversion({ntt_prime(61), ntt_prime(60), ntt_prime(59), ntt_prime(58)},
                                    {ntt_prime(61, 1), ntt_prime(50), ntt_prime(30), ntt_prime(45), ntt_prime(60, 1),
                                     ntt_prime(40)});
    const unsigned S = c.source.size(), T = c.target.size(), count = 5;
    const std::vector<unsigned> spos = {2, 0, 4, 1}, tpos = {5, 3, 1, 0, 2, 4};
    Buffer x(5 * n, 99); // source limbs at spos, position 3 unused
    for (unsigned s = 0; s < S; ++s) {
        for (unsigned i = 0; i < n; ++i) {
            x[spos[s] * n + i] = i < 3 ? edge_value(Edges{0, -1, 1}[i], c.source[s]) : random_below(c.source[s]);
        }
    }
    const Converted k = run_conversion(c, x, spos, tpos, count, n);

    std::vector<u64> scaled(S * n), overflows(n), approx(T * n, 777), centered(T * n, 777);
    for (unsigned s = 0; s < S; ++s) {
        for (unsigned i = 0; i < n; ++i) {
            scaled[s * n + i] = mul_ref(x[spos[s] * n + i], c.hat_inv[s], c.source[s]);
        }
    }
    for (unsigned i = 0; i < n; ++i) { // v = (Σ_s ((y_s·f_s) >> 64) + 2^63) >> 64
        u128 sum = (u128)1 << 63;
        for (unsigned s = 0; s < S; ++s) {
            u64 y = scaled[s * n + i];
            sum += (u128)y * c.fraction[S + s] + (((u128)y * c.fraction[s]) >> 64);
        }
        overflows[i] = (u64)(sum >> 64);
    }
    for (unsigned r = 0; r < count; ++r) {
        u64 t = c.target[r];
        for (unsigned i = 0; i < n; ++i) {
            u64 acc = 0;
            for (unsigned s = 0; s < S; ++s) {
                acc = add_ref(acc, mul_ref(scaled[s * n + i], c.hat[r * S + s], t), t);
            }
            approx[tpos[r] * n + i] = acc;
            centered[tpos[r] * n + i] = add_ref(acc, mul_ref(overflows[i], c.neg[r], t), t);
        }
    }
    expect_buffer("scale_sources", k.scaled, scaled);
    expect_buffer("centered_overflows", k.overflows, overflows);
    expect_buffer("convert (approximate, 5 of 6 targets)", k.approximate, approx);
    expect_buffer("convert (centered, 5 of 6 targets)", k.centered, centered);

    // scale_sources in place (positions 0..S).
    const std::vector<Prime> primes = prime_table(c.source, 1024);
    const LimbMap in_place = limb_map({0, 1, 2, 3}, {0, 1, 2, 3});
    Buffer y(S * n);
    for (unsigned s = 0; s < S; ++s) {
        std::copy(x.data() + spos[s] * n, x.data() + (spos[s] + 1) * n, y.data() + s * n);
    }
    const LimbScalars hat_inv = limb_scalars(c.hat_inv, c.source);
    launch(words_grid(n, S), [&] { scale_sources(y.data(), y.data(), primes.data(), in_place, hat_inv, n); });
    expect_buffer("scale_sources in place", y, scaled);
    printf("ok   basis_conversion.cu scale_sources, centered_overflows, convert (formulas)\n");
}

// Sources of 30 bits (Q_S < 2^128): the conversions against exact CRT
// arithmetic. For x in [-Q/2, Q/2) with residues x_s: the centered result is
// x mod t; the approximate one (x mod Q) + u·Q mod t for some 0 <= u < S.
static void test_conversion_exact() {
    const unsigned n = 500;
    const Conversion c = conversion({ntt_prime(30), ntt_prime(30, 1), ntt_prime(30, 2), ntt_prime(30, 3)},
                                    {ntt_prime(61), ntt_prime(50), ntt_prime(31), ntt_prime(30, 4)});
    const unsigned S = c.source.size(), T = c.target.size();
    u128 Q = 1;
    for (u64 q : c.source) {
        Q *= q;
    }
    std::vector<i128> value(n); // x in [-Q/2, Q/2)
    for (unsigned i = 0; i < n; ++i) {
        u128 r = ((u128)random_word() << 64 | random_word()) % Q;
        value[i] = i == 0 ? 0 : i == 1 ? 1 : i == 2 ? -1 : i == 3 ? (i128)(Q / 2) - 1 : (i128)r - (i128)(Q / 2);
    }
    std::vector<unsigned> spos(S), tpos(T);
    for (unsigned k = 0; k < S; ++k) {
        spos[k] = S - 1 - k;
    }
    for (unsigned r = 0; r < T; ++r) {
        tpos[r] = r;
    }
    Buffer x(S * n);
    for (unsigned s = 0; s < S; ++s) {
        for (unsigned i = 0; i < n; ++i) {
            x[spos[s] * n + i] = mod_signed(value[i], c.source[s]);
        }
    }
    const Converted k = run_conversion(c, x, spos, tpos, T, n);
    for (unsigned i = 0; i < n; ++i) {
        u128 x_pos = value[i] < 0 ? (u128)(value[i] + (i128)Q) : (u128)value[i];
        u128 sum = 0; // Σ_s y_s·(Q/q_s) = x_pos + u·Q
        for (unsigned s = 0; s < S; ++s) {
            sum += (u128)k.scaled[s * n + i] * (Q / c.source[s]);
        }
        u128 u = sum / Q;
        EXPECT(sum % Q == x_pos && u < S, "CRT of scale_sources word %u", i);
        EXPECT(k.overflows[i] == (u64)(u + (2 * x_pos >= Q)), "centered_overflows word %u: got %llu, u = %llu", i,
               k.overflows[i], (u64)u);
        for (unsigned r = 0; r < T; ++r) {
            u64 t = c.target[r];
            u64 got = k.approximate[tpos[r] * n + i];
            EXPECT(got == (u64)(sum % t), "convert (approximate) word %u target %u", i, r);
            EXPECT(k.centered[tpos[r] * n + i] == mod_signed(value[i], t), "convert (centered) word %u target %u", i,
                   r);
        }
    }
    EXPECT(k.approximate.canaries_intact() && k.centered.canaries_intact() && k.scaled.canaries_intact() &&
               k.overflows.canaries_intact(),
           "conversion kernels wrote outside their buffers");
    printf("ok   basis_conversion.cu centered and approximate conversion (exact CRT)\n");
}

static void test_rescale_kernels() {
    const unsigned n = 300;
    const std::vector<u64> moduli = {ntt_prime(61), ntt_prime(50), ntt_prime(30), ntt_prime(61, 1)};
    const std::vector<Prime> primes = prime_table(moduli, 1024);
    const unsigned L = 3; // limbs: moduli 0..2 at shuffled positions
    const LimbMap map = limb_map({0, 1, 2}, {1, 2, 0});
    const std::vector<u64> limb_q = {moduli[0], moduli[1], moduli[2]};
    const Grid grid = words_grid(n, L);

    // subtract_then_scale: out = (x - out)·inverse_k.
    const Buffer x = random_poly(moduli, map, L, n, {0, -1, 0, -1, 1});
    const Buffer o = random_poly(moduli, map, L, n, {0, 0, -1, -1, -1});
    std::vector<u64> inv = {limb_q[0] - 1, 1, random_below(limb_q[2])};
    const LimbScalars inverse = limb_scalars(inv, limb_q);
    Buffer out = o;
    launch(grid, [&] { subtract_then_scale(out.data(), x.data(), primes.data(), map, inverse, n); });
    std::vector<u64> want(L * n);
    for (unsigned k = 0; k < L; ++k) {
        for (unsigned c = 0; c < n; ++c) {
            size_t at = map.position[k] * n + c;
            want[at] = mul_ref(sub_ref(x[at], o[at], limb_q[k]), inv[k], limb_q[k]);
        }
    }
    expect_buffer("subtract_then_scale", out, want);

    // lift_centered: the centered residue of src[c] mod q_src, mod q_k;
    // q_src above, between and below the targets (rescale) and equal to the
    // first (ModRaise lifts limb 0 to a basis holding q_0).
    for (u64 q_src : {moduli[3], ntt_prime(40), ntt_prime(30, 1), moduli[0]}) {
        Buffer src(n);
        for (unsigned c = 0; c < n; ++c) {
            src[c] = c == 0 ? 0 : c == 1 ? 1 : c == 2 ? q_src / 2 : c == 3 ? q_src / 2 + 1
                   : c == 4 ? q_src - 1 : random_below(q_src);
        }
        Buffer out(L * n);
        launch(grid, [&] { lift_centered(out.data(), src.data(), primes.data(), map, q_src, n); });
        for (unsigned k = 0; k < L; ++k) {
            for (unsigned c = 0; c < n; ++c) {
                i128 centered = src[c] > q_src / 2 ? (i128)src[c] - (i128)q_src : (i128)src[c];
                want[map.position[k] * n + c] = mod_signed(centered, limb_q[k]);
            }
        }
        expect_buffer("lift_centered (q_src " + std::to_string(q_src) + ")", out, want);
    }
    printf("ok   basis_conversion.cu subtract_then_scale, lift_centered\n");
}

// ------------------------------------------------------------------ main --

int main(int argc, char **argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0); // keep what was printed if a kernel crashes the process
    if (argc > 1) {
        rng_state = strtoull(argv[1], nullptr, 0);
    }
    printf("cuda host harness, seed %llu\n", rng_state);
    test_reduce_wide();
    test_elementwise(1000);
    test_elementwise(8);
    test_phase_plan();
    for (unsigned log_n : {1, 2, 3, 5, 8, 11, 12, 13, 16, 17}) {
        test_ntt(log_n);
    }
    test_automorphism();
    test_inner_product(3, false);
    test_inner_product(HEFORMER_MAX_DIGITS, true);
    test_conversion_formulas();
    test_conversion_exact();
    test_rescale_kernels();
    printf("%s (%ld failures, %ld checks)\n", failures ? "FAILED" : "ALL OK", failures, checks);
    return failures ? 1 : 0;
}
