/*
 * gcm_aesni.c: AES-GCM with AES-NI and PCLMULQDQ on 128-bit registers.
 *
 * Design (spec/aesni-gcm-notes.md sections 2-3):
 *  - GHASH works on byte-reversed blocks with H pre-multiplied by x (the
 *    "<<1 twist"), so a carry-less product reduced Montgomery-style with the
 *    constant 0xC2 << 56 gives the field product with no bit reflection.
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
#include <immintrin.h>

#define TARGET __attribute__((target("aes,pclmul,sse4.1,ssse3")))
/* Loops over blocks and rounds have small constant bounds once inlined;
 * unrolling them keeps the blocks in registers instead of a stack array. */
#define UNROLL _Pragma("GCC unroll 16")
#define INLINE static inline __attribute__((always_inline)) TARGET

/* 0xff for the first n bytes of a block: load at mask_table + 16 - n. */
static const uint8_t mask_table[32] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

INLINE __m128i bswap128(__m128i x)
{
    const __m128i m = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                   13, 14, 15);
    return _mm_shuffle_epi8(x, m);
}

INLINE __m128i loadu(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
INLINE void storeu(uint8_t *p, __m128i v) { _mm_storeu_si128((__m128i *)p, v); }

/* Bytes 0..n-1 of p into a zeroed block, never reading past p + n. */
INLINE __m128i load_partial(const uint8_t *p, size_t n)
{
    uint8_t buf[16] = {0};
    memcpy(buf, p, n);
    __m128i v = loadu(buf);
    kms_wipe(buf, sizeof buf);
    return v;
}

INLINE void store_partial(uint8_t *p, __m128i v, size_t n)
{
    uint8_t buf[16];
    storeu(buf, v);
    memcpy(p, buf, n);
    kms_wipe(buf, sizeof buf);
}

INLINE __m128i keep_first_bytes(__m128i v, size_t n)
{
    return _mm_and_si128(v, loadu(mask_table + 16 - n));
}

/* ---- GHASH ------------------------------------------------------------ */

/* Accumulate the unreduced Karatsuba product x * h into (lo, mi, hi).
 * hk holds h's two halves XORed together. */
INLINE void clmul_acc(__m128i x, __m128i h, __m128i hk, __m128i *lo,
                      __m128i *mi, __m128i *hi)
{
    *lo = _mm_xor_si128(*lo, _mm_clmulepi64_si128(x, h, 0x00));
    *hi = _mm_xor_si128(*hi, _mm_clmulepi64_si128(x, h, 0x11));
    __m128i xs = _mm_xor_si128(x, _mm_shuffle_epi32(x, 0x4e));
    *mi = _mm_xor_si128(*mi, _mm_clmulepi64_si128(xs, hk, 0x00));
}

/* Reduce an aggregate of Karatsuba products to 128 bits: two folds by the
 * constant c = x^63 + x^62 + x^57 (reversed view), each cancelling 64 low
 * bits, so the result is the high half (Montgomery-style). */
INLINE __m128i ghash_reduce(__m128i lo, __m128i mi, __m128i hi)
{
    const __m128i poly = _mm_set1_epi64x((long long)0xC200000000000000ULL);
    mi = _mm_xor_si128(mi, _mm_xor_si128(lo, hi)); /* Karatsuba fix-up */
    mi = _mm_xor_si128(mi, _mm_clmulepi64_si128(lo, poly, 0x00));
    mi = _mm_xor_si128(mi, _mm_shuffle_epi32(lo, 0x4e));
    hi = _mm_xor_si128(hi, _mm_clmulepi64_si128(mi, poly, 0x00));
    hi = _mm_xor_si128(hi, _mm_shuffle_epi32(mi, 0x4e));
    return hi;
}

/* a * b for two values in the twisted form (used at key setup). */
INLINE __m128i gf_mul(__m128i a, __m128i b)
{
    __m128i lo = _mm_setzero_si128(), mi = lo, hi = lo;
    __m128i bk = _mm_xor_si128(b, _mm_shuffle_epi32(b, 0x4e));
    clmul_acc(a, b, bk, &lo, &mi, &hi);
    return ghash_reduce(lo, mi, hi);
}

#define HPOW(ctx, k) (((const __m128i *)(ctx)->h_powers)[GCM_MAX_POWERS - (k)])
#define HKAR(ctx, k) (((const __m128i *)(ctx)->h_karatsuba)[GCM_MAX_POWERS - (k)])

/* Hash n whole or partial blocks (n <= 16, total bytes len) plus an optional
 * final block `last` (already in GHASH byte order), with one reduction. */
INLINE __m128i ghash_run(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
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
INLINE __m128i ghash_update(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
                            size_t len)
{
    while (len >= 128) {
        y = ghash_run(ctx, y, p, 128, 0, y);
        p += 128;
        len -= 128;
    }
    if (len)
        y = ghash_run(ctx, y, p, len, 0, y);
    return y;
}

/* ---- AES -------------------------------------------------------------- */

#define RK(i) (((const __m128i *)ctx->round_keys)[i])

/* N blocks through all rounds, round-major so the N are in flight. */
INLINE void aes_blocks(const kms_gcm_ctx *ctx, __m128i *b, const int n,
                       const int rounds)
{
    UNROLL
    for (int k = 0; k < n; k++)
        b[k] = _mm_xor_si128(b[k], RK(0));
    UNROLL
    for (int r = 1; r < rounds; r++) {
        __m128i key = RK(r);
        UNROLL
        for (int k = 0; k < n; k++)
            b[k] = _mm_aesenc_si128(b[k], key);
    }
    UNROLL
    for (int k = 0; k < n; k++)
        b[k] = _mm_aesenclast_si128(b[k], RK(rounds));
}

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
        rk[2] = EXPAND256_EVEN(rk[0], rk[1], 0x01);
        rk[3] = EXPAND256_ODD(rk[1], rk[2]);
        rk[4] = EXPAND256_EVEN(rk[2], rk[3], 0x02);
        rk[5] = EXPAND256_ODD(rk[3], rk[4]);
        rk[6] = EXPAND256_EVEN(rk[4], rk[5], 0x04);
        rk[7] = EXPAND256_ODD(rk[5], rk[6]);
        rk[8] = EXPAND256_EVEN(rk[6], rk[7], 0x08);
        rk[9] = EXPAND256_ODD(rk[7], rk[8]);
        rk[10] = EXPAND256_EVEN(rk[8], rk[9], 0x10);
        rk[11] = EXPAND256_ODD(rk[9], rk[10]);
        rk[12] = EXPAND256_EVEN(rk[10], rk[11], 0x20);
        rk[13] = EXPAND256_ODD(rk[11], rk[12]);
        rk[14] = EXPAND256_EVEN(rk[12], rk[13], 0x40);
    }
}

/* Shared by both x86 tiers: the VAES tier uses the same context layout. */
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

INLINE __m128i j0_block(const uint8_t *nonce)
{
    uint8_t b[16];
    memcpy(b, nonce, 12);
    b[12] = 0;
    b[13] = 0;
    b[14] = 0;
    b[15] = 1;
    return loadu(b);
}

/* 8 counter blocks ctr+1..ctr+8 through AES, with the GHASH of the 8 blocks
 * at hash_src stitched between the rounds. The keystream is XORed into src
 * through the last round (AESENCLAST(k, a) ^ b == AESENCLAST(k ^ b, a)) and
 * written to dst. Returns the reduced hash state. */
INLINE __m128i stitched8(const kms_gcm_ctx *ctx, __m128i ctr,
                         const uint8_t *src, uint8_t *dst,
                         const uint8_t *hash_src, __m128i y, const int rounds)
{
    const __m128i bswap_mask = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                            11, 12, 13, 14, 15);
    __m128i b[8];
    UNROLL
    for (int k = 0; k < 8; k++)
        b[k] = _mm_shuffle_epi8(_mm_add_epi32(ctr, _mm_set_epi32(0, 0, 0, k + 1)),
                                bswap_mask);
    UNROLL
    for (int k = 0; k < 8; k++)
        b[k] = _mm_xor_si128(b[k], RK(0));

    __m128i lo = _mm_setzero_si128(), mi = lo, hi = lo;
    UNROLL
    for (int r = 1; r < rounds; r++) {
        __m128i key = RK(r);
        UNROLL
        for (int k = 0; k < 8; k++)
            b[k] = _mm_aesenc_si128(b[k], key);
        if (r <= 8) {
            int j = r - 1;
            __m128i x = _mm_shuffle_epi8(loadu(hash_src + 16 * j), bswap_mask);
            if (j == 0)
                x = _mm_xor_si128(x, y);
            clmul_acc(x, HPOW(ctx, 8 - j), HKAR(ctx, 8 - j), &lo, &mi, &hi);
        }
    }
    __m128i last = RK(rounds);
    UNROLL
    for (int k = 0; k < 8; k++)
        b[k] = _mm_aesenclast_si128(b[k], _mm_xor_si128(last, loadu(src + 16 * k)));
    UNROLL
    for (int k = 0; k < 8; k++)
        storeu(dst + 16 * k, b[k]);
    return ghash_reduce(lo, mi, hi);
}

/* XOR keystream blocks ks over the last len < 128 bytes, hash them with the
 * length block and write the tag (E(K, J0) = ekj0). */
INLINE void apply_tail(const kms_gcm_ctx *ctx, __m128i y, const __m128i *ks,
                       __m128i ekj0, const uint8_t *src, uint8_t *dst, size_t len,
                       uint64_t aad_len, uint64_t total_len, uint8_t *tag,
                       const int decrypt)
{
    size_t nb = (len + 15) / 16;
    __m128i lengths = _mm_set_epi64x((long long)(aad_len * 8),
                                     (long long)(total_len * 8));
    if (decrypt)
        y = ghash_run(ctx, y, src, len, 1, lengths);
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
        y = ghash_run(ctx, y, dst, len, 1, lengths);
    storeu(tag, _mm_xor_si128(bswap128(y), ekj0));
}

/* The last len < 128 bytes (possibly 0), the length block and the tag. */
INLINE void gcm_finish(const kms_gcm_ctx *ctx, __m128i ctr, __m128i j0,
                       __m128i y, const uint8_t *src, uint8_t *dst, size_t len,
                       uint64_t aad_len, uint64_t total_len, uint8_t *tag,
                       const int decrypt, const int rounds)
{
    const __m128i bswap_mask = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                            11, 12, 13, 14, 15);
    size_t nb = (len + 15) / 16;
    __m128i b[8];
    __m128i ekj0;
    /* The tail's counter blocks and J0 share one AES pass when they fit. */
    UNROLL
    for (size_t k = 0; k < 8; k++)
        b[k] = _mm_shuffle_epi8(
            _mm_add_epi32(ctr, _mm_set_epi32(0, 0, 0, (int)k + 1)), bswap_mask);
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

    apply_tail(ctx, y, b, ekj0, src, dst, len, aad_len, total_len, tag, decrypt);
    UNROLL
    for (int k = 0; k < 8; k++)
        b[k] = _mm_setzero_si128();
}

/* Small messages (each <= GCM_SMALL_MAX bytes: 4 data blocks + J0) two at a
 * time, so one 10-block AES pass serves both; GHASH stays per message. */
INLINE void crypt_small(const kms_gcm_ctx *ctx, const struct gcm_msg *msgs, size_t n,
                        const int decrypt, const int rounds)
{
    const __m128i bswap_mask = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                            11, 12, 13, 14, 15);
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
            __m128i ctr = _mm_shuffle_epi8(j0, bswap_mask);
            UNROLL
            for (int i = 0; i < 4; i++)
                b[5 * j + i] = _mm_shuffle_epi8(
                    _mm_add_epi32(ctr, _mm_set_epi32(0, 0, 0, i + 1)), bswap_mask);
            b[5 * j + 4] = j0;
            y[j] = ghash_update(ctx, _mm_setzero_si128(), m->aad, m->aad_len);
        }
        aes_blocks(ctx, b, 10, rounds);
        UNROLL
        for (size_t j = 0; j < 2; j++) {
            if (base + j >= n)
                break;
            const struct gcm_msg *m = &msgs[base + j];
            apply_tail(ctx, y[j], &b[5 * j], b[5 * j + 4], m->in, m->out, m->len,
                       m->aad_len, m->len, m->tag, decrypt);
        }
        UNROLL
        for (int i = 0; i < 10; i++)
            b[i] = _mm_setzero_si128();
    }
}

INLINE void gcm_crypt(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      uint8_t *out, size_t len, uint8_t *tag, const int decrypt,
                      const int rounds)
{
    __m128i y = ghash_update(ctx, _mm_setzero_si128(), aad, aad_len);
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
        const __m128i bswap_mask = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                10, 11, 12, 13, 14, 15);
        UNROLL
        for (int k = 0; k < 8; k++)
            b[k] = _mm_shuffle_epi8(
                _mm_add_epi32(ctr, _mm_set_epi32(0, 0, 0, k + 1)), bswap_mask);
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
        y = ghash_run(ctx, y, out + i - 128, 128, 0, y);
    }
    gcm_finish(ctx, ctr, j0, y, in + i, out + i, len - i, aad_len, len, tag,
               decrypt, rounds);
}

GCM_DEFINE_CRYPT(TARGET, aesni_encrypt, gcm_crypt, 0)
GCM_DEFINE_CRYPT(TARGET, aesni_decrypt, gcm_crypt, 1)
GCM_DEFINE_SMALL(TARGET, aesni_encrypt_small, crypt_small, 0)
GCM_DEFINE_SMALL(TARGET, aesni_decrypt_small, crypt_small, 1)

const struct gcm_tier kms_gcm_tier_aesni = {
    "aesni", kms_gcm_x86_init, aesni_encrypt, aesni_decrypt,
    aesni_encrypt_small, aesni_decrypt_small,
};

#endif /* KMS_HAVE_X86_TIERS */
