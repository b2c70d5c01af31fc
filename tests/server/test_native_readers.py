"""The native readers (kms.codecs) against a real kms server: a decrypt or
rewrap batch, a single encrypt or decrypt body, and a bulk decrypt of
transit strings are answered exactly as the general path answers the same
request written so that only json/msgpack can read it (an escape in a
member name, an extra msgpack member): same status, same JSON (ciphertexts
compared by what they decrypt to), same per-item errors."""
import base64
import json
import os

import msgpack
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import server_fixture

TOKEN = "kms-native-readers-token-0123456789"
KEY, OLD = "reader-key", "reader-old"  # OLD: min_decryption_version 2


running = server_fixture("readers", root_token=TOKEN)


@pytest.fixture(scope="module")
def server(running):
    """The server with two keys of three versions each."""
    for name in (KEY, OLD):
        assert call(running, "transit/keys/" + name, {}).status_code == 200
        for _ in range(2):
            assert call(running, f"transit/keys/{name}/rotate", {}).status_code == 200
    return running


def call(server, path, body, raw: bytes = None):
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(f"http://{server.endpoint}/v1/{path}", data=data, timeout=60,
                         headers={"X-Vault-Token": TOKEN, "Content-Type": "application/json"})


def general_form(body: bytes) -> bytes:
    """The same JSON with its member names escaped: json.loads reads it to
    the same document; the native readers refuse it."""
    for name in (b"batch_input", b"plaintext", b"ciphertext"):
        body = body.replace(b'"%s"' % name, b'"%s\\u%04x"' % (name[:-1], name[-1]))
    return body


def test_the_general_form_means_the_same():
    body = json.dumps({"batch_input": [{"ciphertext": "c", "reference": "r"}], "plaintext": ""}).encode()
    escaped = general_form(body)
    assert b"\\u00" in escaped and json.loads(escaped) == json.loads(body)


def sealed(server, name, plaintext: bytes, version: int) -> str:
    r = call(server, f"transit/encrypt/{name}", {"plaintext": base64.b64encode(plaintext).decode(),
                                                  "key_version": version})
    assert r.status_code == 200, r.text
    return r.json()["data"]["ciphertext"]


def opened(server, name, ciphertext: str) -> bytes:
    r = call(server, f"transit/decrypt/{name}", {"batch_input": [{"ciphertext": ciphertext}],
                                                 "plaintext": "x"})  # not the simple shape
    return base64.b64decode(r.json()["data"]["batch_results"][0]["plaintext"])


def comparable(server, name, answer):
    """An answer with its request id dropped and every ciphertext replaced by
    (its prefix, what it decrypts to)."""
    doc = answer.json()
    doc.pop("request_id", None)
    data = doc.get("data") or {}
    for entry in data.get("batch_results", []) + [data]:
        text = entry.get("ciphertext")
        if text:
            entry["ciphertext"] = (text.split(":")[:2], opened(server, name, text))
    return answer.status_code, doc


def assert_alike(server, name, route, body: bytes):
    native = call(server, f"transit/{route}/{name}", None, raw=body)
    general = call(server, f"transit/{route}/{name}", None, raw=general_form(body))
    got, want = comparable(server, name, native), comparable(server, name, general)
    if got != want and got[0] == want[0]:  # name the entries that differ
        pairs = zip(got[1]["data"].get("batch_results", [got[1]]), want[1]["data"].get("batch_results", [want[1]]))
        assert [(a, b) for a, b in pairs if a != b] == [], body
    assert got == want, body
    return native


@pytest.fixture(scope="module")
def texts(server):
    """Ciphertexts of every kind the readers meet, per key."""
    out = {}
    for name in (KEY, OLD):
        good = [sealed(server, name, os.urandom(n), v) for n, v in ((0, 1), (5, 2), (300, 3), (17, 3))]
        body = good[3].split(":")[2]
        raw = bytearray(base64.b64decode(body))
        raw[-1] ^= 1
        out[name] = good + [
            "vault:v3:" + base64.b64encode(bytes(raw)).decode(),       # tampered
            "vault:v3:" + base64.b64encode(os.urandom(20)).decode(),  # shorter than nonce + tag
            "vault:v3:" + base64.b64encode(os.urandom(5)).decode(),   # shorter than a nonce
            "vault:v9:" + body,                                        # too new
            "vault:v0:" + good[0].split(":")[2],                       # version 0 reads as 1
            "vault:v2:" + body[:-2] + "!=",                            # bad base64
            "vault:v1:" + good[0].split(":")[2] + "AAAA====",          # padding Go refuses
        ]
    # Sealed under version 1 before it is retired: "too old" from now on.
    assert call(server, f"transit/keys/{OLD}/config", {"min_decryption_version": 2}).status_code == 200
    return out


@pytest.mark.parametrize("name", [KEY, OLD])
@pytest.mark.parametrize("route", ["decrypt", "rewrap"])
def test_batches_answer_alike(server, texts, name, route):
    items = [{"ciphertext": t, "reference": f"r{i}"} for i, t in enumerate(texts[name])]
    for chosen in (items[:4], items[:4] + items[4:9], items):
        for extra in ({}, {"partial_failure_response_code": 207}, {"partial_failure_response_code": 0}):
            answer = assert_alike(server, name, route, json.dumps({"batch_input": chosen, **extra}).encode())
            assert answer.status_code in (200, 207, 400)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_random_batches_answer_alike(server, texts, data):
    name = data.draw(st.sampled_from([KEY, OLD]))
    route = data.draw(st.sampled_from(["decrypt", "rewrap"]))
    chosen = data.draw(st.lists(st.sampled_from(texts[name]), min_size=1, max_size=8))
    refs = data.draw(st.lists(st.sampled_from(["", "a", "b c"]), min_size=len(chosen), max_size=len(chosen)))
    items = [{"ciphertext": t, **({"reference": r} if r else {})} for t, r in zip(chosen, refs)]
    assert_alike(server, name, route, json.dumps({"batch_input": items}, separators=(",", ":")).encode())


@pytest.mark.parametrize("name", [KEY, OLD])
def test_single_decrypts_answer_alike(server, texts, name):
    for text in texts[name]:
        assert_alike(server, name, "decrypt", json.dumps({"ciphertext": text}).encode())


@pytest.mark.parametrize("plaintext", ["", "QUJD", base64.b64encode(os.urandom(20000)).decode(), "QUJ", "!!!!",
                                       "QUJD" * 10 + "A==="])
def test_single_encrypts_answer_alike(server, plaintext):
    answer = assert_alike(server, KEY, "encrypt", json.dumps({"plaintext": plaintext}).encode())
    if answer.status_code == 200:
        assert opened(server, KEY, answer.json()["data"]["ciphertext"]) == base64.b64decode(plaintext)


def test_a_large_single_encrypt(server):
    plaintext = os.urandom(3 << 20)
    body = json.dumps({"plaintext": base64.b64encode(plaintext).decode()}).encode()
    answer = call(server, f"transit/encrypt/{KEY}", None, raw=body)
    assert answer.status_code == 200
    assert opened(server, KEY, answer.json()["data"]["ciphertext"]) == plaintext


def bulk(server, name, message):
    r = requests.post(f"http://{server.endpoint}/v1/bulk/decrypt/{name}", data=msgpack.packb(message),
                      headers={"X-Vault-Token": TOKEN, "Content-Type": "application/msgpack"}, timeout=60)
    return r.status_code, msgpack.unpackb(r.content)


@pytest.mark.parametrize("name", [KEY, OLD])
def test_bulk_transit_strings_answer_alike(server, texts, name):
    for extra in ({}, {"key_version": 2}, {"associated_data": b""}):
        message = {"items": texts[name], **extra}
        native = bulk(server, name, message)
        general = bulk(server, name, {**message, "note": 1})  # an unknown member: unpacked by msgpack
        assert native == general
        assert native[0] == 200 and len(native[1]["plaintexts"]) == len(texts[name])
    assert bulk(server, name, {"items": texts[name][:4]})[1]["errors"] == (
        [] if name == KEY else [[0, "ciphertext or signature version is disallowed by policy (too old)"]])
