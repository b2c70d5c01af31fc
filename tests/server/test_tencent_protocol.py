"""The wire protocol itself, with hand-signed raw requests: every answer is
HTTP 200, Content-Type exactly application/json, an envelope with a
RequestId, and a specific code for every kind of bad input."""
import hashlib
import json
import time
from datetime import datetime, timezone

import pytest
import requests

from kms.api.tencent import signing

from conftest import ROOT_ID, ROOT_KEY


def signed_post(server, action, body, secret_id=ROOT_ID, secret_key=ROOT_KEY,
                timestamp=None, version="2019-01-18", content_type="application/json"):
    timestamp = int(time.time()) if timestamp is None else timestamp
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    headers = {"content-type": content_type, "host": server.endpoint}
    canonical = signing.canonical_request("POST", "", headers, "content-type;host",
                                          hashlib.sha256(body).hexdigest())
    sig = signing.signature(secret_key, date, "kms", str(timestamp), canonical)
    headers.update({
        "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/kms/tc3_request, "
                         f"SignedHeaders=content-type;host, Signature={sig}",
        "X-TC-Action": action, "X-TC-Version": version, "X-TC-Timestamp": str(timestamp),
    })
    return requests.post(f"http://{server.endpoint}/", data=body, headers=headers, timeout=30)


def envelope(response):
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()["Response"]
    assert body["RequestId"]
    return body


def error_code(response):
    return envelope(response)["Error"]["Code"]


def test_a_signed_request_succeeds(server):
    body = envelope(signed_post(server, "GenerateRandom", {"NumberOfBytes": 8}))
    assert "Plaintext" in body and "Error" not in body


def test_health_needs_no_authentication(server):
    r = requests.get(f"http://{server.endpoint}/health", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.json()["aead_backend"] in ("vaes", "vaes256", "aesni", "fallback")


@pytest.mark.parametrize("action, body, code", [
    ("NoSuchThing", {}, "InvalidAction"),
    ("Encrypt", b"{not json", "InvalidParameter"),
    ("Encrypt", b"[1, 2]", "InvalidParameter"),
    ("Encrypt", b"\xff\xfe", "InvalidParameter"),
    ("Encrypt", {"Plaintext": "aGk="}, "MissingParameter"),
    ("GenerateRandom", {"NumberOfBytes": True}, "InvalidParameter"),
    ("DescribeKeys", {"KeyIds": "not-a-list"}, "InvalidParameter"),
    ("CreateKey", {"Alias": "x", "Type": 3}, "InvalidParameterValue.InvalidType"),
    ("CreateKey", {"Alias": "x2", "KeyUsage": "ASYMMETRIC_DECRYPT_RSA_4096"}, "InvalidParameterValue.InvalidKeyUsage"),
    ("CreateKey", {"Alias": "x3", "KeyUsage": "ASYMMETRIC_SIGN_VERIFY_ED25519"}, "InvalidParameterValue.InvalidKeyUsage"),
    ("CreateKey", {"Alias": "x4", "KeyUsage": "ASYMMETRIC_SIGN_VERIFY_ECC", "Type": 2}, "UnsupportedOperation"),
])
def test_bad_input_gets_specific_codes(server, action, body, code):
    assert error_code(signed_post(server, action, body)) == code


def test_wrong_version(server):
    assert error_code(signed_post(server, "GenerateRandom", {"NumberOfBytes": 8}, version="2017-03-12")) == "NoSuchVersion"


def test_oversized_body_is_refused(server):
    r = signed_post(server, "Encrypt", b'{"Plaintext": "' + b"A" * (2 << 20) + b'"}')
    assert error_code(r) == "RequestSizeLimitExceeded"


def test_authentication_failures(server):
    assert error_code(signed_post(server, "GenerateRandom", {"NumberOfBytes": 8},
                                  secret_key="wrong")) == "AuthFailure.SignatureFailure"
    assert error_code(signed_post(server, "GenerateRandom", {"NumberOfBytes": 8},
                                  secret_id="AKIDunknown")) == "AuthFailure.SecretIdNotFound"
    assert error_code(signed_post(server, "GenerateRandom", {"NumberOfBytes": 8},
                                  timestamp=int(time.time()) - 400)) == "AuthFailure.SignatureExpire"
    r = requests.post(f"http://{server.endpoint}/", json={}, headers={"X-TC-Action": "ListKeys"}, timeout=10)
    assert error_code(r) == "AuthFailure.InvalidAuthorization"


def test_signature_replayed_under_another_action(server):
    """A signature first used to read never changes state (at once: there is
    no grace period) and is read again only as a metadata read."""
    created = envelope(signed_post(server, "CreateKey", {"Alias": "replay-target"}))
    body = json.dumps({"KeyId": created["KeyId"]}).encode()
    stamp = int(time.time())
    first = signed_post(server, "DescribeKey", body, timestamp=stamp)
    assert "Error" not in envelope(first)

    def replayed(action):
        return requests.post(f"http://{server.endpoint}/", data=body, timeout=10,
                             headers={**first.request.headers, "X-TC-Action": action})

    assert error_code(replayed("DisableKey")) == "AuthFailure.SignatureFailure"
    assert error_code(replayed("GenerateDataKey")) == "AuthFailure.SignatureFailure"
    assert envelope(replayed("GetKeyRotationStatus"))["KeyRotationEnabled"] is False
    state = envelope(signed_post(server, "DescribeKey", {"KeyId": created["KeyId"]},
                                 timestamp=stamp + 1))
    assert state["KeyMetadata"]["KeyState"] == "Enabled"


def test_get_is_answered_with_an_envelope(server):
    r = requests.get(f"http://{server.endpoint}/?Action=ListKeys", timeout=10)
    assert error_code(r) == "UnsupportedOperation"
