"""uvicorn's httptools protocol, taught Vault's LIST method, and writing
each small response with one send.

httptools (llhttp) parses only the standard HTTP methods and rejects LIST,
which hvac uses to list keys, while the pure-Python h11 parser accepts it but
costs about as much per request as the whole transit handler. Vault defines
LIST as GET with ?list=true, so a request line starting with LIST is
rewritten to that before httptools sees it.

Limit: the rewrite looks at the start of each request as it arrives; a LIST
pipelined behind another request in the same read is not rewritten (and
gets 400). Clients such as hvac do not pipeline.

uvicorn writes a response's status line and headers as soon as the app
starts it, and the body separately: two send() calls and, with Nagle off,
two TCP segments for every 1 KiB encrypt. The transport the protocol hands
out holds a write back until the next one (the body, which follows at once)
or the end of the loop iteration, so the two go out together.

httptools sets no bound on a request's head: a 1 MB header was read, handed
on and written to the audit log. The request line and headers together are
held to MAX_HEAD_BYTES (Go's net/http, which OpenBao serves with, allows
1 MiB; nginx 8 KiB per line); a larger head is answered 431 and the
connection closed before the application sees it. (h11 has its own bound,
uvicorn's h11_max_incomplete_event_size, 16 KiB.)

Slow and idle clients (uvicorn itself only closes a kept-alive connection
that stays idle for timeout_keep_alive after a response):
  - header timeout: a request's head must be complete within
    Limits.header_timeout of the connection opening (the first request) or
    of the head's first byte (later ones: the idle time before it is the
    keep-alive timeout's, as with Go's ReadHeaderTimeout); a head already
    partly pipelined when the previous response ends is timed from that
    response. A partly sent head is answered 408, a connection that sent
    nothing at all is closed silently (there is no request to answer);
  - body timeout: a body gets Limits.body_timeout plus one second for every
    Limits.body_min_rate bytes received (Apache's mod_reqtimeout rule), so a
    256 MiB bulk body on a modest link is fine while one byte a second is
    cut off at about body_timeout; answered 408 if no response has started.
    Time during which the server itself stopped reading (flow control) does
    not count against the client;
  - connection bound: a worker holding Limits.max_connections connections
    answers any further one with a fixed 503 at once and closes it, without
    reading it, and goes on serving those it holds (uvicorn's
    limit_concurrency accepts and parses first, and counts tasks too).
The timers are armed only when a read leaves a head or body incomplete, so
a request that arrives in one read costs no timer. These apply to this
protocol (the default --http); h11 has only uvicorn's keep-alive timeout.
"""
import asyncio
from typing import Any, Optional

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kms.server import DEFAULT_LIMITS, Limits

_LIST = b"LIST "
HOLD_MAX = 64 * 1024  # writes at least this large are never held or joined
MAX_REQUEST_LINE = 8192  # a request line is held across reads up to this, then judged
MAX_HEAD_BYTES = 32 * 1024  # request line + headers; tokens and signatures are < 1 KiB
_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
              b"content-length: 32\r\nconnection: close\r\n\r\nrequest header fields too large\n")


_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n")
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
         b"content-length: 25\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
         b"too many open connections")


class SpacedTarget(Exception):
    """Raised inside on_url: the request target holds whitespace (see
    _count_url); httptools stops, and the request is answered 400."""


class HeadTooLarge(Exception):
    """Raised inside a parser callback: httptools stops parsing at once."""


class NoVersion(Exception):
    """Raised inside a parser callback, which httptools answers as a parse error: 400."""


def well_spaced(data: bytes) -> bool:
    """False for a read that starts a request whose request line has other
    than one space between its three parts ("GET  /x HTTP/1.1"): llhttp
    serves it, RFC 9112 section 3 and h11 refuse it. A request line not
    complete in the read, or pipelined behind another, is not judged here
    (the parser's own rules still apply)."""
    line_end = data.find(b"\r\n", 0, MAX_REQUEST_LINE)
    if line_end < 0:
        return True
    line = data[:line_end]
    if not line:  # empty lines before a request line are skipped (RFC 9112 section 2.2)
        line = data.lstrip(b"\r\n").split(b"\r\n", 1)[0]
    return line.count(b" ") == 2 and b"  " not in line and not line.startswith(b" ")


def rewrite_list(data: bytes) -> Optional[bytes]:
    """b"LIST /p?q HTTP/1.1..." -> b"GET /p?q&list=true HTTP/1.1...";
    None for a request line that is not "LIST target version"."""
    line_end = data.find(b"\r\n")
    parts = data[:line_end].split(b" ", 2) if line_end > 0 else []
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    target, version = parts[1], parts[2]
    target += b"&list=true" if b"?" in target else b"?list=true"
    return b"GET " + target + b" " + version + data[line_end:]


class CoalescingTransport:
    """A transport whose write() is held until the next write, a close, or
    the end of the current loop iteration, whichever comes first; anything
    else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: Optional[bytes] = None

    def write(self, data: bytes) -> None:
        held, small = self._held, len(data) < HOLD_MAX
        if held is not None:
            self._held = None
            if small:
                self._transport.write(held + data)
                return
            self._transport.write(held)
        elif small:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)  # large pieces go as they are, uncopied

    def write_now(self, data: bytes) -> None:
        """data, after anything held, at once: for a whole response."""
        held = self._held
        if held is not None:
            self._held = None
            if len(data) < HOLD_MAX:
                data = held + data
            else:
                self._transport.write(held)
        self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class VaultHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._at_request_start = True
        self._held = b""
        self._head_bytes = 0
        self._reads = 0  # data_received calls so far
        self._url_read = -1  # the read that gave the current request's target its last piece
        self._head_too_large = False
        self._limits: Limits = getattr(self.config, "limits", None) or DEFAULT_LIMITS
        self._refused = False
        self._refusal_due: Optional[str] = None  # a 400 held until earlier answers are out
        self._idle_since: Optional[float] = None  # the end of the last answer, while nothing came since
        self._reading_head = True  # between a connection's start or a response and a head's end
        self._head_since: Optional[float] = None  # None: from the head's first byte
        self._head_started = False  # some byte of the awaited head has arrived
        self._head_timer: Optional[asyncio.TimerHandle] = None
        self._reading_body = False
        self._body_since = 0.0
        self._body_bytes = 0
        self._body_timer: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.server_state.connections) >= self._limits.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._head_since = self.loop.time()
        self._arm_head_timer()

    def _refuse(self, transport: asyncio.Transport) -> None:
        """Over the bound: one fixed answer and the descriptor is freed, so
        a flood of connections can neither exhaust descriptors nor slow the
        admitted ones; nothing is parsed."""
        self._refused = True
        self.transport = transport
        transport.write(_BUSY)
        transport.close()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm("_head_timer")
        self._disarm("_body_timer")
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        if self._refused:
            return
        super().connection_lost(exc)

    # ---- header timeout ------------------------------------------------------

    def _arm_head_timer(self) -> None:
        # Armed by the first read that leaves a head unfinished, which is
        # the read that brought its first byte: "now" is that byte's time.
        if self._head_timer is None:
            since = self.loop.time() if self._head_since is None else self._head_since
            self._head_timer = self.loop.call_at(since + self._limits.header_timeout,
                                                 self._head_timed_out)

    def _disarm(self, attribute: str) -> None:
        """Cancel the timer held in `attribute`, if one is armed."""
        timer = getattr(self, attribute)
        if timer is not None:
            timer.cancel()
            setattr(self, attribute, None)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._reading_head:
            return
        if self._head_started or self._head_pending():
            self.transport.write(_TIMEOUT)
        self.transport.close()

    def on_response_complete(self) -> None:
        # uvicorn's, except for the keep-alive timer: uvicorn arms a new one
        # after every response and cancels it at the next read; here one
        # timer per connection looks at the idle time when it fires.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        if self._refusal_due is not None and self.cycle.response_complete:
            self._send_refusal(self._refusal_due)  # the last answer owed before it is out
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_at(self._idle_since + self.timeout_keep_alive,
                                                             self._keep_alive_check)
        if not self._reading_body:
            self._await_next_head()

    def _keep_alive_check(self) -> None:
        self.timeout_keep_alive_task = None
        idle_since = self._idle_since
        if idle_since is None or self.transport.is_closing():
            return  # busy: the timer is armed again when its answer is out
        due = idle_since + self.timeout_keep_alive
        if self.loop.time() < due:
            self.timeout_keep_alive_task = self.loop.call_at(due, self._keep_alive_check)
        else:
            self.transport.close()

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # not idle (the timer, when it fires, sees that)

    def _await_next_head(self) -> None:
        # uvicorn's keep-alive timer closes the connection if it stays idle;
        # the header timer is armed once a read leaves the next head unfinished.
        self._reading_head, self._head_started, self._head_since = True, False, None
        if self._head_pending():
            # Part of it came pipelined, while no head was awaited: the
            # connection is not idle, and its head is timed from now.
            self._unset_keepalive_if_required()
            self._arm_head_timer()

    def _head_pending(self) -> bool:
        """Bytes of a head not yet complete are parsed or held."""
        return not self._at_request_start or bool(self._held)

    # ---- body timeout --------------------------------------------------------

    def _arm_body_timer(self, at: float) -> None:
        self._body_timer = self.loop.call_at(at, self._body_check)

    def _body_check(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or not self._reading_body:
            return
        limits, now = self._limits, self.loop.time()
        if self.flow.read_paused:
            # The server stopped reading (the app has not taken the body
            # yet): not the client's delay, so the clock restarts.
            self._body_since, self._body_bytes = now, 0
            self._arm_body_timer(now + limits.body_timeout)
            return
        deadline = self._body_since + limits.body_timeout + self._body_bytes / limits.body_min_rate
        if now < deadline:
            self._arm_body_timer(deadline)
            return
        if self.cycle is not None and not self.cycle.response_started:
            self.transport.write(_TIMEOUT)
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()

    def _head_done(self) -> None:
        """The head timer's end and the body timer's start. A request line
        without a version (llhttp reads it as HTTP/0.9, headers and all) is
        refused 400, as h11 and Go's net/http refuse it."""
        if self.parser.get_http_version() == "0.9":
            raise NoVersion()
        self._reading_head = False
        self._disarm("_head_timer")
        self._reading_body, self._body_since, self._body_bytes = True, self.loop.time(), 0

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_begin(self) -> None:
        self._at_request_start = False
        self._head_bytes = 0
        self._url_read = -1
        super().on_message_begin()

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge()

    def _count_url(self, url: bytes) -> None:
        """llhttp reads a target holding a space ("/a b") as one target,
        the space left out, handing it over in two pieces from one read;
        RFC 9112 section 3.2 (and h11) refuse such a request line. A target
        split across two reads is still one target."""
        if self._url_read == self._reads:
            raise SpacedTarget()
        self._url_read = self._reads
        self._count_head(len(url))

    def on_url(self, url: bytes) -> None:
        self._count_url(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers a parser error 400 at once, ahead of the answers
        still owed to the requests before it (and so, closing, without
        them). Those whose bodies are read are answered first, in order."""
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete and not cycle.more_body
                and not self.transport.is_closing()):
            self._refusal_due = msg
            self.flow.pause_reading()
            return
        self._send_refusal(msg)

    def _send_refusal(self, msg: str) -> None:
        # An oversized head is 431.
        if self._head_too_large:
            self.transport.write(_TOO_LARGE)
            self.transport.close()
            return
        super().send_400_response(msg)

    def on_message_complete(self) -> None:
        self._body_done()
        super().on_message_complete()
        self._message_done()

    def _body_done(self) -> None:
        self._reading_body = False
        self._disarm("_body_timer")

    def _message_done(self) -> None:
        self._at_request_start = True
        if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
            self._await_next_head()  # answered before its body ended: the next head starts now

    def data_received(self, data: bytes) -> None:
        if self._refused or self._refusal_due is not None:
            return
        self._reads += 1
        if self._reading_head:
            self._head_started = True
        if self._held or self._at_request_start:
            self._feed(data)  # a request line: judged whole, perhaps Vault's LIST
        else:
            HttpToolsProtocol.data_received(self, data)
        # Only a read that leaves a head or a body unfinished costs a timer.
        if self._reading_head:
            self._arm_head_timer()
        elif self._reading_body and self._body_timer is None and not self.transport.is_closing():
            self._arm_body_timer(self._body_since + self._limits.body_timeout)

    def _feed(self, data: bytes) -> None:
        if self._at_request_start:
            if self._held:
                data, self._held = self._held + data, b""
            if data.find(b"\r\n", 0, MAX_REQUEST_LINE) < 0 and len(data) < MAX_REQUEST_LINE:
                self._held = data  # a request line split across reads: wait for the rest
                return
            if not well_spaced(data):
                self.send_400_response("Invalid HTTP request received.")
                return
            if data.startswith(_LIST) and b"\r\n" in data:
                rewritten = rewrite_list(data)
                if rewritten is None:
                    self.send_400_response("Invalid HTTP request received.")
                    return
                data = rewritten
        super().data_received(data)
