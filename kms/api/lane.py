"""The hot routes' ASGI lane, in front of the Starlette application.

Transit encrypt/decrypt/rewrap and the bulk routes carry nearly all of the
traffic, and for a 1 KiB encrypt Starlette's routing, middleware and
Request object cost more than authentication, policy, AES-GCM and audit
together. The lane matches those paths by prefix straight from the ASGI
scope, reads the body itself and hands it to the same adapter method
(``respond``) that the Starlette routes use, so behaviour is one code path;
only the I/O in front of it differs. Everything else goes to Starlette.

The same adapters (HotAdapter) serve the hot routes under kms.api.http1,
which reads them off the connection without ASGI; this lane serves them
under h11 and in tests that drive the ASGI app.
"""
from typing import Any, Awaitable, Callable, Dict, List, Mapping, MutableMapping, Optional, Protocol, Tuple

from starlette.responses import Response

from kms.numbers import ascii_int

# Starlette's ASGI types, so its application and its requests' receive fit.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METHODS = ("POST", "PUT")
PREALLOCATE = 1 << 20  # bodies declared at least this large are read into one buffer
# The request headers the hot handlers read.
WANTED = frozenset((b"x-vault-token", b"authorization", b"content-length", b"content-type"))


Handler = Callable[..., Response]


class HotRequest(Protocol):
    """What an adapter reads of a hot request."""

    @property
    def method(self) -> str: ...

    @property
    def path_params(self) -> Mapping[str, str]:  # {"name": the key name after the prefix}
        ...

    @property
    def headers(self) -> Mapping[str, str]:  # lower-case names
        ...


class HotAdapter(Protocol):
    """The contract of an adapter whose routes the lane (and kms.api.http1)
    serve: kms.api.transit.endpoint.Transit and kms.api.bulk.Bulk.

    An adapter may also name body_buffer(length), the writable buffer a
    large body with a declared length is read into (bytearray otherwise);
    a Protocol cannot declare an optional member, so readers getattr it."""

    body_limit: int  # bodies larger than this are answered 413 ...
    too_large: str  # ... with this message, through error()

    def hot_routes(self) -> Dict[str, Tuple[Handler, bool]]:
        """path prefix -> (handler, inline); the key name follows the prefix."""

    def error(self, status: int, messages: List[str]) -> Response:
        """A refusal in the adapter's own format."""

    def unsupported(self, *args: Any) -> Response:
        """The handler for methods a hot route does not serve (405, once
        authenticated and audited)."""

    async def respond(self, handler: Handler, request: HotRequest, data: Any,
                      inline: bool = False) -> Response:
        """The answer to one request whose body is `data` (bytes or a
        buffer); inline: the handler may run on the event loop."""


class LaneRequest:
    """What the hot handlers read of a request: method, the key name as a
    path parameter, and a few headers (lower-case names, first one wins,
    values without the whitespace around them, RFC 9112 section 5: h11
    strips it, httptools leaves trailing whitespace in)."""

    __slots__ = ("method", "path_params", "headers")

    def __init__(self, method: str, name: str, raw_headers: List[Tuple[bytes, bytes]]) -> None:
        self.method = method
        self.path_params = {"name": name}
        headers: Dict[str, str] = {}
        for key, value in raw_headers:
            if key in WANTED:
                headers.setdefault(key.decode("latin-1"), value.decode("latin-1").strip(" \t"))
        self.headers = headers


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


async def read_body(receive: Receive, declared: Optional[str], limit: int,
                    allocate: Callable[[int], Any] = bytearray) -> Optional[Any]:
    """The whole body (bytes, or for large declared bodies a writable buffer
    from allocate(length)), or None when it is (or declares itself) over
    limit."""
    length = ascii_int(declared, negative=False) if declared is not None else None
    if length is not None and length > limit:
        return None
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone()
    body = message.get("body", b"")
    if len(body) > limit:
        return None
    if not message.get("more_body", False):
        return body  # the common case: one message, no join
    if length is not None and length >= PREALLOCATE:
        return await _read_into(receive, body, allocate(length))
    chunks, size = [body], len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _read_into(receive: Receive, first: bytes, body: Any) -> Any:
    """A large body with a declared length, copied once into its final
    buffer as it arrives: a 10 MB bulk request never exists as chunks and a
    joined copy at once. (The server holds the peer to the declared length.)"""
    view = memoryview(body)
    length = len(view)
    if len(first) > length:
        raise ClientGone()
    view[:len(first)] = first
    filled = len(first)
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if filled + len(chunk) > length:  # not from uvicorn, which holds to the length
            raise ClientGone()
        view[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
        more = message.get("more_body", False)
    view.release()
    if filled != length:  # never hand on a buffer's unfilled (recycled) tail
        raise ClientGone()
    return body


async def send_response(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    body = getattr(response, "body", None)
    if body is None:  # streaming responses send themselves
        await response(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": body})


Route = Tuple[HotAdapter, Handler, bool, str]  # adapter, handler, inline, key name


class Lane:
    """The hot routes of `adapters` (see HotAdapter) ahead of `app`."""

    def __init__(self, app: ASGIApp, adapters: List[HotAdapter]) -> None:
        self.app = app
        self.routes: List[Tuple[str, HotAdapter, Handler, bool]] = [
            (prefix, adapter, handler, inline)
            for adapter in adapters
            for prefix, (handler, inline) in adapter.hot_routes().items()]

    def match(self, path: str) -> Optional[Route]:
        """The hot route serving this (decoded) path, or None."""
        for prefix, adapter, handler, inline in self.routes:
            if path.startswith(prefix):
                name = path[len(prefix):]
                if name and "/" not in name:
                    return adapter, handler, inline, name
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = self.match(scope["path"]) if scope["type"] == "http" else None
        if hit is None:
            await self.app(scope, receive, send)
            return
        adapter, handler, inline, name = hit
        if scope["method"] not in METHODS:  # authenticated, audited, then 405
            handler = adapter.unsupported
        request = LaneRequest(scope["method"], name, scope["headers"])
        try:
            data = await read_body(receive, request.headers.get("content-length"), adapter.body_limit,
                                   getattr(adapter, "body_buffer", bytearray))
        except ClientGone:
            return
        if data is None:
            response = adapter.error(413, [adapter.too_large])
        else:
            response = await adapter.respond(handler, request, data, inline)
        await send_response(response, scope, receive, send)
