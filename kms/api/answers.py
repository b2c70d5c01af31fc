"""How an adapter answers a call, the same for every protocol: run the work,
turn an exception into the protocol's error through that protocol's one
table (as Starlette's exception handlers map classes to responses), log
faults of our own with the request's id and action (never its body), and
release the answer only once its audit line is written."""
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Type

from starlette.responses import Response

from kms.audit import AuditLog


class ProtocolError(NamedTuple):
    status: int
    messages: List[str]
    internal: bool = False  # a fault on our side: logged with its traceback
    code: Optional[str] = None  # the protocol's error code, where it names errors so


INTERNAL = ProtocolError(500, ["internal error"], True)
Row = Tuple[Type[BaseException], Callable[[Any], ProtocolError]]
Render = Callable[[ProtocolError, Dict[str, Any]], Response]
FaultLog = Callable[[BaseException, Dict[str, Any]], None]


class ErrorTable:
    """Exception classes to a protocol's errors, most specific first; an
    exception no row names is the fallback, an internal error."""

    def __init__(self, rows: Sequence[Row], fallback: ProtocolError = INTERNAL) -> None:
        self.rows, self.fallback = list(rows), fallback

    def lookup(self, exc: BaseException) -> ProtocolError:
        for cls, answer in self.rows:
            if isinstance(exc, cls):
                return answer(exc)
        return self.fallback


class Answerer:
    """render(error, seen): the error as a response in the protocol's
    format. withheld: the error answered when the audit line cannot be
    written. name: the protocol, as log lines name it. log_fault: how an
    internal error is logged (default: its id, action and traceback)."""

    def __init__(self, name: str, audit: Optional[AuditLog], table: ErrorTable, render: Render,
                 withheld: ProtocolError, log: logging.Logger, log_fault: Optional[FaultLog] = None) -> None:
        self.name, self.audit, self.table, self.render = name, audit, table, render
        self.withheld, self.log = withheld, log
        self.log_fault = log_fault or self._log_fault

    def _log_fault(self, exc: BaseException, seen: Dict[str, Any]) -> None:
        self.log.error("%s request %s (%s) failed", self.name, seen.get("request_id"),
                       seen.get("action"), exc_info=exc)

    def error(self, exc: BaseException, seen: Dict[str, Any]) -> Response:
        found = self.table.lookup(exc)
        if found.internal:
            self.log_fault(exc, seen)
        seen["result"] = found.code
        return self.render(found, seen)

    async def answer(self, seen: Dict[str, Any], work: Callable[[], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        try:
            response = await work()
        except Exception as exc:
            response = self.error(exc, seen)
        return await self.audited(response, seen, started)

    async def audited(self, response: Response, seen: Dict[str, Any], started: float) -> Response:
        """The response once its audit line is written. If it cannot be
        written, a result or refusal is not released; a change whose intent
        is on record is answered as it is. The audit result is the
        protocol's code where it has one, else the HTTP status."""
        result = seen.get("result") or str(response.status_code)
        latency = round((time.perf_counter() - started) * 1000, 3)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("request=%s action=%r result=%s ms=%.2f", seen.get("request_id"),
                           seen.get("action") or "-", result, latency)
        if self.audit is None:
            return response
        withheld = await self.audit.outcome(bool(seen.get("intent")), request_id=seen.get("request_id"),
                                            account=seen.get("account"), action=seen.get("action"),
                                            key_id=seen.get("key_id"), result=result,
                                            latency_ms=latency)
        return response if withheld is None else self.render(self.withheld, seen)
