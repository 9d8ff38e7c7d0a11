"""What the site's pages show of an album: its photos a page at a time, each with its
renditions' URLs and the size to lay it out at, and an album's summary for the index.

Only photos with renditions are shown (the rest have nothing a browser can display). Pages
go through the album in path order (its folders as the photographer arranged them) by
keyset, on the (album, path) index: the same few queries for the first page of an album of
ten photos or of a hundred thousand, and any page after.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, OuterRef, QuerySet, Subquery
from django.urls import reverse

from ..models import Album, Photo
from ..renditions import fitted, parse_signature
from ..renditions.links import media_urls, rendition_keys

PAGE = 60  # photos a page: more than a 1280 x 800 screen shows, far fewer than an album
ROW_HEIGHT = 220  # pixels: the grid's row height before it is justified (site.css)
UNKNOWN_RATIO = (4, 3)  # a photo recorded without its size


def shown(photos: QuerySet) -> QuerySet:
    """The photos the site can show: their renditions made."""
    return photos.exclude(renditions="").filter(rendition_problem="")


@dataclass(frozen=True)
class Tile:
    """One photo as a page shows it."""

    id: int
    page_url: str  # its own page (a deep link)
    thumb_url: str
    display_url: str
    thumb_width: int
    thumb_height: int
    display_width: int
    display_height: int
    taken_at: datetime | None
    name: str  # its file name, where the page may show it; "" where not

    @property
    def ratio(self) -> float:
        return self.display_width / self.display_height

    @property
    def grid_width(self) -> int:
        """Its width in the grid before the row is justified (site.css)."""
        return round(ROW_HEIGHT * self.ratio)

    @property
    def srcset(self) -> str:
        return f"{self.thumb_url} {self.thumb_width}w, {self.display_url} {self.display_width}w"


@dataclass(frozen=True)
class Page:
    tiles: list[Tile]
    after: str | None  # the path the next page starts after; None on the last page


def photo_page(album: Album, *, after: str | None, photo_url, details: bool, media_url) -> Page:
    """A page of the album's photos after the path `after`: two queries (the photos, and
    the cache of signed URLs), whatever the album's size. `photo_url(id)` is a photo's own
    page; `media_url(key)` a rendition's URL where the bucket gives none (a local folder)."""
    photos = shown(album.photos.all()).order_by("path")
    if after is not None:
        photos = photos.filter(path__gt=after)
    rows = list(photos.only(*TILE_FIELDS)[: PAGE + 1])
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    tiles = tiles_of(rows, photo_url=photo_url, details=details, media_url=media_url)
    return Page(tiles, rows[-1].path if more else None)


# What a tile needs of a photo (its album's id too: a related manager sets the album on each
# row it reads, which would read a deferred album_id once a row).
TILE_FIELDS = (
    "id", "album_id", "path", "md5", "renditions", "rendition_problem", "width", "height",
    "taken_at",
)  # fmt: skip


def tiles_of(photos: list[Photo], *, photo_url, details: bool, media_url) -> list[Tile]:
    keys = {p.pk: rendition_keys(p.md5, p.renditions, p.rendition_problem) for p in photos}
    wanted = [key for found in keys.values() if found for key in (found[0], found[-1])]
    urls = media_urls(wanted) or {key: media_url(key) for key in wanted}
    tiles = []
    for photo in photos:
        found = keys[photo.pk]
        if not found:
            continue
        spec = parse_signature(photo.renditions)
        width, height = (
            (photo.width, photo.height) if photo.width and photo.height else UNKNOWN_RATIO
        )
        thumb = fitted(width, height, spec.sizes[0])
        display = fitted(width, height, spec.sizes[-1])
        tiles.append(
            Tile(
                id=photo.pk,
                page_url=photo_url(photo.pk),
                thumb_url=urls[found[0]],
                display_url=urls[found[-1]],
                thumb_width=thumb[0],
                thumb_height=thumb[1],
                display_width=display[0],
                display_height=display[1],
                taken_at=photo.taken_at,
                name=photo.path.rsplit("/", 1)[-1] if details else "",
            )
        )
    return tiles


def neighbours(album: Album, photo: Photo) -> tuple[int | None, int | None]:
    """The ids of the photos before and after `photo` in the album's order."""
    photos = shown(album.photos.all())
    before = photos.filter(path__lt=photo.path).order_by("-path").values_list("id", flat=True)
    after = photos.filter(path__gt=photo.path).order_by("path").values_list("id", flat=True)
    return before.first(), after.first()


def summarised(albums: QuerySet) -> QuerySet:
    """Albums with what the index shows of each: how many photos, their dates, a cover (the
    first photo), each from a subquery on the album's own photos, answered by an index."""
    photos = shown(Photo.objects.filter(album=OuterRef("pk")))
    return albums.annotate(
        shown_count=Subquery(
            photos.order_by().values("album").annotate(n=Count("pk")).values("n")[:1]
        ),
        first_taken=Subquery(
            photos.order_by().values("album").annotate(d=Min("taken_at")).values("d")[:1]
        ),
        last_taken=Subquery(
            photos.order_by().values("album").annotate(d=Max("taken_at")).values("d")[:1]
        ),
        cover_id=Subquery(photos.order_by("path").values("pk")[:1]),
    )


def covers(albums: list[Album], *, media_url) -> dict[int, Tile]:
    """Each album's cover tile, by album id: one query for all of them."""
    ids = [album.cover_id for album in albums if getattr(album, "cover_id", None)]
    photos = list(Photo.objects.filter(pk__in=ids).only(*TILE_FIELDS))
    tiles = {t.id: t for t in tiles_of(photos, photo_url=str, details=False, media_url=media_url)}
    return {p.album_id: tiles[p.pk] for p in photos if p.pk in tiles}


def album_dates(album: Album) -> dict:
    return shown(album.photos.all()).aggregate(
        count=Count("pk"), first=Min("taken_at"), last=Max("taken_at")
    )


def media_view_url(key: str) -> str:
    return reverse("site-media", args=[key])
