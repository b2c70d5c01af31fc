"""The one exception hierarchy of kms.

Every error the project raises on purpose derives from KMSError and carries
a stable ``code`` string; protocol adapters map classes to their own error
formats in one place each. User-facing classes also derive from the builtin
a Python caller would expect (ValueError, TypeError, ...), so code written
against ``cryptography`` keeps catching what it caught before.

This module imports nothing from kms; every layer may import it.
"""


# Base of every kms error.
class KMSError(Exception):
    code = "kms_error"

    def __init_subclass__(cls, code: str = "", **kwargs: object) -> None:
        # A subclass names its stable code where it is declared.
        super().__init_subclass__()
        if code:
            cls.code = code


# The classes that also derive from a builtin, so that code written against
# cryptography catches what it caught before. InvalidRequest: the caller
# sent something the operation cannot accept; InternalError: a fault on our
# side, never the caller's; DataTooLong: plaintext or associated data above
# the AES-GCM limits; BackendUnavailable: a requested AEAD backend is not
# available on this machine or build.
class InvalidRequest(KMSError, ValueError, code="invalid_request"): ...
class InvalidType(KMSError, TypeError, code="invalid_type"): ...
class InternalError(KMSError, code="internal_error"): ...
class DataTooLong(InvalidRequest, OverflowError, code="data_too_long"): ...
class BackendUnavailable(InternalError, RuntimeError, code="backend_unavailable"): ...


class InvalidKeySize(InvalidRequest, code="invalid_key_size"): ...


class InvalidNonceSize(InvalidRequest, code="invalid_nonce_size"): ...


class InvalidTagSize(InvalidRequest, code="invalid_tag_size"): ...


# Buffers or length tables that do not fit together.
class InvalidBuffer(InvalidRequest, code="invalid_buffer"): ...


class OverlappingBuffers(InvalidBuffer, code="overlapping_buffers"): ...


class NativeError(InternalError, code="native_error"): ...


class RandomSourceError(InternalError, code="random_source_error"): ...


# Something the service needs is failing for now (a full or read-only disk):
# the call changed nothing, the caller is told to retry later, not that it
# erred, and service comes back by itself once the cause is gone.
class ServiceUnavailable(KMSError, code="service_unavailable"): ...


# The audit log cannot be written. Nothing is done, or acknowledged, without
# its audit record.
class AuditUnavailable(ServiceUnavailable, code="audit_unavailable"): ...


# The key store cannot be written (no space, read-only, gone): the failed
# write was cut back, nothing was changed; reads go on.
class StoreUnavailable(ServiceUnavailable, code="store_unavailable"): ...


# A store file is damaged: the server refuses to start rather than run on a
# partial view of the keys.
class StoreCorrupt(InternalError, code="store_corrupt"):

    def __init__(self, path: str, offset: int, problem: str) -> None:
        super().__init__(f"{path}: at byte {offset}: {problem}")
        self.path, self.offset, self.problem = path, offset, problem


# A change lost a race with another writer's change.
class ConflictError(KMSError, code="conflict"): ...


# ---- key service -----------------------------------------------------------
# Each protocol adapter maps these classes to its own codes in one table.


# A parameter is missing, of the wrong type, or out of range.
class InvalidParameter(InvalidRequest, code="invalid_parameter"): ...


class InvalidKeyId(InvalidRequest, code="invalid_key_id"): ...


class InvalidAlias(InvalidRequest, code="invalid_alias"): ...


class AliasExists(InvalidRequest, code="alias_exists"): ...


class DuplicatedKeyId(InvalidRequest, code="duplicated_key_id"): ...


class InvalidPlaintext(InvalidRequest, code="invalid_plaintext"): ...


class InvalidPendingWindow(InvalidRequest, code="invalid_pending_window"): ...


class KeyNotFound(KMSError, code="key_not_found"): ...


# The key's state does not allow the operation.
class KeyStateError(KMSError, code="key_state_not_supported"): ...


class KeyDisabled(KeyStateError, code="key_disabled"): ...


class KeyArchived(KeyStateError, code="key_archived"): ...


class KeyPendingDelete(KeyStateError, code="key_pending_delete"): ...


class KeyShouldBeDisabled(KeyStateError, code="key_should_be_disabled"): ...


class KeyNotPendingDelete(KeyStateError, code="key_not_pending_delete"): ...


class UnsupportedOperation(KMSError, code="unsupported_operation"): ...


class RotateNotSupported(UnsupportedOperation, code="rotate_not_supported"): ...


class ExternalKeyCannotRotate(UnsupportedOperation, code="external_key_cannot_rotate"): ...


class NotUserCreatedKey(UnsupportedOperation, code="not_user_created_key"): ...


class PermissionDenied(KMSError, code="permission_denied"): ...


class NotExternalKey(UnsupportedOperation, code="not_external_key"): ...


class ImportTokenExpired(KMSError, code="import_token_expired"): ...


class MaterialUnwrapFailed(InvalidRequest, code="material_unwrap_failed"): ...


class MaterialMismatch(InvalidRequest, code="material_mismatch"): ...


class RotateRateLimited(KMSError, code="rotate_rate_limited"): ...


class InvalidKeyUsage(InvalidRequest, code="invalid_key_usage"): ...


class AsymmetricDecryptFailed(KMSError, code="asymmetric_decrypt_failed"): ...


class KeyNotAsymmetric(InvalidKeyUsage, code="key_not_asymmetric"): ...


class MalformedSignature(InvalidRequest, code="malformed_signature"): ...


class KeyInUse(KMSError, code="key_in_use"):
    """The key is bound to a cloud resource (BindCloudResource)."""


class BindingNotFound(KMSError, code="binding_not_found"): ...


class KeyLimitExceeded(KMSError, code="key_limit_exceeded"): ...


class KeySoftDeleted(KMSError, code="key_soft_deleted"): ...
