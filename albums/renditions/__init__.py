"""Web renditions of the photos: which ones (spec), how they are made (render), where they
live in the bucket and how pages link to them (links)."""

from .render import MAX_PIXELS, NotRenderable, Rendered, render
from .spec import CACHE_CONTROL, RenditionSpec, fitted, parse_signature, prefix

__all__ = [
    "CACHE_CONTROL",
    "MAX_PIXELS",
    "NotRenderable",
    "Rendered",
    "RenditionSpec",
    "fitted",
    "parse_signature",
    "prefix",
    "render",
]
