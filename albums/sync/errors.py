"""Translate what the storage backend raised into "stop the run" or "note this file".

Like django-storages, translate the answers we understand and let the rest through as a
per-file failure. A 403 is never read as "missing": without s3:ListBucket, S3 answers 403
for a key that does not exist (django-storages #1104, #902).
"""

from botocore.exceptions import (
    BotoCoreError,
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


def fatal_storage_error(exc: Exception, *, album: str, storage: Storage) -> StorageError | None:
    """The error that must stop the run, or None if only this one file failed."""
    where = describe(storage)
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, CONNECTION_ERRORS):
        return StorageUnreachable(UNREACHABLE.format(where=where, album=album, cause=exc))
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StorageAccessDenied(NO_CREDENTIALS.format(album=album))
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = exc.operation_name
        if code == "NoSuchBucket":
            return BucketMissing(NO_BUCKET.format(where=where, album=album))
        if code in CREDENTIAL_CODES:
            return StorageAccessDenied(BAD_CREDENTIALS.format(where=where, album=album, code=code))
        if status == 403 or code in {"AccessDenied", "AllAccessDisabled", "403"}:
            permission = PERMISSIONS.get(operation, f"permission for {operation}")
            return StorageAccessDenied(
                DENIED.format(
                    where=where,
                    album=album,
                    operation=operation,
                    code=code or status,
                    permission=permission,
                )
            )
        if code in {"PermanentRedirect", "AuthorizationHeaderMalformed", "301"}:
            return StorageError(WRONG_REGION.format(where=where, album=album, code=code))
        return None
    if isinstance(exc, BotoCoreError):
        return None
    return None


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
