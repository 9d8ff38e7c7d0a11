"""Who may see an album on the site, and the share links' rules: tokens, expiry, passwords
and the throttle on wrong ones.

Nothing here says whether an album exists to someone who may not see it: a private album
and a wrong token both answer 404. An expired or revoked link answers 410, as a visitor
who had it should know it is over rather than mistyped.
"""

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.cache import cache
from django.db.models import F
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ..models import Album, ShareLink, Visibility

GUESSES = 5  # wrong passwords a client may try on a link ...
GUESS_WINDOW = 15 * 60  # ... in this many seconds, before it gets 429


class LinkGone(Exception):
    """The share link was revoked or has expired (410)."""

    def __init__(self, link: ShareLink):
        super().__init__("This share link has expired or was revoked.")
        self.link = link


class TooManyGuesses(Exception):
    """Too many wrong passwords from this client for this link (429)."""


def staff_may_view(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm("albums.view_album")


def album_for(request: HttpRequest, slug: str) -> Album:
    """The album at /a/<slug>/: public, or any album to staff who may view albums."""
    album = get_object_or_404(Album, slug=slug)
    if album.visibility == Visibility.PUBLIC or staff_may_view(request.user):
        return album
    raise Http404("No such album.")


def link_for(token: str) -> ShareLink:
    """The share link of `token`, with its album; 404 for none, LinkGone when over. A link
    to an album made private since shows nothing either."""
    link = get_object_or_404(ShareLink.objects.select_related("album"), token=token)
    if link.gone():
        raise LinkGone(link)
    if link.album.visibility == Visibility.PRIVATE:
        raise Http404("No such album.")
    return link


def unlocked(request: HttpRequest, link: ShareLink) -> bool:
    """Whether this visitor may see the link's album: no password, or the right one given
    in this session (a new password locks every session out again)."""
    return not link.password or request.session.get(_session_key(link)) == link.password[-12:]


def try_password(request: HttpRequest, link: ShareLink, password: str) -> bool:
    """Check a password for the link; True (and the session unlocked) when right. Raises
    TooManyGuesses once this client has had GUESSES wrong ones in GUESS_WINDOW seconds."""
    throttle = f"share-guesses:{link.pk}:{client_address(request)}"
    if cache.get(throttle, 0) >= GUESSES:
        raise TooManyGuesses
    if check_password(password, link.password):
        request.session[_session_key(link)] = link.password[-12:]
        return True
    cache.add(throttle, 0, GUESS_WINDOW)
    try:
        cache.incr(throttle)
    except ValueError:  # expired between the two calls
        cache.set(throttle, 1, GUESS_WINDOW)
    return False


def count_view(link: ShareLink) -> None:
    ShareLink.objects.filter(pk=link.pk).update(
        view_count=F("view_count") + 1, last_used_at=timezone.now()
    )


def client_address(request: HttpRequest) -> str:
    """The visitor's address: the proxy's word for it behind DJANGO_BEHIND_PROXY (the last
    hop it added), else the connection's."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def _session_key(link: ShareLink) -> str:
    return f"share-link-{link.pk}"
