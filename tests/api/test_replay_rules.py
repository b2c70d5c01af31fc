"""The replay rules of kms.api.tencent.signing, attacked through the
Verifier with requests signed the way the SDK signs them: a signature is
taken once under a state-changing action, never to change state after a
read-only use, reused to read only under its first action or a metadata
read; the table is keyed and fails closed, the body must be signed and the
Host may be pinned. Each rule runs against both tables."""
import hashlib
import json
import os
import stat
import time
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional

import pytest

from kms.api.tencent import replay, signing
from kms.api.tencent.action_kinds import METADATA_READS, READ_ONLY, changes_state
from kms.api.tencent.replay import SharedSeen, Use

SECRET_ID, SECRET_KEY = "AKIDreplayrules0001", "replay-rules-secret-key"
OTHER_ID, OTHER_KEY = "AKIDnopermissions01", "no-permissions-secret"
SECRETS = {SECRET_ID: SECRET_KEY, OTHER_ID: OTHER_KEY}
T0 = 1_700_000_000
KEY_BODY = json.dumps({"KeyId": "00000000-0000-0000-0000-000000000001"}).encode()
BLOB_BODY = json.dumps({"CiphertextBlob": "AAAAblob"}).encode()  # ReEncrypt's and Decrypt's shape
TABLE_KEY = b"t" * 32


def signed(body: bytes, action: str, timestamp: int = T0, host: str = "kms.example:8080",
           secret_id: str = SECRET_ID, payload_hash: Optional[str] = None) -> Dict[str, str]:
    """Headers as the SDK sends them (lower-cased, as the endpoint passes
    them): SignedHeaders content-type;host, X-TC-Action not signed."""
    date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    headers = {"content-type": "application/json", "host": host}
    canonical = signing.canonical_request("POST", "", headers, "content-type;host",
                                          payload_hash or hashlib.sha256(body).hexdigest())
    sig = signing.signature(SECRETS[secret_id], date, "kms", str(timestamp), canonical)
    return {**headers,
            "authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/kms/tc3_request, "
                             f"SignedHeaders=content-type;host, Signature={sig}",
            "x-tc-action": action, "x-tc-timestamp": str(timestamp), "x-tc-version": "2019-01-18"}


def as_action(headers: Dict[str, str], action: str) -> Dict[str, str]:
    """The attacker's edit: the same signed request under another action."""
    return {**headers, "x-tc-action": action}


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "shared"])
def make_table(request, tmp_path) -> Callable[..., object]:
    """A factory of empty tables of either kind (shared ones on one file)."""
    opened: List[SharedSeen] = []

    def make(slots: int = 256, key: bytes = TABLE_KEY, path: str = "replay.table"):
        if request.param == "local":
            return signing.LocalSeen(slots=slots, key=key)
        table = SharedSeen(str(tmp_path / path), slots=slots, key=key)
        opened.append(table)
        return table

    yield make
    for table in opened:
        table.close()


def verifier(table, clock: Clock, **kwargs) -> signing.Verifier:
    return signing.Verifier(SECRETS.get, now=clock, seen=table, **kwargs)


def refused(v: signing.Verifier, headers: Dict[str, str], body: bytes = KEY_BODY) -> signing.SignatureError:
    with pytest.raises(signing.SignatureError) as err:
        v.verify("POST", "", headers, body)
    return err.value


# ---- same-action and cross-action replays -----------------------------------


def test_state_changing_signature_is_accepted_once(make_table):
    clock = Clock()
    v = verifier(make_table(), clock)
    disable = signed(KEY_BODY, "DisableKey")
    assert v.verify("POST", "", disable, KEY_BODY) == SECRET_ID
    # The attack: the owner re-enables the key, the captured DisableKey comes back.
    clock.now += 11
    assert refused(v, disable).code == "AuthFailure.SignatureFailure"
    # Nor under any other action that changes state, nor in the same second.
    assert refused(v, as_action(disable, "ScheduleKeyDeletion")).code == "AuthFailure.SignatureFailure"
    clock.now = T0
    assert refused(v, disable).code == "AuthFailure.SignatureFailure"


def test_schedule_deletion_replayed_after_cancel_is_refused(make_table):
    clock = Clock()
    v = verifier(make_table(), clock)
    schedule = signed(json.dumps({"KeyId": "k", "PendingWindowInDays": 7}).encode(), "ScheduleKeyDeletion")
    body = json.dumps({"KeyId": "k", "PendingWindowInDays": 7}).encode()
    v.verify("POST", "", schedule, body)
    clock.now += 30
    assert refused(v, schedule, body).code == "AuthFailure.SignatureFailure"


def test_read_only_signature_reused_under_read_only_actions(make_table):
    """The honest case: the SDK signs DescribeKey and GetKeyRotationStatus of
    one key in one second identically."""
    clock = Clock()
    v = verifier(make_table(), clock)
    describe = signed(KEY_BODY, "DescribeKey")
    assert v.verify("POST", "", describe, KEY_BODY) == SECRET_ID
    assert v.verify("POST", "", as_action(describe, "GetKeyRotationStatus"), KEY_BODY) == SECRET_ID
    clock.now += 200  # and later, within the window
    assert v.verify("POST", "", describe, KEY_BODY) == SECRET_ID


def test_read_only_signature_is_refused_under_a_state_change(make_table):
    clock = Clock()
    v = verifier(make_table(), clock)
    describe = signed(KEY_BODY, "DescribeKey")
    v.verify("POST", "", describe, KEY_BODY)
    # No grace period: not even in the same second, nor later.
    for delay in (0, 1, 11, 299):
        clock.now = T0 + delay
        err = refused(v, as_action(describe, "DisableKey"))
        assert err.code == "AuthFailure.SignatureFailure" and "already used" in str(err)
    # Read-only uses still work afterwards.
    assert v.verify("POST", "", describe, KEY_BODY) == SECRET_ID


def test_a_read_only_reuse_of_a_state_change_is_accepted(make_table):
    """DisableKey then DescribeKey of the same key in the same second, as an
    honest client checks its change: the read changes nothing."""
    v = verifier(make_table(), Clock())
    disable = signed(KEY_BODY, "DisableKey")
    v.verify("POST", "", disable, KEY_BODY)
    assert v.verify("POST", "", as_action(disable, "DescribeKey"), KEY_BODY) == SECRET_ID
    assert refused(v, as_action(disable, "EnableKey")).code == "AuthFailure.SignatureFailure"


# (first action, reuse under, accepted?) in the same second, same body: a
# reuse may not answer more than the first use did, key metadata apart.
REUSES = [
    ("DescribeKey", "GetKeyRotationStatus", True),   # the honest SDK pattern
    ("GetKeyRotationStatus", "DescribeKey", True),
    ("Decrypt", "Decrypt", True),                    # same action, same answer
    ("ReEncrypt", "ReEncrypt", True),
    ("GenerateRandom", "GenerateRandom", True),
    ("DisableKey", "DescribeKey", True),             # checking a change
    ("ScheduleKeyDeletion", "ListKeys", True),
    ("ReEncrypt", "Decrypt", False),                 # the captured rewrap read as plaintext
    ("Encrypt", "GenerateDataKey", False),
    ("Decrypt", "ReEncrypt", False),
    ("GenerateRandom", "Encrypt", False),
    ("GenerateRandom", "Decrypt", False),
    ("GenerateRandom", "ReEncrypt", False),
    ("GenerateRandom", "GenerateDataKey", False),
    ("DescribeKey", "Decrypt", False),               # a metadata read discloses no more later
    ("DisableKey", "GenerateDataKey", False),
    ("NoSuchAction", "Decrypt", False),
]


@pytest.mark.parametrize("first, then, accepted", REUSES)
def test_a_read_only_reuse_answers_no_more_than_the_first_use(make_table, first, then, accepted):
    clock = Clock()
    v = verifier(make_table(), clock)
    captured = signed(BLOB_BODY, first)
    assert v.verify("POST", "", captured, BLOB_BODY) == SECRET_ID
    clock.now += 0.5  # still the second it was signed in
    if accepted:
        assert v.verify("POST", "", as_action(captured, then), BLOB_BODY) == SECRET_ID
    else:
        err = refused(v, as_action(captured, then), BLOB_BODY)
        assert err.code == "AuthFailure.SignatureFailure"
        assert "another action" in str(err) and "afresh" in str(err)
    # The first action is what was recorded, whatever came after: it stays
    # the one that may be repeated, and a refused reuse changed nothing.
    if not changes_state(first):
        assert v.verify("POST", "", captured, BLOB_BODY) == SECRET_ID
    assert refused(v, as_action(captured, "Decrypt" if first != "Decrypt" else "ReEncrypt"),
                   BLOB_BODY).code == "AuthFailure.SignatureFailure"


def test_a_refused_reuse_does_not_change_the_recorded_action(make_table):
    """An attacker presenting the signature under several actions in turn
    never gets a second "first use"."""
    v = verifier(make_table(), Clock())
    rewrap = signed(BLOB_BODY, "ReEncrypt")
    v.verify("POST", "", rewrap, BLOB_BODY)
    for action in ("DescribeKey", "Decrypt", "DisableKey", "Encrypt", "Decrypt"):
        try:
            v.verify("POST", "", as_action(rewrap, action), BLOB_BODY)
        except signing.SignatureError:
            pass
    assert refused(v, as_action(rewrap, "Decrypt"), BLOB_BODY).code == "AuthFailure.SignatureFailure"
    assert v.verify("POST", "", rewrap, BLOB_BODY) == SECRET_ID


def test_the_same_action_is_compared_exactly(make_table):
    """Another spelling of the action is another (unknown, so state-changing)
    action, not the same one."""
    v = verifier(make_table(), Clock())
    decrypt = signed(BLOB_BODY, "Decrypt")
    v.verify("POST", "", decrypt, BLOB_BODY)
    for action in ("decrypt", "Decrypt ", " Decrypt"):
        assert refused(v, as_action(decrypt, action), BLOB_BODY).code == "AuthFailure.SignatureFailure"


def test_a_reuse_within_the_window_but_not_the_second(make_table):
    """The rule depends on the first action, not on time: 200 s later the
    same reuses are answered the same way."""
    clock = Clock()
    v = verifier(make_table(), clock)
    rewrap = signed(BLOB_BODY, "ReEncrypt")
    v.verify("POST", "", rewrap, BLOB_BODY)
    clock.now += 200
    assert refused(v, as_action(rewrap, "Decrypt"), BLOB_BODY).code == "AuthFailure.SignatureFailure"
    assert v.verify("POST", "", as_action(rewrap, "DescribeKey"), BLOB_BODY) == SECRET_ID
    assert v.verify("POST", "", rewrap, BLOB_BODY) == SECRET_ID


def test_requests_signed_afresh_work(make_table):
    clock = Clock()
    v = verifier(make_table(), clock)
    v.verify("POST", "", signed(KEY_BODY, "DisableKey", T0), KEY_BODY)
    clock.now += 1
    assert v.verify("POST", "", signed(KEY_BODY, "EnableKey", T0 + 1), KEY_BODY) == SECRET_ID


def test_unknown_and_missing_actions_count_as_state_changes(make_table):
    v = verifier(make_table(), Clock())
    describe = signed(KEY_BODY, "DescribeKey")
    v.verify("POST", "", describe, KEY_BODY)
    for action in ("", "NoSuchAction", "describekey"):
        assert refused(v, as_action(describe, action)).code == "AuthFailure.SignatureFailure"


def test_action_kinds():
    assert READ_ONLY == {"DescribeKey", "DescribeKeys", "ListKeys", "ListKeyDetail",
                         "GetKeyRotationStatus", "GetServiceStatus", "ListAlgorithms", "GetRegions",
                         "GenerateRandom", "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
                         "GetPublicKey", "SignByAsymmetricKey", "VerifyByAsymmetricKey",
                         "AsymmetricRsaDecrypt", "AsymmetricSm2Decrypt"}
    assert METADATA_READS == {"DescribeKey", "DescribeKeys", "ListKeys", "ListKeyDetail",
                              "GetKeyRotationStatus", "GetServiceStatus", "ListAlgorithms", "GetRegions"}
    assert METADATA_READS <= READ_ONLY  # a metadata read changes nothing either
    assert not any(changes_state(a) for a in READ_ONLY)
    for action in ("DisableKey", "EnableKey", "ScheduleKeyDeletion", "CancelKeyDeletion",
                   "GetParametersForImport", "ImportKeyMaterial", "CreateKey", "", "Nope"):
        assert changes_state(action), action


def test_read_only_names_real_actions():
    """A misspelt entry would leave the real action failing closed, but
    hide the mistake; a new read-only action must be added on purpose."""
    from kms.api.tencent.actions import ACTIONS
    assert READ_ONLY <= set(ACTIONS)


def test_workers_sharing_the_file_see_each_others_signatures(tmp_path):
    path = str(tmp_path / "replay.table")
    a, b = SharedSeen(path, slots=64, key=TABLE_KEY), SharedSeen(path, slots=64, key=TABLE_KEY)
    try:
        clock = Clock()
        describe = signed(KEY_BODY, "DescribeKey")
        verifier(a, clock).verify("POST", "", describe, KEY_BODY)
        clock.now += 10
        assert refused(verifier(b, clock), as_action(describe, "DisableKey")).code == "AuthFailure.SignatureFailure"
        # The first action is shared too: the other worker knows what it was.
        rewrap = signed(BLOB_BODY, "ReEncrypt")
        verifier(a, clock).verify("POST", "", rewrap, BLOB_BODY)
        assert refused(verifier(b, clock), as_action(rewrap, "Decrypt"), BLOB_BODY).code == "AuthFailure.SignatureFailure"
        assert verifier(b, clock).verify("POST", "", rewrap, BLOB_BODY) == SECRET_ID
    finally:
        a.close()
        b.close()


# ---- the table: keyed, bounded, failing closed -------------------------------


def test_fingerprints_depend_on_the_key(make_table):
    sig = "ab" * 32
    one, two = make_table(slots=1 << 16, key=b"1" * 32, path="one"), make_table(slots=1 << 16, key=b"2" * 32, path="two")
    assert one.fingerprint(sig) != two.fingerprint(sig)
    assert one.fingerprint(sig) % one.slots != two.fingerprint(sig) % two.slots
    unkeyed = int.from_bytes(hashlib.blake2b(sig.encode(), digest_size=8).digest(), "little")
    assert unkeyed not in (one.fingerprint(sig), two.fingerprint(sig))


def test_a_table_refuses_to_be_unkeyed(tmp_path):
    with pytest.raises(ValueError):
        SharedSeen(str(tmp_path / "replay.table"), slots=64, key=b"")
    with pytest.raises(TypeError):
        SharedSeen(str(tmp_path / "replay.table"), slots=64)  # type: ignore[call-arg]
    assert not (tmp_path / "replay.table").exists()


def test_a_full_table_refuses_new_signatures_instead_of_evicting(make_table):
    """The grinding attack: an account with no permissions floods the table
    to push out a captured signature, then replays it as DisableKey."""
    slots = 16  # below PROBE: the whole table is one probe run
    clock = Clock()
    v = verifier(make_table(slots=slots), clock)
    captured = signed(KEY_BODY, "DescribeKey")
    v.verify("POST", "", captured, KEY_BODY)
    flood = [json.dumps({"NumberOfBytes": n}).encode() for n in range(1, 200)]
    accepted = 0
    for body in flood:
        try:
            v.verify("POST", "", signed(body, "GenerateRandom", secret_id=OTHER_ID), body)
            accepted += 1
        except signing.SignatureError as exc:
            assert exc.code == "RequestLimitExceeded" and "replay table is full" in str(exc)
            break
    assert accepted == slots - 1
    # Full of live entries: the captured signature is still remembered...
    assert refused(v, as_action(captured, "DisableKey")).code == "AuthFailure.SignatureFailure"
    # ...and nobody's new signature is taken, the owner's included.
    fresh = signed(KEY_BODY, "DisableKey", T0 + 1)
    assert refused(v, fresh).code == "RequestLimitExceeded"
    # A signature already recorded may still be reused under read-only actions.
    assert v.verify("POST", "", captured, KEY_BODY) == SECRET_ID
    # Once the entries expire (timestamp + 300 s), new signatures are taken again.
    clock.now = T0 + signing.WINDOW_SECONDS + 1
    late = signed(KEY_BODY, "DisableKey", int(clock.now))
    assert v.verify("POST", "", late, KEY_BODY) == SECRET_ID


def test_entries_live_until_timestamp_plus_window(make_table):
    table = make_table(slots=64)
    expires = T0 + signing.WINDOW_SECONDS
    # First used late in its window: it is still kept until its own expiry...
    assert table.use("sig", "Decrypt", expires, T0 + 250) is Use.NEW
    assert table.use("sig", "Decrypt", expires, expires) is Use.SAME
    assert table.use("sig", "ReEncrypt", expires, expires) is Use.OTHER
    # ...and not a moment longer (by then the signature is refused as expired).
    assert table.use("sig", "ReEncrypt", expires + 1, expires + 0.5) is Use.NEW
    # Then it is recorded afresh, with the action of that use.
    assert table.use("sig", "Decrypt", expires + 1, expires + 0.5) is Use.OTHER


def test_the_action_tag_is_keyed_and_bound_to_the_signature(make_table):
    one, two = make_table(key=b"1" * 32, path="one"), make_table(key=b"2" * 32, path="two")
    sig = "cd" * 32
    assert one.action_tag(sig, "Decrypt") != two.action_tag(sig, "Decrypt")
    assert one.action_tag(sig, "Decrypt") != one.action_tag("ef" * 32, "Decrypt")
    assert one.action_tag(sig, "Decrypt") != one.action_tag(sig, "ReEncrypt")
    assert 0 < one.action_tag(sig, "") < 1 << 32


def test_entries_beyond_any_possible_expiry_do_not_block_the_table(make_table):
    """After the clock went back, or in a damaged file, an entry claiming to
    live longer than a signature can is free: its signature is out of the
    window anyway, so a full table of them does not lock everyone out."""
    table = make_table(slots=8)
    for n in range(8):
        assert table.use(f"sig-{n}", "Encrypt", T0 + 10_000, T0) is Use.NEW
    assert table.use("another", "Encrypt", T0 + 300, T0) is Use.NEW
    assert replay.MAX_LIFETIME == 2 * signing.WINDOW_SECONDS


def test_the_default_table_is_sized_as_documented():
    assert replay.SLOT.size == 16  # fingerprint 8, expiry 4, action tag 4
    assert replay.SLOTS == 1 << 21 and replay.SLOTS * replay.SLOT.size == 32 << 20
    assert replay.PROBE == 128


def test_the_table_file_is_private_preallocated_and_recreated_at_its_size(tmp_path):
    """Preallocated, not sparse: writing to a hole of a mapped file on a full
    disk raises SIGBUS, which would kill the worker."""
    path = tmp_path / "replay.table"
    path.write_bytes(os.urandom(4096 * 16))  # the old format: no header, unkeyed entries
    os.chmod(path, 0o644)
    table = SharedSeen(str(path), slots=4096, key=TABLE_KEY)
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_size == 16 + 4096 * 16
    assert info.st_blocks * 512 >= info.st_size
    # The old entries are gone, not read as live garbage.
    assert table.live(T0) == []
    for n in range(64):
        assert table.use(f"sig-{n}", "Encrypt", T0 + 300, T0) is Use.NEW
    table.close()
    # A fresh file, and one punched with holes (copied sparse), are allocated too.
    fresh = tmp_path / "fresh.table"
    SharedSeen(str(fresh), slots=4096, key=TABLE_KEY).close()
    assert fresh.stat().st_blocks * 512 >= fresh.stat().st_size
    with open(fresh, "r+b") as f:
        f.truncate(16)
        f.truncate(16 + 4096 * 16)
    assert fresh.stat().st_blocks * 512 < fresh.stat().st_size
    SharedSeen(str(fresh), slots=4096, key=TABLE_KEY).close()
    assert fresh.stat().st_blocks * 512 >= fresh.stat().st_size


def test_resizing_keeps_live_signatures(tmp_path):
    """A restart with another --replay-slots must not forget the signatures
    of the last five minutes (they could be replayed)."""
    path = str(tmp_path / "replay.table")
    now = time.time()
    small = SharedSeen(path, slots=32, key=TABLE_KEY)
    for n in range(20):
        small.use(f"sig-{n}", "ReEncrypt", int(now) + 300, now)
    small.use("expired", "ReEncrypt", int(now) - 10, now - 20)
    small.close()
    bigger = SharedSeen(path, slots=1024, key=TABLE_KEY)
    assert os.path.getsize(path) == 16 + 1024 * 16
    # Their first actions are carried over as well.
    assert [bigger.use(f"sig-{n}", "ReEncrypt", int(now) + 300, now) for n in range(10)] == [Use.SAME] * 10
    assert [bigger.use(f"sig-{n}", "Decrypt", int(now) + 300, now) for n in range(10, 20)] == [Use.OTHER] * 10
    assert bigger.use("expired", "ReEncrypt", int(now) + 300, now) is Use.NEW
    bigger.close()
    # Shrinking below the live entries would forget some: refused, file kept.
    with pytest.raises(RuntimeError, match="do not fit"):
        SharedSeen(path, slots=8, key=TABLE_KEY)
    assert os.path.getsize(path) == 16 + 1024 * 16
    again = SharedSeen(path, slots=1024, key=TABLE_KEY)
    assert again.use("sig-0", "ReEncrypt", int(now) + 300, now) is Use.SAME
    again.close()


def test_the_local_table_is_bounded_too():
    table = signing.LocalSeen(slots=4)
    assert [table.use(f"s{n}", "Encrypt", T0 + 300, T0) for n in range(5)] == [Use.NEW] * 4 + [Use.FULL]
    assert signing.LocalSeen().slots == signing.LOCAL_SLOTS


# ---- the body must be signed -------------------------------------------------


def test_unsigned_payload_is_refused(make_table):
    """The attack: sign with UNSIGNED-PAYLOAD, then swap the body."""
    v = verifier(make_table(), Clock())
    unsigned = hashlib.sha256(b"UNSIGNED-PAYLOAD").hexdigest()
    swapped = json.dumps({"KeyId": "someone-elses-key"}).encode()
    for body in (KEY_BODY, swapped):
        headers = {**signed(KEY_BODY, "ScheduleKeyDeletion", payload_hash=unsigned),
                   "x-tc-content-sha256": "UNSIGNED-PAYLOAD"}
        err = refused(v, headers, body)
        assert err.code == "AuthFailure.InvalidAuthorization" and "UNSIGNED-PAYLOAD" in str(err)


def test_declared_content_hash_must_match_the_body(make_table):
    v = verifier(make_table(), Clock())
    headers = signed(KEY_BODY, "DescribeKey")
    wrong = {**headers, "x-tc-content-sha256": hashlib.sha256(b"another body").hexdigest()}
    assert refused(v, wrong).code == "AuthFailure.SignatureFailure"
    assert refused(v, {**headers, "x-tc-content-sha256": "nonsense"}).code == "AuthFailure.SignatureFailure"
    right = {**headers, "x-tc-content-sha256": hashlib.sha256(KEY_BODY).hexdigest().upper()}
    assert v.verify("POST", "", right, KEY_BODY) == SECRET_ID


# ---- allowed hosts ------------------------------------------------------------


@pytest.mark.parametrize("host, ok", [
    ("kms.example:8080", True),
    ("KMS.Example:443", True),       # no port in the entry: any port, any case
    ("kms.example", True),
    ("10.0.0.5:8443", True),
    ("10.0.0.5:8444", False),        # a port in the entry must match
    ("10.0.0.5", False),
    ("[::1]:9000", True),
    ("evil.example:8080", False),
    ("kms.example.evil.example", False),
    ("kms.example:", False),
    ("", False),
])
def test_allowed_hosts(make_table, host, ok):
    v = verifier(make_table(), Clock(), allowed_hosts=["kms.example", "10.0.0.5:8443", "::1"])
    headers = signed(KEY_BODY, "DescribeKey", host=host)
    if ok:
        assert v.verify("POST", "", headers, KEY_BODY) == SECRET_ID
    else:
        err = refused(v, headers)
        assert err.code == "AuthFailure.SignatureFailure" and "Host" in str(err)


def test_a_refused_host_is_not_echoed_at_length(make_table):
    v = verifier(make_table(), Clock(), allowed_hosts=["kms.example"])
    host = "x" * 5000
    err = refused(v, signed(KEY_BODY, "DescribeKey", host=host))
    assert "x" * 64 in str(err) and "x" * 65 not in str(err)


def test_any_host_by_default(make_table):
    v = verifier(make_table(), Clock())
    assert v.verify("POST", "", signed(KEY_BODY, "DescribeKey", host="anything:1"), KEY_BODY) == SECRET_ID


def test_a_malformed_allowed_host_is_refused_at_start():
    with pytest.raises(ValueError):
        signing.Verifier(SECRETS.get, allowed_hosts=["kms.example:http"])


def test_an_absurd_timestamp_is_refused_cleanly(make_table):
    v = verifier(make_table(), Clock())
    headers = {**signed(KEY_BODY, "DescribeKey"), "x-tc-timestamp": "9" * 5000}
    assert refused(v, headers).code == "AuthFailure.InvalidAuthorization"
