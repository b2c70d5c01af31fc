"""Replay attacks against real ``kms server`` processes, with requests
signed the way the SDK signs them (Content-Type and Host signed, X-TC-Action
not) and sent with requests: each attack once let a captured signature
change a key's state or answer more than it first did, and must now be
refused with the key left as it was and nothing disclosed. The honest cases
(the official SDK) keep working."""
import hashlib
import json
import time
import types
from datetime import datetime, timezone
from typing import Any, Dict, Optional

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.kms.v20190118 import models

from conftest import ROOT_ID, ROOT_KEY, Server, sdk_client, server_fixture
from kms.api.tencent import signing
from kms.cli import main

Signed = Dict[str, str]
_last_stamp: Dict[Any, int] = {}  # (port, secret id, body) -> newest timestamp signed


def sign(server: Server, action: str, body: bytes, secret_id: str = ROOT_ID,
         secret_key: str = ROOT_KEY, timestamp: Optional[int] = None, host: Optional[str] = None,
         payload_hash: Optional[str] = None) -> Signed:
    """The headers the SDK would send. Without a timestamp, a fresh one: a
    second after the last one used for this body if need be (an honest
    client signing afresh; the window allows timestamps slightly ahead)."""
    if timestamp is None:
        previous = _last_stamp.get((server.port, secret_id, body), 0)
        timestamp = max(int(time.time()), previous + 1)
    _last_stamp[(server.port, secret_id, body)] = max(timestamp, _last_stamp.get((server.port, secret_id, body), 0))
    date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    headers = {"content-type": "application/json", "host": host or server.endpoint}
    canonical = signing.canonical_request("POST", "", headers, "content-type;host",
                                          payload_hash or hashlib.sha256(body).hexdigest())
    sig = signing.signature(secret_key, date, "kms", str(timestamp), canonical)
    return {"Content-Type": "application/json", "Host": headers["host"], "X-TC-Action": action,
            "X-TC-Timestamp": str(timestamp), "X-TC-Version": "2019-01-18",
            "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/kms/tc3_request, "
                             f"SignedHeaders=content-type;host, Signature={sig}"}


def send(server: Server, headers: Signed, body: bytes) -> Dict[str, Any]:
    """The Response object of one raw request."""
    answer = requests.post(f"http://127.0.0.1:{server.port}/", data=body, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    response = answer.json()["Response"]
    assert response["RequestId"]
    return response


def error(response: Dict[str, Any]) -> Optional[str]:
    return response.get("Error", {}).get("Code")


def as_action(headers: Signed, action: str) -> Signed:
    """The attacker's only edit: the action, which is not signed."""
    return {**headers, "X-TC-Action": action}


def body_of(**params: Any) -> bytes:
    return json.dumps(params).encode()


def call(server: Server, action: str, **params: Any) -> Dict[str, Any]:
    """An honest call, freshly signed, that must succeed."""
    body = body_of(**params)
    response = send(server, sign(server, action, body), body)
    assert error(response) is None, response
    return response


def state(server: Server, key: str) -> str:
    return call(server, "DescribeKey", KeyId=key)["KeyMetadata"]["KeyState"]


# The settings come from the environment (so that the tests do not depend
# on the command line flags); none of the caller's reach the module's server.
NO_SETTINGS = {"KMS_ALLOWED_HOSTS": None, "KMS_REPLAY_SLOTS": None}

server = server_fixture("replay", workers=2, env=NO_SETTINGS)  # a replay reaches either worker


# ---- the attacks ---------------------------------------------------------------


def test_disable_key_replayed_after_enable_is_refused(server):
    key = call(server, "CreateKey", Alias="replay-disable")["KeyId"]
    body = body_of(KeyId=key)
    captured = sign(server, "DisableKey", body)
    assert error(send(server, captured, body)) is None
    call(server, "EnableKey", KeyId=key)
    assert state(server, key) == "Enabled"
    for _ in range(4):  # connections land on both workers
        replay = send(server, captured, body)
        assert error(replay) == "AuthFailure.SignatureFailure", replay
    assert state(server, key) == "Enabled"


def test_schedule_deletion_replayed_after_cancel_is_refused(server):
    key = call(server, "CreateKey", Alias="replay-schedule")["KeyId"]
    call(server, "DisableKey", KeyId=key)  # deletion is scheduled only for disabled keys
    body = body_of(KeyId=key, PendingWindowInDays=7)
    captured = sign(server, "ScheduleKeyDeletion", body)
    assert error(send(server, captured, body)) is None
    assert state(server, key) == "PendingDelete"
    call(server, "CancelKeyDeletion", KeyId=key)
    assert state(server, key) == "Disabled"
    for _ in range(4):
        assert error(send(server, captured, body)) == "AuthFailure.SignatureFailure"
    assert state(server, key) == "Disabled"


def test_describe_key_signature_replayed_as_disable_key_is_refused(server):
    key = call(server, "CreateKey", Alias="replay-cross")["KeyId"]
    body = body_of(KeyId=key)
    captured = sign(server, "DescribeKey", body)
    assert error(send(server, captured, body)) is None
    # At once: the old rule let this through for 2 s.
    replay = send(server, as_action(captured, "DisableKey"), body)
    assert error(replay) == "AuthFailure.SignatureFailure", replay
    assert "already used" in replay["Error"]["Message"]
    for action in ("ScheduleKeyDeletion", "ArchiveKey", "NoSuchAction"):
        assert error(send(server, as_action(captured, action), body)) == "AuthFailure.SignatureFailure"
    assert state(server, key) == "Enabled"


def test_reencrypt_signature_replayed_as_decrypt_discloses_nothing(server):
    """The attack: ReEncrypt {"CiphertextBlob": X} answers only a new
    ciphertext; the same signed body as Decrypt would answer X's plaintext."""
    key = call(server, "CreateKey", Alias="replay-rewrap")["KeyId"]
    blob = call(server, "Encrypt", KeyId=key, Plaintext="c2VjcmV0")["CiphertextBlob"]
    body = body_of(CiphertextBlob=blob)
    captured = sign(server, "ReEncrypt", body)
    first = send(server, captured, body)
    assert error(first) is None and "Plaintext" not in first, first
    for _ in range(4):  # connections land on both workers
        replay = send(server, as_action(captured, "Decrypt"), body)
        assert error(replay) == "AuthFailure.SignatureFailure", replay
        assert "Plaintext" not in replay and "c2VjcmV0" not in json.dumps(replay)
        assert "afresh" in replay["Error"]["Message"]
    # Nor as any other read that answers more than metadata...
    for action in ("GenerateDataKey", "Encrypt", "GenerateRandom"):
        assert error(send(server, as_action(captured, action), body)) == "AuthFailure.SignatureFailure"
    # ...while the same action again answers what it answered.
    again = send(server, captured, body)
    assert error(again) is None and again["CiphertextBlob"] and "Plaintext" not in again
    # The owner's own Decrypt, signed afresh, works.
    assert call(server, "Decrypt", CiphertextBlob=blob)["Plaintext"] == "c2VjcmV0"


def test_unsigned_payload_with_a_swapped_body_is_refused(server):
    key = call(server, "CreateKey", Alias="replay-unsigned")["KeyId"]
    unsigned = hashlib.sha256(b"UNSIGNED-PAYLOAD").hexdigest()
    headers = {**sign(server, "ScheduleKeyDeletion", body_of(KeyId="whatever"), payload_hash=unsigned),
               "X-TC-Content-SHA256": "UNSIGNED-PAYLOAD"}
    swapped = body_of(KeyId=key, PendingWindowInDays=7)
    refused = send(server, headers, swapped)
    assert error(refused) == "AuthFailure.InvalidAuthorization", refused
    assert "UNSIGNED-PAYLOAD" in refused["Error"]["Message"]
    # A declared hash must be the body's.
    body = body_of(KeyId=key)
    declared = {**sign(server, "DisableKey", body), "X-TC-Content-SHA256": hashlib.sha256(swapped).hexdigest()}
    assert error(send(server, declared, body)) == "AuthFailure.SignatureFailure"
    assert state(server, key) == "Enabled"
    honest = {**sign(server, "DisableKey", body), "X-TC-Content-SHA256": hashlib.sha256(body).hexdigest()}
    assert error(send(server, honest, body)) is None
    assert state(server, key) == "Disabled"


# ---- grinding the table ---------------------------------------------------------


def test_grinding_the_table_cannot_push_out_a_captured_signature(tmp_path, capsys):
    slots = 40  # below the probe length: the whole table is one run
    with Server(str(tmp_path / "data"), env={**NO_SETTINGS, "KMS_REPLAY_SLOTS": str(slots)}) as srv:
        key = call(srv, "CreateKey", Alias="ground")["KeyId"]
        body = body_of(KeyId=key)
        captured = sign(srv, "DescribeKey", body)
        assert error(send(srv, captured, body)) is None

        capsys.readouterr()
        assert main(["accounts", "create", "grinder", "--data-dir", srv.data_dir]) == 0
        grinder = json.loads(capsys.readouterr().out)
        # The grinder's own signatures are dated 280 s back, so they expire
        # within 20 s, and the test can watch the table take new ones again.
        stamp = int(time.time()) - 280
        outcomes = []
        for n in range(1, 3 * slots):
            flood = body_of(NumberOfBytes=n)
            headers = sign(srv, "GenerateRandom", flood, grinder["SecretId"], grinder["SecretKey"], stamp)
            outcomes.append(error(send(srv, headers, flood)))
            if outcomes[-1] == "RequestLimitExceeded":
                break
        # Every request verified and was recorded (and then refused for want
        # of permissions) until the table was full; then refused outright.
        assert outcomes[-1] == "RequestLimitExceeded", outcomes
        assert set(outcomes[:-1]) == {"UnauthorizedOperation"} and len(outcomes) <= slots

        # The captured signature was not evicted: it cannot change state...
        replay = send(srv, as_action(captured, "DisableKey"), body)
        assert error(replay) == "AuthFailure.SignatureFailure", replay
        # ...new signatures are refused while the table is full of live
        # entries, the owner's included, with a message that says why...
        full = send(srv, sign(srv, "DisableKey", body), body)
        assert error(full) == "RequestLimitExceeded"
        assert "replay table is full" in full["Error"]["Message"]
        # ...and reading with an already recorded signature still works.
        assert send(srv, captured, body)["KeyMetadata"]["KeyState"] == "Enabled"

        # Once the flood expires (timestamp + 300 s) new signatures are taken
        # again, and the captured one, still live, stays refused.
        deadline = time.time() + 45
        while error(send(srv, sign(srv, "GenerateRandom", body_of(NumberOfBytes=7)), body_of(NumberOfBytes=7))):
            assert time.time() < deadline, "the table never took new signatures again"
            time.sleep(0.5)
        assert error(send(srv, as_action(captured, "DisableKey"), body)) == "AuthFailure.SignatureFailure"
        assert state(srv, key) == "Enabled"


# ---- the Host header ------------------------------------------------------------


def test_a_host_not_allowed_is_refused(tmp_path):
    hosts = {**NO_SETTINGS, "KMS_ALLOWED_HOSTS": "127.0.0.1:{port}, KMS.internal"}
    with Server(str(tmp_path / "data"), env=hosts) as srv:
        body = body_of(NumberOfBytes=8)
        for host in ("evil.example", f"localhost:{srv.port}", f"127.0.0.1:{srv.port + 1}"):
            refused = send(srv, sign(srv, "GenerateRandom", body, host=host), body)
            assert error(refused) == "AuthFailure.SignatureFailure", (host, refused)
            assert "Host" in refused["Error"]["Message"]
        long_host = "h" * 1000
        message = send(srv, sign(srv, "GenerateRandom", body, host=long_host), body)["Error"]["Message"]
        assert "h" * 65 not in message
        for host in (f"127.0.0.1:{srv.port}", "kms.internal:8443", "kms.internal"):
            assert "Plaintext" in send(srv, sign(srv, "GenerateRandom", body, host=host), body), host
        # The SDK, pointed at an allowed host, works.
        request = models.GenerateRandomRequest()
        request.NumberOfBytes = 8
        assert sdk_client(srv.endpoint).GenerateRandom(request).Plaintext


# ---- honest clients -------------------------------------------------------------


def _sdk(client, action: str, **params: Any):
    request = getattr(models, action + "Request")()
    request.from_json_string(json.dumps(params))
    return getattr(client, action)(request)


@pytest.fixture
def sdk_second(monkeypatch):
    """Pins the second the SDK signs in (it reads time.time() for its
    timestamp), so that "within the same second" is certain, not likely."""
    from tencentcloud.common import abstract_client

    pinned = [int(time.time())]
    monkeypatch.setattr(abstract_client, "time", types.SimpleNamespace(time=lambda: float(pinned[0])))
    return pinned


def test_sdk_reads_in_the_same_second_keep_working(server, sdk_second):
    """DescribeKey and GetKeyRotationStatus of one key are signed
    identically within a second: both are read-only, so both are answered."""
    client = sdk_client(server.endpoint)
    key = _sdk(client, "CreateKey", Alias="honest-reads").KeyId
    sdk_second[0] += 1
    assert _sdk(client, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Enabled"
    assert _sdk(client, "GetKeyRotationStatus", KeyId=key).KeyRotationEnabled is False
    assert _sdk(client, "DescribeKey", KeyId=key).KeyMetadata.KeyId == key
    assert _sdk(client, "Encrypt", KeyId=key, Plaintext="aGk=").CiphertextBlob


def test_sdk_decrypts_in_the_same_second_keep_working(server, sdk_second):
    """Decrypt of one blob twice in a second is one signature under one
    action: answered both times."""
    client = sdk_client(server.endpoint)
    key = _sdk(client, "CreateKey", Alias="honest-decrypts").KeyId
    blob = _sdk(client, "Encrypt", KeyId=key, Plaintext="aGk=").CiphertextBlob
    sdk_second[0] += 1
    assert _sdk(client, "Decrypt", CiphertextBlob=blob).Plaintext == "aGk="
    assert _sdk(client, "Decrypt", CiphertextBlob=blob).Plaintext == "aGk="


def test_sdk_another_content_action_on_one_body_within_a_second_is_told_why(server, sdk_second):
    """The price of the rule for reads: Decrypt then ReEncrypt of one blob in
    one second carry one signature, and the second is refused with a message
    saying what to do; a second later it works."""
    client = sdk_client(server.endpoint)
    key = _sdk(client, "CreateKey", Alias="honest-rewrap").KeyId
    blob = _sdk(client, "Encrypt", KeyId=key, Plaintext="aGk=").CiphertextBlob
    sdk_second[0] += 1
    assert _sdk(client, "Decrypt", CiphertextBlob=blob).Plaintext == "aGk="
    with pytest.raises(TencentCloudSDKException) as err:
        _sdk(client, "ReEncrypt", CiphertextBlob=blob)
    assert err.value.code == "AuthFailure.SignatureFailure" and "afresh" in err.value.message
    sdk_second[0] += 1
    assert _sdk(client, "ReEncrypt", CiphertextBlob=blob).CiphertextBlob


def test_sdk_state_changes_signed_afresh_work(server, sdk_second):
    client = sdk_client(server.endpoint)
    key = _sdk(client, "CreateKey", Alias="honest-changes").KeyId
    _sdk(client, "DisableKey", KeyId=key)
    # Reading back the change in the same second: a read-only reuse.
    assert _sdk(client, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Disabled"
    sdk_second[0] += 1  # the next second: a new signature
    _sdk(client, "EnableKey", KeyId=key)
    assert _sdk(client, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Enabled"


def test_sdk_repeating_a_state_change_within_a_second_is_told_why(server, sdk_second):
    """The price of the rule: the same body changing state twice in one
    second carries the same signature, and is refused with a message saying
    what to do."""
    client = sdk_client(server.endpoint)
    key = _sdk(client, "CreateKey", Alias="honest-repeat").KeyId
    _sdk(client, "DisableKey", KeyId=key)
    with pytest.raises(TencentCloudSDKException) as err:
        _sdk(client, "EnableKey", KeyId=key)
    assert err.value.code == "AuthFailure.SignatureFailure" and "afresh" in err.value.message
    sdk_second[0] += 1
    _sdk(client, "EnableKey", KeyId=key)
    assert _sdk(client, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Enabled"
