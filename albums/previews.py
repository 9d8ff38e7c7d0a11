"""How the admin shows a photo: its thumbnail rendition from the bucket (albums.renditions),
or one made from the local file for a photo without renditions, and a link to its object."""

import os
from pathlib import Path

from django.core.files.storage import storages
from PIL import Image, ImageOps, UnidentifiedImageError
from storages.backends.s3 import S3Storage

from . import conf
from .models import Photo
from .renditions.links import rendition_keys
from .storage import STORAGE_ALIAS
from .sync.library.media import is_image

THUMBNAIL_PIXELS = 240  # the longer side, enough for a list row and a change page
LINK_SECONDS = 3600


class NoPreview(Exception):
    """The photo's file is gone from disk, lies outside PHOTOS_ROOT or is not an image."""


def has_preview(photo: Photo) -> bool:
    """Whether the admin should try a thumbnail: images do; videos and sidecars get an icon."""
    return is_image(photo.content_type)


def rendition(photo: Photo):
    """The photo's thumbnail rendition, open for reading from the bucket; None when it has
    none (or the bucket lost it)."""
    keys = rendition_keys(photo.md5, photo.renditions, photo.rendition_problem)
    if keys is None:
        return None
    try:
        return storages[STORAGE_ALIAS].open(keys[0], "rb")
    except (FileNotFoundError, OSError):
        return None


def thumbnail(photo: Photo) -> Path:
    """A JPEG of at most THUMBNAIL_PIXELS a side, made once per file version.

    Cached under ALBUMS_THUMBNAIL_DIR by photo id and the file's current size and mtime, so
    a photo edited on disk gets a new thumbnail. Written to a temporary name and renamed,
    so two requests at once never serve half a file.
    """
    if not has_preview(photo):
        raise NoPreview(f"{photo.path} is {photo.content_type or 'no image'}, not an image")
    source = (photo.album.path / photo.path).resolve()
    if not source.is_relative_to(conf.photos_root()):
        raise NoPreview(f"{photo.path} is outside PHOTOS_ROOT")
    try:
        stat = source.stat()
    except OSError as exc:
        raise NoPreview(f"{photo.path}: {exc.strerror}") from exc
    folder = conf.thumbnail_dir()
    target = folder / f"{photo.pk}-{stat.st_size}-{stat.st_mtime_ns}.jpg"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    try:
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image)
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            image.convert("RGB").save(partial, "JPEG", quality=80)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        partial.unlink(missing_ok=True)
        raise NoPreview(f"{photo.path}: not an image Pillow can read ({exc})") from exc
    partial.replace(target)
    return target


def bucket_url(photo: Photo) -> str | None:
    """A link to the photo's object: presigned (for LINK_SECONDS) on a private S3 bucket.

    None for a local-folder bucket, which the web server does not serve.
    """
    storage = storages[STORAGE_ALIAS]
    if not isinstance(storage, S3Storage):
        return None
    return storage.url(photo.key, expire=LINK_SECONDS)
