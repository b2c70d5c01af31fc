/*
 * bulk.c: the bulk routes' msgpack requests read and answered in one call
 * each. Items are sealed or opened where they lie in the request body (see
 * msgpack_scan.h), and each lands in out as a msgpack bin32 (or nil), so
 * out is the body of the response's array as it is. Also the framing of an
 * engine batch (kms_bulk_seal_framed), for requests the engine does not
 * read itself.
 */
#include <string.h>

#include "codec_internal.h"
#include "msgpack_scan.h"

#define BIN32 5
#define SEALED_EXTRA (GCM_NONCE_BYTES + GCM_TAG_BYTES)

static void put_bin32(uint8_t *at, uint64_t n)
{
    at[0] = 0xc6;
    at[1] = (uint8_t)(n >> 24);
    at[2] = (uint8_t)(n >> 16);
    at[3] = (uint8_t)(n >> 8);
    at[4] = (uint8_t)n;
}

static void put_scan(kms_codec_result *r, const struct bulk_request *q)
{
    memset(r, 0, sizeof *r);
    r->items = q->count;
    r->has_version = q->has_version;
    r->version = q->version;
    r->out_max = q->payload + (uint64_t)q->count * (BIN32 + SEALED_EXTRA);
}

int kms_bulk_scan(const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                  const uint8_t *body, size_t len, size_t max_items, int text, int64_t *versions,
                  size_t versions_cap, kms_codec_result *r)
{
    if ((len && !body) || !r)
        return KMS_AEAD_ERR_NULL;
    struct words w;
    if (versions && words_load(&w, words, word_ends, word_count))
        return KMS_AEAD_ERR_BUFFER;
    struct bulk_request q;
    if (bulk_request_scan(&q, body, len, max_items, text != 0))
        return KMS_AEAD_NOT_SIMPLE;
    put_scan(r, &q);
    if (!text || !versions)
        return KMS_AEAD_OK;
    if (versions_cap < q.count)
        return KMS_AEAD_ERR_BUFFER;
    struct bulk_cursor c;
    bulk_cursor_start(&c, &q);
    for (size_t i = 0; i < q.count; i++) {
        size_t off, n, body_off;
        bulk_cursor_next(&c, &q, &off, &n);
        if (split_versioned(&w, body + off, n, &versions[i], &body_off))
            return KMS_AEAD_NOT_SIMPLE;
    }
    return KMS_AEAD_OK;
}

int64_t kms_bulk_seal(const kms_gcm_ctx *ctx, const uint8_t *body, size_t len,
                      size_t max_items, uint8_t *out, size_t out_cap, kms_codec_result *r)
{
    if (!ctx || (len && !body) || (out_cap && !out) || !r)
        return KMS_AEAD_ERR_NULL;
    struct bulk_request q;
    if (bulk_request_scan(&q, body, len, max_items, 0))
        return KMS_AEAD_NOT_SIMPLE;
    put_scan(r, &q);
    if (out_cap < r->out_max)
        return KMS_AEAD_ERR_BUFFER;
    uint8_t *nonces = kms_arena_new(q.count ? q.count * GCM_NONCE_BYTES : 1);
    if (!nonces)
        return KMS_AEAD_ERR_NOMEM;
    int st = kms_fill_random(nonces, q.count * GCM_NONCE_BYTES);
    size_t o = 0;
    struct bulk_cursor c;
    bulk_cursor_start(&c, &q);
    for (size_t i = 0; i < q.count && !st; i++) {
        size_t off, n;
        bulk_cursor_next(&c, &q, &off, &n);
        if ((uint64_t)n + SEALED_EXTRA > UINT32_MAX ||
            kms_gcm_check_params(GCM_NONCE_BYTES, GCM_TAG_BYTES, c.aad_len, n)) {
            st = KMS_AEAD_NOT_SIMPLE; /* the general path names the item */
            break;
        }
        uint8_t *at = out + o;
        put_bin32(at, n + SEALED_EXTRA);
        memcpy(at + BIN32, nonces + GCM_NONCE_BYTES * i, GCM_NONCE_BYTES);
        ctx->ops->encrypt(ctx, at + BIN32, c.aad, c.aad_len, body + off,
                          at + BIN32 + GCM_NONCE_BYTES, n, at + BIN32 + GCM_NONCE_BYTES + n);
        o += BIN32 + n + SEALED_EXTRA;
    }
    kms_arena_release(nonces, q.count * GCM_NONCE_BYTES, 0);
    r->out_len = o;
    return st;
}

size_t kms_bulk_open_output_max(size_t len, size_t items)
{
    /* Each entry is a bin32 of a plaintext shorter than its item (decoded
     * base64 is shorter still), or nil. */
    return len + items * BIN32;
}

/* The longest item of a scanned request (the text items' scratch). */
static size_t longest_item(const struct bulk_request *q)
{
    struct bulk_cursor c;
    size_t longest = 0, off, n;
    bulk_cursor_start(&c, q);
    for (size_t i = 0; i < q->count; i++) {
        bulk_cursor_next(&c, q, &off, &n);
        longest = n > longest ? n : longest;
    }
    return longest;
}

/* One item opened to at + BIN32: its status, or KMS_AEAD_NOT_SIMPLE for a
 * text item the general reader must judge (bad base64). */
static int open_item(const kms_gcm_ctx *ctx, const struct words *w, const uint8_t *item, size_t n,
                     const struct bulk_cursor *c, size_t short_below, uint8_t *scratch,
                     uint8_t *at, size_t *plain)
{
    const uint8_t *raw = item;
    if (w) { /* a transit string: its base64 body decoded first */
        int64_t version, decoded;
        size_t body_off, where;
        split_versioned(w, item, n, &version, &body_off); /* checked by the scan */
        decoded = b64_decode(item + body_off, n - body_off, scratch, &where, codec_simd(ctx));
        if (decoded < 0)
            return KMS_AEAD_NOT_SIMPLE;
        raw = scratch;
        n = (size_t)decoded;
    }
    int st = open_sealed(ctx, raw, n, c->aad, c->aad_len, at + BIN32, short_below);
    *plain = st ? 0 : n - SEALED_EXTRA;
    return st;
}

int64_t kms_bulk_open(const kms_gcm_ctx *const *ctxs, size_t ctx_count, const int32_t *routes,
                      size_t route_count, int text, size_t short_below,
                      const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                      const uint8_t *body, size_t len, size_t max_items, uint8_t *out,
                      size_t out_cap, int32_t *status, size_t status_cap, kms_codec_result *r)
{
    if (!ctxs || !ctx_count || (len && !body) || (out_cap && !out) || !r ||
        (status_cap && !status))
        return KMS_AEAD_ERR_NULL;
    struct words w;
    if (text && words_load(&w, words, word_ends, word_count))
        return KMS_AEAD_ERR_BUFFER;
    struct bulk_request q;
    if (bulk_request_scan(&q, body, len, max_items, text))
        return KMS_AEAD_NOT_SIMPLE;
    put_scan(r, &q);
    r->out_max = kms_bulk_open_output_max(len, q.count);
    if (out_cap < r->out_max || status_cap < q.count || (text && (!routes || route_count < q.count)))
        return KMS_AEAD_ERR_BUFFER;
    for (size_t i = 0; i < ctx_count; i++)
        if (!ctxs[i])
            return KMS_AEAD_ERR_NULL;
    codec_init_tables();
    size_t scratch_len = text ? b64_decoded_max(longest_item(&q)) + 1 : 0;
    uint8_t *scratch = text ? kms_arena_new(scratch_len) : NULL;
    if (text && !scratch)
        return KMS_AEAD_ERR_NOMEM;
    size_t o = 0;
    int64_t failed = 0, result = 0;
    struct bulk_cursor c;
    bulk_cursor_start(&c, &q);
    for (size_t i = 0; i < q.count; i++) {
        size_t off, n, plain = 0;
        bulk_cursor_next(&c, &q, &off, &n);
        int32_t route = text ? routes[i] : 0;
        if (route >= (int64_t)ctx_count) {
            result = KMS_AEAD_ERR_BUFFER; /* a route past the caller's keys */
            break;
        }
        if (kms_gcm_check_params(GCM_NONCE_BYTES, GCM_TAG_BYTES, c.aad_len, 0)) {
            result = KMS_AEAD_NOT_SIMPLE; /* the general path names the item */
            break;
        }
        int st = route < 0 ? KMS_CODEC_PLAN_FAILED
                           : open_item(ctxs[route], text ? &w : NULL, body + off, n, &c,
                                       short_below, scratch, out + o, &plain);
        if (st == KMS_AEAD_NOT_SIMPLE) {
            result = st;
            break;
        }
        status[i] = st;
        if (st == KMS_AEAD_OK) {
            put_bin32(out + o, plain);
            o += BIN32 + plain;
            continue;
        }
        out[o++] = 0xc0; /* nil */
        failed++;
    }
    if (scratch)
        kms_arena_release(scratch, scratch_len, 1); /* held ciphertext only, but cheap */
    r->out_len = o;
    return result ? result : failed;
}

size_t kms_bulk_framed_output_max(size_t count, size_t in_total)
{
    return in_total + count * (BIN32 + SEALED_EXTRA);
}

int64_t kms_bulk_seal_framed(const kms_gcm_ctx *ctx, size_t count, const uint8_t *aad,
                             size_t aad_total, const uint64_t *aad_lens, const uint8_t *in,
                             size_t in_total, const uint64_t *in_lens, uint8_t *out,
                             size_t out_len, uint64_t *out_offsets, int32_t *status)
{
    if (!ctx || (count && (!in_lens || !out_offsets || !status)))
        return KMS_AEAD_ERR_NULL;
    for (size_t i = 0; i < count; i++)
        if (in_lens[i] > UINT32_MAX - SEALED_EXTRA)
            return KMS_AEAD_ERR_TOO_LONG; /* a bin32 holds under 4 GiB */
    uint8_t *nonces = kms_arena_new(count ? count * GCM_NONCE_BYTES : 1);
    if (!nonces)
        return KMS_AEAD_ERR_NOMEM;
    /* The engine leaves each item's header room empty; the headers are
     * written here, from the offsets it reports. */
    int flags = KMS_SEAL_GENERATE_NONCES | KMS_SEAL_NONCE_PREFIX | BIN32 << KMS_SEAL_HEADER_SHIFT;
    const kms_batch batch = {count, aad, aad_total, aad_lens, in, in_total, in_lens,
                             out, out_len, out_offsets, status};
    int64_t failed = kms_gcm_seal_batch(ctx, &batch, count ? nonces : NULL, count * GCM_NONCE_BYTES, flags);
    kms_arena_release(nonces, count * GCM_NONCE_BYTES, 0);
    if (failed < 0)
        return failed;
    for (size_t i = 0; i < count; i++)
        if (!status[i])
            put_bin32(out + out_offsets[i], out_offsets[i + 1] - out_offsets[i] - BIN32);
    return failed;
}
