/*
 * gcm_vaes.c: AES-GCM with VAES and VPCLMULQDQ on 512-bit vectors.
 *
 * Same field arithmetic and context as gcm_aesni.c, four blocks per
 * register (spec/aesni-gcm-notes.md section 4):
 *  - 16 blocks (4 zmm) per iteration; GHASH multiplies them by H^16..H^1,
 *    schoolbook with three-way XORs, one reduction per 16 blocks, stitched
 *    between the AES rounds.
 *  - Tails use AVX-512 byte-masked loads and stores: no over-reads, no
 *    scalar loop. J0 rides in a spare lane of the last counter vector.
 */
#include <string.h>

#include "gcm_internal.h"

#if KMS_HAVE_X86_TIERS
#include <immintrin.h>

#define TARGET                                                                 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,vaes,"           \
                          "vpclmulqdq,aes,pclmul,sse4.1,ssse3,avx2,bmi2")))
/* Loops over blocks and rounds have small constant bounds once inlined;
 * unrolling them keeps the blocks in registers instead of a stack array. */
#define UNROLL _Pragma("GCC unroll 16")
#define INLINE static inline __attribute__((always_inline)) TARGET

void kms_gcm_x86_init(kms_gcm_ctx *ctx, const uint8_t *key, size_t key_len);

INLINE __m128i bswap_mask128(void)
{
    return _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

INLINE __m512i bswap_mask512(void) { return _mm512_broadcast_i32x4(bswap_mask128()); }

INLINE __m512i rk512(const kms_gcm_ctx *ctx, int r)
{
    return _mm512_broadcast_i32x4(((const __m128i *)ctx->round_keys)[r]);
}

/* Powers as vectors: hp(ctx, i) holds h_powers[i .. i+3]. */
INLINE __m512i hp512(const kms_gcm_ctx *ctx, size_t i)
{
    return _mm512_loadu_si512((const void *)ctx->h_powers[i]);
}

INLINE __m512i hk512(const kms_gcm_ctx *ctx, size_t i)
{
    return _mm512_loadu_si512((const void *)ctx->h_karatsuba[i]);
}

INLINE __m128i hp128(const kms_gcm_ctx *ctx, size_t i)
{
    return _mm_load_si128((const __m128i *)ctx->h_powers[i]);
}

/* Byte mask for the first n (0..64) bytes of a vector. */
INLINE __mmask64 first_bytes(size_t n)
{
    return n >= 64 ? ~(__mmask64)0 : (__mmask64)_bzhi_u64(~0ULL, (unsigned)n);
}

INLINE __m512i xor3(__m512i a, __m512i b, __m512i c)
{
    return _mm512_ternarylogic_epi32(a, b, c, 0x96);
}

/* Schoolbook product of four lanes at once, unreduced. */
INLINE void clmul4_acc(__m512i x, __m512i h, __m512i *lo, __m512i *mi, __m512i *hi)
{
    *lo = _mm512_xor_si512(*lo, _mm512_clmulepi64_epi128(x, h, 0x00));
    *hi = _mm512_xor_si512(*hi, _mm512_clmulepi64_epi128(x, h, 0x11));
    *mi = xor3(*mi, _mm512_clmulepi64_epi128(x, h, 0x01),
               _mm512_clmulepi64_epi128(x, h, 0x10));
}

/* Karatsuba product of four lanes: three multiplies instead of four; hk
 * holds each power's halves XORed together. The middle term still needs
 * lo ^ hi folded in once per aggregate (karatsuba_fix). */
INLINE void clmul4_kara_acc(__m512i x, __m512i h, __m512i hk, __m512i *lo,
                            __m512i *mi, __m512i *hi)
{
    *lo = _mm512_xor_si512(*lo, _mm512_clmulepi64_epi128(x, h, 0x00));
    *hi = _mm512_xor_si512(*hi, _mm512_clmulepi64_epi128(x, h, 0x11));
    __m512i xs = _mm512_xor_si512(x, _mm512_shuffle_epi32(x, (_MM_PERM_ENUM)0x4e));
    *mi = _mm512_xor_si512(*mi, _mm512_clmulepi64_epi128(xs, hk, 0x00));
}

INLINE void clmul1_acc(__m128i x, __m128i h, __m128i *lo, __m128i *mi, __m128i *hi)
{
    *lo = _mm_xor_si128(*lo, _mm_clmulepi64_si128(x, h, 0x00));
    *hi = _mm_xor_si128(*hi, _mm_clmulepi64_si128(x, h, 0x11));
    *mi = _mm_ternarylogic_epi32(*mi, _mm_clmulepi64_si128(x, h, 0x01),
                                 _mm_clmulepi64_si128(x, h, 0x10), 0x96);
}

/* XOR the four 128-bit lanes together (products are linear, so lanes can be
 * summed before the one reduction). */
INLINE __m128i fold_lanes(__m512i v)
{
    __m256i t = _mm256_xor_si256(_mm512_castsi512_si256(v),
                                 _mm512_extracti64x4_epi64(v, 1));
    return _mm_xor_si128(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

/* Montgomery-style reduction, as in gcm_aesni.c (schoolbook middle). */
INLINE __m128i reduce(__m128i lo, __m128i mi, __m128i hi)
{
    const __m128i poly = _mm_set1_epi64x((long long)0xC200000000000000ULL);
    mi = _mm_ternarylogic_epi32(mi, _mm_clmulepi64_si128(lo, poly, 0x00),
                                _mm_shuffle_epi32(lo, 0x4e), 0x96);
    return _mm_ternarylogic_epi32(hi, _mm_clmulepi64_si128(mi, poly, 0x00),
                                  _mm_shuffle_epi32(mi, 0x4e), 0x96);
}

INLINE __m128i reduce512(__m512i lo, __m512i mi, __m512i hi)
{
    return reduce(fold_lanes(lo), fold_lanes(mi), fold_lanes(hi));
}

/* GHASH of len <= 256 bytes (the last block zero-padded) followed, when
 * has_last, by one more block already in GHASH byte order; at most 16 blocks
 * in all, one reduction. */
INLINE __m128i ghash_run(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
                         size_t len, int has_last, __m128i last)
{
    size_t nb = (len + 15) / 16;
    size_t m = nb + (has_last ? 1 : 0);
    if (m == 0)
        return y;
    const __m512i bswap = bswap_mask512();
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
        clmul4_acc(x, hp512(ctx, GCM_MAX_POWERS - m + 4 * k), &lo, &mi, &hi);
    }
    __m128i l = fold_lanes(lo), mm = fold_lanes(mi), h = fold_lanes(hi);
    if (has_last)
        clmul1_acc(nb == 0 ? _mm_xor_si128(last, y) : last,
                   hp128(ctx, GCM_MAX_POWERS - 1), &l, &mm, &h);
    return reduce(l, mm, h);
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

INLINE __m128i ghash_update(const kms_gcm_ctx *ctx, __m128i y, const uint8_t *p,
                            size_t len)
{
    while (len >= 256) {
        y = ghash_short(ctx, y, p, 256, 0, y);
        p += 256;
        len -= 256;
    }
    if (len)
        y = ghash_short(ctx, y, p, len, 0, y);
    return y;
}

/* n vectors (4n blocks) through all rounds, round-major. */
INLINE void aes_vectors(const kms_gcm_ctx *ctx, __m512i *b, const int n,
                        const int rounds)
{
    __m512i k0 = rk512(ctx, 0);
    UNROLL
    for (int k = 0; k < n; k++)
        b[k] = _mm512_xor_si512(b[k], k0);
    UNROLL
    for (int r = 1; r < rounds; r++) {
        __m512i key = rk512(ctx, r);
        UNROLL
        for (int k = 0; k < n; k++)
            b[k] = _mm512_aesenc_epi128(b[k], key);
    }
    __m512i kl = rk512(ctx, rounds);
    UNROLL
    for (int k = 0; k < n; k++)
        b[k] = _mm512_aesenclast_epi128(b[k], kl);
}

/* Counter vectors for the 4n blocks after ctr (lane 0 dword = counter). */
INLINE void counters(__m512i ctrv, __m512i *b, const int n)
{
    const __m512i four = _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4);
    const __m512i bswap = bswap_mask512();
    UNROLL
    for (int k = 0; k < n; k++) {
        b[k] = _mm512_shuffle_epi8(ctrv, bswap);
        ctrv = _mm512_add_epi32(ctrv, four);
    }
}



/* nv vectors (4 * nv blocks) of keystream XORed from src into dst, with the
 * GHASH of the 4 * nv blocks at hash_src (multiplied by H^(4nv)..H^1, one
 * reduction) stitched between the AES rounds. nv is 4 or 8: eight
 * independent AES chains keep the units busier than four. */
INLINE __m128i stitched(const kms_gcm_ctx *ctx, __m512i ctrv, const uint8_t *src,
                        uint8_t *dst, const uint8_t *hash_src, __m128i y,
                        const int rounds, const int nv)
{
    const __m512i bswap = bswap_mask512();
    const size_t base = GCM_MAX_POWERS - 4 * (size_t)nv;
    __m512i b[8];
    counters(ctrv, b, nv);
    __m512i k0 = rk512(ctx, 0);
    UNROLL
    for (int k = 0; k < nv; k++)
        b[k] = _mm512_xor_si512(b[k], k0);
    __m512i lo = _mm512_setzero_si512(), mi = lo, hi = lo;
    UNROLL
    for (int r = 1; r < rounds; r++) {
        __m512i key = rk512(ctx, r);
        UNROLL
        for (int k = 0; k < nv; k++)
            b[k] = _mm512_aesenc_epi128(b[k], key);
        /* Spread the GHASH vectors over the first 8 rounds (10 at least). */
        if (r <= 8 && ((r - 1) % (8 / nv)) == 0) {
            int j = (r - 1) / (8 / nv);
            __m512i x = _mm512_shuffle_epi8(
                _mm512_loadu_si512((const void *)(hash_src + 64 * j)), bswap);
            if (j == 0)
                x = _mm512_xor_si512(x, _mm512_zextsi128_si512(y));
            clmul4_kara_acc(x, hp512(ctx, base + 4 * j), hk512(ctx, base + 4 * j),
                            &lo, &mi, &hi);
        }
    }
    mi = xor3(mi, lo, hi); /* Karatsuba fix-up, once per aggregate */
    __m512i kl = rk512(ctx, rounds);
    UNROLL
    for (int k = 0; k < nv; k++)
        b[k] = _mm512_aesenclast_epi128(
            b[k], _mm512_xor_si512(kl, _mm512_loadu_si512((const void *)(src + 64 * k))));
    UNROLL
    for (int k = 0; k < nv; k++)
        _mm512_storeu_si512((void *)(dst + 64 * k), b[k]);
    return reduce512(lo, mi, hi);
}

/* Plain CTR over 4 * nv blocks (no GHASH): the first chunk of an
 * encryption, which has no earlier ciphertext to hash alongside. */
INLINE void ctr_only(const kms_gcm_ctx *ctx, __m512i ctrv, const uint8_t *src,
                     uint8_t *dst, const int rounds, const int nv)
{
    __m512i b[8];
    counters(ctrv, b, nv);
    aes_vectors(ctx, b, nv, rounds);
    UNROLL
    for (int k = 0; k < nv; k++)
        _mm512_storeu_si512(
            (void *)(dst + 64 * k),
            _mm512_xor_si512(b[k], _mm512_loadu_si512((const void *)(src + 64 * k))));
    UNROLL
    for (int k = 0; k < nv; k++)
        b[k] = _mm512_setzero_si512();
}

/* XOR up to four vectors of keystream ks over the last len < 256 bytes, hash
 * them with the length block and write the tag (E(K, J0) = ekj0). */
INLINE void apply_tail(const kms_gcm_ctx *ctx, __m128i y, const __m512i *ks,
                       __m128i ekj0, const uint8_t *src, uint8_t *dst, size_t len,
                       uint64_t aad_len, uint64_t total_len, uint8_t *tag,
                       const int decrypt)
{
    size_t nv = (len + 63) / 64;
    __m128i lengths = _mm_set_epi64x((long long)(aad_len * 8),
                                     (long long)(total_len * 8));
    if (decrypt)
        y = ghash_short(ctx, y, src, len, 1, lengths);
    for (size_t k = 0; k < nv; k++) {
        __mmask64 m = first_bytes(len - 64 * k);
        __m512i d = _mm512_maskz_loadu_epi8(m, src + 64 * k);
        _mm512_mask_storeu_epi8(dst + 64 * k, m, _mm512_xor_si512(d, ks[k]));
    }
    if (!decrypt)
        y = ghash_short(ctx, y, dst, len, 1, lengths);
    _mm_storeu_si128((__m128i *)tag,
                     _mm_xor_si128(_mm_shuffle_epi8(y, bswap_mask128()), ekj0));
}

/* The last len < 256 bytes, the length block and the tag. */
INLINE void gcm_finish(const kms_gcm_ctx *ctx, __m512i ctrv, __m128i j0, __m128i y,
                       const uint8_t *src, uint8_t *dst, size_t len,
                       uint64_t aad_len, uint64_t total_len, uint8_t *tag,
                       const int decrypt, const int rounds)
{
    size_t nb = (len + 15) / 16; /* data blocks, 0..16 */
    __m512i b[4];
    __m128i ekj0;
    counters(ctrv, b, 4);
    if (nb < 16) {
        /* J0 takes the slot after the last data block. */
        size_t v = nb / 4, lane = nb % 4;
        __mmask8 lanes = (__mmask8)(3u << (2 * lane));
        b[v] = _mm512_mask_blend_epi64(lanes, b[v], _mm512_broadcast_i32x4(j0));
        switch (v) {
        case 0: aes_vectors(ctx, b, 1, rounds); break;
        case 1: aes_vectors(ctx, b, 2, rounds); break;
        case 2: aes_vectors(ctx, b, 3, rounds); break;
        default: aes_vectors(ctx, b, 4, rounds); break;
        }
        ekj0 = _mm512_castsi512_si128(_mm512_maskz_compress_epi64(lanes, b[v]));
    } else {
        aes_vectors(ctx, b, 4, rounds);
        __m512i t = _mm512_zextsi128_si512(j0);
        aes_vectors(ctx, &t, 1, rounds);
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
    const __m512i bswap = bswap_mask512();
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
    aes_vectors(ctx, v, GCM_SMALL_GROUP + 1, rounds);
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

INLINE void gcm_crypt(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      uint8_t *out, size_t len, uint8_t *tag, const int decrypt,
                      const int rounds)
{
    __m128i y = ghash_update(ctx, _mm_setzero_si128(), aad, aad_len);
    uint8_t jb[16];
    memcpy(jb, nonce, 12);
    jb[12] = jb[13] = jb[14] = 0;
    jb[15] = 1;
    __m128i j0 = _mm_loadu_si128((const __m128i *)jb);
    /* Lanes hold counters J0+1..J0+4 byte-reversed; a 32-bit lane add is
     * exactly inc32. */
    __m512i ctrv = _mm512_add_epi32(
        _mm512_broadcast_i32x4(_mm_shuffle_epi8(j0, bswap_mask128())),
        _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1));
    const __m512i sixteen =
        _mm512_set_epi32(0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0, 16);
    const __m512i thirty_two = _mm512_add_epi32(sixteen, sixteen);
    size_t i = 0;

    if (decrypt) {
        /* Ciphertext is known up front: hash each chunk while making its
         * keystream. Loads precede stores, so in == out is safe. */
        for (; len - i >= 512; i += 512) {
            y = stitched(ctx, ctrv, in + i, out + i, in + i, y, rounds, 8);
            ctrv = _mm512_add_epi32(ctrv, thirty_two);
        }
        if (len - i >= 256) {
            y = stitched(ctx, ctrv, in + i, out + i, in + i, y, rounds, 4);
            ctrv = _mm512_add_epi32(ctrv, sixteen);
            i += 256;
        }
    } else {
        /* Chunk k is encrypted while chunk k-1 (already in out) is hashed;
         * the first chunk has no predecessor and runs unstitched, and the
         * last is hashed alone. Below 2 KiB those two unstitched chunks
         * would dominate, so short messages use 256-byte chunks only. */
        if (len >= 2048) {
            ctr_only(ctx, ctrv, in, out, rounds, 8);
            ctrv = _mm512_add_epi32(ctrv, thirty_two);
            for (i = 512; len - i >= 512; i += 512) {
                y = stitched(ctx, ctrv, in + i, out + i, out + i - 512, y, rounds, 8);
                ctrv = _mm512_add_epi32(ctrv, thirty_two);
            }
            y = ghash_update(ctx, y, out + i - 512, 512);
        }
        if (len - i >= 256) {
            ctr_only(ctx, ctrv, in + i, out + i, rounds, 4);
            ctrv = _mm512_add_epi32(ctrv, sixteen);
            for (i += 256; len - i >= 256; i += 256) {
                y = stitched(ctx, ctrv, in + i, out + i, out + i - 256, y, rounds, 4);
                ctrv = _mm512_add_epi32(ctrv, sixteen);
            }
            y = ghash_short(ctx, y, out + i - 256, 256, 0, y);
        }
    }
    gcm_finish(ctx, ctrv, j0, y, in + i, out + i, len - i, aad_len, len, tag,
               decrypt, rounds);
    kms_wipe(jb, sizeof jb);
}

GCM_DEFINE_CRYPT(TARGET, vaes_encrypt, gcm_crypt, 0)
GCM_DEFINE_CRYPT(TARGET, vaes_decrypt, gcm_crypt, 1)
GCM_DEFINE_SMALL(TARGET, vaes_encrypt_small, crypt_small, 0)
GCM_DEFINE_SMALL(TARGET, vaes_decrypt_small, crypt_small, 1)

const struct gcm_tier kms_gcm_tier_vaes = {
    "vaes", kms_gcm_x86_init, vaes_encrypt, vaes_decrypt,
    vaes_encrypt_small, vaes_decrypt_small,
};

#endif /* KMS_HAVE_X86_TIERS */
