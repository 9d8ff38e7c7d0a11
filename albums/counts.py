"""The counts a sync run keeps, named once.

`SyncCounts` is the one definition: the run's result (`SyncResult`), the run record's columns
(`SyncRun`), the admin's run page, the API and `sync_albums --json` all derive from its
fields, so a count added here shows everywhere (after `makemigrations` for its column).
"""

from dataclasses import dataclass, field, fields


def _count(label: str, meaning: str, *, unit: str = "photos"):
    return field(default=0, metadata={"label": label, "meaning": meaning, "unit": unit})


@dataclass(frozen=True, slots=True)
class SyncCounts:
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
    deferred: int = _count("left for next run", "modified seconds ago, perhaps still being written")
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
    bytes_uploaded: int = _count("bytes uploaded", "bytes sent to the bucket", unit="bytes")

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
