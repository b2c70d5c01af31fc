/*
 * gcm_vaes256.c: AES-GCM with VAES and VPCLMULQDQ on 256-bit vectors, for
 * CPUs that have them without usable AVX-512 (AMD Zen 3, Intel Alder Lake
 * and Raptor Lake client parts, many cloud VMs).
 *
 * The shape follows the published VAES + AVX2 GCM designs (Eric Biggers'
 * aes-gcm-avx2 for BoringSSL and Linux aes-gcm-vaes-avx2.S, 2024-2025;
 * spec/aesni-gcm-notes.md section 4.2): with only 16 ymm registers, no
 * masking and no three-way XOR, GHASH uses Karatsuba with precomputed
 * half-sums and one reduction per 16 blocks.
 *  - The bulk is gcm_vaes_wide.h at 256 bits: 16 blocks (8 ymm) per
 *    iteration, each ymm two counter blocks, the GHASH of the 8 ymm
 *    stitched between the AES rounds against H^16..H^1.
 *  - Below 128 bytes, and for the associated data's last partial chunk and
 *    small batch items, it uses the 128-bit code of gcm_x86_sse.h (inlined
 *    here, so VEX-encoded): AVX2 has no byte-masked loads and stores.
 *
 * Instruction sets: AVX2 + VAES + VPCLMULQDQ, VEX-encoded only; the target
 * below names no AVX-512 feature, so the compiler cannot emit an EVEX
 * instruction or touch zmm/k registers here. Beyond those three it needs
 * AES-NI and PCLMULQDQ (the key schedule's AESKEYGENASSIST has no VAES
 * form, and the 128-bit tails use the xmm forms), and AVX, SSE4.1 and SSSE3,
 * which AVX2 implies; cpu_features.c checks each of them.
 */
#include <string.h>

#include "gcm_internal.h"

#if KMS_HAVE_X86_TIERS
#include <immintrin.h>

#define TARGET                                                                 \
    __attribute__((target("avx2,avx,vaes,vpclmulqdq,aes,pclmul,sse4.1,ssse3")))
#define INLINE static inline __attribute__((always_inline)) TARGET

#define WIDE_BITS 256
#define WIDE_LANES 2

INLINE __m256i wide_bcast(__m128i x) { return _mm256_broadcastsi128_si256(x); }

INLINE __m128i wide_fold(__m256i v)
{
    return _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

/* Both lanes of a big chunk's last vector take the next run's base. */
INLINE __m256i wide_last_base(__m256i low, __m256i high)
{
    (void)low;
    return high;
}

#include "gcm_vaes_wide.h"

/* Whole 256-byte chunks of associated data at 16 blocks per reduction, the
 * rest (rarely any: AAD is usually short) 8 blocks at a time. */
INLINE __m128i tier_aad_hash(const kms_gcm_ctx *ctx, const uint8_t *aad, size_t len)
{
    __m128i y = wide_ghash_chunks(ctx, _mm_setzero_si128(), &aad, &len);
    return sse_ghash_update(ctx, y, aad, len);
}

INLINE void tier_finish(const kms_gcm_ctx *ctx, __m128i ctr, __m128i j0, __m128i y,
                        const uint8_t *src, uint8_t *dst, size_t len, uint64_t aad_len,
                        uint64_t total_len, uint8_t *tag, const int decrypt,
                        const int rounds)
{
    sse_gcm_finish(ctx, ctr, j0, y, src, dst, len, aad_len, total_len, tag, decrypt, rounds);
}

GCM_DEFINE_TIER(TARGET, vaes256, kms_gcm_x86_init, wide_gcm_crypt, sse_crypt_small)

#endif /* KMS_HAVE_X86_TIERS */
