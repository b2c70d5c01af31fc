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
it owns (service-managed CMKs) without a policy.

Records: policy / <name> -> {"name", "statements"}; attached policy names
live in the account record ("policies").
"""
import fnmatch
from typing import Any, Dict, Iterable, List

from kms import errors
from kms.store import LogStore, Op

EFFECTS = ("allow", "deny")
# What a service account may do on its own keys without any policy.
SERVICE_OWN_KEY_ACTIONS = {"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "DescribeKey",
                           "GetKeyRotationStatus", "EnableKeyRotation", "DisableKeyRotation",
                           "RotateKey"}


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

    def allows(self, account: Dict[str, Any], action: str, names: List[str],
               owner: str = "") -> bool:
        """names: every name of one resource (a key is key/<id> and
        alias/<alias>). A deny matching any name refuses; otherwise an allow
        matching any name grants."""
        if account["kind"] == "root":
            return True
        if (account["kind"] == "service" and owner == account["name"]
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

    def check(self, account: Dict[str, Any], action: str, names: List[str],
              owner: str = "") -> None:
        if not self.allows(account, action, names, owner):
            raise errors.PermissionDenied(f"{action} on {names[0]} is not permitted for this account")
