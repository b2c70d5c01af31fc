"""Real ``kms server`` processes on 127.0.0.1 (tests/servers.py), driven by
the official Tencent Cloud SDK (tencentcloud-sdk-python-kms)."""
import pytest

# Names the server tests have long imported from here.
from servers import (ROOT_ID, ROOT_KEY, ROOT_TOKEN, Server, b64, free_port,  # noqa: F401
                     sdk_client, server_fixture, started, stop_started_since)


@pytest.fixture(autouse=True)
def _stop_servers_a_test_left_running():
    """A test that fails between start() and kill() must not leave its
    server running; servers of wider-scoped fixtures started before it."""
    before = len(started)
    yield
    stop_started_since(before)


server = server_fixture("kms")


@pytest.fixture(scope="module")
def kms(server):
    return sdk_client(server.endpoint)
