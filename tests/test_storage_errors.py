"""What a backend error means: one file's failure, or a bucket the run cannot use."""

import inspect
from string import Formatter

import pytest
import urllib3
from botocore import exceptions as boto
from botocore.exceptions import ClientError

from albums.exceptions import BucketMissing, StorageAccessDenied, StorageError, StorageUnreachable
from albums.storage import EndpointSilent, ProblemKind, classify_storage_error

KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def botocore_exceptions():
    """Every exception class botocore defines, with an instance made as botocore makes it."""
    for name, cls in inspect.getmembers(boto, inspect.isclass):
        if not issubclass(cls, Exception) or cls.__module__ != boto.__name__:
            continue
        if issubclass(cls, ClientError):
            continue  # answers of the service: by their code, below
        # BotoCoreError fills its message template from keyword arguments; a few classes
        # take arguments of their own.
        template = getattr(cls, "fmt", "")
        fields = {field: "x" for _, field, _, _ in Formatter().parse(template) if field}
        for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if parameter.default is parameter.empty and parameter.kind in KEYWORD_KINDS:
                fields.setdefault(parameter.name, "x")
        yield pytest.param(cls(**fields), id=name)


@pytest.mark.parametrize("exc", list(botocore_exceptions()))
def test_every_botocore_exception_has_a_meaning(exc):
    problem = classify_storage_error(exc)

    assert isinstance(problem.kind, ProblemKind)
    assert problem.cause
    if problem.stops_run:
        error = problem.run_error(album="Trip", where="bucket 'photos'")
        assert isinstance(error, StorageError) and "'Trip'" in str(error)


@pytest.mark.parametrize(
    ("exc", "kind", "error_class"),
    [
        (boto.EndpointConnectionError(endpoint_url="http://x"), "unreachable", StorageUnreachable),
        (boto.ConnectTimeoutError(endpoint_url="http://x"), "unreachable", StorageUnreachable),
        (boto.ReadTimeoutError(endpoint_url="http://x"), "unreachable", StorageUnreachable),
        (boto.ConnectionClosedError(endpoint_url="http://x"), "unreachable", StorageUnreachable),
        (boto.ProxyConnectionError(proxy_url="http://p"), "unreachable", StorageUnreachable),
        (boto.SSLError(endpoint_url="https://x", error="bad cert"), "tls", StorageUnreachable),
        (boto.NoCredentialsError(), "no_credentials", StorageAccessDenied),
        (boto.InvalidRegionError(region_name="eu west 1"), "misconfigured", StorageError),
        (
            boto.ChecksumError(checksum_type="md5", expected_checksum="a", actual_checksum="b"),
            "file",
            None,
        ),
        (boto.ParamValidationError(report="bad key"), "file", None),
        (FileNotFoundError(2, "No such file or directory"), "file", None),
    ],
)
def test_classes_that_mean_something(exc, kind, error_class):
    problem = classify_storage_error(exc)

    assert problem.kind == kind
    if error_class is None:
        assert not problem.stops_run
    else:
        assert type(problem.run_error(album="Trip", where="bucket 'b'")) is error_class


def answer(code: str, status: int, operation: str = "PutObject") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("code", "status", "kind", "error_class"),
    [
        ("NoSuchBucket", 404, "no_bucket", BucketMissing),
        ("InvalidAccessKeyId", 403, "bad_credentials", StorageAccessDenied),
        ("SignatureDoesNotMatch", 403, "bad_credentials", StorageAccessDenied),
        ("AccessDenied", 403, "denied", StorageAccessDenied),
        ("RequestTimeTooSkewed", 403, "clock", StorageAccessDenied),
        ("AccountProblem", 403, "account", StorageAccessDenied),
        ("AllAccessDisabled", 403, "account", StorageAccessDenied),
        ("ExpiredToken", 400, "bad_credentials", StorageAccessDenied),
        ("AuthorizationHeaderMalformed", 400, "wrong_region", StorageError),
        ("", 403, "denied", StorageAccessDenied),
        ("PermanentRedirect", 301, "wrong_region", StorageError),
        ("InternalError", 500, "file", None),
        ("SlowDown", 503, "file", None),
        ("BadRequest", 400, "file", None),
    ],
)
def test_answers_mean_what_their_code_says(code, status, kind, error_class):
    problem = classify_storage_error(answer(code, status))

    assert problem.kind == kind
    assert problem.stops_run == (error_class is not None)
    if error_class is not None:
        assert type(problem.run_error(album="Trip", where="bucket 'b'")) is error_class
    else:
        assert problem.cause == f"PutObject failed: {code} m"


def test_a_403_with_a_code_of_its_own_is_not_read_as_a_missing_permission():
    problem = classify_storage_error(answer("RequestTimeTooSkewed", 403, "HeadObject"))

    message = str(problem.run_error(album="Trip", where="bucket 'b'"))
    assert message == (
        "The bucket 'b' refused the request's time (RequestTimeTooSkewed) while syncing album "
        "'Trip'. This machine's clock is more than 15 minutes away from the service's: set it "
        "right and keep it so (turn on NTP, e.g. `timedatectl set-ntp true`). The credentials "
        "and permissions are not in question."
    )
    assert "s3:ListBucket" not in message


@pytest.mark.parametrize(
    ("region", "fix"),
    [
        ("eu-west-3", "Set AWS_S3_REGION_NAME=eu-west-3: the service says the bucket is there."),
        ("<script>", "Set AWS_S3_REGION_NAME to the bucket's region."),  # not a region: unsaid
        ("", "Set AWS_S3_REGION_NAME to the bucket's region."),
    ],
)
def test_the_region_the_service_names_is_the_fix(region, fix):
    exc = answer("AuthorizationHeaderMalformed", 400, "ListObjectsV2")
    exc.response["Error"]["Region"] = region

    assert classify_storage_error(exc).fix == fix


def test_no_answer_carries_what_the_endpoint_watch_saw():
    silent = EndpointSilent(seconds=15.2, error="Read timeout")
    reset = boto.ConnectionClosedError(endpoint_url="http://x")
    reset.answered_meanwhile = True  # set by the watch: another request was answered

    assert (classify_storage_error(silent).kind, classify_storage_error(silent).silent) == (
        "unreachable",
        True,
    )
    assert classify_storage_error(reset).answered_meanwhile
    assert str(silent) == (
        "No answer from the endpoint for 15 s, to this request or any other (Read timeout)"
    )


def test_an_answer_that_broke_off_midway_is_no_answer():
    broken = urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(10 bytes read)")

    problem = classify_storage_error(broken)

    assert (problem.kind, problem.stops_run) == ("unreachable", False)
    assert type(problem.run_error(album="Trip", where="bucket 'b'")) is StorageUnreachable
