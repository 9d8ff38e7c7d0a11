"""The per-album lock: a lease on the Album row.

Taken with one conditional UPDATE (free or expired -> ours), renewed while the run owns it,
released in `finally`. It works alike on SQLite and PostgreSQL and holds no transaction
open; `select_for_update` would be a no-op on SQLite and would pin a PostgreSQL
transaction for the whole sync. A process that dies without releasing it blocks the album
only until the lease expires (ALBUMS_SYNC_LEASE_SECONDS).
"""

import time
import uuid
from datetime import timedelta

from django.utils import timezone

from ... import conf
from ...exceptions import SyncAlreadyRunning, SyncLeaseLost
from ...models import Album

ALREADY_RUNNING = "Another sync of album {album!r} is running; try again when it has finished."
LEASE_LOST = (
    "The sync of album {album!r} lost its lock (it was stalled for longer than "
    "ALBUMS_SYNC_LEASE_SECONDS) and stopped, so that two syncs never run at once."
)


class AlbumLease:
    """The album's lock for one run; `with lease:` takes it (or raises SyncAlreadyRunning)
    and always gives it back."""

    def __init__(self, album: Album):
        self.album = album
        self.token = uuid.uuid4().hex
        self.seconds = conf.lease_seconds()
        self._renewed = 0.0

    def acquire(self) -> None:
        now = timezone.now()
        taken = (
            Album.objects.filter(pk=self.album.pk)
            .free_to_sync(now)
            .update(sync_lease_token=self.token, sync_lease_expires_at=self._expiry(now))
        )
        if not taken:
            raise SyncAlreadyRunning(ALREADY_RUNNING.format(album=self.album.name))
        self._renewed = time.monotonic()

    def renew_if_due(self) -> None:
        """Extend the lease once a third of it has passed; cheap to call often."""
        if time.monotonic() - self._renewed < self.seconds / 3:
            return
        kept = Album.objects.filter(pk=self.album.pk, sync_lease_token=self.token).update(
            sync_lease_expires_at=self._expiry(timezone.now())
        )
        if not kept:
            raise SyncLeaseLost(LEASE_LOST.format(album=self.album.name))
        self._renewed = time.monotonic()

    def release(self) -> None:
        Album.objects.filter(pk=self.album.pk, sync_lease_token=self.token).update(
            sync_lease_token="", sync_lease_expires_at=None
        )

    def __enter__(self) -> "AlbumLease":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _expiry(self, now):
        return now + timedelta(seconds=self.seconds)


class AlbumLeases:
    """The leases of several albums, taken for one run with one token: a fixed number of
    queries for any number of albums (albums.sync.many), with the same conditional UPDATE
    as AlbumLease."""

    def __init__(self):
        self.token = uuid.uuid4().hex
        self.seconds = conf.lease_seconds()
        self._renewed = 0.0
        self.held: set[int] = set()  # album ids
        self.lost: set[int] = set()  # album ids whose lease another sync took: see renew

    def acquire(self, albums: list[Album]) -> tuple[list[Album], list[Album]]:
        """(the albums now held, the albums another sync holds)."""
        now = timezone.now()
        ids = [album.pk for album in albums]
        Album.objects.filter(pk__in=ids).free_to_sync(now).update(
            sync_lease_token=self.token, sync_lease_expires_at=self._expiry(now)
        )
        taken = set(
            Album.objects.filter(pk__in=ids, sync_lease_token=self.token).values_list(
                "pk", flat=True
            )
        )
        self.held |= taken
        self._renewed = time.monotonic()
        return (
            [album for album in albums if album.pk in taken],
            [album for album in albums if album.pk not in taken],
        )

    def refused(self, album: Album) -> SyncAlreadyRunning:
        return SyncAlreadyRunning(ALREADY_RUNNING.format(album=album.name))

    def renew_if_due(self) -> None:
        """Extend every lease held once a third of it has passed; cheap to call often.

        A lease lost (the run stalled past its expiry and another sync took the album) is no
        longer held and its album id goes to `lost`, for the run to stop that album alone
        (`take_lost`): the others go on."""
        if not self.held or time.monotonic() - self._renewed < self.seconds / 3:
            return
        kept = Album.objects.filter(pk__in=self.held, sync_lease_token=self.token).update(
            sync_lease_expires_at=self._expiry(timezone.now())
        )
        if kept < len(self.held):
            still = Album.objects.filter(pk__in=self.held, sync_lease_token=self.token)
            lost = self.held - set(still.values_list("pk", flat=True))
            self.held -= lost
            self.lost |= lost
        self._renewed = time.monotonic()

    def take_lost(self) -> list[int]:
        """The albums whose lease was lost since the last call."""
        lost, self.lost = list(self.lost), set()
        return lost

    def lost_error(self, album: Album) -> SyncLeaseLost:
        return SyncLeaseLost(LEASE_LOST.format(album=album.name))

    def release(self, albums: list[Album]) -> None:
        ids = [album.pk for album in albums if album.pk in self.held]
        if ids:
            Album.objects.filter(pk__in=ids, sync_lease_token=self.token).update(
                sync_lease_token="", sync_lease_expires_at=None
            )
            self.held -= set(ids)

    def _expiry(self, now):
        return now + timedelta(seconds=self.seconds)
