"""TC3-HMAC-SHA256 against the known-answer vector the SDK produced
(spec/tencent-kms-api.md, section 1.6), and the refusals."""
import hashlib

import pytest

from kms.api.tencent import signing

BODY = b'{"KeyId": "00000000-0000-0000-0000-000000000001"}'
SIG = "387131485675b443d845d6d04af7be417bc73b2b90b3913b49a16db108e07be8"
HEADERS = {
    "authorization": "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE123/2023-11-14/kms/tc3_request, "
                     f"SignedHeaders=content-type;host, Signature={SIG}",
    "content-type": "application/json",
    "host": "127.0.0.1:8080",
    "x-tc-timestamp": "1700000000",
    "x-tc-action": "DescribeKey",
}


def _verifier(now=1700000100.0):
    secrets = {"AKIDEXAMPLE123": "SecretKeyExample456"}
    return signing.Verifier(secrets.get, now=lambda: now)


def test_known_answer_vector():
    payload = hashlib.sha256(BODY).hexdigest()
    assert payload == "f0acb0a103e618b2d1e5718d8ba096f38bd8ec3d5d82d54cbb7eaff7f0e5c5a7"
    canonical = signing.canonical_request("POST", "", HEADERS, "content-type;host", payload)
    assert hashlib.sha256(canonical.encode()).hexdigest() == "c183adcad0d4017dc736187c0e39fa040abf5d27d9984b0d8eadf55188b3caee"
    assert signing.signature("SecretKeyExample456", "2023-11-14", "kms", "1700000000", canonical) == SIG
    assert _verifier().verify("POST", "", HEADERS, BODY) == "AKIDEXAMPLE123"


@pytest.mark.parametrize("change, code", [
    ({"authorization": None}, "AuthFailure.InvalidAuthorization"),
    ({"authorization": "HMAC-SHA1 whatever"}, "AuthFailure.InvalidAuthorization"),
    ({"authorization": HEADERS["authorization"].replace("AKIDEXAMPLE123", "AKIDNOBODY")}, "AuthFailure.SecretIdNotFound"),
    ({"authorization": HEADERS["authorization"].replace(SIG, "0" * 64)}, "AuthFailure.SignatureFailure"),
    ({"host": "127.0.0.1:8081"}, "AuthFailure.SignatureFailure"),
    ({"x-tc-timestamp": "1700000001"}, "AuthFailure.SignatureFailure"),
    ({"x-tc-timestamp": "soon"}, "AuthFailure.InvalidAuthorization"),
])
def test_refusals(change, code):
    headers = {**HEADERS, **change}
    headers = {k: v for k, v in headers.items() if v is not None}
    with pytest.raises(signing.SignatureError) as err:
        _verifier().verify("POST", "", headers, BODY)
    assert err.value.code == code


def test_changed_body_fails():
    with pytest.raises(signing.SignatureError) as err:
        _verifier().verify("POST", "", HEADERS, BODY.replace(b"1", b"2"))
    assert err.value.code == "AuthFailure.SignatureFailure"


def test_expired_timestamp():
    with pytest.raises(signing.SignatureError) as err:
        _verifier(now=1700000000 + 301).verify("POST", "", HEADERS, BODY)
    assert err.value.code == "AuthFailure.SignatureExpire"


def test_signature_replayed_under_another_action_is_refused():
    clock = [1700000010.0]
    secrets = {"AKIDEXAMPLE123": "SecretKeyExample456"}
    verifier = signing.Verifier(secrets.get, now=lambda: clock[0])
    verifier.verify("POST", "", HEADERS, BODY)
    # Within the grace period an honest client may send the same body under
    # another action in the same second (DisableKey, then DescribeKey).
    clock[0] += 1
    verifier.verify("POST", "", {**HEADERS, "x-tc-action": "DisableKey"}, BODY)
    clock[0] += 5
    with pytest.raises(signing.SignatureError, match="already used for another action"):
        verifier.verify("POST", "", {**HEADERS, "x-tc-action": "ScheduleKeyDeletion"}, BODY)


def test_identical_repeat_of_the_same_action_is_accepted():
    """The SDK signs identical requests within one second identically."""
    verifier = _verifier()
    assert verifier.verify("POST", "", HEADERS, BODY) == verifier.verify("POST", "", HEADERS, BODY)


def test_shared_table_catches_replays_across_processes(tmp_path):
    """Two tables on one file stand for two workers."""
    from kms.api.tencent.replay import SharedSeen

    a, b = SharedSeen(str(tmp_path / "replay.table"), slots=64), SharedSeen(str(tmp_path / "replay.table"), slots=64)
    assert a.first_use("sig-1", "DescribeKey", 1000.0, 600) is None
    assert b.first_use("sig-1", "DisableKey", 1010.0, 600) == ("other", 1000.0)
    assert b.first_use("sig-1", "DescribeKey", 1010.0, 600) == ("same", 1000.0)
    # Past the window the slot is free again.
    assert a.first_use("sig-1", "DisableKey", 1700.0, 600) is None
    # A full table evicts the oldest entries and keeps working.
    for i in range(500):
        a.first_use(f"flood-{i}", "Encrypt", 2000.0 + i / 100, 600)
    assert b.first_use("flood-499", "Decrypt", 2010.0, 600) == ("other", 2004.0)


def test_verifier_uses_the_shared_table(tmp_path):
    from kms.api.tencent.replay import SharedSeen

    secrets = {"AKIDEXAMPLE123": "SecretKeyExample456"}
    path = str(tmp_path / "replay.table")
    clock = [1700000010.0]
    first = signing.Verifier(secrets.get, now=lambda: clock[0], seen=SharedSeen(path))
    second = signing.Verifier(secrets.get, now=lambda: clock[0], seen=SharedSeen(path))
    first.verify("POST", "", HEADERS, BODY)
    clock[0] += 10
    with pytest.raises(signing.SignatureError, match="another action"):
        second.verify("POST", "", {**HEADERS, "x-tc-action": "ScheduleKeyDeletion"}, BODY)
