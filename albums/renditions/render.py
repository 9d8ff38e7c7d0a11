"""Make a photo's web renditions: upright, sRGB, 8-bit, and without any metadata.

libvips does the work (bench/RESULTS-renditions.md compares it with Pillow): it shrinks a
JPEG while decoding it, so a 24 MP photo is never held whole, and it releases the GIL, so
renders on the sync's threads run side by side. The display size is made from the file,
the thumbnail from the display size. HEIC/HEIF comes through pillow-heif (libvips' binary
wheel has no HEVC decoder): decoded once, then handed to libvips as pixels.

Every rendition is written without EXIF, GPS, XMP, IPTC, maker notes, comments or an ICC
profile (`keep="none"`): its pixels are converted to sRGB first, which browsers assume of an
image without a profile.
"""

import threading
from dataclasses import dataclass

from .spec import RenditionSpec

# Larger than any camera's photo (a 151 MP Phase One), far smaller than a decompression bomb
# (a small PNG that claims 50,000 x 50,000 pixels): the header says it before any decoding.
MAX_PIXELS = 200_000_000
HEIF_TYPES = {"image/heic", "image/heif", "image/avif"}
RAW_PREFIX = "image/x-"  # the camera RAW types of albums.sync.library.media
# libwebp's effort 2 encodes a 2048 px rendition in half the time of its default 4, for 8 %
# more bytes (bench/RESULTS-renditions.md): the encoder is most of a render's time.
WEBP_EFFORT = 2
# Renders at once in this process: each holds a display-size image (about 12 MB), and more
# than the cores would only queue for them.
_renders = threading.BoundedSemaphore(2)

NOT_AN_IMAGE = "not an image libvips or pillow-heif can read ({error})"
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

    Raises NotRenderable for a file that is no image these libraries read (corrupt,
    truncated, unknown), one that claims more than MAX_PIXELS, and RAW files.
    """
    import pyvips  # here, not at import: a sync without renditions never loads libvips

    if content_type.startswith(RAW_PREFIX):
        raise NotRenderable(RAW_NOT_RENDERED)
    with _renders:
        try:
            display = _load_display(pyvips, source, spec.sizes[-1], content_type)
            width, height = display.get("photosite-width"), display.get("photosite-height")
            display = _to_srgb(display).copy_memory()
            images = []
            for size in spec.sizes:
                image = display if size == spec.sizes[-1] else _shrunk(display, size)
                images.append((size, _encoded(image, spec), image.width, image.height))
        except pyvips.Error as exc:
            raise NotRenderable(NOT_AN_IMAGE.format(error=_first_line(exc))) from None
    return Rendered(width=width, height=height, images=tuple(images))


def _load_display(pyvips, source: bytes | str, long_edge: int, content_type: str):
    """The display size, upright (EXIF orientation applied), with the upright photo's size
    set on it as "photosite-width" and "photosite-height"."""
    if content_type in HEIF_TYPES and not _vips_reads(pyvips, source):
        image = _heif_pixels(pyvips, source)
        width, height = image.width, image.height
        display = image.thumbnail_image(long_edge, height=long_edge, size="down")
    else:
        header = pyvips.Image.new_from_source(_source(pyvips, source), "")
        _check_size(header.width, header.height)
        width, height = header.width, header.height
        if header.get_typeof("orientation") and header.get("orientation") in (5, 6, 7, 8):
            width, height = height, width
        # Shrink while decoding (JPEG's DCT scaling, WebP's and HEIF's own), then rotate
        # upright. The loader's fail_on="error" (thumbnail's own fail_on does not reach it)
        # refuses a truncated or corrupt file rather than rendering it half grey.
        display = pyvips.Image.thumbnail_source(
            _source(pyvips, source),
            long_edge,
            height=long_edge,
            size="down",
            option_string="fail_on=error",
        )
    display = display.copy()
    display.set_type(pyvips.GValue.gint_type, "photosite-width", width)
    display.set_type(pyvips.GValue.gint_type, "photosite-height", height)
    return display


def _vips_reads(pyvips, source: bytes | str) -> bool:
    """Whether this libvips decodes this HEIF file (AVIF yes, HEVC-coded HEIC not in the
    binary wheel)."""
    try:
        image = pyvips.Image.new_from_source(_source(pyvips, source), "")
        image.crop(0, 0, 1, 1).avg()  # the header alone can load when the codec is missing
    except pyvips.Error:
        return False
    return True


def _source(pyvips, source: bytes | str):
    """A libvips source of the photo: from memory, or from the file (whose name is never
    parsed for options, so "[" in a file name is only a character)."""
    if isinstance(source, bytes):
        return pyvips.Source.new_from_memory(source)
    return pyvips.Source.new_from_file(source)


def _heif_pixels(pyvips, source: bytes | str):
    """A HEIC/HEIF photo decoded by pillow-heif (its rotation and mirroring applied, as the
    format requires), as a libvips image with its colour profile."""
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(source, convert_hdr_to_8bit=True)
        _check_size(*heif.size)
        data = heif.data  # decodes the primary image
    except (ValueError, RuntimeError, OSError) as exc:  # pillow-heif's errors
        raise NotRenderable(NOT_AN_IMAGE.format(error=_first_line(exc))) from None
    bands = len(heif.mode)  # "RGB" or "RGBA"
    width, height = heif.size
    rows = (
        bytes(data) if heif.stride == width * bands else _packed(data, heif.stride, width * bands)
    )
    image = pyvips.Image.new_from_memory(rows, width, height, bands, "uchar")
    image = image.copy(interpretation="srgb")
    if profile := heif.info.get("icc_profile"):
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
    return image


def _packed(data, stride: int, row: int) -> bytes:
    view = memoryview(data)
    return b"".join(view[start : start + row] for start in range(0, len(view), stride))


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise NotRenderable(
            TOO_LARGE.format(megapixels=width * height // 1_000_000, limit=MAX_PIXELS // 1_000_000)
        )


def _to_srgb(image):
    """8-bit sRGB (with its alpha, if any): an embedded profile (Adobe RGB, Display P3, a
    CMYK one) converted from, 16-bit and CMYK images brought down to it."""
    if image.get_typeof("icc-profile-data"):
        image = image.icc_transform("srgb", embedded=True, intent="perceptual")
    elif image.interpretation == "cmyk":
        image = image.icc_transform("srgb", input_profile="cmyk", intent="perceptual")
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands == 2 or image.bands == 1:  # grey (with alpha): shown as RGB
        image = image.colourspace("srgb")
    return image


def _shrunk(display, long_edge: int):
    return display.thumbnail_image(long_edge, height=long_edge, size="down")


def _encoded(image, spec: RenditionSpec) -> bytes:
    if spec.format == "jpeg":
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        return image.jpegsave_buffer(
            Q=spec.quality, keep="none", optimize_coding=True, interlace=True
        )
    if spec.format == "avif":
        return image.heifsave_buffer(
            Q=spec.quality, compression="av1", effort=2, keep="none", bitdepth=8
        )
    return image.webpsave_buffer(Q=spec.quality, keep="none", effort=WEBP_EFFORT)


def _first_line(exc: Exception) -> str:
    """What a library said went wrong: libvips' own line ("VipsJpeg: premature end of JPEG
    image") rather than the operation that met it ("unable to copy to memory")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = [line for line in lines if line.lower().startswith("vips")]
    if said:
        return said[0][:200]
    # libvips keeps a decoder's own words with the thread that decoded, which may be one of
    # its workers: then only the operation's failure reaches this thread.
    return f"corrupt or cut short: {(lines or [type(exc).__name__])[0][:200]}"
