"""Audit log usage summary, audit page and chart benchmarks, in one run.

    .venv/bin/python benchmarks/bench_audit_chart.py [--lines 1000000] [--repeat 3]

Writes an audit log of --lines lines (chained as AuditLog chains them, over
7 days and 1,000 keys; a few console calls and state changes with their
intent lines), then times: the summary's first refresh (cold build, no
index), a new worker's first refresh (the index is loaded), a refresh after
1,000 more lines, hourly() for one key and for all, the charts, chain()
cold and after 1,000 more lines, and an audit page (newest_first) with and
without filters. kms.audit.verify over the same file, measured in the same
run, is the reference: the table gives how many times longer it takes. Prints one table of medians and writes
.benchmarks/audit-chart-summary.json. Under pytest (python_files takes
bench_*.py) the same run is made on a small log, as a quick check.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from kms import audit
from kms.audit_query import AuditFilter, newest_first
from kms.audit_summary import UsageSummary
from kms.console import charts

DAYS = 7
KEYS = 1000
RESULTS = ["Success"] * 8 + ["200"] * 6 + ["204", "400", "403", "ResourceUnavailable.CmkDisabled",
                                            "AuthFailure.SignatureFailure"]


def key_ids(rnd: random.Random) -> list[str]:
    return [f"kms-{rnd.getrandbits(40):010x}" for _ in range(KEYS)]


def entry(rnd: random.Random, keys: list[str], i: int, when: float) -> list[dict[str, Any]]:
    """One call's lines: an intent and its outcome for a state change."""
    fields = {"time": round(when, 3), "request_id": f"req-{i:09d}", "account": f"AKID{i % 7:04d}",
              "action": rnd.choice(["Encrypt", "Decrypt", "GenerateDataKey", "encrypt", "decrypt"]),
              "key_id": rnd.choice(keys), "result": rnd.choice(RESULTS),
              "latency_ms": round(rnd.random() * 5, 3)}
    if i % 100 == 0:
        fields["via"] = "console"
    if i % 50 == 1:
        fields["action"] = "DisableKey"
        return [dict(fields, result=audit.STARTED, latency_ms=None), fields]
    return [fields]


def chained_lines(entries: list[dict[str, Any]], last: str) -> tuple[str, str]:
    """The lines AuditLog would write for entries after the hash `last`."""
    out = []
    for fields in entries:
        body = audit._canonical(dict(fields, prev=last))
        last = audit._hash(last, body)
        out.append(body[:-1] + ',"hash":"' + last + '"}\n')
    return "".join(out), last


def write_log(path: str, lines: int, end: float, seed: int = 1) -> list[str]:
    """`lines` lines over the DAYS days before `end`; returns the key ids."""
    rnd = random.Random(seed)
    keys = key_ids(rnd)
    last, written, calls = audit.GENESIS, 0, 0
    start, span = end - DAYS * 86400, DAYS * 86400
    with open(path, "w", encoding="ascii") as f:
        while written < lines:
            batch: list[dict[str, Any]] = []
            while len(batch) < min(10_000, lines - written):
                batch += entry(rnd, keys, calls, start + span * (written + len(batch)) / lines)
                calls += 1
            text, last = chained_lines(batch[:lines - written], last)
            f.write(text)
            written += len(batch[:lines - written])
    return keys


def append(path: str, n: int, keys: list[str], when: float) -> None:
    """n more calls, written by AuditLog itself."""
    rnd = random.Random(n)
    log = audit.AuditLog(path)
    try:
        log.record_many([entry(rnd, keys, 10**8 + i, when)[-1] for i in range(n)])
    finally:
        log.close()


def timed(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> tuple[float, float]:
    """(best, median) seconds of fn over `repeat` runs, setup untimed before each."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def run(workdir: str, lines: int, repeat: int) -> list[dict[str, Any]]:
    path, index = os.path.join(workdir, "audit.log"), os.path.join(workdir, "usage.idx")
    now = time.time()
    started = time.perf_counter()
    keys = write_log(path, lines, now)
    os.sync()  # the log's write-back must not slow what is measured next
    print(f"wrote {lines:,} lines ({os.path.getsize(path) / 1e6:.0f} MB) in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    rows: list[dict[str, Any]] = []

    def row(name: str, best_median: tuple[float, float], **extra: Any) -> None:
        rows.append({"operation": name, "best_s": best_median[0], "median_s": best_median[1], **extra})
        print(f"{name:48} {best_median[1] * 1000:10.2f} ms", file=sys.stderr)

    def drop_index() -> None:
        for p in (index, index + ".lock"):
            if os.path.exists(p):
                os.remove(p)

    row("kms.audit.verify (reference)", timed(lambda: audit.verify(path), repeat), reference=True)
    row("refresh, cold (no index)", timed(lambda: UsageSummary(path, index).refresh(), repeat, drop_index))
    row("refresh, new worker (index loaded)", timed(lambda: UsageSummary(path, index).refresh(), repeat))
    summary = UsageSummary(path, index)
    summary.refresh()
    row("refresh after 1,000 more lines", timed(summary.refresh, repeat, lambda: append(path, 1000, keys, now)))
    many = max(repeat, 50)
    row("hourly(), one key, 168 h", timed(lambda: summary.hourly(keys[0], now), many))
    row("hourly(), all calls, 168 h", timed(lambda: summary.hourly(None, now), many))
    series = summary.hourly(None, now)
    row("hourly_chart(), 168 bars", timed(lambda: charts.hourly_chart(series, "All calls"), many))
    row("sparkline(), 168 bars", timed(lambda: charts.sparkline(series, "All calls"), many))
    row("chain(), cold (no index)", timed(lambda: UsageSummary(path, index).chain(), repeat, drop_index))
    summary = UsageSummary(path, index)
    summary.chain()
    row("chain() after 1,000 more lines", timed(summary.chain, repeat, lambda: append(path, 1000, keys, now)))
    pages = [("newest_first(), no filter", AuditFilter()),
             ("newest_first(), one key", AuditFilter(key_id=keys[0])),
             ("newest_first(), failures since a day ago", AuditFilter(result="failure", since=now - 86400)),
             ("newest_first(), matching nothing (64 MiB scan)", AuditFilter(key_id="no-such-key"))]
    for name, chosen in pages:
        row(name, timed(page_of(path, chosen), max(repeat, 5)))
    return rows


def page_of(path: str, chosen: AuditFilter) -> Callable[[], Any]:
    return lambda: newest_first(path, chosen)


def print_table(rows: list[dict[str, Any]], lines: int) -> None:
    ref = next(r for r in rows if r.get("reference"))
    print(f"| operation ({lines:,} lines) | median ms | best ms | verify's time / this (median) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        times = ref["median_s"] / r["median_s"]
        ratio = "(reference)" if r is ref else f"{times:,.1f}x" if times < 100 else f"{times:,.0f}x"
        print(f"| {r['operation']} | {r['median_s'] * 1000:.2f} | {r['best_s'] * 1000:.2f} | {ratio} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the audit log")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each slow measurement")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kms-bench-audit-")
    try:
        rows = run(workdir, args.lines, args.repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows, args.lines)
    os.makedirs(".benchmarks", exist_ok=True)
    with open(".benchmarks/audit-chart-summary.json", "w") as f:
        json.dump({"lines": args.lines, "rows": rows}, f, indent=1)
    return 0


def test_small_run(tmp_path: Any) -> None:
    """The benchmark on a small log: every step runs, and the log it writes
    is a chain that the summary and verify both accept."""
    rows = run(str(tmp_path), 3000, 1)
    assert len(rows) == 14
    assert audit.verify(str(tmp_path / "audit.log"))[1] is None
    summary = UsageSummary(str(tmp_path / "audit.log"), str(tmp_path / "check.idx"))
    assert summary.chain() == audit.verify(str(tmp_path / "audit.log"))


if __name__ == "__main__":
    sys.exit(main())
