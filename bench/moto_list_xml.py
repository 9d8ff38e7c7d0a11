"""ListObjectsV2's XML for moto, written directly rather than by moto's generic serializer.

moto 5.2.5 renders every response through its model-driven serializer (moto/core/serialize.py):
for a page of 1,000 keys it walks the output shape member by member, parses every key's
LastModified string back into a datetime with dateutil, and hands the lot to xmltodict. On
the 2-core machine that is about 0.25 s of the server's one GIL a page, whatever the bucket
holds (a no-op of 5,000 keys: 5 pages, 1.5 s of moto's CPU): more than two round trips of
100 ms, so a far listing would be timed mostly in moto, and ranges listed side by side would
queue behind one another in it. S3's pages come from a fleet of servers.

`install()` wraps `S3Response.list_objects_v2`: moto parses the request, calls the backend
and builds its result as before, and only the last step, the result to XML, is a few string
joins here, when the result holds nothing but what this module writes (no delimiter, no
control characters, moto's serializer not prettified); anything else is moto's. `self_check()` compares whole responses (status, headers but the request id, body)
with moto's own through its WSGI app.
"""

import re
from functools import lru_cache
from urllib.parse import quote
from xml.sax.saxutils import escape

from moto import settings
from moto.core.serialize import S3Serializer, TimestampSerializer
from moto.s3.responses import S3Response

MOTO_RESPONSE = S3Response.list_objects_v2
XML_START = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
)
# The members written, in the order of botocore's ListObjectsV2Output and Object shapes,
# which is the order moto's serializer writes them in.
TOP = ("IsTruncated", "Contents", "Name", "Prefix", "MaxKeys", "EncodingType", "KeyCount",
       "NextContinuationToken", "StartAfter")  # fmt: skip
ITEM = ("Key", "LastModified", "ETag", "ChecksumAlgorithm", "Size", "StorageClass", "Owner")
OWNER = ("DisplayName", "ID")
UNWRITTEN = re.compile(r"[\x00-\x1f]")  # what XML 1.0 cannot hold or moto may treat apart


@lru_cache(maxsize=65536)
def _timestamp(value: str) -> str:
    """LastModified as moto's S3 serializer writes it (few distinct values: seconds)."""
    fmt = S3Serializer.DEFAULT_TIMESTAMP_FORMAT
    return TimestampSerializer(fmt)._convert_timestamp_to_str(value, fmt)


def _element(name: str, value) -> str | None:
    """One element, or None when the value is not of a kind written here."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str) and not UNWRITTEN.search(value):
        text = escape(value)
    else:
        return None
    return f"<{name}>{text}</{name}>" if text else f"<{name}/>"


def _item(item: dict) -> str | None:
    if not set(item) <= set(ITEM):
        return None
    parts = ["<Contents>"]
    for name in ITEM:
        if name not in item:
            continue
        value = item[name]
        if name == "LastModified" and isinstance(value, str):
            value = _timestamp(value)
        if name == "Owner":
            if not isinstance(value, dict) or set(value) != set(OWNER):
                return None
            inner = [_element(n, value[n]) for n in OWNER]
            written = None if None in inner else f"<Owner>{''.join(inner)}</Owner>"
        elif name == "ChecksumAlgorithm":  # a flattened list: one element per value
            if not isinstance(value, list) or not value:
                return None
            inner = [_element(name, v) if isinstance(v, str) else None for v in value]
            written = None if None in inner else "".join(inner)
        else:
            written = _element(name, value)
        if written is None:
            return None
        parts.append(written)
    parts.append("</Contents>")
    return "".join(parts)


def render(result: dict) -> str | None:
    """The XML body moto's serializer writes for this ListObjectsV2 result, or None when the
    result holds something not written here."""
    if not set(result) <= set(TOP) or settings.PRETTIFY_RESPONSES:
        return None
    parts = [XML_START]
    for name in TOP:
        if name not in result:
            continue
        if name == "Contents":
            items = [_item(item) for item in result[name]]
            if None in items:
                return None
            parts += items
            continue
        written = _element(name, result[name])
        if written is None:
            return None
        parts.append(written)
    parts.append("</ListBucketResult>")
    return "".join(parts)


def direct_list_objects_v2(self):
    """moto's `S3Response.list_objects_v2`, its result written by `render`."""
    moto_serialized = self.serialized

    def serialized(action_result):
        body = render(action_result.result)
        if body is None or any(
            path.startswith("ListObjectsV2") for path in self.RESPONSE_KEY_PATH_TO_TRANSFORMER
        ):
            return moto_serialized(action_result)
        headers = {"Content-Type": S3Serializer.CONTENT_TYPE}
        headers.update(self.response_headers)
        return 200, headers, body

    self.serialized = serialized  # this request's own instance: moto makes one per request
    try:
        return MOTO_RESPONSE(self)
    finally:
        del self.serialized


def install() -> None:
    """Write ListObjectsV2's XML directly, in this process."""
    S3Response.list_objects_v2 = direct_list_objects_v2


# The self-check: whole responses through moto's WSGI app, with and without.

HEADERS = {
    "Host": "localhost",
    "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20250101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0",
}
NAMES = [
    "a", "a b", "a+b", "a%20b", "a&b<c>d\"e'f", "a/", "a/b", "ab", "a\u00e9", "ae\u0301",
    "\u65e5\u672c/\u5199\u771f.jpg", "\U0001f600.jpg", "tab\there", "del\x7f", "]]>",
    *(f"albums/event-{a:04d}/IMG_{p:04d}.jpg" for a in range(1, 4) for p in range(1, 40)),
]  # fmt: skip
QUERIES = [
    "", "max-keys=1", "max-keys=7", "prefix=a", "prefix=albums/&max-keys=10",
    "start-after=a/b", "start-after=albums/event-0002/&max-keys=5", "encoding-type=url",
    "encoding-type=url&prefix=a&start-after=a", "fetch-owner=true&max-keys=3",
    "prefix=nothing", "delimiter=/", "prefix=albums/&delimiter=/", "max-keys=0",
]  # fmt: skip


def _responses(client, bucket: str) -> list[tuple]:
    """Every query, page after page (up to 20), as (query, status, headers, body)."""
    found = []
    for query in QUERIES:
        token = None
        for _ in range(20):
            url = f"/{bucket}?list-type=2" + (f"&{query}" if query else "")
            if token:
                url += f"&continuation-token={token}"
            response = client.get(url, headers=HEADERS)
            headers = {k: v for k, v in response.headers.items() if k != "x-amzn-requestid"}
            body = response.get_data()
            found.append((url, response.status, headers, body))
            match = re.search(rb"<NextContinuationToken>([^<]+)<", body)
            if not match:
                break
            token = match[1].decode()
    return found


def self_check() -> tuple[bool, str]:
    """This writer's responses against moto's own, in a bucket of this process's moto that
    is removed afterwards (moto's state is reset). Returns (identical, a sentence)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    client = Client(DomainDispatcherApplication(create_backend_app))
    bucket = "bench-xml-self-check"
    client.put(f"/{bucket}", headers=HEADERS)
    for number, name in enumerate(NAMES):
        # Some with a checksum, as a client that sends one by default leaves them.
        checksum = {"x-amz-sdk-checksum-algorithm": "CRC32"} if number % 3 == 0 else {}
        client.put(f"/{bucket}/{quote(name)}", data=name.encode(), headers=HEADERS | checksum)
    ours_installed = S3Response.list_objects_v2
    try:
        S3Response.list_objects_v2 = MOTO_RESPONSE
        moto = _responses(client, bucket)
        S3Response.list_objects_v2 = direct_list_objects_v2
        ours = _responses(client, bucket)
    finally:
        S3Response.list_objects_v2 = ours_installed
        client.post("/moto-api/reset")
    differing = [a[0] for a, b in zip(moto, ours, strict=False) if a != b]
    if len(moto) != len(ours) or differing:
        first = differing[0] if differing else "the number of pages"
        return False, f"FAILED: {len(differing)} of {len(moto)} responses differ, first {first}"
    return True, (f"{len(moto)} responses compared with moto's serializer (status, headers, "
                  "body): identical")  # fmt: skip
