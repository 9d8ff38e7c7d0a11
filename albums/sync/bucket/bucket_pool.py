"""A run's requests to the bucket, made on the run's thread pool a bounded window at a time.

The listing, the size checks, the uploads and the deletes of a run all go through here, and
come back to the run's own thread as (item, future) pairs to be recorded there; nothing here
touches the database.
"""

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import pairwise

from botocore.exceptions import BotoCoreError, ClientError

from ...exceptions import StorageError
from ...storage import (
    DeletesUnsupported,
    EndpointWatch,
    ProblemKind,
    RemoteObject,
    classify_storage_error,
    describe,
    key_problem,
    open_bucket,
    open_photo_storage,
)
from .concurrency import START, Concurrency
from .pool import in_pool
from .transfer import Job, file_md5, transfer

LIST_PAGE = 1000  # keys per ListObjectsV2 request: S3's most
RANGES_AHEAD = 8  # key ranges of a listing requested side by side
LISTING_FAILED = (
    "Listing the bucket for {subject} failed: {cause}. The run stopped; what it had "
    "uploaded is recorded, and the next run goes on from there."
)
DELETING_ONE_BY_ONE = "Deleting one object per request for the rest of this run: {cause}"


class BucketPool:
    """The bucket of one run of album `album_name` (keys under `prefix`), and the run's pool
    of at most `workers` threads: as many requests in flight as make the run faster, from
    `start` (albums.sync.bucket.concurrency). `on_wait` is called at least every second
    while the run's thread waits (progress, the lease, due writes).

    With `shared`, another album's BucketPool of the same run, the bucket, the pool and its
    limit are that one's (a run over several albums opens them once): closing is its
    owner's."""

    def __init__(
        self,
        *,
        album_name: str,
        prefix: str,
        workers: int,
        on_wait: Callable[[], None],
        log: logging.Logger | logging.LoggerAdapter,
        shared: "BucketPool | None" = None,
        subject: str = "",
        start: int = START,
    ):
        """`subject` names what the run syncs in its errors, for a pool of several albums
        ("40 albums"); by default the album."""
        self.album_name = album_name
        self.subject = subject or f"album {album_name!r}"
        self.prefix = prefix
        self.on_wait = on_wait
        self.log = log
        self._owner = shared is None
        if shared is None:
            self.bucket = open_bucket(open_photo_storage(workers=workers), workers=workers)
            self.pool = ThreadPoolExecutor(workers, thread_name_prefix="albums-sync")
            endpoint = self.bucket.endpoint
            self.concurrency = Concurrency(
                workers, start=start, throttled=lambda: endpoint.throttled
            )
        else:
            self.bucket, self.pool = shared.bucket, shared.pool
            self.concurrency = shared.concurrency
        self.where = describe(self.bucket.storage)  # for messages: never a credential
        # Where the endpoint's answers stood when the run began (see Failures.judge); for an
        # album of a run over several, when that run began: its shared listing was answered.
        self.answers_at_start = (
            shared.answers_at_start if shared is not None else self.bucket.endpoint.answers
        )

    @property
    def can_list(self) -> bool:
        return self.bucket.can_list

    def listing_is_cheaper(self, *, photos: int, recorded: int, batch_size: int) -> bool:
        """Whether to learn what the bucket holds from a listing of the prefix rather than
        a HEAD per photo (in batches of `batch_size`).

        Where the backend can list (S3), a listing costs ceil(objects / 1000) requests
        against one HEAD per photo; it is used whenever that is fewer requests. The
        objects under the prefix are about the photos recorded (or found, on a first run).
        """
        pages = math.ceil(max(photos, recorded) / LIST_PAGE)
        if self.can_list and pages < photos:
            self.log.info("Listing %s to check %d photos", self.prefix, photos)
            return True
        self.log.info("Checking %d photos in the bucket in batches of %d", photos, batch_size)
        return False

    @property
    def endpoint(self) -> EndpointWatch:
        """What the run has heard from the endpoint (for Failures.judge)."""
        return self.bucket.endpoint

    def close(self) -> None:
        """Wait for the requests in flight, then let the bucket go (its owner only)."""
        if self._owner:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.bucket.close()

    def key_problem(self, key: str) -> str | None:
        return key_problem(self.bucket.storage, key)

    def listing(self, boundaries: Sequence[str] = ()) -> Iterator[tuple[str, RemoteObject]]:
        """The bucket's objects under the prefix, as (path, object) in path order.

        With `boundaries` (paths in increasing order, about a page of objects apart: the
        recorded photos tell where), the key ranges between them are listed side by side,
        RANGES_AHEAD at a time, each from its own start (StartAfter), and handed on in
        order: a bucket 100 ms away lists 100,000 objects in a fraction of the time of 100
        pages one after another. Without, the next page is requested on the pool while this
        one is merged. Either way the listing's round trips overlap with the work on each
        page. Without the listing nothing can be decided: any error stops the run.
        """
        if boundaries:
            yield from self._ranged_listing(boundaries)
            return
        strip = len(self.prefix)
        pages = self.bucket.list_pages(self.prefix, page_size=LIST_PAGE)
        ahead = self.pool.submit(next, pages, None)
        while True:
            try:
                page = ahead.result()
            except (ClientError, BotoCoreError) as exc:
                raise self._listing_error(exc) from exc
            if page is None:
                return
            ahead = self.pool.submit(next, pages, None)
            for name, found in page:
                yield name[strip:], found

    def _ranged_listing(self, boundaries: Sequence[str]) -> Iterator[tuple[str, RemoteObject]]:
        if any(a >= b for a, b in pairwise(boundaries)):
            raise ValueError("the boundaries of a listing must increase")  # or keys repeat
        edges = [None, *boundaries, None]
        ranges = pairwise(edges)
        ahead: deque[Future] = deque()

        def request_next() -> None:
            if (bounds := next(ranges, None)) is not None:
                ahead.append(self.pool.submit(self._list_range, *bounds))

        for _ in range(RANGES_AHEAD):
            request_next()
        strip = len(self.prefix)
        while ahead:
            try:
                objects = ahead.popleft().result()
            except (ClientError, BotoCoreError) as exc:
                raise self._listing_error(exc) from exc
            request_next()
            for name, found in objects:
                yield name[strip:], found

    def _list_range(self, after: str | None, upto: str | None) -> list[tuple[str, RemoteObject]]:
        """The objects whose paths come after `after` and up to `upto` (included); None: from
        the first, to the last. A range is about a page: it is held whole."""
        last = None if upto is None else self.prefix + upto
        start = "" if after is None else self.prefix + after
        objects: list[tuple[str, RemoteObject]] = []
        for page in self.bucket.list_pages(self.prefix, page_size=LIST_PAGE, start_after=start):
            for name, found in page:
                if last is not None and name > last:
                    return objects  # the next range's
                objects.append((name, found))
            if last is not None and objects and objects[-1][0] == last:
                return objects  # the page ended on the boundary: no request for nothing
        return objects

    def sizes(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Future]]:
        """One size check (a HEAD) per job: each future gives a RemoteObject or None."""
        return self.map(lambda job: self.bucket.size(job.key), jobs)

    def transfers(self, jobs: Iterable[Job], *, stop: Callable[[], bool]) -> Iterator[tuple]:
        """Each job uploaded (or recorded): each future gives a Transferred. No new job is
        started once `stop()`."""
        return self.map(lambda job: transfer(job, self.bucket), jobs, stop=stop)

    def hashes(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Future]]:
        """Each job's file read and hashed: each future gives its MD5 (hex)."""
        return self.map(lambda job: file_md5(job.local.abspath), jobs)

    def deletes(self, keys: Iterable[str]) -> Iterator[tuple[list[str], Future]]:
        """The objects under `keys` deleted, as many keys a request as the bucket takes (1,000
        on S3, one through the Storage API), several requests side by side: (keys, future)
        per request, whose future gives the keys the bucket refused, each with its error, or
        raises the error of the request as a whole.

        Where the endpoint does not take DeleteObjects, the keys of the batches it refused
        are sent again, and so are the rest, one DeleteObject each (said once, at info)."""
        batches = _Batches(keys, lambda: self.bucket.delete_batch)
        said = False
        for batch, future in self.map(self.bucket.delete_many, batches):
            error = future.exception()
            if not isinstance(error, DeletesUnsupported):
                yield batch, future
                continue
            if not said:
                self.log.info(DELETING_ONE_BY_ONE.format(cause=error))
                said = True
            batches.again(batch)

    def cleaned_up_first(self, jobs: Iterator[Job]) -> Iterator[Job]:
        """The jobs, with the multipart uploads a killed run left behind aborted before the
        first upload in parts: one request, made only when this run has a file big enough,
        so none at all in the common case."""
        threshold = self.bucket.multipart_threshold
        if threshold is None:
            yield from jobs
            return
        for job in jobs:
            if job.upload and job.local.size >= threshold:
                self._abort_unfinished_uploads()
                yield job
                yield from jobs
                return
            yield job

    def _abort_unfinished_uploads(self) -> None:
        """Without the permission (or after a passing error) the bucket's lifecycle rule (see
        README) is the safety net, so that is only logged; a bucket that cannot be used at
        all stops the run here."""
        try:
            aborted = self.bucket.abort_unfinished_uploads(self.prefix)
        except (ClientError, BotoCoreError) as exc:
            problem = classify_storage_error(exc)
            if problem.kind is ProblemKind.UNREACHABLE or (
                problem.stops_run and problem.kind is not ProblemKind.DENIED
            ):
                raise problem.run_error(subject=self.subject, where=self.where) from exc
            self.log.warning("Could not clean up unfinished uploads: %s", problem.cause)
            return
        if aborted:
            self.log.warning(
                "Aborted %d unfinished multipart uploads left by an earlier run", aborted
            )

    def _listing_error(self, exc: Exception) -> StorageError:
        problem = classify_storage_error(exc)
        if problem.stops_run or problem.kind is ProblemKind.UNREACHABLE:
            return problem.run_error(subject=self.subject, where=self.where)
        return StorageError(LISTING_FAILED.format(subject=self.subject, cause=problem.cause))

    def map(self, fn, items, *, stop=lambda: False):
        """`fn` over `items` on the pool, as (item, future) pairs in the order they finish;
        as many in flight as the run's limit allows, which each one back informs."""
        window = self.concurrency
        for item, future in in_pool(
            self.pool, fn, items, window=lambda: window.limit, on_wait=self.on_wait, stop=stop
        ):
            window.finished()
            yield item, future


class _Batches:
    """An iterator of `keys` in lists of `size()` keys each, the size as it stands when each
    list is taken; a list given back (`again`) is taken first, cut again. It may raise
    StopIteration and yield again after a list is given back: in_pool asks for more each
    time a request finishes."""

    def __init__(self, keys: Iterable[str], size: Callable[[], int]):
        self._keys = deque(keys)
        self._size = size

    def __iter__(self) -> "_Batches":
        return self

    def __next__(self) -> list[str]:
        if not self._keys:
            raise StopIteration
        count = min(self._size(), len(self._keys))
        return [self._keys.popleft() for _ in range(count)]

    def again(self, batch: list[str]) -> None:
        self._keys.extendleft(reversed(batch))


class SharedListing:
    """One listing of the albums' common prefix, shared by the albums of a run over several
    (albums.sync.many): each takes its own objects from it as its pass reaches them, so
    that the whole run costs ceil(objects / 1000) listing requests, not one or more per
    album. The albums must ask in the order of their keys; objects of albums not in the run
    are passed over."""

    def __init__(self, listing: Iterator[tuple[str, RemoteObject]]):
        self._listing = listing  # (name under the common prefix, object), in key order
        self._next: tuple[str, RemoteObject] | None = None

    def album(self, name_prefix: str) -> Iterator[tuple[str, RemoteObject]]:
        """The objects whose names start with `name_prefix` (an album's slug and "/"), as
        (path in the album, object)."""
        strip = len(name_prefix)
        while (item := self._peek()) is not None:
            name, found = item
            if name < name_prefix:
                self._next = None  # an album not in the run, or the rest of one that failed
                continue
            if not name.startswith(name_prefix):
                return  # the next album's
            self._next = None
            yield name[strip:], found

    def _peek(self) -> tuple[str, RemoteObject] | None:
        if self._next is None:
            self._next = next(self._listing, None)
        return self._next
