"""Running one Tencent action for an authenticated caller: the shared step
of the Action API and the web console, so both check the same parameters,
the same policies and write the same audit intent.

The caller's adapter has already authenticated the call; `seen` collects
what its audit entry may name (the "intent" flag tells the outcome step
that the change went on record before it was made).
"""
from typing import Any, Dict, Optional

from kms.api.tencent.access import Context
from kms.api.tencent.action_kinds import changes_state
from kms.api.tencent.actions import ACTIONS
from kms.api.tencent.errors import TencentError
from kms.api.tencent.params import Params
from kms import errors
from kms.audit import AuditLog
from kms.keys import blob as blobs
from kms.service.keys import SERVICE_ALIAS_PREFIX

MAX_ACTION = 64  # the longest action name is 25 characters


def perform(ctx: Context, name: str, params: Params, audit: Optional[AuditLog],
            seen: Dict[str, Any]) -> Dict[str, Any]:
    """The action's response fields. Raises what the action raises
    (TencentError, kms.errors.*), having changed nothing on a refusal."""
    spec = ACTIONS.get(name)
    if spec is None:
        raise TencentError("InvalidAction", f"unknown action {name[:MAX_ACTION]!r}")
    # The handler acts on exactly what was authorized (kms.api.tencent.access).
    target, checks = spec.targets(ctx, params, name)
    ctx.policies.check(ctx.caller, checks)
    if seen.get("key_id") is not None and checks and checks[0][1].names[0].startswith("key/"):
        # Audited under the key's id, however the call named it (service/NAME).
        seen["key_id"] = checks[0][1].names[0][len("key/"):][:64]
    if changes_state(name) and audit is not None:
        # The intent goes on record before anything changes; if it cannot,
        # nothing is done (AuditUnavailable).
        seen.update(account=ctx.caller["secret_id"], action=name)
        audit.intend(seen)
    fields = spec.handler(ctx, params, target)
    named, made = seen.get("key_id"), fields.get("KeyId")
    if isinstance(named, str) and named.startswith(SERVICE_ALIAS_PREFIX) and isinstance(made, str):
        seen["key_id"] = made  # a service key made on first use: audited under its id
    return fields


def key_named_in(body: Dict[str, Any]) -> Optional[str]:
    """The key a request is about, for the audit entry: KeyId, or the key a
    CiphertextBlob's header names (so failed decryptions are attributed)."""
    key_id = body.get("KeyId")
    if isinstance(key_id, str):
        return key_id[:64]
    text = body.get("CiphertextBlob")
    if isinstance(text, str):
        try:
            return blobs.decode(text).key_id
        except errors.KMSError:
            return None
    return None
