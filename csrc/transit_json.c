/*
 * transit_json.c: transit JSON batches read (csrc/json_scan.c) and answered
 * in one call each: the batch_results array written from the caller's
 * words (kms_codecs.h), so no JSON member name or error wording is C's.
 */
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"
#include "json_scan.h"

size_t kms_json_output_max(size_t body_len, size_t items, const uint8_t *words,
                           const uint64_t *word_ends, size_t word_count)
{
    struct words w;
    if (words_load(&w, words, word_ends, word_count))
        return 0;
    /* Every item's payload and reference lie inside the body; a sealed or
     * opened payload grows by at most the prefix and the base64 of nonce
     * and tag (40); an entry adds its words, one failure text at most (or
     * an offset's 20 digits) and a comma; the array two brackets. */
    size_t fixed = 0, n;
    for (size_t i = KMS_WORD_PREFIX; i <= KMS_WORD_BAD_BASE64; i++)
        fixed += (word(&w, i, &n), n);
    size_t opening = words_longest(&w, KMS_WORD_TOO_SHORT, KMS_WORD_AUTH + 1);
    size_t planned = words_longest(&w, KMS_WORD_COUNT, w.count);
    size_t failure = (opening > planned ? opening : planned) + 20;
    return body_len + 2 + items * (fixed + failure + 40 + 1);
}

/* A batch as read: the scan, the table's names (the scan points at them)
 * and the words. */
struct json_read {
    struct json_batch b;
    struct json_names names;
    struct words w;
};

/* The batch read with the table's names; out_cap, for a call that writes:
 * KMS_AEAD_ERR_BUFFER below the bound. */
static int read_batch(struct json_read *j, const uint8_t *words, const uint64_t *word_ends,
                      size_t word_count, const uint8_t *body, size_t body_len, size_t max_items,
                      const size_t *out_cap, kms_codec_result *r)
{
    if (words_load(&j->w, words, word_ends, word_count))
        return KMS_AEAD_ERR_BUFFER;
    words_json_names(&j->w, &j->names);
    if (json_batch_scan(&j->b, body, body_len, &j->names, max_items))
        return KMS_AEAD_NOT_SIMPLE;
    memset(r, 0, sizeof *r);
    r->items = j->b.count;
    r->has_partial_code = j->b.has_code;
    r->partial_code = j->b.code;
    r->out_max = kms_json_output_max(body_len, j->b.count, words, word_ends, word_count);
    return out_cap && *out_cap < r->out_max ? KMS_AEAD_ERR_BUFFER : KMS_AEAD_OK;
}

int kms_json_scan_batch(const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                        const uint8_t *body, size_t body_len, size_t max_items,
                        int64_t *versions, size_t versions_cap, kms_codec_result *r)
{
    if ((body_len && !body) || !r)
        return KMS_AEAD_ERR_NULL;
    struct json_read j;
    int st = read_batch(&j, words, word_ends, word_count, body, body_len, max_items, NULL, r);
    if (st || !versions)
        return st;
    if (versions_cap < j.b.count)
        return KMS_AEAD_ERR_BUFFER;
    size_t pos = j.b.items_at, i = 0, body_off;
    struct json_item item;
    while (!json_batch_next(&j.b, &pos, &item))
        if (split_versioned(&j.w, body + item.text_off, item.text_len, &versions[i++], &body_off))
            return KMS_AEAD_NOT_SIMPLE;
    return KMS_AEAD_OK;
}

/* A scratch arena, and nonce_count fresh nonces in another (none when
 * nonce_count is 0): KMS_AEAD_OK, or a status with neither held. */
static int take_buffers(size_t scratch_len, size_t nonce_count, uint8_t **scratch,
                        uint8_t **nonces)
{
    *scratch = kms_arena_new(scratch_len);
    *nonces = nonce_count ? kms_arena_new(nonce_count * GCM_NONCE_BYTES) : NULL;
    int st = !*scratch || (nonce_count && !*nonces)
                 ? KMS_AEAD_ERR_NOMEM
                 : kms_fill_random(*nonces, nonce_count * GCM_NONCE_BYTES);
    if (st) {
        kms_arena_release(*scratch, 0, 0);
        kms_arena_release(*nonces, 0, 0);
    }
    return st;
}

/* An entry's end: the reference and the closing words. */
static size_t put_reference(uint8_t *out, size_t o, const struct words *w, const uint8_t *body,
                            const struct json_item *item)
{
    memcpy(out + o, body + item->ref_off, item->ref_len);
    return put_word(out, o + item->ref_len, w, KMS_WORD_END);
}

/* A failed entry with error word `why` (and `at`, when it names an
 * offset: at >= 0). */
static size_t put_failure(uint8_t *out, size_t o, const struct words *w, size_t why, int64_t at,
                          const uint8_t *body, const struct json_item *item)
{
    o = put_word(out, o, w, KMS_WORD_FAIL_HEAD);
    o = put_word(out, o, w, why);
    if (at >= 0)
        o += (size_t)snprintf((char *)out + o, 21, "%lld", (long long)at);
    o = put_word(out, o, w, KMS_WORD_FAIL_TAIL);
    return put_reference(out, o, w, body, item);
}

/* One item's entry, written at out + *o (moved past it): 1 for an error
 * entry, 0 for a passing one, or a negative status that ends the batch. */
typedef int64_t (*entry_fn)(void *state, size_t i, const struct json_item *item, uint8_t *out,
                            size_t *o);

/* The batch_results array, one entry per item: the failed entries' count,
 * or the status that ended it; r->out_len is what was written. */
static int64_t write_entries(const struct json_batch *b, entry_fn entry, void *state, uint8_t *out,
                             kms_codec_result *r)
{
    int64_t failed = 0;
    size_t o = 0, i = 0, pos = b->items_at;
    struct json_item item;
    out[o++] = '[';
    while (!json_batch_next(b, &pos, &item)) {
        if (i)
            out[o++] = ',';
        int64_t st = entry(state, i++, &item, out, &o);
        if (st < 0) {
            failed = st;
            break;
        }
        failed += st;
    }
    out[o++] = ']';
    r->out_len = o;
    return failed;
}

struct sealing {
    const kms_gcm_ctx *ctx;
    const struct words *w;
    const uint8_t *body, *prefix, *nonces;
    size_t prefix_len, used;
    uint8_t *scratch;
};

static int64_t seal_entry(void *state, size_t i, const struct json_item *item, uint8_t *out,
                          size_t *o)
{
    struct sealing *s = state;
    size_t where = 0;
    size_t at = put_word(out, *o, s->w, KMS_WORD_OK_HEAD);
    int64_t wrote = seal_text(s->ctx, s->prefix, s->prefix_len, s->nonces + GCM_NONCE_BYTES * i,
                              s->body + item->text_off, item->text_len, s->scratch, out + at, &where);
    size_t held = GCM_NONCE_BYTES + b64_decoded_max(item->text_len) + GCM_TAG_BYTES;
    s->used = held > s->used ? held : s->used;
    if (wrote >= 0) {
        *o = put_word(out, at + (size_t)wrote, s->w, KMS_WORD_OK_TAIL);
        *o = put_reference(out, *o, s->w, s->body, item);
        return 0;
    }
    if (wrote != KMS_AEAD_ERR_BASE64)
        return wrote;
    if (!json_plain(s->body + item->text_off, item->text_len))
        return KMS_AEAD_NOT_SIMPLE; /* an escape or such: JSON's reading counts */
    *o = put_failure(out, *o, s->w, KMS_WORD_BAD_BASE64, (int64_t)where, s->body, item);
    return 1;
}

int64_t kms_json_seal_batch(const kms_gcm_ctx *ctx, const uint8_t *words,
                            const uint64_t *word_ends, size_t word_count, const uint8_t *body,
                            size_t body_len, size_t max_items, uint8_t *out, size_t out_cap,
                            kms_codec_result *r)
{
    if (!ctx || (body_len && !body) || (out_cap && !out) || !r)
        return KMS_AEAD_ERR_NULL;
    struct json_read j;
    int st = read_batch(&j, words, word_ends, word_count, body, body_len, max_items, &out_cap, r);
    if (st)
        return st;
    codec_init_tables();

    /* Scratch for the largest text the body can hold; only the part the
     * longest item used is wiped. */
    size_t scratch_len = GCM_NONCE_BYTES + b64_decoded_max(body_len) + GCM_TAG_BYTES;
    uint8_t *scratch, *nonces;
    if ((st = take_buffers(scratch_len, j.b.count, &scratch, &nonces)))
        return st;
    struct sealing state = {ctx, &j.w, body, NULL, nonces, 0, 0, scratch};
    state.prefix = word(&j.w, KMS_WORD_PREFIX, &state.prefix_len);
    int64_t result = write_entries(&j.b, seal_entry, &state, out, r);
    kms_arena_release(scratch, state.used, 1); /* held plaintext */
    kms_arena_release(nonces, j.b.count * GCM_NONCE_BYTES, 0);
    return result;
}

int kms_json_scan_single(const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                         const uint8_t *body, size_t body_len, kms_codec_result *r)
{
    if ((body_len && !body) || !r)
        return KMS_AEAD_ERR_NULL;
    struct words w;
    if (words_load(&w, words, word_ends, word_count))
        return KMS_AEAD_ERR_BUFFER;
    struct json_names names;
    size_t off, n;
    words_json_names(&w, &names);
    if (json_single_scan(body, body_len, &names.field, &off, &n))
        return KMS_AEAD_NOT_SIMPLE;
    memset(r, 0, sizeof *r);
    r->items = 1;
    r->text_off = off;
    r->text_len = n;
    return KMS_AEAD_OK;
}

struct opening {
    const kms_gcm_ctx *const *ctxs;
    const int32_t *routes;
    const kms_gcm_ctx *reseal;
    const uint8_t *nonces;
    size_t short_below;
    const struct words *w;
    const uint8_t *body;
    uint8_t *scratch;
    size_t used;
};

/* One versioned item opened (and, with reseal, sealed again), or failed as
 * its route says (an entry_fn). A body that is not strict base64 ends the
 * batch as not simple. */
static int64_t open_entry(void *state, size_t i, const struct json_item *item, uint8_t *out,
                          size_t *o)
{
    struct opening *s = state;
    const struct words *w = s->w;
    int32_t route = s->routes[i];
    if (route < 0) {
        *o = put_failure(out, *o, w, (size_t)(-1 - (int64_t)route), -1, s->body, item);
        return 1;
    }
    const kms_gcm_ctx *ctx = s->ctxs[route];
    int64_t version;
    size_t body_off, where;
    const uint8_t *text = s->body + item->text_off;
    split_versioned(w, text, item->text_len, &version, &body_off); /* checked by the scan */
    size_t held = 2 * b64_decoded_max(item->text_len) + GCM_NONCE_BYTES + GCM_TAG_BYTES;
    s->used = held > s->used ? held : s->used;
    uint8_t *scratch = s->scratch;
    int64_t raw = b64_decode(text + body_off, item->text_len - body_off, scratch, &where,
                             codec_simd(ctx));
    if (raw < 0)
        return KMS_AEAD_NOT_SIMPLE; /* the general reader's base64 rules word it */
    /* The plaintext lands after the nonce, where sealing again wants it. */
    uint8_t *plain = scratch + raw + GCM_NONCE_BYTES;
    int st = open_sealed(ctx, scratch, (size_t)raw, NULL, 0, plain, s->short_below);
    if (st) {
        size_t why = st == KMS_AEAD_ERR_TOO_SHORT ? KMS_WORD_TOO_SHORT : KMS_WORD_AUTH;
        *o = put_failure(out, *o, w, why, -1, s->body, item);
        return 1;
    }
    size_t plain_len = (size_t)raw - GCM_NONCE_BYTES - GCM_TAG_BYTES, at;
    at = put_word(out, *o, w, KMS_WORD_OK_HEAD);
    if (s->reseal) {
        uint8_t *sealed = plain - GCM_NONCE_BYTES;
        memcpy(sealed, s->nonces + GCM_NONCE_BYTES * i, GCM_NONCE_BYTES);
        s->reseal->ops->encrypt(s->reseal, sealed, NULL, 0, plain, plain, plain_len,
                                plain + plain_len);
        at = put_word(out, at, w, KMS_WORD_PREFIX);
        at += b64_encode(sealed, plain_len + GCM_NONCE_BYTES + GCM_TAG_BYTES, out + at,
                         codec_simd(s->reseal), 0);
    } else {
        at += b64_encode(plain, plain_len, out + at, codec_simd(ctx), 1);
    }
    at = put_word(out, at, w, KMS_WORD_OK_TAIL);
    *o = put_reference(out, at, w, s->body, item);
    return 0;
}

int64_t kms_json_open_batch(const kms_gcm_ctx *const *ctxs, size_t ctx_count,
                            const int32_t *routes, size_t route_count,
                            const kms_gcm_ctx *reseal, size_t short_below,
                            const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                            const uint8_t *body, size_t body_len, size_t max_items,
                            uint8_t *out, size_t out_cap, kms_codec_result *r)
{
    if ((ctx_count && !ctxs) || !routes || (body_len && !body) || (out_cap && !out) || !r)
        return KMS_AEAD_ERR_NULL;
    for (size_t i = 0; i < ctx_count; i++)
        if (!ctxs[i])
            return KMS_AEAD_ERR_NULL;
    struct json_read j;
    int st = read_batch(&j, words, word_ends, word_count, body, body_len, max_items, &out_cap, r);
    if (st)
        return st;
    if (route_count < j.b.count)
        return KMS_AEAD_ERR_BUFFER;
    for (size_t i = 0; i < j.b.count; i++)
        if (routes[i] >= (int64_t)ctx_count ||
            (routes[i] < 0 && (size_t)(-1 - (int64_t)routes[i]) >= j.w.count))
            return KMS_AEAD_ERR_BUFFER;
    codec_init_tables();

    /* Scratch: the decoded body, then (after a nonce's room) its plaintext,
     * sealed again in place with a tag after it. */
    size_t decoded_max = b64_decoded_max(body_len);
    size_t scratch_len = 2 * decoded_max + GCM_NONCE_BYTES + GCM_TAG_BYTES;
    uint8_t *scratch, *nonces;
    if ((st = take_buffers(scratch_len, reseal ? j.b.count : 0, &scratch, &nonces)))
        return st;
    struct opening state = {ctxs, routes, reseal, nonces, short_below, &j.w, body, scratch, 0};
    int64_t result = write_entries(&j.b, open_entry, &state, out, r);
    kms_arena_release(scratch, state.used < scratch_len ? state.used : scratch_len, 1); /* plaintext */
    kms_arena_release(nonces, reseal ? j.b.count * GCM_NONCE_BYTES : 0, 0);
    return result;
}
