"""The property-based fuzzer over every wire API, in-process: requests for
every described route (fuzz_routes.py), with the properties of
fuzz_harness.Harness checked on each answer."""
from hypothesis import given, strategies as st

from fuzz_fixtures import fuzz_settings, harness_fixture  # noqa: F401 (the `harness` fixture)
from fuzz_requests import build_tencent, build_transit, bulk_plans, tencent_plans, transit_plans
from fuzz_routes import BULK, TENCENT, TRANSIT, allowed_reads, described_paths, tencent_reads

TRANSIT_ROUTES = [r for r in TRANSIT if r.api == "transit"]
SYS_ROUTES = [r for r in TRANSIT if r.api == "sys"]
ROUTE_BY_PATH = described_paths()


def _run_transit(harness, data, routes) -> None:
    route = ROUTE_BY_PATH[data.draw(st.sampled_from([r.path for r in routes]), label="route")]
    plan = data.draw(transit_plans(route, harness.pools), label="plan")
    reads = allowed_reads(route) if plan.simple_path and plan.method in route.methods else None
    params = route.params if plan.simple_path and plan.method in ("POST", "PUT") else ()
    harness.run(route.api, build_transit(plan, harness.target), reads, route.path, params)


@fuzz_settings(2.0)
@given(data=st.data())
def test_transit(harness, data):
    _run_transit(harness, data, TRANSIT_ROUTES)


@fuzz_settings(0.3)
@given(data=st.data())
def test_auth_token_routes(harness, data):
    _run_transit(harness, data, SYS_ROUTES)


@fuzz_settings()
@given(data=st.data())
def test_bulk(harness, data):
    route = ROUTE_BY_PATH[data.draw(st.sampled_from([r.path for r in BULK]), label="route")]
    plan = data.draw(bulk_plans(route, harness.pools), label="plan")
    reads = allowed_reads(route) if plan.simple_path and plan.method in route.methods else None
    # A name with a "/" in it makes the path no bulk route: transit's 404.
    harness.run("bulk" if plan.simple_path else "transit", build_transit(plan, harness.target), reads,
                route.path)


@fuzz_settings(2.0)
@given(data=st.data())
def test_tencent(harness, data):
    plan = data.draw(tencent_plans(harness.pools), label="plan")
    reads = tencent_reads(plan.action) if plan.auth == "valid" else None
    harness.run("tencent", build_tencent(plan, harness.target), reads, f"tencent {plan.action if plan.action in TENCENT else '(unknown action)'}",
                TENCENT.get(plan.action or "", ()) if plan.method == "POST" else ())
