"""Can a sync use the "photos" storage? Each thing it needs, checked, with how to fix it.

`check_storage` prints the diagnosis; the admin can show the same one after a failed run.
Backend errors are read through `albums.storage.errors`, so a diagnosis and a failed run
understand a provider's answer the same way. Nothing here prints, stores or returns a
credential.
"""

import posixpath
import secrets
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from storages.backends.s3 import S3Storage

from .. import conf
from .backend import describe, open_photo_storage
from .errors import ProblemKind, StorageProblem, classify_storage_error

# The probe is written beside the albums prefix, never inside it, so that no sync, listing
# or --prune can ever take it for a photo.
SCRATCH_SUFFIX = "-check"
PROBE_BODY = b"photosite check_storage probe: safe to delete\n"

ENDPOINT_OK = "{where} answered"
ENDPOINT_UNREACHABLE = "cannot reach {where}: {cause}"
TLS_FAILED = "the TLS connection to {where} failed: {cause}"
SETTINGS_INVALID = "the S3 settings cannot be used: {cause}"
NOT_CONTACTED = "not contacted: there are no credentials to sign a request with"
REGION_OK = "no redirect to another region"
REGION_WRONG = "the bucket is in another region ({code})"
CREDENTIALS_OK = "accepted"
CREDENTIALS_MISSING = "no S3 credentials were found"
CREDENTIALS_REFUSED = "refused ({code})"
CLOCK_REFUSED = "refused the request's time ({code})"
ACCOUNT_REFUSED = "refused the account ({code})"
BUCKET_OK = "{where} exists"
BUCKET_MISSING = "{where} does not exist"
LIST_OK = "listed {prefix}"
LIST_DENIED = "listing {prefix} was denied ({code})"
MISSING_KEY_OK = "a HEAD of a missing key answered 404"
MISSING_KEY_FOUND = "a HEAD of a key that cannot exist answered 200"
MISSING_KEY_FORBIDDEN = "a HEAD of a missing key answered 403, not 404"
WRITE_OK = "wrote {key}"
WRITE_DENIED = "writing {key} was denied ({code})"
READ_BACK_OK = "{key} came back whole ({size} bytes)"
READ_BACK_WRONG_SIZE = "{key} came back with {size} bytes instead of {expected}"
DELETE_OK = "deleted {key}"
DELETE_DENIED = "deleting {key} was denied ({code}); the probe is still there"
FOLDER_OK = "{where} exists"
FOLDER_CREATED = "{where} was created"
FOLDER_NOT_A_FOLDER = "{where} is not a folder"
DENIED = "{operation} was denied ({code})"
FAILED = "{operation} failed: {cause}"
NOT_KNOWN = "not known: the listing failed"
SKIPPED = "not checked, as {check} failed"
DETAILS = {
    ProblemKind.UNREACHABLE: ENDPOINT_UNREACHABLE,
    ProblemKind.TLS: TLS_FAILED,
    ProblemKind.MISCONFIGURED: SETTINGS_INVALID,
    ProblemKind.WRONG_REGION: REGION_WRONG,
    ProblemKind.NO_CREDENTIALS: CREDENTIALS_MISSING,
    ProblemKind.BAD_CREDENTIALS: CREDENTIALS_REFUSED,
    ProblemKind.CLOCK: CLOCK_REFUSED,
    ProblemKind.ACCOUNT: ACCOUNT_REFUSED,
    ProblemKind.NO_BUCKET: BUCKET_MISSING,
    ProblemKind.DENIED: DENIED,
}

# What to do about a problem is StorageProblem.fix (albums.storage.errors), as in the sync's
# messages; these are the fixes only a check of its own can give.
FIX_LIST = "Grant s3:ListBucket on the bucket: the sync lists each album's prefix."
FIX_MISSING_KEY = (
    "Grant s3:ListBucket on the bucket: without it S3 answers 403 for a missing key, "
    "and the sync cannot tell a missing photo from a forbidden one."
)
FIX_WRITE = "Grant s3:PutObject on {scratch}* (the sync needs it on {prefix}/*)."
FIX_READ_BACK = (
    "The service stored something other than what was sent: if AWS_S3_REQUEST_CHECKSUMS is "
    "on, turn it off (many S3-compatible services mishandle botocore's checksums)."
)
FIX_DELETE = (
    "Grant s3:DeleteObject on {scratch}* (--prune needs it on {prefix}/*), then delete {key}."
)
FIX_FOLDER = "Create the folder or fix ALBUMS_LOCAL_BUCKET."
FIX_WRITABLE = "Make {where} writable by the user that runs photosite."
FIX_UNEXPECTED = "Unexpected: see the detail, and the service's logs."

# A failure of one of these leaves nothing to write to. A check the endpoint did not answer
# blocks the ones after it too: the diagnosis never waits twice for a silent endpoint.
BLOCKING = ("endpoint", "region", "credentials", "bucket", "folder")
NO_ANSWER = (ProblemKind.UNREACHABLE, ProblemKind.TLS)
BUCKET_CHECKS = ("endpoint", "region", "credentials", "bucket", "list")
ROUND_TRIP_CHECKS = ("write", "read back", "delete")
# Which of BUCKET_CHECKS an answer to the listing proves wrong.
FAILED_CHECK = {
    ProblemKind.UNREACHABLE: "endpoint",
    ProblemKind.TLS: "endpoint",
    ProblemKind.MISCONFIGURED: "endpoint",
    ProblemKind.WRONG_REGION: "region",
    ProblemKind.NO_CREDENTIALS: "credentials",
    ProblemKind.BAD_CREDENTIALS: "credentials",
    ProblemKind.CLOCK: "credentials",
    ProblemKind.ACCOUNT: "credentials",
    ProblemKind.NO_BUCKET: "bucket",
    ProblemKind.DENIED: "list",
}
MIN_HIDDEN_LENGTH = 8
MARKS = {"ok": "OK  ", "failed": "FAIL", "skipped": "SKIP"}


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""
    blocks: bool = False  # failed without an answer: the later requests are not made

    def line(self) -> str:
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{MARKS[self.status]} {self.name}: {self.detail}.{fix}"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "status": str(self.status),
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Diagnosis:
    where: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.status is Status.OK for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.status is Status.FAILED)

    def summary(self) -> str:
        if self.ok:
            return f"All {len(self.checks)} checks passed for the {self.where}."
        return f"{len(self.failures)} of {len(self.checks)} checks failed for the {self.where}."

    def as_dict(self) -> dict:
        return {
            "where": self.where,
            "ok": self.ok,
            "summary": self.summary(),
            "checks": [check.as_dict() for check in self.checks],
        }


def diagnose_storage(
    *, storage: Storage | None = None, known: StorageProblem | None = None
) -> Diagnosis:
    """Check that a sync can use `storage` (default: the "photos" storage, opened as a sync
    opens it, with a client that gives up sooner: see open_photo_storage's `quick`).

    Writes nothing under the albums prefix: the one object written is a small probe under
    `<ALBUMS_KEY_PREFIX>-check/`, deleted before returning unless the delete is refused,
    which the diagnosis then says. A network failure is a failed check, not an exception,
    and the checks after a request that got no answer are skipped, so a silent endpoint
    costs one request's wait. On S3 it costs one listing, two HEADs, one PUT and one DELETE.

    `known` is what a failed sync already learnt (the problem that stopped it): what it
    proves is not asked again, and when it leaves nothing to write to (the endpoint, the
    region, the credentials, the bucket), the diagnosis makes no request at all.
    """
    storage = storage if storage is not None else open_photo_storage(workers=1, quick=True)
    prefix = conf.key_prefix()
    if isinstance(storage, S3Storage):
        checks = _check_bucket(storage, prefix, known=known)
        checks.append(_check_missing_key(storage, prefix, blocked_by=_blocker(checks)))
    elif isinstance(storage, FileSystemStorage):
        checks = [_check_folder(storage)]
    else:
        checks = []
    checks += _check_round_trip(storage, prefix, blocked_by=_blocker(checks))
    return Diagnosis(where=describe(storage), checks=tuple(checks))


def _blocker(checks: list[Check]) -> str | None:
    return next(
        (
            check.name
            for check in checks
            if check.status is Status.FAILED and (check.name in BLOCKING or check.blocks)
        ),
        None,
    )


def _skipped(names: Iterable[str], *, blocked_by: str) -> list[Check]:
    return [Check(name, Status.SKIPPED, SKIPPED.format(check=blocked_by)) for name in names]


# S3 -----------------------------------------------------------------------------------


def _check_bucket(
    storage: S3Storage, prefix: str, *, known: StorageProblem | None = None
) -> list[Check]:
    """Endpoint, region, credentials, bucket and s3:ListBucket, all from one listing of the
    albums prefix: an answer that proves one of them wrong proves the ones before it right.
    A `known` problem that one of them explains is taken as that answer, without a request."""
    where = describe(storage)
    listed = posixpath.join(storage.location.strip("/"), prefix, "")
    passed = [
        Check("endpoint", Status.OK, ENDPOINT_OK.format(where=where)),
        Check("region", Status.OK, REGION_OK),
        Check("credentials", Status.OK, CREDENTIALS_OK),
        Check("bucket", Status.OK, BUCKET_OK.format(where=where)),
        Check("list", Status.OK, LIST_OK.format(prefix=listed)),
    ]
    failed = FAILED_CHECK.get(known.kind) if known is not None else None
    if failed in BLOCKING or (failed == "list" and known.operation == "ListObjectsV2"):
        return _bucket_checks_after(known, storage, passed, listed=listed)
    try:
        storage.connection.meta.client.list_objects_v2(
            Bucket=storage.bucket_name, Prefix=listed, MaxKeys=1
        )
    except Exception as exc:  # every failure is reported as a failed check
        problem = classify_storage_error(exc)
        if problem.kind is ProblemKind.FILE:
            return _listing_not_understood(exc, storage, passed)
        return _bucket_checks_after(problem, storage, passed, listed=listed)
    return passed


def _bucket_checks_after(
    problem: StorageProblem, storage: S3Storage, passed: list[Check], *, listed: str
) -> list[Check]:
    """The bucket checks once a listing of `listed` failed with `problem`."""
    failed = FAILED_CHECK[problem.kind]
    if problem.kind is ProblemKind.DENIED:
        detail, fix = LIST_DENIED.format(prefix=listed, code=problem.code), FIX_LIST
    else:
        detail, fix = _explain(problem, storage)
    position = BUCKET_CHECKS.index(failed)
    before = passed[:position]
    if problem.kind is ProblemKind.NO_CREDENTIALS:
        # botocore refuses to send such a request: nothing was contacted.
        before = [Check(check.name, Status.SKIPPED, NOT_CONTACTED) for check in before[:2]]
    after = _skipped(BUCKET_CHECKS[position + 1 :], blocked_by=failed)
    return [*before, Check(failed, Status.FAILED, detail, fix), *after]


def _listing_not_understood(exc: Exception, storage: S3Storage, passed: list[Check]) -> list[Check]:
    if isinstance(exc, ClientError):
        # The service answered, with something not understood here: say what it was, and
        # let the later checks run, as they may tell more.
        unknown = [Check(check.name, Status.SKIPPED, NOT_KNOWN) for check in passed[1:4]]
        return [passed[0], *unknown, _unexpected("list", exc, storage)]
    failed = _unexpected("endpoint", exc, storage)
    return [failed, *_skipped(BUCKET_CHECKS[1:], blocked_by=failed.name)]


def _check_missing_key(storage: S3Storage, prefix: str, *, blocked_by: str | None) -> Check:
    """A missing key must answer 404: the sync reads 404 as "not uploaded yet", while a 403
    stops it (django-storages #1104, #902). Only a HEAD, so it may go under the albums
    prefix, where the sync's own HEADs go."""
    name = "missing key"
    if blocked_by:
        return _skipped([name], blocked_by=blocked_by)[0]
    try:
        storage.size(f"{prefix}/photosite-check-missing-{secrets.token_hex(8)}")
    except FileNotFoundError:
        return Check(name, Status.OK, MISSING_KEY_OK)
    except Exception as exc:  # every failure is reported as a failed check
        if classify_storage_error(exc).kind is ProblemKind.DENIED:
            return Check(name, Status.FAILED, MISSING_KEY_FORBIDDEN, FIX_MISSING_KEY)
        return _failed(name, exc, storage)
    # A random key that exists can only mean the service answers 200 to every HEAD, which
    # would make the sync skip uploads.
    return Check(name, Status.FAILED, MISSING_KEY_FOUND, FIX_UNEXPECTED)


# Any backend: a probe written, read back and deleted through the Storage API -------------


def _check_round_trip(storage: Storage, prefix: str, *, blocked_by: str | None) -> list[Check]:
    if blocked_by:
        return _skipped(ROUND_TRIP_CHECKS, blocked_by=blocked_by)
    scratch = f"{prefix}{SCRATCH_SUFFIX}/"
    wanted = f"{scratch}probe-{secrets.token_hex(8)}.txt"
    try:
        key = storage.save(wanted, ContentFile(PROBE_BODY))
    except Exception as exc:  # every failure is reported as a failed check
        if classify_storage_error(exc).kind is ProblemKind.FILE:
            # A write that failed on the way back (a 500, say) may have been stored.
            with suppress(Exception):
                storage.delete(wanted)
        failed = _failed(
            "write",
            exc,
            storage,
            denied=(WRITE_DENIED, FIX_WRITE),
            key=wanted,
            scratch=scratch,
            prefix=prefix,
        )
        return [failed, *_skipped(ROUND_TRIP_CHECKS[1:], blocked_by="write")]
    checks = [Check("write", Status.OK, WRITE_OK.format(key=key))]
    checks.append(_check_read_back(storage, key))
    checks.append(_check_delete(storage, key, scratch=scratch, prefix=prefix))
    return checks


def _check_read_back(storage: Storage, key: str) -> Check:
    try:
        size = storage.size(key)
    except Exception as exc:  # every failure is reported as a failed check
        return _failed("read back", exc, storage)
    if size != len(PROBE_BODY):
        detail = READ_BACK_WRONG_SIZE.format(key=key, size=size, expected=len(PROBE_BODY))
        return Check("read back", Status.FAILED, detail, FIX_READ_BACK)
    return Check("read back", Status.OK, READ_BACK_OK.format(key=key, size=size))


def _check_delete(storage: Storage, key: str, *, scratch: str, prefix: str) -> Check:
    try:
        storage.delete(key)
    except Exception as exc:  # every failure is reported as a failed check
        return _failed(
            "delete",
            exc,
            storage,
            denied=(DELETE_DENIED, FIX_DELETE),
            scratch=scratch,
            prefix=prefix,
            key=key,
        )
    if isinstance(storage, FileSystemStorage):
        # FileSystemStorage leaves emptied folders behind; the scratch folder is ours.
        with suppress(OSError):
            Path(storage.path(scratch)).rmdir()
    return Check("delete", Status.OK, DELETE_OK.format(key=key))


# A local folder ------------------------------------------------------------------------


def _check_folder(storage: FileSystemStorage) -> Check:
    where = describe(storage)
    location = Path(storage.location)
    if location.is_dir():
        return Check("folder", Status.OK, FOLDER_OK.format(where=where))
    if location.exists():
        return Check("folder", Status.FAILED, FOLDER_NOT_A_FOLDER.format(where=where), FIX_FOLDER)
    try:
        # The first upload would create it too; creating it now proves that it can be.
        location.mkdir(parents=True)
    except OSError as exc:
        cause = exc.strerror or str(exc)
        detail = FAILED.format(operation=f"creating {location}", cause=cause)
        return Check("folder", Status.FAILED, detail, FIX_FOLDER)
    return Check("folder", Status.OK, FOLDER_CREATED.format(where=where))


# Wording -------------------------------------------------------------------------------


def _failed(
    name: str,
    exc: Exception,
    storage: Storage,
    *,
    denied: tuple[str, str] | None = None,
    **names: str,
) -> Check:
    """A failed check from what the backend raised. `denied` (detail, fix) words a refused
    permission for this check; `names` and the provider's code are filled into both."""
    problem = classify_storage_error(exc)
    if denied and problem.kind is ProblemKind.DENIED:
        detail, fix = (text.format(code=problem.code, **names) for text in denied)
        return Check(name, Status.FAILED, detail, fix)
    if problem.kind is ProblemKind.FILE:
        if isinstance(exc, OSError) and not isinstance(exc, BotoCoreError):
            where = describe(storage)
            detail = FAILED.format(operation=name, cause=exc.strerror or exc)
            return Check(name, Status.FAILED, detail, FIX_WRITABLE.format(where=where))
        return _unexpected(name, exc, storage)
    detail, fix = _explain(problem, storage)
    return Check(name, Status.FAILED, detail, fix, blocks=problem.kind in NO_ANSWER)


def _explain(problem: StorageProblem, storage: Storage) -> tuple[str, str]:
    """The detail and the fix for a problem a check revealed."""
    detail = DETAILS[problem.kind].format(
        where=describe(storage),
        cause=_safe(problem.cause, storage),
        code=problem.code,
        operation=problem.operation,
    )
    return detail, problem.fix


def _unexpected(name: str, exc: Exception, storage: Storage) -> Check:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        cause = f"{error.get('Code', '')} {error.get('Message', '')}".strip()
        operation = exc.operation_name
    else:
        cause, operation = f"{type(exc).__name__}: {exc}", name
    detail = FAILED.format(operation=operation, cause=_safe(cause, storage))
    return Check(name, Status.FAILED, detail, FIX_UNEXPECTED)


def _safe(text, storage: Storage) -> str:
    """`text` without any credential the storage holds, should a provider's message or an
    exception ever quote one."""
    text = str(text)
    for secret in (getattr(storage, name, None) for name in ("secret_key", "security_token")):
        # A very short value would be found inside ordinary words; real ones are long.
        if secret and len(secret) >= MIN_HIDDEN_LENGTH:
            text = text.replace(secret, "[hidden]")
    return text
