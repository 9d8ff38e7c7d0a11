"""Create an album for every top-level folder of PHOTOS_ROOT that has none."""

import logging
import os
from pathlib import Path

from django.utils.text import slugify

from ...models import Album
from .exclusions import built_in_folder
from .folders import photos_root

logger = logging.getLogger("albums")

LINK_OUTSIDE = "Not an album: %r is a link to %s, outside PHOTOS_ROOT."


def discover_albums() -> list[Album]:
    """The albums created, one per new top-level folder. Skipped: hidden folders, the
    clutter of NAS and operating systems (`@eaDir`, `#recycle`, `$RECYCLE.BIN`: the
    built-in exclusions, albums.sync.exclusions), and links to folders outside PHOTOS_ROOT
    (a sync would refuse them), with a warning.

    Slugs come from folder names ("Summer 2024" -> "summer-2024"), made unique with a
    number when two folders slugify alike. Running it twice creates nothing the second time.
    Three queries however many folders are new (an INSERT per 500): the albums known, the
    new ones inserted, then read back (a folder another process made an album of meanwhile
    is left to it).
    """
    root = photos_root()
    known, slugs = set(), set()
    for folder, slug in Album.objects.values_list("folder", "slug"):
        known.add(folder)
        slugs.add(slug)
    new = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or built_in_folder(entry.name) or entry.name in known:
            continue
        if not entry.is_dir():
            continue
        if entry.is_symlink() and not (target := Path(entry.path).resolve()).is_relative_to(root):
            logger.warning(LINK_OUTSIDE, entry.name, target)
            continue
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            continue  # a folder name that cannot be stored; it cannot be synced either
        slug = _unique_slug(entry.name, slugs)
        slugs.add(slug)
        new.append(Album(name=entry.name, slug=slug, folder=entry.name))
    if not new:
        return []
    Album.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    made = Album.objects.filter(folder__in=[album.folder for album in new])
    return sorted(made.filter(slug__in=[album.slug for album in new]), key=lambda a: a.folder)


def _unique_slug(name: str, taken: set[str]) -> str:
    base = slugify(name, allow_unicode=True)[:190] or "album"
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    return slug
