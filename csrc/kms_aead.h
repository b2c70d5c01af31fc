/*
 * kms_aead.h: the whole public C API of the AES-GCM engine.
 *
 * The part between the "cdef" markers is fed to cffi's cdef() unchanged
 * (csrc/build_ffi.py), so it holds only declarations cffi can parse.
 * Nothing here includes Python headers; the engine never calls into Python.
 */
#ifndef KMS_AEAD_H
#define KMS_AEAD_H

#include <stddef.h>
#include <stdint.h>

/* cdef-begin */

/* Status codes. Zero is success; every failure is a distinct negative. */
enum {
    KMS_AEAD_OK = 0,
    KMS_AEAD_ERR_NULL = -1,          /* a required pointer was NULL */
    KMS_AEAD_ERR_KEY_SIZE = -2,      /* key is not 16 or 32 bytes */
    KMS_AEAD_ERR_NONCE_SIZE = -3,    /* nonce is not 12 bytes */
    KMS_AEAD_ERR_TAG_SIZE = -4,      /* tag is not 16 bytes */
    KMS_AEAD_ERR_TOO_LONG = -5,      /* plaintext or AAD over the GCM limit */
    KMS_AEAD_ERR_TOO_SHORT = -6,     /* ciphertext shorter than a tag */
    KMS_AEAD_ERR_AUTH = -7,          /* tag mismatch: nothing was released */
    KMS_AEAD_ERR_OVERLAP = -8,       /* input and output partially overlap */
    KMS_AEAD_ERR_BUFFER = -9,        /* a buffer or length table is inconsistent */
    KMS_AEAD_ERR_BACKEND = -10,      /* the requested tier is not available */
    KMS_AEAD_ERR_RANDOM = -11,       /* the OS CSPRNG failed */
    KMS_AEAD_ERR_NOMEM = -12,        /* allocation failed */
    KMS_AEAD_ERR_BASE64 = -13,       /* an item's base64 text is invalid */
    KMS_AEAD_NOT_SIMPLE = -14        /* not the JSON batch shape the native path reads */
};

/* Tiers, best last. A context is bound to one tier when it is created. */
enum {
    KMS_AEAD_TIER_NONE = 0,     /* no native fast path on this CPU or build */
    KMS_AEAD_TIER_AESNI = 1,    /* AES-NI + PCLMULQDQ, 8 blocks in flight */
    KMS_AEAD_TIER_VAES256 = 2,  /* VAES + VPCLMULQDQ on 256-bit vectors (AVX2) */
    KMS_AEAD_TIER_VAES = 3      /* VAES + VPCLMULQDQ on 512-bit vectors (AVX-512) */
};

/* Sizes, read by Python once at import (never hard-coded there). */
size_t kms_aead_nonce_bytes(void);
size_t kms_aead_tag_bytes(void);
uint64_t kms_aead_max_plaintext_bytes(void);
uint64_t kms_aead_max_aad_bytes(void);

/* The best tier this CPU and OS support (CPUID + XGETBV, probed once). */
int kms_aead_best_tier(void);
const char *kms_aead_tier_name(int tier);

/* Key context: expanded round keys and GHASH key powers, 64-byte aligned,
 * wiped when freed. Read-only after creation, so it may be shared by
 * concurrent calls. tier <= best tier, or KMS_AEAD_ERR_BACKEND. */
typedef struct kms_gcm_ctx kms_gcm_ctx;
kms_gcm_ctx *kms_gcm_new(const uint8_t *key, size_t key_len, int tier,
                         int *status);
void kms_gcm_free(kms_gcm_ctx *ctx);
int kms_gcm_tier(const kms_gcm_ctx *ctx);

/* One message. nonce points at 12 bytes. seal writes in_len bytes of
 * ciphertext followed by the 16-byte tag to out (in_len + 16 bytes); open
 * takes ciphertext plus tag (in_len >= 16) and writes in_len - 16 bytes of
 * plaintext. Sizes are implied, as in libsodium's AEAD calls, because every
 * argument costs a conversion on each call from Python. out may equal in
 * exactly; any other overlap is refused. On KMS_AEAD_ERR_AUTH the output is
 * zeroed: no unverified plaintext is ever released. */
int kms_gcm_seal(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                 const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t in_len, uint8_t *out);
int kms_gcm_open(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                 const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t in_len, uint8_t *out);

/* Batches: count messages under one key in one call.
 *
 * Inputs are packed back to back in `in` (in_lens[i] bytes each, summing to
 * in_total). Associated data is either per item (aad_lens != NULL, packed
 * back to back in `aad`, summing to aad_total) or one value shared by every
 * item (aad_lens == NULL: the whole `aad` buffer, possibly empty).
 * nonces holds count * 12 bytes; for seal with KMS_SEAL_GENERATE_NONCES the
 * engine fills it from getrandom() in one system call before encrypting.
 * With KMS_SEAL_NONCE_PREFIX each sealed item also starts with its nonce
 * (the transit body layout), 12 more bytes per item. A header size h in
 * the flags (h << KMS_SEAL_HEADER_SHIFT, h < 256) leaves h bytes before
 * each item's output untouched, for a codec to frame it (the bulk route's
 * msgpack bin32 headers, kms_bulk_seal_framed): item i's output then
 * starts after them, and out_offsets[i] points at the header room.
 *
 * Outputs are packed back to back in `out`: item i gets in_lens[i] + 16
 * bytes (seal, plus the nonce and header room asked for) or in_lens[i] - 16
 * bytes (open; 0 for an item too short).
 * For seal out_len must be exactly the sum; for open at least the sum (so a
 * caller may pass in_total without first scanning for short items).
 * out_offsets receives count + 1 entries so item i is
 * out[out_offsets[i] : out_offsets[i + 1]]. status[i] receives the item's
 * code. A failed item's output is zeroed; other items are not affected.
 *
 * Returns the number of failed items, or a negative code for an error of the
 * call itself (then nothing was written to out). `out` must not overlap any
 * input. */
/* seal_batch flags */
enum {
    KMS_SEAL_GENERATE_NONCES = 1, /* fill nonces from getrandom first */
    KMS_SEAL_NONCE_PREFIX = 2,    /* item i's output is nonce || ct || tag */
    KMS_SEAL_HEADER_SHIFT = 8     /* bits 8..15: header room before each item */
};
/* A batch's items and where their results go (the fields the text above
 * names; items/item_lens are the inputs, plaintexts or ciphertexts). */
typedef struct {
    size_t count;
    const uint8_t *aad; size_t aad_total; const uint64_t *aad_lens;
    const uint8_t *items; size_t items_total; const uint64_t *item_lens;
    uint8_t *out; size_t out_len; uint64_t *out_offsets; int32_t *status;
} kms_batch;
int64_t kms_gcm_seal_batch(const kms_gcm_ctx *ctx, const kms_batch *batch,
                           uint8_t *nonces, size_t nonces_len, int flags);
int64_t kms_gcm_open_batch(const kms_gcm_ctx *ctx, const kms_batch *batch,
                           const uint8_t *nonces, size_t nonces_len);

/* Parameter checks with no buffers, so callers can refuse early and tests
 * can probe the limits without allocating 64 GiB. Returns KMS_AEAD_OK or
 * the code a call would get. Only 12-byte nonces and 16-byte tags pass. */
int kms_gcm_check_params(uint64_t nonce_len, uint64_t tag_len,
                         uint64_t aad_len, uint64_t plaintext_len);

/* Output arenas for batch results: 64-byte aligned, recycled on release
 * (a few are kept) so large batches do not fault in fresh pages each time.
 * release wipes the first `used` bytes when wipe != 0 (plaintext). */
uint8_t *kms_arena_new(size_t size);
void kms_arena_release(uint8_t *payload, size_t used, int wipe);
/* Free every cached arena (memory pressure, tests). */
void kms_arena_trim(void);

/* The wire-format codecs over this engine are declared in kms_codecs.h. */

/* Constant-time comparison of n bytes: 1 if equal, 0 otherwise. */
int kms_aead_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* cdef-end */

#endif /* KMS_AEAD_H */
