"""The one exception hierarchy of kms.

Every error the project raises on purpose derives from KMSError and carries
a stable ``code`` string; protocol adapters map classes to their own error
formats in one place each. User-facing classes also derive from the builtin
a Python caller would expect (ValueError, TypeError, ...), so code written
against ``cryptography`` keeps catching what it caught before.

This module imports nothing from kms; every layer may import it.
"""


class KMSError(Exception):
    """Base of every kms error."""

    code = "kms_error"


class InvalidRequest(KMSError, ValueError):
    """The caller sent something the operation cannot accept."""

    code = "invalid_request"


class InvalidKeySize(InvalidRequest):
    code = "invalid_key_size"


class InvalidNonceSize(InvalidRequest):
    code = "invalid_nonce_size"


class InvalidTagSize(InvalidRequest):
    code = "invalid_tag_size"


class DataTooLong(InvalidRequest, OverflowError):
    """Plaintext or associated data above the AES-GCM limits."""

    code = "data_too_long"


class InvalidBuffer(InvalidRequest):
    """Buffers or length tables that do not fit together."""

    code = "invalid_buffer"


class OverlappingBuffers(InvalidBuffer):
    code = "overlapping_buffers"


class InvalidType(KMSError, TypeError):
    code = "invalid_type"


class InternalError(KMSError):
    """A fault on our side, never the caller's."""

    code = "internal_error"


class NativeError(InternalError):
    code = "native_error"


class RandomSourceError(InternalError):
    code = "random_source_error"


class BackendUnavailable(InternalError, RuntimeError):
    """A requested AEAD backend is not available on this machine or build."""

    code = "backend_unavailable"


class ServiceUnavailable(KMSError):
    """Something the service needs is failing for now (a full or read-only
    disk): the call changed nothing, the caller is told to retry later, not
    that it erred, and service comes back by itself once the cause is gone."""

    code = "service_unavailable"


class AuditUnavailable(ServiceUnavailable):
    """The audit log cannot be written. Nothing is done, or acknowledged,
    without its audit record."""

    code = "audit_unavailable"


class StoreUnavailable(ServiceUnavailable):
    """The key store cannot be written (no space, read-only, gone): the
    failed write was cut back, nothing was changed; reads go on."""

    code = "store_unavailable"


class StoreCorrupt(InternalError):
    """A store file is damaged: the server refuses to start rather than run
    on a partial view of the keys."""

    code = "store_corrupt"

    def __init__(self, path: str, offset: int, problem: str) -> None:
        super().__init__(f"{path}: at byte {offset}: {problem}")
        self.path, self.offset, self.problem = path, offset, problem


class ConflictError(KMSError):
    """A change lost a race with another writer's change."""

    code = "conflict"


# ---- key service -----------------------------------------------------------
# Each protocol adapter maps these classes to its own codes in one table.


class InvalidParameter(InvalidRequest):
    """A parameter is missing, of the wrong type, or out of range."""

    code = "invalid_parameter"


class InvalidKeyId(InvalidRequest):
    code = "invalid_key_id"


class InvalidAlias(InvalidRequest):
    code = "invalid_alias"


class AliasExists(InvalidRequest):
    code = "alias_exists"


class DuplicatedKeyId(InvalidRequest):
    code = "duplicated_key_id"


class InvalidPlaintext(InvalidRequest):
    code = "invalid_plaintext"


class InvalidPendingWindow(InvalidRequest):
    code = "invalid_pending_window"


class KeyNotFound(KMSError):
    code = "key_not_found"


class KeyStateError(KMSError):
    """The key's state does not allow the operation."""

    code = "key_state_not_supported"


class KeyDisabled(KeyStateError):
    code = "key_disabled"


class KeyArchived(KeyStateError):
    code = "key_archived"


class KeyPendingDelete(KeyStateError):
    code = "key_pending_delete"


class KeyShouldBeDisabled(KeyStateError):
    code = "key_should_be_disabled"


class KeyNotPendingDelete(KeyStateError):
    code = "key_not_pending_delete"


class UnsupportedOperation(KMSError):
    code = "unsupported_operation"


class RotateNotSupported(UnsupportedOperation):
    code = "rotate_not_supported"


class ExternalKeyCannotRotate(UnsupportedOperation):
    code = "external_key_cannot_rotate"


class NotUserCreatedKey(UnsupportedOperation):
    code = "not_user_created_key"


class PermissionDenied(KMSError):
    code = "permission_denied"


class NotExternalKey(UnsupportedOperation):
    code = "not_external_key"


class ImportTokenExpired(KMSError):
    code = "import_token_expired"


class MaterialUnwrapFailed(InvalidRequest):
    code = "material_unwrap_failed"


class MaterialMismatch(InvalidRequest):
    code = "material_mismatch"


class RotateRateLimited(KMSError):
    code = "rotate_rate_limited"


class InvalidKeyUsage(InvalidRequest):
    code = "invalid_key_usage"
