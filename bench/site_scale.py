"""Time the site's pages on a large library, and count what a browser loads of them.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (issue 27):

    python bench/site_scale.py --repeat 5 --out bench/RESULTS-site.md

The library is bench/admin_scale.py's (1,000 albums, 1,000,000 photos, in its own database,
built once), every photo given renditions and every album made public, plus one album of
10,000 photos with a share link. Each page is fetched with Django's test client in this
process: server time, best of --repeat after a warm-up, with its queries and size. Then
Debian's Chromium opens the big album at 1280 x 800 (through `manage.py runserver` on the
same database) and the images it requests before any scrolling are counted.
Targets: each page <= 100 ms, the first screen's HTML <= 150 KB, <= 60 images.
"""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import admin_scale

REPO = admin_scale.REPO
TARGET_MS, TARGET_KB, TARGET_IMAGES = 100, 150, 60
BIG = 10_000
SIGNATURE = "v1-webp-q80-400-2048"

BIG_ALBUM_SQL = """
INSERT INTO albums_album (name, slug, folder, sync_on_schedule, created_at, last_synced_at,
    last_sync_status, sync_lease_token, sync_failures_in_row, visibility)
VALUES ('Big album', 'big-album', 'Big album', true, now(), now(), 'success', '', 0, 'public')
RETURNING id
"""
BIG_PHOTOS_SQL = """
INSERT INTO albums_photo (album_id, path, key, size, mtime_ns, content_type, width, height,
    taken_at, uploaded_at, verified_at, created_at, md5, etag, renditions, rendition_problem)
SELECT %(album)s, 'IMG_' || lpad(i::text, 6, '0') || '.jpg',
    'albums/big-album/IMG_' || lpad(i::text, 6, '0') || '.jpg', 6000000, 1, 'image/jpeg',
    CASE WHEN i %% 4 = 0 THEN 4000 ELSE 6000 END, CASE WHEN i %% 4 = 0 THEN 6000 ELSE 4000 END,
    timestamp with time zone '2024-01-01 00:00:00+00' + i * interval '3 minutes', now(), now(),
    now(), md5('big' || i), md5('big' || i), %(signature)s, ''
FROM generate_series(1, %(count)s) AS i
"""


def prepare() -> tuple[int, str]:
    """Every photo rendered, every album public, the big album and its share link made
    once; (the big album's id, its share link's token)."""
    from django.db import connection, transaction

    from albums.models import Album, ShareLink

    big = Album.objects.filter(slug="big-album").first()
    if big is None:
        print("Giving every photo renditions and making the big album...", flush=True)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE albums_photo SET renditions = %s", [SIGNATURE])
            cursor.execute("UPDATE albums_album SET visibility = 'public'")
            cursor.execute(BIG_ALBUM_SQL)
            album_id = cursor.fetchone()[0]
            cursor.execute(
                BIG_PHOTOS_SQL, {"album": album_id, "count": BIG, "signature": SIGNATURE}
            )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE albums_album, albums_photo")
        big = Album.objects.get(pk=album_id)
    link = ShareLink.objects.filter(album=big).first() or ShareLink.objects.create(
        album=big, expires_at=None
    )
    return big.pk, link.token


def pages(big_id: int, token: str) -> list[tuple[str, str]]:
    from django.urls import reverse

    from albums.models import Photo

    middle = (
        Photo.objects.filter(album_id=big_id).order_by("path").values_list("id", "path")[BIG // 2]
    )
    album = reverse("site-album", args=["big-album"])
    return [
        ("Index of public albums", reverse("site-index")),
        ("Index, page 20", reverse("site-index") + "?page=20"),
        (f"Album of {BIG:,} photos", album),
        ("Its photos after the 5,000th (what scrolling fetches)", f"{album}?after={middle[1]}"),
        ("A photo page", reverse("site-photo", args=["big-album", middle[0]])),
        ("The share page", reverse("site-share", args=[token])),
        ("A photo through the share link", reverse("site-share-photo", args=[token, middle[0]])),
        ("An album of 1,000 photos", reverse("site-album", args=["album-0500"])),
    ]


def measure(urls, repeat: int):
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    rows = []
    for label, url in urls:
        client.get(url)  # warm-up
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
        rows.append((label, url, min(times) * 1000, len(queries), len(response.content)))
        print(f"  {min(times) * 1000:7.1f} ms {len(queries):3} queries "
              f"{len(response.content) / 1000:6.1f} KB  {label}", flush=True)  # fmt: skip
    return rows


def images_before_scrolling(args, url: str) -> int | str:
    """The images Chromium requests of `url` at 1280 x 800 before any scrolling."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright not installed"
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        return "chromium not installed"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "photosite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    port = 8765
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            requested = []
            page.on(
                "request", lambda r: requested.append(r.url) if r.resource_type == "image" else None
            )
            answer = page.goto(f"http://127.0.0.1:{port}{url}", wait_until="load")
            if answer is None or answer.status != 200:
                return f"the page answered {answer.status if answer else 'nothing'}"
            page.wait_for_timeout(1500)
            browser.close()
        return len(requested)
    finally:
        server.terminate()
        server.wait(10)


def main(argv=None) -> int:
    args = admin_scale.parse_args(argv)
    admin_scale.setup_django(args)
    admin_scale.ensure_database(args)
    from django.core.management import call_command

    from albums.models import Album, Photo

    call_command("migrate", verbosity=0)
    if not Album.objects.exists():
        print(f"Building {args.database} (albums, runs, photos)...", flush=True)
        admin_scale.build(args)
    big_id, token = prepare()
    call_command("collectstatic", interactive=False, verbosity=0)
    counts = (Album.objects.count(), Photo.objects.count())
    print(f"{counts[0]:,} albums, {counts[1]:,} photos in {args.database}")
    rows = measure(pages(big_id, token), args.repeat)
    images = images_before_scrolling(args, "/a/big-album/")
    lines = [
        f"## Site pages ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"{counts[0]:,} albums (all public), {counts[1]:,} photos (all with renditions); "
        f"PostgreSQL; best of {args.repeat} after a warm-up; server time through Django's "
        f"test client. Targets: {TARGET_MS} ms a page, {TARGET_KB} KB of HTML for the first "
        f"screen, {TARGET_IMAGES} images before scrolling.",
        "",
        "| Page | URL | ms | queries | KB |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, url, ms, queries, size in rows:
        flag = "" if ms <= TARGET_MS else " **over**"
        lines.append(f"| {label} | `{url}` | {ms:.0f}{flag} | {queries} | {size / 1000:.1f} |")
    lines += [
        "",
        f"Images Chromium requests of the {BIG:,}-photo album at 1280 x 800 before scrolling: "
        f"**{images}** (target <= {TARGET_IMAGES}).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    slow = [row for row in rows if row[2] > TARGET_MS]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
