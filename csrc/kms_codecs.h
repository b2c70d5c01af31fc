/*
 * kms_codecs.h: the wire-format codecs over the AES-GCM engine (base64
 * text to transit text, the transit JSON batches, the bulk msgpack
 * requests). kms_aead.h is the primitive; this is what reads and writes
 * request and response bodies around it.
 *
 * The codecs know formats, never protocols: every protocol string (the
 * "vault:v" prefix, JSON member names, OpenBao's error wording) comes from
 * Python as data, in a word table (KMS_WORD_*), and every output bound is
 * computed here and read by Python (the *_output_max functions, out_max).
 *
 * The part between the "cdef" markers is fed to cffi's cdef() unchanged
 * (csrc/build_ffi.py), after kms_aead.h's.
 */
#ifndef KMS_CODECS_H
#define KMS_CODECS_H

#include "kms_aead.h"

/* cdef-begin */

/* What a reader found in a request, and what a writer wrote: named fields
 * instead of positional slots; each call says which it fills. */
typedef struct kms_codec_result {
    uint64_t items;            /* items in the request */
    int32_t has_version;       /* bulk: key_version was given (not nil) */
    int64_t version;           /* ... and its value */
    int32_t has_partial_code;  /* transit JSON: partial_failure_response_code given */
    int64_t partial_code;      /* ... and its value */
    uint64_t text_off;         /* single JSON body: the payload's place in the body */
    uint64_t text_len;
    uint64_t out_len;          /* bytes written to out */
    uint64_t out_max;          /* bytes out must hold for the call (scans: for the next call) */
} kms_codec_result;

/* A word table: words[word_ends[i - 1] : word_ends[i]] is word i (word 0
 * starts at 0). The protocol's strings, in this order: */
enum {
    KMS_WORD_FIELD = 0,      /* an item's payload member: "plaintext" or "ciphertext" */
    KMS_WORD_VERSIONED = 1,  /* the text before an input's version digits: "vault:v" */
    KMS_WORD_PREFIX = 2,     /* written before each sealed text: "vault:v<N>:" */
    KMS_WORD_OK_HEAD = 3,    /* a passing entry: OK_HEAD, its text, OK_TAIL, */
    KMS_WORD_OK_TAIL = 4,    /*   the reference, END */
    KMS_WORD_FAIL_HEAD = 5,  /* a failed entry: FAIL_HEAD, its error, FAIL_TAIL, */
    KMS_WORD_FAIL_TAIL = 6,  /*   the reference, END */
    KMS_WORD_END = 7,
    KMS_WORD_BAD_BASE64 = 8, /* sealing: the error before the bad byte's offset */
    KMS_WORD_TOO_SHORT = 9,  /* opening: the body decodes to under short_below bytes */
    KMS_WORD_AUTH = 10,      /* opening: the tag does not match (or under nonce + tag) */
    KMS_WORD_BATCH = 11,     /* JSON member names: "batch_input", */
    KMS_WORD_REFERENCE = 12, /*   "reference", */
    KMS_WORD_CODE = 13,      /*   "partial_failure_response_code" */
    KMS_WORD_COUNT = 14      /* words after these: per-item failure texts (routes) */
};

/* An item status: the caller's plan failed the item before the engine saw it. */
enum { KMS_CODEC_PLAN_FAILED = -100 };

/* ---- base64 text <-> transit text (csrc/transit.c) ---------------------- */

/* Transit batches from base64 text: the items' base64 texts back to back in
 * `texts`; item i's result prefix + base64(nonce || ciphertext || tag)
 * lands at out + out_offsets[i] (count + 1 offsets). An item whose text is
 * not strict padded base64 gets KMS_AEAD_ERR_BASE64, bad_at[i] = offset of
 * the first bad character, and an empty slot. Nonces come from getrandom,
 * one call. Returns the number of failed items or a negative status. */
size_t kms_transit_output_max(size_t count, size_t texts_len, size_t prefix_len);
int64_t kms_transit_seal_b64_batch(const kms_gcm_ctx *ctx, size_t count, const uint8_t *prefix,
                                   size_t prefix_len, const uint8_t *texts, size_t texts_len,
                                   const uint64_t *text_lens, uint8_t *out, size_t out_cap,
                                   uint64_t *out_offsets, int32_t *status, uint64_t *bad_at);

/* One text, as one item of the batch call without its tables: the length
 * written, or a negative status (KMS_AEAD_ERR_BASE64: *bad_at). */
int64_t kms_transit_seal_b64_one(const kms_gcm_ctx *ctx, const uint8_t *prefix, size_t prefix_len,
                                 const uint8_t *text, size_t text_len, uint8_t *out, size_t out_cap,
                                 uint64_t *bad_at);

/* One ciphertext body (the base64 after the prefix) opened to the
 * plaintext's base64: its length, or KMS_AEAD_ERR_BASE64, _TOO_SHORT (under
 * nonce + tag), _AUTH (nothing written), or another negative status. */
size_t kms_transit_open_output_max(size_t body_len);
int64_t kms_transit_open_b64_one(const kms_gcm_ctx *ctx, const uint8_t *body, size_t body_len,
                                 const uint8_t *aad, size_t aad_len, uint8_t *out,
                                 size_t out_cap);

/* ---- transit JSON bodies (csrc/transit_json.c, csrc/json_scan.h) --------- */

/* The bound on any JSON batch output below for a body of body_len bytes
 * holding `items` items under these words. */
size_t kms_json_output_max(size_t body_len, size_t items, const uint8_t *words,
                           const uint64_t *word_ends, size_t word_count);

/* Whether a body has the simple batch shape, {"batch_input": [{FIELD:
 * "...", "reference": "..."}, ...]} (json_scan.h), with at most max_items
 * items: KMS_AEAD_OK with r->items and the partial code, or
 * KMS_AEAD_NOT_SIMPLE. versions (NULL, or versions_cap >= items entries):
 * each item's payload must be VERSIONED + digits + ":" + body, and
 * versions[i] receives the digits' value (else KMS_AEAD_NOT_SIMPLE). */
int kms_json_scan_batch(const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                        const uint8_t *body, size_t body_len, size_t max_items,
                        int64_t *versions, size_t versions_cap, kms_codec_result *r);

/* A single body of exactly {FIELD: "..."}: KMS_AEAD_OK with the payload's
 * place (r->text_off, r->text_len; printable ASCII without escapes), or
 * KMS_AEAD_NOT_SIMPLE. */
int kms_json_scan_single(const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                         const uint8_t *body, size_t body_len, kms_codec_result *r);

/* An encrypt batch sealed and answered: the JSON array of its entries
 * (PREFIX + sealed text; or BAD_BASE64 + offset) to out, r->out_len, and
 * the number of failed items returned. KMS_AEAD_NOT_SIMPLE when the body
 * is not the shape, or an item fails base64 where JSON could read it
 * differently (an escape). */
int64_t kms_json_seal_batch(const kms_gcm_ctx *ctx, const uint8_t *words,
                            const uint64_t *word_ends, size_t word_count, const uint8_t *body,
                            size_t body_len, size_t max_items, uint8_t *out, size_t out_cap,
                            kms_codec_result *r);

/* A decrypt (reseal NULL) or rewrap (reseal: the key to seal again under,
 * PREFIX its text) batch of the versioned shape, answered: item i is opened
 * under ctxs[routes[i]] when routes[i] >= 0; when routes[i] < 0 it failed
 * in the plan and its error is word -1 - routes[i]. An opened item's body
 * under short_below bytes fails with TOO_SHORT, a bad tag with AUTH. A body
 * that is not strict base64 gives KMS_AEAD_NOT_SIMPLE (the general path's
 * reader judges it). Returns the number of failed items. */
int64_t kms_json_open_batch(const kms_gcm_ctx *const *ctxs, size_t ctx_count,
                            const int32_t *routes, size_t route_count,
                            const kms_gcm_ctx *reseal, size_t short_below,
                            const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                            const uint8_t *body, size_t body_len, size_t max_items,
                            uint8_t *out, size_t out_cap, kms_codec_result *r);

/* ---- bulk msgpack (csrc/bulk.c, csrc/msgpack_scan.h) -------------------- */

/* The bulk encrypt request {"items": [bin...], "associated_data": ...,
 * "key_version": ...}: scan fills r (items, version, out_max: the sealed
 * output's size); NOT_SIMPLE for another shape. text: the items must
 * instead all be transit strings (str), and with versions (versions_cap >=
 * items) each must be VERSIONED + digits + ":" + body (words as above),
 * versions[i] receiving its version. */
int kms_bulk_scan(const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                  const uint8_t *body, size_t len, size_t max_items, int text, int64_t *versions,
                  size_t versions_cap, kms_codec_result *r);

/* Every item sealed where it lies, each written as a msgpack bin32 of nonce
 * || ciphertext || tag: out is the "ciphertexts" array body (r->out_len).
 * NOT_SIMPLE as for the scan, or for an item out of limits. */
int64_t kms_bulk_seal(const kms_gcm_ctx *ctx, const uint8_t *body, size_t len,
                      size_t max_items, uint8_t *out, size_t out_cap, kms_codec_result *r);

/* Every item opened where it lies, each written as a bin32 of its
 * plaintext or nil (status[i] KMS_AEAD_ERR_TOO_SHORT under short_below
 * bytes, KMS_AEAD_ERR_AUTH; unverified plaintext wiped): out is the
 * "plaintexts" array body. Bin items (text 0) are opened under ctxs[0];
 * transit string items (text 1) under ctxs[routes[i]], and routes[i] < 0
 * marks an item the plan failed (nil, status KMS_CODEC_PLAN_FAILED: the
 * caller words it). Returns the number of failed items. */
size_t kms_bulk_open_output_max(size_t len, size_t items);
int64_t kms_bulk_open(const kms_gcm_ctx *const *ctxs, size_t ctx_count, const int32_t *routes,
                      size_t route_count, int text, size_t short_below,
                      const uint8_t *words, const uint64_t *word_ends, size_t word_count,
                      const uint8_t *body, size_t len, size_t max_items, uint8_t *out,
                      size_t out_cap, int32_t *status, size_t status_cap, kms_codec_result *r);

/* msgpack framing of an engine batch: kms_gcm_seal_batch's inputs (nonces
 * drawn fresh), each output item a bin32 of nonce || ciphertext || tag, so
 * out is the body of a msgpack array of the sealed items. out_len must be
 * kms_bulk_framed_output_max(count, in_total). Items over bin32's 4 GiB
 * give KMS_AEAD_ERR_TOO_LONG. */
size_t kms_bulk_framed_output_max(size_t count, size_t in_total);
int64_t kms_bulk_seal_framed(const kms_gcm_ctx *ctx, size_t count, const uint8_t *aad,
                             size_t aad_total, const uint64_t *aad_lens, const uint8_t *in,
                             size_t in_total, const uint64_t *in_lens, uint8_t *out,
                             size_t out_len, uint64_t *out_offsets, int32_t *status);

/* cdef-end */

#endif /* KMS_CODECS_H */
