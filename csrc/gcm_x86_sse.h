/*
 * gcm_x86_sse.h: the 128-bit GCM pieces every x86 tier shares. Private to
 * the gcm_*.c files; include it only where KMS_HAVE_X86_TIERS.
 *
 * GHASH works on byte-reversed blocks with H pre-multiplied by x (the "<<1
 * twist"), so a carry-less product reduced Montgomery-style with the
 * constant 0xC2 << 56 gives the field product with no bit reflection
 * (spec/aesni-gcm-notes.md sections 2-3).
 *
 * Everything here is always-inline with the AES-NI tier's target. GCC
 * inlines a function into any caller whose target is a superset, so the
 * wider tiers call these too, and get them in their own (VEX) encoding: the
 * 256-bit tier takes its tails, AAD and small-message batches from here.
 */
#ifndef KMS_GCM_X86_SSE_H
#define KMS_GCM_X86_SSE_H

#include <string.h>

#include <immintrin.h>

#include "gcm_internal.h"

#define SSE_TARGET __attribute__((target("aes,pclmul,sse4.1,ssse3")))
#define SSE_INLINE static inline __attribute__((always_inline)) SSE_TARGET
/* Loops over blocks and rounds have small constant bounds once inlined;
 * unrolling them keeps the blocks in registers instead of a stack array. */
#define UNROLL _Pragma("GCC unroll 16")

SSE_INLINE __m128i bswap_mask128(void)
{
    return _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

SSE_INLINE __m128i bswap128(__m128i x) { return _mm_shuffle_epi8(x, bswap_mask128()); }

SSE_INLINE __m128i loadu(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
SSE_INLINE void storeu(uint8_t *p, __m128i v) { _mm_storeu_si128((__m128i *)p, v); }

/* Bytes 0..n-1 of p into a zeroed block, never reading past p + n. */
SSE_INLINE __m128i load_partial(const uint8_t *p, size_t n)
{
    uint8_t buf[16] = {0};
    memcpy(buf, p, n);
    __m128i v = loadu(buf);
    kms_wipe(buf, sizeof buf);
    return v;
}

SSE_INLINE void store_partial(uint8_t *p, __m128i v, size_t n)
{
    uint8_t buf[16];
    storeu(buf, v);
    memcpy(p, buf, n);
    kms_wipe(buf, sizeof buf);
}

/* ---- GHASH ------------------------------------------------------------ */

/* Accumulate the unreduced Karatsuba product x * h into (lo, mi, hi).
 * hk holds h's two halves XORed together. */
SSE_INLINE void clmul_acc(__m128i x, __m128i h, __m128i hk, __m128i *lo,
                          __m128i *mi, __m128i *hi)
{
    *lo = _mm_xor_si128(*lo, _mm_clmulepi64_si128(x, h, 0x00));
    *hi = _mm_xor_si128(*hi, _mm_clmulepi64_si128(x, h, 0x11));
    __m128i xs = _mm_xor_si128(x, _mm_shuffle_epi32(x, 0x4e));
    *mi = _mm_xor_si128(*mi, _mm_clmulepi64_si128(xs, hk, 0x00));
}

/* Reduce a schoolbook aggregate (mi = the true middle term) to 128 bits:
 * two folds by the constant c = x^63 + x^62 + x^57 (reversed view), each
 * cancelling 64 low bits, so the result is the high half (Montgomery-style). */
SSE_INLINE __m128i ghash_reduce_mid(__m128i lo, __m128i mi, __m128i hi)
{
    const __m128i poly = _mm_set1_epi64x((long long)0xC200000000000000ULL);
    mi = _mm_xor_si128(mi, _mm_clmulepi64_si128(lo, poly, 0x00));
    mi = _mm_xor_si128(mi, _mm_shuffle_epi32(lo, 0x4e));
    hi = _mm_xor_si128(hi, _mm_clmulepi64_si128(mi, poly, 0x00));
    return _mm_xor_si128(hi, _mm_shuffle_epi32(mi, 0x4e));
}

/* The same for a Karatsuba aggregate, whose middle still needs lo ^ hi. */
SSE_INLINE __m128i ghash_reduce(__m128i lo, __m128i mi, __m128i hi)
{
    return ghash_reduce_mid(lo, _mm_xor_si128(mi, _mm_xor_si128(lo, hi)), hi);
}

#define HPOW(ctx, k) (((const __m128i *)(ctx)->h_powers)[GCM_MAX_POWERS - (k)])
#define HKAR(ctx, k) (((const __m128i *)(ctx)->h_karatsuba)[GCM_MAX_POWERS - (k)])

/* Hash n whole or partial blocks (n <= 16, total bytes len) plus an optional
 * final block `last` (already in GHASH byte order), with one reduction. */
SSE_INLINE __m128i sse_ghash_run(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
                                 size_t len, int has_last, __m128i last)
{
    size_t nblocks = (len + 15) / 16;
    size_t m = nblocks + (has_last ? 1 : 0);
    if (m == 0)
        return y;
    __m128i lo = _mm_setzero_si128(), mi = lo, hi = lo;
    UNROLL
    for (size_t j = 0; j < nblocks; j++) {
        size_t take = len - 16 * j < 16 ? len - 16 * j : 16;
        __m128i x = take == 16 ? loadu(p + 16 * j) : load_partial(p + 16 * j, take);
        x = bswap128(x);
        if (j == 0)
            x = _mm_xor_si128(x, y);
        clmul_acc(x, HPOW(ctx, m - j), HKAR(ctx, m - j), &lo, &mi, &hi);
    }
    if (has_last) {
        __m128i x = nblocks == 0 ? _mm_xor_si128(last, y) : last;
        clmul_acc(x, HPOW(ctx, 1), HKAR(ctx, 1), &lo, &mi, &hi);
    }
    return ghash_reduce(lo, mi, hi);
}

/* GHASH over any length of data (used for the AAD). */
SSE_INLINE __m128i sse_ghash_update(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
                                    size_t len)
{
    while (len >= 128) {
        y = sse_ghash_run(ctx, y, p, 128, 0, y);
        p += 128;
        len -= 128;
    }
    if (len)
        y = sse_ghash_run(ctx, y, p, len, 0, y);
    return y;
}

/* ---- AES -------------------------------------------------------------- */

#define RK(ctx, i) (((const __m128i *)(ctx)->round_keys)[i])

/* N blocks through all rounds, round-major so the N are in flight. */
SSE_INLINE void aes_blocks(const kms_gcm_ctx *ctx, __m128i *b, const int n,
                           const int rounds)
{
    UNROLL
    for (int k = 0; k < n; k++)
        b[k] = _mm_xor_si128(b[k], RK(ctx, 0));
    UNROLL
    for (int r = 1; r < rounds; r++) {
        __m128i key = RK(ctx, r);
        UNROLL
        for (int k = 0; k < n; k++)
            b[k] = _mm_aesenc_si128(b[k], key);
    }
    UNROLL
    for (int k = 0; k < n; k++)
        b[k] = _mm_aesenclast_si128(b[k], RK(ctx, rounds));
}

/* ---- GCM -------------------------------------------------------------- */

/* J0 = nonce || 0x00000001 for a 96-bit nonce (public: nothing to wipe). */
SSE_INLINE __m128i j0_block(const uint8_t *nonce)
{
    uint8_t b[16];
    memcpy(b, nonce, 12);
    b[12] = 0;
    b[13] = 0;
    b[14] = 0;
    b[15] = 1;
    return loadu(b);
}

/* Counter block ctr + k (ctr byte-reversed, so a 32-bit lane add is
 * exactly inc32), back in memory order. */
SSE_INLINE __m128i counter_block(__m128i ctr, int k)
{
    return bswap128(_mm_add_epi32(ctr, _mm_set_epi32(0, 0, 0, k)));
}

/* GHASH's final block: the bit lengths of the AAD and the text. */
SSE_INLINE __m128i lengths_block(uint64_t aad_len, uint64_t total_len)
{
    return _mm_set_epi64x((long long)(aad_len * 8), (long long)(total_len * 8));
}

/* tag = GHASH result (back in memory order) ^ E(K, J0). */
SSE_INLINE void write_tag(uint8_t *tag, __m128i y, __m128i ekj0)
{
    storeu(tag, _mm_xor_si128(bswap128(y), ekj0));
}

/* XOR keystream blocks ks over the last len < 128 bytes, hash them with the
 * length block and write the tag (E(K, J0) = ekj0). */
SSE_INLINE void sse_apply_tail(const kms_gcm_ctx *ctx, __m128i y, const __m128i *ks,
                               __m128i ekj0, const uint8_t *src, uint8_t *dst, size_t len,
                               uint64_t aad_len, uint64_t total_len, uint8_t *tag,
                               const int decrypt)
{
    size_t nb = (len + 15) / 16;
    __m128i lengths = lengths_block(aad_len, total_len);
    if (decrypt)
        y = sse_ghash_run(ctx, y, src, len, 1, lengths);
    for (size_t k = 0; k < nb; k++) {
        size_t take = len - 16 * k < 16 ? len - 16 * k : 16;
        if (take == 16) {
            storeu(dst + 16 * k, _mm_xor_si128(loadu(src + 16 * k), ks[k]));
        } else {
            __m128i c = _mm_xor_si128(load_partial(src + 16 * k, take), ks[k]);
            store_partial(dst + 16 * k, c, take);
            c = _mm_setzero_si128();
        }
    }
    if (!decrypt)
        y = sse_ghash_run(ctx, y, dst, len, 1, lengths);
    write_tag(tag, y, ekj0);
}

/* The last len < 128 bytes (possibly 0), the length block and the tag; ctr
 * is the counter of the last block already used. */
SSE_INLINE void sse_gcm_finish(const kms_gcm_ctx *ctx, __m128i ctr, __m128i j0,
                               __m128i y, const uint8_t *src, uint8_t *dst, size_t len,
                               uint64_t aad_len, uint64_t total_len, uint8_t *tag,
                               const int decrypt, const int rounds)
{
    size_t nb = (len + 15) / 16;
    __m128i b[8];
    __m128i ekj0;
    /* The tail's counter blocks and J0 share one AES pass when they fit. */
    UNROLL
    for (int k = 0; k < 8; k++)
        b[k] = counter_block(ctr, k + 1);
    if (nb < 4) {
        b[nb] = j0;
        aes_blocks(ctx, b, 4, rounds);
        ekj0 = b[nb];
    } else if (nb < 8) {
        b[nb] = j0;
        aes_blocks(ctx, b, 8, rounds);
        ekj0 = b[nb];
    } else {
        aes_blocks(ctx, b, 8, rounds);
        ekj0 = j0;
        aes_blocks(ctx, &ekj0, 1, rounds);
    }

    sse_apply_tail(ctx, y, b, ekj0, src, dst, len, aad_len, total_len, tag, decrypt);
    UNROLL
    for (int k = 0; k < 8; k++)
        b[k] = _mm_setzero_si128();
}

/* Small messages (each <= GCM_SMALL_MAX bytes: 4 data blocks + J0) two at a
 * time, so one 10-block AES pass serves both; GHASH stays per message. */
SSE_INLINE void sse_crypt_small(const kms_gcm_ctx *ctx, const struct gcm_msg *msgs,
                                size_t n, const int decrypt, const int rounds)
{
    for (size_t base = 0; base < n; base += 2) {
        __m128i b[10], y[2];
        UNROLL
        for (size_t j = 0; j < 2; j++) {
            if (base + j >= n) {
                UNROLL
                for (int i = 0; i < 5; i++)
                    b[5 * j + i] = _mm_setzero_si128();
                y[j] = _mm_setzero_si128();
                continue;
            }
            const struct gcm_msg *m = &msgs[base + j];
            __m128i j0 = j0_block(m->nonce);
            __m128i ctr = bswap128(j0);
            UNROLL
            for (int i = 0; i < 4; i++)
                b[5 * j + i] = counter_block(ctr, i + 1);
            b[5 * j + 4] = j0;
            y[j] = sse_ghash_update(ctx, _mm_setzero_si128(), m->aad, m->aad_len);
        }
        aes_blocks(ctx, b, 10, rounds);
        UNROLL
        for (size_t j = 0; j < 2; j++) {
            if (base + j >= n)
                break;
            const struct gcm_msg *m = &msgs[base + j];
            sse_apply_tail(ctx, y[j], &b[5 * j], b[5 * j + 4], m->in, m->out, m->len,
                           m->aad_len, m->len, m->tag, decrypt);
        }
        UNROLL
        for (int i = 0; i < 10; i++)
            b[i] = _mm_setzero_si128();
    }
}

#endif /* KMS_GCM_X86_SSE_H */
