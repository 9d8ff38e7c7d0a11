"""Time every admin page on a large library: 1,000 albums, 1,000,000 photos, 20,000 runs.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (issue 16):

    python bench/admin_scale.py                 # builds the data once (~2 min), then times
    python bench/admin_scale.py --repeat 5 --out bench/RESULTS-admin.md
    python bench/admin_scale.py --rebuild       # drop the database and build it again

The data goes into its own database (`photosite_adminbench` by default), built with SQL
(generate_series), never into the app's database. Each page is fetched with Django's test
client, in this process, as a logged-in superuser: the time is server time (URL routing,
middleware, queries, rendering), best of --repeat, after one warm-up fetch. Target: 300 ms.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 300
SERVER = "postgres://postgres@127.0.0.1:5432"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="photosite_adminbench")
    parser.add_argument("--server", default=SERVER, help=f"PostgreSQL server (default {SERVER})")
    parser.add_argument("--albums", type=int, default=1_000)
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="fetches per page, best kept")
    parser.add_argument("--rebuild", action="store_true", help="drop and build the data again")
    parser.add_argument("--out", help="write the table to this Markdown file")
    parser.add_argument("--label", default="", help="a note for the report (e.g. 'before')")
    return parser.parse_args(argv)


def setup_django(args) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "photosite.settings",
            "DATABASE_URL": f"{args.server}/{args.database}",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "admin-bench"),
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DJANGO_HTTPS": "0",
            "DJANGO_STATIC_ROOT": tempfile.mkdtemp(prefix="photosite-adminbench-static-"),
            "PHOTOS_ROOT": tempfile.mkdtemp(prefix="photosite-adminbench-photos-"),
        }
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def ensure_database(args) -> None:
    """Create the bench database if missing (dropping it first with --rebuild)."""
    import psycopg2

    admin = psycopg2.connect(f"{args.server}/postgres", connect_timeout=3)
    admin.autocommit = True
    with admin.cursor() as cursor:
        if args.rebuild:
            cursor.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database])
        if not cursor.fetchone():
            cursor.execute(f'CREATE DATABASE "{args.database}"')
    admin.close()


# The library, in SQL. Albums 1..A with P/A photos each, taken five minutes apart over ten
# years; R/A runs per album, numbered so that ids grow with time across albums (run r of album
# a has id (r-1)*A + a), one a day; the last real run of every album started a day ago. As
# after a bad night: one album in fifty ended its last run failed (the bucket was down), so
# none of its photos was verified by it; one in ten otherwise ended partial with 5 photos
# failed (and not verified); the others succeeded. One photo in three was found already in
# the bucket rather than uploaded. Every album has a run that failed (the 9th, 18th).
ALBUMS_SQL = """
INSERT INTO albums_album (id, name, slug, folder, sync_on_schedule, created_at,
    last_synced_at, last_sync_status, sync_lease_token, sync_lease_expires_at,
    sync_failures_in_row, visibility)
SELECT a, 'Album ' || lpad(a::text, 4, '0'), 'album-' || lpad(a::text, 4, '0'),
    'Album ' || lpad(a::text, 4, '0'), a %% 2 = 0, now() - interval '400 days',
    now() - interval '1 day' + a * interval '1 second' + interval '30 seconds',
    CASE WHEN a %% 50 = 0 THEN 'failed' WHEN a %% 10 = 0 THEN 'partial' ELSE 'success' END,
    '', NULL, 0, 'private'
FROM generate_series(1, %(albums)s) AS a
"""
RUNS_SQL = """
INSERT INTO albums_syncrun (id, album_id, kind, repair, trigger, dry_run, prune, status,
    queued_at, started_at, finished_at, message, files_total, files_done, scanned, new,
    existing, orphaned, uploaded, reuploaded, already_in_bucket, unchanged, deferred, removed,
    pruned, failed, bytes_uploaded, errors, diagnosis, render_all, rendition_problems,
    {other_counts})
SELECT (r - 1) * %(albums)s + a, a, 'sync', false,
    CASE WHEN r %% 3 = 0 THEN 'schedule' WHEN r %% 3 = 1 THEN 'admin' ELSE 'command' END,
    r = %(per_album)s - 1 AND a %% 7 = 0, false,
    CASE WHEN r = %(per_album)s AND a %% 50 = 0 THEN 'failed'
         WHEN r = %(per_album)s AND a %% 10 = 0 THEN 'partial'
         WHEN r %% 9 = 0 THEN 'failed' ELSE 'success' END,
    started, started, started + interval '30 seconds',
    CASE WHEN r %% 9 = 0 OR (r = %(per_album)s AND a %% 50 = 0)
         THEN 'Cannot reach the bucket' ELSE '' END,
    %(photos_per_album)s, %(photos_per_album)s, %(photos_per_album)s, 0, %(photos_per_album)s,
    0, r, 0, 0, %(photos_per_album)s - r, 0, 0, 0,
    CASE WHEN r = %(per_album)s AND a %% 10 = 0 AND a %% 50 <> 0 THEN 5 ELSE 0 END, r * 2500000,
    CASE WHEN r = %(per_album)s AND a %% 10 = 0 AND a %% 50 <> 0 THEN (
        SELECT jsonb_agg(jsonb_build_object(
            'path', 'day ' || (n %% 10) || '/IMG_' || lpad(((a - 1) * %(photos_per_album)s + n)::text, 7, '0') || '.jpg',
            'error', 'Permission denied'))
        FROM generate_series(0, 4) AS n)
    ELSE '[]'::jsonb END,
    '{{}}'::jsonb, false, '[]'::jsonb, {other_zeros}
FROM generate_series(1, %(albums)s) AS a,
     generate_series(1, %(per_album)s) AS r,
     LATERAL (SELECT now() - (%(per_album)s - r + 1) * interval '1 day'
                  + a * interval '1 second' AS started) AS t
"""
PHOTOS_SQL = """
INSERT INTO albums_photo (album_id, path, key, size, mtime_ns, content_type, width, height,
    taken_at, uploaded_at, verified_at, created_at, md5, etag, renditions, rendition_problem)
SELECT album, path, 'albums/album-' || lpad(album::text, 4, '0') || '/' || path,
    2000000 + (i::bigint * 7919) %% 1000000, 1600000000000000000 + i::bigint * 1000000000,
    'image/jpeg', 4000, 3000,
    timestamp with time zone '2016-01-01 00:00:00+00' + i * interval '5 minutes',
    CASE WHEN i %% 3 = 0 THEN NULL ELSE now() - interval '300 days' END,
    CASE WHEN album %% 50 = 0 OR (album %% 10 = 0 AND i %% %(photos_per_album)s < 5)
         THEN now() - interval '2 days' + album * interval '1 second' + interval '10 seconds'
         ELSE now() - interval '1 day' + album * interval '1 second' + interval '10 seconds' END,
    now() - interval '300 days', md5(path), md5(path), '', ''
FROM generate_series(0, %(photos)s - 1) AS i,
     LATERAL (SELECT i / %(photos_per_album)s + 1 AS album,
                     'day ' || (i %% %(photos_per_album)s %% 10) || '/IMG_' || lpad(i::text, 7, '0') || '.jpg' AS path) AS p
"""
SEQUENCES_SQL = """
SELECT setval(pg_get_serial_sequence('albums_album', 'id'), (SELECT max(id) FROM albums_album));
SELECT setval(pg_get_serial_sequence('albums_syncrun', 'id'), (SELECT max(id) FROM albums_syncrun));
SELECT setval(pg_get_serial_sequence('albums_photo', 'id'), (SELECT max(id) FROM albums_photo));
"""


def runs_sql() -> str:
    """RUNS_SQL with every count column it does not name (a verification's, a restore's, the
    ones added since) at zero: the database has no default for them, Django fills them in."""
    from albums.counts import COUNTS_BY_KIND

    named = set(RUNS_SQL.split("(", 1)[1].split(")", 1)[0].replace(",", " ").split())
    others = sorted({name for counts in COUNTS_BY_KIND.values() for name in counts.names()} - named)
    return RUNS_SQL.format(
        other_counts=", ".join(others), other_zeros=", ".join(["0"] * len(others))
    )


def build(args) -> None:
    from django.db import connection, transaction

    params = {
        "albums": args.albums,
        "per_album": args.runs // args.albums,
        "photos": args.photos,
        "photos_per_album": args.photos // args.albums,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for label, sql in (("albums", ALBUMS_SQL), ("runs", runs_sql()), ("photos", PHOTOS_SQL)):
            started = time.monotonic()
            cursor.execute(sql, params)
            print(f"  {label}: {cursor.rowcount:,} rows in {time.monotonic() - started:.1f} s")
        cursor.execute(SEQUENCES_SQL)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE albums_album, albums_syncrun, albums_photo")


def pages(args) -> list[tuple[str, str]]:
    from django.urls import reverse

    from albums.admin.photos import PhotoAdmin
    from albums.models import Album, Photo, SyncRun

    album = Album.objects.get(slug=f"album-{args.albums // 2:04}")
    photo = Photo.objects.filter(album=album).order_by("path").first()
    run = SyncRun.objects.filter(album=album).order_by("-id").first()
    photos = reverse("admin:albums_photo_changelist")
    albums = reverse("admin:albums_album_changelist")
    runs = reverse("admin:albums_syncrun_changelist")
    file_name = photo.path.rsplit("/", 1)[-1]
    last_page = -(-Photo.objects.count() // PhotoAdmin.list_per_page)
    return [
        ("album list", albums),
        ("album list, sorted by photos", albums + "?o=3"),
        ("album list, last sync had problems", albums + "?sync_state=problem"),
        ("album list, search", albums + "?q=album-05"),
        ("album page", reverse("admin:albums_album_change", args=[album.pk])),
        ("photo list", photos),
        ("photo list, page 50", photos + "?p=50"),
        ("photo list, one album", photos + f"?album__id__exact={album.pk}"),
        ("photo list, uploaded by photosite", photos + "?state=uploaded"),
        ("photo list, found in the bucket", photos + "?state=found"),
        ("photo list, not verified by the last sync", photos + "?state=unverified"),
        ("photo list, failed in the last sync", photos + "?failed=yes"),
        ("photo list, last page", photos + f"?p={last_page}"),
        ("photo list, a year (date hierarchy)", photos + "?taken_at__year=2018"),
        ("photo list, a month", photos + "?taken_at__year=2018&taken_at__month=6"),
        ("photo list, one album, search", photos + f"?album__id__exact={album.pk}&q=IMG"),
        ("photo list, search for a file name", photos + "?q=" + quote(file_name)),
        ("photo page", reverse("admin:albums_photo_change", args=[photo.pk])),
        ("run list", runs),
        ("run list, failed", runs + "?status__exact=failed"),
        (
            "run list, a month",
            runs + f"?started_at__year={run.started_at.year}"
            f"&started_at__month={run.started_at.month}",
        ),
        ("run page", reverse("admin:albums_syncrun_change", args=[run.pk])),
    ]


def measure(args) -> list[tuple[str, str, float, int, int]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    rows = []
    for label, url in pages(args):
        client.get(url)  # warm-up: caches, the planner's statistics, the OS page cache
        times = []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
        rows.append((label, url, min(times) * 1000, len(queries), len(response.content)))
        print(f"  {min(times) * 1000:8.1f} ms  {len(queries):3} queries  {label}", flush=True)
    return rows


def report(args, rows, counts) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    lines = [
        f"## {args.label or 'Admin pages'} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"{counts[0]:,} albums, {counts[1]:,} photos, {counts[2]:,} runs; PostgreSQL {version}; "
        f"Python {platform.python_version()}; {os.cpu_count()} cores; best of {args.repeat} "
        f"after a warm-up; server time through Django's test client. Target: {TARGET_MS} ms.",
        "",
        "| Page | URL | ms | queries | KiB |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, url, ms, queries, size in rows:
        flag = "" if ms <= TARGET_MS else " **over**"
        lines.append(f"| {label} | `{url}` | {ms:.0f}{flag} | {queries} | {size // 1024} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_django(args)
    ensure_database(args)
    from django.core.management import call_command

    from albums.models import Album, Photo, SyncRun

    call_command("migrate", verbosity=0)  # also adds new indexes to data built earlier
    if not Album.objects.exists():
        print(f"Building {args.database} (albums, runs, photos)...", flush=True)
        build(args)
    call_command("collectstatic", interactive=False, verbosity=0)
    counts = (Album.objects.count(), Photo.objects.count(), SyncRun.objects.count())
    print(f"{counts[0]:,} albums, {counts[1]:,} photos, {counts[2]:,} runs in {args.database}")
    rows = measure(args)
    text = report(args, rows, counts)
    slow = [row for row in rows if row[2] > TARGET_MS]
    print(f"{len(slow)} of {len(rows)} pages over {TARGET_MS} ms.")
    if args.out:
        with open(args.out, "a") as out:
            out.write("\n" + text)
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
