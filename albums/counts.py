"""The counts each kind of run keeps, named once.

`SyncCounts` (`VerifyCounts` for `verify_albums`, `RestoreCounts` for `restore_album`) is the
one definition: the run's result
(`SyncResult`, `VerifyResult`), the run record's columns (`SyncRun`), the admin's run page,
the API and `--json` all derive from its fields, so a count added here shows everywhere
(after `makemigrations` for its column).
"""

from dataclasses import dataclass, field, fields


def _count(label: str, meaning: str, *, unit: str = "photos"):
    return field(default=0, metadata={"label": label, "meaning": meaning, "unit": unit})


class Counts:
    """What every counts class can say about its fields."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(spec.name for spec in fields(cls))

    @classmethod
    def specs(cls):
        """(name, label, meaning, unit) of every count, in order."""
        return tuple(
            (spec.name, spec.metadata["label"], spec.metadata["meaning"], spec.metadata["unit"])
            for spec in fields(cls)
        )


@dataclass(frozen=True)
class SyncCounts(Counts):
    scanned: int = _count("photos found", "photo files found on disk")
    new: int = _count("new", "on disk, not yet in the database")
    existing: int = _count("existing", "on disk and in the database")
    orphaned: int = _count("orphaned", "in the database, gone from disk")
    uploaded: int = _count("uploaded", "new photos sent to the bucket")
    reuploaded: int = _count(
        "re-uploaded", "known photos sent again: missing, changed or truncated"
    )
    already_in_bucket: int = _count("already in bucket", "new photos recorded without an upload")
    unchanged: int = _count("unchanged", "known photos found whole in the bucket")
    deferred: int = _count(
        "left for next run", "still changing while the run watched it: the next run sends it"
    )
    excluded: int = _count(
        "excluded",
        "files and folders left out by an exclusion (built-in, ALBUMS_EXCLUDE or "
        ".photosite-ignore); a folder counts once and is not read",
    )
    excluded_recorded: int = _count(
        "recorded, now excluded",
        "recorded photos an exclusion now covers: not synced, record and bucket copy kept "
        "(unless --prune-excluded)",
    )
    removed: int = _count("records removed", "records of photos gone from disk, deleted")
    pruned: int = _count("pruned", "bucket objects of photos gone from disk, deleted (--prune)")
    excluded_pruned: int = _count(
        "excluded pruned",
        "bucket objects of recorded photos now excluded, deleted (--prune-excluded)",
    )
    untracked_pruned: int = _count(
        "untracked removed",
        "objects under the album's prefix with neither a file nor a record (left by runs "
        "without --prune, or by a crash between upload and record), deleted (--prune)",
        unit="objects",
    )
    moved: int = _count(
        "moved", "new paths of photos moved or renamed: copied inside the bucket, not uploaded"
    )
    replaced_in_bucket: int = _count(
        "replaced in bucket", "bucket copies found changed since uploaded: uploaded again"
    )
    bytes_uploaded: int = _count("bytes uploaded", "bytes sent to the bucket", unit="bytes")
    rendered: int = _count(
        "renditions made", "photos whose web renditions were made and sent to the bucket"
    )
    not_rendered: int = _count(
        "no rendition", "images that could not be rendered (backed up all the same; see why)"
    )
    renditions_pruned: int = _count(
        "renditions pruned",
        "photos pruned whose content no album holds any more: their renditions deleted too",
    )


@dataclass(frozen=True)
class VerifyCounts(Counts):
    checked: int = _count("photos checked", "recorded photos read and compared")
    matched: int = _count("matched", "file, record and bucket copy agree")
    missing_in_bucket: int = _count("missing in bucket", "no object under the photo's key")
    differs_in_bucket: int = _count("differs in bucket", "the bucket copy is not what was uploaded")
    corrupted_on_disk: int = _count(
        "corrupted on disk", "bytes changed while size and modification time did not"
    )
    changed_on_disk: int = _count(
        "changed on disk", "edited since the last sync, which the next sync uploads"
    )
    missing_on_disk: int = _count("missing on disk", "recorded, gone from the album folder")
    repaired: int = _count("repaired", "bucket copies uploaded again by --repair")
    bytes_read: int = _count("bytes read", "bytes of photo files read and hashed", unit="bytes")


@dataclass(frozen=True)
class RestoreCounts(Counts):
    recorded: int = _count("photos recorded", "photos the restore looked for")
    restored: int = _count("restored", "downloaded, checked and put in place")
    already_present: int = _count("already present", "on disk as recorded: left alone")
    local_differs: int = _count(
        "differs on disk", "on disk but not as recorded: left alone (--overwrite keeps it aside)"
    )
    kept_aside: int = _count("kept aside", "local files moved aside by --overwrite, not deleted")
    bucket_differs: int = _count(
        "not as uploaded in bucket", "the bucket copy is not what was uploaded: not written"
    )
    missing_in_bucket: int = _count("missing in bucket", "no object under the photo's key")
    bytes_downloaded: int = _count("bytes downloaded", "bytes read from the bucket", unit="bytes")


# The kinds of run, with what each counts; the run record has a column for every count.
COUNTS_BY_KIND: dict[str, type[Counts]] = {
    "sync": SyncCounts,
    "verify": VerifyCounts,
    "restore": RestoreCounts,
}
