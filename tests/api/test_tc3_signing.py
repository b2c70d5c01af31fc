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
    """The rules of kms.api.tencent.signing with the Verifier's own default
    table and the known-answer request (a DescribeKey)."""
    clock = [1700000010.0]
    secrets = {"AKIDEXAMPLE123": "SecretKeyExample456"}
    verifier = signing.Verifier(secrets.get, now=lambda: clock[0])
    verifier.verify("POST", "", HEADERS, BODY)
    clock[0] += 1
    # Never to change state after a read, however soon or late.
    for action in ("DisableKey", "ScheduleKeyDeletion"):
        with pytest.raises(signing.SignatureError, match="already used"):
            verifier.verify("POST", "", {**HEADERS, "x-tc-action": action}, BODY)
    # To read, only again as itself or as another metadata read.
    with pytest.raises(signing.SignatureError, match="another action.*afresh"):
        verifier.verify("POST", "", {**HEADERS, "x-tc-action": "GenerateDataKey"}, BODY)
    for action in ("GetKeyRotationStatus", "DescribeKey"):
        assert verifier.verify("POST", "", {**HEADERS, "x-tc-action": action}, BODY) == "AKIDEXAMPLE123"


def test_identical_repeat_of_the_same_action_is_accepted():
    """The SDK signs identical requests within one second identically."""
    verifier = _verifier()
    assert verifier.verify("POST", "", HEADERS, BODY) == verifier.verify("POST", "", HEADERS, BODY)


_WORKER = """
import sys
from kms.api.tencent.replay import SharedSeen
path, now, actions = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
table = SharedSeen(path, slots=1024, key=b"k" * 32)
for n in range(200):
    for action in actions:
        print(n, action, table.use(f"sig-{n}", action, int(now) + 300, now).name)
"""


def test_shared_table_catches_replays_across_processes(tmp_path):
    """Processes on one file (as the server's workers are) see each other's
    signatures and first actions, and the flock makes one of them, and only
    one, the first to use a signature, however they race."""
    import subprocess
    import sys
    import time

    from kms.api.tencent.replay import SharedSeen, Use

    path, now = str(tmp_path / "replay.table"), time.time()
    SharedSeen(path, slots=1024, key=b"k" * 32).close()  # made once, not raced
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, path, str(now), *actions],
                                stdout=subprocess.PIPE, text=True)
               for actions in (["ReEncrypt", "Decrypt"], ["Decrypt", "ReEncrypt"],
                               ["ReEncrypt"], ["Decrypt"])]
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    firsts = {}
    for line in "".join(outputs).splitlines():
        n, action, use = line.split()
        if use == "NEW":
            assert n not in firsts, f"sig-{n} was new twice"
            firsts[n] = action
        assert use in ("NEW", "SAME", "OTHER"), line
    assert len(firsts) == 200
    # This process reads what they recorded.
    table = SharedSeen(path, slots=1024, key=b"k" * 32)
    try:
        for n, action in firsts.items():
            other = "Decrypt" if action == "ReEncrypt" else "ReEncrypt"
            assert table.use(f"sig-{n}", action, int(now) + 300, now) is Use.SAME
            assert table.use(f"sig-{n}", other, int(now) + 300, now) is Use.OTHER
    finally:
        table.close()
