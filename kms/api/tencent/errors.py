"""The one map from kms errors to Tencent Cloud error codes
(spec/tencent-kms-api.md, section 5), plus errors only this protocol has."""
from typing import Callable, Tuple

from kms import errors
from kms.api.answers import ErrorTable, ProtocolError
from kms.keys.blob import InvalidCiphertext, InvalidContext
from kms.keys.sm2 import SM2Unavailable


class TencentError(Exception):
    """An error with its Tencent code, raised by the adapter itself."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Most specific first: the first class the error is an instance of wins.
CODES = [
    (errors.InvalidKeyId, "InvalidParameterValue.InvalidKeyId"),
    (errors.KeyNotFound, "ResourceUnavailable.CmkNotFound"),
    (errors.KeyDisabled, "ResourceUnavailable.CmkDisabled"),
    (errors.KeyArchived, "ResourceUnavailable.CmkArchived"),
    (errors.KeyPendingDelete, "ResourceUnavailable.KeyPendingDelete"),
    (errors.KeyShouldBeDisabled, "ResourceUnavailable.CmkShouldBeDisabled"),
    (errors.KeyNotPendingDelete, "ResourceUnavailable.CmkNotPendingDelete"),
    (errors.KeyStateError, "ResourceUnavailable.CmkStateNotSupport"),
    (errors.KeySoftDeleted, "ResourceUnavailable.CmkStateNotSupport"),
    (errors.InvalidAlias, "InvalidParameterValue.InvalidAlias"),
    (errors.AliasExists, "InvalidParameterValue.AliasAlreadyExists"),
    (errors.DuplicatedKeyId, "InvalidParameterValue.DuplicatedKeyId"),
    (errors.InvalidPlaintext, "InvalidParameterValue.InvalidPlaintext"),
    (errors.InvalidKeyUsage, "InvalidParameterValue.InvalidKeyUsage"),
    (errors.AsymmetricDecryptFailed, "FailedOperation.DecryptError"),
    (errors.KeyInUse, "FailedOperation.CmkUsedByCloudProduct"),
    (errors.BindingNotFound, "ResourceUnavailable.CloudResourceBindingNotFound"),
    (errors.KeyLimitExceeded, "LimitExceeded.CmkLimitExceeded"),
    (SM2Unavailable, "UnsupportedOperation.UnsupportedKeyUsageInCurrentRegion"),
    (errors.MalformedSignature, "InvalidParameterValue"),
    (InvalidCiphertext, "InvalidParameterValue.InvalidCiphertext"),
    (InvalidContext, "InvalidParameterValue"),
    (errors.InvalidPendingWindow, "InvalidParameter.InvalidPendingWindowInDays"),
    (errors.RotateNotSupported, "UnsupportedOperation.RotateNotSupported"),
    (errors.RotateRateLimited, "RequestLimitExceeded.RotateRateLimited"),
    (errors.ExternalKeyCannotRotate, "UnsupportedOperation.ExternalCmkCanNotRotate"),
    (errors.NotUserCreatedKey, "UnsupportedOperation.NotUserCreatedCmk"),
    (errors.NotExternalKey, "UnsupportedOperation.NotExternalCmk"),
    (errors.ImportTokenExpired, "ResourceUnavailable.TokenExpired"),
    (errors.MaterialUnwrapFailed, "InvalidParameter.DecryptMaterialError"),
    (errors.MaterialMismatch, "InvalidParameterValue.MaterialNotMatch"),
    (errors.UnsupportedOperation, "UnsupportedOperation"),
    (errors.PermissionDenied, "UnauthorizedOperation"),
    (errors.ServiceUnavailable, "UnsupportedOperation.ServiceTemporaryUnavailable"),
    (errors.InvalidParameter, "InvalidParameter"),
    (errors.InvalidRequest, "InvalidParameter"),
]


def code_for(exc: BaseException) -> Tuple[str, str]:
    """(code, message) for an error; unknown errors are InternalError with
    a message that reveals nothing."""
    if isinstance(exc, TencentError):
        return exc.code, str(exc)
    for cls, code in CODES:
        if isinstance(exc, cls):
            return code, str(exc)
    return "InternalError", INTERNAL_MESSAGE


def _row(code: str) -> Callable[[BaseException], ProtocolError]:
    return lambda exc: ProtocolError(200, [str(exc)], False, code)


# The same table for the shared answer step: every error is an HTTP 200
# envelope carrying its code.
INTERNAL_MESSAGE = "internal error; the server log has the details"
ERRORS = ErrorTable([(TencentError, lambda exc: ProtocolError(200, [str(exc)], False, exc.code))]
                    + [(cls, _row(code)) for cls, code in CODES],
                    fallback=ProtocolError(200, [INTERNAL_MESSAGE], True, "InternalError"))
