"""The running count of a sync: what it did so far and how many photos it has finished."""

from collections.abc import Callable

from ..counts import SyncCounts

ProgressCallback = Callable[[int, int], None]


class Tally:
    """The counts of albums.counts.SyncCounts, kept while the run goes, and its progress.

    Every photo the run finds is settled exactly once (`settle`): counted under what happened
    to it, or, for a failure, counted by the run's failures. `done` moves only there.
    """

    def __init__(self, *, progress: ProgressCallback | None = None):
        self._counts = dict.fromkeys(SyncCounts.names(), 0)
        self._progress = progress
        self.done = 0
        self.total = 0

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def add(self, name: str, amount: int = 1) -> None:
        """Count `amount` more under `name`; an unknown name is a KeyError, never a new count."""
        self._counts[name] += amount

    def settle(self, name: str | None = None) -> None:
        """One photo is finished, counted under `name` (None: a failure, counted elsewhere)."""
        if name is not None:
            self.add(name)
        self.done += 1

    def found(self) -> None:
        """One more photo file found on disk."""
        self.add("scanned")
        self.total = max(self.total, self._counts["scanned"])

    def report(self) -> None:
        if self._progress is not None:
            self._progress(self.done, self.total)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)
