"""Which Tencent actions change state: the one place that says so.

The request signature does not cover X-TC-Action, so the replay rules
(kms.api.tencent.signing) treat a signature differently by the kind of
action it is presented under, and the audit log marks state changes.

READ_ONLY lists the actions that change no key, alias, account or import
state. Encrypt and GenerateDataKey may create a service account's key on its
first use, but that creation is idempotent (the same call again creates
nothing more), so they count as read-only. GetParametersForImport issues a
new import token, so it changes state.

METADATA_READS are the read-only actions whose answer is key metadata only
(ids, states, aliases, rotation settings, algorithms), never key material,
plaintext, ciphertext or random bytes. The replay rules let a signature
first used under any action be reused under one of them, since the honest
SDK signs them identically to the call they check (DescribeKey right after
DisableKey, GetKeyRotationStatus right after DescribeKey, in one second),
and metadata is the one thing the rules accept a replay may disclose.
"""
from typing import FrozenSet

READ_ONLY: FrozenSet[str] = frozenset({
    "DescribeKey", "DescribeKeys", "ListKeys", "ListKeyDetail",
    "GetKeyRotationStatus", "GetServiceStatus", "ListAlgorithms", "GetRegions",
    "GenerateRandom", "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
    "GetPublicKey", "SignByAsymmetricKey", "VerifyByAsymmetricKey", "AsymmetricRsaDecrypt",
    "AsymmetricSm2Decrypt",
})

METADATA_READS: FrozenSet[str] = frozenset({
    "DescribeKey", "DescribeKeys", "ListKeys", "ListKeyDetail",
    "GetKeyRotationStatus", "GetServiceStatus", "ListAlgorithms", "GetRegions",
})


def changes_state(action: str) -> bool:
    """True unless the action is known to be read-only: an action added
    later, a misspelt one or an empty one is treated as changing state
    (failing closed)."""
    return action not in READ_ONLY
