/*
 * bulk.c: the bulk encrypt route's request read and sealed in one call.
 * The request's items are sealed where they lie in its msgpack body (see
 * msgpack_scan.h), and each lands in out as a msgpack bin32 (header,
 * nonce, ciphertext, tag), so out is the body of the response's
 * "ciphertexts" array as it is.
 */
#include <string.h>

#include "gcm_internal.h"
#include "msgpack_scan.h"

#define FRAME (5 + GCM_NONCE_BYTES + GCM_TAG_BYTES)

int kms_bulk_scan_msgpack(const uint8_t *body, size_t len, size_t max_items, uint64_t *info)
{
    if ((len && !body) || !info)
        return KMS_AEAD_ERR_NULL;
    struct bulk_request r;
    if (bulk_request_scan(&r, body, len, max_items))
        return KMS_AEAD_NOT_SIMPLE;
    info[0] = r.count;
    info[1] = (uint64_t)r.has_version;
    info[2] = (uint64_t)r.version;
    info[3] = r.payload + (uint64_t)r.count * FRAME;
    return KMS_AEAD_OK;
}

int64_t kms_bulk_seal_msgpack(const kms_gcm_ctx *ctx, const uint8_t *body, size_t len,
                              size_t max_items, uint8_t *out, size_t out_cap, uint64_t *info)
{
    if (!ctx || (len && !body) || (out_cap && !out) || !info)
        return KMS_AEAD_ERR_NULL;
    struct bulk_request r;
    if (bulk_request_scan(&r, body, len, max_items))
        return KMS_AEAD_NOT_SIMPLE;
    uint64_t need = r.payload + (uint64_t)r.count * FRAME;
    info[4] = need;
    if (out_cap < need)
        return KMS_AEAD_ERR_BUFFER;
    uint8_t *nonces = kms_arena_new(r.count ? r.count * GCM_NONCE_BYTES : 1);
    if (!nonces)
        return KMS_AEAD_ERR_NOMEM;
    int st = kms_fill_random(nonces, r.count * GCM_NONCE_BYTES);
    size_t o = 0;
    struct bulk_cursor c;
    bulk_cursor_start(&c, &r);
    for (size_t i = 0; i < r.count && !st; i++) {
        size_t off, n;
        bulk_cursor_next(&c, &r, &off, &n);
        if ((uint64_t)n + GCM_NONCE_BYTES + GCM_TAG_BYTES > UINT32_MAX ||
            kms_gcm_check_params(GCM_NONCE_BYTES, GCM_TAG_BYTES, c.aad_len, n)) {
            st = KMS_AEAD_NOT_SIMPLE; /* the general path names the item */
            break;
        }
        uint32_t framed = (uint32_t)(n + GCM_NONCE_BYTES + GCM_TAG_BYTES);
        uint8_t *at = out + o;
        at[0] = 0xc6;
        at[1] = (uint8_t)(framed >> 24);
        at[2] = (uint8_t)(framed >> 16);
        at[3] = (uint8_t)(framed >> 8);
        at[4] = (uint8_t)framed;
        memcpy(at + 5, nonces + GCM_NONCE_BYTES * i, GCM_NONCE_BYTES);
        ctx->ops->encrypt(ctx, at + 5, c.aad, c.aad_len, body + off, at + 5 + GCM_NONCE_BYTES, n,
                          at + 5 + GCM_NONCE_BYTES + n);
        o += 5 + (size_t)framed;
    }
    kms_arena_release(nonces, r.count * GCM_NONCE_BYTES, 0);
    info[0] = r.count;
    info[1] = (uint64_t)r.has_version;
    info[2] = (uint64_t)r.version;
    info[3] = o;
    return st ? st : 0;
}

int64_t kms_bulk_open_msgpack(const kms_gcm_ctx *ctx, const uint8_t *body, size_t len,
                              size_t max_items, uint8_t *out, size_t out_cap, int32_t *status,
                              size_t status_cap, uint64_t *info)
{
    if (!ctx || (len && !body) || (out_cap && !out) || !info || (status_cap && !status))
        return KMS_AEAD_ERR_NULL;
    struct bulk_request r;
    if (bulk_request_scan(&r, body, len, max_items))
        return KMS_AEAD_NOT_SIMPLE;
    /* Each entry is a bin32 of the plaintext (28 bytes shorter than its
     * item) or nil. */
    uint64_t need = r.payload + (uint64_t)r.count * 5;
    info[4] = need;
    if (out_cap < need || status_cap < r.count)
        return KMS_AEAD_ERR_BUFFER;
    size_t o = 0;
    int64_t failed = 0;
    struct bulk_cursor c;
    bulk_cursor_start(&c, &r);
    for (size_t i = 0; i < r.count; i++) {
        size_t off, n;
        bulk_cursor_next(&c, &r, &off, &n);
        if (kms_gcm_check_params(GCM_NONCE_BYTES, GCM_TAG_BYTES, c.aad_len, 0))
            return KMS_AEAD_NOT_SIMPLE; /* the general path names the item */
        if (n < GCM_NONCE_BYTES + GCM_TAG_BYTES) {
            status[i] = KMS_AEAD_ERR_TOO_SHORT;
        } else {
            size_t plain = n - GCM_NONCE_BYTES - GCM_TAG_BYTES;
            const uint8_t *sealed = body + off + GCM_NONCE_BYTES;
            uint8_t computed[GCM_TAG_BYTES];
            uint8_t *at = out + o;
            ctx->ops->decrypt(ctx, body + off, c.aad, c.aad_len, sealed, at + 5, plain, computed);
            int ok = kms_aead_ct_equal(sealed + plain, computed, GCM_TAG_BYTES);
            kms_wipe(computed, sizeof computed);
            if (ok) {
                at[0] = 0xc6;
                at[1] = (uint8_t)(plain >> 24);
                at[2] = (uint8_t)(plain >> 16);
                at[3] = (uint8_t)(plain >> 8);
                at[4] = (uint8_t)plain;
                o += 5 + plain;
                status[i] = KMS_AEAD_OK;
                continue;
            }
            kms_wipe(at + 5, plain); /* unverified plaintext never stays */
            status[i] = KMS_AEAD_ERR_AUTH;
        }
        out[o++] = 0xc0; /* nil */
        failed++;
    }
    info[0] = r.count;
    info[1] = (uint64_t)r.has_version;
    info[2] = (uint64_t)r.version;
    info[3] = o;
    return failed;
}
