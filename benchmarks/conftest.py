"""Collects every benchmark's timings and prints one table at the end, with
each row's ratio against its named reference measured in the same run.
Also written to .benchmarks/aead-summary.json."""
import json
import pathlib
from typing import Dict, List

import pytest

ROWS: List[Dict] = []


@pytest.fixture
def record():
    """record(benchmark_or_times, group=..., impl=..., reference=..., items=..., nbytes=...)"""

    def _record(source, **row):
        if hasattr(source, "stats"):
            if source.stats is None:  # benchmarks disabled
                return
            stats = source.stats.stats
            row["best_s"], row["median_s"] = stats.min, stats.median
        else:
            row["best_s"], row["median_s"] = source
        ROWS.append(row)

    return _record


def _table() -> List[str]:
    refs = {(r["group"], r["impl"]): r for r in ROWS}
    lines = [
        "| scenario | implementation | GB/s (best) | per item, us (best / median) | ratio vs reference (best / median) | reference | vs OpenSSL without VAES (best / median) |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for r in ROWS:
        per_item_best = r["best_s"] / r["items"] * 1e6
        per_item_median = r["median_s"] / r["items"] * 1e6
        gbps = r["nbytes"] * r["items"] / r["best_s"] / 1e9
        ref = refs.get((r["group"], r["reference"])) if r.get("reference") else None
        if ref is not None and ref is not r:
            ratio = f"{ref['best_s'] / r['best_s']:.2f}x / {ref['median_s'] / r['median_s']:.2f}x"
            ref_name = r["reference"]
        else:
            ratio, ref_name = "(reference)" if ref is r else "", ""
        alt = refs.get((r["group"], "cryptography, no VAES"))
        alt_ratio = ""
        if alt is not None and alt is not r:
            alt_ratio = f"{alt['best_s'] / r['best_s']:.2f}x / {alt['median_s'] / r['median_s']:.2f}x"
        r["gb_per_s"] = gbps
        lines.append(f"| {r['group']} | {r['impl']} | {gbps:.2f} | {per_item_best:.3f} / {per_item_median:.3f} | {ratio} | {ref_name} | {alt_ratio} |")
    return lines


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    terminalreporter.section("kms benchmark summary (ratios: reference time / our time; >1 means faster)")
    for line in _table():
        terminalreporter.write_line(line)
    out = pathlib.Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "aead-summary.json").write_text(json.dumps(ROWS, indent=1))
