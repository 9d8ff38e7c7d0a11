"""Translate what the storage backend raised into "stop the run" or "note this file".

Like django-storages, translate the answers we understand and let the rest through as a
per-file failure. A 403 is never read as "missing": without s3:ListBucket, S3 answers 403
for a key that does not exist (django-storages #1104, #902).
"""

from dataclasses import dataclass
from enum import StrEnum

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
)
from django.core.files.storage import Storage

from ..exceptions import BucketMissing, StorageAccessDenied, StorageError, StorageUnreachable
from ..storage import describe

UNREACHABLE = "Cannot reach the {where} (syncing album {album!r}): {cause}. Check AWS_S3_ENDPOINT_URL and the network."
NO_CREDENTIALS = "No S3 credentials were found (syncing album {album!r}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
BAD_CREDENTIALS = "The {where} refused the credentials ({code}) while syncing album {album!r}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
DENIED = "The {where} denied {operation} ({code}) while syncing album {album!r}: the credentials need {permission}."
NO_BUCKET = "The {where} does not exist (syncing album {album!r}): create it or fix AWS_STORAGE_BUCKET_NAME."
WRONG_REGION = (
    "The {where} is in another region ({code}) (syncing album {album!r}): set AWS_S3_REGION_NAME."
)

CONNECTION_ERRORS = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    ProxyConnectionError,
)
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
PERMISSIONS = {
    "HeadObject": "s3:GetObject and s3:ListBucket (without s3:ListBucket, S3 answers 403 for a missing key)",
    "ListObjectsV2": "s3:ListBucket",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
}


class ProblemKind(StrEnum):
    UNREACHABLE = "unreachable"
    NO_CREDENTIALS = "no_credentials"
    BAD_CREDENTIALS = "bad_credentials"
    NO_BUCKET = "no_bucket"
    DENIED = "denied"
    WRONG_REGION = "wrong_region"


@dataclass(frozen=True, slots=True)
class StorageProblem:
    """What a backend error means, before it is worded for a sync run or a diagnosis."""

    kind: ProblemKind
    operation: str = ""
    code: str = ""

    @property
    def permission(self) -> str:
        return PERMISSIONS.get(self.operation, f"permission for {self.operation}")


def classify_storage_error(exc: Exception) -> StorageProblem | None:
    """The problem `exc` reveals about the bucket as a whole, or None if it reveals none."""
    if isinstance(exc, CONNECTION_ERRORS):
        return StorageProblem(ProblemKind.UNREACHABLE)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StorageProblem(ProblemKind.NO_CREDENTIALS)
    if not isinstance(exc, ClientError):
        return None
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = exc.operation_name
    if code == "NoSuchBucket":
        return StorageProblem(ProblemKind.NO_BUCKET, operation, code)
    if code in CREDENTIAL_CODES:
        return StorageProblem(ProblemKind.BAD_CREDENTIALS, operation, code)
    if status == 403 or code in {"AccessDenied", "AllAccessDisabled", "403"}:
        return StorageProblem(ProblemKind.DENIED, operation, code or str(status))
    if code in {"PermanentRedirect", "AuthorizationHeaderMalformed", "301"}:
        return StorageProblem(ProblemKind.WRONG_REGION, operation, code)
    return None


def fatal_storage_error(exc: Exception, *, album: str, storage: Storage) -> StorageError | None:
    """The error that must stop the run, or None if only this one file failed."""
    if isinstance(exc, StorageError):
        return exc
    problem = classify_storage_error(exc)
    if problem is None:
        return None
    where = describe(storage)
    code = problem.code
    match problem.kind:
        case ProblemKind.UNREACHABLE:
            return StorageUnreachable(UNREACHABLE.format(where=where, album=album, cause=exc))
        case ProblemKind.NO_CREDENTIALS:
            return StorageAccessDenied(NO_CREDENTIALS.format(album=album))
        case ProblemKind.NO_BUCKET:
            return BucketMissing(NO_BUCKET.format(where=where, album=album))
        case ProblemKind.BAD_CREDENTIALS:
            return StorageAccessDenied(BAD_CREDENTIALS.format(where=where, album=album, code=code))
        case ProblemKind.DENIED:
            return StorageAccessDenied(
                DENIED.format(
                    where=where,
                    album=album,
                    operation=problem.operation,
                    code=code,
                    permission=problem.permission,
                )
            )
        case ProblemKind.WRONG_REGION:
            return StorageError(WRONG_REGION.format(where=where, album=album, code=code))


def file_error_text(exc: Exception) -> str:
    """A short reason for one file's failure, for the run record and the logs."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return (
            f"{exc.operation_name} failed: {error.get('Code')} {error.get('Message', '')}".strip()
        )
    return f"{exc.__class__.__name__}: {exc}"
