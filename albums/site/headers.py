"""The headers of every site page: a Content-Security-Policy that runs no inline script and
loads images only from this site and the bucket (or CDN) that serves the renditions; and on
share-link pages, no referrer (the token must not reach other sites) and no indexing."""

from functools import wraps
from urllib.parse import urlsplit

from django.core.files.storage import storages
from django.http import Http404
from django.shortcuts import render
from storages.backends.s3 import S3Storage

from .. import conf
from ..storage import STORAGE_ALIAS
from .access import LinkGone, TooManyGuesses


def media_origin() -> str:
    """Where the pages' images come from besides this site: ALBUMS_MEDIA_URL's host, or
    the bucket's (a presigned URL's); "" for a local-folder bucket (served here)."""
    base = conf.media_url()
    if not base:
        storage = storages[STORAGE_ALIAS]
        if not isinstance(storage, S3Storage):
            return ""
        base = storage.url("origin")  # signed locally: no request
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def policy() -> str:
    images = " ".join(filter(None, ["'self'", media_origin()]))
    return (
        f"default-src 'none'; img-src {images}; script-src 'self'; style-src 'self' "
        "'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def site_page(*, shared: bool = False):
    """The headers for a view's every answer, its refusals included: no such album or link
    (404, the same page for both), a link that is over (410), too many wrong passwords
    (429)."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            try:
                response = view(request, *args, **kwargs)
            except Http404:
                response = render(request, "site/missing.html", status=404)
            except LinkGone:
                response = render(request, "site/gone.html", status=410)
            except TooManyGuesses:
                response = render(request, "site/too_many.html", status=429)
                response["Retry-After"] = "900"
            response["Content-Security-Policy"] = policy()
            if shared:
                response["Referrer-Policy"] = "no-referrer"
                response["X-Robots-Tag"] = "noindex, nofollow"
            return response

        return wrapped

    return decorate
