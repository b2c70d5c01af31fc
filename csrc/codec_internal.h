/*
 * codec_internal.h: what the codec files share (base64, one item sealed or
 * opened, the word table, versioned texts). Private to csrc/.
 */
#ifndef KMS_CODEC_INTERNAL_H
#define KMS_CODEC_INTERNAL_H

#include "gcm_internal.h"
#include "kms_codecs.h"

/* transit.c: strict padded standard base64 (Go's rules). */
void codec_init_tables(void);
int codec_simd(const kms_gcm_ctx *ctx);
size_t b64_decoded_max(size_t text_len);
int64_t b64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t *bad_at, int simd);
size_t b64_encode(const uint8_t *in, size_t n, uint8_t *out, int simd, int secret);

/* Seal one base64 text to prefix + base64(nonce || ciphertext || tag) at
 * out; scratch holds GCM_NONCE_BYTES + b64_decoded_max(len) +
 * GCM_TAG_BYTES. The bytes written, or a negative status (*bad_at set for
 * KMS_AEAD_ERR_BASE64). */
int64_t seal_text(const kms_gcm_ctx *ctx, const uint8_t *prefix, size_t prefix_len,
                  const uint8_t *nonce, const uint8_t *text, size_t len, uint8_t *scratch,
                  uint8_t *out, size_t *bad_at);

/* Open nonce || ciphertext || tag (raw_len bytes) to plain: KMS_AEAD_OK,
 * KMS_AEAD_ERR_TOO_SHORT under short_below bytes, or KMS_AEAD_ERR_AUTH
 * (under nonce + tag, or a bad tag: plain wiped). */
int open_sealed(const kms_gcm_ctx *ctx, const uint8_t *raw, size_t raw_len, const uint8_t *aad,
                size_t aad_len, uint8_t *plain, size_t short_below);

/* codec_words.c: the word table Python passes (kms_codecs.h). */
struct words {
    const uint8_t *base;
    const uint64_t *ends;
    size_t count;
};

/* 0 when the table is consistent and holds at least KMS_WORD_COUNT words. */
int words_load(struct words *w, const uint8_t *base, const uint64_t *ends, size_t count);
const uint8_t *word(const struct words *w, size_t i, size_t *len);
/* The longest of words first..last - 1 (last past the table: its end). */
size_t words_longest(const struct words *w, size_t first, size_t last);
/* Append word i at out + o; the new end. */
size_t put_word(uint8_t *out, size_t o, const struct words *w, size_t i);

/* The JSON member names of a word table (json_scan.h). */
struct json_names;
void words_json_names(const struct words *w, struct json_names *names);

/* VERSIONED + 1..18 ASCII digits + ":" + body: 0 with the version and the
 * body's offset within s, else -1. */
int split_versioned(const struct words *w, const uint8_t *s, size_t n, int64_t *version,
                    size_t *body_off);

#endif /* KMS_CODEC_INTERNAL_H */
