"""What a backend error means: one file's failure, or a bucket the run cannot use."""

import inspect
from string import Formatter

import pytest
from botocore import exceptions as boto
from botocore.exceptions import ClientError

from albums.exceptions import BucketMissing, StorageAccessDenied, StorageError, StorageUnreachable
from albums.storage import ProblemKind, classify_storage_error

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
