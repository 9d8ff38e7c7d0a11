"""The boto3 clients of the S3 fast path: one per process and configuration, shared by every
run and thread (clients are thread-safe; making one costs about 0.15 s of CPU), with the
event handlers photosite adds to botocore's requests.
"""

import base64
import hashlib
import threading

import boto3
import botocore.handlers
import botocore.session
from botocore.config import Config
from storages.backends.s3 import S3Storage

from .watch import EndpointWatch

_clients: dict[tuple, tuple] = {}  # see shared_client
_clients_lock = threading.Lock()

# The ETags of objects just made in parts, by (bucket, key): s3transfer does not return the
# answer to CompleteMultipartUpload, which holds it (S3Bucket._etag takes it from here).
_completed: dict[tuple[str, str], str] = {}
_completed_lock = threading.Lock()


def _note_completed(parsed, **kwargs) -> None:
    """after-call CompleteMultipartUpload: keep the ETag the bucket gave the object."""
    bucket, key, etag = parsed.get("Bucket"), parsed.get("Key"), parsed.get("ETag")
    if bucket and key and etag:
        with _completed_lock:
            _completed[(bucket, key)] = etag.strip('"')


def shared_client(storage: S3Storage):
    """(a boto3 S3 client configured as `storage` configures its own, the EndpointWatch
    listening to it), made once per process and configuration and reused by every run.

    Making a client parses botocore's service model (about 0.15 s of CPU): once per album
    was most of a run over many small albums. Clients are thread-safe; the watch's counts
    only grow, and Failures.judge reads them against where they stood when a run began.
    """
    key = _client_key(storage)
    with _clients_lock:
        if key not in _clients:
            client = _client_for(storage)
            watch = EndpointWatch()
            watch.attach(client)
            _clients[key] = (client, watch)
        return _clients[key]


def forget_clients(**kwargs) -> None:
    """Drop the shared clients: the next run makes new ones (settings changed, in tests)."""
    with _clients_lock:
        _clients.clear()


def _client_key(storage: S3Storage) -> tuple:
    config = storage.client_config
    options = {name: getattr(config, name, None) for name in Config.OPTION_DEFAULTS}
    return (
        storage.session_profile,
        storage.access_key,
        storage.secret_key,
        storage.security_token,
        storage.region_name,
        storage.use_ssl,
        storage.endpoint_url,
        storage.verify,
        repr(sorted(options.items())),
    )


def _client_for(storage: S3Storage):
    """A boto3 S3 client configured as `storage` configures its own (S3Storage.connection)."""
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=str  # dates stay as the text the server sent
    )
    if storage.session_profile:
        boto = boto3.Session(profile_name=storage.session_profile, botocore_session=session)
    else:
        boto = boto3.Session(
            aws_access_key_id=storage.access_key,
            aws_secret_access_key=storage.secret_key,
            aws_session_token=storage.security_token,
            botocore_session=session,
        )
    client = boto.client(
        "s3",
        region_name=storage.region_name,
        use_ssl=storage.use_ssl,
        endpoint_url=storage.endpoint_url,
        config=storage.client_config,
        verify=storage.verify,
    )
    client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)
    client.meta.events.register("after-call.s3.CompleteMultipartUpload", _note_completed)
    client.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)
    client.meta.events.register("before-call.s3", _expect_continue_but_for_photos)
    return client


def _expect_continue_but_for_photos(model, params, **kwargs) -> None:
    """botocore asks for "100 Continue" before every body it can read(), and so waits a
    round trip before it sends each photo: for nothing when the body is one photo (below
    the multipart threshold). Parts of large files (UploadPart) still ask."""
    if model.name != "PutObject":
        botocore.handlers.add_expect_header(model, params, **kwargs)


def _add_content_md5(request, **kwargs) -> None:
    """Give a DeleteObjects request a Content-MD5 header computed from its final body.

    S3's API reference requires it, and MinIO, Ceph RGW, Dell ECS and other S3-compatible
    services refuse DeleteObjects without it (400 MissingContentMD5 or InvalidRequest). Since
    1.36 botocore sends x-amz-checksum-crc32 instead, whatever request_checksum_calculation
    says: the operation is `requestChecksumRequired` in the service model, so
    httpchecksum.resolve_request_checksum_algorithm picks CRC32 under "when_required" too,
    and DeleteObjects has no ContentMD5 parameter to pass (handlers.py hides it). This runs
    on before-sign: the body is serialized and botocore's checksum headers are set, the
    signature is not yet made, and it comes again on every attempt.
    """
    if "Content-MD5" in request.headers:
        return
    digest = hashlib.md5(_body_bytes(request.body), usedforsecurity=False).digest()
    request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def completed_etag(bucket: str, key: str) -> str | None:
    """The ETag the answer to an upload's completion gave the object just made in parts
    under `key`, once (see _note_completed); None when none was heard."""
    with _completed_lock:
        return _completed.pop((bucket, key), None)


def _body_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    start = body.tell()  # a file object: read it, and leave it where it was
    data = body.read()
    body.seek(start)
    return data
