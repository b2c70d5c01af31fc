/*
 * transit.c: batch sealing straight from base64 text to transit ciphertext
 * strings, so a JSON batch of many items costs one crossing into C and no
 * per-item base64 work in Python.
 *
 * Input: the items' base64 texts back to back (standard alphabet, padded,
 * strictly checked). Output: for item i, "vault:v<N>:" + base64(nonce ||
 * ciphertext || tag) at out + out_offsets[i]. An item whose text is not
 * valid base64 gets KMS_AEAD_ERR_BASE64 and bad_at[i] = the offset of the
 * first offending character within its text; its output slot stays empty.
 */
#include <stdio.h>
#include <string.h>

#include "gcm_internal.h"

static const uint8_t ALPHABET[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', 0xFF for anything else. */
static uint8_t DECODE[256];
static volatile int decode_ready;

static void init_decode(void)
{
    if (decode_ready)
        return;
    memset(DECODE, 0xFF, sizeof DECODE);
    for (int i = 0; i < 64; i++)
        DECODE[ALPHABET[i]] = (uint8_t)i;
    DECODE['='] = 64;
    decode_ready = 1; /* racing initialisers write the same table */
}

static size_t b64_decoded_max(size_t text_len) { return text_len / 4 * 3; }


/* Strict standard base64 with padding. Returns the decoded length, or -1
 * with *bad_at set to the first invalid position. */
static int64_t b64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t *bad_at)
{
    if (n % 4) {
        *bad_at = n - n % 4; /* the incomplete final quantum */
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint8_t a = DECODE[in[i]], b = DECODE[in[i + 1]], c = DECODE[in[i + 2]],
                d = DECODE[in[i + 3]];
        int last = i + 4 == n;
        if (a > 63) { *bad_at = i; return -1; }
        if (b > 63) { *bad_at = i + 1; return -1; }
        /* Leftover bits in the final quantum are ignored, as Go's standard
         * decoder (OpenBao) and Python's validating decoder both do. */
        if (c == 64 && last && d == 64) { /* xx== */
            out[o++] = (uint8_t)(a << 2 | b >> 4);
            break;
        }
        if (c > 63) { *bad_at = i + 2; return -1; }
        if (d == 64 && last) { /* xxx= */
            out[o++] = (uint8_t)(a << 2 | b >> 4);
            out[o++] = (uint8_t)(b << 4 | c >> 2);
            break;
        }
        if (d > 63) { *bad_at = i + 3; return -1; }
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        out[o++] = (uint8_t)(b << 4 | c >> 2);
        out[o++] = (uint8_t)(c << 6 | d);
    }
    return (int64_t)o;
}

static size_t b64_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = ALPHABET[v >> 18];
        out[o++] = ALPHABET[(v >> 12) & 63];
        out[o++] = ALPHABET[(v >> 6) & 63];
        out[o++] = ALPHABET[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = ALPHABET[v >> 18];
        out[o++] = ALPHABET[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = ALPHABET[v >> 18];
        out[o++] = ALPHABET[(v >> 12) & 63];
        out[o++] = ALPHABET[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

size_t kms_transit_output_max(size_t count, size_t texts_len)
{
    /* per item: prefix (at most 19 bytes for a 32-bit version) and the
     * base64 of 28 extra bytes (+ rounding); the texts decode to at most
     * 3/4 of their length, which encodes back to at most the same length. */
    return texts_len + count * (19 + 40 + 4);
}

int64_t kms_transit_seal_b64_batch(const kms_gcm_ctx *ctx, size_t count, uint32_t version,
                                   const uint8_t *texts, size_t texts_len,
                                   const uint64_t *text_lens, uint8_t *out, size_t out_cap,
                                   uint64_t *out_offsets, int32_t *status, uint64_t *bad_at)
{
    if (!ctx || (count && (!text_lens || !out_offsets || !status || !bad_at)) ||
        (texts_len && !texts) || (out_cap && !out))
        return KMS_AEAD_ERR_NULL;
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (text_lens[i] > UINT64_MAX - total)
            return KMS_AEAD_ERR_BUFFER;
        total += text_lens[i];
    }
    if (total != texts_len || out_cap < kms_transit_output_max(count, texts_len))
        return KMS_AEAD_ERR_BUFFER;
    init_decode();

    char prefix[24];
    int prefix_len = snprintf(prefix, sizeof prefix, "vault:v%u:", (unsigned)version);
    /* One scratch buffer for nonce || plaintext -> ciphertext || tag. */
    size_t longest = 0;
    for (size_t i = 0; i < count; i++)
        if (text_lens[i] > longest)
            longest = text_lens[i];
    size_t scratch_len = GCM_NONCE_BYTES + b64_decoded_max(longest) + GCM_TAG_BYTES;
    uint8_t *scratch = kms_arena_new(scratch_len ? scratch_len : 1);
    uint8_t *nonces = kms_arena_new(count * GCM_NONCE_BYTES ? count * GCM_NONCE_BYTES : 1);
    if (!scratch || !nonces) {
        kms_arena_release(scratch, 0, 0);
        kms_arena_release(nonces, 0, 0);
        return KMS_AEAD_ERR_NOMEM;
    }
    int st = kms_fill_random(nonces, count * GCM_NONCE_BYTES);
    if (st) {
        kms_arena_release(scratch, 0, 0);
        kms_arena_release(nonces, 0, 0);
        return st;
    }

    int64_t failed = 0;
    uint64_t in_off = 0, o = 0;
    for (size_t i = 0; i < count; i++) {
        out_offsets[i] = o;
        size_t where = 0;
        uint8_t *nonce = scratch, *body = scratch + GCM_NONCE_BYTES;
        int64_t plain = b64_decode(texts + in_off, text_lens[i], body, &where);
        in_off += text_lens[i];
        if (plain < 0) {
            status[i] = KMS_AEAD_ERR_BASE64;
            bad_at[i] = where;
            failed++;
            continue;
        }
        if ((uint64_t)plain > kms_aead_max_plaintext_bytes()) {
            status[i] = KMS_AEAD_ERR_TOO_LONG;
            failed++;
            continue;
        }
        memcpy(nonce, nonces + GCM_NONCE_BYTES * i, GCM_NONCE_BYTES);
        ctx->ops->encrypt(ctx, nonce, NULL, 0, body, body, (size_t)plain, body + plain);
        memcpy(out + o, prefix, (size_t)prefix_len);
        o += (uint64_t)prefix_len;
        o += b64_encode(scratch, GCM_NONCE_BYTES + (size_t)plain + GCM_TAG_BYTES, out + o);
        status[i] = KMS_AEAD_OK;
        bad_at[i] = 0;
    }
    out_offsets[count] = o;
    kms_arena_release(scratch, scratch_len, 1); /* held plaintext */
    kms_arena_release(nonces, count * GCM_NONCE_BYTES, 0);
    return failed;
}
