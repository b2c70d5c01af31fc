"""The Starlette application: routes, the background scheduler, and (only
with the explicit test flag) a route that shifts the service's clock."""
import asyncio
import contextlib
import fcntl
import logging
import os
from typing import AsyncIterator, Awaitable, Callable, List, Optional

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send

import kms
from kms import aead, errors
from kms.api.tencent.endpoint import TencentEndpoint
from kms.api.tencent.replay import SLOTS as REPLAY_SLOTS, SharedSeen
from kms.api.bulk import Bulk
from kms.api.lane import Lane
from kms.api.transit.endpoint import Transit
from kms.audit import AuditLog
from kms.console.app import Console
from kms.server import Runtime, open_data_dir
from kms.store import Op

log = logging.getLogger("kms.api")
SCHEDULER_PERIOD = 30.0


class AnyMethod:
    """A request handler as an ASGI app: Route hands an app (unlike a
    function) requests of every method, LIST and made-up ones included."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self._app = request_response(handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def create_app(runtime: Runtime, test_clock: bool = False,
               scheduler_period: float = SCHEDULER_PERIOD) -> Lane:
    def sync_clock() -> None:
        # Tests shift time through the store so every worker agrees.
        runtime.clock.offset = float(runtime.store.get("test", "clock-offset") or 0)

    audit = AuditLog(os.path.join(runtime.data_dir, "audit.log"))
    endpoint = TencentEndpoint(runtime.services, audit,
                               before_request=sync_clock if test_clock else None,
                               seen=SharedSeen(os.path.join(runtime.data_dir, "replay.table"),
                                               slots=replay_slots(),
                                               key=runtime.keys.wrapper.derive("replay-table")),
                               allowed_hosts=allowed_hosts())

    console = (Console(runtime, audit, before_request=sync_clock if test_clock else None)
               if console_enabled() else None)

    async def tencent_action(request: Request) -> Response:
        if console is not None and request.method == "GET" and wants_html(request):
            return RedirectResponse("/console/", status_code=303)  # a browser, not the SDK
        return await endpoint(request)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": kms.__version__,
                             "aead_backend": aead.BACKEND, "worker": os.getpid()})

    def run_due() -> dict:
        runtime.store.refresh()
        if test_clock:
            sync_clock()
        done = runtime.services.run_due()
        if console is not None:
            console.warm()
        return done

    async def scheduler() -> None:
        """Rotations and deletions that fall due; the first pass also
        catches up on whatever fell due while the server was down. One
        worker at a time holds the scheduler lock and does the work."""
        lock_path = os.path.join(runtime.data_dir, "scheduler.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass  # another worker is the scheduler
                else:
                    try:
                        done = await run_in_threadpool(run_due)
                        if done["rotated"] or done["deleted"]:
                            log.info("scheduler: rotated %d, deleted %d keys",
                                     len(done["rotated"]), len(done["deleted"]))
                    except errors.ServiceUnavailable as exc:
                        # A full or read-only disk: the pass is retried next
                        # period, and the cause needs no traceback.
                        log.warning("scheduler pass skipped: %s", exc)
                    except Exception:
                        log.exception("scheduler pass failed")
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                await asyncio.sleep(scheduler_period)
        finally:
            os.close(fd)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("kms %s: AEAD backend %s, root key from %s", kms.__version__,
                 aead.BACKEND, runtime.root_source)
        task = asyncio.create_task(scheduler())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    transit = Transit(runtime.services, audit,
                      before_request=sync_clock if test_clock else None)
    # Every method reaches the endpoint, so that every call to / is answered
    # in the protocol's form, and audited (only POST is served).
    routes = [Route("/", AnyMethod(tencent_action)),
              Route("/health", health, methods=["GET"])]
    if test_clock:
        async def shift_clock(request: Request) -> JSONResponse:
            # A test aid still moves every deletion window: root only.
            account = await run_in_threadpool(transit.authenticate_quietly, request)
            if account is None or account["kind"] != "root":
                return JSONResponse({"errors": ["permission denied"]}, status_code=403)
            body = await request.json()
            offset = float(body.get("offset", 0))
            await run_in_threadpool(runtime.store.commit,
                                    lambda: [Op("put", "test", "clock-offset", offset)])
            done = await run_in_threadpool(run_due)
            return JSONResponse({"offset": offset, **done})

        routes.append(Route("/_test/clock", shift_clock, methods=["POST"]))
    if console is not None:
        routes += console.routes()
    routes += transit.routes()  # last: ends with the /v1/ catch-all
    # The hot crypto routes (transit encrypt/decrypt/rewrap, bulk) are
    # served by the lane before Starlette sees them.
    return Lane(Starlette(routes=routes, lifespan=lifespan), [transit, Bulk(transit)])


def console_enabled() -> bool:
    """KMS_NO_CONSOLE=1 (kms server --no-console) turns the web console off."""
    return os.environ.get("KMS_NO_CONSOLE") != "1"


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def replay_slots() -> int:
    """KMS_REPLAY_SLOTS (kms server --replay-slots): the replay table's size."""
    return int(os.environ.get("KMS_REPLAY_SLOTS") or REPLAY_SLOTS)


def allowed_hosts() -> Optional[List[str]]:
    """KMS_ALLOWED_HOSTS (kms server --allowed-host, comma-separated): the
    Host values a signed Tencent request may name; unset means any."""
    value = os.environ.get("KMS_ALLOWED_HOSTS", "")
    hosts = [h.strip() for h in value.split(",") if h.strip()]
    return hosts or None


def app_from_environment() -> Lane:
    """The factory uvicorn workers call: settings come from the environment
    that ``kms server`` prepared."""
    runtime = open_data_dir(os.environ["KMS_DATA_DIR"], initialise=False)
    return create_app(runtime, test_clock=os.environ.get("KMS_TEST_CLOCK") == "1",
                      scheduler_period=float(os.environ.get("KMS_SCHEDULER_PERIOD", SCHEDULER_PERIOD)))
