"""kms.store: durable records on disk. Imports kms.errors and kms.durable only.

``LogStore`` keeps namespaced records (accounts, keys, key versions, ...) in
one append-only log (its bytes: ``kms.store.frames``; checking and repairing
a damaged one: ``kms.store.repair``); it knows nothing of what the records
mean. Builds
(``kms.store.staged``) let several services' changes be checked in turn and
committed as one record.
"""
from kms.store.log import LogStore, Op
from kms.store.staged import Build, Staged, build_together, commit_together

__all__ = ["Build", "LogStore", "Op", "Staged", "build_together", "commit_together"]
