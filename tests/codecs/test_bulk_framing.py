"""kms.codecs.bulk_msgpack.seal_framed: sealed items framed as msgpack bin32
entries (the engine leaves header room per item, csrc/aead.c; the codec
writes the headers, csrc/bulk.c), on every backend with the same bytes
layout, checked against OpenSSL."""
import os
import struct

import msgpack
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead
from kms.codecs import bulk_msgpack


def test_framed_items_are_an_array_body(backend):
    """The result, behind an array header, unpacks to the sealed items
    (nonce || ciphertext || tag each), every header a bin32."""
    key = os.urandom(32)
    box = aead.AESGCM(key, backend=backend)
    items = [os.urandom(n) for n in (0, 1, 100, 70_000)]
    framed = bytes(bulk_msgpack.seal_framed(box, items, b"ad"))
    bodies = msgpack.unpackb(b"\xdd" + struct.pack(">I", len(items)) + framed)
    assert [len(b) for b in bodies] == [len(i) + 28 for i in items]
    for item, body in zip(items, bodies):
        assert OpenSSLAESGCM(key).decrypt(body[:12], body[12:], b"ad") == item
    at = 0
    for item in items:  # bin32 headers throughout, whatever the size
        assert framed[at] == 0xC6 and struct.unpack(">I", framed[at + 1:at + 5])[0] == len(item) + 28
        at += 5 + len(item) + 28
    assert at == len(framed)


def test_per_item_associated_data_and_an_empty_batch(backend):
    key = os.urandom(16)
    box = aead.AESGCM(key, backend=backend)
    items, aads = [b"a", b"bb", b""], [b"1", b"", b"333"]
    bodies = msgpack.unpackb(b"\x93" + bytes(bulk_msgpack.seal_framed(box, items, aads)))
    for item, aad, body in zip(items, aads, bodies):
        assert OpenSSLAESGCM(key).decrypt(body[:12], body[12:], aad or None) == item
    assert bytes(bulk_msgpack.seal_framed(box, [], None)) == b""
