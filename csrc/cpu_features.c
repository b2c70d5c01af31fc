/*
 * cpu_features.c: pick the best tier from CPUID and XGETBV, once.
 *
 * Compiler built-ins are not trusted here: older libgcc reports VAES from
 * CPUID alone, without checking that the OS saves the vector state, and the
 * code would then fault (see spec/aesni-gcm-notes.md section 5.2).
 */
#include "gcm_internal.h"

#if KMS_HAVE_X86_TIERS
#include <cpuid.h>

/* XGETBV without needing -mxsave on the whole file. */
static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static int probe(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx))
        return KMS_AEAD_TIER_NONE;
    unsigned int max_leaf = eax;

    __cpuid(1, eax, ebx, ecx, edx);
    int has_pclmul = (ecx >> 1) & 1;
    int has_ssse3 = (ecx >> 9) & 1;
    int has_sse41 = (ecx >> 19) & 1;
    int has_aes = (ecx >> 25) & 1;
    int has_osxsave = (ecx >> 27) & 1;
    int has_avx = (ecx >> 28) & 1;

    if (!(has_aes && has_pclmul && has_ssse3 && has_sse41))
        return KMS_AEAD_TIER_NONE;
    int tier = KMS_AEAD_TIER_AESNI;

    if (max_leaf < 7 || !has_osxsave || !has_avx)
        return tier;
    /* The OS must save XMM, YMM, opmask and both ZMM halves (0xE6). */
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0xE6) != 0xE6)
        return tier;

    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    int has_avx2 = (ebx >> 5) & 1;
    int has_bmi2 = (ebx >> 8) & 1;
    int has_avx512f = (ebx >> 16) & 1;
    int has_avx512dq = (ebx >> 17) & 1;
    int has_avx512bw = (ebx >> 30) & 1;
    int has_avx512vl = (ebx >> 31) & 1;
    int has_vaes = (ecx >> 9) & 1;
    int has_vpclmul = (ecx >> 10) & 1;
    if (has_avx2 && has_bmi2 && has_avx512f && has_avx512dq && has_avx512bw &&
        has_avx512vl && has_vaes && has_vpclmul)
        tier = KMS_AEAD_TIER_VAES;
    return tier;
}

int kms_cpu_best_tier(void)
{
    /* Racing first calls compute the same value; an int store is atomic. */
    static volatile int cached = -1;
    int t = cached;
    if (t < 0) {
        t = probe();
        cached = t;
    }
    return t;
}

#else

int kms_cpu_best_tier(void) { return KMS_AEAD_TIER_NONE; }

#endif
