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
 * The prefix is the caller's (kms.codecs.transit_text): this file knows
 * base64 and the layout nonce || ciphertext || tag, not the protocol.
 */
#include <pthread.h>
#include <string.h>

#include "codec_internal.h"

/* Plaintext passes through base64 both ways (decoded on encrypt, encoded
 * on decrypt), so the tables its bytes index are kept small: DECODE spans
 * four cache lines and ALPHABET's 64 characters one (aligned), as another
 * tenant watching the cache sees only which lines are touched. The two-characters-per-load
 * ENCODE_PAIR (8 KiB) serves only ciphertext, which is public. On CPUs
 * with AVX2 whole 32-character blocks go through b64_avx2.c, which looks
 * nothing up in memory; these tables then see only each text's tail. */
static _Alignas(64) const uint8_t ALPHABET[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/* 0..63 for alphabet characters, 64 for '=', 0xFF for anything else. */
static _Alignas(64) uint8_t DECODE[256];
static uint8_t ENCODE_PAIR[4096][2];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    memset(DECODE, 0xFF, sizeof DECODE);
    for (int i = 0; i < 64; i++)
        DECODE[ALPHABET[i]] = (uint8_t)i;
    DECODE['='] = 64;
    for (int x = 0; x < 4096; x++) {
        ENCODE_PAIR[x][0] = ALPHABET[x >> 6];
        ENCODE_PAIR[x][1] = ALPHABET[x & 63];
    }
}

void codec_init_tables(void) { pthread_once(&tables_once, build_tables); }

/* The AVX2 base64 of b64_avx2.c serves every tier on a CPU with AVX2 and
 * YMM state saved by the OS, whatever the key's GCM tier; the scalar code
 * is tested with KMS_AEAD_CPU_HIDE=avx2 (cpu_features.c). */
static int uses_simd(const kms_gcm_ctx *ctx)
{
    (void)ctx;
    return kms_cpu_has_avx2();
}

int codec_simd(const kms_gcm_ctx *ctx) { return uses_simd(ctx); }

size_t b64_decoded_max(size_t text_len) { return text_len / 4 * 3; }

/* Strict standard base64 with padding. Returns the decoded length, or -1
 * with *bad_at set to the first invalid position. */
int64_t b64_decode(const uint8_t *in, size_t n, uint8_t *out, size_t *bad_at, int simd)
{
    if (n % 4) {
        *bad_at = n - n % 4; /* the incomplete final quantum */
        return -1;
    }
    /* Whole 32-character blocks in registers, short of the last quantum
     * (which may hold padding). */
    size_t i = simd && n > 4 ? kms_b64_decode_avx2(in, n - 4, out) : 0, o = i / 4 * 3;
    /* Every quantum but the last holds four alphabet characters; the first
     * one that does not, and the last, take the careful loop below. */
    for (; i + 4 < n; i += 4) {
        uint32_t a = DECODE[in[i]], b = DECODE[in[i + 1]], c = DECODE[in[i + 2]],
                 d = DECODE[in[i + 3]];
        if ((a | b | c | d) & 0xC0)
            break;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        out[o] = (uint8_t)(v >> 16);
        out[o + 1] = (uint8_t)(v >> 8);
        out[o + 2] = (uint8_t)v;
        o += 3;
    }
    for (; i < n; i += 4) {
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

/* Base64 of bytes: two characters per table load for public ones
 * (ciphertext), one per character from the small alphabet for secret ones
 * (plaintext). */
size_t b64_encode(const uint8_t *in, size_t n, uint8_t *out, int simd, int secret)
{
    size_t i = simd ? kms_b64_encode_avx2(in, n, out) : 0, o = i / 3 * 4;
    for (; i + 3 <= n; i += 3, o += 4) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        if (secret) { /* one load per character, all from ALPHABET's one line */
            out[o] = ALPHABET[v >> 18];
            out[o + 1] = ALPHABET[(v >> 12) & 63];
            out[o + 2] = ALPHABET[(v >> 6) & 63];
            out[o + 3] = ALPHABET[v & 63];
        } else {
            memcpy(out + o, ENCODE_PAIR[v >> 12], 2);
            memcpy(out + o + 2, ENCODE_PAIR[v & 0xFFF], 2);
        }
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

/* Seal one base64 text (codec_internal.h): decode it into scratch after
 * the nonce, encrypt in place, and write prefix + base64 to out. */
int64_t seal_text(const kms_gcm_ctx *ctx, const uint8_t *prefix, size_t prefix_len,
                  const uint8_t *nonce, const uint8_t *text, size_t len, uint8_t *scratch,
                  uint8_t *out, size_t *bad_at)
{
    uint8_t *body = scratch + GCM_NONCE_BYTES;
    int simd = uses_simd(ctx);
    int64_t plain = b64_decode(text, len, body, bad_at, simd);
    if (plain < 0)
        return KMS_AEAD_ERR_BASE64;
    if ((uint64_t)plain > kms_aead_max_plaintext_bytes())
        return KMS_AEAD_ERR_TOO_LONG;
    memcpy(scratch, nonce, GCM_NONCE_BYTES);
    ctx->ops->encrypt(ctx, scratch, NULL, 0, body, body, (size_t)plain, body + plain);
    if (prefix_len)
        memcpy(out, prefix, prefix_len);
    return (int64_t)(prefix_len +
                     b64_encode(scratch, GCM_NONCE_BYTES + (size_t)plain + GCM_TAG_BYTES,
                                out + prefix_len, simd, 0));
}

/* Items up to this size use a stack scratch buffer instead of an arena. */
#define STACK_SCRATCH 4096

size_t kms_transit_output_max(size_t count, size_t texts_len, size_t prefix_len)
{
    /* per item: the prefix and the base64 of 28 extra bytes (+ rounding);
     * the texts decode to at most 3/4 of their length, which encodes back
     * to at most the same length. */
    return texts_len + count * (prefix_len + 40 + 4);
}

int64_t kms_transit_seal_b64_batch(const kms_gcm_ctx *ctx, size_t count, const uint8_t *prefix,
                                   size_t prefix_len, const uint8_t *texts, size_t texts_len,
                                   const uint64_t *text_lens, uint8_t *out, size_t out_cap,
                                   uint64_t *out_offsets, int32_t *status, uint64_t *bad_at)
{
    if (!ctx || (count && (!text_lens || !out_offsets || !status || !bad_at)) ||
        (texts_len && !texts) || (out_cap && !out) || (prefix_len && !prefix))
        return KMS_AEAD_ERR_NULL;
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (text_lens[i] > UINT64_MAX - total)
            return KMS_AEAD_ERR_BUFFER;
        total += text_lens[i];
    }
    if (total != texts_len || out_cap < kms_transit_output_max(count, texts_len, prefix_len))
        return KMS_AEAD_ERR_BUFFER;
    codec_init_tables();

    /* One scratch buffer for nonce || plaintext -> ciphertext || tag. */
    size_t longest = 0;
    for (size_t i = 0; i < count; i++)
        if (text_lens[i] > longest)
            longest = text_lens[i];
    size_t scratch_len = GCM_NONCE_BYTES + b64_decoded_max(longest) + GCM_TAG_BYTES;
    uint8_t *scratch = kms_arena_new(scratch_len ? scratch_len : 1);
    uint8_t *nonces = kms_arena_new(count ? count * GCM_NONCE_BYTES : 1);
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
        int64_t wrote = seal_text(ctx, prefix, prefix_len, nonces + GCM_NONCE_BYTES * i,
                                  texts + in_off, text_lens[i], scratch, out + o, &where);
        in_off += text_lens[i];
        bad_at[i] = wrote == KMS_AEAD_ERR_BASE64 ? where : 0;
        if (wrote < 0) {
            status[i] = (int32_t)wrote;
            failed++;
            continue;
        }
        o += (uint64_t)wrote;
        status[i] = KMS_AEAD_OK;
    }
    out_offsets[count] = o;
    kms_arena_release(scratch, scratch_len, 1); /* held plaintext */
    kms_arena_release(nonces, count * GCM_NONCE_BYTES, 0);
    return failed;
}

int64_t kms_transit_seal_b64_one(const kms_gcm_ctx *ctx, const uint8_t *prefix, size_t prefix_len,
                                 const uint8_t *text, size_t text_len, uint8_t *out, size_t out_cap,
                                 uint64_t *bad_at)
{
    if (!ctx || !bad_at || (text_len && !text) || !out || (prefix_len && !prefix))
        return KMS_AEAD_ERR_NULL;
    if (out_cap < kms_transit_output_max(1, text_len, prefix_len))
        return KMS_AEAD_ERR_BUFFER;
    codec_init_tables();
    uint8_t nonce[GCM_NONCE_BYTES];
    int st = kms_fill_random(nonce, sizeof nonce);
    if (st)
        return st;
    uint8_t stack[GCM_NONCE_BYTES + STACK_SCRATCH + GCM_TAG_BYTES];
    size_t scratch_len = GCM_NONCE_BYTES + b64_decoded_max(text_len) + GCM_TAG_BYTES;
    uint8_t *scratch = scratch_len <= sizeof stack ? stack : kms_arena_new(scratch_len);
    if (!scratch)
        return KMS_AEAD_ERR_NOMEM;
    size_t where = 0;
    int64_t wrote = seal_text(ctx, prefix, prefix_len, nonce, text, text_len, scratch, out,
                              &where);
    *bad_at = wrote == KMS_AEAD_ERR_BASE64 ? where : 0;
    if (scratch == stack) /* it held the plaintext */
        kms_wipe(stack, scratch_len);
    else
        kms_arena_release(scratch, scratch_len, 1);
    return wrote;
}

size_t kms_transit_open_output_max(size_t body_len)
{
    return (body_len / 4 * 3 + 2) / 3 * 4 + 4;
}

int64_t kms_transit_open_b64_one(const kms_gcm_ctx *ctx, const uint8_t *body, size_t body_len,
                                 const uint8_t *aad, size_t aad_len, uint8_t *out,
                                 size_t out_cap)
{
    if (!ctx || (body_len && !body) || (aad_len && !aad) || !out)
        return KMS_AEAD_ERR_NULL;
    if (out_cap < kms_transit_open_output_max(body_len))
        return KMS_AEAD_ERR_BUFFER;
    int st = kms_gcm_check_params(GCM_NONCE_BYTES, GCM_TAG_BYTES, aad_len, 0);
    if (st)
        return st;
    codec_init_tables();
    uint8_t stack[STACK_SCRATCH];
    /* The decoded body, then the plaintext after it. */
    size_t decoded_max = b64_decoded_max(body_len);
    size_t scratch_len = decoded_max * 2 + 1;
    uint8_t *scratch = scratch_len <= sizeof stack ? stack : kms_arena_new(scratch_len);
    if (!scratch)
        return KMS_AEAD_ERR_NOMEM;
    size_t where = 0;
    uint8_t *plain = scratch + decoded_max;
    int64_t raw = b64_decode(body, body_len, scratch, &where, uses_simd(ctx));
    int64_t result = raw < 0 ? KMS_AEAD_ERR_BASE64
                             : open_sealed(ctx, scratch, (size_t)raw, aad, aad_len, plain,
                                           GCM_NONCE_BYTES + GCM_TAG_BYTES);
    if (result == KMS_AEAD_OK)
        result = (int64_t)b64_encode(plain, (size_t)raw - GCM_NONCE_BYTES - GCM_TAG_BYTES, out,
                                     uses_simd(ctx), 1);
    if (scratch == stack)
        kms_wipe(stack, scratch_len);
    else
        kms_arena_release(scratch, scratch_len, 1);
    return result;
}

int open_sealed(const kms_gcm_ctx *ctx, const uint8_t *raw, size_t raw_len, const uint8_t *aad,
                size_t aad_len, uint8_t *plain, size_t short_below)
{
    if (raw_len < short_below)
        return KMS_AEAD_ERR_TOO_SHORT;
    if (raw_len < GCM_NONCE_BYTES + GCM_TAG_BYTES)
        return KMS_AEAD_ERR_AUTH;
    size_t ct_len = raw_len - GCM_NONCE_BYTES - GCM_TAG_BYTES;
    uint8_t computed[GCM_TAG_BYTES];
    ctx->ops->decrypt(ctx, raw, aad, aad_len, raw + GCM_NONCE_BYTES, plain, ct_len, computed);
    int ok = kms_aead_ct_equal(raw + GCM_NONCE_BYTES + ct_len, computed, GCM_TAG_BYTES);
    kms_wipe(computed, sizeof computed);
    if (ok)
        return KMS_AEAD_OK;
    kms_wipe(plain, ct_len); /* unverified plaintext never stays */
    return KMS_AEAD_ERR_AUTH;
}
