"""First start of a real ``kms server``: which root secrets are printed and
saved (only those it generated), that secrets given in the environment
reach no worker's environment, recovery from a crash in the middle of
initialisation, the data directory's modes, and the server's flags."""
import base64
import json
import os
import stat
import subprocess
import sys
import time
from typing import Dict, List, Set

import pytest
import requests

from conftest import ROOT_ID, ROOT_KEY, ROOT_TOKEN, Server, free_port, sdk_client

ROOT_VARS = ("KMS_ROOT_SECRET_ID", "KMS_ROOT_SECRET_KEY", "KMS_ROOT_TOKEN", "KMS_ROOT_KEY")


def worker_pids(server: Server, count: int) -> Set[int]:
    """The pids behind /health; new connections land on every worker soon."""
    pids: Set[int] = set()
    deadline = time.time() + 60
    while len(pids) < count and time.time() < deadline:
        pids.add(requests.get(f"http://{server.endpoint}/health", timeout=5).json()["worker"])
    assert len(pids) == count, f"expected {count} workers serving, saw {pids}"
    return pids


def environ_of(pid: int) -> List[bytes]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read().split(b"\0")


def lookup_self(server: Server, token: str) -> int:
    return requests.get(f"http://{server.endpoint}/v1/auth/token/lookup-self",
                        headers={"X-Vault-Token": token}, timeout=10).status_code


def signed_call_works(server: Server, secret_id: str, secret_key: str) -> bool:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.kms.v20190118 import models

    try:
        sdk_client(server.endpoint, secret_id, secret_key).ListKeys(models.ListKeysRequest())
        return True
    except TencentCloudSDKException:
        return False


def credentials_file(data_dir: str) -> Dict[str, str]:
    path = os.path.join(data_dir, "root-credentials.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        return json.load(f)


# ---- secrets given in the environment ---------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_secrets_from_the_environment_reach_no_log_file_or_worker(tmp_path, workers):
    given = {"KMS_ROOT_SECRET_ID": "AKIDgivenbyenv00000000000000000042",
             "KMS_ROOT_SECRET_KEY": "given-secret-key-never-echoed-0123",
             "KMS_ROOT_TOKEN": "kms.given-token-never-echoed-456789",
             "KMS_ROOT_KEY": base64.b64encode(os.urandom(32)).decode()}
    data = tmp_path / "data"
    with Server(str(data), root_env=given, workers=workers) as server:
        pids = worker_pids(server, workers)
        # Even one worker is a process of its own, not the one exec'd with
        # the caller's environment.
        assert server.proc.pid not in pids
        for pid in pids:
            environ = environ_of(pid)
            assert any(v.startswith(b"KMS_DATA_DIR=") for v in environ), "not a kms worker?"
            blob = b"\0".join(environ)
            for name, value in given.items():
                assert name.encode() not in blob, f"{name} is in worker {pid}'s environment"
                assert value.encode() not in blob, f"{name}'s value is in worker {pid}'s environment"
        # The workers have the root key all the same (no root.key, no
        # KMS_ROOT_KEY: the signed call needs the SecretKey it unwraps).
        assert lookup_self(server, given["KMS_ROOT_TOKEN"]) == 200
        assert signed_call_works(server, given["KMS_ROOT_SECRET_ID"], given["KMS_ROOT_SECRET_KEY"])
    log = server.log()
    for name in ("KMS_ROOT_SECRET_KEY", "KMS_ROOT_TOKEN", "KMS_ROOT_KEY", "KMS_ROOT_SECRET_ID"):
        assert given[name] not in log, f"{name}'s value is in the server log"
    assert "Root credentials" not in log
    assert not (data / "root-credentials.json").exists()
    assert not (data / "root.key").exists()


@pytest.mark.parametrize("given, complaint", [
    ({"KMS_ROOT_SECRET_ID": ROOT_ID}, "set both KMS_ROOT_SECRET_ID and KMS_ROOT_SECRET_KEY, or neither"),
    ({"KMS_ROOT_KEY": "not base64!"}, "KMS_ROOT_KEY is not valid base64"),
    ({"KMS_ROOT_KEY": base64.b64encode(b"short").decode()}, "KMS_ROOT_KEY decodes to 5 bytes, not 32"),
])
def test_unusable_root_secrets_stop_the_first_start(tmp_path, given, complaint):
    server = Server(str(tmp_path / "data"), root_env=given)
    try:
        failed = server.start(expect_failure=True)
    finally:
        server.kill()
    assert failed.returncode == 2 and complaint in server.log()
    assert given.get("KMS_ROOT_KEY", "-") not in server.log(), "a root key is never echoed"


# ---- secrets the server generates --------------------------------------------


def test_generated_secrets_are_printed_once_and_saved_0600(tmp_path):
    data = str(tmp_path / "data")
    with Server(data, root_env={}) as server:
        creds = credentials_file(data)
        assert set(creds) == {"SecretId", "SecretKey", "Token"}
        log = server.log()
        for value in creds.values():
            assert log.count(value) == 1, "each generated secret is printed exactly once"
        assert lookup_self(server, creds["Token"]) == 200
        assert signed_call_works(server, creds["SecretId"], creds["SecretKey"])
    # A later start generates nothing, prints nothing and keeps the file.
    with Server(data, root_env={}) as again:
        assert "Root credentials" not in again.log() and creds["SecretKey"] not in again.log()
        assert credentials_file(data) == creds
        assert lookup_self(again, creds["Token"]) == 200


@pytest.mark.parametrize("given, saved", [
    ({"KMS_ROOT_TOKEN": ROOT_TOKEN}, {"SecretId", "SecretKey"}),
    ({"KMS_ROOT_SECRET_ID": ROOT_ID, "KMS_ROOT_SECRET_KEY": ROOT_KEY}, {"Token"}),
], ids=["token-given", "pair-given"])
def test_only_what_was_generated_is_printed_and_saved(tmp_path, given, saved):
    data = str(tmp_path / "data")
    with Server(data, root_env=given) as server:
        creds = credentials_file(data)
        assert set(creds) == saved
        log = server.log()
        for value in creds.values():
            assert value in log
        for value in given.values():
            if value != ROOT_ID:  # a given SecretId is printed by neither
                assert value not in log and value not in json.dumps(creds)
        assert ROOT_ID not in log
        token = creds.get("Token", given.get("KMS_ROOT_TOKEN"))
        assert lookup_self(server, token) == 200
        assert signed_call_works(server, creds.get("SecretId", ROOT_ID), creds.get("SecretKey", ROOT_KEY))


# ---- a crash during the first start ------------------------------------------


def half_initialised_by_an_old_version(data_dir: str) -> None:
    """What a crash between the old code's two commits left: the root
    account committed, no token, no credentials file."""
    from kms.rootkey import FileRootKey
    from kms.server import open_data_dir

    os.makedirs(data_dir, mode=0o700)
    FileRootKey(os.path.join(data_dir, "root.key")).create()
    runtime = open_data_dir(data_dir, initialise=False)
    runtime.accounts.create("root", "root", ROOT_ID, ROOT_KEY)
    runtime.store.close()


def test_an_old_half_initialised_directory_accepts_the_given_token(tmp_path):
    data = str(tmp_path / "data")
    half_initialised_by_an_old_version(data)
    with Server(data, root_env={"KMS_ROOT_SECRET_ID": ROOT_ID, "KMS_ROOT_SECRET_KEY": ROOT_KEY,
                                "KMS_ROOT_TOKEN": ROOT_TOKEN}) as server:
        assert lookup_self(server, ROOT_TOKEN) == 200
        assert signed_call_works(server, ROOT_ID, ROOT_KEY)
    assert ROOT_TOKEN not in server.log() and ROOT_KEY not in server.log()
    assert not os.path.exists(os.path.join(data, "root-credentials.json"))


def test_an_old_half_initialised_directory_gets_a_generated_token(tmp_path):
    data = str(tmp_path / "data")
    half_initialised_by_an_old_version(data)
    with Server(data, root_env={}) as server:
        creds = credentials_file(data)
        assert set(creds) == {"Token"}  # the account was not made now: only the token is new
        assert creds["Token"] in server.log()
        assert lookup_self(server, creds["Token"]) == 200


def test_a_directory_completed_by_an_old_version_is_left_as_it_is(tmp_path):
    from kms.server import open_data_dir

    data = str(tmp_path / "data")
    half_initialised_by_an_old_version(data)
    runtime = open_data_dir(data, initialise=False)
    runtime.tokens.create(ROOT_ID, token=ROOT_TOKEN)  # the old code's second commit
    runtime.store.close()
    with Server(data, root_env={}) as server:
        assert "Root credentials" not in server.log()
        assert lookup_self(server, ROOT_TOKEN) == 200
    assert not os.path.exists(os.path.join(data, "root-credentials.json"))
    runtime = open_data_dir(data, initialise=False)
    try:
        assert len(runtime.tokens.listing(ROOT_ID)) == 1, "no second root token"
    finally:
        runtime.store.close()


CRASHING_START = """
import os, sys
import kms.server
from kms.store import LogStore

where = sys.argv[2]
if where == "before-commit":
    # The credentials file is written, the store record is not.
    saved = kms.server._replace_credentials
    def crash(*args):
        saved(*args)
        os._exit(9)
    kms.server._replace_credentials = crash
else:
    # The record with the root account is on disk; nothing after it runs.
    commit = LogStore.commit
    def crash(self, build):
        ops = commit(self, build)
        if any(op.namespace == "account" for op in ops):
            os._exit(9)
        return ops
    LogStore.commit = crash
kms.server.open_data_dir(sys.argv[1])
sys.exit("not reached")
"""


def crash_during_first_start(data_dir: str, where: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_ROOT_")}
    done = subprocess.run([sys.executable, "-c", CRASHING_START, data_dir, where], env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 9, done.stderr.decode()


def stored_accounts(data_dir: str) -> dict:
    from kms.store import LogStore

    store = LogStore(data_dir)
    try:
        return dict(store.items("account"))
    finally:
        store.close()


def test_a_crash_before_the_commit_leaves_nothing_and_the_next_start_initialises(tmp_path):
    data = str(tmp_path / "data")
    crash_during_first_start(data, "before-commit")
    stale = credentials_file(data)
    assert stored_accounts(data) == {}, "nothing may be committed before the file is saved"
    with Server(data, root_env={}) as server:
        creds = credentials_file(data)
        assert creds["SecretId"] != stale["SecretId"] and creds["Token"] != stale["Token"]
        assert creds["SecretKey"] in server.log()
        assert lookup_self(server, creds["Token"]) == 200
        assert lookup_self(server, stale["Token"]) == 403
        assert signed_call_works(server, creds["SecretId"], creds["SecretKey"])


def test_a_crash_after_the_commit_keeps_the_saved_credentials(tmp_path):
    data = str(tmp_path / "data")
    crash_during_first_start(data, "after-commit")
    saved = credentials_file(data)
    assert list(stored_accounts(data)) == [saved["SecretId"]]
    with Server(data, root_env={}) as server:
        assert "Root credentials" not in server.log()
        assert credentials_file(data) == saved
        # Account and token were one record: the token from the file works.
        assert lookup_self(server, saved["Token"]) == 200
        assert signed_call_works(server, saved["SecretId"], saved["SecretKey"])


# ---- the data directory's modes ------------------------------------------------


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_wide_data_directory_and_its_files_are_tightened(tmp_path, caplog):
    data = tmp_path / "data"
    server = Server(str(data))
    server.start()
    server.kill()
    os.chmod(data, 0o755)
    os.chmod(data / "store.log", 0o644)
    os.chmod(data / "audit.log", 0o666)
    server.start()
    try:
        assert mode(data) == 0o700
        assert mode(data / "store.log") == 0o600 and mode(data / "audit.log") == 0o600
        log = server.log()
        assert f"data directory {data} had mode 0755; tightened it to 0700" in log
        assert f"file {data / 'store.log'} had mode 0644; tightened it to 0600" in log
        # The commands that open the directory hold it to 0700 as well.
        os.chmod(data, 0o750)
        from kms.cli import main
        assert main(["accounts", "list", "--data-dir", str(data)]) == 0
        assert mode(data) == 0o700
        assert f"data directory {data} had mode 0750; tightened it to 0700" in caplog.text
    finally:
        server.kill()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory to another user")
def test_a_data_directory_of_another_user_is_refused(tmp_path, capsys):
    data = tmp_path / "data"
    server = Server(str(data))
    server.start()
    server.kill()
    os.chown(data, 65534, 65534)
    try:
        failed = server.start(expect_failure=True)
    finally:
        server.kill()  # should it have started after all
    assert failed.returncode == 2
    assert "belongs to uid 65534" in server.log() and "refusing to use it" in server.log()
    from kms.cli import main
    assert main(["tokens", "list", "--data-dir", str(data)]) == 2
    assert "belongs to uid 65534" in capsys.readouterr().err


def test_a_wide_root_key_is_still_refused(tmp_path):
    data = tmp_path / "data"
    server = Server(str(data))
    server.start()
    server.kill()
    os.chmod(data / "root.key", 0o644)
    try:
        failed = server.start(expect_failure=True)
    finally:
        server.kill()
    assert failed.returncode == 2 and "readable by others" in server.log()
    assert mode(data / "root.key") == 0o644, "root.key is refused, never silently fixed"


# ---- flags ----------------------------------------------------------------------


def test_allowed_hosts_and_replay_slots_reach_the_workers(tmp_path):
    with Server(str(tmp_path / "data"), workers=2,
                    extra=["--allowed-host", "kms.example", "--allowed-host", "127.0.0.1:8300",
                           "--replay-slots", "4096"]) as server:
        for pid in worker_pids(server, 2):
            environ = environ_of(pid)
            assert b"KMS_ALLOWED_HOSTS=kms.example,127.0.0.1:8300" in environ
            assert b"KMS_REPLAY_SLOTS=4096" in environ


@pytest.mark.parametrize("argv, complaint", [
    (["--port", "0"], "argument --port: '0' is not an integer from 1 to 65535"),
    (["--port", "65536"], "not an integer from 1 to 65535"),
    (["--port", "http"], "'http' is not an integer"),
    (["--workers", "0"], "argument --workers: '0' is not an integer from 1 to"),
    (["--workers", "100000"], "argument --workers"),
    (["--scheduler-period", "0"], "argument --scheduler-period: '0' is not a number"),
    (["--scheduler-period", "nan"], "argument --scheduler-period"),
    (["--scheduler-period", "inf"], "argument --scheduler-period"),
    (["--replay-slots", "0"], "argument --replay-slots: '0' is not an integer from 128 to"),
    (["--replay-slots", "-5"], "argument --replay-slots"),
    (["--replay-slots", str(1 << 30)], "argument --replay-slots"),
    (["--allowed-host", "a.example,b.example"], "argument --allowed-host: 'a.example,b.example' is not a host"),
    (["--allowed-host", ""], "argument --allowed-host"),
])
def test_bad_numbers_and_hosts_are_refused_with_exit_2(tmp_path, capsys, argv, complaint):
    from kms.cli import main

    data = tmp_path / "data"
    with pytest.raises(SystemExit) as exited:
        main(["server", "--data-dir", str(data), "--port", str(free_port()), *argv])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err
    assert not data.exists(), "nothing may start on a refused command line"


@pytest.mark.parametrize("argv", [
    ["tokens", "create", "--account", "root", "--ttl", "-1"],
    ["tokens", "create", "--account", "root", "--ttl", "99999999999"],
    ["encrypt-file", "a", "b", "--key", "k", "--chunk-size", "0"],
])
def test_other_commands_check_their_numbers_too(capsys, argv):
    from kms.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and "is not an integer from" in capsys.readouterr().err


# ---- what the server says when it starts --------------------------------------

TIMESTAMPED = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


def test_the_supervisor_prints_one_listening_line_and_workers_log_with_the_time(tmp_path):
    import re

    server = Server(str(tmp_path / "data"), workers=2)
    server.start()
    worker_pids(server, 2)
    server.kill()
    log = server.log()
    listening = [line for line in log.splitlines() if "listening on" in line]
    assert len(listening) == 1, log
    assert (f"listening on http://{server.endpoint}, data directory {server.data_dir}, 2 workers"
            in listening[0])
    assert "Uvicorn running on" not in log, "one start-up line, not uvicorn's as well"
    # Each worker's own lines, at the default level (info), carry the time.
    started = [line for line in log.splitlines() if "kms.api INFO" in line]
    assert len(started) == 2 and all(re.match(TIMESTAMPED, line) for line in started), log


def test_log_level_reaches_the_workers(tmp_path):
    server = Server(str(tmp_path / "data"), workers=2, extra=["--log-level", "warning"])
    server.start()
    worker_pids(server, 2)
    server.kill()
    assert "kms.api INFO" not in server.log() and "listening on" not in server.log()
