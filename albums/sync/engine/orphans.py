"""Photos gone from disk: forgotten, waited for (a new file may turn out to be them), or,
when pruning, deleted from the bucket; recorded photos an exclusion now covers: kept, or
with --prune-excluded deleted from the bucket; untracked objects (neither a file nor a
record), deleted when pruning; never more deletions than the run's limit."""

import logging
from dataclasses import dataclass, field

from ...exceptions import AlbumFolderEmpty, TooManyDeletions
from ...models import Album
from ...renditions import RenditionSpec, parse_signature
from ..bucket.bucket_pool import BucketPool
from ..library.exclusions import Exclusions
from ..library.merge import KnownPhoto, Vanished
from ..outcome.tally import Tally
from ..records.photos import RunRecords, contents_recorded
from .failures import Failures
from .moves import Moves

TOO_MANY_DELETIONS = (
    "Pruning album {album!r} would delete {count} objects from the bucket, more than the "
    "limit of {limit}; nothing was deleted. If that many photos really are gone, run again "
    "with --max-delete {count}."
)
NO_PHOTO_BUT_OBJECTS = (
    "The folder of album {album!r} holds no photos, but the bucket holds {count} objects "
    "under its prefix; refusing to treat them all as untracked. Nothing was deleted. Is the "
    "disk mounted?"
)


@dataclass(frozen=True, slots=True)
class Untracked:
    """An object under the album's prefix with neither a file nor a record: left by a run
    without --prune (its photo deleted from disk since), or by a crash between upload and
    record of a file deleted since."""

    path: str
    key: str


@dataclass
class Orphans:
    """The orphans of one run, and what becomes of them.

    Without pruning, a photo gone from disk is forgotten as the pass finds it; with
    `kept_vanished` (see albums.sync.service.sync_albums) one known by its content is only
    noted, and forgotten once every album of the run is synced. When pruning, orphans are
    kept (at most `max_delete` + 1 deletions: one more stops the run) and deleted at the end,
    with the old objects of the photos this run moved. A recorded photo an exclusion now
    covers keeps its record, marked excluded, and its bucket copy, unless `prune_excluded`.

    In a run over several albums, an orphan known by its content may have moved to an album
    the run has not reached yet, which copies it from its object: such a prune waits for
    the other albums (see albums.sync.many), and leaves out what one of them moved.
    """

    album: Album
    prune: bool
    prune_excluded: bool
    max_delete: int
    records: RunRecords
    tally: Tally
    moves: Moves
    log: logging.Logger | logging.LoggerAdapter
    kept_vanished: list[int] | None = None
    renditions: RenditionSpec | None = None  # the run's, whose keys a prune also deletes
    exclusions: Exclusions | None = None  # what the walk leaves out: never untracked
    # Old keys of photos the run moved (in a run over several albums, shared by them all):
    # another album's prune deletes them, so they are not untracked here.
    moved_keys: set[str] = field(default_factory=set)

    def __post_init__(self):
        self.to_prune: list[tuple[KnownPhoto | Vanished, bool]] = []  # (photo, excluded)
        self.untracked: list[Untracked] = []  # found when pruning, deleted with the rest
        self.pruned: list[KnownPhoto | Vanished] = []  # photos deleted, whose content went
        self.passed = False  # the move candidates left over are judged (after_the_pass)

    def found(self, photo: KnownPhoto, *, dry_run: bool) -> None:
        """A recorded photo the walk did not find (and no unreadable folder may hide)."""
        self.tally.add("orphaned")
        if dry_run or self.moves.is_candidate(photo.id):
            return  # a new file may turn out to be it: decided once the pass is over
        self._gone(photo)

    def excluded(self, photo: KnownPhoto, *, dry_run: bool) -> None:
        """A recorded photo an exclusion now covers: neither synced nor taken as gone."""
        self.tally.add("excluded_recorded")
        if dry_run:
            return
        if self.prune_excluded:
            self._set_aside(photo, excluded=True)
        else:
            self.records.excluded(photo.id)

    def untracked_object(self, path: str, key: str) -> None:
        """An object the listing holds where there is neither a file nor a record (nor a
        folder the walk could not read, which may hide the file). When pruning it is set
        aside for deletion, unless an exclusion covers its path: what is left out of the
        sync is never taken for untracked."""
        if not self.prune or (self.exclusions and self.exclusions.covers(path)):
            return
        if len(self.untracked) <= self.max_delete:  # one more is enough to stop the run
            self.untracked.append(Untracked(path, key))

    def deletions(self, *, orphaned: int | None = None, excluded: int | None = None) -> int:
        """How many bucket objects the run deletes: its orphans and untracked objects when
        pruning, its recorded photos now excluded when pruning those (the counts so far
        unless given)."""
        orphaned = self.tally["orphaned"] if orphaned is None else orphaned
        excluded = self.tally["excluded_recorded"] if excluded is None else excluded
        return orphaned * self.prune + excluded * self.prune_excluded + len(self.untracked)

    def after_the_pass(self) -> None:
        """This album's move candidates no new file turned out to be are gone for good
        (once, however often it is called)."""
        if self.passed:
            return
        self.passed = True
        for photo in self.moves.left_here():
            self._gone(photo)

    def may_have_moved(self) -> bool:
        """Whether a photo set aside for pruning is known by its content: another album
        may then turn out to hold it, and copy it from the object a prune would delete."""
        return any(photo.md5 for photo, excluded in self.to_prune if not excluded)

    def check_limit(self, count: int) -> None:
        if count > self.max_delete:
            raise TooManyDeletions(
                TOO_MANY_DELETIONS.format(album=self.album.name, count=count, limit=self.max_delete)
            )

    def count_dry_run(self) -> None:
        """What a real run would remove and prune."""
        orphaned = self.tally["orphaned"]
        moved_here = sum(photo.album_id == self.album.pk for photo in self.moves.taken())
        self._check_untracked()
        self.check_limit(self.deletions())
        self.tally.add("removed", orphaned - moved_here)
        if self.prune:
            self.tally.add("pruned", orphaned)
            for item in self.untracked:
                self.log.info("Deleted from S3, untracked: %s", item.path)
            self.tally.add("untracked_pruned", len(self.untracked))
        if self.prune_excluded:
            self.tally.add("excluded_pruned", self.tally["excluded_recorded"])

    def prune_all(
        self,
        bucket: BucketPool,
        failures: Failures,
        errors: tuple,
        *,
        moved_away: frozenset[int] | set[int] = frozenset(),
    ) -> None:
        """Delete the bucket copies set aside: photos gone from disk, when pruning (and forget
        them), with the old objects of photos this run moved (their records followed them);
        recorded photos now excluded, when pruning those (and forget them). As many keys a
        request as the bucket takes (BucketPool.deletes); a key the bucket refuses is that
        photo's failure, and its record stays for the next prune. `moved_away` are the
        photos another album of the run moved: that album deletes their old objects."""
        if moved_away:
            self._moved_away(moved_away)
        moved = [(photo, False) for photo in self.moves.taken()] if self.prune else []
        self._check_untracked()
        if not (self.to_prune or moved or self.untracked):
            return
        elsewhere = sum(photo.album_id != self.album.pk for photo, _ in moved)
        self.check_limit(self.deletions() + elsewhere)
        moved_ids = {photo.id for photo, _ in moved}
        untracked = [(item, False) for item in self.untracked]
        doomed = {item[0].key: item for item in [*self.to_prune, *moved, *untracked]}
        removed: list[str] = []  # untracked objects deleted
        for keys, future in bucket.deletes(list(doomed)):
            try:
                refused = future.result()
            except errors as exc:  # the request as a whole: each of its keys failed
                failures.judge_each([doomed[key][0].path for key in keys], exc, bucket)
                continue
            for key in keys:
                photo, excluded = doomed[key]
                if key in refused:  # its record stays: the next prune tries again
                    failures.judge(photo.path, refused[key], bucket)
                elif isinstance(photo, Untracked):
                    self.log.info("Deleted from S3, untracked: %s", photo.path)
                    removed.append(key)
                else:
                    self._deleted(photo, excluded=excluded, moved=photo.id in moved_ids)
        self.tally.add("untracked_pruned", len(removed))
        self.records.untracked_removed(removed)
        self._prune_renditions(bucket, failures, errors)

    def _check_untracked(self) -> None:
        """Leave out what another album of the run moved away (its prune deletes those),
        and refuse to take a whole album's objects for untracked when its folder holds no
        photo at all (an empty mount point): nothing is deleted then."""
        self.untracked = [item for item in self.untracked if item.key not in self.moved_keys]
        if self.untracked and not self.tally.found_count:
            raise AlbumFolderEmpty(
                NO_PHOTO_BUT_OBJECTS.format(album=self.album.name, count=len(self.untracked))
            )

    def _prune_renditions(self, bucket: BucketPool, failures: Failures, errors: tuple) -> None:
        """Delete the renditions of the contents this prune removed that no recorded photo
        of any album has any more (a photo deleted here may live on in another album, or
        under another name). Those of the run's settings, and those its record named."""
        gone = {photo.md5: photo for photo in self.pruned if photo.md5}
        if not gone:
            return
        self.records.flush()  # what the run forgot, and what it recorded, counts from here
        doomed: dict[str, str] = {}  # rendition key -> the content's MD5
        for md5 in set(gone) - contents_recorded(list(gone)):
            specs = {self.renditions, parse_signature(getattr(gone[md5], "renditions", ""))}
            for spec in filter(None, specs):
                doomed.update((key, md5) for key in spec.keys(md5))
        failed: set[str] = set()
        for keys, future in bucket.deletes(list(doomed)):
            try:
                refused = future.result()
            except errors as exc:
                failures.judge_each([gone[doomed[key]].path for key in keys], exc, bucket)
                failed.update(doomed[key] for key in keys)
                continue
            for key in refused:
                failures.judge(gone[doomed[key]].path, refused[key], bucket)
                failed.add(doomed[key])
        self.tally.add("renditions_pruned", len(set(doomed.values()) - failed))

    def _moved_away(self, moved_away: frozenset[int] | set[int]) -> None:
        """Orphans another album of the run moved: their records are that album's now."""
        kept = []
        for photo, excluded in self.to_prune:
            if excluded or photo.id not in moved_away:
                kept.append((photo, excluded))
            else:
                self.log.info("Photo moved to another album: %s", photo.path)
                self.tally.add("removed")
        self.to_prune = kept

    def _deleted(self, photo: KnownPhoto | Vanished, *, excluded: bool, moved: bool) -> None:
        if excluded:
            self.log.info("Deleted from S3, excluded: %s", photo.path)
            self.tally.add("excluded_pruned")
            self.records.forgotten(photo.id)
            return
        self.log.info("Deleted from S3, gone from disk: %s", photo.path)
        self.tally.add("pruned")
        if not moved:  # a moved photo's record followed it to its new key
            self._forget(photo)
            self.pruned.append(photo)

    def _gone(self, photo: KnownPhoto | Vanished) -> None:
        if self.prune:
            self._set_aside(photo, excluded=False)
            return
        if self.kept_vanished is not None and photo.md5:
            self.log.info("Photo gone from disk, forgetting it: %s", photo.path)
            self.tally.add("removed")
            self.kept_vanished.append(photo.id)  # forgotten once every album is synced
            return
        self._forget(photo, object_kept=True)

    def _set_aside(self, photo: KnownPhoto | Vanished, *, excluded: bool) -> None:
        if len(self.to_prune) <= self.max_delete:  # one more is enough to stop the run
            self.to_prune.append((photo, excluded))

    def _forget(self, photo: KnownPhoto | Vanished, *, object_kept: bool = False) -> None:
        self.log.info("Photo gone from disk, forgetting it: %s", photo.path)
        self.records.forgotten(photo.id, object_kept=object_kept)
        self.tally.add("removed")
