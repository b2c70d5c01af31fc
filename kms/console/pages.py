"""What each console page shows and what each console form does, as plain
functions of the signed-in caller. They run key operations through the
Tencent action dispatcher (kms.api.tencent.dispatch), so every check, code
and message is the API's; the account, policy and token pages call the
services those belong to, after the policy check of their console action.

Nothing here knows HTTP: kms.console.app parses, calls and renders.
"""
import base64
import binascii
import calendar
import datetime
import json
import math
import time
import uuid
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from kms import errors
from kms.api import jsonbody
from kms.api.tencent.access import Context, key_named
from kms.api.tencent.actions import CREATE_USAGES, key_metadata, rotate_days
from kms.api.tencent.dispatch import key_named_in, perform
from kms.api.tencent.errors import TencentError
from kms.api.tencent.params import Params
from kms.audit import AuditLog
from kms.audit_query import AuditFilter, newest_first
from kms.console.forms import FormData, action_params
from kms.service.keys import ENABLED, KNOWN_USAGES, ORIGIN_EXTERNAL, ORIGIN_KMS, STATES, owner_account
from kms.service.keytypes import USAGE_SYMMETRIC, usage_of
from kms.service.listing import SORT_KEYS, KeyQuery, find_keys
from kms.service.policies import ANY, Resource, validate
from kms.numbers import ascii_int
from kms.service.tokens import MAX_TTL

PAGE_SIZE = 20
MAX_SEARCH_CHARS = 128
# Key actions a form on the key page may post (CreateKey has its own page).
KEY_ACTIONS = ("UpdateAlias", "UpdateKeyDescription", "EnableKey", "DisableKey",
               "EnableKeyRotation", "DisableKeyRotation", "RotateKey", "ScheduleKeyDeletion",
               "CancelKeyDeletion", "ArchiveKey", "CancelKeyArchive", "Encrypt", "Decrypt",
               "GenerateDataKey", "GetParametersForImport", "ImportKeyMaterial")
ACCESS_ACTIONS = ("CreateAccount", "DeleteAccount", "ResetSecretKey", "PutPolicy", "DeletePolicy",
                  "AttachPolicy", "DetachPolicy", "CreateToken", "RevokeToken")
# What a service-managed key refuses, shown instead of the controls.
SERVICE_KEY_NOTE = ("This key is managed by the service account that owns it: it can be "
                    "viewed and rotated here, but not disabled, archived or deleted.")


class Caller(NamedTuple):
    ctx: Context
    audit: Optional[AuditLog]
    seen: Dict[str, Any]  # what the call's audit entry names (kms.api.tencent.dispatch)


def run(caller: Caller, action: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """One Tencent action, as the API would run it for this caller, audited
    under the key the API would name (a Decrypt: the blob's)."""
    named = key_named_in(body)
    if named is not None:
        caller.seen["key_id"] = named
    return perform(caller.ctx, action, Params(body), caller.audit, caller.seen)


def allowed(caller: Caller, action: str, resource: Resource = ANY) -> bool:
    return caller.ctx.policies.allows(caller.ctx.caller, action, resource)


def require(caller: Caller, action: str, resource: Resource = ANY) -> None:
    caller.ctx.policies.check(caller.ctx.caller, [([action], resource)])


def console_intent(caller: Caller) -> None:
    """A console change goes on record before it is made, as API changes do."""
    if caller.audit is not None:
        caller.audit.intend(caller.seen)


# ---- keys --------------------------------------------------------------------


class ListRequest(NamedTuple):
    tab: str = "customer"
    search: str = ""
    state: str = ""
    usage: str = ""
    origin: str = ""
    tag: str = ""
    sort: str = "created"
    order: str = "desc"
    page: int = 1


def list_request(query: Dict[str, str]) -> ListRequest:
    """The listing's query string, each value kept only if it is one the
    page offers (anything else falls back to its default)."""
    def pick(name: str, choices: Tuple[str, ...], default: str = "") -> str:
        value = query.get(name, default)
        return value if value in choices else default

    try:
        page = max(1, min(int(query.get("page", "1")), 10**6))
    except ValueError:
        page = 1
    return ListRequest(tab=pick("tab", ("customer", "service"), "customer"),
                       search=query.get("q", "")[:MAX_SEARCH_CHARS],
                       state=pick("state", STATES), usage=pick("usage", tuple(KNOWN_USAGES)),
                       origin=pick("origin", (ORIGIN_KMS, ORIGIN_EXTERNAL)),
                       tag=query.get("tag", "")[:MAX_SEARCH_CHARS],
                       sort=pick("sort", tuple(SORT_KEYS), "created"),
                       order=pick("order", ("asc", "desc"), "desc"), page=page)


def _tag_filter(text: str) -> List[Tuple[str, List[str]]]:
    if not text:
        return []
    key, sep, value = text.partition("=")
    return [(key.strip(), [value.strip()] if sep else [])]


def key_list(caller: Caller, req: ListRequest) -> Dict[str, Any]:
    require(caller, "ListKeyDetail")  # the API action this page stands for
    caller.seen["action"] = "ListKeyDetail"
    query = KeyQuery(service_managed=req.tab == "service", state=req.state or None,
                     search=req.search or None, search_description=True, ignore_case=True,
                     origin=req.origin or None, usage=req.usage or None,
                     tags=_tag_filter(req.tag), sort=req.sort, descending=req.order == "desc")
    found = find_keys(caller.ctx.keys.all_keys(), query)
    pages = max(1, math.ceil(len(found) / PAGE_SIZE))
    page = min(req.page, pages)
    uin = caller.ctx.caller["uin"]
    rows = [key_metadata(r, uin) for r in found[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]]
    return {"rows": rows, "total": len(found), "page": page, "pages": pages, "req": req,
            "states": STATES, "usages": sorted(KNOWN_USAGES), "origins": (ORIGIN_KMS, ORIGIN_EXTERNAL),
            "sorts": tuple(SORT_KEYS)}


def usage_choices() -> List[Tuple[str, str]]:
    """The create dialog's KeyUsage options: what CreateKey offers."""
    return [(usage, f"{usage} ({'symmetric' if usage == USAGE_SYMMETRIC else algorithm})")
            for usage, algorithm in CREATE_USAGES.items()]


def create_key(caller: Caller, form: FormData) -> str:
    """CreateKey, then EnableKeyRotation when asked: two actions, each
    checked and audited on its own (the second under a request id of its
    own). The period is read first, so a bad one creates nothing. Returns
    the new key's id."""
    rotation: Optional[Dict[str, Any]] = None
    if form.get("KeyRotationEnabled"):
        rotation = {"RotateDays": form.get("RotateDays")} if form.get("RotateDays") else {}
        rotate_days(Params(rotation))
    created = run(caller, "CreateKey", action_params("CreateKey", form))
    key_id = str(created["KeyId"])
    caller.seen["key_id"] = key_id  # CreateKey's outcome names the key it made
    if rotation is None:
        return key_id
    finish(caller, "Success")
    caller.seen.pop("intent", None)  # the next call's own intent is to come
    caller.seen.update(request_id=str(uuid.uuid4()), action="EnableKeyRotation")
    try:
        run(caller, "EnableKeyRotation", {"KeyId": key_id, **rotation})
    except Exception as exc:
        raise PartlyDone(key_id, exc) from exc
    return key_id


def finish(caller: Caller, result: str) -> None:
    """The outcome line of the call in caller.seen, written now (the request
    goes on to another call)."""
    if caller.audit is not None:
        seen = caller.seen
        caller.audit.record(time=round(time.time(), 3), request_id=seen["request_id"],
                            account=seen.get("account"), action=seen.get("action"),
                            key_id=seen.get("key_id"), result=result, latency_ms=None, via=seen.get("via"))


class PartlyDone(Exception):
    """The key was created but a following step was refused."""

    def __init__(self, key_id: str, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.key_id = key_id
        self.cause = cause


def key_detail(caller: Caller, key_id: str) -> Dict[str, Any]:
    """Everything the key page shows; DescribeKey's check decides whether
    the caller may see the key at all."""
    meta = run(caller, "DescribeKey", {"KeyId": key_id})["KeyMetadata"]
    keys = caller.ctx.keys
    record = keys.describe(meta["KeyId"])
    transit = None
    if "transit" in record:
        described = caller.ctx.services.transit.describe(record)
        transit = {k: v for k, v in described.items() if k != "keys"}
    asymmetric = usage_of(record).asymmetric
    public_key_pem = None
    if (asymmetric and meta["KeyState"] == ENABLED
            and allowed(caller, "GetPublicKey", key_named(caller.ctx, meta["KeyId"]))):
        public_key_pem = caller.ctx.services.asymmetric.public_key(meta["KeyId"])[1]
    return {"meta": meta, "versions": keys.versions(meta["KeyId"]),
            "asymmetric": asymmetric, "public_key_pem": public_key_pem,
            "bindings": [tuple(b) for b in record.get("bindings", [])],
            "service_managed": owner_account(record) is not None, "service_note": SERVICE_KEY_NOTE,
            "tags": record.get("tags", {}), "transit": transit,
            "material_bytes": record.get("material_bytes"), "latest": record.get("latest")}


def key_action(caller: Caller, key_id: str, action: str, form: FormData) -> Dict[str, Any]:
    """A key page form's action; returns what the page shows of its result."""
    if action == "ScheduleKeyDeletion":
        # The alias typed back is the console's confirmation, not a rule of
        # the key; compared only once the caller may act on the key, so the
        # answer says nothing of keys it may not see.
        require(caller, action, key_named(caller.ctx, key_id))
        alias = keys_alias(caller, key_id)  # None: no such key, which the action says
        if alias is not None and form.get("ConfirmAlias") != alias:
            raise TencentError("InvalidParameter.ConfirmAlias",
                               "type the key's alias to confirm its deletion")
    fields = run(caller, action, action_params(action, form, key_id))
    if action == "Decrypt":
        fields = dict(fields, **shown_plaintext(fields["Plaintext"]))
    return fields


def keys_alias(caller: Caller, key_id: str) -> Optional[str]:
    record = caller.ctx.keys.store.get("key", key_id)
    return record["alias"] if record else None


def shown_plaintext(b64: str) -> Dict[str, Any]:
    """A decrypted plaintext as text when it is UTF-8, else as base64."""
    try:
        data = base64.b64decode(b64)
        return {"PlaintextText": data.decode("utf-8"), "PlaintextIsText": True}
    except (binascii.Error, UnicodeDecodeError):
        return {"PlaintextText": b64, "PlaintextIsText": False}


# ---- access control ----------------------------------------------------------


def access(caller: Caller) -> Dict[str, Any]:
    require(caller, "ListAccounts")
    caller.seen["action"] = "ListAccounts"
    ctx = caller.ctx
    policies = (sorted(ctx.keys.store.items("policy").values(), key=lambda p: p["name"])
                if allowed(caller, "ListPolicies") else None)
    tokens = (ctx.services.tokens.listing()
              if allowed(caller, "ListTokens") else None)
    return {"accounts": sorted(ctx.accounts.listing(), key=lambda a: (a["Kind"] != "root", a["Name"])),
            "policies": None if policies is None else
            [{"name": p["name"], "json": json.dumps(p["statements"], indent=2)} for p in policies],
            "tokens": tokens, "max_ttl": MAX_TTL}


def _on_account(caller: Caller, action: str, secret_id: str) -> None:
    """The caller may run `action` on this account: by its SecretId and, if
    it exists, its name. Only root acts on root (a token or a policy change
    for root would hand root's rights over). A refusal names the SecretId
    given, so it tells nothing of the account."""
    record = caller.ctx.accounts.get(secret_id)
    resource = Resource([f"account/{secret_id}"] + ([f"account/{record['name']}"] if record else []))
    caller.seen["target"] = resource.names[0]
    if record is not None and record["kind"] == "root" and caller.ctx.caller["kind"] != "root":
        raise errors.PermissionDenied(f"{action} on {resource.names[0]} is not permitted for this account")
    require(caller, action, resource)


def _on_policy(caller: Caller, action: str, name: str) -> None:
    caller.seen["target"] = f"policy/{name}"
    require(caller, action, Resource([f"policy/{name}"]))


def _required(form: FormData, name: str) -> str:
    value = (form.get(name) or "").strip()
    if not value:
        raise TencentError("MissingParameter", f"the parameter {name} is required")
    return value


def _ttl(form: FormData) -> int:
    """Ttl: seconds as plain digits (0: no expiry); TokenService bounds it."""
    ttl = ascii_int((form.get("Ttl") or "0").strip(), negative=False)
    if ttl is None:
        raise TencentError("InvalidParameter", "Ttl must be a whole number of seconds (0: no expiry)")
    return ttl


def access_action(caller: Caller, action: str, form: FormData) -> Dict[str, Any]:
    """An access page form; returns what the page shows (a new secret once).
    Each is checked as kms:<action> on what it touches before anything is
    read further or changed."""
    ctx = caller.ctx
    tokens = ctx.services.tokens
    if action == "CreateAccount":
        name, kind = _required(form, "Name"), form.get("Kind") or "user"
        caller.seen["target"] = f"account/{name[:100]}"
        require(caller, action, Resource([f"account/{name}"]))
        if kind not in ("user", "service"):
            raise TencentError("InvalidParameter", "Kind must be user or service")
        console_intent(caller)
        creds = ctx.accounts.create(kind, name)
        caller.seen["target"] = f"account/{creds['secret_id']}"
        return {"SecretId": creds["secret_id"], "SecretKey": creds["secret_key"], "Name": name}
    if action in ("DeleteAccount", "ResetSecretKey"):
        secret_id = _required(form, "SecretId")
        _on_account(caller, action, secret_id)
        console_intent(caller)
        if action == "DeleteAccount":
            ctx.accounts.delete(secret_id)
            return {"SecretId": secret_id}
        # Its tokens go with the old secret: a reset is how a leak is shut out.
        secret_key, revoked = ctx.accounts.new_secret(secret_id, revoke_tokens=True)
        return {"SecretId": secret_id, "SecretKey": secret_key, "TokensRevoked": revoked}
    if action in ("PutPolicy", "DeletePolicy"):
        name = _required(form, "PolicyName")
        _on_policy(caller, action, name)
        if action == "DeletePolicy":
            console_intent(caller)
            ctx.policies.delete(name)
            return {"PolicyName": name}
        statements = policy_statements(form.get("Statements") or "")
        console_intent(caller)
        ctx.policies.put(name, statements)
        return {"PolicyName": name}
    if action in ("AttachPolicy", "DetachPolicy"):
        # Both sides: the account it changes and the policy it moves (so a
        # right over one's own account cannot shed a deny or gain an admin policy).
        name, secret_id = _required(form, "PolicyName"), _required(form, "SecretId")
        _on_policy(caller, action, name)
        _on_account(caller, action, secret_id)
        caller.seen["target"] = f"account/{secret_id} policy/{name}"
        console_intent(caller)
        ctx.policies.attach(name, secret_id, attach=action == "AttachPolicy")
        return {"PolicyName": name, "SecretId": secret_id}
    if action == "CreateToken":
        secret_id = _required(form, "SecretId")
        _on_account(caller, action, secret_id)
        ttl = _ttl(form)
        console_intent(caller)
        issued = tokens.create(secret_id, ttl)
        caller.seen["target"] = f"account/{secret_id} token/{issued['accessor']}"
        return {"Token": issued["token"], "Accessor": issued["accessor"], "SecretId": secret_id}
    if action == "RevokeToken":
        accessor = _required(form, "Accessor")
        owner = next((t["account"] for t in tokens.listing() if t["accessor"] == accessor), None)
        caller.seen["target"] = f"token/{accessor[:64]}"
        if owner is not None:
            _on_account(caller, action, owner)
            caller.seen["target"] = f"account/{owner} token/{accessor}"
        else:  # no such token: refused or not found alike, saying nothing more
            require(caller, action, Resource([f"token/{accessor}"]))
        console_intent(caller)
        tokens.revoke_accessor(accessor)
        return {"Accessor": accessor}
    raise TencentError("InvalidAction", f"unknown console action {action[:64]!r}")


def policy_statements(text: str) -> Any:
    """The Statements field: JSON, then the policy service's own check,
    before anything is stored (a JSON error names its line and column)."""
    try:
        statements = jsonbody.loads(text.encode("utf-8", "surrogatepass"))  # bounded depth and size
    except jsonbody.BodyError as exc:
        raise TencentError("InvalidParameter", "Statements: " + str(exc).replace("the body is ", "")) from None
    try:
        return validate(statements)
    except errors.InvalidParameter as exc:  # "statement 2: ..." shown beside the field
        raise TencentError("InvalidParameter", "Statements: " + str(exc).replace("the body is ", "")) from None


# ---- audit -------------------------------------------------------------------


AUDIT_FILTERS = ("account", "action", "key", "result", "since", "until", "via")


def audit_filter(query: Dict[str, str]) -> Tuple[AuditFilter, Dict[str, str]]:
    """The audit page's filters from its query string (dates are UTC days)."""
    kept = {name: query.get(name, "")[:MAX_SEARCH_CHARS] for name in AUDIT_FILTERS}

    def day(text: str, end: bool) -> Optional[float]:
        if not text:
            return None
        try:
            start = calendar.timegm(datetime.date.fromisoformat(text).timetuple())
        except ValueError:
            raise TencentError("InvalidParameter", f"{'until' if end else 'since'} must be a date, YYYY-MM-DD") from None
        return float(start + (86400 if end else 0))

    return AuditFilter(account=kept["account"] or None, action=kept["action"] or None,
                       key_id=kept["key"] or None, result=kept["result"] or None,
                       since=day(kept["since"], False), until=day(kept["until"], True),
                       via=kept["via"] or None), kept


def audit_page(caller: Caller, path: str, query: Dict[str, str]) -> Dict[str, Any]:
    require(caller, "ReadAuditLog")
    caller.seen["action"] = "ReadAuditLog"
    chosen, kept = audit_filter(query)
    before = query.get("before", "")
    page = newest_first(path, chosen, limit=50,
                        before=ascii_int(before, negative=False) if before else None)
    return {"entries": page.entries, "next_before": page.next_before,
            "scanned_all": page.scanned_all, "filters": kept}

