/*
 * codec_words.c: the protocol's strings as the codecs receive them (a word
 * table, kms_codecs.h), and the versioned texts they name.
 */
#include <string.h>

#include "codec_internal.h"
#include "json_scan.h"

int words_load(struct words *w, const uint8_t *base, const uint64_t *ends, size_t count)
{
    if (!ends || count < KMS_WORD_COUNT)
        return -1;
    uint64_t last = 0;
    for (size_t i = 0; i < count; i++) {
        if (ends[i] < last)
            return -1;
        last = ends[i];
    }
    if (last && !base)
        return -1;
    w->base = base;
    w->ends = ends;
    w->count = count;
    return 0;
}

const uint8_t *word(const struct words *w, size_t i, size_t *len)
{
    uint64_t start = i ? w->ends[i - 1] : 0;
    *len = (size_t)(w->ends[i] - start);
    return w->base + start;
}

size_t words_longest(const struct words *w, size_t first, size_t last)
{
    size_t longest = 0, n;
    for (size_t i = first; i < last && i < w->count; i++)
        if (word(w, i, &n), n > longest)
            longest = n;
    return longest;
}

size_t put_word(uint8_t *out, size_t o, const struct words *w, size_t i)
{
    size_t n;
    const uint8_t *p = word(w, i, &n);
    if (n)
        memcpy(out + o, p, n);
    return o + n;
}

int split_versioned(const struct words *w, const uint8_t *s, size_t n, int64_t *version,
                    size_t *body_off)
{
    size_t plen;
    const uint8_t *prefix = word(w, KMS_WORD_VERSIONED, &plen);
    if (n < plen || memcmp(s, prefix, plen) != 0)
        return -1;
    size_t i = plen;
    int64_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - plen < 18)
        v = v * 10 + (s[i++] - '0');
    if (i == plen || i >= n || s[i] != ':')
        return -1; /* no digits, too many, or no separator: the full reader says which */
    *version = v;
    *body_off = i + 1;
    return 0;
}

static void name_of(const struct words *w, size_t i, struct json_name *name)
{
    name->text = word(w, i, &name->len);
}

void words_json_names(const struct words *w, struct json_names *names)
{
    name_of(w, KMS_WORD_FIELD, &names->field);
    name_of(w, KMS_WORD_BATCH, &names->batch);
    name_of(w, KMS_WORD_REFERENCE, &names->reference);
    name_of(w, KMS_WORD_CODE, &names->code);
}
