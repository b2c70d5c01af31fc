/*
 * msgpack_scan.h: a reader for the bulk encrypt request (kms/api/bulk.py),
 *
 *   {"items": [bin, ...], "associated_data": bin | [bin, ...] | nil,
 *    "key_version": int | nil}
 *
 * and the bulk decrypt request of the same shape whose items are all str
 * (transit ciphertexts) instead, *
 * members in any order, the last two optional; a per-item associated_data
 * list must have one entry per item. Anything else is "not simple" and the
 * caller unpacks the body in full (so it names what is wrong). Items stay
 * where they are in the body: the reader gives their offsets. Private to
 * csrc/.
 */
#ifndef KMS_MSGPACK_SCAN_H
#define KMS_MSGPACK_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct bulk_request {
    const uint8_t *body;
    size_t len;
    size_t items_at;    /* the first item's header */
    size_t count;
    int text_items;     /* the items are str, not bin */
    uint64_t payload;   /* the items' lengths added up */
    int aad_kind;       /* 0 none, 1 one bin for all, 2 one per item */
    size_t aad_at;      /* the bin (kind 1) or the list's first entry (kind 2) */
    int has_version;
    int64_t version;
};

/* 0 when the body has the shape (at most max_items items, bin or, with
 * text_items, str), else -1. */
int bulk_request_scan(struct bulk_request *r, const uint8_t *body, size_t len, size_t max_items,
                      int text_items);

/* Walks a scanned request's items, each with its associated data. */
struct bulk_cursor {
    size_t item_pos, aad_pos;
    const uint8_t *aad; /* the current item's associated data (NULL: none) */
    size_t aad_len;
};

void bulk_cursor_start(struct bulk_cursor *c, const struct bulk_request *r);
/* The next item's data (offset and length in the body); c->aad and
 * c->aad_len are set for it. Call exactly r->count times. */
void bulk_cursor_next(struct bulk_cursor *c, const struct bulk_request *r, size_t *off, size_t *n);

/* The bin at *pos: its data's offset and length; *pos moves past it.
 * 0, or -1 when *pos holds no bin (never after a successful scan). */
int bulk_read_bin(const uint8_t *body, size_t len, size_t *pos, size_t *off, size_t *n);

#endif /* KMS_MSGPACK_SCAN_H */
