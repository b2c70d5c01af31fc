"""kms.api.http1 against h11 on generated requests: request lines, headers,
fixed and chunked bodies, pipelined sequences, split at random read
boundaries, some of them damaged. h11 (uvicorn's other parser) is the
reference: every request it reads must get our answer for that request, in
order; where h11 refuses the stream, our protocol answers what came before
and then a clean 400 or nothing more (it may be stricter, never looser).
Never a 500, a logged error, a hang or a write after close.

Budget: KMS_FUZZ_EXAMPLES (default 400) examples per property."""
import os
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

import h11
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from http1_harness import HOT_PREFIXES, LIMIT, converse, parse_answers
from kms.api.lane import WANTED

EXAMPLES = int(os.environ.get("KMS_FUZZ_EXAMPLES") or 400)
SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "LIST"]
NAME_CHARS = "abcXYZ019-_.%~/"
PATHS = ["/v1/transit/encrypt/", "/v1/bulk/encrypt/", "/v1/transit/decrypt/", "/v1/transit/keys/",
         "/health", "/", "/console/", "/v1/transit/encrypt"]
TOKEN_CHARS = "abcdefxyzABC0123456789-_.!#$&'*+^`|~"
VALUE_CHARS = "abc XYZ 012 -_.,;:=/\"()?@\t~"


@st.composite
def requests(draw: Any) -> bytes:
    method = draw(st.sampled_from(METHODS))
    path = draw(st.sampled_from(PATHS)) + draw(st.text(NAME_CHARS, max_size=8))
    if draw(st.booleans()):
        path += "?" + draw(st.text("a=b&c%2F", max_size=8))
    version = draw(st.sampled_from(["1.1"] * 6 + ["1.0"]))
    headers: List[Tuple[str, str]] = [("Host", "127.0.0.1")]
    for _ in range(draw(st.integers(0, 4))):
        headers.append((draw(st.sampled_from(["X-Vault-Token", "Content-Type", "Authorization", "X-Other"])
                             | st.text(TOKEN_CHARS, min_size=1, max_size=10)),
                        draw(st.text(VALUE_CHARS, max_size=16))))
    if draw(st.integers(0, 5)) == 0:
        headers.append(("Expect", "100-continue"))
    if draw(st.integers(0, 7)) == 0:
        headers.append(("Connection", draw(st.sampled_from(["close", "keep-alive"]))))
    body = draw(st.binary(max_size=2 * LIMIT))
    framing = draw(st.sampled_from(["length", "chunked", "none"]))
    if framing == "length" or (framing == "none" and body):
        headers.append(("Content-Length", str(len(body))))
        framed = body
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        framed, rest = b"", body
        while rest:
            size = draw(st.integers(1, max(1, len(rest))))
            framed += b"%x\r\n" % size + rest[:size] + b"\r\n"
            rest = rest[size:]
        framed += b"0\r\n\r\n"
    else:
        framed = b""
    head = f"{method} {path} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + framed


def split(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points + [len(data)]:
        if point > start:
            pieces.append(data[start:point])
            start = point
    return pieces


def h11_reads(chunks: List[bytes]) -> Tuple[List[Dict[str, Any]], str]:
    """The requests h11 reads from the stream, and how it ends: "open"
    (waiting for more), "closed" (the last request closes the connection),
    "refused" (h11 found an error) or "no host" (see below).

    CR and LF before a request line are dropped first: llhttp skips them,
    h11 refuses them, and RFC 9112 section 2.2 lets a server ignore them.
    So each request is read by a fresh h11 connection from what is left."""
    seen: List[Dict[str, Any]] = []
    rest = b"".join(chunks)
    while True:
        rest = rest.lstrip(b"\r\n")
        if not rest:  # (receive_data(b"") would mean the peer closed)
            return seen, "open"
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(rest)
        current: Dict[str, Any] = {}
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    return seen, "open"
                if isinstance(event, h11.Request):
                    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
                    current = {"method": event.method.decode(), "target": event.target.decode("latin-1"),
                               "headers": headers, "body": b"",
                               "declared": next((int(v) for k, v in headers if k == "content-length"), None),
                               "expect": any(k == "expect" and v.lower() == "100-continue" for k, v in headers)}
                elif isinstance(event, h11.Data):
                    current["body"] += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
        except h11.RemoteProtocolError as exc:
            # RFC 9112 section 3.2 wants 400 for an HTTP/1.1 request without
            # Host; httptools, so uvicorn and this protocol, serve it: a known
            # difference, after which the two are not compared.
            return seen, "no host" if "Host" in str(exc) else "refused"
        seen.append(current)
        conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
        conn.send(h11.EndOfMessage())
        if conn.our_state is h11.MUST_CLOSE:
            return seen, "closed"
        rest = conn.trailing_data[0]


def expected(request: Dict[str, Any]) -> Tuple[int, Optional[Dict[str, Any]], bool]:
    """(status, echo, connection closes) our protocol owes this request."""
    method, target = request["method"], request["target"]
    if method == "LIST":  # Vault's LIST is GET ?list=true
        method, target = "GET", target + ("&list=true" if "?" in target else "?list=true")
    raw_path, _, query = target.partition("?")
    path = urllib.parse.unquote(raw_path) if "%" in raw_path else raw_path
    for prefix, handler in HOT_PREFIXES.items():
        name = path[len(prefix):]
        if path.startswith(prefix) and name and "/" not in name:
            declared, body = request["declared"], request["body"]
            if len(body) > LIMIT or (declared is not None and declared > LIMIT):
                return 413, {"errors": ["too large"]}, declared is not None and request["expect"]
            served = method in ("POST", "PUT")
            headers: Dict[str, str] = {}
            for k, v in request["headers"]:
                if k.encode() in WANTED:
                    headers.setdefault(k, v)
            return (200 if served else 405), {"k": "hot", "h": handler if served else "unsupported", "m": method,
                                              "n": name, "hd": sorted(map(list, headers.items())),
                                              "b": request["body"].hex()}, False
    return 200, {"k": "asgi", "m": method, "p": path, "q": query,
                 "hd": [list(h) for h in request["headers"]], "b": request["body"].hex()}, False


def check(data: bytes, cuts: List[int], strict: bool) -> None:
    chunks = split(data, cuts)
    seen, ending = h11_reads(chunks)
    ours = converse(chunks)
    assert not ours.errors, ours.errors
    assert not ours.stuck, "the protocol stopped reading and never resumed"
    owed = [expected(r) for r in seen]
    # Answers after a closing one are never owed.
    closes = next((i for i, (_, _, close) in enumerate(owed) if close), None)
    if closes is not None:
        owed, ending = owed[:closes + 1], "closed"
    head_only = [r["method"] == "HEAD" for r in seen]
    answers, _, rest = parse_answers(ours.out, head_only)
    assert all(a.status != 500 for a in answers), ours.out
    matched = 0
    for answer, (status, echo, _) in zip(answers, owed):
        if answer.status == 400 and not strict:
            break
        assert answer.status == status, (answer, status, echo)
        if not head_only[matched]:
            got = answer.json()
            if got.get("k") == "asgi":  # httptools keeps a value's trailing whitespace, as uvicorn always did
                got["hd"] = [[k, v.rstrip(" \t")] for k, v in got["hd"]]
            assert got == echo
        matched += 1
    extra = answers[matched:]
    if ending == "no host":
        return
    if matched < len(owed) or ending == "refused" or not strict:
        # Ours may stop earlier than h11 (stricter), or where it does: with
        # one clean 400 and a close, or with nothing more.
        assert not strict or ending == "refused", ours.out
        assert len(extra) <= 1 and all(a.status == 400 for a in extra), extra
        assert not extra or ours.closed
    else:
        assert not extra, extra
    assert rest == b"", rest


@SETTINGS
@given(st.lists(requests(), min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=6))
def test_well_formed_requests_get_the_answers_h11_reads_them_as(sequence, cuts):
    """Generated requests are well formed (except methods httptools does
    not know, and LIST pipelined behind a request in the same read, which
    get 400): every answer matches."""
    data = b"".join(sequence)
    known = all(r.split(b" ", 1)[0].decode() in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
                for r in sequence)
    check(data, cuts, strict=known)


@SETTINGS
@given(st.lists(requests(), min_size=1, max_size=3), st.lists(st.integers(0, 10_000), max_size=6),
       st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from([b"", b"\r", b"\n", b" ", b":", b"\x00",
                                                                      b"0", b"f", b"\r\n", b"\x7f", b"\xff",
                                                                      b"Transfer-Encoding: chunked\r\n",
                                                                      b"Content-Length: 5\r\n"])),
                min_size=1, max_size=3))
def test_damaged_requests_are_answered_as_h11_reads_them_or_refused_with_400(sequence, cuts, damage):
    data = bytearray(b"".join(sequence))
    for position, replacement in damage:
        at = position % (len(data) + 1)
        data[at:at + 1] = replacement
    check(bytes(data), cuts, strict=False)




@pytest.mark.parametrize("line", [
    # llhttp took the target as "/v1/transit/encrypt/0000000", the space left out.
    b"PATCH /v1/transit/encrypt/0000 000 HTTP/1.1",
    # The clean-CI failing case of the damaged-request property: two spaces.
    b"PATCH /v1/transit/encrypt/0000000  HTTP/1.1",
])
def test_a_request_line_not_spaced_as_rfc_9112_has_it_is_refused(line):
    """h11 and RFC 9112 section 3 refuse both; llhttp served them."""
    data = (line + b"\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n\x00\x00"
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    ours = converse([data])
    answers, _, _ = parse_answers(ours.out, [False, False])
    assert [a.status for a in answers] == [400] and ours.closed
    check(data, [], strict=False)
