"""A photo's web renditions, made and sent on the pool's threads (albums.renditions).

Keys come from the photo's content, so before rendering the bucket is asked whether they
are there already (the same photo in another album, a record lost): one HEAD, much cheaper
than a render. The display size is sent last, so finding it means the set is whole.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from ...renditions import CACHE_CONTROL, NotRenderable, RenditionSpec, render
from ...storage import StorageBucket


@dataclass(frozen=True, slots=True)
class RenditionState:
    """What a photo's record says of its renditions (Photo.renditions, .rendition_problem),
    and what this run did to get there."""

    signature: str = ""  # the settings they were made or tried with; "" for none
    problem: str = ""  # why they could not be made
    width: int | None = None  # the upright photo's size, when rendered now
    height: int | None = None
    made: bool = False  # rendered and sent by this run
    tried: bool = False  # rendered (or tried to be) by this run


NONE_YET = RenditionState()  # no renditions recorded (a new content, or renditions off)


def ensure_renditions(
    bucket: StorageBucket,
    spec: RenditionSpec,
    *,
    md5: str,
    source: bytes | str,
    content_type: str,
    force: bool = False,
    unchanged: Callable[[], bool] = lambda: True,
) -> RenditionState:
    """See that the bucket holds `spec`'s renditions of the content `md5` (from `source`:
    its bytes, or its file's path): found there, or rendered and sent now. A photo that
    cannot be rendered gets the reason, never an error; an error of the bucket is raised
    (the photo's failure, judged as any other). Nothing is sent when the file is no longer
    `unchanged()` once rendered: the renditions might not be of `md5`'s bytes."""
    keys = spec.keys(md5)
    if not force and bucket.size(keys[-1]) is not None:
        return RenditionState(spec.signature)
    try:
        rendered = render(source, spec, content_type=content_type)
    except NotRenderable as exc:
        return RenditionState(spec.signature, problem=str(exc), tried=True)
    if not unchanged():
        return NONE_YET
    for (_, data, _, _), key in zip(rendered.images, keys, strict=True):
        bucket.upload(
            key,
            data,
            size=len(data),
            content_type=spec.content_type,
            md5=hashlib.md5(data).digest(),  # noqa: S324 - a checksum, not security
            cache_control=CACHE_CONTROL,
        )
    return RenditionState(
        spec.signature, width=rendered.width, height=rendered.height, made=True, tried=True
    )
