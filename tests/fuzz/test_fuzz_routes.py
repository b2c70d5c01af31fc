"""New code must join the harness: every route the app registers, every
Tencent action and every body parameter a handler reads is described in
fuzz_routes.py, or these tests fail."""
from hypothesis import given, strategies as st

from fuzz_fixtures import fuzz_settings, harness_fixture  # noqa: F401 (the `harness` fixture)
from fuzz_requests import build_tencent, build_transit, bulk_plans, tencent_plans, transit_plans
from fuzz_routes import (BULK, CATCH_ALL, CONSOLE_PATHS, TENCENT, TEST_ONLY_PATHS, TRANSIT, allowed_reads,
                         described_paths, tencent_reads)
from kms.api.tencent.actions import ACTIONS


def registered_paths(harness) -> set:
    """The paths the app really serves: Starlette's routes and the lane's
    hot prefixes (each followed by a key name)."""
    app = harness.target.app
    paths = {route.path for route in app.app.routes}
    paths |= {prefix + "{name}" for prefix, _, _, _ in app.routes}
    return paths - {CATCH_ALL} - TEST_ONLY_PATHS - CONSOLE_PATHS


def test_every_registered_route_is_described(harness):
    undescribed = registered_paths(harness) - set(described_paths())
    assert not undescribed, f"routes without a description in tests/fuzz/fuzz_routes.py: {sorted(undescribed)}"


def test_every_described_route_is_registered(harness):
    stale = set(described_paths()) - registered_paths(harness)
    assert not stale, f"described routes the app does not register: {sorted(stale)}"


def test_every_tencent_action_is_described():
    assert set(ACTIONS) == set(TENCENT), (
        f"undescribed: {sorted(set(ACTIONS) - set(TENCENT))}; stale: {sorted(set(TENCENT) - set(ACTIONS))}")


def _undescribed(reads, allowed) -> list:
    return sorted(f"{path}:{name}" if path else name for path, name in reads
                  if name not in allowed.get(path, frozenset()))


@fuzz_settings(0.5)
@given(data=st.data())
def test_handlers_read_only_described_parameters(harness, data):
    """Valid calls of every route, the names the handler reads recorded:
    each must be in the route's description (a new parameter must be
    added there, so it gets fuzzed)."""
    routes = TRANSIT + BULK
    route = routes[data.draw(st.integers(0, len(routes) - 1), label="route")]
    plans = bulk_plans(route, harness.pools) if route.api == "bulk" else transit_plans(route, harness.pools)
    plan = data.draw(plans.filter(lambda p: p.simple_path and p.method in route.methods), label="plan")
    reads = harness.target.observe(build_transit(plan, harness.target)).reads or set()
    assert not _undescribed(reads, allowed_reads(route)), route.path


@fuzz_settings(0.5)
@given(data=st.data())
def test_tencent_handlers_read_only_described_parameters(harness, data):
    drawn = data.draw(tencent_plans(harness.pools).filter(lambda p: p.auth == "valid" and p.action in TENCENT))
    seen = harness.target.observe(build_tencent(drawn, harness.target))
    assert not _undescribed(seen.reads or set(), tencent_reads(drawn.action)), drawn.action
