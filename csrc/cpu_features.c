/*
 * cpu_features.c: pick the best tier from CPUID and XGETBV, once.
 *
 * Compiler built-ins are not trusted here: older libgcc reports VAES from
 * CPUID alone, without checking that the OS saves the vector state, and the
 * code would then fault (see spec/aesni-gcm-notes.md section 5.2).
 *
 * KMS_AEAD_CPU_HIDE (a comma-separated list of avx512, vaes, avx2) makes
 * the probe treat those features as absent, as OpenSSL's OPENSSL_ia32cap
 * does: it can only take features away, and it lets one machine run the
 * choice a lesser CPU would make (the 256-bit tier on an AVX-512 host, the
 * scalar base64 on an AVX2 one).
 */
#include <stdlib.h>
#include <string.h>

#include "gcm_internal.h"

#if KMS_HAVE_X86_TIERS
#include <cpuid.h>

struct cpu_choice {
    int tier;
    int avx2; /* AVX2 with YMM state saved by the OS */
};

/* XGETBV without needing -mxsave on the whole file. */
static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* Whether `name` is one of the comma-separated words of KMS_AEAD_CPU_HIDE. */
static int hidden(const char *name)
{
    const char *list = getenv("KMS_AEAD_CPU_HIDE");
    size_t n = strlen(name);
    while (list && *list) {
        size_t word = strcspn(list, ",");
        if (word == n && memcmp(list, name, n) == 0)
            return 1;
        list += word + (list[word] == ',');
    }
    return 0;
}

static struct cpu_choice probe(void)
{
    struct cpu_choice none = {KMS_AEAD_TIER_NONE, 0};
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx))
        return none;
    unsigned int max_leaf = eax;

    __cpuid(1, eax, ebx, ecx, edx);
    int has_pclmul = (ecx >> 1) & 1;
    int has_ssse3 = (ecx >> 9) & 1;
    int has_sse41 = (ecx >> 19) & 1;
    int has_aes = (ecx >> 25) & 1;
    int has_osxsave = (ecx >> 27) & 1;
    int has_avx = (ecx >> 28) & 1;

    struct cpu_choice c = {KMS_AEAD_TIER_NONE, 0};
    int sse_tier = has_aes && has_pclmul && has_ssse3 && has_sse41;
    if (sse_tier)
        c.tier = KMS_AEAD_TIER_AESNI;
    if (max_leaf < 7 || !has_osxsave || !has_avx)
        return c;
    /* AVX-class code needs the OS to save XMM and YMM state (0x6);
     * AVX-512 also needs opmask and both ZMM halves (0xE6). */
    uint64_t xcr0 = read_xcr0();
    int ymm_state = (xcr0 & 0x6) == 0x6;
    int zmm_state = (xcr0 & 0xE6) == 0xE6;

    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    int has_avx2 = (ebx >> 5) & 1 && !hidden("avx2");
    int has_bmi2 = (ebx >> 8) & 1;
    int has_avx512 = (ebx >> 16) & 1 && (ebx >> 17) & 1 && (ebx >> 30) & 1 &&
                     (ebx >> 31) & 1 && !hidden("avx512"); /* F, DQ, BW, VL */
    int has_vaes = (ecx >> 9) & 1 && (ecx >> 10) & 1 && !hidden("vaes"); /* + VPCLMULQDQ */

    c.avx2 = has_avx2 && ymm_state;
    /* Both VAES tiers build on the 128-bit one (key schedule, tails). */
    if (sse_tier && c.avx2 && has_vaes)
        c.tier = KMS_AEAD_TIER_VAES256;
    if (c.tier == KMS_AEAD_TIER_VAES256 && has_avx512 && has_bmi2 && zmm_state)
        c.tier = KMS_AEAD_TIER_VAES;
    return c;
}

/* Racing first calls compute the same values; `ready` is published after
 * them. */
static int cached_tier, cached_avx2, ready;

static void probe_once(void)
{
    if (__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
        return;
    struct cpu_choice c = probe();
    __atomic_store_n(&cached_tier, c.tier, __ATOMIC_RELAXED);
    __atomic_store_n(&cached_avx2, c.avx2, __ATOMIC_RELAXED);
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
}

int kms_cpu_best_tier(void)
{
    probe_once();
    return __atomic_load_n(&cached_tier, __ATOMIC_RELAXED);
}

int kms_cpu_has_avx2(void)
{
    probe_once();
    return __atomic_load_n(&cached_avx2, __ATOMIC_RELAXED);
}

#else

int kms_cpu_best_tier(void) { return KMS_AEAD_TIER_NONE; }
int kms_cpu_has_avx2(void) { return 0; }

#endif
