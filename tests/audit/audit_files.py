"""Audit logs for the audit tests, written by the real AuditLog."""
from kms import audit


def write(path, entries):
    log = audit.AuditLog(str(path))
    try:
        log.record_many(entries)
    finally:
        log.close()
