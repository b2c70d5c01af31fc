"""kms.api.http1's protocol in process: a transport that records what the
protocol writes, an echo adapter for the hot routes and an echo ASGI app
for the rest, so tests can feed bytes in any pieces and read the answers.
(Not a conftest.py: the fuzz test and the direct tests import it.)"""
import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

import uvicorn
from starlette.responses import StreamingResponse
from uvicorn.server import ServerState

from kms.api.http1 import Http1Protocol
from kms.api.lane import Lane
from kms.api.transit.responses import RawJSON
from kms.server import Limits

LIMIT = 64  # the echo adapter's body limit
HOT_PREFIXES = {"/v1/transit/encrypt/": "encrypt", "/v1/bulk/encrypt/": "bulk"}


class EchoAdapter:
    """A HotAdapter that answers what it was given: the handler, method, key
    name, headers and body. Some answers wait a loop iteration or two (as
    the real ones wait for their audit line), so pipelined answers finish
    out of order unless the protocol keeps them in order; bulk answers
    stream."""

    body_limit = LIMIT
    too_large = "too large"

    def __init__(self) -> None:
        self.calls = 0

    def hot_routes(self) -> Dict[str, Tuple[Any, bool]]:
        return {"/v1/transit/encrypt/": (self.encrypt, True), "/v1/bulk/encrypt/": (self.bulk, False)}

    @staticmethod
    def error(status: int, messages: List[str]) -> RawJSON:
        return RawJSON(json.dumps({"errors": messages}).encode(), status)

    def encrypt(self) -> None:
        pass

    def bulk(self) -> None:
        pass

    def unsupported(self) -> None:
        pass

    async def respond(self, handler: Any, request: Any, data: Any, inline: bool = False) -> Any:
        self.calls += 1
        data = bytes(data)
        for _ in range((len(data) + self.calls) % 3):
            await asyncio.sleep(0)
        answer = json.dumps({"k": "hot", "h": handler.__name__, "m": request.method,
                             "n": request.path_params["name"], "hd": sorted(request.headers.items()),
                             "b": data.hex()}).encode()
        status = 405 if handler == self.unsupported else 200
        if handler == self.bulk:
            async def pieces():
                yield answer[:7]
                yield answer[7:]
            return StreamingResponse(pieces(), status_code=status, media_type="application/json")
        return RawJSON(answer, status)


async def echo_app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = json.dumps({"k": "asgi", "m": scope["method"], "p": scope["path"],
                         "q": scope["query_string"].decode("latin-1"),
                         "hd": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                         "b": body.hex()}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


def make_config(limits: Limits = Limits(), adapter: Optional[EchoAdapter] = None) -> uvicorn.Config:
    config = uvicorn.Config(app=Lane(echo_app, [adapter or EchoAdapter()]), proxy_headers=False,
                            server_header=False, date_header=False, log_config=None, ws="none",
                            timeout_keep_alive=5)
    config.limits = limits  # type: ignore[attr-defined]
    config.load()
    return config


CONFIG = make_config()


class RecordingTransport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.out = bytearray()
        self.closed = False
        self.paused = False
        self.late_writes = 0
        self.protocol: Any = None

    def write(self, data: Any) -> None:
        if self.closed:
            self.late_writes += 1
            return
        self.out += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8300)}.get(name, default)


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Conversation:
    out: bytes
    closed: bool
    stuck: bool  # data was left unread: the protocol stopped reading and never resumed
    errors: List[str] = field(default_factory=list)  # logged errors and loop exceptions


async def settle(transport: RecordingTransport, state: ServerState, rounds: int = 400) -> None:
    """Run the loop until no task is left and the output has stopped growing."""
    still, size = 0, -1
    for _ in range(rounds):
        await asyncio.sleep(0)
        if not state.tasks and len(transport.out) == size:
            still += 1
            if still >= 3:
                return
        else:
            still, size = 0, len(transport.out)


async def converse_async(chunks: Iterable[bytes], config: uvicorn.Config = CONFIG,
                         protocol_class: Any = Http1Protocol, state: Optional[ServerState] = None,
                         keep_open: bool = False) -> Tuple[Conversation, Any, RecordingTransport]:
    loop = asyncio.get_running_loop()
    problems: List[str] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(str(context.get("message"))))
    logged = ErrorLog()
    logging.getLogger("uvicorn.error").addHandler(logged)
    state = state or ServerState()
    try:
        protocol = protocol_class(config=config, server_state=state, app_state={}, _loop=loop)
        transport = RecordingTransport(loop)
        transport.protocol = protocol
        protocol.connection_made(transport)
        stuck = False
        for chunk in chunks:
            for _ in range(400):
                if not transport.paused or transport.closed:
                    break
                await asyncio.sleep(0)
            if transport.closed:
                break
            if transport.paused:
                stuck = True
                break
            protocol.data_received(chunk)
            await asyncio.sleep(0)
        await settle(transport, state)
        if not keep_open and not transport.closed:
            transport.close()
            await asyncio.sleep(0)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(logged)
    problems += [record.getMessage() for record in logged.records]
    return Conversation(bytes(transport.out), transport.closed, stuck, problems), protocol, transport


def converse(chunks: Iterable[bytes], **kwargs: Any) -> Conversation:
    async def run() -> Conversation:
        return (await converse_async(chunks, **kwargs))[0]
    return asyncio.run(run())


@dataclass
class Answer:
    status: int
    headers: List[Tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


def parse_answers(out: bytes, head_only: Iterable[bool] = ()) -> Tuple[List[Answer], List[int], bytes]:
    """The final answers in `out` (bodies by Content-Length, or chunked; none
    for the answers flagged in head_only, in order, unless they are the
    protocol's 400, which stands for a request it could not read), the statuses of the
    interim (1xx) ones, and whatever is left over."""
    flags = list(head_only)
    answers: List[Answer] = []
    interim: List[int] = []
    rest = out
    while rest:
        head, sep, after = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
        if status < 200:
            interim.append(status)
            rest = after
            continue
        answer = Answer(status, headers, b"")
        if len(answers) < len(flags) and flags[len(answers)] and status != 400:  # refusals carry a body
            rest = after
        elif answer.header("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, after = after.partition(b"\r\n")
                size = int(size_line, 16)
                body, after = body + after[:size], after[size + 2:]
                if size == 0:
                    break
            answer.body, rest = body, after
        else:
            length = int(answer.header("content-length") or 0)
            if len(after) < length:
                break
            answer.body, rest = after[:length], after[length:]
        answers.append(answer)
    return answers, interim, rest
