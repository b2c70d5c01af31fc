"""Changes that must land together, built in parts: each part is a Build,
run under the store's lock on the latest state, seeing what the parts
before it put, and checking its preconditions against that; all of them are
committed as one store record or not at all (the root account and its first
token, say)."""
from typing import Any, Callable, Dict, List, Sequence

from kms.store.log import LogStore, Op


class Staged:
    """The store as it will read once `ops` (built earlier in the same
    commit) are applied; read-only."""

    def __init__(self, store: LogStore, ops: Sequence[Op]) -> None:
        self._store = store
        self._ops = ops

    def get(self, namespace: str, id: str) -> Any:
        for op in reversed(self._ops):  # the latest op on an id decides
            if op.namespace == namespace and op.id == id:
                return op.value if op.op == "put" else None
        return self._store.get(namespace, id)

    def items(self, namespace: str) -> Dict[str, Any]:
        merged = dict(self._store.items(namespace))
        for op in self._ops:
            if op.namespace == namespace:
                if op.op == "put":
                    merged[op.id] = op.value
                else:
                    merged.pop(op.id, None)
        return merged


# Called under the store's exclusive lock on up-to-date state; raises to
# abort the whole commit, else returns its ops.
Build = Callable[[Staged], List[Op]]


def build_together(store: LogStore, builds: Sequence[Build]) -> List[Op]:
    """The ops of every build, in order; for use inside a commit's build."""
    ops: List[Op] = []
    for build in builds:
        ops += build(Staged(store, ops))
    return ops


def commit_together(store: LogStore, builds: Sequence[Build]) -> List[Op]:
    """One atomic record holding every build's ops, or nothing at all."""
    return store.commit(lambda: build_together(store, builds))
