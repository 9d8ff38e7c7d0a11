"""What an error from the storage backend means, and what to do about it.

The one classification of backend errors, used by the sync (to fail a file or stop the run)
and by the diagnosis (to say which check failed), and the one table of what to do about each
(FIXES, S3_CODES), which the sync's messages and check_storage's "Fix:" both print. Like
django-storages, it translates the answers it understands; every botocore exception class
lands in a kind (see `_BOTOCORE_KINDS`), and whatever says nothing about the bucket as a whole
is one file's failure. A 403 is never read as "missing": without s3:ListBucket, S3 answers 403
for a key that does not exist (django-storages #1104, #902); and a 403 whose code says the
clock, the account or the credentials are wrong is reported as that, not as a permission.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

import urllib3
from botocore import exceptions as boto

from ..exceptions import BucketMissing, StorageAccessDenied, StorageError, StorageUnreachable
from .watch import EndpointSilent, answered_meanwhile


class ProblemKind(StrEnum):
    FILE = "file"  # says nothing about the bucket as a whole: only this file failed
    UNREACHABLE = "unreachable"  # no answer to this request: Failures.judge weighs the evidence
    TLS = "tls"
    NO_CREDENTIALS = "no_credentials"
    BAD_CREDENTIALS = "bad_credentials"
    CLOCK = "clock"
    ACCOUNT = "account"
    NO_BUCKET = "no_bucket"
    DENIED = "denied"
    WRONG_REGION = "wrong_region"
    MISCONFIGURED = "misconfigured"


# How a sync run that a problem stopped says what happened; the fix follows (FIXES, S3_CODES).
RUN_ERRORS = {
    ProblemKind.UNREACHABLE: "Cannot reach the {where} (syncing {subject}): {cause}.",
    ProblemKind.TLS: "The TLS connection to the {where} failed (syncing {subject}): {cause}.",
    ProblemKind.NO_CREDENTIALS: "No S3 credentials were found (syncing {subject}).",
    ProblemKind.BAD_CREDENTIALS: "The {where} refused the credentials ({code}) while syncing {subject}.",
    ProblemKind.CLOCK: "The {where} refused the request's time ({code}) while syncing {subject}.",
    ProblemKind.ACCOUNT: "The {where} refused the account ({code}) while syncing {subject}.",
    ProblemKind.NO_BUCKET: "The {where} does not exist (syncing {subject}).",
    ProblemKind.DENIED: "The {where} denied {operation} ({code}) while syncing {subject}.",
    ProblemKind.WRONG_REGION: "The {where} is in another region ({code}) (syncing {subject}).",
    ProblemKind.MISCONFIGURED: "The S3 settings cannot be used (syncing {subject}): {cause}.",
}
# What to do about each kind of problem: the sync's messages and check_storage's "Fix:" both
# say this, unless the provider's error code says something more precise (S3_CODES).
FIXES = {
    ProblemKind.UNREACHABLE: "Check AWS_S3_ENDPOINT_URL and the network.",
    ProblemKind.TLS: "Check the endpoint's certificate and that AWS_S3_ENDPOINT_URL uses the right scheme (https or http).",
    ProblemKind.NO_CREDENTIALS: "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    ProblemKind.BAD_CREDENTIALS: "Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    ProblemKind.CLOCK: "Set this machine's clock right.",
    ProblemKind.ACCOUNT: "Check the account with the provider.",
    ProblemKind.NO_BUCKET: "Create the bucket or fix AWS_STORAGE_BUCKET_NAME.",
    ProblemKind.DENIED: "Grant {permission}.",
    ProblemKind.WRONG_REGION: "Set AWS_S3_REGION_NAME to the bucket's region.",
    ProblemKind.MISCONFIGURED: "Check the AWS_S3_* variables.",
}
REGION_FIX = "Set AWS_S3_REGION_NAME={region}: the service says the bucket is there."
EXPIRED_FIX = "The temporary credentials have expired or are not valid: renew them."
# The S3 error codes that mean something of their own, and what to do about each (None: the
# kind's fix). Anything else the service answers is one file's failure.
S3_CODES: dict[str, tuple[ProblemKind, str | None]] = {
    "NoSuchBucket": (ProblemKind.NO_BUCKET, None),
    "InvalidAccessKeyId": (
        ProblemKind.BAD_CREDENTIALS,
        "The service does not know this access key: check AWS_ACCESS_KEY_ID, and that "
        "AWS_S3_ENDPOINT_URL is the service that issued it.",
    ),
    "SignatureDoesNotMatch": (
        ProblemKind.BAD_CREDENTIALS,
        "The secret key does not go with the access key: check AWS_SECRET_ACCESS_KEY (the "
        "whole key, with no space or line break).",
    ),
    "ExpiredToken": (ProblemKind.BAD_CREDENTIALS, EXPIRED_FIX),
    "InvalidToken": (ProblemKind.BAD_CREDENTIALS, EXPIRED_FIX),
    "TokenRefreshRequired": (ProblemKind.BAD_CREDENTIALS, EXPIRED_FIX),
    "RequestTimeTooSkewed": (
        ProblemKind.CLOCK,
        "This machine's clock is more than 15 minutes away from the service's: set it right "
        "and keep it so (turn on NTP, e.g. `timedatectl set-ntp true`). The credentials and "
        "permissions are not in question.",
    ),
    "AccountProblem": (
        ProblemKind.ACCOUNT,
        "The provider reports a problem with the account (billing, a suspension): sort it out "
        "with the provider; no setting of photosite can.",
    ),
    "AllAccessDisabled": (
        ProblemKind.ACCOUNT,
        "The provider has disabled all access to this bucket: contact the provider.",
    ),
    "AuthorizationHeaderMalformed": (ProblemKind.WRONG_REGION, None),
    "PermanentRedirect": (ProblemKind.WRONG_REGION, None),
    "301": (ProblemKind.WRONG_REGION, None),
    "AccessDenied": (ProblemKind.DENIED, None),
}

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
REGION_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # as botocore checks
PERMISSIONS = {
    "HeadObject": "s3:GetObject and s3:ListBucket (without s3:ListBucket, S3 answers 403 for a missing key)",
    "ListObjectsV2": "s3:ListBucket",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}
# A key a DeleteObjects request did not delete: that photo's failure, naming the S3 code.
KEY_NOT_DELETED = "DeleteObjects failed for this key: {code} {message}"


class KeyRefused(Exception):
    """A key that a DeleteObjects request, answered as a whole, did not delete: the code and
    message the bucket gave for it in the answer's Errors.

    `every_key`: every key of the request was refused with this same code. That is then the
    answer to the request, not to the key: S3 answers a caller without s3:DeleteObject with a
    200 that lists each key as AccessDenied, which must stop the run as a refused DeleteObject
    does, not become a thousand failed photos.
    """

    def __init__(self, code: str, message: str, *, every_key: bool):
        super().__init__(KEY_NOT_DELETED.format(code=code, message=message).strip())
        self.code = code
        self.message = message
        self.every_key = every_key


@dataclass(frozen=True, slots=True)
class StorageProblem:
    """What a backend error means, before it is worded for a sync run or a diagnosis."""

    kind: ProblemKind
    cause: str  # the error in a few words: a file's failure text, a run error's cause
    operation: str = ""
    code: str = ""
    region: str = ""  # the bucket's region, when the service named it
    # No answer (UNREACHABLE) only, from albums.storage.watch: nothing at all was heard from
    # the endpoint for a while (`silent`), or another request was answered meanwhile.
    silent: bool = False
    answered_meanwhile: bool = False

    @property
    def stops_run(self) -> bool:
        """Whether the error alone says the bucket cannot be used. A request that got no
        answer (UNREACHABLE) may be that request's bad luck: Failures.judge weighs it against
        what the run heard from the endpoint meanwhile."""
        return self.kind not in (ProblemKind.FILE, ProblemKind.UNREACHABLE)

    @property
    def permission(self) -> str:
        return PERMISSIONS.get(self.operation, f"permission for {self.operation}")

    @property
    def fix(self) -> str:
        """What to do about it, in one or two sentences."""
        fix = S3_CODES.get(self.code, (None, None))[1]
        if self.kind is ProblemKind.WRONG_REGION and self.region:
            fix = REGION_FIX
        fix = fix or FIXES.get(self.kind, "")
        return fix.format(permission=self.permission, region=self.region)

    def run_error(self, *, where: str, album: str = "", subject: str = "") -> StorageError:
        """The error that stops a sync of `album` (or of `subject`, such as "40 albums")
        against `where` (describe(storage))."""
        if self.kind is ProblemKind.FILE:
            raise ValueError(f"{self.kind} does not stop a run")
        subject = subject or f"album {album!r}"
        headline = RUN_ERRORS[self.kind].format(
            subject=subject, where=where, cause=self.cause, code=self.code, operation=self.operation
        )
        error = _RUN_ERROR_CLASSES.get(self.kind, StorageError)(f"{headline} {self.fix}")
        error.problem = self  # for the diagnosis that follows (albums.sync.usecases.service)
        return error


_RUN_ERROR_CLASSES = {
    ProblemKind.UNREACHABLE: StorageUnreachable,
    ProblemKind.TLS: StorageUnreachable,
    ProblemKind.NO_CREDENTIALS: StorageAccessDenied,
    ProblemKind.BAD_CREDENTIALS: StorageAccessDenied,
    ProblemKind.CLOCK: StorageAccessDenied,
    ProblemKind.ACCOUNT: StorageAccessDenied,
    ProblemKind.DENIED: StorageAccessDenied,
    ProblemKind.NO_BUCKET: BucketMissing,
}


def classify_storage_error(exc: Exception) -> StorageProblem:
    """What `exc`, raised while using the bucket or reading a file for it, means."""
    if isinstance(exc, boto.ClientError):
        return _classify_answer(exc)
    if isinstance(exc, KeyRefused):
        return _classify_refusal(exc)
    for classes, kind in _BOTOCORE_KINDS:
        if isinstance(exc, classes):
            return StorageProblem(
                kind,
                cause=str(exc),
                silent=isinstance(exc, EndpointSilent),
                answered_meanwhile=answered_meanwhile(exc),
            )
    if isinstance(exc, urllib3.exceptions.HTTPError):
        # Raised by urllib3 itself while botocore read an answer's body (a response that
        # stalled or broke off midway): botocore neither wraps nor retries it.
        return StorageProblem(ProblemKind.UNREACHABLE, cause=f"the answer broke off: {exc}")
    return StorageProblem(ProblemKind.FILE, cause=_file_cause(exc))


def http_status(exc: boto.ClientError) -> int | None:
    """The HTTP status of the service's answer, if it came with one."""
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _classify_answer(exc: boto.ClientError) -> StorageProblem:
    """The service answered, with an error code: the code says whose problem it is."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    status = http_status(exc)
    if code in S3_CODES:
        kind = S3_CODES[code][0]
    elif status == 403:
        kind, code = ProblemKind.DENIED, code or str(status)
    else:
        kind = ProblemKind.FILE
    return StorageProblem(
        kind,
        cause=_file_cause(exc),
        operation=exc.operation_name,
        code=code,
        region=_region(exc) if kind is ProblemKind.WRONG_REGION else "",
    )


def _classify_refusal(exc: KeyRefused) -> StorageProblem:
    """One key of a DeleteObjects request refused: that photo's failure, unless every key of
    the request was refused with a code that says the bucket cannot be used (KeyRefused)."""
    kind = ProblemKind.FILE
    if exc.every_key and exc.code in S3_CODES:
        kind = S3_CODES[exc.code][0]
    return StorageProblem(kind, cause=str(exc), operation="DeleteObjects", code=exc.code)


def delete_objects_unsupported(exc: Exception) -> bool:
    """Whether `exc`, a DeleteObjects request's error, says the endpoint does not take that
    request at all, so that the keys must go one DeleteObject each: 501 NotImplemented, S3's
    answer to an operation a service lacks; or a 400 asking for the Content-MD5 header (MinIO
    answers MissingContentMD5, S3 and the services that copy it InvalidRequest "Missing
    required header for this request: Content-MD5"), should a proxy on the way drop ours."""
    if not isinstance(exc, boto.ClientError):
        return False
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    status = http_status(exc)
    if status == 501 or code in ("NotImplemented", "MissingContentMD5"):
        return True
    return status == 400 and "content-md5" in error.get("Message", "").lower()


def _region(exc: boto.ClientError) -> str:
    """The bucket's region, as the service gave it (AuthorizationHeaderMalformed carries it in
    its body, a redirect in a header), if it looks like one."""
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = exc.response.get("Error", {}).get("Region") or headers.get("x-amz-bucket-region", "")
    return region if REGION_NAME.fullmatch(region) else ""


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
