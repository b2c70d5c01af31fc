"""Which resources a Tencent action touches, for the policy check.

A key is named both key/<id> and alias/<alias>; actions not about one key
(listing, random bytes, service status) touch "*". Unknown keys are checked
by id alone, so a refused caller learns nothing about whether a key exists.
"""
from typing import Any, Dict, List, Optional

from kms import errors
from kms.api.tencent.actions import Context
from kms.api.tencent.params import Params
from kms.keys import blob as blobs
from kms.service.keys import SERVICE_ALIAS_PREFIX

KEYLESS = {"CreateKey", "ListKeys", "ListKeyDetail", "GenerateRandom", "GetServiceStatus",
           "ListAlgorithms"}


def _key_names(ctx: Context, key_id: Any) -> Dict[str, Any]:
    if not isinstance(key_id, str):
        return {"names": ["key/?"], "owner": ""}
    if key_id.startswith(SERVICE_ALIAS_PREFIX):
        holder = ctx.keys.store.get("alias", key_id)
        record = ctx.keys.store.get("key", holder) if holder else None
        if record is None:  # not created yet: the caller's own alias
            return {"names": [f"alias/{key_id}"], "owner": ctx.caller.get("name", "")}
    else:
        record = ctx.keys.store.get("key", key_id)
    if record is None:
        return {"names": [f"key/{key_id}"], "owner": ""}
    return {"names": [f"key/{record['id']}", f"alias/{record['alias']}"], "owner": record["owner"]}


def _blob_key(text: Any) -> Optional[str]:
    if not isinstance(text, str):
        return None
    try:
        return blobs.decode(text).key_id
    except errors.KMSError:
        return None  # the action itself reports the damaged blob


def authorize(ctx: Context, action: str, p: Params) -> None:
    if ctx.caller["kind"] == "root":
        return
    policies = ctx.policies
    targets: List[Dict[str, Any]] = []
    if action == "CreateKey":
        alias = p.body.get("Alias")
        targets.append({"names": [f"alias/{alias}" if isinstance(alias, str) else "*"], "owner": ""})
    elif action in KEYLESS:
        targets.append({"names": ["*"], "owner": ""})
    elif action in ("Decrypt", "ReEncrypt"):
        source = _blob_key(p.body.get("CiphertextBlob"))
        if source is not None:
            targets.append(_key_names(ctx, source))
        destination = p.body.get("DestinationKeyId")
        if action == "ReEncrypt" and destination:
            targets.append(_key_names(ctx, destination))
    elif "KeyIds" in p.body:
        key_ids = p.body["KeyIds"]
        for key_id in key_ids if isinstance(key_ids, list) else []:
            targets.append(_key_names(ctx, key_id))
    else:
        targets.append(_key_names(ctx, p.body.get("KeyId")))
    for target in targets:
        policies.check(ctx.caller, action, target["names"], target["owner"])
