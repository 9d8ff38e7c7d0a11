"""Photos written moments ago: watched until they stop changing, then synced like the rest.

A file modified within ALBUMS_SETTLE_SECONDS may be a copy still under way, or simply new
(`cp`, a phone import and an editor's save all give it the time of the moment). Rather than
leave it for the next run, the pass sets it aside and goes on; once a second look, at least
STABLE_SECONDS after the first, finds the same size and modification time, it is synced.
A file still changing after ALBUMS_SETTLE_SECONDS of watching is left for the next run. The
upload itself still compares the file before and after (albums.sync.transfer), so a writer
that starts again mid-upload never gets its half-written bytes recorded.
"""

import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum

from ..bucket.transfer import Job

STABLE_SECONDS = 1.0  # between two looks that must agree


class Look(Enum):
    STABLE = "stable"  # unchanged since the last look: sync it
    CHANGING = "changing"  # still changing when the watch ran out: next run
    GONE = "gone"  # could not be looked at again (removed, unreadable)


@dataclass(slots=True)
class _Watched:
    job: Job
    since: float  # when the watch began (monotonic)
    looked: float  # when it was last looked at (monotonic)


class Settling:
    """The photos of one pass set aside because they were modified moments ago."""

    def __init__(self, settle_seconds: int):
        self.settle_ns = settle_seconds * 1_000_000_000
        self.longest = float(settle_seconds)  # the most a photo is watched
        self._watched: deque[_Watched] = deque()  # in the order of their next look

    def __len__(self) -> int:
        return len(self._watched)

    def is_fresh(self, mtime_ns: int) -> bool:
        """Modified within ALBUMS_SETTLE_SECONDS (a time in the future is not fresh)."""
        return bool(self.settle_ns) and 0 <= time.time_ns() - mtime_ns < self.settle_ns

    def watch(self, job: Job) -> None:
        """Set `job` aside; its file was looked at (stat) by the walk just now."""
        now = time.monotonic()
        self._watched.append(_Watched(job, since=now, looked=now))

    def next_look_in(self) -> float:
        """Seconds until the next photo is due for a look (0 if one is due now)."""
        if not self._watched:
            return 0.0
        return max(0.0, self._watched[0].looked + STABLE_SECONDS - time.monotonic())

    def looked_again(self) -> Iterator[tuple[Look, Job, OSError | None]]:
        """Look again at every photo due for it; yield those whose watch is over: stable
        (the job, with the file as it is now), still changing, or gone."""
        now = time.monotonic()
        while self._watched and self._watched[0].looked + STABLE_SECONDS <= now:
            watched = self._watched.popleft()
            local = watched.job.local
            try:
                stat = os.stat(local.abspath)
            except OSError as exc:
                yield Look.GONE, watched.job, exc
                continue
            if (stat.st_size, stat.st_mtime_ns) == (local.size, local.mtime_ns):
                yield Look.STABLE, watched.job, None
            elif now - watched.since >= self.longest:
                yield Look.CHANGING, watched.job, None
            else:
                changed = replace(local, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
                watched.job, watched.looked = replace(watched.job, local=changed), now
                self._watched.append(watched)
