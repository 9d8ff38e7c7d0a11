"""What to do with one photo, from what the folder, the database and the bucket hold for it.

A pure function of the three views of one path, so every rule of "never upload twice, never
miss a change" is in one place and can be read (and tested) on its own.
"""

import logging
from dataclasses import dataclass
from enum import Enum

from ...storage import RemoteObject
from ..library.merge import KnownPhoto
from ..library.scan import LocalFile


class Action(Enum):
    UNCHANGED = "unchanged"  # recorded, unchanged on disk, whole in the bucket: verify only
    RECORD = "record"  # new, and the bucket already holds it: record without an upload
    UPLOAD = "upload"  # send it (again)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    notes: tuple[tuple[int, str], ...] = ()  # (log level, message with %s for the path)
    also_count: str = ""  # a count beside the action's own, once it is done


def decide(local: LocalFile, known: KnownPhoto | None, remote: RemoteObject | None) -> Decision:
    """The fate of a photo on disk, given its record (None if new) and its object (None if
    the bucket has none under its key).

    - New and in the bucket with the same size: recorded, not uploaded (the pool checks the
      listing's MD5 where it has one before trusting it).
    - New and absent, or of another size: uploaded.
    - Recorded but missing from the bucket, changed on disk (size or mtime, to the
      nanosecond), or of another size in the bucket (a partial upload): uploaded again.
    - Recorded, unchanged on disk, but the bucket's ETag is not the one recorded when it was
      uploaded (someone replaced the object, even with bytes of the same size): uploaded
      again. The listing carries the ETag, so this costs no request; photos recorded
      before ETags were kept are not compared.
    - Otherwise unchanged: nothing is read or sent.
    """
    if known is None:
        if remote is not None and remote.size == local.size:
            return _record("Photo already exists in S3, skipping upload: %s")
        if remote is not None:
            return _upload(
                (logging.INFO, "Object in S3 has another size, uploading: %s"),
                (logging.INFO, "Uploading new photo: %s"),
            )
        return _upload((logging.INFO, "Uploading new photo: %s"))
    if remote is None:
        return _upload((logging.WARNING, "Existing photo missing from S3, will re-upload: %s"))
    if (known.size, known.mtime_ns) != (local.size, local.mtime_ns):
        return _upload((logging.INFO, "Photo changed on disk, will re-upload: %s"))
    if remote.size != local.size:
        note = f"Photo in S3 has {remote.size} bytes instead of {local.size}, will re-upload: %s"
        return _upload((logging.WARNING, note))
    if known.etag and remote.etag and remote.etag != known.etag:
        note = (logging.WARNING, "Photo in S3 differs from the uploaded copy, will re-upload: %s")
        return Decision(Action.UPLOAD, (note,), also_count="replaced_in_bucket")
    return Decision(Action.UNCHANGED)


def _record(message: str) -> Decision:
    return Decision(Action.RECORD, ((logging.INFO, message),))


def _upload(*notes: tuple[int, str]) -> Decision:
    return Decision(Action.UPLOAD, notes)
