"""The native reader of bulk encrypt requests (csrc/msgpack_scan.c) and the
sealing of their items where they lie: it must accept exactly the request
shape msgpack itself reads, in every encoding msgpack allows, and what it
seals must open with OpenSSL under the right associated data."""
import os
import random
import struct

import msgpack
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead
from kms.codecs import bulk_msgpack

pytestmark = pytest.mark.skipif(aead.BACKEND == "fallback", reason="the fallback has no native reader")


def scan(body, max_items=200_000):
    found = bulk_msgpack.scan(body, max_items)
    return None if found is None else (found.items, found.version)


def seal(box, body, max_items=200_000):
    """The route's sequence: scan, then seal where the items lie."""
    found = bulk_msgpack.scan(body, max_items)
    return None if found is None else bulk_msgpack.seal_request(box, body, max_items, found)


def wide_bin(data: bytes, width: int) -> bytes:
    """data as msgpack bin8/16/32, whatever its size (msgpack picks the
    shortest; a client may not)."""
    return {1: b"\xc4" + struct.pack(">B", len(data)), 2: b"\xc5" + struct.pack(">H", len(data)),
            4: b"\xc6" + struct.pack(">I", len(data))}[width] + data


def request(rng: random.Random):
    """A body and what msgpack reads from it (a dict), with shapes and
    encodings chosen at random, some of them outside the simple shape."""
    items = [rng.randbytes(rng.choice([0, 1, 15, 16, 17, 200])) for _ in range(rng.randrange(0, 6))]
    def bins(values):
        head = (bytes([0x90 | len(values)]) if len(values) < 16 and rng.random() < 0.7
                else b"\xdc" + struct.pack(">H", len(values)))
        return head + b"".join(wide_bin(v, rng.choice([1, 2, 4]) if len(v) < 256 else 4) for v in values)
    members = [(msgpack.packb("items"), bins(items))]
    roll = rng.random()
    if roll < 0.25:
        members.append((msgpack.packb("associated_data"), wide_bin(rng.randbytes(9), 1)))
    elif roll < 0.5:
        members.append((msgpack.packb("associated_data"), bins([rng.randbytes(3) for _ in items])))
    elif roll < 0.55:
        members.append((msgpack.packb("associated_data"), msgpack.packb(None)))
    if rng.random() < 0.5:
        members.append((msgpack.packb("key_version"), msgpack.packb(rng.choice([0, 1, 7, 300, -1, 2**40, None, True]))))
    if rng.random() < 0.1:
        members.append((msgpack.packb(rng.choice(["nonce", "items"])), msgpack.packb(1)))
    if rng.random() < 0.05:
        members.append((msgpack.packb("associated_data"), bins([b"x"] * (len(items) + 1))))
    rng.shuffle(members)
    head = bytes([0x80 | len(members)]) if rng.random() < 0.8 else b"\xde" + struct.pack(">H", len(members))
    body = head + b"".join(k + v for k, v in members)
    if rng.random() < 0.05:
        body = body[:rng.randrange(len(body))]
    return body


def expected(body):
    """What the native reader must say, worked out with msgpack."""
    try:
        pairs = msgpack.unpackb(body, raw=False, object_pairs_hook=list, strict_map_key=False)
    except Exception:
        return None
    if not isinstance(pairs, list) or len({k for k, _ in pairs}) != len(pairs):
        return None
    doc = dict(pairs)
    if set(doc) - {"items", "associated_data", "key_version"} or not isinstance(doc.get("items"), list):
        return None
    if not all(isinstance(i, bytes) for i in doc["items"]):
        return None
    aad = doc.get("associated_data")
    if aad is not None and not isinstance(aad, bytes) and not (
            isinstance(aad, list) and len(aad) == len(doc["items"]) and all(isinstance(a, bytes) for a in aad)):
        return None
    version = doc.get("key_version")
    if version is not None and type(version) is not int:
        return None
    return len(doc["items"]), version, doc


def test_the_reader_accepts_exactly_the_request_shape():
    rng = random.Random(9)
    accepted = 0
    for _ in range(20_000):
        body = request(rng)
        want = expected(body)
        got = scan(body)
        if want is None:
            assert got is None, body
            continue
        accepted += 1
        assert got == want[:2], body
    assert accepted > 5000


def test_item_limit():
    body = msgpack.packb({"items": [b"a"] * 5})
    assert scan(body, 5) == (5, None) and scan(body, 4) is None


def test_sealed_items_open_with_openssl(native_backend):
    rng = random.Random(2)
    key = os.urandom(32)
    box = aead.AESGCM(key, backend=native_backend)
    for _ in range(400):
        body = request(rng)
        want = expected(body)
        framed = seal(box, bytearray(body))  # bytearrays are read in place too
        if want is None:
            assert framed is None
            continue
        count, _, doc = want
        ciphertexts = msgpack.unpackb(b"\xdd" + struct.pack(">I", count) + bytes(framed))
        aad = doc.get("associated_data")
        for i, (item, sealed) in enumerate(zip(doc["items"], ciphertexts)):
            item_aad = aad[i] if isinstance(aad, list) else aad
            assert OpenSSLAESGCM(key).decrypt(sealed[:12], sealed[12:], item_aad or None) == item
        assert len({c[:12] for c in ciphertexts}) == len(ciphertexts)  # fresh nonces


def test_opened_items_match_openssl_and_failures_are_nil(native_backend):
    rng = random.Random(6)
    key = os.urandom(32)
    box = aead.AESGCM(key, backend=native_backend)
    for _ in range(200):
        plains = [rng.randbytes(rng.choice([0, 1, 16, 300])) for _ in range(rng.randrange(0, 8))]
        aads = [rng.randbytes(4) for _ in plains]
        items = []
        for p, a in zip(plains, aads):
            nonce = os.urandom(12)
            items.append(nonce + OpenSSLAESGCM(key).encrypt(nonce, p, a))
        broken = {}
        for i in range(len(items)):
            roll = rng.random()
            if roll < 0.15:
                sealed = bytearray(items[i])
                sealed[rng.randrange(len(sealed))] ^= 1
                items[i], broken[i] = bytes(sealed), "auth"
            elif roll < 0.25:
                items[i], broken[i] = items[i][:rng.randrange(28)], "short"
        body = msgpack.packb({"items": items, "associated_data": aads, "key_version": 1})
        statuses, framed = bulk_msgpack.open_request(box, body, 200_000, len(items))
        opened = msgpack.unpackb(b"\xdd" + struct.pack(">I", len(items)) + bytes(framed))
        for i, (p, got) in enumerate(zip(plains, opened)):
            if i in broken:
                assert got is None and statuses[i] == (-7 if broken[i] == "auth" else -6)
            else:
                assert got == p and statuses[i] == 0
