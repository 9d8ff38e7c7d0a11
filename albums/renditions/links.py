"""Where a browser gets a photo's renditions: ALBUMS_MEDIA_URL (a CDN, or the bucket's
public address), or a presigned URL of the private bucket.

A presigned URL is signed once per key and kept in the cache for SIGNED_FOR seconds,
valid twice as long: a page shows the same URL for the same rendition all that while, so
browsers and proxies cache the image rather than fetch it again on every page with a fresh
signature (django-storages #692). Signing is local computation: no request.
"""

from django.core.cache import cache
from django.core.files.storage import storages
from storages.backends.s3 import S3Storage

from .. import conf
from ..storage import STORAGE_ALIAS
from .spec import parse_signature

SIGNED_FOR = 6 * 3600  # a URL is handed out this long, and valid twice as long


def rendition_keys(md5: str, signature: str, problem: str = "") -> list[str] | None:
    """The bucket keys of a content's renditions, smallest first; None when it has none."""
    spec = parse_signature(signature) if md5 and not problem else None
    if spec is None:
        return None
    return spec.keys(md5)


def media_urls(keys: list[str]) -> dict[str, str] | None:
    """A URL for each key, from ALBUMS_MEDIA_URL or presigned (in one cache round trip);
    None where the storage has no URL a browser can use (a local folder)."""
    base = conf.media_url()
    if base:
        return {key: base + key for key in keys}
    storage = storages[STORAGE_ALIAS]
    if not isinstance(storage, S3Storage):
        return None
    names = {key: f"rendition-url:{key}" for key in keys}
    found = cache.get_many(list(names.values()))
    urls, signed = {}, {}
    for key, name in names.items():
        if name not in found:
            found[name] = signed[name] = storage.url(key, expire=2 * SIGNED_FOR)
        urls[key] = found[name]
    if signed:
        cache.set_many(signed, timeout=SIGNED_FOR)
    return urls
