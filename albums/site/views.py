"""The site's pages: the index of public albums, an album, a photo, and the same through a
share link. Each reads a fixed number of rows whatever the album's size (albums.site.gallery)
and links to the renditions in the bucket; none shows an original's key."""

from urllib.parse import quote

from django.core.files.storage import storages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from storages.backends.s3 import S3Storage

from ..models import Album, ShareLink, Visibility
from ..renditions import CACHE_CONTROL, prefix
from ..renditions.spec import content_type_of
from ..storage import STORAGE_ALIAS
from . import access, gallery
from .headers import site_page

ALBUMS_PER_PAGE = 24
FRAGMENT = "X-Photosite-Fragment"  # site.js asks for the next photos only
DOWNLOAD_SECONDS = 600


@require_GET
@site_page()
def index(request):
    public = Album.objects.filter(visibility=Visibility.PUBLIC).order_by("name", "pk")
    page = Paginator(public.only("pk"), ALBUMS_PER_PAGE).get_page(request.GET.get("page"))
    # Counted and summarised for this page's albums only (not the thousand before them).
    ids = [album.pk for album in page.object_list]
    listed = list(gallery.summarised(Album.objects.filter(pk__in=ids)).order_by("name", "pk"))
    covers = gallery.covers(listed, media_url=gallery.media_view_url)
    cards = [(album, covers.get(album.pk)) for album in listed]
    return render(request, "site/index.html", {"page": page, "cards": cards})


@require_GET
@site_page()
def album(request, slug: str):
    album = access.album_for(request, slug)
    return _album_page(
        request,
        album,
        photo_url=lambda pk: reverse("site-photo", args=[album.slug, pk]),
        details=access.staff_may_view(request.user),
        here=reverse("site-album", args=[album.slug]),
    )


@require_GET
@site_page()
def photo(request, slug: str, photo_id: int):
    album = access.album_for(request, slug)
    return _photo_page(
        request,
        album,
        photo_id,
        photo_url=lambda pk: reverse("site-photo", args=[album.slug, pk]),
        album_url=reverse("site-album", args=[album.slug]),
        details=access.staff_may_view(request.user),
    )


# A share page sends no referrer, so the browser's POST of its password form says
# "Origin: null", which Django's CSRF check refuses. Forging that POST gains nothing: it
# could only unlock, in a victim's browser, a link whose password the forger knows; and
# every guess is throttled (albums.site.access).
@csrf_exempt
@require_http_methods(["GET", "POST"])
@site_page(shared=True)
def share(request, token: str):
    link = access.link_for(token)
    if request.method == "POST":
        if access.try_password(request, link, request.POST.get("password", "")):
            return redirect(link.get_absolute_url())
        return _password_page(request, link, wrong=True)
    if not access.unlocked(request, link):
        return _password_page(request, link)
    if FRAGMENT not in request.headers:
        access.count_view(link)
    return _album_page(
        request,
        link.album,
        photo_url=lambda pk: reverse("site-share-photo", args=[token, pk]),
        details=link.show_details,
        here=link.get_absolute_url(),
        link=link,
    )


@require_GET
@site_page(shared=True)
def share_photo(request, token: str, photo_id: int):
    link = access.link_for(token)
    if not access.unlocked(request, link):
        return redirect(link.get_absolute_url())
    return _photo_page(
        request,
        link.album,
        photo_id,
        photo_url=lambda pk: reverse("site-share-photo", args=[token, pk]),
        album_url=link.get_absolute_url(),
        details=link.show_details,
        link=link,
    )


@require_GET
@site_page(shared=True)
def share_download(request, token: str, photo_id: int):
    """The original, as an attachment, where the link allows downloading."""
    link = access.link_for(token)
    if not (link.allow_download and access.unlocked(request, link)):
        raise Http404("No such photo.")
    photo = get_object_or_404(link.album.photos, pk=photo_id)
    name = photo.path.rsplit("/", 1)[-1]
    storage = storages[STORAGE_ALIAS]
    if isinstance(storage, S3Storage):
        disposition = f"attachment; filename*=UTF-8''{_quoted(name)}"
        url = storage.url(
            photo.key,
            parameters={"ResponseContentDisposition": disposition},
            expire=DOWNLOAD_SECONDS,
        )
        return HttpResponseRedirect(url)
    return FileResponse(storage.open(photo.key, "rb"), as_attachment=True, filename=name)


@require_GET
def media(request, key: str):
    """A rendition from a local-folder bucket (S3 and CDN ones are linked to directly);
    nothing outside the renditions' prefix."""
    storage = storages[STORAGE_ALIAS]
    if isinstance(storage, S3Storage) or not key.startswith(prefix()) or ".." in key:
        raise Http404
    try:
        response = FileResponse(storage.open(key, "rb"), content_type=content_type_of(key))
    except (FileNotFoundError, OSError):
        raise Http404 from None
    response["Cache-Control"] = CACHE_CONTROL
    return response


def _album_page(request, album: Album, *, photo_url, details: bool, here: str, link=None):
    after = request.GET.get("after") or None
    page = gallery.photo_page(
        album, after=after, photo_url=photo_url, details=details, media_url=gallery.media_view_url
    )
    context = {
        "album": album,
        "page": page,
        "more_url": f"{here}?after={_quoted(page.after)}" if page.after else "",
        "link": link,
    }
    if FRAGMENT in request.headers:
        return render(request, "site/tiles.html", context)
    context["dates"] = gallery.album_dates(album)
    return render(request, "site/album.html", context)


def _photo_page(request, album, photo_id, *, photo_url, album_url, details, link=None):
    found = get_object_or_404(gallery.shown(album.photos.all()), pk=photo_id)
    [tile] = gallery.tiles_of(
        [found], photo_url=photo_url, details=details, media_url=gallery.media_view_url
    )
    before, after = gallery.neighbours(album, found)
    context = {
        "album": album,
        "album_url": album_url,
        "photo": found,
        "tile": tile,
        "details": details,
        "previous_url": photo_url(before) if before else "",
        "next_url": photo_url(after) if after else "",
        "download_url": reverse("site-share-download", args=[link.token, found.pk])
        if link is not None and link.allow_download
        else "",
        "link": link,
    }
    return render(request, "site/photo.html", context)


def _password_page(request, link: ShareLink, *, wrong: bool = False):
    return render(
        request, "site/password.html", {"link": link, "wrong": wrong}, status=401 if wrong else 200
    )


def _quoted(value: str) -> str:
    return quote(value, safe="")
