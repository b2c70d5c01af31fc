"""Usage charts: well-formed SVG with a bar per hour that had calls, totals
said in words, escaped text, and nothing the page's CSP forbids."""
import calendar
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from kms.audit_summary import HourCount
from kms.console import charts

T0 = calendar.timegm((2024, 12, 1, 0, 0, 0))
SVG = "{http://www.w3.org/2000/svg}"


def week(fill=lambda h: (h % 5, 1 if h % 7 == 0 else 0)):
    return [HourCount(T0 + h * 3600, *fill(h)) for h in range(168)]


def parse(svg):
    assert isinstance(svg, Markup)
    root = ET.fromstring(str(svg))
    assert root.tag == SVG + "svg"
    return root


def rects(root, cls):
    return [r for r in root.iter(SVG + "rect") if r.get("class") == cls]


def texts(root):
    return [t.text for t in root.iter(SVG + "text")]


@pytest.mark.parametrize("draw", [charts.hourly_chart, charts.sparkline])
def test_one_bar_per_hour_with_calls_stacked(draw):
    counts = week()
    root = parse(draw(counts, "Calls"))
    ok, failed = rects(root, "chart-ok"), rects(root, "chart-fail")
    assert len(ok) == sum(1 for c in counts if c.successes)
    assert len(failed) == sum(1 for c in counts if c.failures)
    # A failure bar sits right on its hour's success bar.
    ok_at = {r.get("x"): r for r in ok}
    for bar in failed:
        below = ok_at.get(bar.get("x"))
        if below is not None:
            assert float(bar.get("y")) + float(bar.get("height")) == pytest.approx(float(below.get("y")), abs=0.02)
    xs = [float(r.get("x")) for r in ok]
    assert xs == sorted(xs)  # oldest first, left to right


def test_bar_heights_follow_the_counts():
    counts = [HourCount(T0 + h * 3600, s, f) for h, (s, f) in enumerate([(10, 0), (5, 5), (0, 0), (2, 0)])]
    root = parse(charts.hourly_chart(counts, "Calls"))
    heights = [float(r.get("height")) for r in rects(root, "chart-ok")]
    assert heights[0] == pytest.approx(2 * heights[1], abs=0.02) == pytest.approx(5 * heights[2], abs=0.05)
    assert float(rects(root, "chart-fail")[0].get("height")) == pytest.approx(heights[1], abs=0.02)
    assert "10" in texts(root)  # the y axis's maximum


def test_totals_are_said_in_the_aria_label_and_title():
    counts = week(lambda h: (1234 if h == 3 else 0, 12 if h == 4 else 0))
    root = parse(charts.hourly_chart(counts, "All calls"))
    assert root.get("role") == "img"
    assert root.get("aria-label") == "All calls: 1,246 calls, 12 failed, last 7 days"
    assert root.find(SVG + "title").text == root.get("aria-label")
    assert next(iter(root)).tag == SVG + "title"  # first: what names the image
    assert "2k" in texts(root)  # the maximum, rounded up to a round number


@pytest.mark.parametrize("hours, words", [(168, "last 7 days"), (24, "last 24 hours"), (1, "last hour"),
                                          (48, "last 2 days"), (36, "last 36 hours")])
def test_the_period_is_named(hours, words):
    counts = [HourCount(T0 + h * 3600, 1, 0) for h in range(hours)]
    label = parse(charts.sparkline(counts, "x")).get("aria-label")
    assert label == f"x: {hours:,} call{'s' if hours > 1 else ''}, 0 failed, {words}"


@pytest.mark.parametrize("draw", [charts.hourly_chart, charts.sparkline])
def test_hostile_title_text_is_escaped(draw):
    title = '<script>alert("x")</script> & "quoted" \'single\''
    svg = draw(week(), title)
    assert "<script" not in svg
    root = parse(svg)
    assert root.get("aria-label").startswith(title + ":")
    assert root.find(SVG + "title").text.startswith(title + ":")


@pytest.mark.parametrize("draw", [charts.hourly_chart, charts.sparkline])
def test_nothing_the_csp_forbids_and_it_scales(draw):
    root = parse(draw(week(), "Calls"))
    allowed = {"chart-ok", "chart-fail", "chart-axis", "chart-label", "chart-grid", None}
    for element in root.iter():
        assert "style" not in element.attrib
        assert not any(name.lower().startswith("on") for name in element.attrib)
        assert element.tag not in (SVG + "script", SVG + "style", SVG + "foreignObject")
        assert element.get("class") in allowed
    assert root.get("width") == "100%"
    assert root.get("height") is None
    assert root.get("viewBox") == ("0 0 720 180" if draw is charts.hourly_chart else "0 0 240 48")


def test_day_labels_are_utc_dates():
    counts = [HourCount(T0 - 5 * 3600 + h * 3600, 1, 0) for h in range(168)]
    root = parse(charts.hourly_chart(counts, "Calls"))
    days = [t for t in texts(root) if t and "-" in t]
    assert days == ["12-01", "12-02", "12-03", "12-04", "12-05", "12-06", "12-07"]
    assert not any(t and "-" in t for t in texts(parse(charts.sparkline(counts, "Calls"))))


def test_labels_thin_out_when_days_are_narrow():
    counts = [HourCount(T0 + h * 3600, 1, 0) for h in range(24 * 60)]
    days = [t for t in texts(parse(charts.hourly_chart(counts, "Calls"))) if t and "-" in t]
    assert 10 <= len(days) <= 30


@pytest.mark.parametrize("draw", [charts.hourly_chart, charts.sparkline])
def test_no_calls_is_a_flat_chart_that_says_so(draw):
    root = parse(draw(week(lambda h: (0, 0)), "Calls to k1"))
    assert rects(root, "chart-ok") == rects(root, "chart-fail") == []
    assert "no calls" in texts(root)
    assert root.get("aria-label") == "Calls to k1: no calls, last 7 days"
    assert [line.get("class") for line in root.iter(SVG + "line")][:1] == ["chart-axis"]


def test_an_empty_series_still_renders():
    root = parse(charts.hourly_chart([], "Calls"))
    assert "no calls" in texts(root)
