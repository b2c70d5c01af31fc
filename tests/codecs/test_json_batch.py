"""The native reader of transit encrypt batches (csrc/json_scan.c) and the
sealing straight from the JSON body: whatever it accepts must be JSON that
json.loads reads to the same items, and whatever it seals must match the
general path's answer, checked against OpenSSL."""
import base64
import json
import os
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead
from kms.codecs import b64text, transit_json

pytestmark = pytest.mark.skipif(aead.BACKEND == "fallback", reason="the fallback has no native JSON reader")

SIMPLE_KEYS = {"batch_input", "plaintext", "partial_failure_response_code"}


def simple_items(body: bytes):
    """What the scanner must conclude, from json.loads: the items, or None
    when the body is not the simple shape."""
    def no_duplicates(pairs):
        if len({k for k, _ in pairs}) != len(pairs):
            raise ValueError("duplicate member")  # the scanner refuses them
        return dict(pairs)
    try:
        text = body.decode("utf-8")
        doc = json.loads(text, object_pairs_hook=no_duplicates)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "batch_input" not in doc or set(doc) - SIMPLE_KEYS:
        return None
    items = doc["batch_input"]
    if not isinstance(items, list) or not items or not isinstance(doc.get("plaintext", ""), str):
        return None
    code = doc.get("partial_failure_response_code")
    if code is not None and (type(code) is not int or abs(code) >= 10**18):  # 18 digits at most
        return None
    for item in items:
        if not isinstance(item, dict) or "plaintext" not in item or set(item) - {"plaintext", "reference"}:
            return None
        if not all(isinstance(v, str) and v.isprintable() for v in item.values()):
            return None
    return items, code


def random_body(rng: random.Random) -> bytes:
    ws = lambda: rng.choice(["", "", " ", "\n", "\t ", "\r\n"])  # noqa: E731
    def string(value):
        return '"' + value + '"'
    def item():
        members = [(string("plaintext"), string(rng.choice([
            base64.b64encode(rng.randbytes(rng.randrange(40))).decode(), "", "!!!!", "YW", "YWJj=",
            "QUJD\\u0044", "é", "AAAA====", "YQ=="])))]
        if rng.random() < 0.5:
            members.append((string("reference"), string(rng.choice(["r1", "", "with space", "tab\t", "q\\\"", "ü"]))))
        if rng.random() < 0.08:
            members.append((string(rng.choice(["context", "plaintext", "nonce"])), string("eA==")))
        rng.shuffle(members)
        return "{" + ws() + ("," + ws()).join(k + ws() + ":" + ws() + v for k, v in members) + ws() + "}"
    top = [(string("batch_input"), "[" + ws() + ("," + ws()).join(item() for _ in range(rng.randrange(0, 5))) + ws() + "]")]
    if rng.random() < 0.3:
        top.append((string("plaintext"), string("")))
    if rng.random() < 0.3:
        top.append((string("partial_failure_response_code"), rng.choice(["207", "-1", "0", "2.5", "1e3", "007", "\"207\"", "99999999999999999999"])))
    if rng.random() < 0.08:
        top.append((string(rng.choice(["type", "batch_input", "key_version"])), "1"))
    rng.shuffle(top)
    text = ws() + "{" + ws() + ("," + ws()).join(k + ws() + ":" + ws() + v for k, v in top) + ws() + "}" + ws()
    if rng.random() < 0.05:
        cut = rng.randrange(len(text))
        text = text[:cut] + rng.choice(["", "}", ",", "x"]) + text[cut + 1:]
    return text.encode()


def scan(body: bytes, max_items: int):
    found = transit_json.scan_batch(body, transit_json.PLAINTEXT, max_items)
    return None if found is None else (found.items, found.partial_code)


def seal(box, body: bytes, version: int, max_items: int, items=None):
    """The endpoint's sequence: scan (unless a count is given), then seal."""
    if items is None:
        found = scan(body, max_items)
        if found is None:
            return None
        items = found[0]
    return transit_json.seal_batch(box, body, version, max_items, items)


def json_free(body: bytes) -> bool:
    """No escape and no non-ASCII: every string means its bytes."""
    return body.isascii() and b"\\" not in body


def test_the_reader_accepts_exactly_the_simple_shape():
    rng = random.Random(21)
    box = aead.AESGCM(os.urandom(32))
    accepted = 0
    for _ in range(20_000):
        body = random_body(rng)
        if not json_free(body):
            # Item plaintexts are only delimited when scanning; one holding an
            # escape or non-ASCII fails base64 and sends the batch to json.loads.
            assert seal(box, body, 1, 10_000) is None, body
            continue
        expected = simple_items(body)
        found = scan(body, 10_000)
        if expected is None:
            assert found is None, body
            continue
        accepted += 1
        items, code = expected
        assert found == (len(items), code), body
    assert accepted > 2000  # the generator does reach the accepted shape


def test_item_limit():
    body = json.dumps({"batch_input": [{"plaintext": ""}] * 11}).encode()
    assert scan(body, 11) == (11, None)
    assert scan(body, 10) is None


def test_sealing_from_json_matches_openssl_and_the_base64_rules(native_backend):
    rng = random.Random(4)
    key = os.urandom(32)
    box = aead.AESGCM(key, backend=native_backend)
    for _ in range(300):
        body = random_body(rng)
        expected = simple_items(body) if json_free(body) else None
        sealed = seal(box, body, 9, 10_000)
        if expected is None:
            assert sealed is None
            continue
        items, _ = expected
        failed, results = sealed
        out = json.loads(bytes(results))
        assert len(out) == len(items) and failed == sum("error" in r for r in out)
        for item, result in zip(items, out):
            assert result["reference"] == item.get("reference", "")
            plain = b64text.decode(item["plaintext"])
            if plain is None:
                assert result == {"error": f"illegal base64 data at input byte {b64text.first_bad(item['plaintext'])}",
                                  "reference": result["reference"]}
                continue
            assert result["key_version"] == 9 and result["ciphertext"].startswith("vault:v9:")
            raw = base64.b64decode(result["ciphertext"][len("vault:v9:"):])
            assert OpenSSLAESGCM(key).decrypt(raw[:12], raw[12:], None) == plain


def test_large_batches_of_tiny_items_get_the_exact_output_bound(native_backend):
    box = aead.AESGCM(os.urandom(16), backend=native_backend)
    body = json.dumps({"batch_input": [{"plaintext": ""}] * 5000}).encode()
    failed, results = seal(box, body, 1, 10_000)
    assert failed == 0 and len(json.loads(bytes(results))) == 5000


@pytest.mark.parametrize("body", [
    # An escaped quote read as a string's end: the rest must not pass for items.
    b'{"batch_input":[{"plaintext":"!\\"},{\\"plaintext\\":\\"QUJD"}]}',
    b'{"batch_input":[{"plaintext":"QUJD\\"},{\\"plaintext\\":\\"QUJD"},{"plaintext":"QUJD"}]}',
    b'{"batch_input":[{"plaintext":"\\u0051UJD"}]}',  # an escape that decodes to valid base64
    b'{"batch_input":[{"plaintext":"QU\\nJD"}]}',
    b'{"batch_input":[{"plaintext":"QUJD\x01"}]}',  # a raw control character: not JSON at all
    b'{"batch_input":[{"plaintext":"QUJD\xc3\xa9"}]}',
])
def test_bodies_that_need_json_itself_go_to_the_full_parser(body):
    box = aead.AESGCM(os.urandom(32))
    assert seal(box, body, 1, 10_000) is None


def test_a_count_from_an_earlier_scan_is_only_a_bound(native_backend):
    """The endpoint passes the scan's item count on; the engine still reads
    and checks the body itself, and refuses a bound too small for it."""
    box = aead.AESGCM(os.urandom(32), backend=native_backend)
    body = json.dumps({"batch_input": [{"plaintext": ""}] * 50}).encode()
    count, _ = scan(body, 10_000)
    failed, results = seal(box, body, 1, 10_000, count)
    assert failed == 0 and len(json.loads(bytes(results))) == 50
    from kms import errors
    with pytest.raises(errors.InvalidBuffer):
        seal(box, body, 1, 10_000, 1)
    assert seal(box, b'{"batch_input": 1}', 1, 10_000, 3) is None
