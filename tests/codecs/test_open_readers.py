"""The native readers of decrypt and rewrap batches, single bodies and bulk
transit-string items (kms.codecs.transit_json, kms.codecs.bulk_msgpack):
what they accept must read, with json.loads or msgpack, to the same items
(else they answer "not simple" and the general path reads the body), and
what they open or seal again must agree with OpenSSL. Bodies come from
Hypothesis."""
import base64
import json
import os
import struct

import msgpack
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms import aead
from kms.codecs import b64text, bulk_msgpack, transit_json, transit_text

pytestmark = pytest.mark.skipif(aead.BACKEND == "fallback", reason="the fallback has no native reader")

KEYS = {1: os.urandom(32), 2: os.urandom(32)}
TOO_SHORT, AUTH = "invalid ciphertext length", "cipher: message authentication failed"
WORDS = transit_json.OpenWords(TOO_SHORT, AUTH, 12)
TOO_NEW = "ciphertext version is too new"  # what a plan might say for version 3
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def sealed(version: int, plain: bytes, aad: bytes = b"") -> str:
    nonce = os.urandom(12)
    body = nonce + OpenSSLAESGCM(KEYS[max(version, 1) if version < 3 else 1]).encrypt(nonce, plain, aad or None)
    return f"vault:v{version}:" + base64.b64encode(body).decode()


@st.composite
def ciphertexts(draw):
    """A transit ciphertext, or something that only looks like one."""
    version = draw(st.sampled_from([0, 1, 2, 3]))
    text = sealed(version, draw(st.binary(max_size=80)))
    kind = draw(st.sampled_from(["ok"] * 6 + ["tampered", "short", "tiny", "bad64", "escape", "zeros",
                                             "noprefix", "noversion", "long", "unicode"]))
    head, body = text.split(":", 2)[:2], text.split(":", 2)[2]
    if kind == "tampered":
        raw = bytearray(base64.b64decode(body))
        raw[draw(st.integers(0, len(raw) - 1))] ^= 1
        text = f"vault:v{version}:" + base64.b64encode(bytes(raw)).decode()
    elif kind == "short":
        text = f"vault:v{version}:" + base64.b64encode(os.urandom(draw(st.integers(12, 27)))).decode()
    elif kind == "tiny":
        text = f"vault:v{version}:" + base64.b64encode(os.urandom(draw(st.integers(0, 11)))).decode()
    elif kind == "bad64":
        text = f"vault:v{version}:" + body[:-1] + draw(st.sampled_from(["!", "", "==", "-"]))
    elif kind == "escape":
        text = f"vault:v{version}:\\u0041" + body
    elif kind == "zeros":
        text = f"vault:v00{version}:" + body
    elif kind == "noprefix":
        text = body
    elif kind == "noversion":
        text = "vault:v:" + body
    elif kind == "long":
        text = "vault:v" + "1" * draw(st.sampled_from([18, 19, 25])) + ":" + body
    elif kind == "unicode":
        text = f"vault:v{version}:é" + body
    del head
    return text


@st.composite
def batch_bodies(draw):
    """A decrypt batch body as text, mostly of the simple shape."""
    items = []
    for _ in range(draw(st.integers(0, 6))):
        item = {"ciphertext": draw(ciphertexts())}
        if draw(st.booleans()):
            item["reference"] = draw(st.sampled_from(["r1", "", "with space", "q\"", "ü", "tab\t"]))
        if draw(st.integers(0, 12)) == 0:
            item[draw(st.sampled_from(["context", "nonce", "associated_data"]))] = "eA=="
        items.append(item)
    doc = {"batch_input": items}
    if draw(st.booleans()):
        doc["partial_failure_response_code"] = draw(st.sampled_from([207, 0, -1, 400, 2.5, "207"]))
    if draw(st.integers(0, 5)) == 0:
        doc["ciphertext"] = ""
    sep = draw(st.sampled_from([(",", ":"), (", ", ": "), (",\n", " :\t")]))
    text = json.dumps(doc, separators=sep, ensure_ascii=draw(st.booleans()))
    # json.dumps writes escapes the reader must send to the full parser.
    return text.replace("\\\\u0041", "\\u0041").encode()


def expected_versions(body: bytes, plain_payloads: bool = True):
    """The versions json.loads reads, when the body is the versioned simple
    shape the native reader takes (else None). plain_payloads=False: a
    ciphertext may hold escapes or non-ASCII after its version (the scan
    only delimits payloads; opening then refuses any it must decode)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or set(doc) - {"batch_input", "ciphertext", "partial_failure_response_code"}:
        return None
    items = doc.get("batch_input")
    code = doc.get("partial_failure_response_code")
    if not isinstance(items, list) or not items or not isinstance(doc.get("ciphertext", ""), str):
        return None
    if code is not None and type(code) is not int:
        return None
    versions = []
    for item in items:
        if set(item) - {"ciphertext", "reference"} or not all(isinstance(v, str) for v in item.values()):
            return None
        checked = [v for k, v in item.items() if plain_payloads or k != "ciphertext"]
        if not all(v.isascii() and v.isprintable() and "\\" not in v and '"' not in v for v in checked):
            return None
        parts = transit_text.split(item["ciphertext"])
        digits = item["ciphertext"][len("vault:v"):].partition(":")[0]
        if isinstance(parts, str) or len(digits) > 18:
            return None
        versions.append(parts[0])
    return versions


def json_free(body: bytes) -> bool:
    return body.isascii() and b"\\" not in body


def scanned_versions(body: bytes):
    found = transit_json.scan_batch(body, transit_json.CIPHERTEXT, 10_000)
    if found is None:
        return None
    versions = transit_json.scan_versions(body, 10_000, found.items)
    return None if versions is None else list(versions)


@SETTINGS
@given(batch_bodies())
def test_the_batch_reader_reads_what_json_reads(body):
    got = scanned_versions(body)
    if not json_free(body) and got is not None:
        # An escape or non-ASCII past a ciphertext's version: read as it is,
        # and opening refuses the batch unless the plan fails that item.
        assert got == expected_versions(body, plain_payloads=False), body
        return
    assert got == expected_versions(body), body


def plan_for(versions):
    """What a plan would make of these versions: keys 1 and 2 (0 reads as
    1), version 3 too new."""
    boxes = [aead.AESGCM(KEYS[1]), aead.AESGCM(KEYS[2])]
    routes, failed = [], {}
    for i, v in enumerate(versions):
        if v >= 3:
            routes.append(-1)
            failed[i] = TOO_NEW
        else:
            routes.append(max(v, 1) - 1)
    return boxes, routes, failed


def opened_by_openssl(text: str, version: int):
    """(plaintext or None, error or None) as the general path finds them."""
    if version >= 3:
        return None, TOO_NEW
    body = text.split(":", 2)[2]
    raw = b64text.decode(body)
    if raw is None:
        return "not simple", None
    if len(raw) < 12:
        return None, TOO_SHORT
    try:
        return OpenSSLAESGCM(KEYS[max(version, 1)]).decrypt(raw[:12], raw[12:], None), None
    except InvalidTag:
        return None, AUTH


@SETTINGS
@given(batch_bodies(), st.booleans())
def test_opened_and_rewrapped_items_agree_with_openssl(native_backend, body, rewrap):
    versions = scanned_versions(body)
    if versions is None:
        return
    items = json.loads(body)["batch_input"]
    boxes, routes, failed = plan_for(versions)
    boxes = [aead.AESGCM(KEYS[v], backend=native_backend) for v in (1, 2)]
    reseal = (aead.AESGCM(KEYS[2], backend=native_backend), 7) if rewrap else None
    answered = transit_json.open_batch(boxes, routes, failed, WORDS, body, 10_000, len(items), reseal)
    expected = [opened_by_openssl(item["ciphertext"], v) for item, v in zip(items, versions)]
    if any(plain == "not simple" for plain, _ in expected) or (answered is None and not json_free(body)):
        # Bad base64, or an escape where base64 must be: the general reader
        # words it. (Refusing is always safe; answering must be right.)
        assert answered is None
        return
    count, results = answered
    results = json.loads(bytes(results))
    assert count == sum(error is not None for _, error in expected)
    for item, result, (plain, error) in zip(items, results, expected):
        assert result["reference"] == item.get("reference", "")
        if error is not None:
            want = {"error": error, "reference": result["reference"]}
            assert result == (want if rewrap else {"plaintext": "", **want})
        elif rewrap:
            assert result["key_version"] == 7 and result["ciphertext"].startswith("vault:v7:")
            raw = base64.b64decode(result["ciphertext"][len("vault:v7:"):])
            assert OpenSSLAESGCM(KEYS[2]).decrypt(raw[:12], raw[12:], None) == plain
        else:
            assert result == {"plaintext": base64.b64encode(plain).decode(), "reference": result["reference"]}


@SETTINGS
@given(st.sampled_from([b"plaintext", b"ciphertext"]),
       st.one_of(st.text(max_size=40), st.sampled_from(["QUJD", "vault:v1:QUJD", "", "a\\\"b"])),
       st.sampled_from([(",", ":"), (", ", ": "), (",", " :  ")]), st.booleans(),
       st.sampled_from([None, "reference", "plaintext", "batch_input"]))
def test_the_single_reader_reads_what_json_reads(field, value, separators, ascii_only, extra):
    doc = {field.decode(): value}
    if extra:
        doc[extra] = "x"
    body = (" " + json.dumps(doc, separators=separators, ensure_ascii=ascii_only) + "\n").encode()
    got = transit_json.scan_single(body, field)
    value = doc[field.decode()]  # the extra member may have been the field itself
    simple = len(doc) == 1 and value.isascii() and value.isprintable() \
        and "\\" not in value and '"' not in value
    if not simple:
        assert got is None, body
        return
    assert got is not None and body[got[0]:got[0] + got[1]].decode() == json.loads(body)[field.decode()]


@st.composite
def bulk_bodies(draw):
    """A bulk decrypt body whose items are (mostly) transit strings."""
    items = [draw(ciphertexts()).replace("\\u0041", "A") for _ in range(draw(st.integers(0, 6)))]
    if items and draw(st.integers(0, 8)) == 0:
        items[0] = items[0].encode()  # a bin among strings: not this shape
    doc = {"items": items}
    roll = draw(st.integers(0, 3))
    if roll == 1:
        doc["associated_data"] = b"ad"
    elif roll == 2:
        doc["associated_data"] = [b"a%d" % i for i in range(len(items))]
    if draw(st.booleans()):
        doc["key_version"] = draw(st.sampled_from([None, 1, -1, 5]))
    if draw(st.integers(0, 10)) == 0:
        doc["key_versions"] = [1] * len(items)
    return msgpack.packb(doc, use_bin_type=True), doc


@SETTINGS
@given(bulk_bodies())
def test_the_bulk_reader_reads_what_msgpack_reads(native_backend, drawn):
    body, doc = drawn
    found = bulk_msgpack.scan_texts(body, 200_000)
    items = doc["items"]
    shape = set(doc) <= {"items", "associated_data", "key_version"} and all(isinstance(i, str) for i in items)
    versions = []
    for item in items if shape else ():
        parts = transit_text.split(item)
        digits = item[len("vault:v"):].partition(":")[0]
        if isinstance(parts, str) or len(digits) > 18:
            shape = False
            break
        versions.append(parts[0])
    if not shape:
        assert found is None
        return
    assert found is not None and list(found.versions) == versions
    assert found.version == doc.get("key_version")
    boxes = [aead.AESGCM(KEYS[v], backend=native_backend) for v in (1, 2)]
    _, routes, _ = plan_for(versions)
    opened = bulk_msgpack.open_texts(boxes, routes, body, 200_000, 12)
    aad = doc.get("associated_data")
    expected = []
    for i, (item, v) in enumerate(zip(items, versions)):
        item_aad = aad[i] if isinstance(aad, list) else aad
        if v >= 3:
            expected.append((None, bulk_msgpack.PLAN_FAILED))
            continue
        raw = b64text.decode(item.split(":", 2)[2])
        if raw is None:
            expected.append("not simple")
        elif len(raw) < 12:
            expected.append((None, -6))
        else:
            try:
                plain = OpenSSLAESGCM(KEYS[max(v, 1)]).decrypt(raw[:12], raw[12:], item_aad or None)
                expected.append((plain, 0))
            except InvalidTag:
                expected.append((None, -7))
    if "not simple" in expected:
        assert opened is None
        return
    statuses, plaintexts = opened
    values = msgpack.unpackb(b"\xdd" + struct.pack(">I", len(items)) + bytes(plaintexts))
    assert list(zip(values, statuses)) == expected


def test_a_plain_batch_is_answered_natively(native_backend):
    """The common shapes are taken (the tests above may refuse freely)."""
    texts = [sealed(1, b"one"), sealed(2, b"two"), sealed(3, b"new")]
    body = json.dumps({"batch_input": [{"ciphertext": t, "reference": f"r{i}"} for i, t in enumerate(texts)]}).encode()
    versions = scanned_versions(body)
    assert versions == [1, 2, 3]
    _, routes, failed = plan_for(versions)
    boxes = [aead.AESGCM(KEYS[v], backend=native_backend) for v in (1, 2)]
    count, results = transit_json.open_batch(boxes, routes, failed, WORDS, body, 100, 3)
    assert count == 1 and json.loads(bytes(results)) == [
        {"plaintext": "b25l", "reference": "r0"}, {"plaintext": "dHdv", "reference": "r1"},
        {"plaintext": "", "error": TOO_NEW, "reference": "r2"}]
    bulk = msgpack.packb({"items": texts, "associated_data": None})
    found = bulk_msgpack.scan_texts(bulk, 100)
    statuses, plaintexts = bulk_msgpack.open_texts(boxes, routes, bulk, 100, 12)
    assert list(found.versions) == [1, 2, 3] and list(statuses) == [0, 0, bulk_msgpack.PLAN_FAILED]
    assert msgpack.unpackb(b"\x93" + bytes(plaintexts)) == [b"one", b"two", None]
