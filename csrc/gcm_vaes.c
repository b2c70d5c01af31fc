/*
 * gcm_vaes.c: AES-GCM with VAES and VPCLMULQDQ on 512-bit vectors.
 *
 * Same field arithmetic and context as gcm_aesni.c, four blocks per
 * register (spec/aesni-gcm-notes.md section 4):
 *  - the bulk is gcm_vaes_wide.h at 512 bits: 32 blocks (8 zmm) per
 *    iteration, one GHASH reduction per 32 blocks, stitched between the AES
 *    rounds;
 *  - tails use AVX-512 byte-masked loads and stores: no over-reads, no
 *    scalar loop. J0 rides in a spare lane of the last counter vector.
 */
#include <string.h>

#include "gcm_internal.h"

#if KMS_HAVE_X86_TIERS
#include <immintrin.h>

#define TARGET                                                                 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,vaes,"           \
                          "vpclmulqdq,aes,pclmul,sse4.1,ssse3,avx2,bmi2")))
#define INLINE static inline __attribute__((always_inline)) TARGET

#define WIDE_BITS 512
#define WIDE_LANES 4

INLINE __m512i wide_bcast(__m128i x) { return _mm512_broadcast_i32x4(x); }

/* XOR the four 128-bit lanes together (products are linear, so lanes can be
 * summed before the one reduction). */
INLINE __m128i wide_fold(__m512i v)
{
    __m256i t = _mm256_xor_si256(_mm512_castsi512_si256(v),
                                 _mm512_extracti64x4_epi64(v, 1));
    return _mm_xor_si128(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

/* Lanes 0-1 of a big chunk's last vector keep this run's base, 2-3 take
 * the next's. */
INLINE __m512i wide_last_base(__m512i low, __m512i high)
{
    return _mm512_mask_blend_epi64(0xF0, low, high);
}

#include "gcm_vaes_wide.h"

/* Byte mask for the first n (0..64) bytes of a vector. */
INLINE __mmask64 first_bytes(size_t n)
{
    return n >= 64 ? ~(__mmask64)0 : (__mmask64)_bzhi_u64(~0ULL, (unsigned)n);
}

/* Schoolbook product of four lanes at once, unreduced. */
INLINE void clmul4_acc(__m512i x, __m512i h, __m512i *lo, __m512i *mi, __m512i *hi)
{
    *lo = _mm512_xor_si512(*lo, _mm512_clmulepi64_epi128(x, h, 0x00));
    *hi = _mm512_xor_si512(*hi, _mm512_clmulepi64_epi128(x, h, 0x11));
    *mi = _mm512_ternarylogic_epi32(*mi, _mm512_clmulepi64_epi128(x, h, 0x01),
                                    _mm512_clmulepi64_epi128(x, h, 0x10), 0x96);
}

INLINE void clmul1_acc(__m128i x, __m128i h, __m128i *lo, __m128i *mi, __m128i *hi)
{
    *lo = _mm_xor_si128(*lo, _mm_clmulepi64_si128(x, h, 0x00));
    *hi = _mm_xor_si128(*hi, _mm_clmulepi64_si128(x, h, 0x11));
    *mi = _mm_ternarylogic_epi32(*mi, _mm_clmulepi64_si128(x, h, 0x01),
                                 _mm_clmulepi64_si128(x, h, 0x10), 0x96);
}

/* GHASH of len <= 256 bytes (the last block zero-padded) followed, when
 * has_last, by one more block already in GHASH byte order; at most 16 blocks
 * in all, one reduction. */
INLINE __m128i ghash_run(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
                         size_t len, int has_last, __m128i last)
{
    size_t nb = (len + 15) / 16, m = nb + (has_last != 0); /* blocks in all */
    if (!m)
        return y;
    const __m512i bswap = wide_bswap();
    __m512i lo = _mm512_setzero_si512(), mi = lo, hi = lo;
    size_t nv = (len + 63) / 64;
    UNROLL
    for (size_t k = 0; k < nv; k++) {
        __m512i x = _mm512_maskz_loadu_epi8(first_bytes(len - 64 * k), p + 64 * k);
        x = _mm512_shuffle_epi8(x, bswap);
        if (k == 0)
            x = _mm512_xor_si512(x, _mm512_zextsi128_si512(y));
        /* Block j multiplies H^(m - j), stored at index 16 - m + j; lanes
         * past the data are zero, so their power does not matter. */
        clmul4_acc(x, wide_hp(ctx, GCM_MAX_POWERS - m + 4 * k), &lo, &mi, &hi);
    }
    __m128i l = wide_fold(lo), mm = wide_fold(mi), h = wide_fold(hi);
    if (has_last)
        clmul1_acc(nb == 0 ? _mm_xor_si128(last, y) : last,
                   HPOW(ctx, 1), &l, &mm, &h);
    return ghash_reduce_mid(l, mm, h);
}

/* As ghash_run, for any len <= 256 with a final block: 16 data blocks plus
 * the final one exceed the stored powers, so that case takes two runs. */
INLINE __m128i ghash_short(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
                           size_t len, int has_last, __m128i last)
{
    if (has_last && (len + 15) / 16 + 1 > GCM_MAX_POWERS) {
        y = ghash_run(ctx, y, p, len, 0, last);
        return ghash_run(ctx, y, p, 0, 1, last);
    }
    return ghash_run(ctx, y, p, len, has_last, last);
}

/* Whole 512-byte chunks 32 blocks per reduction, then at most two runs. */
INLINE __m128i ghash_update(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
                            size_t len)
{
    y = wide_ghash_chunks(ctx, y, &p, &len);
    for (size_t n; len; p += n, len -= n)
        y = ghash_short(ctx, y, p, n = len < 256 ? len : 256, 0, y);
    return y;
}

/* XOR up to four vectors of keystream ks over the last len < 256 bytes, hash
 * them with the length block and write the tag (E(K, J0) = ekj0). */
INLINE void apply_tail(const kms_gcm_ctx *ctx, __m128i y, const __m512i *ks,
                       __m128i ekj0, const uint8_t *src, uint8_t *dst, size_t len,
                       uint64_t aad_len, uint64_t total_len, uint8_t *tag,
                       const int decrypt)
{
    if (decrypt)
        y = ghash_short(ctx, y, src, len, 1, lengths_block(aad_len, total_len));
    for (size_t k = 0; k < (len + 63) / 64; k++) {
        __mmask64 m = first_bytes(len - 64 * k);
        __m512i d = _mm512_maskz_loadu_epi8(m, src + 64 * k);
        _mm512_mask_storeu_epi8(dst + 64 * k, m, _mm512_xor_si512(d, ks[k]));
    }
    if (!decrypt)
        y = ghash_short(ctx, y, dst, len, 1, lengths_block(aad_len, total_len));
    write_tag(tag, y, ekj0);
}

/* The last len < 256 bytes, the length block and the tag. */
INLINE void tier_finish(const kms_gcm_ctx *ctx, __m128i ctr, __m128i j0, __m128i y,
                        const uint8_t *src, uint8_t *dst, size_t len,
                        uint64_t aad_len, uint64_t total_len, uint8_t *tag,
                        const int decrypt, const int rounds)
{
    size_t nb = (len + 15) / 16; /* data blocks, 0..16 */
    __m512i b[4];
    __m128i ekj0;
    wide_counters(ctr, b, 4);
    if (nb < 16) {
        /* J0 takes the slot after the last data block. */
        size_t v = nb / 4, lane = nb % 4;
        __mmask8 lanes = (__mmask8)(3u << (2 * lane));
        b[v] = _mm512_mask_blend_epi64(lanes, b[v], _mm512_broadcast_i32x4(j0));
        switch (v) {
        case 0: wide_aes(ctx, b, 1, rounds); break;
        case 1: wide_aes(ctx, b, 2, rounds); break;
        case 2: wide_aes(ctx, b, 3, rounds); break;
        default: wide_aes(ctx, b, 4, rounds); break;
        }
        ekj0 = _mm512_castsi512_si128(_mm512_maskz_compress_epi64(lanes, b[v]));
    } else {
        wide_aes(ctx, b, 4, rounds);
        __m512i t = _mm512_zextsi128_si512(j0);
        wide_aes(ctx, &t, 1, rounds);
        ekj0 = _mm512_castsi512_si128(t);
    }

    apply_tail(ctx, y, b, ekj0, src, dst, len, aad_len, total_len, tag, decrypt);
    UNROLL
    for (int k = 0; k < 4; k++)
        b[k] = _mm512_setzero_si512();
}

/* Up to 4 small messages (each <= GCM_SMALL_MAX bytes) at once: message k's
 * counter blocks fill vector k and the four J0 blocks share a fifth, so one
 * 5-vector AES pass serves all of them; GHASH stays per message. */
INLINE void crypt_small(const kms_gcm_ctx *ctx, const struct gcm_msg *msgs, size_t n,
                        const int decrypt, const int rounds)
{
    const __m512i bswap = wide_bswap();
    const __m512i steps = _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1);
    __m512i v[GCM_SMALL_GROUP + 1];
    __m128i y[GCM_SMALL_GROUP];
    v[GCM_SMALL_GROUP] = _mm512_setzero_si512();
    UNROLL
    for (size_t k = 0; k < GCM_SMALL_GROUP; k++) {
        if (k >= n) {
            v[k] = _mm512_setzero_si512();
            y[k] = _mm_setzero_si128();
            continue;
        }
        /* J0 = nonce || 0x00000001; a masked load never reads past the
         * 12 nonce bytes. */
        __m128i j0 = _mm_mask_loadu_epi8(_mm_set_epi32(0x01000000, 0, 0, 0),
                                         (__mmask16)0x0fff, msgs[k].nonce);
        __m128i ctr = _mm_shuffle_epi8(j0, bswap_mask128());
        v[k] = _mm512_shuffle_epi8(
            _mm512_add_epi32(_mm512_broadcast_i32x4(ctr), steps), bswap);
        v[GCM_SMALL_GROUP] = _mm512_mask_blend_epi64(
            (__mmask8)(3u << (2 * k)), v[GCM_SMALL_GROUP], _mm512_broadcast_i32x4(j0));
        y[k] = ghash_update(ctx, _mm_setzero_si128(), msgs[k].aad, msgs[k].aad_len);
    }
    wide_aes(ctx, v, GCM_SMALL_GROUP + 1, rounds);
    UNROLL
    for (size_t k = 0; k < GCM_SMALL_GROUP; k++) {
        if (k >= n)
            break;
        __m128i ekj0 = _mm512_castsi512_si128(
            _mm512_maskz_compress_epi64((__mmask8)(3u << (2 * k)), v[GCM_SMALL_GROUP]));
        apply_tail(ctx, y[k], &v[k], ekj0, msgs[k].in, msgs[k].out, msgs[k].len,
                   msgs[k].aad_len, msgs[k].len, msgs[k].tag, decrypt);
    }
    UNROLL
    for (size_t k = 0; k <= GCM_SMALL_GROUP; k++)
        v[k] = _mm512_setzero_si512();
}

INLINE __m128i tier_aad_hash(const kms_gcm_ctx *ctx, const uint8_t *aad, size_t len)
{
    return ghash_update(ctx, _mm_setzero_si128(), aad, len);
}

GCM_DEFINE_TIER(TARGET, vaes, kms_gcm_x86_init, wide_gcm_crypt, crypt_small)

#endif /* KMS_HAVE_X86_TIERS */
