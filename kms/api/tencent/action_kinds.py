"""Which Tencent actions change state: the one place that says so.

The request signature does not cover X-TC-Action, so the replay rules
(kms.api.tencent.signing) treat a signature differently by the kind of
action it is presented under, and the audit log marks state changes.

READ_ONLY lists the actions that change no key, alias, account or import
state. Encrypt and GenerateDataKey may create a service account's key on its
first use, but that creation is idempotent (the same call again creates
nothing more), so they count as read-only. GetParametersForImport issues a
new import token, so it changes state.
"""
from typing import FrozenSet

READ_ONLY: FrozenSet[str] = frozenset({
    "DescribeKey", "DescribeKeys", "ListKeys", "ListKeyDetail",
    "GetKeyRotationStatus", "GetServiceStatus", "ListAlgorithms",
    "GenerateRandom", "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
})


def changes_state(action: str) -> bool:
    """True unless the action is known to be read-only: an action added
    later, a misspelt one or an empty one is treated as changing state
    (failing closed)."""
    return action not in READ_ONLY
