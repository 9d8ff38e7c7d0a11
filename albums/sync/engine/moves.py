"""Photos moved or renamed: a new file whose content is that of a photo gone from disk.

Such a file is copied inside the bucket instead of uploaded, and the photo's record follows
it (same id, same upload time and metadata). Candidates are found by size, which costs
nothing, and confirmed by MD5, which costs a read of the new file only (albums.sync.transfer
reads it anyway to upload it): this album's photos gone from disk, which the census found,
photos of other albums (in the same bucket) whose files are gone too, and photos an earlier
run of any album forgot while their objects stayed (DepartedPhoto, ALBUMS_MOVE_WINDOW_DAYS):
a move found across two runs. Such a one has no record to follow the file: the new file
gets its own, and the old object goes with the next prune of the album it left.
"""

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import replace

from ... import conf
from ...models import Album, Photo
from ..bucket.transfer import Job
from ..library.merge import Vanished
from ..records.photos import anything_departed, departed_candidates

CHUNK = 2000  # new files looked up at once in other albums: one query per chunk


class Moves:
    """The move candidates of one run, by size, and which of them a new file has taken."""

    @classmethod
    def for_run(
        cls,
        album: Album,
        vanished: list[Vanished],
        *,
        new_photos: int,
        elsewhere: bool | None,
        lease_token: str = "",
        taken_keys: set[str] | None = None,
    ) -> "Moves":
        """The candidates of a run that found `new_photos` and, gone from disk, `vanished`.
        With no new photo there is nothing to move to (and no query). `elsewhere`, when
        known already, is whether other albums have photos known by content; `lease_token`
        the run's, whose albums (a run over several) are as free to move from as idle ones;
        `taken_keys` gathers the old keys of the photos moved (shared by a run's albums)."""
        if not new_photos:
            return cls(album, [], look_elsewhere=False, taken_keys=taken_keys)
        if elsewhere is None:
            elsewhere = (
                Photo.objects.exclude(album=album).exclude(md5="").exists() or anything_departed()
            )
        return cls(
            album,
            vanished,
            look_elsewhere=elsewhere,
            lease_token=lease_token,
            taken_keys=taken_keys,
        )

    def __init__(
        self,
        album: Album,
        vanished: Iterable[Vanished],
        *,
        look_elsewhere: bool,
        lease_token: str = "",
        taken_keys: set[str] | None = None,
    ):
        self.album = album
        self.taken_keys = set() if taken_keys is None else taken_keys
        self.look_elsewhere = look_elsewhere  # other albums have photos known by content
        self.lease_token = lease_token
        self._here: dict[int, list[Vanished]] = defaultdict(list)
        for photo in vanished:
            self._here[photo.size].append(photo)
        self._here_ids = {photo.id for photos in self._here.values() for photo in photos}
        self._taken: dict[tuple[bool, int], Vanished] = {}  # by (departed, id)

    def is_candidate(self, photo_id: int) -> bool:
        """Whether this album's photo, gone from disk, waits for a new file to move to."""
        return photo_id in self._here_ids

    @property
    def possible(self) -> bool:
        return bool(self._here) or self.look_elsewhere

    def attach(self, jobs: Iterable[Job]) -> Iterator[Job]:
        """The jobs, each new photo with the candidates of its size. New photos are held a
        chunk at a time for the lookup in other albums; with no candidate anywhere, the
        jobs pass straight through."""
        if not self.possible:
            yield from jobs
            return
        waiting: list[Job] = []
        for job in jobs:
            if job.known is not None:
                yield job
                continue
            waiting.append(job)
            if len(waiting) >= CHUNK:
                yield from self._with_candidates(waiting)
                waiting = []
        yield from self._with_candidates(waiting)

    def _with_candidates(self, jobs: list[Job]) -> Iterator[Job]:
        found = self.candidates(job.local.size for job in jobs)
        for job in jobs:
            candidates = found.get(job.local.size, ())
            yield replace(job, candidates=candidates) if candidates else job

    def source_of(self, job: Job, md5: str, copied_from: Vanished | None) -> Vanished | None:
        """The photo a new file turned out to be (copied from it, or, after a killed run,
        found already copied), claimed for it; None if none or already taken."""
        same = [c for c in job.candidates if c.md5 == md5 and (c.departed, c.id) not in self._taken]
        if not same:
            return None
        # The one copied from, if free; any other of the same content holds the same bytes.
        source = copied_from if copied_from in same else same[0]
        self._taken[source.departed, source.id] = source
        if not source.departed:
            self.taken_keys.add(source.key)
        return source

    def candidates(self, sizes: Iterable[int]) -> dict[int, tuple[Vanished, ...]]:
        """The candidates for new files of these sizes, by size: one query for the chunk,
        only when other albums have photos known by content."""
        sizes = set(sizes)
        found = {size: list(self._here.get(size, ())) for size in sizes}
        if self.look_elsewhere and sizes:
            for photo in _gone_elsewhere(self.album, sizes, self.lease_token):
                found[photo.size].append(photo)
            for row in departed_candidates(sizes):
                found[row[4]].append(Vanished(*row, departed=True))
        return {size: tuple(photos) for size, photos in found.items() if photos}

    def taken(self) -> list[Vanished]:
        """The recorded photos moved by this run (their records followed them); not those
        an earlier run forgot, whose objects are left to their album's prune."""
        return [photo for photo in self._taken.values() if not photo.departed]

    def left_here(self) -> list[Vanished]:
        """This album's candidates no new file turned out to be: gone from disk for good."""
        return [
            photo
            for photos in self._here.values()
            for photo in photos
            if (False, photo.id) not in self._taken
        ]


def _gone_elsewhere(album: Album, sizes: set[int], lease_token: str) -> Iterable[Vanished]:
    """Photos of other albums with one of `sizes` whose files are gone from disk.

    Only albums not being synced right now (a photo must not be moved from under a running
    sync), or synced by this very run (`lease_token`), and only where the album's folder is
    there: an unmounted disk is never taken as every photo moved away.
    """
    albums = Album.objects.free_to_sync()
    if lease_token:
        albums = albums | Album.objects.filter(sync_lease_token=lease_token)
    rows = (
        Photo.objects.filter(size__in=sizes, album__in=albums)
        .exclude(album=album)
        .exclude(md5="")
        .values_list("id", "album_id", "album__folder", "path", "key", "size", "md5")
    )
    root = conf.photos_root()
    for photo_id, album_id, folder, path, key, size, md5 in rows:
        if os.path.isdir(root / folder) and _gone(root / folder / path):
            yield Vanished(photo_id, album_id, path, key, size, md5)


def _gone(path) -> bool:
    """Whether nothing is at `path` (a folder that cannot be read hides a file, not removes it)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False
