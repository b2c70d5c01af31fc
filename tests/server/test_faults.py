"""Hostile disks: a full, a read-only and a deleted data directory, on small
tmpfs mounts the tests make (they need root, as in CI; elsewhere they are
skipped, saying why), first under the store and the audit log alone, then
under a real server. Nothing may be torn, no request may get a 500, no
worker may die, and service must come back by itself once the disk does."""
import base64
import errno
import os
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import ROOT_TOKEN, Server, b64, sdk_client
from kms import audit
from kms.errors import AuditUnavailable, StoreUnavailable
from kms.store import LogStore, Op
from kms.store import log as store_log
from test_tencent_api import call, error_of

UNAVAILABLE = "UnsupportedOperation.ServiceTemporaryUnavailable"
# A table (1 MiB) that fits a small disk and holds the signatures of the slow test.
REPLAY_SLOTS = ["--replay-slots", "65536"]


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(done.stderr.strip() or f"mount {' '.join(args)} failed")


@contextmanager
def tmpfs(directory: str, size: str):
    """A tmpfs of `size` mounted on directory for the duration."""
    os.makedirs(directory, exist_ok=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", directory)
    except (OSError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the fault tests need root, as in CI")
    try:
        yield directory
    finally:
        # Lazily: a server a failing test left running is stopped after this.
        while subprocess.run(["umount", "-l", directory], capture_output=True).returncode == 0:
            pass


def fill(directory: str) -> str:
    """Take every free byte of the file system under directory; returns the
    junk file, whose removal gives the space back."""
    junk = os.path.join(directory, "junk")
    fd = os.open(junk, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, b"\xa5" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                chunk //= 2
    finally:
        os.close(fd)
    return junk


@contextmanager
def read_only(directory: str):
    """Path lookups in directory meet a read-only mount: new files (a
    compaction's temp file) cannot be made, while files a process has open
    stay writable. (The file system itself cannot be remounted read-only
    while a server has files open on it for writing: EBUSY.)"""
    _mount("--bind", directory, directory)
    try:
        _mount("-o", "remount,bind,ro", directory)
        yield
    finally:
        subprocess.run(["umount", directory], check=True)


def audit_elsewhere(data_dir: str, outside: str) -> str:
    """Put the data directory's audit.log on another file system (a bind
    mount of a file), so that its own disk filling up leaves auditing, and
    with it every call on existing keys, working."""
    target = os.path.join(data_dir, "audit.log")
    for path in (outside, target):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    _mount("--bind", outside, target)
    return outside


def no_traceback(server: Server) -> None:
    log = server.log()
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]


def transit(server: Server, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"http://{server.endpoint}/v1/transit/{path}", timeout=60,
                            headers={"X-Vault-Token": ROOT_TOKEN}, **kwargs)


def creates_until_refused(client, prefix: str, limit: int = 50) -> list:
    """CreateKey until the full disk refuses one (the store log's last page
    may hold a few records more); the aliases of those refused."""
    for i in range(limit):
        try:
            call(client, "CreateKey", Alias=f"{prefix}-{i}")
        except TencentCloudSDKException as exc:
            assert exc.code == UNAVAILABLE, exc
            return [f"{prefix}-{i}"]
    raise AssertionError(f"{limit} creates on a full disk all succeeded")


def worker_of(server: Server) -> int:
    return requests.get(f"http://{server.endpoint}/health", timeout=10).json()["worker"]


# ---- the store and the audit log on a real small disk ----------------------

def test_the_store_on_a_full_disk_cuts_failed_writes_and_recovers(tmp_path):
    with tmpfs(str(tmp_path / "disk"), "1m") as disk:
        store = LogStore(disk)
        store.commit(lambda: [Op("put", "key", "kept", {"material": b"k" * 32})])
        junk = fill(disk)
        failures, acknowledged = 0, []
        for i in range(20):  # the log's last page may hold a few more
            try:
                store.commit(lambda i=i: [Op("put", "key", f"k{i}", {"material": os.urandom(900)})])
                acknowledged.append(f"k{i}")
            except StoreUnavailable as exc:
                assert "No space left on device" in str(exc) and disk not in str(exc)
                failures += 1
        assert failures > 0
        with pytest.raises(StoreUnavailable):  # a compacting change fails whole
            store.commit(lambda: [Op("del", "key", "kept")], compact=True)
        assert store.get("key", "kept") is not None
        assert store_log.check(store.path)[1] is None, "nothing torn is left"
        assert sorted(LogStore(disk).items("key")) == sorted(["kept", *acknowledged])
        os.unlink(junk)  # space is back: no restart, no repair
        store.commit(lambda: [Op("put", "key", "after", 1)])
        store.commit(lambda: [Op("del", "key", "kept")], compact=True)
        assert sorted(LogStore(disk).items("key")) == sorted(["after", *acknowledged])
        assert not os.path.exists(store.path + ".tmp")
        store.close()


def test_compaction_in_a_read_only_directory_changes_nothing(tmp_path):
    with tmpfs(str(tmp_path / "disk"), "1m") as disk:
        store = LogStore(disk)
        secret = os.urandom(32)
        store.commit(lambda: [Op("put", "ver", "k/1", {"wrapped": secret})])
        with read_only(disk):
            with pytest.raises(StoreUnavailable, match="Read-only file system"):
                store.commit(lambda: [Op("del", "ver", "k/1")], compact=True)
            store.refresh()
            assert store.get("ver", "k/1") == {"wrapped": secret}
        assert secret in Path(store.path).read_bytes()
        store.commit(lambda: [Op("del", "ver", "k/1")], compact=True)
        assert secret not in Path(store.path).read_bytes()
        store.close()


def test_the_audit_log_on_a_full_disk_keeps_its_chain(tmp_path):
    with tmpfs(str(tmp_path / "disk"), "1m") as disk:
        path = os.path.join(disk, "audit.log")
        log = audit.AuditLog(path)
        log.record(time=1, action="Encrypt")
        junk = fill(disk)
        refused = 0
        for i in range(200):  # the file's last page holds a few lines more
            try:
                log.record(time=2, action="A" * 100, request_id=str(i))
            except AuditUnavailable as exc:
                assert "No space left on device" in str(exc)
                refused += 1
        assert refused > 0
        count, problem = audit.verify(path)
        assert problem is None and count == 1 + 200 - refused
        os.unlink(junk)
        log.record(time=3, action="Decrypt")
        assert audit.verify(path) == (count + 1, None)
        log.close()


# ---- a real server ---------------------------------------------------------

@pytest.fixture
def server_on_small_disk(tmp_path):
    """A server whose data directory is an 8 MiB tmpfs, its audit log on
    another file system; yields (server, data directory, audit log path)."""
    with tmpfs(str(tmp_path / "data"), "8m") as data:
        outside = audit_elsewhere(data, str(tmp_path / "audit.log"))
        with Server(data, extra=REPLAY_SLOTS) as server:
            yield server, data, outside


def test_a_full_disk_refuses_changes_serves_existing_keys_and_recovers(server_on_small_disk):
    server, data, audit_log = server_on_small_disk
    client = sdk_client(server.endpoint)
    key = call(client, "CreateKey", Alias="before-full").KeyId
    blob = call(client, "Encrypt", KeyId=key, Plaintext=b64(b"kept")).CiphertextBlob
    assert transit(server, "POST", "keys/vault-before").status_code in (200, 204)
    worker = worker_of(server)

    junk = fill(data)
    refused_after = creates_until_refused(client, "while-full")
    assert error_of(client, "CreateKey", Alias="while-full-again") == UNAVAILABLE
    r = transit(server, "POST", "keys/vault-while-full")
    assert r.status_code == 503 and data not in r.text, r.text
    # Existing keys go on working, the signed ones through the mapped replay table too.
    assert base64.b64decode(call(client, "Decrypt", CiphertextBlob=blob).Plaintext) == b"kept"
    sealed = call(client, "Encrypt", KeyId=key, Plaintext=b64(b"while full")).CiphertextBlob
    assert base64.b64decode(call(client, "Decrypt", CiphertextBlob=sealed).Plaintext) == b"while full"
    r = transit(server, "POST", "encrypt/vault-before", json={"plaintext": b64(b"x")})
    assert r.status_code == 200, r.text
    assert transit(server, "POST", "decrypt/vault-before",
                   json={"ciphertext": r.json()["data"]["ciphertext"]}).json()["data"]["plaintext"] == b64(b"x")
    assert worker_of(server) == worker, "no worker died"

    os.unlink(junk)  # space is back: no restart, no repair
    for alias in refused_after:  # the refused one was not made, not even half
        listed = call(client, "ListKeyDetail", SearchKeyAlias=alias).KeyMetadatas or []
        assert alias not in [m.Alias for m in listed]
    after = call(client, "CreateKey", Alias="after-full").KeyId
    assert call(client, "DescribeKey", KeyId=after).KeyMetadata.KeyState == "Enabled"
    assert transit(server, "POST", "keys/vault-while-full").status_code in (200, 204)
    assert store_log.check(os.path.join(data, "store.log"))[1] is None
    assert audit.verify(audit_log)[1] is None
    assert worker_of(server) == worker
    no_traceback(server)


def test_a_full_disk_under_the_audit_log_too_refuses_and_recovers(tmp_path):
    with tmpfs(str(tmp_path / "data"), "8m") as data:
        server = Server(data, extra=REPLAY_SLOTS)
        server.start()
        client = sdk_client(server.endpoint)
        key = call(client, "CreateKey", Alias="before-full").KeyId
        junk = fill(data)
        codes = set()
        for i in range(30):  # the audit log's last page holds a few lines more
            try:
                call(client, "CreateKey", Alias=f"while-full-{i}")
                codes.add("ok")
            except TencentCloudSDKException as exc:
                codes.add(exc.code)
        assert codes <= {"ok", UNAVAILABLE} and UNAVAILABLE in codes
        os.unlink(junk)
        call(client, "Encrypt", KeyId=key, Plaintext=b64(b"x"))
        call(client, "CreateKey", Alias="after-full")
        assert store_log.check(os.path.join(data, "store.log"))[1] is None
        assert audit.verify(os.path.join(data, "audit.log"))[1] is None
        server.kill()
        no_traceback(server)


def test_a_read_only_data_directory_refuses_a_delete_whole(server_on_small_disk):
    server, data, _ = server_on_small_disk
    assert transit(server, "POST", "keys/doomed").status_code in (200, 204)
    assert transit(server, "POST", "keys/doomed/config", json={"deletion_allowed": True}).ok
    sealed = transit(server, "POST", "encrypt/doomed", json={"plaintext": b64(b"y")}).json()["data"]
    with read_only(data):
        r = transit(server, "DELETE", "keys/doomed")
        # Before: 500, and the key was deleted with its material left in store.log.
        assert r.status_code == 503 and data not in r.text, r.text
        assert transit(server, "GET", "keys/doomed").status_code == 200
        r = transit(server, "POST", "decrypt/doomed", json={"ciphertext": sealed["ciphertext"]})
        assert r.json()["data"]["plaintext"] == b64(b"y")
    assert transit(server, "DELETE", "keys/doomed").status_code == 204
    assert transit(server, "GET", "keys/doomed").status_code == 404
    no_traceback(server)


def test_a_deleted_data_directory_gets_clear_errors_and_no_crash(tmp_path):
    server = Server(str(tmp_path / "data"), extra=REPLAY_SLOTS)
    server.start()
    client = sdk_client(server.endpoint)
    key = call(client, "CreateKey", Alias="before-rm").KeyId
    worker = worker_of(server)
    shutil.rmtree(tmp_path / "data")
    # Its audit log is gone with it: nothing can be audited, so nothing is done.
    assert error_of(client, "CreateKey", Alias="after-rm") == UNAVAILABLE
    assert error_of(client, "Encrypt", KeyId=key, Plaintext=b64(b"x")) == UNAVAILABLE
    assert transit(server, "POST", "keys/after-rm").status_code == 503
    time.sleep(1.0)  # scheduler passes (every 0.2 s) meet the missing store too
    assert worker_of(server) == worker and server.proc.poll() is None
    server.kill()
    no_traceback(server)


@pytest.mark.slow
def test_creates_racing_a_disk_that_fills_and_empties_lose_nothing_acknowledged(server_on_small_disk):
    server, data, audit_log = server_on_small_disk
    acknowledged, errors, stop = [], set(), threading.Event()

    def create(worker: int) -> None:
        own, n = sdk_client(server.endpoint), 0
        while not stop.is_set():
            n += 1
            try:
                acknowledged.append(call(own, "CreateKey", Alias=f"race-{worker}-{n}").KeyId)
            except TencentCloudSDKException as exc:
                errors.add(exc.code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for _ in range(10):
        junk = fill(data)
        time.sleep(0.3)
        os.unlink(junk)
        time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(60)
    assert errors <= {UNAVAILABLE} and UNAVAILABLE in errors and acknowledged
    assert store_log.check(os.path.join(data, "store.log"))[1] is None
    server.kill()
    server.start()  # the disk as it was left loads without a repair
    client = sdk_client(server.endpoint)
    for key in acknowledged:
        assert call(client, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Enabled"
    assert audit.verify(audit_log)[1] is None
    no_traceback(server)
