"""Time every admin page on a large library: 1,000 albums, 1,000,000 photos, 20,000 runs.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (issue 16):

    python bench/admin_scale.py                 # builds the data once (~2 min), then times
    python bench/admin_scale.py --repeat 5 --out bench/RESULTS-admin.md
    python bench/admin_scale.py --rebuild       # drop the database and build it again

The data goes into its own database (`photosite_adminbench` by default), built with SQL
(generate_series), never into the app's database. Each page is fetched with Django's test
client, in this process, as a logged-in superuser: the time is server time (URL routing,
middleware, queries, rendering), best of --repeat, after one warm-up fetch. Target: 300 ms.

The pages are every admin list, its "Show counts" link (`?_facets=True`, offered or not),
every choice of every filter of every list (a few of a long list of choices), with counts
where the list offers them, and the searches, deep pages, date steps and object pages of
issue 16. A page slower than --once-over seconds at its warm-up is not fetched again: its
warm-up time is reported. With --explain, the slowest query of each page (the --explain-top
slowest), if it took --explain-ms or more, is run again under EXPLAIN (ANALYZE, BUFFERS) for
the report.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
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
    parser.add_argument(
        "--found",
        choices=sorted(FOUND),
        default="rare",
        help="which photos were found already in the bucket (see FOUND; default rare)",
    )
    parser.add_argument("--only", help="only the pages whose label contains this")
    parser.add_argument("--skip", help="not the pages whose label contains this")
    parser.add_argument(
        "--statement-timeout", type=float, default=60, help="seconds a query may take (0: none)"
    )
    parser.add_argument(
        "--once-over", type=float, default=5, help="fetch once a page slower than this (s)"
    )
    parser.add_argument("--explain", action="store_true", help="add the slow queries' plans")
    parser.add_argument("--explain-ms", type=float, default=10, help="see --explain")
    parser.add_argument("--explain-top", type=int, default=1, help="see --explain")
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
# failed; the others succeeded. Every album not failed also had photos its last run left for
# the next one (still changing), 10 with the failed ones: so the photos not verified by the
# last sync are both gathered (issue 16's night: whole albums) and spread over every album
# (issue 28: 10 in each). In every album 3 photos are excluded by a pattern (kept, never
# verified since) and 1 could not be rendered. The photos found already in the bucket rather
# than uploaded are as --found says (FOUND). Every album has a run that failed (the 9th,
# 18th). The task queue's tables hold what a worker leaves: its last 250 successes, failures,
# one schedule.
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
    0, r, 0, 0, %(photos_per_album)s - r,
    CASE WHEN r < %(per_album)s OR a %% 50 = 0 THEN 0 WHEN a %% 10 = 0 THEN 5 ELSE 10 END, 0, 0,
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
    taken_at, uploaded_at, verified_at, excluded_at, created_at, md5, etag, renditions,
    rendition_problem)
SELECT album, path, 'albums/album-' || lpad(album::text, 4, '0') || '/' || path,
    2000000 + (i::bigint * 7919) %% 1000000, 1600000000000000000 + i::bigint * 1000000000,
    'image/jpeg', 4000, 3000,
    timestamp with time zone '2016-01-01 00:00:00+00' + i * interval '5 minutes',
    CASE WHEN FOUND_CONDITION THEN NULL ELSE now() - interval '300 days' END,
    CASE WHEN excluded THEN now() - interval '120 days'
         WHEN album %% 50 = 0 OR n < 10
         THEN now() - interval '2 days' + album * interval '1 second' + interval '10 seconds'
         ELSE now() - interval '1 day' + album * interval '1 second' + interval '10 seconds' END,
    CASE WHEN excluded THEN now() - interval '100 days' END,
    now() - interval '300 days', md5(path), md5(path), '',
    CASE WHEN n = 700 THEN 'cannot identify image file' ELSE '' END
FROM generate_series(0, %(photos)s - 1) AS i,
     LATERAL (SELECT i / %(photos_per_album)s + 1 AS album, i %% %(photos_per_album)s AS n,
                     'day ' || (i %% %(photos_per_album)s %% 10) || '/IMG_' || lpad(i::text, 7, '0') || '.jpg' AS path) AS p,
     LATERAL (SELECT n BETWEEN 500 AND 502 AS excluded) AS e
"""
# The photos found already in the bucket (the others were uploaded by photosite), where n is a
# photo's number in its album and i in the library: few, 10 in every album, as in a library
# photosite uploaded (issue 28: the filter then looked for them among all photos); one in
# three (issue 16's data); or nearly all, as in a library moved from another tool, where the
# uploaded ones are the few.
FOUND = {"rare": "n %% 100 = 1", "third": "i %% 3 = 0", "most": "n %% 100 <> 1"}

# What a worker leaves in django-q2's tables: its last 250 successes (Q_CLUSTER save_limit),
# every failure (a task killed by the timeout, say), and the sync schedule.
TASKS_SQL = """
INSERT INTO django_q_task (id, name, func, hook, args, kwargs, result, "group", cluster,
    started, stopped, success, attempt_count)
SELECT md5('task' || t), 'task-' || t, 'albums.tasks.sync_due_albums', NULL, NULL, NULL, NULL,
    CASE WHEN t %% 5 = 0 THEN 'admin' ELSE 'schedule' END, 'photosite',
    now() - t * interval '15 minutes', now() - t * interval '15 minutes' + interval '40 seconds',
    t <= 250, 1
FROM generate_series(1, 290) AS t
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


def scenario(args) -> str:
    """What the data is, as the bench wrote it on the photo table when it built it."""
    return f"admin_scale: found {args.found}"


def built_as() -> str | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT obj_description('albums_photo'::regclass, 'pg_class')")
        return cursor.fetchone()[0]


def build(args) -> None:
    from django.db import connection, transaction

    params = {
        "albums": args.albums,
        "per_album": args.runs // args.albums,
        "photos": args.photos,
        "photos_per_album": args.photos // args.albums,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for label, sql in (
            ("albums", ALBUMS_SQL),
            ("runs", runs_sql()),
            ("photos", PHOTOS_SQL.replace("FOUND_CONDITION", FOUND[args.found])),
            ("tasks", TASKS_SQL),
        ):
            started = time.monotonic()
            cursor.execute(sql, params)
            print(f"  {label}: {cursor.rowcount:,} rows in {time.monotonic() - started:.1f} s")
        cursor.execute(SEQUENCES_SQL)
        cursor.execute(f"COMMENT ON TABLE albums_photo IS '{scenario(args)}'")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE albums_album, albums_syncrun, albums_photo, django_q_task")


# A filter with more choices than this (the photos' album filter: one per album) is timed on
# its first, middle and last.
MANY_CHOICES = 12


def list_pages(user) -> list[tuple[str, str]]:
    """Every admin list, its "Show counts" link (offered or not: `?_facets=True` by hand on a
    list that does not offer it must cost nothing more), and every choice of its filters,
    also with counts where the list offers them."""
    from django.contrib import admin
    from django.contrib.admin.options import IS_FACETS_VAR
    from django.test import RequestFactory
    from django.urls import reverse

    reverse("admin:index")  # the URLconf registers the ModelAdmins (admin.autodiscover)
    found = []
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda i: i[0]._meta.label):
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        name = f"{opts.app_label}: {opts.verbose_name_plural}"
        request = RequestFactory().get(url)
        request.user = user
        changelist = model_admin.get_changelist_instance(request)
        counts = changelist.is_facets_optional and changelist.has_filters
        offered = "offered" if counts else "not offered"
        found += [(name, url), (f"{name}, counts ({offered})", f"{url}?{IS_FACETS_VAR}=True")]
        for spec in changelist.filter_specs:
            choices = [c for c in spec.choices(changelist) if c["query_string"] != "?"]
            if len(choices) > MANY_CHOICES:
                choices = [choices[0], choices[len(choices) // 2], choices[-1]]
            for choice in choices:
                label = f"{name}, {spec.title}: {choice['display']}"
                found.append((label, url + choice["query_string"]))
                if counts:
                    query = f"{choice['query_string']}&{IS_FACETS_VAR}=True"
                    found.append((f"{label}, with counts", url + query))
    return found


def other_pages(args) -> list[tuple[str, str]]:
    """Issue 16's pages beyond the filters: searches, deep pages, date steps, object pages."""
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
        ("album list, sorted by photos", albums + "?o=3"),
        ("album list, search", albums + "?q=album-05"),
        ("album page", reverse("admin:albums_album_change", args=[album.pk])),
        ("photo list, page 50", photos + "?p=50"),
        ("photo list, last page", photos + f"?p={last_page}"),
        ("photo list, a year (date hierarchy)", photos + "?taken_at__year=2018"),
        ("photo list, a month", photos + "?taken_at__year=2018&taken_at__month=6"),
        ("photo list, one album, search", photos + f"?album__id__exact={album.pk}&q=IMG"),
        ("photo list, search for a file name", photos + "?q=" + quote(file_name)),
        ("photo page", reverse("admin:albums_photo_change", args=[photo.pk])),
        (
            "run list, a month",
            runs + f"?started_at__year={run.started_at.year}"
            f"&started_at__month={run.started_at.month}",
        ),
        ("run page", reverse("admin:albums_syncrun_change", args=[run.pk])),
    ]


@dataclass
class Fetched:
    seconds: float
    queries: list[dict]
    size: int = 0
    error: str = ""
    once: bool = False

    @property
    def slowest(self) -> dict | None:
        return max(self.queries, key=lambda query: float(query["time"]), default=None)


def fetch(client, url: str, args) -> Fetched:
    """One fetch of `url`; a query past the statement timeout is an error, not an exception."""
    from django.db import DatabaseError, connection
    from django.test.utils import CaptureQueriesContext

    set_statement_timeout(args)
    connection.queries_log.clear()  # it keeps 9,000 queries: past them nothing is captured
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        try:
            response = client.get(url)
        except DatabaseError as exc:
            took = time.perf_counter() - started
            error = str(exc).strip().splitlines()[0]
            return Fetched(took, queries.captured_queries, error=error)
        took = time.perf_counter() - started
    error = "" if response.status_code == 200 else f"HTTP {response.status_code}"
    return Fetched(took, queries.captured_queries, len(response.content), error)


def set_statement_timeout(args) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = %s", [int(args.statement_timeout * 1000)])


def measure(args) -> list[tuple[str, str, Fetched]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    rows = []
    for label, url in [*list_pages(user), *other_pages(args)]:
        if (args.only and args.only not in label) or (args.skip and args.skip in label):
            continue
        # The warm-up (caches, the planner's statistics, the OS page cache), kept when slow.
        best = fetch(client, url, args)
        best.once = True
        if not best.error and best.seconds < args.once_over:
            for _ in range(args.repeat):
                fetched = fetch(client, url, args)
                if fetched.error or best.once or fetched.seconds < best.seconds:
                    best = fetched
                if fetched.error:
                    break
        rows.append((label, url, best))
        note = f"  {best.error}" if best.error else ("  (once)" if best.once else "")
        print(
            f"  {best.seconds * 1000:8.1f} ms  {len(best.queries):4} queries  {label}{note}",
            flush=True,
        )
    return rows


def explain(args, rows) -> list[tuple[str, float, str, str]]:
    """(page, ms, SQL, plan) of the --explain-top slowest queries of each page that took
    --explain-ms or more."""
    from django.db import DatabaseError, connection

    plans = []
    for label, _, fetched in rows:
        queries = [query for query in fetched.queries if not query["sql"].startswith("EXPLAIN")]
        slowest = sorted(queries, key=lambda query: -float(query["time"]))
        for query in slowest[: args.explain_top]:
            if float(query["time"]) * 1000 < args.explain_ms:
                break
            set_statement_timeout(args)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                    plan = "\n".join(row[0] for row in cursor.fetchall())
            except DatabaseError as exc:
                plan = str(exc).strip().splitlines()[0]
            plans.append((label, float(query["time"]) * 1000, query["sql"], plan))
    return plans


def report(args, rows, counts, plans) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    lines = [
        f"## {args.label or 'Admin pages'} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"{counts[0]:,} albums, {counts[1]:,} photos, {counts[2]:,} runs, {scenario(args)}; "
        f"PostgreSQL {version}; "
        f"Python {platform.python_version()}; {os.cpu_count()} cores; load average "
        f"{os.getloadavg()[0]:.1f}; best of {args.repeat} after a warm-up (a page slower than "
        f"{args.once_over:g} s: its warm-up alone, marked once); server time through Django's "
        f"test client; statement timeout {args.statement_timeout:g} s. Target: {TARGET_MS} ms.",
        "",
        "| Page | URL | ms | queries | KiB |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, url, fetched in rows:
        ms = f"{fetched.seconds * 1000:,.0f}"
        if fetched.error:
            ms += f" ({fetched.error})"
        elif fetched.once:
            ms += " (once)"
        if fetched.error or fetched.seconds * 1000 > TARGET_MS:
            ms += " **over**"
        size = fetched.size // 1024
        lines.append(f"| {label} | `{url}` | {ms} | {len(fetched.queries)} | {size} |")
    if plans:
        lines += [
            "",
            f"Plans: the {args.explain_top} slowest queries of each page that took "
            f"{args.explain_ms:g} ms or more, run again under EXPLAIN (ANALYZE, BUFFERS).",
        ]
    for label, ms, sql, plan in plans:
        lines += [
            "",
            f"<details><summary>{label}: {ms:.0f} ms</summary>",
            "",
            "```",
            _shortened(sql, 1500),
            "",
            *(_shortened(line, PLAN_LINE) for line in plan.splitlines()[:PLAN_LINES]),
            *(["…"] if len(plan.splitlines()) > PLAN_LINES else []),
            "```",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


# A plan in the report: its first lines, each cut (a facet's plan names every album).
PLAN_LINES, PLAN_LINE = 60, 300


def _shortened(text: str, length: int) -> str:
    return text if len(text) <= length else text[:length] + " …"


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_django(args)
    ensure_database(args)
    from django.core.management import call_command

    from albums.models import Album, Photo, SyncRun

    call_command("migrate", verbosity=0)  # also adds new indexes to data built earlier
    if not Album.objects.exists():
        print(f"Building {args.database} (albums, runs, photos, tasks)...", flush=True)
        build(args)
    elif built_as() != scenario(args):
        print(f"{args.database} holds other data ({built_as()}): --rebuild, or another --database.")
        return 2
    call_command("collectstatic", interactive=False, verbosity=0)
    counts = (Album.objects.count(), Photo.objects.count(), SyncRun.objects.count())
    print(f"{counts[0]:,} albums, {counts[1]:,} photos, {counts[2]:,} runs in {args.database}")
    rows = measure(args)
    plans = explain(args, rows) if args.explain else []
    text = report(args, rows, counts, plans)
    slow = [row for row in rows if row[2].error or row[2].seconds * 1000 > TARGET_MS]
    print(f"{len(slow)} of {len(rows)} pages over {TARGET_MS} ms.")
    if args.out:
        with open(args.out, "a") as out:
            out.write("\n" + text)
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
