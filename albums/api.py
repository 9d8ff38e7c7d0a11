"""The HTTP door kept from the system photosite replaces (`POST /api/sync`).

Thin views over the same service as the admin: they queue runs with `queue_sync` and
report them as JSON. Callers are staff with albums.sync_album, either logged in (session,
with the CSRF token) or sending `Authorization: Bearer <token>` (create_api_token).
"""

import json
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from .exceptions import QueueUnavailable
from .models import Album, SyncRun
from .sync import queue_syncs, run_as_dict, worker_seen
from .tokens import user_for_token

SYNC_PERMISSION = "albums.sync_album"
RESTORE_PERMISSION = "albums.restore_album"
NOT_AUTHENTICATED = "Log in, or send 'Authorization: Bearer <token>'."
BAD_TOKEN = "The bearer token is not valid."  # noqa: S105 - a message, not a secret
FORBIDDEN = "Only staff with the albums.sync_album permission may use this API."
FORBIDDEN_RESTORE = "Only staff with the albums.restore_album permission may restore albums."
CSRF_FAILED = "CSRF check failed: {reason}"
METHOD_NOT_ALLOWED = "Use {allowed}."
BAD_JSON = "The body is not valid JSON: {error}."
BAD_BODY = "The body must be a JSON object with {allowed}; empty means all albums."
BAD_FLAG = "{name!r} must be true or false."
BAD_ALBUMS = "'albums' must be a non-empty list of album slugs."
UNKNOWN_ALBUMS = "Unknown album: {slugs}."
UNKNOWN_RUN = "No sync run #{run_id}."
NO_WORKER = "No worker has been seen recently: start `manage.py qcluster` or the runs stay queued."


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, run by hand for session callers only (as DRF does)."""

    def _reject(self, request, reason):
        return reason


def _error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def api_view(
    *methods: str, permission: str = SYNC_PERMISSION, forbidden: str = FORBIDDEN
) -> Callable:
    """Method, authentication, CSRF and permission checks, each with a JSON answer."""

    def decorate(view):
        @csrf_exempt  # checked below, for session callers; a bearer token needs none
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in methods:
                response = _error(405, METHOD_NOT_ALLOWED.format(allowed=", ".join(methods)))
                response["Allow"] = ", ".join(methods)
                return response
            user, problem = _authenticate(request)
            if problem is not None:
                return problem
            if not (user.is_staff and user.has_perm(permission)):
                return _error(403, forbidden)
            request.user = user
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _authenticate(request: HttpRequest):
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        user = user_for_token(header[7:].strip())
        if user is None:
            return None, _unauthorized(BAD_TOKEN)
        return user, None
    if not request.user.is_authenticated:
        return None, _unauthorized(NOT_AUTHENTICATED)
    check = _CsrfCheck(lambda request: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        return None, _error(403, CSRF_FAILED.format(reason=reason))
    return request.user, None


def _unauthorized(message: str) -> JsonResponse:
    response = _error(401, message)
    response["WWW-Authenticate"] = 'Bearer realm="photosite"'
    return response


def _body(request: HttpRequest, allowed: set[str]) -> dict | JsonResponse:
    """The JSON object sent, {} for an empty body, or a 400 answer."""
    if not request.body.strip():
        return {}
    try:
        data = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error(400, BAD_JSON.format(error=exc))
    if not isinstance(data, dict) or set(data) - allowed:
        return _error(400, BAD_BODY.format(allowed=", ".join(repr(key) for key in sorted(allowed))))
    for name in ("dry_run", "prune"):
        if not isinstance(data.get(name, False), bool):
            return _error(400, BAD_FLAG.format(name=name))
    return data


def _queue(albums, options: dict) -> JsonResponse:
    return _answer(
        albums,
        trigger=SyncRun.Trigger.API,
        dry_run=options.get("dry_run", False),
        prune=options.get("prune", False),
    )


def _answer(albums, **options) -> JsonResponse:
    """Queue runs of `albums` with `options` (see queue_syncs), and say which: 202, or 503
    when the task queue cannot be reached."""
    try:
        runs = queue_syncs(albums=albums, **options)
    except QueueUnavailable as exc:
        return _error(503, str(exc))
    data = {"runs": [_run(run) for run in runs]}
    if not worker_seen():
        data["warning"] = NO_WORKER
    return JsonResponse(data, status=202)


@api_view("POST")
def sync_all(request: HttpRequest) -> JsonResponse:
    """POST /api/sync/: queue a run of every album, or of {"albums": [slugs]}."""
    options = _body(request, {"albums", "dry_run", "prune"})
    if isinstance(options, JsonResponse):
        return options
    slugs = options.get("albums")
    if slugs is None:
        return _queue(Album.objects.all(), options)
    if not slugs or not isinstance(slugs, list) or not all(isinstance(s, str) for s in slugs):
        return _error(400, BAD_ALBUMS)
    albums = list(Album.objects.filter(slug__in=slugs))
    unknown = sorted(set(slugs) - {album.slug for album in albums})
    if unknown:
        return _error(404, UNKNOWN_ALBUMS.format(slugs=", ".join(unknown)), unknown=unknown)
    return _queue(albums, options)


@api_view("POST")
def sync_one(request: HttpRequest, slug: str) -> JsonResponse:
    """POST /api/albums/<slug>/sync/: queue a run of one album."""
    options = _body(request, {"dry_run", "prune"})
    if isinstance(options, JsonResponse):
        return options
    album = Album.objects.filter(slug=slug).first()
    if album is None:
        return _error(404, UNKNOWN_ALBUMS.format(slugs=slug), unknown=[slug])
    return _queue([album], options)


@api_view("POST", permission=RESTORE_PERMISSION, forbidden=FORBIDDEN_RESTORE)
def restore_one(request: HttpRequest, slug: str) -> JsonResponse:
    """POST /api/albums/<slug>/restore/: queue a restore of the album's missing photos."""
    options = _body(request, set())
    if isinstance(options, JsonResponse):
        return options
    album = Album.objects.filter(slug=slug).first()
    if album is None:
        return _error(404, UNKNOWN_ALBUMS.format(slugs=slug), unknown=[slug])
    return _answer([album], trigger=SyncRun.Trigger.API, kind=SyncRun.Kind.RESTORE)


@api_view("GET")
def run_detail(request: HttpRequest, run_id: int) -> JsonResponse:
    """GET /api/sync-runs/<id>/: a run's status, progress and counts."""
    run = SyncRun.objects.select_related("album").filter(pk=run_id).first()
    if run is None:
        return _error(404, UNKNOWN_RUN.format(run_id=run_id))
    return JsonResponse(_run(run))


def _run(run: SyncRun) -> dict:
    return {**run_as_dict(run), "url": reverse("api-sync-run", args=[run.pk])}
