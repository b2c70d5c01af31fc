"""Crashes, several workers on one data directory, and damaged store files,
with real server processes."""
import base64
import json
import signal
import threading
import time

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import Server, sdk_client
from test_tencent_api import b64, call


def test_acknowledged_work_survives_kill_9(tmp_path):
    server = Server(str(tmp_path / "data"))
    server.start()
    client = sdk_client(server.endpoint)
    acked_keys, acked_blobs = [], []
    stop = threading.Event()

    def burst(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                key = call(client, "CreateKey", Alias=f"crash-{worker}-{n}").KeyId
                acked_keys.append(key)
                plaintext = f"{worker}:{n}".encode()
                blob = call(client, "Encrypt", KeyId=key, Plaintext=b64(plaintext)).CiphertextBlob
                acked_blobs.append((blob, plaintext))
            except (TencentCloudSDKException, requests.RequestException):
                return  # the server died mid-request: that one was never acknowledged

    threads = [threading.Thread(target=burst, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    server.kill(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked_keys) > 20, "the burst made too few calls to mean anything"

    server.start()
    client = sdk_client(server.endpoint)
    listed = {m.KeyId for m in call(client, "ListKeyDetail", Limit=200, SearchKeyAlias="crash-").KeyMetadatas}
    total = call(client, "ListKeyDetail", Limit=1, SearchKeyAlias="crash-").TotalCount
    assert total >= len(acked_keys)
    for start in range(200, total, 200):
        listed |= {m.KeyId for m in call(client, "ListKeyDetail", Offset=start, Limit=200,
                                         SearchKeyAlias="crash-").KeyMetadatas}
    assert set(acked_keys) <= listed
    for blob, plaintext in acked_blobs:
        assert base64.b64decode(call(client, "Decrypt", CiphertextBlob=blob).Plaintext) == plaintext
    server.kill()


def test_disable_holds_in_every_worker_at_once(tmp_path):
    server = Server(str(tmp_path / "data"), workers=2)
    server.start()
    # The second worker may still be starting when the first answers.
    pids, deadline = set(), time.time() + 60
    while len(pids) < 2 and time.time() < deadline:
        pids.add(requests.get(f"http://{server.endpoint}/health", timeout=5).json()["worker"])
    assert len(pids) == 2, "both workers should be serving"
    client = sdk_client(server.endpoint)
    key = call(client, "CreateKey", Alias="shared-by-workers").KeyId
    disabled_at = []
    violations, successes_before, refusals_after = [], [0], [0]
    stop = threading.Event()

    def hammer() -> None:
        own = sdk_client(server.endpoint)
        while not stop.is_set():
            sent_after_disable = bool(disabled_at)
            try:
                call(own, "Encrypt", KeyId=key, Plaintext=b64(b"x"))
                if sent_after_disable:
                    violations.append(time.time())
                else:
                    successes_before[0] += 1
            except TencentCloudSDKException as exc:
                assert exc.code == "ResourceUnavailable.CmkDisabled", exc
                refusals_after[0] += 1

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    call(client, "DisableKey", KeyId=key)
    disabled_at.append(time.time())
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert successes_before[0] > 0 and refusals_after[0] > 50
    assert violations == [], f"{len(violations)} encryptions succeeded after DisableKey returned"

    # A signature replayed under another action is refused by every worker.
    from test_tencent_protocol import error_code, signed_post
    other = call(client, "CreateKey", Alias="replayed-across-workers").KeyId
    first = signed_post(server, "DescribeKey", json.dumps({"KeyId": other}).encode())
    time.sleep(2.5)
    for _ in range(20):  # connections land on both workers
        replay = requests.post(f"http://{server.endpoint}/", data=first.request.body, timeout=10,
                               headers={**first.request.headers, "X-TC-Action": "DisableKey"})
        assert error_code(replay) == "AuthFailure.SignatureFailure"
    assert call(client, "DescribeKey", KeyId=other).KeyMetadata.KeyState == "Enabled"
    server.kill()


@pytest.mark.parametrize("damage, expected", [
    ("flip", "checksum mismatch"),
    ("truncate", "truncated"),
])
def test_damaged_store_refuses_to_start_and_repair_keeps_the_rest(tmp_path, damage, expected):
    server = Server(str(tmp_path / "data"))
    server.start()
    client = sdk_client(server.endpoint)
    keys = [call(client, "CreateKey", Alias=f"keep-{i}").KeyId for i in range(5)]
    call(client, "CreateKey", Alias="the-last-one")
    server.kill()
    path = tmp_path / "data" / "store.log"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-20] ^= 0x10  # inside the last record
    else:
        del data[-7:]
    path.write_bytes(bytes(data))

    failed = server.start(expect_failure=True)
    assert failed.returncode == 2
    log = server.log()
    assert "store.log" in log and "at byte" in log and expected in log
    assert path.read_bytes() == bytes(data), "a refused start must not touch the store"

    from kms.cli import main
    assert main(["store", "repair", "--data-dir", str(tmp_path / "data")]) == 0
    server.start()
    client = sdk_client(server.endpoint)
    for key in keys:
        assert call(client, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Enabled"
    server.kill()


def test_a_flipped_byte_in_the_middle_loses_only_its_record(tmp_path, capsys):
    """The issue's case: 60 keys, one flipped byte in the middle, and the
    running server (which had read that record before) acknowledging 30
    more creates. Repair used to cut at the damage, losing 46 of them."""
    from kms.store.repair import scan

    server = Server(str(tmp_path / "data"))
    server.start()
    client = sdk_client(server.endpoint)
    keys = [call(client, "CreateKey", Alias=f"first-{i}").KeyId for i in range(60)]
    path = str(tmp_path / "data" / "store.log")
    records = scan(path).kept
    start, end = records[len(records) // 2]
    with open(path, "r+b") as f:
        f.seek((start + end) // 2)
        byte = f.read(1)
        f.seek((start + end) // 2)
        f.write(bytes([byte[0] ^ 0x04]))
    keys += [call(client, "CreateKey", Alias=f"after-{i}").KeyId for i in range(30)]
    server.kill()

    assert server.start(expect_failure=True).returncode == 2
    assert "checksum mismatch" in server.log()
    from kms.cli import main
    assert main(["store", "repair", "--data-dir", str(tmp_path / "data")]) == 0
    report = capsys.readouterr().out
    assert f"bytes {start}-{end}" in report and "lost 1" in report
    server.start()
    client = sdk_client(server.endpoint)
    missing = []
    for key in keys:
        try:
            call(client, "DescribeKey", KeyId=key)
        except TencentCloudSDKException as exc:
            assert exc.code == "ResourceUnavailable.CmkNotFound"
            missing.append(key)
    # Exactly the damaged record's key is gone, and the report named it.
    assert len(missing) == 1 and f"put key/{missing[0]}" in report
    server.kill()


def test_rotations_that_fell_due_while_down_happen_at_start(tmp_path):
    from kms.store import LogStore, Op

    server = Server(str(tmp_path / "data"), extra=["--scheduler-period", "3600"])
    server.start()
    client = sdk_client(server.endpoint)
    key = call(client, "CreateKey", Alias="due-while-down").KeyId
    call(client, "EnableKeyRotation", KeyId=key, RotateDays=7)
    before = call(client, "DescribeKey", KeyId=key).KeyMetadata
    server.kill()
    # Eight days pass while the server is down (the test clock lives in the store).
    store = LogStore(str(tmp_path / "data"))
    store.commit(lambda: [Op("put", "test", "clock-offset", 8 * 86400.0)])
    store.close()
    server.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        after = call(client, "DescribeKey", KeyId=key).KeyMetadata
        if after.LastRotateTime:
            break
        time.sleep(0.2)
    assert after.LastRotateTime > before.CreateTime and after.NextRotateTime > before.NextRotateTime
    server.kill()


def test_the_clock_cannot_be_shifted_without_the_test_flag(tmp_path):
    server = Server(str(tmp_path / "data"), test_clock=False)
    server.start()
    # No such route, even for root: the catch-all's 404 (without a token, its 403).
    r = requests.post(f"http://{server.endpoint}/_test/clock", json={"offset": 10**6}, timeout=10,
                      headers={"X-Vault-Token": server.root_token})
    assert r.status_code == 404 and "route entry not found" in r.json()["errors"][0]
    r = requests.post(f"http://{server.endpoint}/_test/clock", json={"offset": 10**6}, timeout=10)
    assert r.status_code == 403
    server.kill()
