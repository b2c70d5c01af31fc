"""HTTP-level behaviour of the transit routes that the ASGI lane serves
(kms.api.lane) ahead of Starlette, against a real server: methods, paths,
body limits and malformed bodies get OpenBao's status and text, the single
request's native path answers like the general one, and nothing stored
changes on a refused request."""
import base64
import json
import socket

import pytest
import requests
from conftest import b64, server_fixture

TOKEN = "kms-test-root-token-lane-0123456789"
UNSUPPORTED = "1 error occurred:\n\t* unsupported operation\n\n"

server = server_fixture("lane", root_token=TOKEN)


@pytest.fixture(scope="module")
def key(server):
    r = call(server, "POST", "transit/keys/lane-key", json={})
    assert r.status_code == 200
    return "lane-key"


def call(server, method, path, token=TOKEN, **kwargs):
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers.setdefault("X-Vault-Token", token)
    return requests.request(method, f"http://{server.endpoint}/v1/{path}", headers=headers,
                            timeout=60, **kwargs)


def raw_exchange(server, request: bytes) -> bytes:
    """One request over a fresh socket; the whole answer (the server closes)."""
    host, port = server.endpoint.split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


@pytest.mark.parametrize("op", ["encrypt", "decrypt", "rewrap"])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_other_methods_on_crypto_paths_are_405_after_authentication(server, key, op, method):
    r = call(server, method, f"transit/{op}/{key}")
    assert (r.status_code, r.json()) == (405, {"errors": [UNSUPPORTED]})
    r = call(server, method, f"transit/{op}/{key}", token=None)
    assert (r.status_code, r.json()) == (403, {"errors": ["permission denied"]})


def test_put_is_post(server, key):
    r = call(server, "PUT", f"transit/encrypt/{key}", json={"plaintext": b64(b"x")})
    assert r.status_code == 200 and r.json()["data"]["ciphertext"].startswith("vault:v1:")


def test_extra_path_segments_are_not_the_crypto_route(server, key):
    r = call(server, "POST", f"transit/encrypt/{key}/more", json={"plaintext": b64(b"x")})
    assert r.status_code == 404
    assert r.json()["errors"][0].startswith('no handler for route "transit/encrypt/')
    assert call(server, "POST", "transit/encrypt/", json={}).status_code == 404


def test_missing_or_bad_token_is_refused(server, key):
    for token in (None, "not-a-token-at-all", TOKEN + "x"):
        r = call(server, "POST", f"transit/encrypt/{key}", token=token, json={"plaintext": b64(b"x")})
        assert (r.status_code, r.json()) == (403, {"errors": ["permission denied"]})
    r = call(server, "POST", f"transit/encrypt/{key}", token=None,
             headers={"Authorization": f"Bearer {TOKEN}"}, json={"plaintext": b64(b"x")})
    assert r.status_code == 200


@pytest.mark.parametrize("body, message", [
    (b"{not json", "failed to decode JSON input: "),
    (b"[1, 2]", "failed to decode JSON input: body must be an object"),
    (b"\xff\xfe", "failed to decode JSON input: "),
])
def test_malformed_bodies(server, key, body, message):
    r = call(server, "POST", f"transit/encrypt/{key}", data=body)
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith(message)


def test_bodies_over_32_mib_are_413_declared_or_chunked(server, key):
    versions = call(server, "GET", f"transit/keys/{key}").json()["data"]["keys"]
    over = b'{"plaintext":"' + b"A" * (32 << 20) + b'"}'
    r = call(server, "POST", f"transit/encrypt/{key}", data=over)
    assert (r.status_code, r.json()) == (413, {"errors": ["http: request body too large"]})

    def pieces():
        for start in range(0, len(over), 1 << 20):
            yield over[start:start + (1 << 20)]
    r = call(server, "POST", f"transit/encrypt/{key}", data=pieces())  # chunked: no length declared
    assert (r.status_code, r.json()) == (413, {"errors": ["http: request body too large"]})
    assert call(server, "GET", f"transit/keys/{key}").json()["data"]["keys"] == versions


def test_a_declared_length_over_the_limit_is_refused_before_the_body_arrives(server, key):
    head = (f"POST /v1/transit/encrypt/{key} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {64 << 20}\r\nConnection: close\r\n\r\n")
    answer = raw_exchange(server, head.encode())  # no body sent at all
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.split(b"\r\n\r\n", 1)[1] == b'{"errors":["http: request body too large"]}'


def test_batch_over_the_item_limit_is_refused(server, key):
    r = call(server, "POST", f"transit/encrypt/{key}",
             json={"batch_input": [{"plaintext": ""}] * 10_001})
    assert (r.status_code, r.json()) == (400, {"errors": ["batch_input holds more than 10000 items"]})


@pytest.mark.parametrize("plaintext", ["", None, b64(b"x" * 100) + "\n", b64(b"line") + "\r\n", 123])
def test_single_encrypt_odd_plaintexts_answer_like_the_general_path(server, key, plaintext):
    """The native single path takes only plain base64 text; the rest goes
    the general way. Either way the answer is OpenBao's."""
    r = call(server, "POST", f"transit/encrypt/{key}", json={"plaintext": plaintext})
    if plaintext == 123:  # stringified, then not base64
        assert (r.status_code, r.json()["errors"]) == (400, ["illegal base64 data at input byte 0"])
        return
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["key_version"] == 1
    back = call(server, "POST", f"transit/decrypt/{key}", json={"ciphertext": data["ciphertext"]})
    expected = base64.b64decode((plaintext or "").strip())
    assert base64.b64decode(back.json()["data"]["plaintext"]) == expected


@pytest.mark.parametrize("bad, offset", [("!!!!", 0), ("YWJj=", 4), ("YW", 0), ("YWJjZA=x", 6), ("Y W=", 1)])
def test_single_encrypt_names_the_first_bad_byte(server, key, bad, offset):
    r = call(server, "POST", f"transit/encrypt/{key}", json={"plaintext": bad})
    assert (r.status_code, r.json()) == (400, {"errors": [f"illegal base64 data at input byte {offset}"]})


def test_envelope_shape(server, key):
    r = call(server, "POST", f"transit/encrypt/{key}", json={"plaintext": b64(b"shape")})
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    body = json.loads(r.content)
    assert set(body) == {"request_id", "lease_id", "renewable", "lease_duration", "data",
                         "wrap_info", "warnings", "auth"}
    assert (body["lease_id"], body["renewable"], body["lease_duration"], body["wrap_info"],
            body["warnings"], body["auth"]) == ("", False, 0, None, None, None)
    rid = body["request_id"]
    assert len(rid) == 36 and rid[14] == "4" and rid[19] in "89ab"
    assert set(body["data"]) == {"ciphertext", "key_version"}


def test_native_batch_reader_and_json_parser_give_the_same_answers(server, key):
    """A simple-shape batch is sealed from the raw body; the same items with
    one extra top-level member ("context": null is ignored for a plain key)
    take json.loads and the general path. Both answers must agree in all
    but the ciphertexts' randomness."""
    items = [{"plaintext": b64(b"one"), "reference": "a"}, {"plaintext": "!!!!"},
             {"plaintext": "", "reference": "c"}, {"plaintext": "YWJj=", "reference": "d"}]
    for extra in ({}, {"partial_failure_response_code": 207}, {"partial_failure_response_code": 9999},
                  {"plaintext": ""}):
        native = call(server, "POST", f"transit/encrypt/{key}", json={"batch_input": items, **extra})
        general = call(server, "POST", f"transit/encrypt/{key}",
                       json={"batch_input": items, "context": None, **extra})
        assert native.status_code == general.status_code
        a, b = native.json(), general.json()
        assert a["warnings"] == b["warnings"]
        for x, y in zip(a["data"]["batch_results"], b["data"]["batch_results"]):
            assert set(x) == set(y)
            assert {k: v for k, v in x.items() if k != "ciphertext"} == \
                {k: v for k, v in y.items() if k != "ciphertext"}
        for result in a["data"]["batch_results"]:
            if "ciphertext" in result:
                r = call(server, "POST", f"transit/decrypt/{key}", json={"ciphertext": result["ciphertext"]})
                assert r.status_code == 200


def test_escaped_batch_bodies_are_read_as_json(server, key):
    body = b'{"batch_input":[{"plaintext":"\\u0059WJj","reference":"r"}]}'  # \u0059 is "Y"
    r = call(server, "POST", f"transit/encrypt/{key}", data=body)
    assert r.status_code == 200
    ct = r.json()["data"]["batch_results"][0]["ciphertext"]
    back = call(server, "POST", f"transit/decrypt/{key}", json={"ciphertext": ct}).json()
    assert base64.b64decode(back["data"]["plaintext"]) == b"abc"
