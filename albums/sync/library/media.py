"""What the sync learns from a photo file's first bytes: content type and image metadata.

Sidecars and videos synced beside photos (ALBUMS_PHOTO_EXTENSIONS="+xmp,mov,mp4") get their
content type and nothing else: Pillow is asked only about images.
"""

import functools
import logging
import mimetypes
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

logger = logging.getLogger("albums")

# mimetypes does not know most camera formats; these are the types in common use.
EXTRA_TYPES = {
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".webp": "image/webp",
    ".dng": "image/x-adobe-dng",
    ".cr2": "image/x-canon-cr2",
    ".cr3": "image/x-canon-cr3",
    ".crw": "image/x-canon-crw",
    ".nef": "image/x-nikon-nef",
    ".nrw": "image/x-nikon-nrw",
    ".arw": "image/x-sony-arw",
    ".srf": "image/x-sony-srf",
    ".sr2": "image/x-sony-sr2",
    ".orf": "image/x-olympus-orf",
    ".rw2": "image/x-panasonic-rw2",
    ".raf": "image/x-fuji-raf",
    ".pef": "image/x-pentax-pef",
    ".srw": "image/x-samsung-srw",
    ".x3f": "image/x-sigma-x3f",
    # Sidecars and videos, where mimetypes knows none or another meaning.
    ".xmp": "application/rdf+xml",
    ".aae": "application/xml",
    ".mts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".3gp": "video/3gpp",
}
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
OFFSET_TIME_ORIGINAL = 36881
DATETIME = 306
ORIENTATION = 274
TURNED = {5, 6, 7, 8}  # EXIF orientations that show the image turned a quarter


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None


def photo_extension(name: str) -> str:
    """The extension that makes `name` a photo, lower case, with its dot. Spaces and dots
    after it are not part of it: "x.jpg " and "x.JPG." are photos (issue #12), kept under
    their names exactly."""
    return os.path.splitext(name.rstrip().rstrip("."))[1].lower()


def content_type_for(path: str) -> str:
    extension = photo_extension(path)
    return (
        EXTRA_TYPES.get(extension)
        or mimetypes.guess_type(f"x{extension}")[0]
        or "application/octet-stream"
    )


def is_image(content_type: str) -> bool:
    """Whether a file of this type may have dimensions, EXIF and a thumbnail."""
    return content_type.startswith("image/")


def read_image_info(file) -> ImageInfo:
    """Width, height (as the photo is shown: upright, its EXIF orientation applied) and
    EXIF date taken, read from the header only; empty if unknown. HEIC/HEIF is read
    through pillow-heif.

    Best effort: a RAW or HEIC file Pillow cannot parse is still a photo to back up. A file
    whose name says it is no image (a video, a sidecar) is not read at all.
    """
    name = getattr(file, "name", None)
    if isinstance(name, str) and not is_image(content_type_for(name)):
        return ImageInfo()
    from PIL import Image  # here, not at import: a no-op sync never needs Pillow

    _read_heif_too()
    try:
        with Image.open(file) as image:
            width, height = image.size
            exif = image.getexif()
            if exif.get(ORIENTATION) in TURNED:
                width, height = height, width
            details = exif.get_ifd(EXIF_IFD)
            taken = details.get(DATETIME_ORIGINAL) or exif.get(DATETIME)
            offset = details.get(OFFSET_TIME_ORIGINAL)
    except Exception as exc:  # Pillow raises many types for files it does not understand
        logger.debug("No image metadata for %s: %s", getattr(file, "name", file), exc)
        return ImageInfo()
    return ImageInfo(width=width, height=height, taken_at=_exif_datetime(taken, offset))


@functools.cache
def _read_heif_too() -> None:
    """Pillow opens HEIC/HEIF photos from here on (once per process)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _exif_datetime(value, offset) -> datetime | None:
    """EXIF dates have no zone; OffsetTimeOriginal gives one when present, else UTC."""
    if not isinstance(value, str):
        return None
    try:
        naive = datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    zone = UTC
    if isinstance(offset, str) and len(offset.strip()) >= 6:
        try:
            sign = -1 if offset.strip()[0] == "-" else 1
            hours, minutes = offset.strip()[1:6].split(":")
            zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        except ValueError:
            zone = UTC
    return naive.replace(tzinfo=zone)
