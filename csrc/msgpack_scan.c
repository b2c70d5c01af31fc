/*
 * msgpack_scan.c: the bulk encrypt request's framing (see msgpack_scan.h),
 * read without copying: every length is checked against what is left of
 * the body before it is used.
 */
#include <string.h>

#include "msgpack_scan.h"

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* A header with a big-endian length of n bytes after the type byte. */
static int read_len(const uint8_t *b, size_t len, size_t *pos, int n, uint64_t *out)
{
    if (len - *pos < (size_t)n + 1)
        return -1;
    *out = be(b + *pos + 1, n);
    *pos += (size_t)n + 1;
    return 0;
}

int bulk_read_bin(const uint8_t *b, size_t len, size_t *pos, size_t *off, size_t *n)
{
    if (*pos >= len)
        return -1;
    uint64_t size;
    int width = b[*pos] == 0xc4 ? 1 : b[*pos] == 0xc5 ? 2 : b[*pos] == 0xc6 ? 4 : 0;
    if (!width || read_len(b, len, pos, width, &size) || size > len - *pos)
        return -1;
    *off = *pos;
    *n = (size_t)size;
    *pos += (size_t)size;
    return 0;
}

static int read_str(const uint8_t *b, size_t len, size_t *pos, size_t *off, size_t *n)
{
    if (*pos >= len)
        return -1;
    uint8_t t = b[*pos];
    uint64_t size;
    if ((t & 0xe0) == 0xa0) {
        size = t & 0x1f;
        *pos += 1;
    } else {
        int width = t == 0xd9 ? 1 : t == 0xda ? 2 : t == 0xdb ? 4 : 0;
        if (!width || read_len(b, len, pos, width, &size))
            return -1;
    }
    if (size > len - *pos)
        return -1;
    *off = *pos;
    *n = (size_t)size;
    *pos += (size_t)size;
    return 0;
}

static int read_container(const uint8_t *b, size_t len, size_t *pos, uint8_t fix_base,
                          uint8_t fix_mask, uint8_t t16, uint64_t *count)
{
    if (*pos >= len)
        return -1;
    uint8_t t = b[*pos];
    if ((t & (uint8_t)~fix_mask) == fix_base) {
        *count = t & fix_mask;
        *pos += 1;
        return 0;
    }
    if (t == t16)
        return read_len(b, len, pos, 2, count);
    if (t == t16 + 1)
        return read_len(b, len, pos, 4, count);
    return -1;
}

static int read_array(const uint8_t *b, size_t len, size_t *pos, uint64_t *count)
{
    return read_container(b, len, pos, 0x90, 0x0f, 0xdc, count);
}

/* Any msgpack integer that fits in int64. */
static int read_int(const uint8_t *b, size_t len, size_t *pos, int64_t *value)
{
    if (*pos >= len)
        return -1;
    uint8_t t = b[*pos];
    uint64_t raw;
    if (t <= 0x7f || t >= 0xe0) {
        *value = (int8_t)t;
        *pos += 1;
        return 0;
    }
    int width = (t >= 0xcc && t <= 0xcf) ? 1 << (t - 0xcc) : (t >= 0xd0 && t <= 0xd3) ? 1 << (t - 0xd0) : 0;
    if (!width || read_len(b, len, pos, width, &raw))
        return -1;
    if (t >= 0xd0) { /* signed: sign-extend from the width read */
        int shift = 64 - 8 * width;
        *value = shift ? (int64_t)(raw << shift) >> shift : (int64_t)raw;
    } else {
        if (raw > INT64_MAX)
            return -1;
        *value = (int64_t)raw;
    }
    return 0;
}

static int is_key(const uint8_t *b, size_t off, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(b + off, name, n) == 0;
}

static int read_entry(const uint8_t *b, size_t len, size_t *pos, int text, size_t *off, size_t *n)
{
    return text ? read_str(b, len, pos, off, n) : bulk_read_bin(b, len, pos, off, n);
}

/* An array of bin (or, text, str) entries: its count, the first entry's
 * place, and the lengths added up. */
static int read_bins(const uint8_t *b, size_t len, size_t *pos, size_t max, int text,
                     size_t *count, size_t *first, uint64_t *total)
{
    uint64_t n;
    if (read_array(b, len, pos, &n) || n > max)
        return -1;
    *first = *pos;
    *total = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t off, size;
        if (read_entry(b, len, pos, text, &off, &size))
            return -1;
        *total += size;
    }
    *count = (size_t)n;
    return 0;
}

int bulk_request_scan(struct bulk_request *r, const uint8_t *body, size_t len, size_t max_items,
                      int text_items)
{
    memset(r, 0, sizeof *r);
    r->text_items = text_items;
    r->body = body;
    r->len = len;
    size_t pos = 0;
    uint64_t members;
    if (read_container(body, len, &pos, 0x80, 0x0f, 0xde, &members) || members > 3)
        return -1;
    int seen_items = 0, seen_aad = 0;
    size_t aad_count = 0;
    for (uint64_t m = 0; m < members; m++) {
        size_t off, n;
        if (read_str(body, len, &pos, &off, &n))
            return -1;
        if (is_key(body, off, n, "items") && !seen_items) {
            seen_items = 1;
            if (read_bins(body, len, &pos, max_items, text_items, &r->count, &r->items_at,
                          &r->payload))
                return -1;
        } else if (is_key(body, off, n, "associated_data") && !seen_aad) {
            seen_aad = 1;
            if (pos < len && body[pos] == 0xc0) { /* nil */
                pos++;
            } else if (pos < len && body[pos] >= 0xc4 && body[pos] <= 0xc6) {
                size_t data_off, data_len;
                r->aad_kind = 1;
                r->aad_at = pos;
                if (bulk_read_bin(body, len, &pos, &data_off, &data_len))
                    return -1;
            } else {
                uint64_t ignored;
                r->aad_kind = 2;
                if (read_bins(body, len, &pos, max_items, 0, &aad_count, &r->aad_at, &ignored))
                    return -1;
            }
        } else if (is_key(body, off, n, "key_version") && !r->has_version) {
            if (pos < len && body[pos] == 0xc0) {
                pos++;
            } else {
                r->has_version = 1;
                if (read_int(body, len, &pos, &r->version))
                    return -1;
            }
        } else {
            return -1;
        }
    }
    if (!seen_items || pos != len || (r->aad_kind == 2 && aad_count != r->count))
        return -1;
    return 0;
}

void bulk_cursor_start(struct bulk_cursor *c, const struct bulk_request *r)
{
    c->item_pos = r->items_at;
    c->aad_pos = r->aad_at;
    c->aad = NULL;
    c->aad_len = 0;
    if (r->aad_kind == 1) { /* one for all items */
        size_t off;
        bulk_read_bin(r->body, r->len, &c->aad_pos, &off, &c->aad_len);
        c->aad = r->body + off;
    }
}

void bulk_cursor_next(struct bulk_cursor *c, const struct bulk_request *r, size_t *off, size_t *n)
{
    /* The scan checked every entry these read. */
    read_entry(r->body, r->len, &c->item_pos, r->text_items, off, n);
    if (r->aad_kind == 2) {
        size_t aad_off;
        bulk_read_bin(r->body, r->len, &c->aad_pos, &aad_off, &c->aad_len);
        c->aad = r->body + aad_off;
    }
}
