/*
 * gcm_internal.h: the key context and the interface every tier implements.
 * Private to csrc/; Python never sees these definitions.
 */
#ifndef KMS_GCM_INTERNAL_H
#define KMS_GCM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kms_aead.h"

#define GCM_BLOCK 16
#define GCM_NONCE_BYTES 12
#define GCM_TAG_BYTES 16
/* Powers of H kept per key: the 512-bit tier aggregates 32 blocks. */
#define GCM_MAX_POWERS 32
/* Zero blocks after H^1 so a vector load of powers for a short tail stays
 * inside the context (the data lanes it meets are zero anyway). */
#define GCM_POWER_PAD 4

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KMS_HAVE_X86_TIERS 1
#else
#define KMS_HAVE_X86_TIERS 0
#endif

struct kms_gcm_ctx {
    /* Round keys for AES-128 (11 used) or AES-256 (15 used). */
    _Alignas(64) uint8_t round_keys[15][16];
    /* h_powers[i] = H^(32 - i) in the byte-reversed, "times x" form GHASH
     * multiplies with; descending so block j of an n-block run uses index
     * 32 - n + j. Followed by GCM_POWER_PAD zero blocks. */
    _Alignas(64) uint8_t h_powers[GCM_MAX_POWERS + GCM_POWER_PAD][16];
    /* Karatsuba helpers: both 64-bit halves of each power XORed together,
     * stored in both halves, same indexing as h_powers. */
    _Alignas(64) uint8_t h_karatsuba[GCM_MAX_POWERS][16];
    int rounds; /* 10 or 14 */
    int tier;
    const struct gcm_tier *ops;
};

/* One message with a 96-bit nonce. encrypt writes len bytes to out and the
 * 16-byte tag to tag; decrypt writes len bytes of (unverified) plaintext and
 * the tag it computed over in, which the caller compares. in == out is
 * allowed; no other overlap. */
typedef void (*gcm_crypt_fn)(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                             const uint8_t *aad, size_t aad_len,
                             const uint8_t *in, uint8_t *out, size_t len,
                             uint8_t *tag);

/* Batches of small messages go through the tiers GCM_SMALL_GROUP at a
 * time, so their AES rounds share one pass (at most 4 data blocks plus J0
 * each). tag: where encrypt writes the tag, or decrypt the computed one. */
#define GCM_SMALL_MAX 64
#define GCM_SMALL_GROUP 4

struct gcm_msg {
    const uint8_t *nonce;
    const uint8_t *aad;
    size_t aad_len;
    const uint8_t *in;
    uint8_t *out;
    size_t len;
    uint8_t *tag;
};

typedef void (*gcm_small_fn)(const kms_gcm_ctx *ctx, const struct gcm_msg *msgs,
                             size_t n);

struct gcm_tier {
    const char *name;
    /* Expand the key and compute the H powers into ctx. */
    void (*init)(kms_gcm_ctx *ctx, const uint8_t *key, size_t key_len);
    gcm_crypt_fn encrypt;
    gcm_crypt_fn decrypt;
    /* n <= GCM_SMALL_GROUP messages of at most GCM_SMALL_MAX bytes. */
    gcm_small_fn encrypt_small;
    gcm_small_fn decrypt_small;
};

/* A tier's entry points call its always-inline body with the round count
 * as a compile-time constant (10 for AES-128, 14 for AES-256), so the round
 * loops unroll. These define those thin entry points. */
#define GCM_DEFINE_CRYPT(attrs, name, body, decrypt)                           \
    attrs static void name(const kms_gcm_ctx *ctx, const uint8_t *nonce,      \
                           const uint8_t *aad, size_t aad_len,                \
                           const uint8_t *in, uint8_t *out, size_t len,       \
                           uint8_t *tag)                                      \
    {                                                                         \
        if (ctx->rounds == 14)                                                \
            body(ctx, nonce, aad, aad_len, in, out, len, tag, decrypt, 14);   \
        else                                                                  \
            body(ctx, nonce, aad, aad_len, in, out, len, tag, decrypt, 10);   \
    }

#define GCM_DEFINE_SMALL(attrs, name, body, decrypt)                           \
    attrs static void name(const kms_gcm_ctx *ctx, const struct gcm_msg *msgs, \
                           size_t n)                                          \
    {                                                                         \
        if (ctx->rounds == 14)                                                \
            body(ctx, msgs, n, decrypt, 14);                                  \
        else                                                                  \
            body(ctx, msgs, n, decrypt, 10);                                  \
    }

/* A tier's four entry points and its gcm_tier table, kms_gcm_tier_<name>. */
#define GCM_DEFINE_TIER(attrs, name, init, crypt_body, small_body)             \
    GCM_DEFINE_CRYPT(attrs, name##_encrypt, crypt_body, 0)                     \
    GCM_DEFINE_CRYPT(attrs, name##_decrypt, crypt_body, 1)                     \
    GCM_DEFINE_SMALL(attrs, name##_encrypt_small, small_body, 0)               \
    GCM_DEFINE_SMALL(attrs, name##_decrypt_small, small_body, 1)               \
    const struct gcm_tier kms_gcm_tier_##name = {                              \
        #name, init, name##_encrypt, name##_decrypt,                           \
        name##_encrypt_small, name##_decrypt_small,                            \
    };

#if KMS_HAVE_X86_TIERS
extern const struct gcm_tier kms_gcm_tier_aesni;
extern const struct gcm_tier kms_gcm_tier_vaes256;
extern const struct gcm_tier kms_gcm_tier_vaes;
/* gcm_aesni.c: key schedule and H powers, the same for every x86 tier. */
void kms_gcm_x86_init(kms_gcm_ctx *ctx, const uint8_t *key, size_t key_len);
#endif

/* b64_avx2.c: whole blocks of standard base64 (32 characters, 24 bytes)
 * with AVX2; each returns the input consumed, stopping at the first block
 * that is not all alphabet (decode) or when fewer than 28 input bytes are
 * left (encode). Call only where kms_cpu_has_avx2(); 0 where not built. */
size_t kms_b64_decode_avx2(const uint8_t *in, size_t n, uint8_t *out);
size_t kms_b64_encode_avx2(const uint8_t *in, size_t n, uint8_t *out);

/* cpu_features.c: the best tier, and whether AVX2 is usable (the CPU has
 * it and the OS saves YMM state), each probed once. */
int kms_cpu_best_tier(void);
int kms_cpu_has_avx2(void);

/* Wipe memory the compiler may not optimise away. */
void kms_wipe(void *p, size_t n);

/* Fill p with n bytes from the OS CSPRNG (getrandom); a status code. */
int kms_fill_random(uint8_t *p, size_t n);

#endif /* KMS_GCM_INTERNAL_H */
