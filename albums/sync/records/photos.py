"""What a run reads from and writes to the database about its album's photos.

The only code of a run that touches `Photo`: the recorded photos, read a page at a time in
path order, and every change the run decides (new records, updated ones, photos verified,
forgotten or marked excluded) with the run's progress row, written in bulk from the run's own
thread.
"""

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.db import connections, router, transaction
from django.utils import timezone

from ... import conf
from ...models import Album, DepartedPhoto, Photo, SyncRun
from ..bucket.transfer import Sent, Transferred
from ..library.merge import KnownPhoto
from .rows import update_each

DB_CHUNK = 2000  # rows per bulk write: a fixed number of queries per chunk
FLUSH_SECONDS = 10.0  # record finished uploads at least this often, so a crash loses little
READ_CHUNK = 5000  # photo rows per database read
ALBUMS_AHEAD = 100  # albums whose rows a run over several reads in one query
UPDATED_FIELDS = [
    "key", "size", "mtime_ns", "content_type", "width", "height", "taken_at",
    "uploaded_at", "verified_at", "md5", "etag", "excluded_at", "renditions", "rendition_problem",
]  # fmt: skip
# A photo whose renditions only were made: what that tells of it.
RENDERED_FIELDS = ["width", "height", "md5", "verified_at", "renditions", "rendition_problem"]
# A moved photo keeps its record: same id, upload time and metadata, at its new place.
MOVED_FIELDS = [
    "album", "path", "key", "size", "mtime_ns", "verified_at", "md5", "etag", "excluded_at",
]  # fmt: skip

Progress = Callable[[], dict[str, int]]  # the run row's progress fields, as they stand
PROGRESS_FIELDS = ["files_done", "files_total", "failed"]


# KnownPhoto's fields, in its order.
KNOWN_FIELDS = (
    "path", "id", "size", "mtime_ns", "md5", "etag", "key", "renditions", "rendition_problem",
)  # fmt: skip


def recorded_photos(album: Album, *, after: str | None = None) -> Iterator[tuple[str, KnownPhoto]]:
    """The album's photos as recorded, as (path, KnownPhoto) in path order, read a page of
    rows at a time; those after the path `after` when given.

    Pages start after the last path read (keyset pagination) rather than reading one
    long cursor, because the run writes the same table between pages. A page never
    returns a row the run created: rows are created only for paths the merge has
    already passed, and the next page is read as soon as the merge passes the last row
    of a page. The path column sorts in binary order (see migration 0005).
    """
    rows = Photo.objects.filter(album=album).order_by("path").values_list(*KNOWN_FIELDS)
    while True:
        page = list((rows if after is None else rows.filter(path__gt=after))[:READ_CHUNK])
        for row in page:
            yield row[0], KnownPhoto(*row)
        if len(page) < READ_CHUNK:
            return
        after = page[-1][0]


def contents_recorded(md5s: list[str]) -> set[str]:
    """Which of these contents (MD5s) some photo of any album is recorded with."""
    found: set[str] = set()
    for start in range(0, len(md5s), DB_CHUNK):
        chunk = md5s[start : start + DB_CHUNK]
        found.update(Photo.objects.filter(md5__in=chunk).values_list("md5", flat=True))
    return found


def listing_boundaries(albums: list[Album], *, every: int) -> list[str]:
    """Where the bucket's listing of these albums (under the albums' common prefix, in the
    order of their keys) can be cut into ranges of at most `every` recorded photos, each
    ending on a recorded photo's key: names relative to that prefix, in increasing order.
    Albums share a range while together they hold no more than `every` photos; the range
    ends on the last photo of the album before the one that would overflow it, and a large
    album is also cut at every `every`-th of its paths. A range that ends on a key is one
    request when it holds a page or less, where one that ended between two albums would
    need a second to find its end after a full page. One query: a row per album, and one
    per `every` photos (an index-only scan of the album's (album, path) index on
    PostgreSQL)."""
    if not albums:
        return []
    slugs = {album.pk: album.slug for album in albums}
    photo = Photo._meta
    connection = connections[router.db_for_read(Photo)]
    quote = connection.ops.quote_name
    album_id, path = quote(photo.get_field("album").column), quote(photo.get_field("path").column)
    # Names from the model's own metadata, quoted; the ids and `every` are parameters.
    sql = (
        f"SELECT {album_id}, {path}, rn, n FROM ("  # noqa: S608
        f"SELECT {album_id}, {path}, "
        f"ROW_NUMBER() OVER (PARTITION BY {album_id} ORDER BY {path}) AS rn, "
        f"COUNT(*) OVER (PARTITION BY {album_id}) AS n "
        f"FROM {quote(photo.db_table)} WHERE {album_id} IN ({', '.join(['%s'] * len(slugs))})"
        f") ranked WHERE rn = n OR rn %% %s = 0"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*slugs, every])
        rows = cursor.fetchall()
    counts: dict[int, int] = {}
    last: dict[int, str] = {}  # each album's last recorded path (binary order: migration 0005)
    cuts: dict[int, list[str]] = {}
    for row_album, row_path, number, count in rows:
        counts[row_album] = count
        if number == count:
            last[row_album] = row_path
        elif number % every == 0:
            cuts.setdefault(row_album, []).append(row_path)
    boundaries: list[str] = []
    since_cut = 0
    before = ""  # the last key of the album before this one
    for pk in sorted(counts, key=lambda pk: f"{slugs[pk]}/"):
        if since_cut and since_cut + counts[pk] > every:
            boundaries.append(before)
            since_cut = 0
        paths = cuts.get(pk, [])
        boundaries += [f"{slugs[pk]}/{cut}" for cut in paths]
        since_cut = counts[pk] - len(paths) * every if paths else since_cut + counts[pk]
        before = f"{slugs[pk]}/{last[pk]}"
    return boundaries


def forget_vanished(photo_ids_by_album: dict[int, list[int]], *, remember: bool = True) -> None:
    """Delete the records of photos gone from disk, by album, except those another album's
    run moved meanwhile: a moved record belongs to its new album now.

    `remember` (their objects stay in the bucket: the run did not prune) keeps what
    identifies the content of each known by its MD5 as a DepartedPhoto, for
    ALBUMS_MOVE_WINDOW_DAYS (see albums.sync.engine.moves); those of these albums older
    than that are dropped here, so that no run pays for it but one that forgets photos."""
    window = conf.move_window_days()
    photo_ids_by_album = {album: ids for album, ids in photo_ids_by_album.items() if ids}
    for album_id, photo_ids in photo_ids_by_album.items():
        for start in range(0, len(photo_ids), DB_CHUNK):
            gone = Photo.objects.filter(
                album_id=album_id, pk__in=photo_ids[start : start + DB_CHUNK]
            )
            if remember and window:
                DepartedPhoto.objects.bulk_create(
                    DepartedPhoto(album_id=album_id, **row)
                    for row in gone.exclude(md5="").values("path", "key", "size", "md5", "etag")
                )
            gone.delete()
    if remember and photo_ids_by_album:
        DepartedPhoto.objects.filter(
            album_id__in=list(photo_ids_by_album),
            departed_at__lt=timezone.now() - timedelta(days=window),
        ).delete()


def departed_candidates(sizes: set[int], *, exclude_album: int | None = None):
    """Photos forgotten within ALBUMS_MOVE_WINDOW_DAYS whose size is one of `sizes`, as
    (id, album id, path, key, size, md5) rows."""
    window = conf.move_window_days()
    if not window:
        return []
    return DepartedPhoto.objects.filter(
        size__in=sizes, departed_at__gte=timezone.now() - timedelta(days=window)
    ).values_list("id", "album_id", "path", "key", "size", "md5")


def anything_departed() -> bool:
    """Whether some photo forgotten by an earlier run may still be copied from its object."""
    return conf.move_window_days() > 0 and DepartedPhoto.objects.exists()


class ReadAhead:
    """The recorded photos of the albums of a run over several, read a page at a time for
    many albums in one query, rather than with a query per album (albums.sync.many).

    When the run reaches an album whose rows are not read yet, and none read ahead still
    waits for its album, one query reads a page of the rows of the next ALBUMS_AHEAD
    albums, in album id order: the albums it holds whole are ready, the one it stops
    inside gets the rows it holds and reads the rest itself, and an album it does not
    reach reads its own (as a run of one album does). So no more than a page is held ahead.

    The rows are read before their album's turn, as they would be at its turn: the run
    holds every album's lease, and records another album of the run moves away meanwhile
    are kept by their new album (see RunRecords.forgotten), as when the move is not
    written yet.
    """

    def __init__(self, albums: list[Album]):
        self.albums = albums  # in the run's order
        self.position = {album.pk: index for index, album in enumerate(albums)}
        self.ready: dict[int, RecordedPhotos] = {}

    def recorded(self, album: Album) -> "RecordedPhotos":
        """The album's recorded photos, read ahead if they were (the run's albums are asked
        for in the run's order)."""
        here = self.position[album.pk]
        found = self.ready.pop(album.pk, None)
        if found is None:
            # Albums passed by (stopped before their pass) no longer wait for their turn.
            self.ready = {pk: rows for pk, rows in self.ready.items() if self.position[pk] > here}
            if not self.ready:
                self.ready = self._page(self.albums[here : here + ALBUMS_AHEAD])
                found = self.ready.pop(album.pk, None)
        return found or RecordedPhotos(album)

    @staticmethod
    def _page(albums: list[Album]) -> dict[int, "RecordedPhotos"]:
        rows = list(
            Photo.objects.filter(album__in=[album.pk for album in albums])
            .order_by("album_id", "path")
            .values_list("album_id", *KNOWN_FIELDS)[:READ_CHUNK]
        )
        by_album: dict[int, list] = {}
        for album_id, *row in rows:
            by_album.setdefault(album_id, []).append((row[0], KnownPhoto(*row)))
        # A full page may stop inside an album: that one is not whole, those after it unread.
        last = rows[-1][0] if len(rows) == READ_CHUNK else None
        return {
            album.pk: RecordedPhotos(
                album, first=by_album.get(album.pk, []), complete=album.pk != last
            )
            for album in albums
            if last is None or album.pk <= last
        }


class RecordedPhotos:
    """`recorded_photos(album)` for both passes of a run (the census, then the main pass):
    an album that fits in one page is read once, the second pass replaying it. The rows do
    not change in between: the run holds the album's lease.

    `first` holds its first rows, read already (ReadAhead), all of them if `complete`."""

    def __init__(self, album: Album, *, first: list | None = None, complete: bool = False):
        self.album = album
        self._rows: list | None = first if complete else None
        self._first = first

    def __iter__(self) -> Iterator[tuple[str, KnownPhoto]]:
        if self._rows is not None:
            yield from self._rows
            return
        kept: list | None = []
        for row in self._read():
            if kept is not None:
                kept.append(row)
                if len(kept) >= READ_CHUNK:
                    kept = None  # more than a page: read again when asked again
            yield row
        self._rows = kept

    def _read(self) -> Iterator[tuple[str, KnownPhoto]]:
        if not self._first:
            yield from recorded_photos(self.album)
            return
        yield from self._first
        yield from recorded_photos(self.album, after=self._first[-1][0])


class RecordWriter:
    """The changes runs have decided and not yet written, and the writing of them.

    Buffered and written a chunk at a time (DB_CHUNK rows, or every FLUSH_SECONDS) in one
    short transaction, with the progress of the runs it writes for; a few queries per
    chunk, never one per photo, and never one per album when a run over several albums
    shares one writer (albums.sync.many).
    """

    def __init__(self):
        self.creates: list[Photo] = []
        self.updates: list[Photo] = []
        self.moves: list[Photo] = []
        self.identified: list[Photo] = []
        self.rendered: list[Photo] = []
        self.verified: list[int] = []
        self.forgotten: list[tuple[int, int]] = []  # (album id, photo id)
        self.departed: list[tuple[int, int]] = []  # the same, whose object stays
        self.claimed: list[int] = []  # DepartedPhoto ids a move copied from
        self.untracked: list[str] = []  # keys of untracked objects a prune deleted
        self.excluded: list[int] = []
        self._departed_known: bool | None = None  # whether any DepartedPhoto row exists
        self.progress: dict[int, Progress] = {}  # run id -> its progress fields, as they stand
        self._last_flush = time.monotonic()

    def flush_if_full(self) -> None:
        rows = (self.creates, self.updates, self.moves, self.identified, self.rendered)
        ids = (self.verified, self.forgotten, self.departed, self.excluded, self.untracked)
        if sum(map(len, rows)) >= DB_CHUNK or sum(map(len, ids)) >= DB_CHUNK * 2:
            self.flush()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write what the runs have decided and their progress, in one short transaction."""
        self._last_flush = time.monotonic()
        creates, updates, moves = self.creates, self.updates, self.moves
        verified, forgotten = self.verified, self.forgotten
        identified, excluded, rendered = self.identified, self.excluded, self.rendered
        departed, claimed, untracked = self.departed, self.claimed, self.untracked
        self.creates, self.updates, self.moves, self.identified = [], [], [], []
        self.rendered = []
        self.verified, self.forgotten, self.excluded = [], [], []
        self.departed, self.claimed, self.untracked = [], [], []
        progress = [SyncRun(pk=run_id, **fields()) for run_id, fields in self.progress.items()]
        with transaction.atomic():
            if moves:
                update_each(Photo, moves, MOVED_FIELDS)
            if identified:
                update_each(Photo, identified, ("md5", "etag", "verified_at"))
            if creates:
                Photo.objects.bulk_create(creates, batch_size=DB_CHUNK)
                # An object a departed photo left is overwritten by a new one at its key.
                # Asked once per writer: rows this run writes are of keys it does not create.
                if self._departed_known is None:
                    self._departed_known = DepartedPhoto.objects.exists()
                if self._departed_known:
                    _forget_departed(key=[photo.key for photo in creates])
            if updates:
                update_each(Photo, updates, UPDATED_FIELDS)
            if rendered:
                update_each(Photo, rendered, RENDERED_FIELDS)
            if verified:
                Photo.objects.filter(pk__in=verified).update(
                    verified_at=timezone.now(), excluded_at=None
                )
            if excluded:
                Photo.objects.filter(pk__in=excluded, excluded_at__isnull=True).update(
                    excluded_at=timezone.now()
                )
            if forgotten:
                forget_vanished(_by_album(forgotten), remember=False)
            if departed:
                forget_vanished(_by_album(departed))
            if claimed or untracked:
                _forget_departed(id=claimed, key=untracked)
            update_each(SyncRun, progress, PROGRESS_FIELDS)


def _by_album(pairs: list[tuple[int, int]]) -> dict[int, list[int]]:
    by_album: dict[int, list[int]] = {}
    for album_id, photo_id in pairs:
        by_album.setdefault(album_id, []).append(photo_id)
    return by_album


def _forget_departed(**values: list) -> None:
    """Delete the DepartedPhoto rows with one of these ids, or keys: their object is
    copied from (the content lives on in a record), overwritten, or deleted."""
    for field, items in values.items():
        for start in range(0, len(items), DB_CHUNK):
            chunk = items[start : start + DB_CHUNK]
            DepartedPhoto.objects.filter(**{f"{field}__in": chunk}).delete()


class RunRecords:
    """What one run of one album has decided about its photos, buffered in a RecordWriter
    (its own, or one shared by the albums of a run over several) until it is written.
    A dry run writes nothing."""

    def __init__(
        self,
        *,
        album: Album,
        run: SyncRun,
        dry_run: bool,
        progress: Progress,
        writer: RecordWriter | None = None,
    ):
        self.album = album
        self.run = run
        self.dry_run = dry_run
        self.writer = RecordWriter() if writer is None or dry_run else writer
        if not dry_run:
            self.writer.progress[run.pk] = progress

    def sent(self, done: Transferred) -> None:
        """Record a photo the pool has uploaded, copied, or found whole in the bucket."""
        job, now, rendition = done.job, timezone.now(), done.rendition
        photo = Photo(
            id=job.known.id if job.known else None,
            album=self.album,
            path=job.local.path,
            key=job.key,
            size=done.size,
            mtime_ns=done.mtime_ns,
            content_type=done.content_type,
            width=rendition.width or done.info.width,
            height=rendition.height or done.info.height,
            taken_at=done.info.taken_at,
            uploaded_at=None if done.sent is Sent.FOUND else now,
            verified_at=now,
            md5=done.md5,
            etag=done.etag,
            excluded_at=None,
            renditions=rendition.signature,
            rendition_problem=rendition.problem,
        )
        self._add(self.writer.creates if job.known is None else self.writer.updates, photo)

    def rendered(self, done: Transferred) -> None:
        """An unchanged photo whose renditions were made (or found, or could not be)."""
        rendition = done.rendition
        photo = Photo(
            id=done.job.known.id,
            width=rendition.width or done.info.width,
            height=rendition.height or done.info.height,
            md5=done.md5,
            verified_at=timezone.now(),
            renditions=rendition.signature,
            rendition_problem=rendition.problem,
        )
        self._add(self.writer.rendered, photo)

    def moved(self, photo_id: int, done: Transferred) -> None:
        """Re-point the record of a photo gone from disk to the new file it turned out to be."""
        photo = Photo(
            id=photo_id,
            album=self.album,
            path=done.job.local.path,
            key=done.job.key,
            size=done.size,
            mtime_ns=done.mtime_ns,
            verified_at=timezone.now(),
            md5=done.md5,
            etag=done.etag,
        )
        self._add(self.writer.moves, photo)

    def identified(self, photo_id: int, *, md5: str, etag: str) -> None:
        """A photo recorded before checksums were kept, found whole: its MD5 and ETag."""
        photo = Photo(id=photo_id, md5=md5, etag=etag, verified_at=timezone.now())
        self._add(self.writer.identified, photo)

    def restored(self, *, path: str, key: str, size: int, mtime_ns: int, **content: str) -> None:
        """A photo restored from the bucket alone (no record was left): recorded as it now
        is on disk, so that the next sync finds it unchanged. `content` is its md5, etag
        and content_type."""
        photo = Photo(
            album=self.album,
            path=path,
            key=key,
            size=size,
            mtime_ns=mtime_ns,
            uploaded_at=None,
            verified_at=timezone.now(),
            **content,
        )
        self._add(self.writer.creates, photo)

    def verified(self, photo_id: int) -> None:
        """A recorded photo found unchanged and whole in the bucket."""
        self._add(self.writer.verified, photo_id)

    def forgotten(self, photo_id: int, *, object_kept: bool = False) -> None:
        """A recorded photo gone from disk: its record goes, unless meanwhile another album
        of the same run found it moved there (the record is that album's now). When its
        object stays in the bucket (`object_kept`), its content is remembered for a while
        (see forget_vanished)."""
        buffer = self.writer.departed if object_kept else self.writer.forgotten
        self._add(buffer, (self.album.pk, photo_id))

    def claimed(self, departed_id: int) -> None:
        """A new file turned out to be a photo an earlier run forgot, copied from its object:
        its content lives on in the new record (the old object goes with its album's prune)."""
        self._add(self.writer.claimed, departed_id)

    def untracked_removed(self, keys: list[str]) -> None:
        """Untracked objects a prune deleted: no departed photo can be copied from them."""
        for key in keys:
            self._add(self.writer.untracked, key)

    def excluded(self, photo_id: int) -> None:
        """A recorded photo an exclusion now covers: its record is kept, marked excluded
        (the first run to find it so sets the time). Syncing it again clears the mark."""
        self._add(self.writer.excluded, photo_id)

    def flush_if_due(self) -> None:
        if not self.dry_run:
            self.writer.flush_if_due()

    def flush(self) -> None:
        if not self.dry_run:
            self.writer.flush()

    def done(self) -> None:
        """The run is over: its progress is written with its outcome, no longer here."""
        self.writer.progress.pop(self.run.pk, None)

    def _add(self, buffer: list, item) -> None:
        if self.dry_run:
            return
        buffer.append(item)
        self.writer.flush_if_full()
