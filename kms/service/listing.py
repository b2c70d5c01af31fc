"""Finding keys: the one filter and sort behind ListKeyDetail and the web
console's key list, so both select the same keys for the same question.

Filters apply to every key first, then the page is cut, so a total count
and a page always agree.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from kms.service.keys import owner_account

Record = Dict[str, Any]
TagFilter = Tuple[str, Sequence[str]]  # (TagKey, [TagValue, ...]); no values: any value

# Columns a listing may be sorted by, and the value each compares.
SORT_KEYS: Dict[str, Callable[[Record], Any]] = {
    "created": lambda r: (r["created_precise"], r["id"]),
    "alias": lambda r: (r["alias"].lower(), r["id"]),
    "state": lambda r: (r["state"], r["alias"].lower()),
    "usage": lambda r: (r["usage"], r["alias"].lower()),
    "origin": lambda r: (r["origin"], r["alias"].lower()),
    "rotation": lambda r: (r["rotation_enabled"], r["rotate_days"], r["alias"].lower()),
}


@dataclass(frozen=True)
class KeyQuery:
    service_managed: bool = False  # the keys service accounts own, else customer keys
    state: Optional[str] = None
    search: Optional[str] = None  # a substring of the alias or the key id
    search_description: bool = False  # the search also looks in descriptions
    ignore_case: bool = False  # ListKeyDetail's SearchKeyAlias matches case as given
    origin: Optional[str] = None
    usage: Optional[str] = None  # None: every usage
    tags: Sequence[TagFilter] = ()
    sort: str = "created"
    descending: bool = True


def matches(record: Record, query: KeyQuery) -> bool:
    if (owner_account(record) is not None) != query.service_managed:
        return False
    if query.state is not None and record["state"] != query.state:
        return False
    if query.origin is not None and record["origin"] != query.origin:
        return False
    if query.usage is not None and record["usage"] != query.usage:
        return False
    if query.search:
        fold = str.lower if query.ignore_case else str
        needle = fold(query.search)
        found = needle in fold(record["alias"]) or needle in fold(record["id"])
        if not found and query.search_description:
            found = needle in fold(record["description"])
        if not found:
            return False
    for key, values in query.tags:
        if key not in record["tags"] or (values and record["tags"][key] not in values):
            return False
    return True


def find_keys(records: List[Record], query: KeyQuery) -> List[Record]:
    """The records matching query, in its order (records: oldest first)."""
    if query.sort not in SORT_KEYS:
        raise ValueError(f"unknown sort column {query.sort!r}")
    found = [r for r in records if matches(r, query)]
    if query.sort == "created":  # already in that order: no sort needed
        return found[::-1] if query.descending else found
    return sorted(found, key=SORT_KEYS[query.sort], reverse=query.descending)
