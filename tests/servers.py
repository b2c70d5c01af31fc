"""Real ``kms server`` processes on 127.0.0.1 for the tests: the one way to
start one, wait until it answers, and stop it.

    server = server_fixture("transit", workers=2)     # a module's server
    with Server(str(tmp_path / "data"), root_env={}) as srv:  # a test's own
        ...

A plain module, not a conftest: test modules of every directory import it
by name (each test directory's conftest is a module named "conftest", and
which of them that name means depends on what pytest was given).
"""
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

import pytest
import requests

ROOT_ID = "AKIDtestroot0000000000000000000001"
ROOT_KEY = "test-root-secret-key-0123456789"
ROOT_TOKEN = "kms.test-root-token-0123456789abcdef"
START_SECONDS = 60  # a busy two-core machine can take this long to bring up workers

# Every server started, in order: a test's cleanup stops those it started
# (tests/server/conftest.py) even when it failed before its own kill().
started: List["Server"] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def root_secrets(secret_id: str = ROOT_ID, secret_key: str = ROOT_KEY, token: str = ROOT_TOKEN) -> Dict[str, str]:
    """The KMS_ROOT_* variables of a root account (by default the test root's)."""
    return {"KMS_ROOT_SECRET_ID": secret_id, "KMS_ROOT_SECRET_KEY": secret_key, "KMS_ROOT_TOKEN": token}


class Server:
    def __init__(self, data_dir: str, workers: int = 1, extra: Optional[List[str]] = None,
                 test_clock: bool = True, root_env: Optional[Dict[str, str]] = None,
                 root_token: str = ROOT_TOKEN, env: Optional[Mapping[str, Optional[str]]] = None,
                 fd_limit: Optional[int] = None) -> None:
        """extra: more `kms server` flags. test_clock: --test-clock.
        root_env: the KMS_ROOT_* variables the server is started with, and
        none of the caller's; by default the test root's secrets with
        root_token. env: other variables for the server, set (a value's
        "{port}" is the server's port) or, where None, removed.
        fd_limit: the server's RLIMIT_NOFILE (soft and hard), as `ulimit -n`."""
        self.data_dir = data_dir
        self.workers = workers
        self.test_clock = test_clock
        self.extra = extra or []
        self.root_env = root_secrets(token=root_token) if root_env is None else root_env
        self.root_token = self.root_env.get("KMS_ROOT_TOKEN", "")
        self.env = dict(env or {})
        self.fd_limit = fd_limit
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = os.path.join(os.path.dirname(data_dir), f"server-{self.port}.log")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _environment(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_ROOT_")}
        for name, value in self.env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value.format(port=self.port)
        env.update(self.root_env, NO_PROXY="127.0.0.1,localhost")
        return env

    def start(self, expect_failure: bool = False) -> subprocess.Popen:
        """Start and wait for /health; with expect_failure, wait for the
        process to end instead."""
        cmd = [sys.executable, "-m", "kms.cli", "server", "--data-dir", self.data_dir,
               "--port", str(self.port), "--workers", str(self.workers),
               "--scheduler-period", "0.2", *self.extra]
        if self.test_clock:
            cmd.append("--test-clock")
        started.append(self)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self._environment(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         preexec_fn=self._limit_fds if self.fd_limit else None)
        if expect_failure:
            self.proc.wait(START_SECONDS)
            return self.proc
        deadline = time.time() + START_SECONDS
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                if requests.get(f"http://{self.endpoint}/health", timeout=1).ok:
                    return self.proc
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not come up: {self.log()}")

    def _limit_fds(self) -> None:
        if self.fd_limit is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (self.fd_limit, self.fd_limit))

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()

    def shift_clock(self, seconds: float) -> dict:
        answer = requests.post(f"http://{self.endpoint}/_test/clock", json={"offset": seconds},
                               headers={"X-Vault-Token": self.root_token}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()


def stop_started_since(count: int) -> None:
    """Stop the servers started after the first `count`, and forget them."""
    for srv in started[count:]:
        srv.kill()
    del started[count:]


def server_fixture(name: str, scope: str = "module", **options: Any) -> Callable[..., Iterator[Server]]:
    """A fixture of one server on a fresh data directory (`name` names its
    temporary folder), running for the fixture's scope; options are
    Server's (workers, extra, env, root_token, root_env, test_clock, ...).
    Assign it to the fixture's name: `server = server_fixture("kms")`."""
    @pytest.fixture(scope=scope)
    def running_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
        with Server(str(tmp_path_factory.mktemp(name) / "data"), **options) as srv:
            yield srv

    return running_server


def sdk_client(endpoint: str, secret_id: str = ROOT_ID, secret_key: str = ROOT_KEY) -> Any:
    """The official Tencent Cloud SDK's KMS client for a server."""
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.kms.v20190118 import kms_client

    profile = ClientProfile(httpProfile=HttpProfile(endpoint=endpoint, protocol="http", reqTimeout=30),
                            language="en-US")
    return kms_client.KmsClient(credential.Credential(secret_id, secret_key), "ap-guangzhou", profile)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
