"""Vault's sys/ and auth/token/ endpoints that Vault clients call around
transit (hvac's sys.read_health_status, is_initialized, is_sealed,
list_mounted_secrets_engines, auth.token.create, ...), answered as OpenBao
2.7 answers them.

The status endpoints (health, seal-status, init, leader) answer without a
token, as Vault's do: they are what a load balancer or an operator asks
before anything else; they are audited like every call. This server is
always initialised and unsealed, and one node (no HA) until sealing comes.
"""
import os
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from starlette.requests import Request
from starlette.responses import Response

import kms
from kms.api.transit.params import INT64_MAX, ParamError
from kms.api.transit.responses import RawJSON, _dumps, envelope
from kms.service.transit import TransitError

Handler = Callable[..., Response]
CLUSTER_NAME = "kms"
MOUNT_TYPES = {"sys/": ("system", "system endpoints used for control, policy and debugging"),
               "transit/": ("transit", "the kms key store, as Vault's transit engine")}
MAX_PATHS = 64


def public(handler: Handler) -> Handler:
    """Mark a handler that answers without a token."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


def _json(data: Any, status: int = 200) -> RawJSON:
    return RawJSON(_dumps(data), status)


def _status_code(request: Request, name: str, default: int) -> int:
    """Vault's health query codes (activecode=, ...): 1xx to 5xx only."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit() or not 100 <= int(value) <= 599:
        raise TransitError(f"{name} must be an HTTP status code")
    return int(value)


def _mount(path: str, cluster: str) -> Dict[str, Any]:
    kind, description = MOUNT_TYPES[path]
    return {"accessor": f"{kind}_{cluster[:8]}", "type": kind, "description": description,
            "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
            "external_entropy_access": False, "local": False, "options": None, "plugin_version": "",
            "running_plugin_version": f"v{kms.__version__}+builtin.kms", "running_sha256": "",
            "seal_wrap": False, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, cluster + path))}


def _string_list(field: str, value: Any) -> List[str]:
    if type(value) is str:
        value = [part.strip() for part in value.split(",") if part.strip()]
    if type(value) is not list or len(value) > MAX_PATHS or not all(type(v) is str for v in value):
        raise ParamError(field, f"must be a list of at most {MAX_PATHS} strings")
    return value


# The transit paths capabilities-self can judge: (path prefix, the kms
# action the route needs, the Vault capability that grants it).
_CAPABILITIES: Sequence[Tuple[str, str, str]] = (
    ("transit/encrypt/", "Encrypt", "update"), ("transit/datakey/plaintext/", "Encrypt", "update"),
    ("transit/datakey/wrapped/", "Encrypt", "update"), ("transit/decrypt/", "Decrypt", "update"),
    ("transit/rewrap/", "ReEncrypt", "update"), ("transit/sign/", "Sign", "update"),
    ("transit/verify/", "Verify", "update"), ("transit/hmac/", "GenerateMac", "update"),
    ("transit/keys/", "DescribeKey", "read"),
)


class SystemRoutes:
    """The handlers; `endpoint` is the transit adapter (tokens, policies,
    keys, audit intent)."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint
        # One id for every worker of a server: named by its data directory.
        where = os.path.realpath(os.path.dirname(endpoint.keys.store.path))
        self.cluster_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "kms-data-dir:" + where))

    def table(self) -> List[Tuple[str, Handler, Sequence[str], bool]]:
        get, w = ("GET",), ("POST", "PUT")
        return [
            ("/v1/sys/health", self.sys_health, get, True),
            ("/v1/sys/seal-status", self.sys_seal_status, get, True),
            ("/v1/sys/init", self.sys_init, get + w, True),
            ("/v1/sys/leader", self.sys_leader, get, True),
            ("/v1/sys/mounts", self.sys_mounts, get, False),
            ("/v1/sys/mounts/{mount}", self.sys_mount, w + ("GET", "DELETE"), False),
            ("/v1/sys/mounts/{mount}/tune", self.sys_mount_tune, get + w, False),
            ("/v1/sys/internal/ui/mounts", self.sys_ui_mounts, get, False),
            ("/v1/sys/capabilities-self", self.sys_capabilities_self, w, False),
            ("/v1/auth/token/create", self.token_create, w, False),
            ("/v1/auth/token/renew-self", self.token_renew_self, w, False),
            ("/v1/auth/token/lookup", self.token_lookup, w + ("GET",), False),
        ]

    # ---- status, without a token ------------------------------------------------

    @public
    def sys_health(self, request: Request, body: Dict[str, Any], account: Any, seen: Dict[str, Any]) -> Response:
        status = _status_code(request, "activecode", 200)
        for name in ("standbycode", "sealedcode", "uninitcode", "perfstandbyokcode", "drsecondarycode"):
            _status_code(request, name, 200)  # checked; none applies to an active, unsealed server
        data = {"initialized": True, "sealed": False, "standby": False,
                "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
                "server_time_utc": int(time.time()), "version": kms.__version__,
                "cluster_name": CLUSTER_NAME, "cluster_id": self.cluster_id}
        return _json(data, status) if request.method != "HEAD" else Response(status_code=status)

    @public
    def sys_seal_status(self, request: Request, body: Dict[str, Any], account: Any,
                        seen: Dict[str, Any]) -> Response:
        return _json({"type": "file", "initialized": True, "sealed": False, "t": 1, "n": 1, "progress": 0,
                      "nonce": "", "recovery_seal": False, "version": kms.__version__, "migration": False,
                      "cluster_name": CLUSTER_NAME, "cluster_id": self.cluster_id, "storage_type": "file"})

    @public
    def sys_init(self, request: Request, body: Dict[str, Any], account: Any, seen: Dict[str, Any]) -> Response:
        if request.method != "GET":
            raise TransitError("Vault is already initialized")
        return _json({"initialized": True})

    @public
    def sys_leader(self, request: Request, body: Dict[str, Any], account: Any, seen: Dict[str, Any]) -> Response:
        return _json({"ha_enabled": False})

    # ---- mounts --------------------------------------------------------------------

    def sys_mounts(self, request: Request, body: Dict[str, Any], account: Dict[str, Any],
                   seen: Dict[str, Any]) -> Response:
        self.endpoint._allow(account, "ListKeys", None, None)
        mounts = {path: _mount(path, self.cluster_id) for path in MOUNT_TYPES}
        # OpenBao answers the mounts both at the top level and under data.
        return RawJSON(_dumps({**mounts, **_envelope_fields(mounts)}), 200)

    def sys_mount(self, request: Request, body: Dict[str, Any], account: Dict[str, Any],
                  seen: Dict[str, Any]) -> Response:
        path = request.path_params["mount"].strip("/") + "/"
        if request.method in ("GET", "HEAD") and path in MOUNT_TYPES:
            self.endpoint._allow(account, "ListKeys", None, None)
            return envelope(_mount(path, self.cluster_id))
        if request.method in ("POST", "PUT") and path in MOUNT_TYPES:
            raise TransitError(f"path is already in use at {path}")
        if request.method == "DELETE" and path in MOUNT_TYPES:
            raise TransitError(f"cannot unmount {path}: it holds the server's keys")
        raise TransitError("this server mounts transit at transit/ only; enabling, reading or removing "
                           "engines at other paths is not supported")

    def sys_mount_tune(self, request: Request, body: Dict[str, Any], account: Dict[str, Any],
                       seen: Dict[str, Any]) -> Response:
        path = request.path_params["mount"].strip("/") + "/"
        if path not in MOUNT_TYPES:
            raise TransitError(f"cannot fetch sysview for path {path[:64]!r}")
        if request.method != "GET":
            raise TransitError("tuning mounts is not supported: leases do not apply to transit here")
        self.endpoint._allow(account, "ListKeys", None, None)
        mount = _mount(path, self.cluster_id)
        return envelope({**mount["config"], "description": mount["description"], "options": None})

    def sys_ui_mounts(self, request: Request, body: Dict[str, Any], account: Dict[str, Any],
                      seen: Dict[str, Any]) -> Response:
        self.endpoint._allow(account, "ListKeys", None, None)
        token = {"accessor": f"auth_token_{self.cluster_id[:8]}", "type": "token",
                 "description": "token based credentials", "config": {"default_lease_ttl": 0,
                 "max_lease_ttl": 0, "force_no_cache": False, "token_type": "default-service"},
                 "local": False, "seal_wrap": False, "options": None}
        return envelope({"auth": {"token/": token},
                         "secret": {path: _mount(path, self.cluster_id) for path in MOUNT_TYPES if path != "sys/"}})

    def sys_capabilities_self(self, request: Request, body: Dict[str, Any], account: Dict[str, Any],
                              seen: Dict[str, Any]) -> Response:
        paths = _string_list("paths", body["paths"]) if body.get("paths") is not None else []
        if body.get("path") is not None:
            paths += _string_list("path", body["path"])
        if not paths:
            raise TransitError("paths must be provided")
        answer = {path: self._capabilities(account, path) for path in paths}
        return RawJSON(_dumps({**answer, **_envelope_fields(answer)}), 200)

    def _capabilities(self, account: Dict[str, Any], path: str) -> List[str]:
        if account["kind"] == "root":
            return ["root"]
        path = path.lstrip("/")
        for prefix, action, capability in _CAPABILITIES:
            if path.startswith(prefix) and len(path) > len(prefix):
                name = path[len(prefix):].split("/")[-1]
                record = self.endpoint.transit.record(name)
                if self.endpoint.crypto.policies.allows(account, action, _resource(record, name)):
                    return [capability]
                return ["deny"]
        return ["deny"]

    # ---- tokens ------------------------------------------------------------------------

    def token_create(self, request: Request, body: Dict[str, Any], account: Dict[str, Any],
                     seen: Dict[str, Any]) -> Response:
        """A new token for the caller's own account: the same rights, never
        outliving the token that asked (kms:CreateToken)."""
        seen["action"] = "auth:token-create"
        self.endpoint._allow(account, "CreateToken", None, None)
        own = ["root"] if account["kind"] == "root" else list(account.get("policies", []))
        asked = _string_list("policies", body["policies"]) if body.get("policies") is not None else []
        if set(asked) - set(own) - {"default"}:
            raise TransitError("child policies must be subset of parent (a token here carries its "
                               "account's policies; give another account a token with kms tokens create)")
        if body.get("num_uses") not in (None, 0, "0"):
            raise TransitError("num_uses is not supported: tokens here are used any number of times")
        ttl = body["ttl"] if body.get("ttl") is not None else 0  # read as a duration
        expires = account["token_expires"]
        left = max(int(expires - self.endpoint.keys.clock.now()), 1) if expires else 0
        if left and (ttl == 0 or ttl > left):
            ttl = left  # no longer than the parent
        if ttl > INT64_MAX:
            raise ParamError("ttl", "too long")
        self.endpoint.intent(seen)
        made = self.endpoint.tokens.create(account["secret_id"], ttl=ttl)
        return RawJSON(_dumps(_envelope_fields(None, auth={
            "client_token": made["token"], "accessor": made["accessor"], "policies": own,
            "token_policies": own, "metadata": None, "lease_duration": ttl, "renewable": False,
            "entity_id": account["secret_id"], "token_type": "service", "orphan": True,
            "mfa_requirement": None, "num_uses": 0})), 200)

    def token_renew_self(self, request: Request, body: Dict[str, Any], account: Dict[str, Any],
                         seen: Dict[str, Any]) -> Response:
        raise TransitError("lease is not renewable")

    def token_lookup(self, request: Request, body: Dict[str, Any], account: Dict[str, Any],
                     seen: Dict[str, Any]) -> Response:
        """Another token's details: root may look up any; others only their own."""
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise TransitError("missing token to look up")
        found = self.endpoint.tokens.lookup(token)
        if found is None or (account["kind"] != "root" and found["secret_id"] != account["secret_id"]):
            raise self.endpoint.denied()
        return self.endpoint.token_details(found)


def _resource(record: Optional[Dict[str, Any]], name: str) -> Any:
    from kms.service.policies import alias_resource, key_resource

    return key_resource(record) if record is not None else alias_resource(name)


def _envelope_fields(data: Any, auth: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False, "lease_duration": 0,
            "data": data, "wrap_info": None, "warnings": None, "auth": auth}


__all__ = ["SystemRoutes", "public"]
