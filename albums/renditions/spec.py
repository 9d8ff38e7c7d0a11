"""Which renditions a photo gets, and where each one lives in the bucket.

A rendition's key is made of the photo's content (its MD5) and the settings it was made
with, so it never changes once written: a photo moved, renamed or held by two albums has the
same renditions, a change of settings makes new keys rather than overwriting, and the
objects can be cached for a year (`Cache-Control: immutable`).

They live beside the albums, under `<ALBUMS_KEY_PREFIX>-renditions/`, not inside
`<ALBUMS_KEY_PREFIX>/`: a sync of many albums lists that whole prefix, and two renditions a
photo would triple its pages; and no album's prefix can ever cover them.
"""

from dataclasses import dataclass

from .. import conf

# Bump when the way renditions are made changes what they look like (a new key for each).
RENDER_VERSION = 1
CACHE_CONTROL = "public, max-age=31536000, immutable"
CONTENT_TYPES = {"webp": "image/webp", "jpeg": "image/jpeg", "avif": "image/avif"}
EXTENSIONS = {"webp": "webp", "jpeg": "jpg", "avif": "avif"}


def content_type_of(key: str) -> str:
    """The content type of the rendition under `key`, from its extension."""
    by_extension = {EXTENSIONS[fmt]: kind for fmt, kind in CONTENT_TYPES.items()}
    return by_extension.get(key.rsplit(".", 1)[-1], "application/octet-stream")


@dataclass(frozen=True, slots=True)
class RenditionSpec:
    """The renditions every photo gets: one per long edge in `sizes` (smallest first),
    never larger than the photo itself, all in one format and quality."""

    sizes: tuple[int, ...]
    format: str
    quality: int

    @classmethod
    def from_settings(cls) -> "RenditionSpec | None":
        """The spec the settings ask for; None when ALBUMS_RENDITIONS is off."""
        if not conf.renditions_enabled():
            return None
        return cls(conf.rendition_sizes(), conf.rendition_format(), conf.rendition_quality())

    @property
    def signature(self) -> str:
        """What a photo's record keeps to say which renditions it has (Photo.renditions)."""
        sizes = "-".join(map(str, self.sizes))
        return f"v{RENDER_VERSION}-{self.format}-q{self.quality}-{sizes}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    def key(self, md5: str, size: int) -> str:
        """The bucket key of the rendition of long edge `size` of the content whose MD5 is
        `md5` (fanned out by its first two digits)."""
        name = f"{size}-q{self.quality}-v{RENDER_VERSION}.{EXTENSIONS[self.format]}"
        return f"{prefix()}{md5[:2]}/{md5}/{name}"

    def keys(self, md5: str) -> list[str]:
        return [self.key(md5, size) for size in self.sizes]


def prefix() -> str:
    """Where every rendition lives in the bucket."""
    return f"{conf.key_prefix()}-renditions/"


def parse_signature(signature: str) -> RenditionSpec | None:
    """The spec a record's signature names (for the keys of renditions made with other
    settings); None for an empty or unknown one."""
    try:
        version, fmt, quality, *sizes = signature.split("-")
        if version != f"v{RENDER_VERSION}" or fmt not in CONTENT_TYPES:
            return None
        return RenditionSpec(tuple(int(s) for s in sizes), fmt, int(quality.removeprefix("q")))
    except ValueError:
        return None


def fitted(width: int, height: int, long_edge: int) -> tuple[int, int]:
    """The size of a rendition of long edge `long_edge` of an upright image of `width` x
    `height`: scaled down to fit, never up, rounded as the renderer rounds."""
    scale = min(1.0, long_edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
