"""Make a photo's web renditions: upright, sRGB, 8-bit, and without any metadata.

Pillow does the work, tuned (bench/RESULTS-renditions.md compares it with a plain Pillow
pipeline and with libvips): `draft()` has the JPEG decoder scale the photo down by up to 8
while decoding, `reducing_gap` resizes in two cheap steps, and the thumbnail is made from
the display size. Its time per 24 MP photo matched libvips' at 2 threads, at half the
memory, with no library beyond Pillow and pillow-heif (HEIC/HEIF, which libvips' wheel
cannot decode either). Most of a render is the WebP encoder's.

Every rendition is written without EXIF, GPS, XMP, IPTC, maker notes, comments or an ICC
profile: its pixels are converted to sRGB first, which browsers assume of an image without
a profile.
"""

import functools
import io
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image, ImageCms, UnidentifiedImageError

from .spec import RenditionSpec

# Pillow refuses a header that claims more than twice MAX_IMAGE_PIXELS (178 MP): more than
# any camera's photo (a 151 MP Phase One), far less than a decompression bomb (a small PNG
# that claims 50,000 x 50,000 pixels), refused before any decoding.
MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS
RAW_PREFIX = "image/x-"  # the camera RAW types of albums.sync.library.media
REDUCING_GAP = 3.0  # a box reduction to within 3x the size, then a bicubic resize
# The thumbnail is made from the display size: a box reduction by 2 first (Pillow's own
# default gap) takes its resize from 23 to 10 ms, and its WebP differs from one made with
# the 3x gap by 0.04 dB against a Lanczos resize of the whole photo
# (bench/RESULTS-renditions.md).
THUMB_REDUCING_GAP = 2.0
# WebP's method 2 encodes a 2048 px rendition in under half the time of its default 4, for
# 8 % more bytes (bench/RESULTS-renditions.md): the encoder is most of a render's time.
WEBP_METHOD = 2
# Renders run on two threads of their own, whoever asks: each holds a photo decoded at the
# display size's scale (a 24 MP JPEG at half size, 18 MB), and more than the cores would
# only queue. Their own threads, not the sync's (up to ALBUMS_SYNC_WORKERS): rendered on
# ten of those, each with a malloc arena of its own keeping a decoded photo's worth, a sync
# of camera JPEGs went from 160 to 490 MiB (bench/RESULTS-renditions-sync.md; albums.memory
# now also limits the arenas).
RENDER_THREADS = 2
# EXIF orientation -> the transpose that makes the image upright.
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
ORIENTATION = 0x0112

NOT_AN_IMAGE = "not an image Pillow can read ({error})"
UNKNOWN = "an unknown format, or damaged from its first bytes"
TOO_LARGE = "{megapixels:,} megapixels, more than the {limit:,} a photo may have"
RAW_NOT_RENDERED = (
    "a camera RAW file: no rendition is made of RAW files (the JPEG beside it has one)"
)


class NotRenderable(Exception):
    """This photo cannot be rendered; the message says why, for its record and the run."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A photo's renditions: (long edge asked, encoded bytes, width, height), smallest
    first, and the size of the upright photo they were made from."""

    width: int
    height: int
    images: tuple[tuple[int, bytes, int, int], ...]


def render(source: bytes | str, spec: RenditionSpec, *, content_type: str) -> Rendered:
    """The renditions `spec` asks for, of the photo in `source` (its bytes, or its path).

    Raises NotRenderable for a file that is no image Pillow reads (corrupt, truncated,
    unknown), one that claims more than MAX_PIXELS, and RAW files.
    """
    if content_type.startswith(RAW_PREFIX):
        raise NotRenderable(RAW_NOT_RENDERED)
    _read_heif_too()
    return _renderers().submit(_render, source, spec).result()


_executors: dict[int, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def _renderers() -> ThreadPoolExecutor:
    """This process's render threads (a process forked from one that rendered, as a task
    worker may be, gets threads of its own: it inherits none)."""
    with _executors_lock:
        pid = os.getpid()
        if pid not in _executors:
            _executors[pid] = ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="render")
        return _executors[pid]


def _render(source: bytes | str, spec: RenditionSpec) -> Rendered:
    try:
        display, width, height = _display(source, spec.sizes[-1])
    except Image.DecompressionBombError as exc:
        raise NotRenderable(_too_large(exc)) from None
    except UnidentifiedImageError:
        raise NotRenderable(NOT_AN_IMAGE.format(error=UNKNOWN)) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotRenderable(NOT_AN_IMAGE.format(error=_said(exc))) from None
    images = []
    for size in spec.sizes:
        image = display if size == spec.sizes[-1] else _shrunk(display, size)
        images.append((size, _encoded(image, spec), image.width, image.height))
    return Rendered(width=width, height=height, images=tuple(images))


def _display(source: bytes | str, long_edge: int) -> tuple[Image.Image, int, int]:
    """The display size, upright and 8-bit sRGB, and the upright photo's size. Only the
    photo as decoded (a 24 MP JPEG at half its size, 18 MB) and the display size are ever
    held: nothing is copied at full size."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as photo:
        width, height = photo.size
        orientation = photo.getexif().get(ORIENTATION)
        icc = photo.info.get("icc_profile")
        # The JPEG decoder scales by 1/2, 1/4 or 1/8 to no less than the target; other
        # formats decode whole.
        scale = min(1.0, long_edge / max(width, height))
        photo.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
        photo.load()  # a truncated or corrupt file fails here
        image = _eight_bit(photo)
        image.thumbnail((long_edge, long_edge), Image.Resampling.BICUBIC, REDUCING_GAP)
        # Upright, and no longer the file's image (closed with it).
        image = image.transpose(UPRIGHT[orientation]) if orientation in UPRIGHT else image.copy()
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    image = _to_srgb(image, icc)
    image.info.clear()  # nothing of the original's metadata goes into a rendition
    return image, width, height


def _eight_bit(image: Image.Image) -> Image.Image:
    """RGB or RGBA of 8 bits a channel: 16-bit and 32-bit greys scaled down (not clipped),
    palettes and greys expanded; CMYK is left to the colour conversion."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        high = 65535 if image.mode.startswith("I;16") or (image.getextrema()[1] or 0) > 255 else 255
        image = image.point(lambda value: value * (255 / high), "L") if high > 255 else image
        return image.convert("RGB")
    if image.mode in ("RGB", "RGBA", "CMYK"):
        return image
    if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    return image.convert("RGB")


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Colours converted from the photo's profile (Display P3, Adobe RGB, a CMYK one) to
    sRGB; an image without one is taken as sRGB already (CMYK through Pillow's own)."""
    mode = "RGBA" if image.mode == "RGBA" else "RGB"
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if image.mode == "RGBA":  # littlecms converts the colours; the alpha stays
                alpha = image.getchannel("A")
                converted = ImageCms.profileToProfile(
                    image.convert("RGB"), source, _srgb(), outputMode="RGB"
                )
                converted.putalpha(alpha)
                return converted
            return ImageCms.profileToProfile(image, source, _srgb(), outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: the pixels as they are
    return image if image.mode == mode else image.convert(mode)


@functools.cache
def _srgb():
    return ImageCms.createProfile("sRGB")


def _shrunk(display: Image.Image, long_edge: int) -> Image.Image:
    image = display.copy()
    image.thumbnail((long_edge, long_edge), Image.Resampling.BICUBIC, THUMB_REDUCING_GAP)
    return image


def _encoded(image: Image.Image, spec: RenditionSpec) -> bytes:
    out = io.BytesIO()
    if spec.format == "jpeg":
        if image.mode == "RGBA":
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.save(out, "JPEG", quality=spec.quality, optimize=True, progressive=True)
    elif spec.format == "avif":
        image.save(out, "AVIF", quality=spec.quality, speed=8)
    else:
        image.save(out, "WEBP", quality=spec.quality, method=WEBP_METHOD)
    return out.getvalue()


@functools.cache
def _read_heif_too() -> None:
    """Pillow opens HEIC/HEIF photos from here on (once per process)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _too_large(exc: Exception) -> str:
    numbers = [int(n) for n in re.findall(r"\d+", str(exc))]
    claimed = numbers[0] if numbers else MAX_PIXELS + 1
    return TOO_LARGE.format(megapixels=claimed // 1_000_000, limit=MAX_PIXELS // 1_000_000)


def _said(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
