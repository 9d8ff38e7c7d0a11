"""What a sync run did, in one frozen object that every entry point reports from."""

from dataclasses import asdict, dataclass, field

from django.utils.translation import ngettext


@dataclass(frozen=True, slots=True)
class FileFailure:
    """One file the run could not handle; the run went on without it."""

    path: str
    error: str


@dataclass(frozen=True, slots=True)
class SyncResult:
    album: str
    run_id: int | None = None
    status: str = "success"
    dry_run: bool = False
    message: str = ""
    scanned: int = 0  # photo files found on disk
    new: int = 0  # on disk, not yet in the database
    existing: int = 0  # on disk and in the database
    orphaned: int = 0  # in the database, gone from disk
    uploaded: int = 0  # new photos sent to the bucket
    reuploaded: int = 0  # known photos sent again: missing, changed or truncated
    already_in_bucket: int = 0  # new photos recorded without an upload
    unchanged: int = 0  # known photos found whole in the bucket
    deferred: int = 0  # modified seconds ago, perhaps still being written: next run
    removed: int = 0  # records of orphaned photos deleted
    pruned: int = 0  # bucket objects of orphaned photos deleted (--prune)
    bytes_uploaded: int = 0
    failures: tuple[FileFailure, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def summary(self) -> str:
        """One line for a person: the command's output, the admin message, the logs."""
        would = "would be " if self.dry_run else ""
        parts = [
            ngettext("%(n)d photo", "%(n)d photos", self.scanned) % {"n": self.scanned},
            f"{self.uploaded} {would}uploaded",
            f"{self.reuploaded} {would}re-uploaded",
            f"{self.already_in_bucket} already in bucket",
            f"{self.unchanged} unchanged",
            f"{self.removed} orphaned {'record' if self.removed == 1 else 'records'} "
            f"{would}removed",
        ]
        if self.deferred:
            parts.append(f"{self.deferred} left for next run (still being written)")
        if self.pruned:
            parts.append(f"{self.pruned} {would}pruned from bucket")
        if self.failed:
            parts.append(f"{self.failed} failed")
        line = f"{self.album}: " + ", ".join(parts)
        if self.bytes_uploaded:
            line += f" ({_human_bytes(self.bytes_uploaded)})"
        if self.dry_run:
            line += " [dry run]"
        if self.message:
            line += f". {self.message}"
        return line

    def as_dict(self) -> dict:
        data = asdict(self)
        data["failed"] = self.failed
        data["failures"] = [asdict(failure) for failure in self.failures]
        return data


def _human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
