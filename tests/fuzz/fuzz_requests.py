"""Whole requests from the route descriptions: method, path, query, body
and credentials, as Hypothesis strategies. A plan is drawn, then built
against a target (which signs Tencent requests for its Host and may issue
a token for revoke-self to spend)."""
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

import msgpack
from hypothesis import strategies as st

from fuzz_harness import ROOT_TOKEN, Request, Target, path_of, tencent_headers
from fuzz_routes import TENCENT, Route
from fuzz_values import (SECRET_PREFIX, Pools, Raw, anything, dumps, hostile_strings, odd_json_bodies,
                         params_body, pool_member, valid_value, weighted)

ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "LIST", "OPTIONS")
# Path values that change how a path is routed: a slash, a dot segment, a
# newline before a slash (Starlette's path patterns do not match across one).
PATH_TRICKS = ("a/b", "a\n/b", "\n/", ".", "..", "%", "%2F", "a\x00b", " ")
TRANSIT_AUTH = ("root",) * 16 + ("bearer", "none", "wrong", "hostile", "empty")
TENCENT_AUTH = ("valid",) * 20 + ("none", "bad-signature", "expired", "unknown-id", "no-version",
                                  "bad-version", "no-action", "aws-target", "aws-sigv4", "garbage")


@dataclass
class Plan:
    method: str
    target: str
    query: str
    body: bytes
    auth: str
    content_type: str
    action: Optional[str] = None  # Tencent
    # The path names the route it was made for (no path value empty or
    # holding a "/"), so the answer and the reads are that route's.
    simple_path: bool = True


def _simple(values: Dict[str, str]) -> bool:
    return all(v and "/" not in v for v in values.values())


def _path_value(p: Any, pools: Pools) -> st.SearchStrategy[str]:
    good = valid_value(p, pools).map(lambda v: v if isinstance(v, str) else str(v))
    return weighted((18, good), (1, hostile_strings()), (1, st.sampled_from(PATH_TRICKS)))


def _methods(route: Route) -> st.SearchStrategy[str]:
    return weighted((9, st.sampled_from(route.methods)), (1, st.sampled_from(ALL_METHODS)))


def _query(route: Route, pools: Pools) -> st.SearchStrategy[str]:
    if not route.query:
        return weighted((9, st.just("")), (1, st.sampled_from(["list=true", "a=%00", "x"])))
    params = params_body(route.query, pools, extra=False)
    return params.map(lambda d: "&".join(f"{quote(k)}={quote(v if isinstance(v, str) else dumps(v))}"
                                         for k, v in d.items()))


@st.composite
def transit_plans(draw: Any, route: Route, pools: Pools) -> Plan:
    values = {p.name: draw(_path_value(p, pools)) for p in route.path_params}
    body = draw(weighted((12, params_body(route.params, pools).map(lambda b: dumps(b).encode())),
                         (1, odd_json_bodies())))
    content_type = draw(st.sampled_from(["application/json"] * 12 + ["text/plain", "application/msgpack", ""]))
    return Plan(draw(_methods(route)), path_of(route.path, values), draw(_query(route, pools)), body,
                draw(st.sampled_from(TRANSIT_AUTH)), content_type, simple_path=_simple(values))


def _msgpack(value: Any) -> bytes:
    """msgpack of a generated value: Raw JSON text goes as a string, and
    integers msgpack cannot hold as their digits."""
    def fit(v: Any) -> Any:
        if isinstance(v, Raw):
            return v.text
        if isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v):
            return v.encode("utf-8", "surrogatepass")  # msgpack strings must be UTF-8
        if isinstance(v, int) and not isinstance(v, bool) and not -2 ** 63 <= v < 2 ** 64:
            return str(v)
        if isinstance(v, dict):
            return {k: fit(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fit(x) for x in v]
        return v
    return msgpack.packb(fit(value), use_bin_type=True)


def _well_formed_bulk(draw: Any, route: Route, pools: Pools) -> Dict[str, Any]:
    """A request a correct client sends (items, and associated data of the
    same length or none), so that runs reach the sealing and opening paths,
    not only the request's checks."""
    if route.path.startswith("/v1/bulk/encrypt/"):
        item = st.binary(max_size=40).map(lambda b: SECRET_PREFIX + b)
    else:
        item = pool_member(pools.ciphertexts)
    items = draw(st.lists(item, min_size=1, max_size=5))
    message: Dict[str, Any] = {"items": items}
    if draw(st.booleans()):
        message["associated_data"] = draw(st.lists(st.binary(max_size=16), min_size=len(items),
                                                   max_size=len(items)))
    if draw(st.booleans()):
        message["key_version"] = draw(st.integers(0, 2))
    return message


@st.composite
def _bulk_body(draw: Any, route: Route, pools: Pools) -> bytes:
    shape = draw(st.sampled_from(["well-formed"] * 15 + ["whole"] * 10
                                 + ["truncated", "not-map", "json", "random", "trailing"]))
    message = (_well_formed_bulk(draw, route, pools) if shape == "well-formed"
               else draw(params_body(route.params, pools)))
    packed = _msgpack(message)
    if shape == "truncated":
        return packed[:draw(st.integers(0, max(len(packed) - 1, 0)))]
    if shape == "not-map":
        return _msgpack(draw(anything()))
    if shape == "json":
        return dumps(message).encode()
    if shape == "random":
        return draw(st.binary(max_size=80))
    if shape == "trailing":
        return packed + draw(st.binary(min_size=1, max_size=8))
    return packed


@st.composite
def bulk_plans(draw: Any, route: Route, pools: Pools) -> Plan:
    values = {p.name: draw(_path_value(p, pools)) for p in route.path_params}
    method = draw(weighted((12, st.just("POST")), (1, st.sampled_from(ALL_METHODS))))
    content_type = draw(st.sampled_from(["application/msgpack"] * 12 + ["application/json", ""]))
    return Plan(method, path_of(route.path, values), "", draw(_bulk_body(route, pools)),
                draw(st.sampled_from(TRANSIT_AUTH)), content_type, simple_path=_simple(values))


@st.composite
def tencent_plans(draw: Any, pools: Pools) -> Plan:
    action = draw(weighted(
        (30, st.sampled_from(sorted(TENCENT))),
        (1, st.sampled_from(["", "describekey", "DescribeKey ", "GetPublicKey", "x" * 100])),
        (1, hostile_strings().filter(lambda s: s.isascii() and s.isprintable()))))
    params = TENCENT.get(action, TENCENT["DescribeKey"])
    body = draw(weighted((15, params_body(params, pools).map(lambda b: dumps(b).encode())),
                         (1, odd_json_bodies())))
    method = draw(weighted((20, st.just("POST")), (1, st.sampled_from(ALL_METHODS))))
    return Plan(method, "/", "", body, draw(st.sampled_from(TENCENT_AUTH)), "application/json", action)


# ---- plans to requests -------------------------------------------------------------


def transit_token(plan: Plan, target: Target) -> List[Tuple[str, str]]:
    token: Optional[str] = ROOT_TOKEN
    if plan.target.endswith("/revoke-self") and plan.auth in ("root", "bearer"):
        token = target.fresh_token() or "kms.not-a-token"  # never the root token
    if plan.auth == "root":
        return [("x-vault-token", token or "")]
    if plan.auth == "bearer":
        return [("authorization", f"Bearer {token}")]
    if plan.auth == "wrong":
        return [("x-vault-token", "kms.wrong-token-0000")]
    if plan.auth == "hostile":
        return [("x-vault-token", "kms.../%s%n\"\\" + "x" * 300)]  # valid HTTP, hostile to the app
    if plan.auth == "empty":
        return [("x-vault-token", ""), ("authorization", "Bearer ")]
    return []


def build_transit(plan: Plan, target: Target) -> Request:
    headers = [("content-length", str(len(plan.body)))]
    if plan.content_type:
        headers.append(("content-type", plan.content_type))
    return Request(plan.method, plan.target, plan.query, headers + transit_token(plan, target), plan.body)


def build_tencent(plan: Plan, target: Target) -> Request:
    action, auth, body, host = plan.action, plan.auth, plan.body, target.host
    if auth == "valid":
        headers = tencent_headers(action, body, host)
    elif auth == "bad-signature":
        headers = tencent_headers(action, body, host, secret_key="not-the-key")
    elif auth == "expired":
        headers = tencent_headers(action, body, host, skew=-3600)
    elif auth == "unknown-id":
        headers = tencent_headers(action, body, host, secret_id="AKIDnobody0000000000000000")
    elif auth == "no-version":
        headers = tencent_headers(action, body, host, version=None)
    elif auth == "bad-version":
        headers = tencent_headers(action, body, host, version="2017-03-12")
    elif auth == "no-action":
        headers = tencent_headers(None, body, host)
    elif auth == "aws-target":
        headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "TrentService.Encrypt"),
                   ("host", host)]
    elif auth == "aws-sigv4":
        headers = [("content-type", "application/x-amz-json-1.1"), ("host", host),
                   ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/kms/"
                                     "aws4_request, SignedHeaders=host, Signature=" + "0" * 64)]
    elif auth == "garbage":
        headers = [("content-type", "application/json"), ("host", host), ("authorization", "TC3-HMAC-SHA256 x"),
                   ("x-tc-action", action or ""), ("x-tc-timestamp", "²")]
    else:
        headers = [("content-type", "application/json"), ("host", host), ("x-tc-action", action or "")]
    headers = [(k, v) for k, v in headers if k != "host"] + [("host", host)]
    headers.append(("content-length", str(len(body))))
    return Request(plan.method, "/", "", headers, body)


def describe(plan: Plan) -> Dict[str, Any]:
    """The plan as the findings file shows it."""
    body: Any = plan.body
    try:
        body = json.loads(plan.body)
    except ValueError:
        pass
    return {"method": plan.method, "path": plan.target, "query": plan.query, "auth": plan.auth,
            "action": plan.action, "body": body}
