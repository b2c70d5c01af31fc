/*
 * aead.c: the engine's public entry points (kms_aead.h).
 *
 * Everything that is not cipher arithmetic lives here: argument and length
 * checks, tier dispatch, the constant-time tag check, batch bookkeeping,
 * nonce generation and wiping. The tiers only ever see valid arguments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/random.h>
#else
#include <unistd.h>
#endif

#include "gcm_internal.h"

/* SP 800-38D: plaintext <= 2^39 - 256 bits, AAD < 2^64 bits. */
#define GCM_MAX_PLAINTEXT ((((uint64_t)1) << 36) - 32)
#define GCM_MAX_AAD ((((uint64_t)1) << 61) - 1)

/* A memset the optimiser cannot drop: called through a volatile pointer. */
static void *(*const volatile wipe_memset)(void *, int, size_t) = memset;

void kms_wipe(void *p, size_t n)
{
    if (p && n)
        wipe_memset(p, 0, n);
}

size_t kms_aead_nonce_bytes(void) { return GCM_NONCE_BYTES; }
size_t kms_aead_tag_bytes(void) { return GCM_TAG_BYTES; }
uint64_t kms_aead_max_plaintext_bytes(void) { return GCM_MAX_PLAINTEXT; }
uint64_t kms_aead_max_aad_bytes(void) { return GCM_MAX_AAD; }

int kms_aead_best_tier(void) { return kms_cpu_best_tier(); }

const char *kms_aead_tier_name(int tier)
{
    switch (tier) {
    case KMS_AEAD_TIER_VAES:
        return "vaes";
    case KMS_AEAD_TIER_VAES256:
        return "vaes256";
    case KMS_AEAD_TIER_AESNI:
        return "aesni";
    default:
        return "none";
    }
}

static const struct gcm_tier *tier_ops(int tier)
{
#if KMS_HAVE_X86_TIERS
    if (tier == KMS_AEAD_TIER_VAES)
        return &kms_gcm_tier_vaes;
    if (tier == KMS_AEAD_TIER_VAES256)
        return &kms_gcm_tier_vaes256;
    if (tier == KMS_AEAD_TIER_AESNI)
        return &kms_gcm_tier_aesni;
#endif
    (void)tier;
    return NULL;
}

int kms_aead_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    /* OR together the XOR of every word: no early exit and no branch on
     * the data; only the final 0/1 is ever looked at. */
    uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    for (; i < n; i++)
        diff |= (uint64_t)(a[i] ^ b[i]);
    /* 1 when diff == 0, else 0, computed without a comparison. */
    return (int)(1 & ((diff | (0 - diff)) >> 63 ^ 1));
}

kms_gcm_ctx *kms_gcm_new(const uint8_t *key, size_t key_len, int tier,
                         int *status)
{
    int st = KMS_AEAD_OK;
    kms_gcm_ctx *ctx = NULL;
    const struct gcm_tier *ops = NULL;
    if (!key) {
        st = KMS_AEAD_ERR_NULL;
    } else if (key_len != 16 && key_len != 32) {
        st = KMS_AEAD_ERR_KEY_SIZE;
    } else if (tier <= KMS_AEAD_TIER_NONE || tier > kms_cpu_best_tier() ||
               !(ops = tier_ops(tier))) {
        st = KMS_AEAD_ERR_BACKEND;
    } else if (!(ctx = aligned_alloc(64, sizeof *ctx))) {
        st = KMS_AEAD_ERR_NOMEM;
    } else {
        memset(ctx, 0, sizeof *ctx);
        ctx->tier = tier;
        ctx->ops = ops;
        ops->init(ctx, key, key_len);
    }
    if (status)
        *status = st;
    return ctx;
}

void kms_gcm_free(kms_gcm_ctx *ctx)
{
    if (!ctx)
        return;
    kms_wipe(ctx, sizeof *ctx);
    free(ctx);
}

int kms_gcm_tier(const kms_gcm_ctx *ctx) { return ctx ? ctx->tier : KMS_AEAD_TIER_NONE; }

int kms_gcm_check_params(uint64_t nonce_len, uint64_t tag_len,
                         uint64_t aad_len, uint64_t plaintext_len)
{
    if (nonce_len != GCM_NONCE_BYTES)
        return KMS_AEAD_ERR_NONCE_SIZE;
    if (tag_len != GCM_TAG_BYTES)
        return KMS_AEAD_ERR_TAG_SIZE;
    if (aad_len > GCM_MAX_AAD || plaintext_len > GCM_MAX_PLAINTEXT)
        return KMS_AEAD_ERR_TOO_LONG;
    return KMS_AEAD_OK;
}

/* Exactly equal, or disjoint: anything else is refused. */
static int partial_overlap(const uint8_t *a, size_t a_len, const uint8_t *b,
                           size_t b_len)
{
    if (a == b || !a_len || !b_len)
        return 0;
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + b_len && b0 < a0 + a_len;
}

static int any_overlap(const uint8_t *a, size_t a_len, const uint8_t *b,
                       size_t b_len)
{
    if (!a_len || !b_len)
        return 0;
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + b_len && b0 < a0 + a_len;
}

/* Checks shared by single and batch items; buffers are known non-NULL where
 * a length is non-zero. */
static int check_item(size_t nonce_len, size_t aad_len, size_t pt_len)
{
    return kms_gcm_check_params(nonce_len, GCM_TAG_BYTES, aad_len, pt_len);
}

/* Seal one item whose arguments are already valid. */
static void seal_item(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      size_t in_len, uint8_t *out)
{
    ctx->ops->encrypt(ctx, nonce, aad, aad_len, in, out, in_len, out + in_len);
}

/* Open one item whose arguments are already valid (in_len >= 16). On a bad
 * tag the plaintext already written is wiped before returning. */
static int open_item(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                     const uint8_t *aad, size_t aad_len, const uint8_t *in,
                     size_t in_len, uint8_t *out)
{
    size_t ct_len = in_len - GCM_TAG_BYTES;
    uint8_t received[GCM_TAG_BYTES], computed[GCM_TAG_BYTES];
    /* Copy the tag first: with in == out it sits just past the plaintext,
     * so it survives, but a copy keeps that reasoning local. */
    memcpy(received, in + ct_len, GCM_TAG_BYTES);
    ctx->ops->decrypt(ctx, nonce, aad, aad_len, in, out, ct_len, computed);
    int ok = kms_aead_ct_equal(received, computed, GCM_TAG_BYTES);
    kms_wipe(computed, sizeof computed);
    if (!ok) {
        kms_wipe(out, ct_len);
        return KMS_AEAD_ERR_AUTH;
    }
    return KMS_AEAD_OK;
}

int kms_gcm_seal(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                 const uint8_t *aad, size_t aad_len, const uint8_t *in,
                 size_t in_len, uint8_t *out)
{
    if (!ctx || !nonce || (aad_len && !aad) || (in_len && !in) || !out)
        return KMS_AEAD_ERR_NULL;
    int st = check_item(GCM_NONCE_BYTES, aad_len, in_len);
    if (st)
        return st;
    if (partial_overlap(in, in_len, out, in_len + GCM_TAG_BYTES))
        return KMS_AEAD_ERR_OVERLAP;
    seal_item(ctx, nonce, aad, aad_len, in, in_len, out);
    return KMS_AEAD_OK;
}

int kms_gcm_open(const kms_gcm_ctx *ctx, const uint8_t *nonce,
                 const uint8_t *aad, size_t aad_len, const uint8_t *in,
                 size_t in_len, uint8_t *out)
{
    if (!ctx || !nonce || (aad_len && !aad) || (in_len && !in))
        return KMS_AEAD_ERR_NULL;
    if (in_len < GCM_TAG_BYTES)
        return KMS_AEAD_ERR_TOO_SHORT;
    size_t out_len = in_len - GCM_TAG_BYTES;
    int st = check_item(GCM_NONCE_BYTES, aad_len, out_len);
    if (st)
        return st;
    if (out_len && !out)
        return KMS_AEAD_ERR_NULL;
    if (partial_overlap(in, in_len, out, out_len))
        return KMS_AEAD_ERR_OVERLAP;
    return open_item(ctx, nonce, aad, aad_len, in, in_len, out);
}

/* ---- batches ---------------------------------------------------------- */

int kms_fill_random(uint8_t *p, size_t n)
{
#if defined(__linux__)
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return KMS_AEAD_ERR_RANDOM;
        }
        p += got;
        n -= (size_t)got;
    }
#else
    while (n) {
        size_t chunk = n < 256 ? n : 256;
        if (getentropy(p, chunk) != 0)
            return KMS_AEAD_ERR_RANDOM;
        p += chunk;
        n -= chunk;
    }
#endif
    return KMS_AEAD_OK;
}

/* Sum a length table, refusing overflow. */
static int sum_lengths(const uint64_t *lens, size_t count, uint64_t *total)
{
    uint64_t t = 0;
    for (size_t i = 0; i < count; i++) {
        if (lens[i] > UINT64_MAX - t)
            return KMS_AEAD_ERR_BUFFER;
        t += lens[i];
    }
    *total = t;
    return KMS_AEAD_OK;
}

/* Item i's associated data: its own slice (at aad_off), or the one value
 * every item shares when there is no length table. */
static inline const uint8_t *batch_aad(const kms_batch *b, size_t i, uint64_t aad_off, uint64_t *len)
{
    *len = b->aad_lens ? b->aad_lens[i] : b->aad_total;
    return b->aad_lens ? b->aad + aad_off : b->aad;
}

/* Call-level checks shared by both batch directions. */
static int check_batch(const kms_gcm_ctx *ctx, const kms_batch *b, const uint8_t *nonces,
                       size_t nonces_len)
{
    if (!ctx || !b || !b->out_offsets || !b->status)
        return KMS_AEAD_ERR_NULL;
    if (b->count && (!nonces || !b->item_lens))
        return KMS_AEAD_ERR_NULL;
    if ((b->aad_total && !b->aad) || (b->items_total && !b->items) || (b->out_len && !b->out))
        return KMS_AEAD_ERR_NULL;
    if (b->count > SIZE_MAX / GCM_NONCE_BYTES || nonces_len != b->count * GCM_NONCE_BYTES)
        return KMS_AEAD_ERR_BUFFER;
    uint64_t total;
    if (sum_lengths(b->item_lens, b->count, &total) || total != b->items_total)
        return KMS_AEAD_ERR_BUFFER;
    if (b->aad_lens && (sum_lengths(b->aad_lens, b->count, &total) || total != b->aad_total))
        return KMS_AEAD_ERR_BUFFER;
    /* The output arena must not alias anything the batch still reads. */
    if (any_overlap(b->out, b->out_len, b->items, b->items_total) ||
        any_overlap(b->out, b->out_len, b->aad, b->aad_total) ||
        any_overlap(b->out, b->out_len, nonces, nonces_len))
        return KMS_AEAD_ERR_OVERLAP;
    return KMS_AEAD_OK;
}

int64_t kms_gcm_seal_batch(const kms_gcm_ctx *ctx, const kms_batch *b, uint8_t *nonces,
                           size_t nonces_len, int flags)
{
    int st = check_batch(ctx, b, nonces, nonces_len);
    if (st)
        return st;
    const uint64_t framing = ((unsigned)flags >> KMS_SEAL_HEADER_SHIFT) & 0xFF;
    const uint64_t prefix = framing + ((flags & KMS_SEAL_NONCE_PREFIX) ? GCM_NONCE_BYTES : 0);
    const uint64_t extra = GCM_TAG_BYTES + prefix;
    if (b->count > (UINT64_MAX - b->items_total) / extra ||
        b->out_len != b->items_total + (uint64_t)b->count * extra)
        return KMS_AEAD_ERR_BUFFER;
    if ((flags & KMS_SEAL_GENERATE_NONCES) && (st = kms_fill_random(nonces, nonces_len)))
        return st;

    int64_t failed = 0;
    uint64_t in_off = 0, aad_off = 0, out_off = 0;
    struct gcm_msg group[GCM_SMALL_GROUP];
    size_t pending = 0;
    for (size_t i = 0; i < b->count; i++) {
        uint64_t len = b->item_lens[i], alen;
        const uint8_t *item_aad = batch_aad(b, i, aad_off, &alen);
        b->out_offsets[i] = out_off;
        st = check_item(GCM_NONCE_BYTES, alen, len);
        if ((flags & KMS_SEAL_NONCE_PREFIX) && !st) /* the header room stays the codec's */
            memcpy(b->out + out_off + framing, nonces + GCM_NONCE_BYTES * i, GCM_NONCE_BYTES);
        uint8_t *slot = b->out + out_off + prefix; /* ciphertext || tag */
        if (st) {
            kms_wipe(b->out + out_off, len + extra);
            failed++;
        } else if (len <= GCM_SMALL_MAX) {
            /* Small items share AES passes, GCM_SMALL_GROUP at a time. */
            struct gcm_msg m = {nonces + GCM_NONCE_BYTES * i, item_aad, alen,
                                b->items + in_off, slot, len, slot + len};
            group[pending++] = m;
            if (pending == GCM_SMALL_GROUP) {
                ctx->ops->encrypt_small(ctx, group, pending);
                pending = 0;
            }
        } else {
            seal_item(ctx, nonces + GCM_NONCE_BYTES * i, item_aad, alen,
                      b->items + in_off, len, slot);
        }
        b->status[i] = st;
        in_off += len;
        if (b->aad_lens)
            aad_off += alen;
        out_off += len + extra;
    }
    if (pending)
        ctx->ops->encrypt_small(ctx, group, pending);
    b->out_offsets[b->count] = out_off;
    return failed;
}

/* Open the small items collected in group: compare each computed tag with
 * the received one and wipe the plaintext of every item that fails. */
struct pending_open {
    size_t index;
    const uint8_t *received;
    uint8_t computed[GCM_TAG_BYTES];
};

static int64_t flush_open_group(const kms_gcm_ctx *ctx, struct gcm_msg *group,
                                struct pending_open *meta, size_t n, int32_t *status)
{
    int64_t failed = 0;
    ctx->ops->decrypt_small(ctx, group, n);
    for (size_t k = 0; k < n; k++) {
        if (!kms_aead_ct_equal(meta[k].received, meta[k].computed, GCM_TAG_BYTES)) {
            kms_wipe(group[k].out, group[k].len);
            status[meta[k].index] = KMS_AEAD_ERR_AUTH;
            failed++;
        }
        kms_wipe(meta[k].computed, GCM_TAG_BYTES);
    }
    return failed;
}

int64_t kms_gcm_open_batch(const kms_gcm_ctx *ctx, const kms_batch *b,
                           const uint8_t *nonces, size_t nonces_len)
{
    int st = check_batch(ctx, b, nonces, nonces_len);
    if (st)
        return st;
    uint64_t need = 0;
    for (size_t i = 0; i < b->count; i++)
        if (b->item_lens[i] >= GCM_TAG_BYTES)
            need += b->item_lens[i] - GCM_TAG_BYTES;
    if (b->out_len < need)
        return KMS_AEAD_ERR_BUFFER;

    int64_t failed = 0;
    uint64_t in_off = 0, aad_off = 0, out_off = 0;
    struct gcm_msg group[GCM_SMALL_GROUP];
    struct pending_open meta[GCM_SMALL_GROUP];
    size_t pending = 0;
    for (size_t i = 0; i < b->count; i++) {
        uint64_t len = b->item_lens[i], alen;
        const uint8_t *item_aad = batch_aad(b, i, aad_off, &alen);
        uint64_t plain = len >= GCM_TAG_BYTES ? len - GCM_TAG_BYTES : 0;
        b->out_offsets[i] = out_off;
        if (len < GCM_TAG_BYTES)
            st = KMS_AEAD_ERR_TOO_SHORT;
        else
            st = check_item(GCM_NONCE_BYTES, alen, plain);
        b->status[i] = st;
        if (st) {
            kms_wipe(b->out + out_off, plain);
            failed++;
        } else if (plain <= GCM_SMALL_MAX) {
            struct gcm_msg m = {nonces + GCM_NONCE_BYTES * i, item_aad, alen,
                                b->items + in_off, b->out + out_off, plain, meta[pending].computed};
            meta[pending].index = i;
            meta[pending].received = b->items + in_off + plain;
            group[pending++] = m;
            if (pending == GCM_SMALL_GROUP) {
                failed += flush_open_group(ctx, group, meta, pending, b->status);
                pending = 0;
            }
        } else if ((st = open_item(ctx, nonces + GCM_NONCE_BYTES * i, item_aad, alen,
                                   b->items + in_off, len, b->out + out_off))) {
            b->status[i] = st;
            failed++;
        }
        in_off += len;
        if (b->aad_lens)
            aad_off += alen;
        out_off += plain;
    }
    if (pending)
        failed += flush_open_group(ctx, group, meta, pending, b->status);
    b->out_offsets[b->count] = out_off;
    /* b->out may be larger than needed (callers pass an upper bound); never
     * leave whatever the allocator had there readable after the items. */
    if (b->out_len > out_off)
        memset(b->out + out_off, 0, b->out_len - out_off);
    return failed;
}
