"""A ListObjectsV2 for moto whose page costs what a page holds, not what the bucket holds.

moto 5.2.5's `S3Backend.list_objects_v2` calls `list_objects`, which walks every key of the
bucket, keeps those under the prefix, sorts them all and only then cuts the page: every page
of a listing costs O(N log N) of the server's one GIL. At 100,000 keys a page costs about half
a second on the 2-core machine (RESULTS-100k.md: the bare listing of 100 pages took 52 s on
loopback), half of it this sort and half moto's serializer (see bench/moto_list_xml.py), so
the server, not the round trip, sets the time of any listing, and ranges listed side by side
(photosite's `BucketPool.listing`) queue behind one another in it. S3 serves a page in a
time that does not depend on the bucket's size.

`install()` replaces the method for requests without a delimiter: the page comes from a
sorted list of the bucket's key names (bisect to the first name after the start, then a
walk of at most a page), built when a listing first needs it after a name was added or
removed. The objects returned are moto's own (the latest version of each name, delete
markers skipped) in the tuple moto returns, and the continuation tokens are moto's (md5 of
the page's last name, kept in the backend's `_pagination_tokens`), so the response is
rendered as before (by moto, or by bench/moto_list_xml.py). With a delimiter, an unknown continuation token or a page size
below 1, moto's own method answers (and fails as it does).

`self_check()` compares both on a bucket of awkward names (spaces, `+`, `%`, unicode, names
that are prefixes of others, delete markers) before and after writes of every kind.
"""

import bisect
import threading
from itertools import islice

from moto.s3.models import (
    FakeBucket,
    FakeDeleteMarker,
    FakeTableStorageBucket,
    S3Backend,
)
from moto.s3.utils import _VersionedKeyStore
from moto.utilities.utils import md5_hash

MOTO_LIST_OBJECTS_V2 = S3Backend.list_objects_v2
_STORE_WRITES = {
    name: getattr(_VersionedKeyStore, name)
    for name in ("__setitem__", "setlist", "pop", "__delitem__", "clear", "popitem")
}


class _NameIndex:
    """The sorted names of one key store, and the store's count of name changes they match."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changes = 0  # names added or removed so far
        self.built_at = -1  # `changes` when `names` was built
        self.names: list[str] = []

    def changed(self) -> None:
        with self.lock:
            self.changes += 1

    def sorted_names(self, store: _VersionedKeyStore) -> list[str]:
        with self.lock:
            if self.built_at != self.changes:
                # Read the count before copying: a write lands in the store, then counts, so
                # one that the copy misses counts after this read and the next call rebuilds.
                # list() of a dict's keys runs in C without letting another thread in.
                at = self.changes
                names = list(dict.keys(store))
                names.sort()  # code point order: S3's UTF-8 byte order, and moto's
                self.names, self.built_at = names, at
            return self.names


def _index(store: _VersionedKeyStore) -> _NameIndex:
    # dict.setdefault is atomic: two threads asking first get the same index.
    return store.__dict__.setdefault("_bench_name_index", _NameIndex())


def _counting(name: str):
    original = _STORE_WRITES[name]
    if name in ("__setitem__", "setlist"):

        def write(store, key, value):
            new = not dict.__contains__(store, key)  # a new version of a name is no new name
            result = original(store, key, value)
            if new:
                _index(store).changed()
            return result

    else:

        def write(store, *args):
            result = original(store, *args)
            _index(store).changed()
            return result

    write.__name__ = name
    return write


def indexed_list_objects_v2(
    self, bucket, prefix, delimiter, continuation_token, start_after, max_keys
):
    """moto's `S3Backend.list_objects_v2`, answered from the bucket's name index."""
    if continuation_token:
        after = self._pagination_tokens.get(continuation_token)
    else:
        after = start_after or ""
    if delimiter or after is None or max_keys < 1 or isinstance(bucket, FakeTableStorageBucket):
        return MOTO_LIST_OBJECTS_V2(
            self, bucket, prefix, delimiter, continuation_token, start_after, max_keys
        )
    prefix = prefix or ""
    store = bucket.keys
    names = _index(store).sorted_names(store)
    # Names under a prefix are one run of the sorted list; moto skips names <= the start.
    first = max(bisect.bisect_left(names, prefix), bisect.bisect_right(names, after))
    found = []
    for name in islice(names, first, None):
        if not name.startswith(prefix) or len(found) > max_keys:
            break
        key = store.get(name)  # its latest version; None if removed since the index was made
        if key is not None and not isinstance(key, FakeDeleteMarker):
            found.append(key)
    if len(found) <= max_keys:
        return found, False, None
    page = found[:max_keys]
    token = md5_hash(page[-1].name.encode("utf-8")).hexdigest()
    self._pagination_tokens[token] = page[-1].name
    return page, True, token


def install() -> None:
    """Answer ListObjectsV2 without a delimiter from the index, in this process (once)."""
    if S3Backend.list_objects_v2 is indexed_list_objects_v2:
        return
    for name in _STORE_WRITES:
        setattr(_VersionedKeyStore, name, _counting(name))
    S3Backend.list_objects_v2 = indexed_list_objects_v2


# The self-check.

AWKWARD = [
    "a", "a ", "a b", "a+b", "a%20b", "a%2Fb", "a/", "a/b", "a/b/", "a/b/c", "a/b c/d",
    "ab", "a+", "a%", "a\u00e9", "ae\u0301", "\u00e9t\u00e9/photo.jpg", "\u65e5\u672c/\u5199\u771f.jpg",
    "\U0001f600.jpg", "\ufb01", "~tilde", "z", "zz", "albums/", "albums/x", "albums/x/",
    "albums/x+y/1.jpg", "albums/x y/1.jpg", "albums/x%y/1.jpg", "albums/xy/1.jpg",
]  # fmt: skip
PREFIXES = [None, "", "a", "a ", "a/", "a/b", "a+", "a%", "albums/", "albums/x", "albums/event-0002/",
            "\u00e9", "\u65e5\u672c/", "zz", "zzz", "nothing-here"]  # fmt: skip


def _names(photos_per_album: int) -> list[str]:
    names = list(AWKWARD)
    for album in range(1, 25):
        for photo in range(1, photos_per_album + 1):
            names.append(f"albums/event-{album:04d}/IMG_{photo:04d}.jpg")
        names.append(f"albums/event-{album:04d}")  # a key that is a prefix of the album's
    return names


def _page(backend, listing, bucket, prefix, token, start_after, max_keys):
    keys, truncated, next_token = listing(
        backend, bucket, prefix, None, token, start_after, max_keys
    )
    return [(key.name, id(key)) for key in keys], truncated, next_token


def _compare(backend, bucket, prefixes, starts, page_sizes, max_pages) -> tuple[int, list[str]]:
    """Every listing both ways, page after page (up to `max_pages`, all for page size 1000):
    the pages, their truncation and their tokens must be the same objects, the same bits."""
    pages, differences = 0, []
    for prefix in prefixes:
        for start in starts:
            for size in page_sizes:
                token = None
                for _ in range(10_000 if size >= 1000 else max_pages):
                    # StartAfter goes with every page, as boto3's paginator sends it.
                    ours = _page(
                        backend, indexed_list_objects_v2, bucket, prefix, token, start, size
                    )
                    moto = _page(backend, MOTO_LIST_OBJECTS_V2, bucket, prefix, token, start, size)
                    pages += 1
                    if ours != moto:
                        differences.append(f"{bucket.name}: prefix {prefix!r}, start {start!r}, "
                                           f"page size {size}, token {token}")  # fmt: skip
                        break
                    token = moto[2]
                    if not token:
                        break
    return pages, differences


def self_check() -> tuple[bool, str]:
    """The indexed pages against moto's own, in a backend of this process that serves nothing.

    Installs the index (its writes must be counted). Returns (identical, a sentence for
    the results)."""
    install()
    backend = S3Backend("us-east-1", "123456789012")
    plain = FakeBucket("bench-self-check", backend.account_id, backend.region_name)
    versioned = FakeBucket("bench-self-check-v", backend.account_id, backend.region_name)
    versioned.versioning_status = "Enabled"
    # Not create_bucket(): that would register the names with every backend of the process.
    backend.buckets = {plain.name: plain, versioned.name: versioned}
    names = _names(photos_per_album=40)  # 1,000 names: moto's own lists them for every page
    for bucket in (plain, versioned):
        for name in names:
            backend.put_object(bucket.name, name, name.encode())
    for name in names[::7]:  # delete markers in the versioned bucket: not listed
        backend.delete_object(versioned.name, name)
    starts = [None, "", "a", "a/b", "a%2Fb", "albums/event-0003/", "albums/event-0003",
              "albums/event-0010/IMG_0060.jpg", "albums/event-0010/IMG_0060.jpf", "\u00e9",
              "\U0001f600.jpg", "zzzz"]  # fmt: skip
    sizes = [1, 2, 7, 100, 1000]
    total, differences = 0, []

    def compare(buckets, prefixes, starts, sizes, max_pages=4):
        nonlocal total
        for bucket in buckets:
            pages, found = _compare(backend, bucket, prefixes, starts, sizes, max_pages)
            total += pages
            differences.extend(found)

    compare((plain, versioned), PREFIXES, starts, sizes)
    # Writes of every kind, then again: the index must follow the names.
    for bucket in (plain, versioned):
        backend.put_object(bucket.name, "a/b/ab", b"new")  # a new name amid the others
        backend.put_object(bucket.name, "albums/event-0002/IMG_0001.jpg", b"again")
        backend.delete_object(bucket.name, "albums/event-0002/IMG_0002.jpg")
        backend.delete_object(bucket.name, "a+b")
        source = backend.get_object(plain.name, "albums/event-0004/IMG_0004.jpg")
        backend.copy_object(source, bucket.name, "albums/event-0002/IMG_0002b.jpg")
        upload = backend.create_multipart_upload(
            bucket.name, "albums/event-0002/IMG_0003a.jpg", {}, "STANDARD", {}, None, None, None
        )
        part = backend.upload_part(bucket.name, upload.id, 1, b"multipart")
        backend.complete_multipart_upload(bucket.name, upload.id, iter([(1, part.etag)]))
    # A version deleted outright, which can remove a name from the versioned bucket.
    for version in list(versioned.keys.getlist("ab")):
        backend.delete_object(versioned.name, "ab", version_id=version.version_id)
    compare((plain, versioned), [None, "a", "a/", "albums/", "albums/event-0002/"],
            [None, "a/b", "albums/event-0002/"], [1, 3, 1000], max_pages=8)  # fmt: skip
    # A bucket of a few thousand names, walked whole at 1000 and from many starts.
    big = FakeBucket("bench-self-check-big", backend.account_id, backend.region_name)
    backend.buckets[big.name] = big
    for name in _names(photos_per_album=150):
        backend.put_object(big.name, name, b"")
    compare((big,), [None, "albums/", "albums/event-0012/"],
            [None, "albums/event-0005/", "albums/event-0012/IMG_0150.jpg"], [999, 1000, 1001, 3])  # fmt: skip
    objects = len(plain.keys) + len(versioned.keys) + len(big.keys)
    if differences:
        return False, (f"FAILED: {len(differences)} of the listings differ from moto's, "
                       f"first: {differences[0]}")  # fmt: skip
    return True, (f"{total:,} pages compared with moto's own ({objects:,} names in 3 buckets, "
                  "before and after writes): identical")  # fmt: skip
