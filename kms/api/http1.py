"""The HTTP/1.1 front end: the hot routes read off the connection and
answered without ASGI; every other request through uvicorn's ASGI cycle.

For a 1 KiB transit encrypt, uvicorn's per-request machinery (the scope
dict, the RequestResponseCycle with its receive/send messages and Event,
the header checks on send) and the lane in front of Starlette cost about as
much as authentication, policy, AES-GCM and audit together. Here a request
whose path is a hot route (kms.api.lane.Lane.match) becomes a HotExchange:
its body is gathered as httptools hands it over, the adapter's respond() is
called once it is whole, and the response goes out in one write. The
adapters, their contract (kms.api.lane.HotAdapter) and so their behaviour
are the lane's; only the I/O in front of them differs.

Everything else of HTTP/1.1 is the protocol's below (kms.api.protocol:
Vault's LIST, the head bound, the header and body timeouts, the connection
bound, coalesced writes) and uvicorn's (keep-alive, pipelining); a hot
exchange takes the place of a RequestResponseCycle in uvicorn's pipeline,
so responses leave in request order whichever kind each request is.

Rules of the hot path:
  - the body is read whole before respond() runs, up to the adapter's
    body_limit: a declared length over it is answered 413 (adapter.error)
    before the body, a chunked body that grows over it as soon as it does;
    the rest of the body is then read and dropped, so the connection stays
    usable, except after `Expect: 100-continue`, where the client may never
    send it: that 413 closes the connection (RFC 9110 section 10.1.1);
  - `Expect: 100-continue` is answered 100 when the request's turn comes
    (at once unless pipelined), as uvicorn does when an app first reads;
  - HEAD (405 on these routes) gets the head of the answer, no body;
  - a client that leaves before its body is whole costs nothing: respond()
    never runs; one that leaves later is not written to;
  - respond() runs in a task, so a bulk request (inline=False), which the
    adapter runs in the thread pool, never holds up the loop.

Response objects: anything with status_code, raw_headers (lower-case
name/value byte pairs) and body is written as it is (Starlette's Response,
or a lighter object with the same three attributes); one without a body
attribute (Starlette's StreamingResponse, as bulk answers; transit's
RawJSONParts) sends itself, as an ASGI app, through a send of this
protocol's, with flow control.
"""
import urllib.parse
from typing import Any, List, Optional, Tuple

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from kms.api.lane import METHODS, PREALLOCATE, Handler, HotAdapter, Lane, LaneRequest
from kms.api.protocol import HOLD_MAX, MAX_HEAD_BYTES, VaultHttpToolsProtocol
from kms.numbers import ascii_int

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE = b"connection: close\r\n"
_ERROR = (b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
          b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error")
_NO_BODY_STATUSES = frozenset((204, 304))


def path_of(url: bytes) -> str:
    """The decoded path of a request target, as uvicorn puts it in the scope."""
    path = httptools.parse_url(url).path.decode("ascii")
    return urllib.parse.unquote(path) if "%" in path else path


class _Head:
    """A response start message's status and headers, read like a response."""

    __slots__ = ("status_code", "raw_headers")

    def __init__(self, status_code: int, raw_headers: List[Tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        self.raw_headers = raw_headers


async def _disconnected() -> Any:
    # A self-sending response that reads its request learns only this: its
    # body was handed to the adapter already.
    return {"type": "http.disconnect"}


class _NoEvent:
    """uvicorn's connection_lost sets the current cycle's message_event;
    an exchange waits on nothing."""

    @staticmethod
    def set() -> None:
        pass


class HotExchange:
    """One hot-route request on a connection, from its head to the end of
    its response. It has the attributes of uvicorn's RequestResponseCycle
    that the protocol reads (response_started, response_complete,
    disconnected, keep_alive, message_event), so it queues in the same
    pipeline."""

    __slots__ = ("protocol", "adapter", "handler", "inline", "request", "keep_alive", "head_only",
                 "expect_100", "response_started", "response_complete", "disconnected", "refusal",
                 "_chunks", "_size", "_buffer", "_view", "_body_whole", "_turn", "_head_written",
                 "_chunked", "_sent_all")
    message_event = _NoEvent()

    def __init__(self, protocol: "Http1Protocol", adapter: HotAdapter, handler: Handler,
                 inline: bool, request: LaneRequest, keep_alive: bool, head_only: bool) -> None:
        self.protocol = protocol
        self.adapter = adapter
        self.handler = handler
        self.inline = inline
        self.request = request
        self.keep_alive = keep_alive
        self.head_only = head_only
        self.expect_100 = False
        self.response_started = False
        self.response_complete = False
        self.disconnected = False
        self.refusal: Any = None  # the answer decided before the body was whole (413)
        self._chunks: List[bytes] = []
        self._size = 0
        self._buffer: Any = None  # a large declared body's own buffer, filled in place
        self._view: Optional[memoryview] = None
        self._body_whole = False
        self._turn = False  # every earlier response on the connection is out
        self._head_written = False
        self._chunked = False
        self._sent_all = False  # a self-sending response sent its last body message

    # ---- the body ------------------------------------------------------------

    @property
    def more_body(self) -> bool:
        """Its body is still being read (uvicorn's cycles say the same)."""
        return not self._body_whole and self.refusal is None

    def preallocate(self, length: int) -> None:
        """A large declared body is copied once, into its final buffer."""
        self._buffer = getattr(self.adapter, "body_buffer", bytearray)(length)
        self._view = memoryview(self._buffer)

    def feed(self, chunk: bytes) -> None:
        if self.refusal is not None or self.response_started:
            return  # answered already: the rest of the body is dropped
        size = self._size + len(chunk)
        if size > self.adapter.body_limit:
            self._release()
            self.refuse(self.adapter.error(413, [self.adapter.too_large]))
            return
        view = self._view
        if view is not None:
            view[self._size:size] = chunk  # httptools holds the body to its declared length
        else:
            self._chunks.append(chunk)
        self._size = size

    def body_complete(self) -> None:
        self._body_whole = True
        if self._turn and self.refusal is None:
            self._start()

    def _body(self) -> Any:
        if self._view is not None:
            self._release()
            return self._buffer
        chunks = self._chunks
        self._chunks = []
        if len(chunks) == 1:
            return chunks[0]  # the common case: one read, no copy
        return b"".join(chunks)

    def _release(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None
        self._chunks = []

    # ---- its turn, and the answer --------------------------------------------

    def refuse(self, response: Any, close: bool = False) -> None:
        self.refusal = response
        if close:
            self.keep_alive = False
        if self._turn:
            self._answer_soon()

    def take_turn(self) -> None:
        """Every earlier response is out: this one may be answered."""
        self._turn = True
        if self.refusal is not None:
            self._answer_soon()
            return
        transport = self.protocol.transport
        if self.expect_100 and not transport.is_closing():
            transport.write_now(_CONTINUE)  # type: ignore[attr-defined]
        if self._body_whole:
            self._start()

    def _answer_soon(self) -> None:
        # Not from inside the caller: a pipeline of refused requests must
        # not answer each other recursively.
        self.protocol.loop.call_soon(self._answer_refusal)

    def _answer_refusal(self) -> None:
        if not self.response_started:
            self.protocol.loop.create_task(self.answer(self.refusal))

    def _start(self) -> None:
        protocol = self.protocol
        task = protocol.loop.create_task(self._run())
        protocol.tasks.add(task)
        task.add_done_callback(protocol.tasks.discard)

    async def _run(self) -> None:
        try:
            response = await self.adapter.respond(self.handler, self.request, self._body(), self.inline)
        except Exception as exc:
            self.protocol.logger.error("Exception in a hot route", exc_info=exc)
            response = None
        await self.answer(response)

    async def answer(self, response: Any) -> None:
        protocol = self.protocol
        if protocol.flow.write_paused and not self.disconnected:
            await protocol.flow.drain()  # the client is not reading: wait for it
        transport = protocol.transport
        if self.disconnected or transport.is_closing():
            self.response_complete = True
            return
        self.response_started = True
        try:
            if response is None:
                raise RuntimeError("no response")
            body = getattr(response, "body", None)
            if body is None:
                await self._stream(response)
            else:
                self._write(response, body)
        except Exception as exc:
            if response is not None:
                protocol.logger.error("A hot route's response could not be written", exc_info=exc)
            if not transport.is_closing():
                if not self._head_written:
                    transport.write_now(_ERROR)  # type: ignore[attr-defined]
                transport.close()
            self.response_complete = True
            return
        background = getattr(response, "background", None)
        if background is not None:
            await background()
        self._complete()

    def _write(self, response: Any, body: bytes) -> None:
        head, framed = self._head(response, body)
        if self.head_only or not body:
            data: Any = head
        elif len(body) < HOLD_MAX:
            data = head + body
        else:
            self.protocol.transport.write_now(head)  # type: ignore[attr-defined]
            data = body
        self.protocol.transport.write_now(data)  # type: ignore[attr-defined]
        self._head_written = True

    def _head(self, response: Any, body: Optional[bytes]) -> Tuple[bytes, bool]:
        """The status line and headers, and whether the response declares
        its length. A header holding CR or LF is refused, never written
        (it would end the head early: response splitting)."""
        status = response.status_code
        raw = response.raw_headers
        fields = b"".join([name + b": " + value + b"\r\n" for name, value in raw])
        if fields.count(b"\n") != len(raw) or fields.count(b"\r") != len(raw):
            raise RuntimeError("a response header holds CR or LF")
        declared = b"content-length:" in fields
        if not declared and body is not None and status not in _NO_BODY_STATUSES:
            fields += b"content-length: %d\r\n" % len(body)
            declared = True
        head = STATUS_LINE[status] + self.protocol.default_header_bytes() + fields
        if not self.keep_alive:
            head += _CLOSE
        return head + b"\r\n", declared

    async def _stream(self, response: Any) -> None:
        """A response that sends itself (Starlette's StreamingResponse,
        transit's RawJSONParts): called as an ASGI app whose send writes
        here. ASGI 2.4: a send to a client that left raises OSError, so
        the response needs no task listening for the disconnect."""
        request = self.request
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
                 "http_version": "1.1", "method": request.method, "headers": self.protocol.headers}
        await response(scope, _disconnected, self._send)
        if not self._sent_all:
            raise RuntimeError("the response did not finish")

    async def _send(self, message: Any) -> None:
        protocol = self.protocol
        transport = protocol.transport
        if message["type"] == "http.response.start":
            if self._head_written:
                raise RuntimeError("a second response start")
            response = _Head(message["status"], list(message.get("headers", ())))
            head, declared = self._head(response, None)
            self._chunked = not declared and not self.head_only and response.status_code not in _NO_BODY_STATUSES
            if self._chunked:
                head = head[:-2] + b"transfer-encoding: chunked\r\n\r\n"
            transport.write_now(head)  # type: ignore[attr-defined]
            self._head_written = True
            return
        if not self._head_written or self._sent_all:
            raise RuntimeError(f"unexpected {message['type']}")
        if protocol.flow.write_paused:
            await protocol.flow.drain()
        if transport.is_closing():
            raise OSError("the client left mid-response")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if not self.head_only:
            if self._chunked:
                framed = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + (b"" if more else b"0\r\n\r\n")
                if framed:
                    transport.write_now(framed)  # type: ignore[attr-defined]
            elif body:
                transport.write_now(body)  # type: ignore[attr-defined]
        if not more:
            self._sent_all = True

    def _complete(self) -> None:
        self.response_complete = True
        if not self.keep_alive:
            self.protocol.transport.close()
        self.protocol.on_response_complete()


class Http1Protocol(VaultHttpToolsProtocol):
    """kms.api.protocol's protocol, with the hot routes served directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        self._lane: Optional[Lane] = app if isinstance(app, Lane) else None
        self._hot: Optional[HotExchange] = None  # the exchange whose body is being read
        self._defaults: Any = None
        self._default_bytes = b""

    def default_header_bytes(self) -> bytes:
        """uvicorn's default headers (its date), encoded once per change."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:
            self._defaults = defaults
            self._default_bytes = b"".join([name + b": " + value + b"\r\n" for name, value in defaults])
        return self._default_bytes

    # ---- parser callbacks: the head ------------------------------------------
    # uvicorn builds its ASGI scope in on_message_begin; here it is built
    # at the head's end, and only for requests that go to the ASGI app.

    def on_message_begin(self) -> None:
        self._at_request_start = False
        self._head_bytes = 0
        self._url_read = -1
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._hot = None

    def on_url(self, url: bytes) -> None:
        self._count_url(url)
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            self._count_head(0)  # refused: 431
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        lane = self._lane
        hit = None
        if lane is not None and not self.parser.should_upgrade():
            hit = lane.match(path_of(self.url))
        if hit is None:
            self._begin_asgi()
            super().on_headers_complete()
            return
        self._head_done()
        self._begin_hot(*hit)

    def _begin_asgi(self) -> None:
        """uvicorn's scope for this request, around the head read so far."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        HttpToolsProtocol.on_message_begin(self)
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def _begin_hot(self, adapter: HotAdapter, handler: Handler, inline: bool, name: str) -> None:
        parser = self.parser
        method = parser.get_method().decode("ascii")
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        if method not in METHODS:  # authenticated, audited, then 405
            handler = adapter.unsupported
        request = LaneRequest(method, name, self.headers)
        exchange = HotExchange(self, adapter, handler, inline, request, keep_alive, method == "HEAD")
        declared = request.headers.get("content-length")
        length = ascii_int(declared, negative=False) if declared is not None else None
        if length is not None and length > adapter.body_limit:
            exchange.refuse(adapter.error(413, [adapter.too_large]), close=self.expect_100_continue)
        else:
            exchange.expect_100 = self.expect_100_continue
            if length is not None and length >= PREALLOCATE:
                exchange.preallocate(length)
        previous = self.cycle
        self.cycle = exchange  # type: ignore[assignment]
        self._hot = exchange
        if previous is None or previous.response_complete:
            exchange.take_turn()
        else:  # pipelined: its turn comes when the response before it is out
            self.flow.pause_reading()
            self.pipeline.appendleft((exchange, self.app))  # type: ignore[arg-type]

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if isinstance(cycle, HotExchange):
            cycle.take_turn()
        else:
            super()._start_asgi_task(cycle, app)

    # ---- parser callbacks: the body ------------------------------------------

    def on_body(self, body: bytes) -> None:
        hot = self._hot
        if hot is None:
            super().on_body(body)
            return
        self._body_bytes += len(body)
        hot.feed(body)

    def on_message_complete(self) -> None:
        hot = self._hot
        if hot is None:
            super().on_message_complete()
            return
        self._hot = None
        self._body_done()
        hot.body_complete()
        self._message_done()
