"""What a run did, in one frozen object that every entry point reports from."""

from dataclasses import asdict, dataclass
from typing import ClassVar

from django.utils.translation import ngettext

from ...counts import Counts, RestoreCounts, SyncCounts, VerifyCounts
from ...models import Album

INTERRUPTED = "Interrupted; what was uploaded is recorded."  # a run stopped by Ctrl-C
# A run whose process was told to exit: django-q2's task timeout (Q_TIMEOUT) raises SystemExit
# in the worker, which its guard kills three seconds later.
STOPPED_BY_EXIT = (
    "Stopped by the task timeout (Q_TIMEOUT) or a shutdown of its process; what was uploaded "
    "is recorded, and the next run goes on from there."
)


@dataclass(frozen=True, slots=True)
class FileFailure:
    """One file the run could not handle; the run went on without it."""

    path: str
    error: str


@dataclass(frozen=True)
class RunOutcome:
    """How a run of any kind ended; its counts come from the counts class beside it."""

    album: str = ""
    run_id: int | None = None
    status: str = "success"
    dry_run: bool = False
    message: str = ""
    failures: tuple[FileFailure, ...] = ()
    COUNTS: ClassVar[type[Counts]]  # the counts class the result is made of

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS.names()}

    def as_dict(self) -> dict:
        """The result as `--json` prints it and a task returns it."""
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

    def _ending(self, line: str, size: int) -> str:
        if size:
            line += f" ({_human_bytes(size)})"
        if self.dry_run:
            line += " [dry run]"
        if self.message:
            line += f". {self.message}"
        return line


@dataclass(frozen=True)
class SyncResult(SyncCounts, RunOutcome):
    """The counts (see albums.counts.SyncCounts) and the outcome of one sync."""

    COUNTS = SyncCounts

    still_changing: tuple[str, ...] = ()  # photos left for the next run (the `deferred` count)
    # Photos backed up whose web renditions could not be made (the `not_rendered` count).
    rendition_problems: tuple[FileFailure, ...] = ()

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
        if self.moved:
            parts.append(f"{self.moved} {would}moved in the bucket")
        if self.replaced_in_bucket:
            parts.append(f"{self.replaced_in_bucket} changed in the bucket, {would}re-uploaded")
        if self.deferred:
            left = "would not be uploaded" if self.dry_run else "not uploaded"
            parts.append(f"{self.deferred} still changing, {left} this time (the next run will)")
        if self.excluded:
            parts.append(f"{self.excluded} excluded")
        if self.excluded_recorded:
            count = self.excluded_recorded
            parts.append(f"{count} recorded {'photo' if count == 1 else 'photos'} now excluded")
        if self.pruned:
            parts.append(f"{self.pruned} {would}pruned from bucket")
        if self.excluded_pruned:
            parts.append(f"{self.excluded_pruned} excluded {would}pruned from bucket")
        if self.untracked_pruned:
            count = self.untracked_pruned
            noun = "object" if count == 1 else "objects"
            parts.append(f"{count} untracked {noun} {would}removed from bucket")
        if self.rendered:
            parts.append(f"{self.rendered} rendered")
        if self.not_rendered:
            parts.append(f"{self.not_rendered} without rendition")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return self._ending(f"{self.album}: " + ", ".join(parts), self.bytes_uploaded)

    def as_dict(self) -> dict:
        return {
            **RunOutcome.as_dict(self),
            "still_changing": list(self.still_changing),
            "rendition_problems": [asdict(problem) for problem in self.rendition_problems],
        }


@dataclass(frozen=True)
class VerifyResult(VerifyCounts, RunOutcome):
    """The counts (see albums.counts.VerifyCounts) and the outcome of one verification."""

    COUNTS = VerifyCounts
    problems: tuple[FileFailure, ...] = ()  # what was found wrong (repaired or not), by photo

    def as_dict(self) -> dict:
        return {**RunOutcome.as_dict(self), "problems": [asdict(p) for p in self.problems]}

    def summary(self) -> str:
        parts = [
            ngettext("%(n)d photo checked", "%(n)d photos checked", self.checked)
            % {"n": self.checked},
            f"{self.matched} matched",
        ]
        for name, label, _, unit in VerifyCounts.specs():
            if name not in {"checked", "matched"} and unit == "photos" and getattr(self, name):
                parts.append(f"{getattr(self, name)} {label}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return self._ending(f"{self.album}: " + ", ".join(parts), self.bytes_read)


@dataclass(frozen=True)
class RestoreResult(RestoreCounts, RunOutcome):
    """The counts (see albums.counts.RestoreCounts) and the outcome of one restore."""

    COUNTS = RestoreCounts
    problems: tuple[FileFailure, ...] = ()  # photos not brought back, and why

    def as_dict(self) -> dict:
        return {**RunOutcome.as_dict(self), "problems": [asdict(p) for p in self.problems]}

    def summary(self) -> str:
        would = "would be " if self.dry_run else ""
        parts = [
            ngettext("%(n)d photo", "%(n)d photos", self.recorded) % {"n": self.recorded},
            f"{self.restored} {would}restored",
            f"{self.already_present} already present",
        ]
        for name, label, _, unit in RestoreCounts.specs():
            shown = {"recorded", "restored", "already_present"}
            if name not in shown and unit == "photos" and getattr(self, name):
                parts.append(f"{getattr(self, name)} {label}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return self._ending(f"{self.album}: " + ", ".join(parts), self.bytes_downloaded)


@dataclass(frozen=True, slots=True)
class AlbumOutcome:
    """One album of `sync_albums`: its result, and the error that stopped it, if any."""

    album: Album
    result: SyncResult | None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None and self.result.ok


def _human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
