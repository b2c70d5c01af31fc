/*
 * gcm_aesni.c: AES-GCM with AES-NI and PCLMULQDQ on 128-bit registers.
 *
 * Design (spec/aesni-gcm-notes.md sections 2-3):
 *  - GHASH, tails and small batches: gcm_x86_sse.h, shared with the VAES
 *    tiers.
 *  - 8 counter blocks are in flight per AES round; the GHASH of 8 blocks
 *    (Karatsuba, one reduction per 8 blocks) is stitched between the rounds.
 *  - The counter is kept byte-reversed so a 32-bit lane add is exactly inc32.
 *
 * Every function carries a target attribute instead of global -maes flags,
 * so this file compiles into a library that loads on any x86-64 CPU.
 */
#include <string.h>

#include "gcm_internal.h"

#if KMS_HAVE_X86_TIERS
#include "gcm_x86_sse.h"

#define TARGET SSE_TARGET
#define INLINE SSE_INLINE

/* a * b for two values in the twisted form (used at key setup). */
INLINE __m128i gf_mul(__m128i a, __m128i b)
{
    __m128i lo = _mm_setzero_si128(), mi = lo, hi = lo;
    __m128i bk = _mm_xor_si128(b, _mm_shuffle_epi32(b, 0x4e));
    clmul_acc(a, b, bk, &lo, &mi, &hi);
    return ghash_reduce(lo, mi, hi);
}

/* ---- key setup ---------------------------------------------------------- */

/* Key expansion with AESKEYGENASSIST (runs once per key, not per call). */
INLINE __m128i prefix_xor(__m128i k)
{
    __m128i t = _mm_slli_si128(k, 4);
    k = _mm_xor_si128(k, t);
    t = _mm_slli_si128(t, 4);
    k = _mm_xor_si128(k, t);
    t = _mm_slli_si128(t, 4);
    return _mm_xor_si128(k, t);
}

#define EXPAND128(prev, rcon) \
    _mm_xor_si128(prefix_xor(prev), \
                  _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev, rcon), 0xff))
/* AES-256: even round keys take RotWord+SubWord+rcon of the newest odd key,
 * odd round keys take SubWord alone of the newest even key. */
#define EXPAND256_EVEN(prev_even, prev_odd, rcon) \
    _mm_xor_si128(prefix_xor(prev_even), \
                  _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev_odd, rcon), 0xff))
#define EXPAND256_ODD(prev_odd, new_even) \
    _mm_xor_si128(prefix_xor(prev_odd), \
                  _mm_shuffle_epi32(_mm_aeskeygenassist_si128(new_even, 0), 0xaa))

TARGET static void expand_key(kms_gcm_ctx *ctx, const uint8_t *key, size_t key_len)
{
    __m128i *rk = (__m128i *)ctx->round_keys;
    if (key_len == 16) {
        ctx->rounds = 10;
        rk[0] = loadu(key);
        rk[1] = EXPAND128(rk[0], 0x01);
        rk[2] = EXPAND128(rk[1], 0x02);
        rk[3] = EXPAND128(rk[2], 0x04);
        rk[4] = EXPAND128(rk[3], 0x08);
        rk[5] = EXPAND128(rk[4], 0x10);
        rk[6] = EXPAND128(rk[5], 0x20);
        rk[7] = EXPAND128(rk[6], 0x40);
        rk[8] = EXPAND128(rk[7], 0x80);
        rk[9] = EXPAND128(rk[8], 0x1b);
        rk[10] = EXPAND128(rk[9], 0x36);
    } else {
        ctx->rounds = 14;
        rk[0] = loadu(key);
        rk[1] = loadu(key + 16);
        /* Two round keys a step; the round constant must be an immediate. */
#define EXPAND256_STEP(i, rcon) \
        (rk[i] = EXPAND256_EVEN(rk[(i) - 2], rk[(i) - 1], rcon), rk[(i) + 1] = EXPAND256_ODD(rk[(i) - 1], rk[i]))
        EXPAND256_STEP(2, 0x01); EXPAND256_STEP(4, 0x02); EXPAND256_STEP(6, 0x04);
        EXPAND256_STEP(8, 0x08); EXPAND256_STEP(10, 0x10); EXPAND256_STEP(12, 0x20);
#undef EXPAND256_STEP
        rk[14] = EXPAND256_EVEN(rk[12], rk[13], 0x40);
    }
}

/* Shared by every x86 tier: they use the same context layout, and VAES has
 * no key-expansion instruction of its own. */
TARGET void kms_gcm_x86_init(kms_gcm_ctx *ctx, const uint8_t *key, size_t key_len)
{
    expand_key(ctx, key, key_len);
    __m128i h = _mm_setzero_si128();
    if (ctx->rounds == 14)
        aes_blocks(ctx, &h, 1, 14);
    else
        aes_blocks(ctx, &h, 1, 10);
    h = bswap128(h);

    /* Twist: H * x modulo the reversed polynomial (shift left, fold the
     * carry back with 0xC2...01), in constant time. */
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(h);
    uint64_t hi = (uint64_t)_mm_extract_epi64(h, 1);
    uint64_t mask = 0 - (hi >> 63);
    hi = (hi << 1) | (lo >> 63);
    lo <<= 1;
    hi ^= mask & 0xC200000000000000ULL;
    lo ^= mask & 1;
    __m128i h1 = _mm_set_epi64x((long long)hi, (long long)lo);

    __m128i *powers = (__m128i *)ctx->h_powers;
    __m128i *kara = (__m128i *)ctx->h_karatsuba;
    __m128i cur = h1;
    UNROLL
    for (int k = 1; k <= GCM_MAX_POWERS; k++) {
        if (k > 1)
            cur = gf_mul(cur, h1);
        powers[GCM_MAX_POWERS - k] = cur;
        kara[GCM_MAX_POWERS - k] = _mm_xor_si128(cur, _mm_shuffle_epi32(cur, 0x4e));
    }
    UNROLL
    for (int k = 0; k < GCM_POWER_PAD; k++)
        powers[GCM_MAX_POWERS + k] = _mm_setzero_si128();
    h = h1 = cur = _mm_setzero_si128();
    lo = hi = mask = 0;
}

/* ---- GCM -------------------------------------------------------------- */

/* 8 counter blocks ctr+1..ctr+8 through AES, with the GHASH of the 8 blocks
 * at hash_src stitched between the rounds. The keystream is XORed into src
 * through the last round (AESENCLAST(k, a) ^ b == AESENCLAST(k ^ b, a)) and
 * written to dst. Returns the reduced hash state. */
INLINE __m128i stitched8(const kms_gcm_ctx *ctx, __m128i ctr,
                         const uint8_t *src, uint8_t *dst,
                         const uint8_t *hash_src, __m128i y, const int rounds)
{
    __m128i b[8];
    UNROLL
    for (int k = 0; k < 8; k++)
        b[k] = _mm_xor_si128(counter_block(ctr, k + 1), RK(ctx, 0));

    __m128i lo = _mm_setzero_si128(), mi = lo, hi = lo;
    UNROLL
    for (int r = 1; r < rounds; r++) {
        __m128i key = RK(ctx, r);
        UNROLL
        for (int k = 0; k < 8; k++)
            b[k] = _mm_aesenc_si128(b[k], key);
        if (r <= 8) {
            int j = r - 1;
            __m128i x = bswap128(loadu(hash_src + 16 * j));
            if (j == 0)
                x = _mm_xor_si128(x, y);
            clmul_acc(x, HPOW(ctx, 8 - j), HKAR(ctx, 8 - j), &lo, &mi, &hi);
        }
    }
    __m128i last = RK(ctx, rounds);
    UNROLL
    for (int k = 0; k < 8; k++)
        b[k] = _mm_aesenclast_si128(b[k], _mm_xor_si128(last, loadu(src + 16 * k)));
    UNROLL
    for (int k = 0; k < 8; k++)
        storeu(dst + 16 * k, b[k]);
    return ghash_reduce(lo, mi, hi);
}

INLINE void gcm_crypt(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      uint8_t *out, size_t len, uint8_t *tag, const int decrypt,
                      const int rounds)
{
    __m128i y = sse_ghash_update(ctx, _mm_setzero_si128(), aad, aad_len);
    __m128i j0 = j0_block(nonce);
    __m128i ctr = bswap128(j0); /* lane 0 holds the 32-bit counter, now 1 */
    const __m128i eight = _mm_set_epi32(0, 0, 0, 8);
    size_t i = 0;

    if (decrypt) {
        /* Ciphertext is known up front: hash each chunk while making its
         * keystream. Loads precede the stores, so in == out is safe. */
        for (; len - i >= 128; i += 128) {
            y = stitched8(ctx, ctr, in + i, out + i, in + i, y, rounds);
            ctr = _mm_add_epi32(ctr, eight);
        }
    } else if (len >= 128) {
        /* Encrypt chunk k while hashing chunk k-1, which is already in out.
         * The first chunk has no predecessor, so it runs unstitched. */
        __m128i b[8];
        UNROLL
        for (int k = 0; k < 8; k++)
            b[k] = counter_block(ctr, k + 1);
        aes_blocks(ctx, b, 8, rounds);
        UNROLL
        for (int k = 0; k < 8; k++)
            storeu(out + 16 * k, _mm_xor_si128(loadu(in + 16 * k), b[k]));
        UNROLL
        for (int k = 0; k < 8; k++)
            b[k] = _mm_setzero_si128();
        ctr = _mm_add_epi32(ctr, eight);
        for (i = 128; len - i >= 128; i += 128) {
            y = stitched8(ctx, ctr, in + i, out + i, out + i - 128, y, rounds);
            ctr = _mm_add_epi32(ctr, eight);
        }
        y = sse_ghash_run(ctx, y, out + i - 128, 128, 0, y);
    }
    sse_gcm_finish(ctx, ctr, j0, y, in + i, out + i, len - i, aad_len, len, tag,
                   decrypt, rounds);
}

GCM_DEFINE_TIER(TARGET, aesni, kms_gcm_x86_init, gcm_crypt, sse_crypt_small)

#endif /* KMS_HAVE_X86_TIERS */
