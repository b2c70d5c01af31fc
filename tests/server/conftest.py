"""Real ``kms server`` processes on 127.0.0.1, driven by the official
Tencent Cloud SDK (tencentcloud-sdk-python-kms)."""
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

import pytest
import requests

ROOT_ID = "AKIDtestroot0000000000000000000001"
ROOT_KEY = "test-root-secret-key-0123456789"
ROOT_TOKEN = "kms.test-root-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_started: List["Server"] = []  # every server a test started, for cleanup


@pytest.fixture(autouse=True)
def _stop_servers_a_test_left_running():
    """A test that fails between start() and kill() must not leave its
    server running; servers of wider-scoped fixtures started before it."""
    before = len(_started)
    yield
    for srv in _started[before:]:
        srv.kill()
    del _started[before:]


class Server:
    def __init__(self, data_dir: str, workers: int = 1, extra: Optional[List[str]] = None,
                 test_clock: bool = True, root_env: Optional[Dict[str, str]] = None,
                 fd_limit: Optional[int] = None) -> None:
        """root_env: the KMS_ROOT_* variables the server is started with,
        and none of the caller's; by default the test root's secrets.
        fd_limit: the server's RLIMIT_NOFILE (soft and hard), as `ulimit -n`."""
        self.data_dir = data_dir
        self.workers = workers
        self.test_clock = test_clock
        self.extra = extra or []
        if root_env is None:
            root_env = {"KMS_ROOT_SECRET_ID": ROOT_ID, "KMS_ROOT_SECRET_KEY": ROOT_KEY,
                        "KMS_ROOT_TOKEN": os.environ.get("KMS_ROOT_TOKEN", ROOT_TOKEN)}
        self.root_env = root_env
        self.root_token = root_env.get("KMS_ROOT_TOKEN", "")
        self.fd_limit = fd_limit
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = os.path.join(os.path.dirname(data_dir), f"server-{self.port}.log")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, expect_failure: bool = False) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_ROOT_")}
        env.update(self.root_env, NO_PROXY="127.0.0.1,localhost")
        cmd = [sys.executable, "-m", "kms.cli", "server", "--data-dir", self.data_dir,
               "--port", str(self.port), "--workers", str(self.workers),
               "--scheduler-period", "0.2", *self.extra]
        if self.test_clock:
            cmd.append("--test-clock")
        _started.append(self)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         preexec_fn=self._limit_fds if self.fd_limit else None)
        if expect_failure:
            self.proc.wait(60)
            return self.proc
        deadline = time.time() + 60
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

    def shift_clock(self, seconds: float) -> dict:
        answer = requests.post(f"http://{self.endpoint}/_test/clock", json={"offset": seconds},
                               headers={"X-Vault-Token": self.root_token}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()


def sdk_client(endpoint: str, secret_id: str = ROOT_ID, secret_key: str = ROOT_KEY):
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.kms.v20190118 import kms_client

    profile = ClientProfile(httpProfile=HttpProfile(endpoint=endpoint, protocol="http", reqTimeout=30),
                            language="en-US")
    return kms_client.KmsClient(credential.Credential(secret_id, secret_key), "ap-guangzhou", profile)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(str(tmp_path_factory.mktemp("kms") / "data"))
    srv.start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def kms(server):
    return sdk_client(server.endpoint)


def server_with_root_token(directory: str, token: str) -> Server:
    """A started server whose root token is fixed (KMS_ROOT_TOKEN)."""
    os.environ["KMS_ROOT_TOKEN"] = token
    try:
        srv = Server(directory)
        srv.start()
    finally:
        del os.environ["KMS_ROOT_TOKEN"]
    return srv


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
