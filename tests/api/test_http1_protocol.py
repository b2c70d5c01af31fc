"""kms.api.http1 in process, one behaviour at a time: keep-alive,
pipelining, 100-continue, chunked bodies, the body limit, HEAD, LIST, the
431/408/503 answers, disconnects, flow control and the keep-alive timer."""
import asyncio

from uvicorn.server import ServerState

from http1_harness import LIMIT, EchoAdapter, converse, converse_async, make_config, parse_answers
from kms.api.lane import PREALLOCATE
from kms.api.protocol import MAX_HEAD_BYTES
from kms.server import Limits


def hot(body: bytes = b"{}", path: str = "/v1/transit/encrypt/k", method: str = "POST",
        extra: str = "") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: t\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def chunked(pieces, path: str = "/v1/transit/encrypt/k", extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Transfer-Encoding: chunked\r\n\r\n".encode()
    return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


def answers(out: bytes, head_only=()):
    found, _, rest = parse_answers(out, head_only)
    assert rest == b"", rest
    return found


def test_keep_alive_serves_requests_in_separate_reads_and_leaves_the_connection_open():
    async def run():
        conversation, protocol, transport = await converse_async([hot(b"1"), hot(b"22")], keep_open=True)
        assert not transport.closed
        transport.close()
        return conversation
    conversation = asyncio.run(run())
    got = answers(conversation.out)
    assert [a.json()["b"] for a in got] == [b"1".hex(), b"22".hex()]
    assert all(a.header("connection") is None for a in got)


def test_pipelined_requests_of_both_kinds_are_answered_in_request_order():
    """The echo adapter's answers take 0-2 loop iterations, the bulk ones
    stream, the ASGI ones go through uvicorn's cycle: order still holds."""
    sequence = [hot(b"a"), GET_HEALTH, hot(b"bb", "/v1/bulk/encrypt/k"), hot(b""), hot(b"ccc"), GET_HEALTH]
    conversation = converse([b"".join(sequence)])
    got = answers(conversation.out)
    assert [(a.json()["k"], a.json()["b"]) for a in got] == [
        ("hot", "61"), ("asgi", ""), ("hot", "6262"), ("hot", ""), ("hot", "636363"), ("asgi", "")]
    assert not conversation.errors


def test_100_continue_is_sent_before_the_body_is_read():
    async def run():
        request = hot(b"abc", extra="Expect: 100-continue\r\n")
        head, body = request[:-3], request[-3:]
        _, protocol, transport = await converse_async([head], keep_open=True)
        assert bytes(transport.out) == b"HTTP/1.1 100 Continue\r\n\r\n"  # and no answer yet
        protocol.data_received(body)
        for _ in range(10):
            await asyncio.sleep(0)
        transport.close()
        return bytes(transport.out)
    out = asyncio.run(run())
    found, interim, _ = parse_answers(out)
    assert interim == [100] and found[0].status == 200 and found[0].json()["b"] == b"abc".hex()


def test_a_pipelined_request_gets_its_100_continue_only_when_its_turn_comes():
    sequence = hot(b"x") + hot(b"abc", extra="Expect: 100-continue\r\n")[:-3]
    out = converse([sequence]).out
    assert out.index(b"HTTP/1.1 200") < out.index(b"HTTP/1.1 100 Continue")


def test_a_declared_body_over_the_limit_is_413_before_it_arrives_and_the_connection_goes_on():
    big = b"x" * (LIMIT + 1)
    request = hot(big)
    out = converse([request[:-len(big)], big + hot(b"next")]).out
    first, second = answers(out)
    assert (first.status, first.json()) == (413, {"errors": ["too large"]})
    assert second.status == 200 and second.json()["b"] == b"next".hex()


def test_a_declared_body_over_the_limit_after_expect_100_is_413_and_closes_without_100():
    conversation = converse([hot(b"x" * (LIMIT + 1), extra="Expect: 100-continue\r\n")[:-(LIMIT + 1)]])
    found, interim, _ = parse_answers(conversation.out)
    assert interim == [] and found[0].status == 413 and found[0].header("connection") == "close"
    assert conversation.closed


def test_a_chunked_body_is_joined_and_one_growing_over_the_limit_is_413():
    out = converse([chunked([b"ab", b"cd", b"e"]), chunked([b"x" * 40, b"y" * 40]), hot(b"after")]).out
    first, second, third = answers(out)
    assert first.json()["b"] == b"abcde".hex()
    assert (second.status, second.json()) == (413, {"errors": ["too large"]})
    assert third.json()["b"] == b"after".hex()


def test_a_large_declared_body_is_read_into_the_adapters_buffer():
    buffers = []

    class Buffered(EchoAdapter):
        body_limit = 4 * PREALLOCATE

        @staticmethod
        def body_buffer(length):
            buffers.append(bytearray(length))
            return buffers[-1]

    body = bytes(range(256)) * (PREALLOCATE // 256 + 3)
    request = hot(body)
    pieces = [request[i:i + 65536] for i in range(0, len(request), 65536)]
    out = converse(pieces, config=make_config(adapter=Buffered())).out
    assert answers(out)[0].json()["b"] == body.hex()
    assert len(buffers) == 1 and buffers[0] == body


def test_head_and_get_on_a_hot_route_are_405_and_head_gets_no_body():
    out = converse([hot(b"", method="HEAD") + hot(b"", method="GET")]).out
    head, get = answers(out, head_only=[True, False])
    assert head.status == get.status == 405
    assert int(head.header("content-length")) == len(get.body) + 1 > 1  # the echo says "HEAD", not "GET"
    assert get.json()["h"] == "unsupported"


def test_list_reaches_the_asgi_app_as_get_with_list_true():
    out = converse([b"LIST /v1/transit/keys?after=a HTTP/1.1\r\nHost: x\r\n\r\n"]).out
    echo = answers(out)[0].json()
    assert (echo["k"], echo["m"], echo["p"], echo["q"]) == ("asgi", "GET", "/v1/transit/keys", "after=a&list=true")


def test_a_head_over_the_bound_is_431_and_a_request_line_without_version_400():
    huge = hot(extra=f"X-Big: {'a' * MAX_HEAD_BYTES}\r\n")
    conversation = converse([huge])
    assert conversation.out.startswith(b"HTTP/1.1 431 ") and conversation.closed
    no_version = converse([b"POST /v1/transit/encrypt/k\r\nHost: x\r\n\r\n"])
    assert no_version.out.startswith(b"HTTP/1.1 400 ") and no_version.closed


def test_http_1_0_and_connection_close_answers_close_the_connection():
    for request in (hot().replace(b"HTTP/1.1", b"HTTP/1.0"), hot(extra="Connection: close\r\n")):
        conversation = converse([request + hot(b"never")])
        (only,) = answers(conversation.out)
        assert only.header("connection") == "close" and conversation.closed


def timed(limits: Limits, chunks, wait: float, keep_alive: float = 5.0):
    async def run():
        config = make_config(limits=limits)
        config.timeout_keep_alive = keep_alive
        _, protocol, transport = await converse_async(chunks, config=config, keep_open=True)
        await asyncio.sleep(wait)
        closed = transport.closed
        transport.close()
        await asyncio.sleep(0)
        return bytes(transport.out), closed
    return asyncio.run(run())


def test_a_stalled_head_or_body_on_a_hot_route_is_408():
    limits = Limits(header_timeout=0.05, body_timeout=0.05, body_min_rate=1000)
    out, closed = timed(limits, [hot(b"abc")[:20]], 0.3)
    assert out.startswith(b"HTTP/1.1 408 ") and closed
    out, closed = timed(limits, [hot(b"abcdef")[:-3]], 0.3)
    assert out.startswith(b"HTTP/1.1 408 ") and closed


def test_an_idle_kept_alive_connection_is_closed_at_the_keep_alive_timeout_and_a_busy_one_is_not():
    out, closed = timed(Limits(), [hot(b"1")], 0.3, keep_alive=0.1)
    assert out.startswith(b"HTTP/1.1 200 ") and closed

    async def busy():
        config = make_config()
        config.timeout_keep_alive = 0.15
        _, protocol, transport = await converse_async([hot(b"1")], config=config, keep_open=True)
        for _ in range(4):  # a request every 0.1 s: never idle for 0.15 s
            await asyncio.sleep(0.1)
            protocol.data_received(hot(b"2"))
        await asyncio.sleep(0.05)
        still_open = not transport.closed
        transport.close()
        return still_open, bytes(transport.out)
    still_open, out = asyncio.run(busy())
    assert still_open and len(answers(out)) == 5


def test_a_connection_over_the_bound_gets_503_unread():
    state = ServerState()
    state.connections.update(object() for _ in range(2))
    conversation = converse([hot()], config=make_config(limits=Limits(max_connections=2)), state=state)
    assert conversation.out.startswith(b"HTTP/1.1 503 ") and conversation.closed


def test_a_client_that_leaves_mid_body_costs_no_call():
    adapter = EchoAdapter()

    async def run():
        conversation, protocol, transport = await converse_async(
            [hot(b"abcdef")[:-2]], config=make_config(adapter=adapter))
        return conversation
    conversation = asyncio.run(run())
    assert adapter.calls == 0 and conversation.out == b"" and not conversation.errors


def test_a_client_that_stops_reading_holds_its_answers_back_not_the_loop():
    async def run():
        _, protocol, transport = await converse_async([], keep_open=True)
        protocol.pause_writing()
        protocol.data_received(hot(b"1"))
        for _ in range(20):
            await asyncio.sleep(0)
        held = bytes(transport.out)
        protocol.resume_writing()
        for _ in range(20):
            await asyncio.sleep(0)
        transport.close()
        return held, bytes(transport.out)
    held, out = asyncio.run(run())
    assert held == b"" and answers(out)[0].json()["b"] == b"1".hex()


def test_a_response_header_holding_a_line_break_is_never_written():
    class Splitting(EchoAdapter):
        async def respond(self, handler, request, data, inline=False):
            response = await super().respond(handler, request, data, inline)
            response.raw_headers.append((b"x-name", b"a\r\nset-cookie: b"))
            return response

    conversation = converse([hot()], config=make_config(adapter=Splitting()))
    assert conversation.out.startswith(b"HTTP/1.1 500 ") and b"set-cookie" not in conversation.out
    assert conversation.closed and any("could not be written" in e for e in conversation.errors)
