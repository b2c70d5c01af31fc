/*
 * json_scan.c: the simple transit batch shape (see json_scan.h). A failure
 * anywhere just means "parse it in full", so every rule here errs on the
 * side of refusing: escapes, non-ASCII, duplicate or unknown members,
 * numbers with fractions, an empty batch.
 */
#include <string.h>

#include "json_scan.h"

#define FAIL ((size_t)-1)

static size_t skip_ws(const uint8_t *p, size_t pos, size_t len)
{
    while (pos < len && (p[pos] == ' ' || p[pos] == '\n' || p[pos] == '\r' || p[pos] == '\t'))
        pos++;
    return pos;
}

/* The string at pos: its content's offset and length, and the position
 * after its closing quote (the first '"' after the opening one). strict:
 * the content must be printable ASCII without escapes. Not strict (item
 * plaintexts, megabytes of them): anything; the base64 decoder refuses
 * every character that is not of its alphabet, and the caller sends a batch
 * whose refused character could be JSON's business (an escape, a control
 * character, non-ASCII) to the full parser. That covers a backslash before
 * a quote too: an escaped quote read as this string's end leaves the rest
 * of that string to be read as structure, which fails at the first key. */
static size_t scan_string(const uint8_t *p, size_t pos, size_t len, int strict, size_t *off,
                          size_t *slen)
{
    if (pos >= len || p[pos] != '"')
        return FAIL;
    size_t start = pos + 1;
    const uint8_t *close = memchr(p + start, '"', len - start);
    if (!close)
        return FAIL;
    size_t end = (size_t)(close - p);
    if (strict && !json_plain(p + start, end - start))
        return FAIL;
    *off = start;
    *slen = end - start;
    return end + 1;
}

int json_plain(const uint8_t *s, size_t n)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= (unsigned)((uint8_t)(s[i] - 0x20) > 0x5E) | (unsigned)(s[i] == '\\');
    return !bad;
}

static int is_name(const uint8_t *p, size_t off, size_t n, const struct json_name *name)
{
    return n == name->len && memcmp(p + off, name->text, n) == 0;
}

/* `"key" :` at pos: the key's place, and the position of its value. */
static size_t scan_key(const uint8_t *p, size_t pos, size_t len, size_t *off, size_t *klen)
{
    pos = scan_string(p, pos, len, 1, off, klen);
    if (pos == FAIL)
        return FAIL;
    pos = skip_ws(p, pos, len);
    if (pos >= len || p[pos] != ':')
        return FAIL;
    return skip_ws(p, pos + 1, len);
}

/* A JSON integer of at most 18 digits (no fraction or exponent). */
static size_t scan_int(const uint8_t *p, size_t pos, size_t len, int64_t *value)
{
    int negative = pos < len && p[pos] == '-';
    pos += (size_t)negative;
    size_t start = pos;
    int64_t v = 0;
    while (pos < len && p[pos] >= '0' && p[pos] <= '9' && pos - start < 18)
        v = v * 10 + (p[pos++] - '0');
    if (pos == start || (p[start] == '0' && pos - start > 1))
        return FAIL;
    if (pos < len && ((p[pos] >= '0' && p[pos] <= '9') || p[pos] == '.' || p[pos] == 'e' ||
                      p[pos] == 'E'))
        return FAIL;
    *value = negative ? -v : v;
    return pos;
}

/* One item object at pos: {FIELD: ..., "reference": ...}. */
static size_t scan_item(const struct json_batch *b, size_t pos, struct json_item *item)
{
    const uint8_t *p = b->body;
    size_t len = b->len;
    if (pos >= len || p[pos] != '{')
        return FAIL;
    int seen_text = 0, seen_ref = 0;
    item->ref_off = item->ref_len = 0;
    pos = skip_ws(p, pos + 1, len);
    for (;;) {
        size_t off, n;
        pos = scan_key(p, pos, len, &off, &n);
        if (pos == FAIL)
            return FAIL;
        if (is_name(p, off, n, &b->names->field) && !seen_text) {
            seen_text = 1;
            pos = scan_string(p, pos, len, 0, &item->text_off, &item->text_len);
        } else if (is_name(p, off, n, &b->names->reference) && !seen_ref) {
            seen_ref = 1;
            pos = scan_string(p, pos, len, 1, &item->ref_off, &item->ref_len);
        } else {
            return FAIL;
        }
        if (pos == FAIL)
            return FAIL;
        pos = skip_ws(p, pos, len);
        if (pos < len && p[pos] == ',') {
            pos = skip_ws(p, pos + 1, len);
            continue;
        }
        if (pos < len && p[pos] == '}' && seen_text)
            return pos + 1;
        return FAIL;
    }
}

/* The batch_input array at pos; counts its items. */
static size_t scan_items(struct json_batch *b, size_t pos, size_t max_items)
{
    const uint8_t *p = b->body;
    size_t len = b->len;
    if (pos >= len || p[pos] != '[')
        return FAIL;
    pos = skip_ws(p, pos + 1, len);
    b->items_at = pos;
    size_t count = 0;
    for (;;) {
        struct json_item item;
        pos = scan_item(b, pos, &item);
        if (pos == FAIL || ++count > max_items)
            return FAIL;
        pos = skip_ws(p, pos, len);
        if (pos < len && p[pos] == ',') {
            pos = skip_ws(p, pos + 1, len);
            continue;
        }
        if (pos < len && p[pos] == ']') {
            b->count = count;
            return pos + 1;
        }
        return FAIL;
    }
}

int json_batch_scan(struct json_batch *b, const uint8_t *body, size_t len,
                    const struct json_names *names, size_t max_items)
{
    memset(b, 0, sizeof *b);
    b->body = body;
    b->len = len;
    b->names = names;
    const uint8_t *p = body;
    size_t pos = skip_ws(p, 0, len);
    if (pos >= len || p[pos] != '{')
        return -1;
    pos = skip_ws(p, pos + 1, len);
    int seen_items = 0, seen_text = 0;
    for (;;) {
        size_t off, n;
        pos = scan_key(p, pos, len, &off, &n);
        if (pos == FAIL)
            return -1;
        if (is_name(p, off, n, &names->batch) && !seen_items) {
            seen_items = 1;
            pos = scan_items(b, pos, max_items);
        } else if (is_name(p, off, n, &names->field) && !seen_text) {
            seen_text = 1; /* hvac sends "plaintext": "" beside a batch */
            size_t ignored_off, ignored_len;
            pos = scan_string(p, pos, len, 1, &ignored_off, &ignored_len);
        } else if (is_name(p, off, n, &names->code) && !b->has_code) {
            b->has_code = 1;
            pos = scan_int(p, pos, len, &b->code);
        } else {
            return -1;
        }
        if (pos == FAIL)
            return -1;
        pos = skip_ws(p, pos, len);
        if (pos < len && p[pos] == ',') {
            pos = skip_ws(p, pos + 1, len);
            continue;
        }
        if (pos < len && p[pos] == '}')
            break;
        return -1;
    }
    if (!seen_items || skip_ws(p, pos + 1, len) != len)
        return -1;
    return 0;
}

int json_batch_next(const struct json_batch *b, size_t *pos, struct json_item *item)
{
    size_t at = skip_ws(b->body, *pos, b->len);
    if (at < b->len && b->body[at] == ',')
        at = skip_ws(b->body, at + 1, b->len);
    if (at >= b->len || b->body[at] != '{')
        return -1;
    at = scan_item(b, at, item);
    if (at == FAIL)
        return -1;
    *pos = at;
    return 0;
}

int json_single_scan(const uint8_t *body, size_t len, const struct json_name *field, size_t *off,
                     size_t *n)
{
    size_t pos = skip_ws(body, 0, len), key_off, key_len;
    if (pos >= len || body[pos] != '{')
        return -1;
    pos = scan_key(body, skip_ws(body, pos + 1, len), len, &key_off, &key_len);
    if (pos == FAIL || !is_name(body, key_off, key_len, field))
        return -1;
    pos = scan_string(body, pos, len, 1, off, n);
    if (pos == FAIL)
        return -1;
    pos = skip_ws(body, pos, len);
    if (pos >= len || body[pos] != '}' || skip_ws(body, pos + 1, len) != len)
        return -1;
    return 0;
}
