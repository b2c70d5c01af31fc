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
"""
import asyncio
from typing import Any, Optional

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_LIST = b"LIST "
HOLD_MAX = 64 * 1024  # writes at least this large are never held or joined
MAX_HEAD_BYTES = 32 * 1024  # request line + headers; tokens and signatures are < 1 KiB
_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
              b"content-length: 32\r\nconnection: close\r\n\r\nrequest header fields too large\n")


class HeadTooLarge(Exception):
    """Raised inside a parser callback: httptools stops parsing at once."""


def rewrite_list(data: bytes) -> bytes:
    """b"LIST /p?q HTTP/1.1..." -> b"GET /p?q&list=true HTTP/1.1..."."""
    line_end = data.index(b"\r\n")
    method, target, version = data[:line_end].split(b" ", 2)
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
        self._head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]

    def on_message_begin(self) -> None:
        self._at_request_start = False
        self._head_bytes = 0
        super().on_message_begin()

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers any parser error 400; an oversized head is 431.
        if self._head_too_large:
            self.transport.write(_TOO_LARGE)
            self.transport.close()
            return
        super().send_400_response(msg)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._at_request_start = True

    def data_received(self, data: bytes) -> None:
        if self._at_request_start:
            if self._held:
                data, self._held = self._held + data, b""
            if _LIST.startswith(data[:5]) and (len(data) < 5 or b"\r\n" not in data):
                if len(data) < 8192:  # a request line split across reads: wait for the rest
                    self._held = data
                    return
            if data.startswith(_LIST) and b"\r\n" in data:
                data = rewrite_list(data)
        super().data_received(data)
