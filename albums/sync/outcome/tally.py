"""The running count of a run: what it did so far and how many photos it has finished."""

from collections.abc import Callable

from ...counts import Counts, SyncCounts

ProgressCallback = Callable[[int, int], None]


class Tally:
    """The counts of a counts class (albums.counts), kept while the run goes, and its progress.

    Every photo the run finds is settled exactly once (`settle`): counted under what happened
    to it, or, for a failure, counted by the run's failures. `done` moves only there.
    """

    def __init__(
        self,
        *,
        counts: type[Counts] = SyncCounts,
        found_as: str = "scanned",
        progress: ProgressCallback | None = None,
    ):
        self._counts = dict.fromkeys(counts.names(), 0)
        self._found_as = found_as
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
        """One more photo to handle (counted under `found_as`)."""
        self.add(self._found_as)
        self.total = max(self.total, self._counts[self._found_as])

    @property
    def found_count(self) -> int:
        return self._counts[self._found_as]

    def report(self) -> None:
        if self._progress is not None:
            self._progress(self.done, self.total)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)
