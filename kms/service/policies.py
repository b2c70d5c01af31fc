"""Access policies for sub-accounts, in the spirit of Tencent CAM.

A policy is a list of statements:
    {"effect": "allow" | "deny",
     "actions": ["kms:Encrypt", "kms:Describe*", "kms:*"],
     "resources": ["key/<key id>", "alias/app-*", "*"]}
Patterns use shell wildcards (* and ?). A request names an action and the
resources it touches (a key by both its names, key/<id> and alias/<alias>;
"*" for actions not about one key). It is allowed when, for every resource,
some statement of the account's attached policies allows it and none denies
it: an explicit deny always wins, and no allow means denied.

The root account is allowed everything. A service account may use the keys
it owns (service-managed CMKs, owned by its SecretId) without a policy.

Some operations need more than their own action. ReEncrypt reads what the
source protects and encrypts to the destination, so (as AWS KMS splits it
into ReEncryptFrom and ReEncryptTo) it needs kms:ReEncrypt and kms:Decrypt
on the source key, and kms:ReEncrypt and kms:Encrypt on the destination: a
deny on Decrypt cannot be side-stepped by re-encrypting to a key of one's
own. Restoring a backup needs kms:CreateKey and kms:ImportKeyMaterial on
the name it restores to.

Records: policy / <name> -> {"name", "statements"}; attached policy names
live in the account record ("policies").
"""
import fnmatch
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from kms import errors
from kms.service.keys import owner_account
from kms.store import LogStore, Op

EFFECTS = ("allow", "deny")
# What a service account may do on its own keys without any policy.
SERVICE_OWN_KEY_ACTIONS = {"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "DescribeKey",
                           "GetKeyRotationStatus", "EnableKeyRotation", "DisableKeyRotation",
                           "RotateKey"}


# The actions each side of a re-encryption needs (see above).
REENCRYPT_SOURCE = ("ReEncrypt", "Decrypt")
REENCRYPT_DESTINATION = ("ReEncrypt", "Encrypt")
RESTORE = ("CreateKey", "ImportKeyMaterial")


class Resource(NamedTuple):
    """What a policy is checked against: every name of one resource, and the
    SecretId of the service account owning it (None: no owner)."""

    names: List[str]
    owner_id: Optional[str] = None


ANY = Resource(["*"])


def key_resource(record: Dict[str, Any]) -> Resource:
    return Resource([f"key/{record['id']}", f"alias/{record['alias']}"], owner_account(record))


def alias_resource(alias: str, owner_id: Optional[str] = None) -> Resource:
    """A key known only by the alias it will have (creation, restore)."""
    return Resource([f"alias/{alias}"], owner_id)


def unknown_key(key_id: str) -> Resource:
    """A key id that names no key: checked by id alone, so a refused caller
    learns nothing about whether it exists."""
    return Resource([f"key/{key_id}"])


Check = Tuple[Sequence[str], Resource]  # the actions needed on one resource


def validate(statements: Any) -> List[Dict[str, Any]]:
    if not isinstance(statements, list) or not statements:
        raise errors.InvalidParameter("a policy is a non-empty list of statements")
    clean = []
    for i, st in enumerate(statements):
        if not isinstance(st, dict) or set(st) - {"effect", "actions", "resources"}:
            raise errors.InvalidParameter(f"statement {i}: only effect, actions and resources are allowed")
        effect = st.get("effect")
        if effect not in EFFECTS:
            raise errors.InvalidParameter(f"statement {i}: effect must be allow or deny")
        for field in ("actions", "resources"):
            value = st.get(field)
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise errors.InvalidParameter(f"statement {i}: {field} must be a non-empty list of strings")
        for action in st["actions"]:
            if not action.startswith("kms:"):
                raise errors.InvalidParameter(f"statement {i}: action {action!r} must start with kms:")
        clean.append({"effect": effect, "actions": list(st["actions"]), "resources": list(st["resources"])})
    return clean


class PolicyService:
    def __init__(self, store: LogStore) -> None:
        self.store = store

    # ---- administration ----------------------------------------------------

    def put(self, name: str, statements: Any) -> None:
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise errors.InvalidParameter("policy names use letters, digits, - and _")
        clean = validate(statements)
        self.store.commit(lambda: [Op("put", "policy", name, {"name": name, "statements": clean})])

    def delete(self, name: str) -> None:
        def build() -> List[Op]:
            if self.store.get("policy", name) is None:
                raise errors.InvalidParameter(f"no policy named {name!r}")
            ops = [Op("del", "policy", name)]
            for account in self.store.items("account").values():
                if name in account.get("policies", []):
                    updated = dict(account, policies=[p for p in account["policies"] if p != name])
                    ops.append(Op("put", "account", account["secret_id"], updated))
            return ops

        self.store.commit(build)

    def attach(self, name: str, secret_id: str, attach: bool = True) -> None:
        def build() -> List[Op]:
            account = self.store.get("account", secret_id)
            if account is None:
                raise errors.InvalidParameter(f"no account with SecretId {secret_id}")
            if attach and self.store.get("policy", name) is None:
                raise errors.InvalidParameter(f"no policy named {name!r}")
            names = [p for p in account.get("policies", []) if p != name]
            if attach:
                names.append(name)
            return [Op("put", "account", secret_id, dict(account, policies=names))]

        self.store.commit(build)

    # ---- evaluation --------------------------------------------------------

    def _statements(self, account: Dict[str, Any]) -> Iterable[Dict[str, Any]]:
        for name in account.get("policies", []):
            policy = self.store.get("policy", name)
            if policy is not None:
                yield from policy["statements"]

    def allows(self, account: Dict[str, Any], action: str, resource: Resource) -> bool:
        """A deny matching any of the resource's names refuses; otherwise an
        allow matching any name grants."""
        names = resource.names
        if account["kind"] == "root":
            return True
        if (account["kind"] == "service" and resource.owner_id == account["secret_id"]
                and action in SERVICE_OWN_KEY_ACTIONS):
            return True
        qualified = "kms:" + action
        allowed = False
        for st in self._statements(account):
            if not any(fnmatch.fnmatchcase(qualified, a) for a in st["actions"]):
                continue
            if not any(fnmatch.fnmatchcase(n, r) for n in names for r in st["resources"]):
                continue
            if st["effect"] == "deny":
                return False
            allowed = True
        return allowed

    def check(self, account: Dict[str, Any], checks: Sequence[Check]) -> None:
        """Every action on every resource must be allowed. No checks at all
        is a refusal: an operation that names nothing is not let through."""
        if not checks:
            raise errors.PermissionDenied("the request names no resource this account may use")
        for actions, resource in checks:
            if not resource.names:
                raise errors.PermissionDenied("the request names no resource this account may use")
            for action in actions:
                if not self.allows(account, action, resource):
                    raise errors.PermissionDenied(
                        f"{action} on {resource.names[0]} is not permitted for this account")
