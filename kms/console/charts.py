"""Usage charts as inline SVG, drawn on the server.

No scripts and no style attributes (the console's Content-Security-Policy
allows neither): colours and fonts come from the stylesheet's classes
chart-ok, chart-fail, chart-axis, chart-label and chart-grid. A viewBox and
width="100%" let a chart shrink to a phone's width. Every text is escaped.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from markupsafe import Markup, escape

from kms.audit_summary import HourCount

DAY = 86400
LABEL_WIDTH = 36  # room one "12-01" label needs, in viewBox units


class _Box:
    """Where the bars go inside the viewBox."""

    def __init__(self, width: int, height: int, left: int, top: int, bottom: int) -> None:
        self.width, self.height = int(width), int(height)  # never text in the viewBox
        self.x, self.y = left, top
        self.w = max(width - left - 4, 1)
        self.h = max(height - top - bottom, 1)
        self.base = top + self.h  # y of the zero line


def hourly_chart(counts: Sequence[HourCount], title: str, width: int = 720, height: int = 180) -> Markup:
    """Calls per hour as stacked bars (successes below, failures above),
    the y axis's maximum, and a label at each UTC day's start."""
    box = _Box(width, height, left=44, top=14, bottom=20)
    return _chart(counts, title, box, labels=True)


def sparkline(counts: Sequence[HourCount], title: str, width: int = 240, height: int = 48) -> Markup:
    """The same bars, small and without axis labels."""
    box = _Box(width, height, left=1, top=2, bottom=1)
    return _chart(counts, title, box, labels=False)


def _chart(counts: Sequence[HourCount], title: str, box: _Box, labels: bool) -> Markup:
    calls = sum(c.successes + c.failures for c in counts)
    failed = sum(c.failures for c in counts)
    summary = f"{_calls(calls)}{f', {failed:,} failed' if calls else ''}, {_period(len(counts))}"
    label = escape(f"{title}: {summary}")
    parts = [Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {box.width} {box.height}" '
                    f'width="100%" role="img" aria-label="{label}">'),
             Markup(f"<title>{label}</title>")]
    if calls:
        top = _nice(max(c.successes + c.failures for c in counts))
        if labels:
            parts += _grid(box, top)
        parts += _bars(counts, box, top)
    else:
        parts.append(_text(box.x + box.w / 2, box.y + box.h / 2 + 4, "no calls", "middle"))
    parts.append(_line(box.x, box.base, box.x + box.w, box.base, "chart-axis"))
    if labels:
        parts += _day_labels(counts, box)
    parts.append(Markup("</svg>"))
    return Markup("".join(parts))


def _bars(counts: Sequence[HourCount], box: _Box, top: int) -> list[Markup]:
    step = box.w / len(counts)
    width = step - (0.5 if step >= 2 else 0)  # a hairline between bars, when there is room
    out = []
    for i, c in enumerate(counts):
        x = box.x + i * step
        ok = c.successes / top * box.h
        bad = c.failures / top * box.h
        if c.successes:
            out.append(_rect(x, box.base - ok, width, ok, "chart-ok"))
        if c.failures:
            out.append(_rect(x, box.base - ok - bad, width, bad, "chart-fail"))
    return out


def _grid(box: _Box, top: int) -> list[Markup]:
    """Lines at the maximum and half of it, the y axis and its maximum."""
    out = [_line(box.x, box.y + box.h * f, box.x + box.w, box.y + box.h * f, "chart-grid")
           for f in (0.0, 0.5)]
    out.append(_line(box.x, box.y, box.x, box.base, "chart-axis"))
    out.append(_text(box.x - 4, box.y + 4, _short(top), "end"))
    out.append(_text(box.x - 4, box.base, "0", "end"))
    return out


def _day_labels(counts: Sequence[HourCount], box: _Box) -> list[Markup]:
    """A tick and "MM-DD" at each UTC midnight, spaced so labels never
    overlap; a series with no midnight has its first day labelled."""
    if not counts:
        return []
    step = box.w / len(counts)
    every = max(1, -(-LABEL_WIDTH // max(int(step * 24), 1)))  # days between labels
    midnights = [i for i, c in enumerate(counts) if c.start % DAY == 0]
    chosen = [i for i in midnights if (counts[i].start // DAY) % every == 0] or [0]
    out = []
    for i in chosen:
        x = box.x + i * step
        if x + LABEL_WIDTH > box.x + box.w + 4:  # would run off the right edge
            continue
        out.append(_line(x, box.base, x, box.base + 4, "chart-axis"))
        out.append(_text(x + 2, box.base + 15, time.strftime("%m-%d", time.gmtime(counts[i].start)), "start"))
    return out


def _nice(n: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least n."""
    scale = 1
    while True:
        for m in (1, 2, 5):
            if m * scale >= n:
                return m * scale
        scale *= 10


def _short(n: int) -> str:
    """A _nice number in a few characters: 500, 2k, 10M (it fits the margin)."""
    for size, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= size and n % size == 0:
            return f"{n // size:,}{suffix}"
    return f"{n:,}"


def _calls(n: int) -> str:
    return "no calls" if n == 0 else "1 call" if n == 1 else f"{n:,} calls"


def _period(hours: int) -> str:
    if hours >= 48 and hours % 24 == 0:
        return f"last {hours // 24} days"
    return "last hour" if hours == 1 else f"last {hours} hours"


def _num(v: float) -> str:
    """A coordinate, short: 12.5, 3, 0.25."""
    return f"{v:.2f}".rstrip("0").rstrip(".")


# The elements: numbers and this module's own class names go in as they
# are (Markup.format per bar cost ten times more); text is escaped.

def _rect(x: float, y: float, w: float, h: float, cls: str) -> Markup:
    return Markup(f'<rect class="{cls}" x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}"/>')


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> Markup:
    return Markup(f'<line class="{cls}" x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}"/>')


def _text(x: float, y: float, text: str, anchor: str) -> Markup:
    return Markup(f'<text class="chart-label" x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}">'
                  f'{escape(text)}</text>')
