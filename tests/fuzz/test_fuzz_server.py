"""The fuzzer against a real `kms server` process (slow): the same
properties over HTTP, and broken framing that only the HTTP layer sees
(bad chunked encoding, a wrong Content-Length, truncated bodies, request
lines without a version), sent byte for byte on raw sockets."""
import pytest
from hypothesis import given, strategies as st

from fuzz_fixtures import finish, fuzz_settings, watch
from fuzz_harness import (ROOT_ID, ROOT_KEY, ROOT_TOKEN, Harness, RealServer, parse_response,
                          raw_exchange, tencent_headers)
from fuzz_requests import build_tencent, build_transit, bulk_plans, tencent_plans, transit_plans
from fuzz_routes import BULK, TENCENT, TRANSIT, described_paths
from servers import Server, root_secrets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("fuzz-real") / "data")
    with Server(data_dir, workers=2, test_clock=False,
                root_env=root_secrets(ROOT_ID, ROOT_KEY, ROOT_TOKEN)) as server:
        target = RealServer(server)
        try:
            harness = Harness(target)
            harness.setup()
            watch(harness)
            yield harness
            finish(harness)
        finally:
            target.close()


ROUTES = [r for r in TRANSIT if r.path != "/v1/auth/token/revoke-self"]  # it would spend the root token


@fuzz_settings(0.3)
@given(data=st.data())
def test_transit_against_a_real_server(real, data):
    route = described_paths()[data.draw(st.sampled_from([r.path for r in ROUTES]))]
    plan = data.draw(transit_plans(route, real.pools))
    real.run(route.api, build_transit(plan, real.target), None, route.path)


@fuzz_settings(0.2)
@given(data=st.data())
def test_bulk_against_a_real_server(real, data):
    route = described_paths()[data.draw(st.sampled_from([r.path for r in BULK]))]
    plan = data.draw(bulk_plans(route, real.pools))
    real.run("bulk" if plan.simple_path else "transit", build_transit(plan, real.target), None, route.path)


@fuzz_settings(0.3)
@given(data=st.data())
def test_tencent_against_a_real_server(real, data):
    plan = data.draw(tencent_plans(real.pools))
    real.run("tencent", build_tencent(plan, real.target), None, f"tencent {plan.action}",
             TENCENT.get(plan.action or "", ()) if plan.method == "POST" else ())


# ---- broken framing ---------------------------------------------------------------

_TARGETS = [("POST", "/v1/transit/encrypt/fz-aes", "application/json", b'{"plaintext":"ZnV6ei1zZWNyZXQtYQ=="}'),
            ("POST", "/v1/transit/keys/fz-frame", "application/json", b'{"type":"aes256-gcm96"}'),
            ("POST", "/v1/bulk/encrypt/fz-aes", "application/msgpack", b"\x81\xa5items\x91\xc4\x02ab"),
            ("POST", "/", "application/json", b'{"Limit":5}')]


def _head(method: str, target: str, host: str, content_type: str, body: bytes, extra: list) -> list:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"Content-Type: {content_type}"]
    if target == "/":
        lines += [f"{k}: {v}" for k, v in tencent_headers("ListKeys", body, host) if k not in ("host", "content-type")]
    else:
        lines.append(f"X-Vault-Token: {ROOT_TOKEN}")
    return lines + extra


@st.composite
def framings(draw, host: str):
    """(bytes, whether the body is left incomplete)."""
    method, target, content_type, body = draw(st.sampled_from(_TARGETS))
    kind = draw(st.sampled_from(["chunked-bad-size", "chunked-no-end", "chunked-and-length", "length-short",
                                 "length-long", "length-negative", "length-junk", "two-lengths", "truncated",
                                 "no-version", "list-no-version", "bare-lf", "huge-chunk", "garbage"]))
    cut = draw(st.integers(0, max(len(body) - 1, 0)))
    incomplete = kind in ("chunked-no-end", "huge-chunk", "length-long", "truncated", "garbage")
    if kind == "no-version":
        return f"{method} {target}\r\n\r\n".encode(), False
    if kind == "list-no-version":
        return b"LIST /v1/transit/keys\r\n\r\n", False
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=64)), True
    extra, payload = [], body
    if kind == "chunked-bad-size":
        extra, payload = ["Transfer-Encoding: chunked"], b"ZZ\r\n" + body + b"\r\n0\r\n\r\n"
    elif kind == "chunked-no-end":
        extra, payload = ["Transfer-Encoding: chunked"], b"%x\r\n" % len(body) + body[:cut]
    elif kind == "chunked-and-length":
        extra, payload = ["Transfer-Encoding: chunked", f"Content-Length: {len(body)}"], body
    elif kind == "huge-chunk":
        extra, payload = ["Transfer-Encoding: chunked"], b"fffffffffffffff\r\n" + body
    elif kind == "length-short":
        extra = [f"Content-Length: {cut}"]
    elif kind == "length-long":
        extra = [f"Content-Length: {len(body) + draw(st.integers(1, 10_000))}"]
    elif kind == "length-negative":
        extra = ["Content-Length: -5"]
    elif kind == "length-junk":
        extra = [f"Content-Length: {draw(st.sampled_from(['٥', '1e3', ' 12', '0x10', '99999999999999999999']))}"]
    elif kind == "two-lengths":
        extra = [f"Content-Length: {len(body)}", "Content-Length: 1"]
    elif kind == "truncated":
        extra, payload = [f"Content-Length: {len(body)}"], body[:cut]
    elif kind == "bare-lf":
        return ("\n".join(_head(method, target, host, content_type, body, [f"Content-Length: {len(body)}"]))
                + "\n\n").encode("latin-1") + body, False
    head = "\r\n".join(_head(method, target, host, content_type, body, extra)) + "\r\n\r\n"
    return head.encode("utf-8") + payload, incomplete


@fuzz_settings(0.2)
@given(data=st.data())
def test_broken_framing_never_breaks_the_server(real, data):
    """Whatever the framing, the answer (if any) is no 5xx, nothing lands
    in the log as a traceback, and the server goes on serving."""
    server = real.target.server
    host, port = server.endpoint.split(":")
    raw, incomplete = data.draw(framings(server.endpoint))
    real.target.take_logs()
    # A body that never completes: leave (EOF) rather than wait for the
    # server's body timeout.
    answer = raw_exchange(host, int(port), raw, timeout=5, half_close=incomplete)
    if answer.startswith(b"HTTP/"):
        status = parse_response(answer).status
        assert status < 500, (raw[:300], answer[:300])
    health = parse_response(raw_exchange(host, int(port), b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert health.status == 200, "the server stopped serving"
    for _, text, traceback in real.target.take_logs():
        assert not traceback, text[-2000:]
