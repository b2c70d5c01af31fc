/*
 * gcm_vaes_wide.h: the bulk of AES-GCM on VAES + VPCLMULQDQ vectors, written
 * once for any width and included by each VAES tier (gcm_vaes.c: 512 bits,
 * gcm_vaes256.c: 256 bits). A vector holds WIDE_LANES counter or GHASH
 * blocks; the same code at either width (spec/aesni-gcm-notes.md section 4):
 *  - 8 vectors of counter blocks per iteration, through all rounds
 *    round-major, the keystream XORed in through the last round;
 *  - the GHASH of the 8 vectors hashed alongside (the previous chunk's
 *    ciphertext when encrypting, this chunk's when decrypting), stitched
 *    one vector per round into the AES rounds, Karatsuba with precomputed
 *    half-sums, summed unreduced over the lanes and reduced once per chunk;
 *  - a chunk of 4 vectors for what is left, then the tier's own tail.
 *
 * Before including, a tier defines TARGET and INLINE, WIDE_BITS (256 or
 * 512) and WIDE_LANES (2 or 4), and three inline helpers whose intrinsics
 * have no common naming pattern: wide_bcast (one block to every lane),
 * wide_fold (the XOR of the lanes) and wide_last_base (a vector of the low
 * base in its first WIDE_LANES - 2 lanes and the high one in the last two;
 * see wide_chunk_counters). After including, it defines
 * tier_aad_hash and tier_finish (declared below), which the body calls for
 * the associated data and for the last bytes and the tag.
 */
#ifndef KMS_GCM_VAES_WIDE_H
#define KMS_GCM_VAES_WIDE_H

#include "gcm_x86_sse.h"

#define W_PASTE_(a, b) a##b
#define W_PASTE(a, b) W_PASTE_(a, b)
/* _mm512_op or _mm256_op; W_SI adds the si512 / si256 suffix. */
#define W_OP(op) W_PASTE(W_PASTE(_mm, WIDE_BITS), _##op)
#define W_SI(op) W_PASTE(W_OP(op##_si), WIDE_BITS)

#define VEC W_PASTE(W_PASTE(__m, WIDE_BITS), i)
#define vec_load(p) W_SI(loadu)((const void *)(p))
#define vec_store(p, v) W_SI(storeu)((void *)(p), (v))
#define vec_xor W_SI(xor)
#define vec_zero W_SI(setzero)
#define vec_zext W_PASTE(W_OP(zextsi128_si), WIDE_BITS)
#define vec_shuffle8 W_OP(shuffle_epi8)
#define vec_add32 W_OP(add_epi32)
#define vec_aesenc W_OP(aesenc_epi128)
#define vec_aesenclast W_OP(aesenclast_epi128)
#define vec_clmul W_OP(clmulepi64_epi128)
#define vec_swap64(v) W_OP(shuffle_epi32)((v), 0x4e)

/* Bytes of one vector, of the main chunk (8 vectors) and of the short one. */
#define WIDE_VEC_BYTES (16 * WIDE_LANES)
#define WIDE_BIG (8 * WIDE_VEC_BYTES)
#define WIDE_SMALL (4 * WIDE_VEC_BYTES)

/* Lane k's counter offset k + 1, in the dword the counter lives in. */
static const uint32_t wide_lane_steps[16] = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0};
/* The same offsets added to the last byte of a block in memory order. */
static const uint32_t wide_lane_steps_be[16] = {0, 0, 0, 1u << 24, 0, 0, 0, 2u << 24,
                                                0, 0, 0, 3u << 24, 0, 0, 0, 4u << 24};

INLINE __m128i tier_aad_hash(const kms_gcm_ctx *ctx, const uint8_t *aad, size_t len);
INLINE void tier_finish(const kms_gcm_ctx *ctx, __m128i ctr, __m128i j0, __m128i y,
                        const uint8_t *src, uint8_t *dst, size_t len, uint64_t aad_len,
                        uint64_t total_len, uint8_t *tag, const int decrypt,
                        const int rounds);

INLINE VEC wide_rk(const kms_gcm_ctx *ctx, int r) { return wide_bcast(RK(ctx, r)); }
INLINE VEC wide_bswap(void) { return wide_bcast(bswap_mask128()); }

/* Powers as vectors: wide_hp(ctx, i) holds h_powers[i .. i + WIDE_LANES - 1]. */
INLINE VEC wide_hp(const kms_gcm_ctx *ctx, size_t i) { return vec_load(ctx->h_powers[i]); }
INLINE VEC wide_hk(const kms_gcm_ctx *ctx, size_t i) { return vec_load(ctx->h_karatsuba[i]); }

/* GHASH of the whole 8-vector chunks at the start of *p, 8 vectors per
 * reduction; *p and *len move past them. */
INLINE __m128i wide_ghash_chunks(const kms_gcm_ctx *ctx, __m128i y, const uint8_t **p,
                                 size_t *len);

/* ctr advanced past n vectors of blocks. */
INLINE __m128i wide_advance(__m128i ctr, const int n)
{
    return _mm_add_epi32(ctr, _mm_set_epi32(0, 0, 0, WIDE_LANES * n));
}

/* n vectors of the counter blocks after ctr (the last one used), in memory
 * order. */
INLINE void wide_counters(__m128i ctr, VEC *b, const int n)
{
    if ((_mm_cvtsi128_si32(ctr) & 0xff) + WIDE_LANES * n <= 0xff) {
        /* No carry leaves the counter's last byte: add in memory order,
         * where that byte is the top of dword 3, and skip the byte swaps
         * (shuffles share ports with the AES rounds). */
        const VEC step = wide_bcast(_mm_set_epi32(WIDE_LANES << 24, 0, 0, 0));
        VEC c = vec_add32(wide_bcast(bswap128(ctr)), vec_load(wide_lane_steps_be));
        UNROLL
        for (int k = 0; k < n; k++) {
            b[k] = c;
            c = vec_add32(c, step);
        }
        return;
    }
    const VEC step = wide_bcast(_mm_set_epi32(0, 0, 0, WIDE_LANES));
    const VEC bswap = wide_bswap();
    VEC c = vec_add32(wide_bcast(ctr), vec_load(wide_lane_steps));
    UNROLL
    for (int k = 0; k < n; k++) {
        b[k] = vec_shuffle8(c, bswap);
        c = vec_add32(c, step);
    }
}

/* Round r (< rounds) on n vectors; round 0 is the key XOR. */
INLINE void wide_round(const kms_gcm_ctx *ctx, VEC *b, const int n, const int r)
{
    VEC key = wide_rk(ctx, r);
    UNROLL
    for (int k = 0; k < n; k++)
        b[k] = r == 0 ? vec_xor(b[k], key) : vec_aesenc(b[k], key);
}

/* n vectors through all rounds, round-major. */
INLINE void wide_aes(const kms_gcm_ctx *ctx, VEC *b, const int n, const int rounds)
{
    UNROLL
    for (int r = 0; r < rounds; r++)
        wide_round(ctx, b, n, r);
    VEC kl = wide_rk(ctx, rounds);
    UNROLL
    for (int k = 0; k < n; k++)
        b[k] = vec_aesenclast(b[k], kl);
}

/* Karatsuba product of every lane, unreduced: three multiplies instead of
 * four; hk holds each power's halves XORed together. The middle term still
 * needs lo ^ hi, which ghash_reduce folds in once per aggregate. */
INLINE void wide_kara_acc(VEC x, VEC h, VEC hk, VEC *lo, VEC *mi, VEC *hi)
{
    *lo = vec_xor(*lo, vec_clmul(x, h, 0x00));
    *hi = vec_xor(*hi, vec_clmul(x, h, 0x11));
    *mi = vec_xor(*mi, vec_clmul(vec_xor(x, vec_swap64(x)), hk, 0x00));
    /* Keep the sums running: left alone, GCC reassociates the XOR chains
     * to the end of the chunk and spills every product to the stack (16
     * ymm registers do not hold 24 of them). */
    __asm__("" : "+x"(*lo), "+x"(*mi), "+x"(*hi));
}

/* Vector j of a chunk that starts `offset` vectors into an aggregate of
 * `span` vectors, byte-reversed, with the running hash y folded into the
 * aggregate's first; its products go against H^(LANES*(span-offset-j)) down. */
INLINE void wide_hash_vector(const kms_gcm_ctx *ctx, const uint8_t *p, __m128i y,
                             const int j, const int span, const int offset, VEC *lo,
                             VEC *mi, VEC *hi)
{
    const size_t at = GCM_MAX_POWERS - WIDE_LANES * (size_t)(span - offset - j);
    VEC x = vec_shuffle8(vec_load(p + WIDE_VEC_BYTES * j), wide_bswap());
    if (offset + j == 0)
        x = vec_xor(x, vec_zext(y));
    wide_kara_acc(x, wide_hp(ctx, at), wide_hk(ctx, at), lo, mi, hi);
}

INLINE __m128i wide_reduce(VEC lo, VEC mi, VEC hi)
{
    return ghash_reduce(wide_fold(lo), wide_fold(mi), wide_fold(hi));
}

/* GHASH of nv whole vectors at p, one reduction. */
INLINE __m128i wide_ghash(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p, const int nv)
{
    VEC lo = vec_zero(), mi = lo, hi = lo;
    UNROLL
    for (int j = 0; j < nv; j++)
        wide_hash_vector(ctx, p, y, j, nv, 0, &lo, &mi, &hi);
    return wide_reduce(lo, mi, hi);
}

INLINE __m128i wide_ghash_chunks(const kms_gcm_ctx *ctx, __m128i y, const uint8_t **p,
                                 size_t *len)
{
    for (; *len >= WIDE_BIG; *p += WIDE_BIG, *len -= WIDE_BIG)
        y = wide_ghash(ctx, y, *p, 8);
    return y;
}

/* nv vectors (4 or 8) of keystream XORed from src into dst, with the GHASH
 * of the nv vectors at hash_src stitched between the AES rounds (one vector
 * per round over the first 8, of at least 10) and added, unreduced, to
 * lo/mi/hi as part `offset` of an aggregate of `span` vectors. */
INLINE void wide_stitched_part(const kms_gcm_ctx *ctx, VEC *b, const uint8_t *src,
                               uint8_t *dst, const uint8_t *hash_src, __m128i y,
                               const int rounds, const int nv, const int span,
                               const int offset, VEC *lo, VEC *mi, VEC *hi)
{
    /* When encrypting, hash_src is the chunk just written; hidden from the
     * optimiser, it is reloaded (from L1) rather than kept in registers
     * from the stores, which spilled them all. */
    __asm__("" : "+r"(hash_src));
    UNROLL
    for (int r = 1; r < rounds; r++) {
        wide_round(ctx, b, nv, r);
        if (r <= 8 && ((r - 1) % (8 / nv)) == 0)
            wide_hash_vector(ctx, hash_src, y, (r - 1) / (8 / nv), span, offset, lo, mi, hi);
    }
    VEC kl = wide_rk(ctx, rounds);
    UNROLL
    for (int k = 0; k < nv; k++)
        b[k] = vec_aesenclast(b[k], vec_xor(kl, vec_load(src + WIDE_VEC_BYTES * k)));
    UNROLL
    for (int k = 0; k < nv; k++)
        vec_store(dst + WIDE_VEC_BYTES * k, b[k]);
}

/* One chunk of nv vectors, its GHASH reduced on its own. */
INLINE __m128i wide_stitched(const kms_gcm_ctx *ctx, __m128i ctr, const uint8_t *src,
                             uint8_t *dst, const uint8_t *hash_src, __m128i y,
                             const int rounds, const int nv)
{
    VEC b[8], lo = vec_zero(), mi = lo, hi = lo;
    wide_counters(ctr, b, nv);
    wide_round(ctx, b, nv, 0);
    wide_stitched_part(ctx, b, src, dst, hash_src, y, rounds, nv, nv, 0, &lo, &mi, &hi);
    return wide_reduce(lo, mi, hi);
}

/* ---- the big chunks' counters -------------------------------------------
 * Big chunks (N = 8 * WIDE_LANES blocks) start N * k blocks after the
 * first data block, whose counter is 2, so a chunk's counters are base + 2
 * .. base + N + 1 with base a multiple of N: the first N - 2 are base with
 * a number below N in its low bits, the last two base + N with 0 and 1. In
 * memory order those low bits sit in the block's last byte, so each counter
 * block is one XOR of a constant into a base block that already carries
 * round key 0: no add, no byte swap, and round 0 comes free. */
#define WIDE_N (8 * WIDE_LANES)
#define W_OFF(t) 0, 0, 0, (uint32_t)((t) < WIDE_N - 2 ? (t) + 2 : (t) - (WIDE_N - 2)) << 24
static const uint32_t wide_chunk_offsets[32 * 4] = {
    W_OFF(0),  W_OFF(1),  W_OFF(2),  W_OFF(3),  W_OFF(4),  W_OFF(5),  W_OFF(6),  W_OFF(7),
    W_OFF(8),  W_OFF(9),  W_OFF(10), W_OFF(11), W_OFF(12), W_OFF(13), W_OFF(14), W_OFF(15),
    W_OFF(16), W_OFF(17), W_OFF(18), W_OFF(19), W_OFF(20), W_OFF(21), W_OFF(22), W_OFF(23),
    W_OFF(24), W_OFF(25), W_OFF(26), W_OFF(27), W_OFF(28), W_OFF(29), W_OFF(30), W_OFF(31)};

/* Base block for the aligned counter base (LE, lane 0), whitened. */
INLINE VEC wide_keyed_base(const kms_gcm_ctx *ctx, __m128i base)
{
    return vec_xor(wide_bcast(bswap128(base)), wide_rk(ctx, 0));
}

/* A big chunk's 8 whitened counter vectors from the base blocks of its run
 * (low) and of the next (high). */
INLINE void wide_chunk_counters(VEC low, VEC high, VEC *b)
{
    UNROLL
    for (int k = 0; k < 7; k++)
        b[k] = vec_xor(low, vec_load(wide_chunk_offsets + 4 * WIDE_LANES * k));
    b[7] = vec_xor(wide_last_base(low, high), vec_load(wide_chunk_offsets + 4 * WIDE_LANES * 7));
}

/* Where the powers reach (16 vectors of 2 blocks: the 256-bit tier), two big
 * chunks share one reduction: the fold and reduce cost as much as a sixth
 * of a chunk's GHASH there. */
#define WIDE_PAIRS (16 * WIDE_LANES <= GCM_MAX_POWERS)

/* Big chunks from in + i while one is left, each hashing the chunk at
 * hashed + i (hashed = in to decrypt: its own ciphertext; out - WIDE_BIG
 * to encrypt: the one before). ctr is the last counter used, so ctr - 1 is
 * the first chunk's base. Returns the new i. */
INLINE size_t wide_big_chunks(const kms_gcm_ctx *ctx, __m128i *ctr, __m128i *y,
                              const uint8_t *in, uint8_t *out, size_t i, size_t len,
                              const uint8_t *hashed, const int rounds)
{
    const __m128i run = _mm_set_epi32(0, 0, 0, WIDE_N);
    __m128i base = _mm_sub_epi32(*ctr, _mm_set_epi32(0, 0, 0, 1));
    VEC low = wide_keyed_base(ctx, base);
    while (len - i >= WIDE_BIG) {
        VEC b[8], lo = vec_zero(), mi = lo, hi = lo;
        const int pair = WIDE_PAIRS && len - i >= 2 * WIDE_BIG;
        base = _mm_add_epi32(base, run);
        VEC high = wide_keyed_base(ctx, base);
        wide_chunk_counters(low, high, b);
        wide_stitched_part(ctx, b, in + i, out + i, hashed + i, *y, rounds, 8, pair ? 16 : 8, 0,
                           &lo, &mi, &hi);
        low = high;
        i += WIDE_BIG;
        if (pair) {
            base = _mm_add_epi32(base, run);
            high = wide_keyed_base(ctx, base);
            wide_chunk_counters(low, high, b);
            wide_stitched_part(ctx, b, in + i, out + i, hashed + i, *y, rounds, 8, 16, 8,
                               &lo, &mi, &hi);
            low = high;
            i += WIDE_BIG;
        }
        *y = wide_reduce(lo, mi, hi);
    }
    *ctr = _mm_add_epi32(base, _mm_set_epi32(0, 0, 0, 1));
    return i;
}

/* Plain CTR over nv vectors (no GHASH): the first chunk of an encryption,
 * which has no earlier ciphertext to hash alongside. */
INLINE void wide_ctr_only(const kms_gcm_ctx *ctx, __m128i ctr, const uint8_t *src,
                          uint8_t *dst, const int rounds, const int nv)
{
    VEC b[8];
    wide_counters(ctr, b, nv);
    wide_aes(ctx, b, nv, rounds);
    UNROLL
    for (int k = 0; k < nv; k++)
        vec_store(dst + WIDE_VEC_BYTES * k,
                  vec_xor(b[k], vec_load(src + WIDE_VEC_BYTES * k)));
    UNROLL
    for (int k = 0; k < nv; k++)
        b[k] = vec_zero();
}

INLINE void wide_gcm_crypt(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                           const uint8_t *aad, size_t aad_len, const uint8_t *in,
                           uint8_t *out, size_t len, uint8_t *tag, const int decrypt,
                           const int rounds)
{
    __m128i y = tier_aad_hash(ctx, aad, aad_len);
    __m128i j0 = j0_block(nonce);
    __m128i ctr = bswap128(j0); /* lane 0 holds the 32-bit counter, now 1 */
    size_t i = 0;

    if (decrypt) {
        /* Ciphertext is known up front: hash each chunk while making its
         * keystream. Loads precede stores, so in == out is safe. */
        i = wide_big_chunks(ctx, &ctr, &y, in, out, 0, len, in, rounds);
        if (len - i >= WIDE_SMALL) {
            y = wide_stitched(ctx, ctr, in + i, out + i, in + i, y, rounds, 4);
            ctr = wide_advance(ctr, 4);
            i += WIDE_SMALL;
        }
    } else {
        /* Chunk k is encrypted while chunk k-1 (already in out) is hashed;
         * the first chunk has no predecessor and runs unstitched, and the
         * last is hashed alone. Below 4 big chunks those two unstitched
         * chunks would dominate, so short messages use short chunks only. */
        if (len >= 4 * WIDE_BIG) {
            wide_ctr_only(ctx, ctr, in, out, rounds, 8);
            ctr = wide_advance(ctr, 8);
            i = wide_big_chunks(ctx, &ctr, &y, in, out, WIDE_BIG, len, out - WIDE_BIG, rounds);
            y = wide_ghash(ctx, y, out + i - WIDE_BIG, 8);
        }
        if (len - i >= WIDE_SMALL) {
            wide_ctr_only(ctx, ctr, in + i, out + i, rounds, 4);
            ctr = wide_advance(ctr, 4);
            for (i += WIDE_SMALL; len - i >= WIDE_SMALL; i += WIDE_SMALL) {
                y = wide_stitched(ctx, ctr, in + i, out + i, out + i - WIDE_SMALL, y,
                                  rounds, 4);
                ctr = wide_advance(ctr, 4);
            }
            y = wide_ghash(ctx, y, out + i - WIDE_SMALL, 4);
        }
    }
    tier_finish(ctx, ctr, j0, y, in + i, out + i, len - i, aad_len, len, tag, decrypt,
                rounds);
}

#endif /* KMS_GCM_VAES_WIDE_H */
