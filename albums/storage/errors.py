"""What an error from the storage backend means: this one file failed, or the bucket as a whole
cannot be used and the run must stop.

The one classification of backend errors, used by the sync (to fail a file or stop the run)
and by the diagnosis (to say which check failed). Like django-storages, it translates the
answers it understands; every botocore exception class lands in a kind (see `_BOTOCORE_KINDS`),
and whatever says nothing about the bucket as a whole is one file's failure. A 403 is never
read as "missing": without s3:ListBucket, S3 answers 403 for a key that does not exist
(django-storages #1104, #902).
"""

from dataclasses import dataclass
from enum import StrEnum

from botocore import exceptions as boto

from ..exceptions import BucketMissing, StorageAccessDenied, StorageError, StorageUnreachable


class ProblemKind(StrEnum):
    FILE = "file"  # says nothing about the bucket as a whole: only this file failed
    UNREACHABLE = "unreachable"
    TLS = "tls"
    NO_CREDENTIALS = "no_credentials"
    BAD_CREDENTIALS = "bad_credentials"
    NO_BUCKET = "no_bucket"
    DENIED = "denied"
    WRONG_REGION = "wrong_region"
    MISCONFIGURED = "misconfigured"


UNREACHABLE = "Cannot reach the {where} (syncing album {album!r}): {cause}. Check AWS_S3_ENDPOINT_URL and the network."
TLS = "The TLS connection to the {where} failed (syncing album {album!r}): {cause}. Check the endpoint's certificate and that AWS_S3_ENDPOINT_URL uses the right scheme (https or http)."
NO_CREDENTIALS = "No S3 credentials were found (syncing album {album!r}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
BAD_CREDENTIALS = "The {where} refused the credentials ({code}) while syncing album {album!r}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
DENIED = "The {where} denied {operation} ({code}) while syncing album {album!r}: the credentials need {permission}."
NO_BUCKET = "The {where} does not exist (syncing album {album!r}): create it or fix AWS_STORAGE_BUCKET_NAME."
WRONG_REGION = (
    "The {where} is in another region ({code}) (syncing album {album!r}): set AWS_S3_REGION_NAME."
)
MISCONFIGURED = "The S3 settings cannot be used (syncing album {album!r}): {cause}. Check the AWS_S3_* variables."

# botocore's own exceptions, by the base classes that say what they mean. Checked in order:
# SSLError is a ConnectionError, so TLS comes first. Anything else botocore raises (a
# checksum mismatch, a parameter it refused, a body it could not re-read) is one file's.
_BOTOCORE_KINDS: tuple[tuple[tuple[type[Exception], ...], ProblemKind], ...] = (
    ((boto.SSLError,), ProblemKind.TLS),
    (
        # No answer at all: refused, timed out, closed, stalled mid-body, or the retry
        # quota used up by such failures.
        (boto.ConnectionError, boto.HTTPClientError, boto.CapacityNotAvailableError),
        ProblemKind.UNREACHABLE,
    ),
    (
        (
            boto.NoCredentialsError,
            boto.PartialCredentialsError,
            boto.CredentialRetrievalError,
            boto.UnknownCredentialError,
            boto.NoAuthTokenError,
            boto.TokenRetrievalError,
            boto.SSOError,
            boto.LoginError,
            boto.RefreshWithMFAUnsupportedError,
            boto.MetadataRetrievalError,
        ),
        ProblemKind.NO_CREDENTIALS,
    ),
    (
        (
            boto.BaseEndpointResolverError,
            boto.EndpointProviderError,
            boto.InvalidRegionError,
            boto.InvalidS3AddressingStyleError,
            boto.InvalidEndpointConfigurationError,
            boto.InvalidConfigError,
            boto.InvalidRetryConfigurationError,
            boto.InvalidChecksumConfigError,
            boto.InvalidDNSNameError,
            boto.InvalidHostLabelError,
            boto.InvalidProxiesConfigError,
            boto.InvalidS3UsEast1RegionalEndpointConfigError,
            boto.InvalidSTSRegionalEndpointsConfigError,
            boto.UnknownSignatureVersionError,
            boto.UnsupportedSignatureVersionError,
            boto.UnsupportedS3ConfigurationError,
            boto.UnsupportedS3ArnError,
            boto.UnsupportedS3AccesspointConfigurationError,
            boto.ProfileNotFound,
            boto.ConfigNotFound,
            boto.ConfigParseError,
            boto.DataNotFoundError,
            boto.ApiVersionNotFoundError,
            boto.MissingDependencyException,
            boto.UnknownRegionError,
            boto.InvalidDefaultsMode,
            boto.InvalidIMDSEndpointError,
            boto.InvalidIMDSEndpointModeError,
            boto.InvalidEndpointDiscoveryConfigurationError,
            boto.ServiceNotInRegionError,
            boto.UnsupportedOutpostResourceError,
            boto.UnsupportedS3ControlConfigurationError,
            boto.UnsupportedS3ControlArnError,
            boto.UnknownServiceStyle,
            boto.UnsupportedServiceProtocolsError,
            boto.UnknownTokenProviderError,
        ),
        ProblemKind.MISCONFIGURED,
    ),
)
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "403"}
REGION_CODES = {"PermanentRedirect", "AuthorizationHeaderMalformed", "301"}
PERMISSIONS = {
    "HeadObject": "s3:GetObject and s3:ListBucket (without s3:ListBucket, S3 answers 403 for a missing key)",
    "ListObjectsV2": "s3:ListBucket",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
}


@dataclass(frozen=True, slots=True)
class StorageProblem:
    """What a backend error means, before it is worded for a sync run or a diagnosis."""

    kind: ProblemKind
    cause: str  # the error in a few words: a file's failure text, a run error's cause
    operation: str = ""
    code: str = ""

    @property
    def stops_run(self) -> bool:
        return self.kind is not ProblemKind.FILE

    @property
    def permission(self) -> str:
        return PERMISSIONS.get(self.operation, f"permission for {self.operation}")

    def run_error(self, *, album: str, where: str) -> StorageError:
        """The error that stops a sync of `album` against `where` (describe(storage))."""
        names = {"album": album, "where": where, "cause": self.cause, "code": self.code}
        match self.kind:
            case ProblemKind.UNREACHABLE:
                return StorageUnreachable(UNREACHABLE.format(**names))
            case ProblemKind.TLS:
                return StorageUnreachable(TLS.format(**names))
            case ProblemKind.NO_CREDENTIALS:
                return StorageAccessDenied(NO_CREDENTIALS.format(**names))
            case ProblemKind.BAD_CREDENTIALS:
                return StorageAccessDenied(BAD_CREDENTIALS.format(**names))
            case ProblemKind.NO_BUCKET:
                return BucketMissing(NO_BUCKET.format(**names))
            case ProblemKind.DENIED:
                text = DENIED.format(operation=self.operation, permission=self.permission, **names)
                return StorageAccessDenied(text)
            case ProblemKind.WRONG_REGION:
                return StorageError(WRONG_REGION.format(**names))
            case ProblemKind.MISCONFIGURED:
                return StorageError(MISCONFIGURED.format(**names))
        raise ValueError(f"{self.kind} does not stop a run")


def classify_storage_error(exc: Exception) -> StorageProblem:
    """What `exc`, raised while using the bucket or reading a file for it, means."""
    if isinstance(exc, boto.ClientError):
        return _classify_answer(exc)
    for classes, kind in _BOTOCORE_KINDS:
        if isinstance(exc, classes):
            return StorageProblem(kind, cause=str(exc))
    return StorageProblem(ProblemKind.FILE, cause=_file_cause(exc))


def _classify_answer(exc: boto.ClientError) -> StorageProblem:
    """The service answered, with an error code: the code says whose problem it is."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = exc.operation_name
    if code == "NoSuchBucket":
        kind = ProblemKind.NO_BUCKET
    elif code in CREDENTIAL_CODES:
        kind = ProblemKind.BAD_CREDENTIALS
    elif status == 403 or code in DENIED_CODES:
        kind, code = ProblemKind.DENIED, code or str(status)
    elif code in REGION_CODES:
        kind = ProblemKind.WRONG_REGION
    else:
        kind = ProblemKind.FILE
    return StorageProblem(kind, cause=_file_cause(exc), operation=operation, code=code)


def _file_cause(exc: Exception) -> str:
    """A short reason for one file's failure, for the run record and the logs."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        return (
            f"{exc.operation_name} failed: {error.get('Code')} {error.get('Message', '')}".strip()
        )
    if type(exc).__module__.startswith("albums."):
        return str(exc)  # our own messages are written for people already
    return f"{exc.__class__.__name__}: {exc}"
