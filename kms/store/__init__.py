"""kms.store: durable records on disk. Imports kms.errors only.

``LogStore`` keeps namespaced records (accounts, keys, key versions, ...) in
one append-only log; it knows nothing of what the records mean.
"""
from kms.store.log import LogStore, Op

__all__ = ["LogStore", "Op"]
