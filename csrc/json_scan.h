/*
 * json_scan.h: a scanner for the one JSON shape that carries nearly every
 * transit encrypt batch,
 *
 *   {"batch_input": [{"plaintext": "<b64>", "reference": "<ref>"}, ...],
 *    "plaintext": "<ignored>", "partial_failure_response_code": <int>}
 *
 * (members in any order, whitespace anywhere JSON allows it, "reference",
 * "plaintext" and the response code optional). Keys and references must be
 * printable ASCII without escapes; item plaintexts are only delimited (see
 * scan_string), and the caller checks json_plain on any that fails base64.
 * Anything else, valid JSON or not, is "not simple" and the caller parses
 * the body in full, so the scanner never has to be right about JSON it
 * does not accept.
 * Private to csrc/.
 */
#ifndef KMS_JSON_SCAN_H
#define KMS_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* The shape's member names, the caller's (kms.codecs.transit_json). */
struct json_name {
    const uint8_t *text;
    size_t len;
};

struct json_names {
    struct json_name field;     /* an item's payload: "plaintext" or "ciphertext" */
    struct json_name batch;     /* "batch_input" */
    struct json_name reference; /* "reference" */
    struct json_name code;      /* "partial_failure_response_code" */
};

struct json_item {
    size_t text_off, text_len; /* the plaintext's base64, within the body */
    size_t ref_off, ref_len;   /* the reference (ref_len 0: none or "") */
};

struct json_batch {
    const uint8_t *body;
    size_t len;
    const struct json_names *names;
    size_t pos;       /* next byte to read */
    size_t items_at;  /* where the batch_input array's first item begins */
    size_t count;     /* items, once json_batch_scan succeeded */
    int has_code;     /* partial_failure_response_code was given */
    int64_t code;
};

/* Printable ASCII without a backslash: JSON that means itself. */
int json_plain(const uint8_t *s, size_t n);

/* Check the whole body against the shape and count its items (at most
 * max_items). 0 when it fits, -1 when it does not. */
int json_batch_scan(struct json_batch *b, const uint8_t *body, size_t len,
                    const struct json_names *names, size_t max_items);

/* A body of exactly {FIELD: "<payload>"}, the payload printable ASCII
 * without escapes: 0 with its place, else -1. */
int json_single_scan(const uint8_t *body, size_t len, const struct json_name *field, size_t *off,
                     size_t *n);

/* After a successful scan: the items in order. pos must start at
 * b->items_at; each call fills one item and returns 0, or -1 past the
 * last. */
int json_batch_next(const struct json_batch *b, size_t *pos, struct json_item *item);

#endif /* KMS_JSON_SCAN_H */
