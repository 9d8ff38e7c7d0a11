"""Create an album for every top-level folder of PHOTOS_ROOT that has none."""

import logging
import os
from pathlib import Path

from django.utils.text import slugify

from ..models import Album
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
    """
    root = photos_root()
    known = set(Album.objects.values_list("folder", flat=True))
    created = []
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
        created.append(
            Album.objects.create(name=entry.name, slug=_unique_slug(entry.name), folder=entry.name)
        )
    return created


def _unique_slug(name: str) -> str:
    base = slugify(name, allow_unicode=True)[:190] or "album"
    slug, number = base, 2
    while Album.objects.filter(slug=slug).exists():
        slug, number = f"{base}-{number}", number + 1
    return slug
