/*
 * b64_avx2.c: standard base64 32 characters (24 bytes) at a time with AVX2,
 * after the method of Muła and Lemire ("Faster Base64 Encoding and Decoding
 * using AVX2 Instructions", ACM TOMS 2018). Every character class and
 * translation is computed in registers (compares, pshufb on in-register
 * tables), so no memory load is indexed by the data: plaintext that passes
 * through here leaves no cache footprint of its own. transit.c calls these
 * on every tier when the CPU has AVX2 and the OS saves YMM state
 * (kms_cpu_has_avx2); its scalar code does the rest of every text, and all
 * of it elsewhere.
 */
#include "gcm_internal.h"

#if KMS_HAVE_X86_TIERS
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/* 1 in each byte that lies in [lo, hi] (signed compares: bytes >= 0x80
 * are negative, so never inside an ASCII range). */
static inline AVX2 __m256i in_range(__m256i c, char lo, char hi)
{
    return _mm256_and_si256(_mm256_cmpgt_epi8(c, _mm256_set1_epi8((char)(lo - 1))),
                            _mm256_cmpgt_epi8(_mm256_set1_epi8((char)(hi + 1)), c));
}

AVX2 size_t kms_b64_decode_avx2(const uint8_t *in, size_t n, uint8_t *out)
{
    /* What to add to a character to get its 6-bit value, by its high
     * nibble; '/' (0x2F) is moved to index 1 so it does not share '+'s. */
    const __m256i roll = _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i pack_bytes = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                                2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i pack_lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    size_t i = 0, o = 0;
    for (; i + 32 <= n; i += 32, o += 24) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(in + i));
        __m256i valid = _mm256_or_si256(
            _mm256_or_si256(in_range(c, 'A', 'Z'), in_range(c, 'a', 'z')),
            _mm256_or_si256(in_range(c, '0', '9'),
                            _mm256_or_si256(_mm256_cmpeq_epi8(c, _mm256_set1_epi8('+')),
                                            _mm256_cmpeq_epi8(c, _mm256_set1_epi8('/')))));
        if ((uint32_t)_mm256_movemask_epi8(valid) != 0xFFFFFFFFu)
            break; /* padding or a bad character: the scalar code says which */
        __m256i hi = _mm256_and_si256(_mm256_srli_epi32(c, 4), _mm256_set1_epi8(0x0F));
        __m256i slash = _mm256_cmpeq_epi8(c, _mm256_set1_epi8('/'));
        __m256i v = _mm256_add_epi8(c, _mm256_shuffle_epi8(roll, _mm256_add_epi8(hi, slash)));
        /* 4 x 6 bits -> 24 bits per dword: pairs into 12 bits, then 24. */
        v = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));
        v = _mm256_madd_epi16(v, _mm256_set1_epi32(0x00011000));
        v = _mm256_shuffle_epi8(v, pack_bytes);        /* 12 bytes per lane */
        v = _mm256_permutevar8x32_epi32(v, pack_lanes); /* 24 at the bottom */
        _mm_storeu_si128((__m128i *)(out + o), _mm256_castsi256_si128(v));
        _mm_storel_epi64((__m128i *)(out + o + 16), _mm256_extracti128_si256(v, 1));
    }
    return i;
}

AVX2 size_t kms_b64_encode_avx2(const uint8_t *in, size_t n, uint8_t *out)
{
    /* Each dword gets bytes (1, 0, 2, 1) of its 3-byte group, so two 16-bit
     * multiplies can move all four 6-bit fields into their own bytes. */
    const __m256i spread = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
                                            1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
    /* By class (13: A-Z, 0: a-z, 1-10: digits, 11: '+', 12: '/'), what to
     * add to a 6-bit value to get its character. */
    const __m256i offset = _mm256_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0,
                                            71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0);
    size_t i = 0, o = 0;
    /* Each step reads 28 bytes (two 16-byte loads 12 apart) to encode 24. */
    for (; i + 28 <= n; i += 24, o += 32) {
        __m128i lo = _mm_loadu_si128((const __m128i *)(in + i));
        __m128i hi = _mm_loadu_si128((const __m128i *)(in + i + 12));
        __m256i x = _mm256_shuffle_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1),
                                        spread);
        __m256i a = _mm256_mulhi_epu16(_mm256_and_si256(x, _mm256_set1_epi32(0x0fc0fc00)),
                                       _mm256_set1_epi32(0x04000040));
        __m256i b = _mm256_mullo_epi16(_mm256_and_si256(x, _mm256_set1_epi32(0x003f03f0)),
                                       _mm256_set1_epi32(0x01000010));
        __m256i v = _mm256_or_si256(a, b); /* one 6-bit value per byte */
        __m256i cls = _mm256_subs_epu8(v, _mm256_set1_epi8(51));
        cls = _mm256_or_si256(cls, _mm256_and_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8(26), v),
                                                    _mm256_set1_epi8(13)));
        v = _mm256_add_epi8(v, _mm256_shuffle_epi8(offset, cls));
        _mm256_storeu_si256((__m256i *)(out + o), v);
    }
    return i;
}

#else

size_t kms_b64_decode_avx2(const uint8_t *in, size_t n, uint8_t *out)
{
    (void)in, (void)n, (void)out;
    return 0;
}

size_t kms_b64_encode_avx2(const uint8_t *in, size_t n, uint8_t *out)
{
    (void)in, (void)n, (void)out;
    return 0;
}

#endif
