"""What a sync run did, in one frozen object that every entry point reports from."""

from dataclasses import asdict, dataclass

from django.utils.translation import ngettext

from ..counts import SyncCounts


@dataclass(frozen=True, slots=True)
class FileFailure:
    """One file the run could not handle; the run went on without it."""

    path: str
    error: str


@dataclass(frozen=True, slots=True)
class SyncResult(SyncCounts):
    """The counts (see albums.counts.SyncCounts) and the outcome of one run."""

    album: str = ""
    run_id: int | None = None
    status: str = "success"
    dry_run: bool = False
    message: str = ""
    failures: tuple[FileFailure, ...] = ()

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SyncCounts.names()}

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
        if self.excluded:
            parts.append(f"{self.excluded} excluded")
        if self.excluded_recorded:
            count = self.excluded_recorded
            parts.append(f"{count} recorded {'photo' if count == 1 else 'photos'} now excluded")
        if self.pruned:
            parts.append(f"{self.pruned} {would}pruned from bucket")
        if self.excluded_pruned:
            parts.append(f"{self.excluded_pruned} excluded {would}pruned from bucket")
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
        """The result as `sync_albums --json` prints it and a task returns it."""
        return {
            "album": self.album,
            "run_id": self.run_id,
            "status": self.status,
            "dry_run": self.dry_run,
            "message": self.message,
            **self.counts(),
            "failed": self.failed,
            "failures": [asdict(failure) for failure in self.failures],
        }


def _human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
