"""Requests made by an AWS client (boto3, the AWS CLI, an AWS SDK) to POST /.

Such a client reads an HTTP 200 as success whatever the body says, so a
Tencent error envelope would reach it as an empty result and the AWS CLI
would exit 0. It is answered instead the way an AWS JSON service refuses
an unknown credential: HTTP 400 with the error code in both the
x-amzn-ErrorType header and the body's "__type", which botocore's JSON
protocol parser turns into a ClientError with that code (the CLI prints
"An error occurred (UnrecognizedClientException) ..." and exits non-zero).
"""
import json
from typing import Dict, Mapping

from starlette.responses import Response

ERROR_TYPE = "UnrecognizedClientException"
MESSAGE = ("this server speaks the Tencent Cloud KMS API (requests signed with "
           "TC3-HMAC-SHA256), not the AWS API; use a Tencent Cloud SDK")
CONTENT_TYPE = "application/x-amz-json-1.1"

# Query parameters of a SigV4 presigned request.
_PRESIGNED = ("x-amz-algorithm", "x-amz-signature", "x-amz-credential")


def is_aws_request(headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """headers: lower-cased names; query: the request's query parameters.
    A Tencent client sends none of these: X-Amz-* headers (X-Amz-Target,
    X-Amz-Date, ...), an AWS Authorization (SigV4 "AWS4-...", SigV2
    "AWS ..."), an AWS JSON content type, or a presigned query."""
    if any(name.startswith("x-amz-") for name in headers):
        return True
    authorization = headers.get("authorization", "").lstrip()
    if authorization.startswith(("AWS4-", "AWS ")):
        return True
    if headers.get("content-type", "").strip().lower().startswith("application/x-amz-json"):
        return True
    return any(name.lower() in _PRESIGNED for name in query)


def _error(request_id: str, status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"__type": error_type, "message": message}).encode()
    headers: Dict[str, str] = {"x-amzn-ErrorType": error_type, "x-amzn-RequestId": request_id,
                               "Cache-Control": "no-store"}
    return Response(body, status_code=status, headers=headers, media_type=CONTENT_TYPE)


def refusal(request_id: str) -> Response:
    return _error(request_id, 400, ERROR_TYPE, MESSAGE)


def unavailable(request_id: str) -> Response:
    """The refusal could not be audited, so it is not released either."""
    return _error(request_id, 503, "ServiceUnavailableException",
                  "the service cannot record this call now; try again later")
