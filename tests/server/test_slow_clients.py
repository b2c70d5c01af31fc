"""Slow and idle clients against a real server: the header timeout, the
body timeout (with its minimum rate), and the per-worker connection bound,
with slowloris-style clients. The limits are set low through the flags so
the tests are quick."""
import base64
import json
import os
import socket
import time
from typing import Iterator, List, Optional, Tuple

import pytest
import requests

from conftest import ROOT_TOKEN, Server

HEADER_TIMEOUT, BODY_TIMEOUT, MIN_RATE = 1.0, 1.0, 1000
TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\n"
BUSY_ANSWER = b"HTTP/1.1 503 Service Unavailable\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(str(tmp_path_factory.mktemp("slow") / "data"), workers=1, extra=[
        "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
        "--body-min-rate", str(MIN_RATE)])
    srv.start()
    yield srv
    srv.kill()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def until_closed(sock: socket.socket, trickle: Optional[Iterator[bytes]] = None,
                 interval: float = 0.2, give_up: float = 15.0) -> Tuple[float, bytes]:
    """Send the next piece of `trickle` every `interval` seconds until the
    server closes the connection: (seconds it took, what the server sent).
    The socket is closed afterwards."""
    with sock:
        return _until_closed(sock, trickle or iter(()), interval, give_up)


def _until_closed(sock: socket.socket, trickle: Iterator[bytes], interval: float,
                  give_up: float) -> Tuple[float, bytes]:
    started, received = time.monotonic(), b""
    sock.settimeout(interval)
    while time.monotonic() - started < give_up:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            piece = next(trickle, None)
            if piece is not None:
                try:
                    sock.sendall(piece)
                except OSError:  # closed while we wrote: the read below says so
                    pass
            continue
        except ConnectionResetError:
            data = b""
        if not data:
            return time.monotonic() - started, received
        received += data
    raise AssertionError(f"still open after {give_up} s; received {received!r}")


def request(path: str, body: bytes = b"", method: str = "GET") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: {ROOT_TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body (all this server sends here)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_silent_connection_is_closed_at_the_header_timeout(server):
    took, received = until_closed(connect(server))
    assert HEADER_TIMEOUT * 0.8 <= took < HEADER_TIMEOUT + 2
    assert received == b"", "nothing was asked, so nothing is answered"


def test_headers_dribbled_a_line_at_a_time_are_cut_off_with_408(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\n")
    # A new header line every 0.2 s: the connection is never idle, but its
    # head never ends.
    took, received = until_closed(sock, (f"X-Drip-{i}: x\r\n".encode() for i in range(1000)))
    assert HEADER_TIMEOUT * 0.8 <= took < HEADER_TIMEOUT + 2
    assert received.startswith(TIMEOUT_ANSWER)


def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408(server):
    sock = connect(server)
    sock.sendall(request("/v1/transit/encrypt/slow", b"", "POST").replace(
        b"Content-Length: 0", b"Content-Length: 1000"))
    took, received = until_closed(sock, (b"{" for _ in range(1000)), interval=0.25)
    # BODY_TIMEOUT plus one second per MIN_RATE bytes: a few bytes buy ~nothing.
    assert BODY_TIMEOUT * 0.8 <= took < BODY_TIMEOUT + 2
    assert received.startswith(TIMEOUT_ANSWER)
    assert "Traceback" not in server.log()


def test_a_long_body_at_a_fair_rate_outlasts_the_body_timeout(server):
    """The minimum-rate rule: a body that keeps coming at more than
    --body-min-rate may take longer than --body-timeout."""
    plaintext = base64.b64encode(os.urandom(3000)).decode()
    body = json.dumps({"plaintext": plaintext}).encode()
    with connect(server) as sock:
        sock.sendall(request("/v1/transit/encrypt/fair-rate", body, "POST")[:-len(body)])
        started = time.monotonic()
        for offset in range(0, len(body), 400):  # ~2,700 B/s, over about 1.5 s
            sock.sendall(body[offset:offset + 400])
            time.sleep(0.15)
        assert time.monotonic() - started > BODY_TIMEOUT
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_each_head_on_a_kept_alive_connection_gets_the_whole_header_timeout(server):
    """Each request on a kept-alive connection gets the whole timeout for
    its head; together they take longer than one timeout."""
    with connect(server) as sock:
        started = time.monotonic()
        for _ in range(3):
            line, rest = request("/health").split(b"\r\n", 1)
            sock.sendall(line + b"\r\n")
            time.sleep(HEADER_TIMEOUT * 0.5)
            sock.sendall(rest)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started > HEADER_TIMEOUT * 1.4


def answered_once(sock: socket.socket) -> None:
    sock.sendall(request("/health"))
    assert read_response(sock).startswith(b"HTTP/1.1 200")


def test_a_head_split_after_an_idle_spell_is_timed_from_its_first_byte(server):
    """Idle time between requests is the keep-alive timeout's (5 s here),
    not the next head's: a head that comes after an idle spell longer than
    the header timeout, in two pieces, is served."""
    with connect(server) as sock:
        answered_once(sock)
        time.sleep(HEADER_TIMEOUT * 1.5)
        line, rest = request("/health").split(b"\r\n", 1)
        sock.sendall(line + b"\r\n")
        time.sleep(0.05)
        sock.sendall(rest)
        assert read_response(sock).startswith(b"HTTP/1.1 200")


def test_a_head_dribbled_after_an_idle_spell_gets_408_a_timeout_after_its_first_byte(server):
    sock = connect(server)
    answered_once(sock)
    time.sleep(HEADER_TIMEOUT * 1.5)
    sock.sendall(b"GET /health HTTP/1.1\r\n")
    took, received = until_closed(sock, (f"X-Drip-{i}: x\r\n".encode() for i in range(1000)))
    assert HEADER_TIMEOUT * 0.8 <= took < HEADER_TIMEOUT + 2
    assert received.startswith(TIMEOUT_ANSWER)


def test_a_partial_head_pipelined_behind_a_request_gets_408_at_the_header_timeout(server):
    """The unfinished second head is the client's delay from the moment the
    first response is out, so the header timeout bounds it, not the longer
    keep-alive timeout."""
    sock = connect(server)
    sock.sendall(request("/health") + b"GET /health HTTP/1.1\r\nX-Stalled: yes\r\n")
    assert read_response(sock).startswith(b"HTTP/1.1 200")
    took, received = until_closed(sock)
    assert HEADER_TIMEOUT * 0.8 <= took < HEADER_TIMEOUT + 2
    assert received.startswith(TIMEOUT_ANSWER)


@pytest.mark.parametrize("line", [b"LIST /", b"LIST", b"LIST ", b"LIST  HTTP/1.1", b"LIST /\n"])
def test_a_malformed_list_request_line_is_400_not_a_traceback(server, line):
    sock = connect(server)
    sock.sendall(line + b"\r\n\r\n")
    _, received = until_closed(sock)
    assert received.startswith(b"HTTP/1.1 400 "), received
    assert "Traceback" not in server.log()


# ---- the connection bound ----------------------------------------------------

BOUND = 4


@pytest.fixture(scope="module")
def bounded(tmp_path_factory):
    srv = Server(str(tmp_path_factory.mktemp("bounded") / "data"), workers=1, extra=[
        "--max-connections", str(BOUND), "--header-timeout", "30", "--keep-alive-timeout", "30"])
    srv.start()
    yield srv
    srv.kill()


def admitted(server: Server) -> socket.socket:
    """A connection the server serves (its answer proves it was admitted)."""
    sock = connect(server)
    try:
        sock.sendall(request("/health"))
        assert read_response(sock).startswith(b"HTTP/1.1 200")
    except BaseException:
        sock.close()
        raise
    return sock


def refusal(server: Server) -> Tuple[float, bytes]:
    return until_closed(connect(server), give_up=5)


def test_connections_beyond_the_bound_are_refused_at_once_and_the_admitted_served(bounded):
    held: List[socket.socket] = [admitted(bounded) for _ in range(BOUND)]
    try:
        for _ in range(3):
            took, received = refusal(bounded)
            # The refused client sends nothing, so the server's close after
            # its answer is an orderly FIN, never a reset that could drop
            # the answer: an empty answer would be a close for another reason.
            assert took < 1.0, "refused at once, not after a timeout"
            assert received.startswith(BUSY_ANSWER), received
            assert received.endswith(b"\r\n\r\ntoo many open connections"), received
        for sock in held:  # every admitted connection is still served
            sock.sendall(request("/health"))
            assert read_response(sock).startswith(b"HTTP/1.1 200")
        held.pop().close()
        replacement: Optional[socket.socket] = None
        deadline = time.monotonic() + 5
        while replacement is None and time.monotonic() < deadline:
            try:
                replacement = admitted(bounded)  # the freed slot is taken again
            except (AssertionError, OSError):
                time.sleep(0.05)
        assert replacement is not None
        held.append(replacement)
    finally:
        for sock in held:
            sock.close()
    assert "Traceback" not in bounded.log()


@pytest.mark.slow
def test_a_flood_of_silent_connections_under_a_low_descriptor_limit(tmp_path):
    """ulimit -n 256 and 1,000 silent connections: the worker lowers its
    bound below the limit, refuses the excess, keeps serving the admitted
    client (with store and audit files to open), never fails accept() with
    EMFILE, and serves new clients once the silent ones time out."""
    srv = Server(str(tmp_path / "data"), workers=1, fd_limit=256,
                 extra=["--header-timeout", "3", "--keep-alive-timeout", "60"])
    srv.start()
    client = requests.Session()
    url = f"http://{srv.endpoint}/v1/transit"
    headers = {"X-Vault-Token": srv.root_token}
    assert client.post(f"{url}/keys/flood", json={}, headers=headers, timeout=10).ok
    worker = client.get(f"http://{srv.endpoint}/health", timeout=10).json()["worker"]
    silent: List[socket.socket] = []
    try:
        for _ in range(1000):
            try:
                silent.append(socket.create_connection(("127.0.0.1", srv.port), timeout=2))
            except OSError:
                pass  # a full accept queue: refused too
            if len(silent) % 100 == 0:
                answer = client.post(f"{url}/encrypt/flood", json={"plaintext": "aGk="},
                                     headers=headers, timeout=10)
                assert answer.status_code == 200, answer.text
        time.sleep(4)  # past the header timeout: the silent ones are closed
        fresh = requests.get(f"http://{srv.endpoint}/health", timeout=10)
        assert fresh.ok and fresh.json()["worker"] == worker, "the same worker, still serving"
    finally:
        for sock in silent:
            sock.close()
        client.close()
        srv.kill()
    log = srv.log()
    assert "leaves room for" in log  # the bound was lowered below 1000
    assert "Too many open files" not in log and "Traceback" not in log
