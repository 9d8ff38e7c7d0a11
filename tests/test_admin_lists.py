"""The admin's photo and run lists: which rows each filter, search and date step shows, and
which lists offer "Show counts".

These lists were rewritten to stay fast on a million photos (issues 16 and 28,
bench/admin_scale.py); the tests pin what they show, on SQLite and on PostgreSQL alike.
"""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.core.paginator import EmptyPage, Paginator
from django.db import connection
from django.db.models import Max, Min, QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from albums.admin import large_lists
from albums.admin.large_lists import EstimatedCountPaginator, IndexedDatesQuerySet
from albums.admin.photos import PhotoAdmin
from albums.models import Album, Photo, SyncRun, SyncStatus

PHOTOS = reverse("admin:albums_photo_changelist")
T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)


def photo(album, path, *, verified, uploaded=True, taken=None) -> Photo:
    return Photo.objects.create(
        album=album, path=path, key=f"albums/{album.slug}/{path}", size=1, mtime_ns=1,
        verified_at=verified, uploaded_at=verified if uploaded else None, taken_at=taken,
    )  # fmt: skip


def run(album, *, started, finished=True, dry_run=False, errors=()) -> SyncRun:
    return SyncRun.objects.create(
        album=album, trigger="schedule", dry_run=dry_run, started_at=started,
        finished_at=started + timedelta(minutes=5) if finished else None,
        status=SyncStatus.PARTIAL if errors else SyncStatus.SUCCESS,
        failed=len(errors), errors=[{"path": path, "error": "Permission denied"} for path in errors],
    )  # fmt: skip


@pytest.fixture
def library(db):
    """Three albums whose photos each filter must tell apart; their paths name the answer."""
    summer = Album.objects.create(name="Summer", slug="summer", folder="Summer")
    winter = Album.objects.create(name="Winter", slug="winter", folder="Winter")
    Album.objects.create(name="Empty", slug="empty", folder="Empty")  # no photos
    never = Album.objects.create(name="Never synced", slug="never", folder="Never")

    run(summer, started=T0 - timedelta(days=1), errors=["old-failure.jpg"])
    run(summer, started=T0, errors=["failed.jpg", "gone.jpg"])  # the last real run
    run(summer, started=T0 + timedelta(hours=1), dry_run=True, errors=["dry.jpg"])
    run(summer, started=T0 + timedelta(hours=2), finished=False)  # still running
    run(winter, started=T0 + timedelta(days=1), errors=["day 1/failed.jpg"])

    after, before = T0 + timedelta(minutes=1), T0 - timedelta(minutes=1)
    photo(summer, "verified.jpg", verified=after)
    photo(summer, "unverified.jpg", verified=before)
    photo(summer, "found.jpg", verified=after, uploaded=False)
    photo(summer, "failed.jpg", verified=before)  # failed, so not verified either
    photo(summer, "old-failure.jpg", verified=after)
    photo(summer, "dry.jpg", verified=after)
    photo(winter, "day 1/failed.jpg", verified=before)  # winter's run started a day later
    photo(winter, "failed.jpg", verified=T0 + timedelta(days=2))  # same name, not failed
    photo(never, "never.jpg", verified=before, uploaded=False)  # no finished run: verified
    return summer, winter


def listed(client, query: str = "") -> list[str]:
    response = client.get(PHOTOS + query)
    assert response.status_code == 200
    changelist = response.context["cl"]
    shown = [f"{photo.album.slug}/{photo.path}" for photo in changelist.result_list]
    assert changelist.result_count == len(shown)
    return sorted(shown)


@pytest.fixture
def client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def test_each_photo_filter_shows_exactly_its_photos(library, client):
    assert listed(client, "?failed=yes") == ["summer/failed.jpg", "winter/day 1/failed.jpg"]
    assert listed(client, "?state=unverified") == [
        "summer/failed.jpg",
        "summer/unverified.jpg",
        "winter/day 1/failed.jpg",
    ]
    assert listed(client, "?state=found") == ["never/never.jpg", "summer/found.jpg"]
    assert len(listed(client, "?state=uploaded")) == 7
    assert listed(client, f"?album__id__exact={library[1].pk}") == [
        "winter/day 1/failed.jpg",
        "winter/failed.jpg",
    ]
    assert listed(client, f"?failed=yes&album__id__exact={library[1].pk}") == [
        "winter/day 1/failed.jpg"
    ]


def test_the_album_filter_lists_the_albums_that_have_photos(library, client):
    choices = client.get(PHOTOS).content.decode()

    for album in Album.objects.exclude(slug="empty"):
        assert f"?album__id__exact={album.pk}" in choices
    assert f"?album__id__exact={Album.objects.get(slug='empty').pk}" not in choices


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("unverified", ["summer/unverified.jpg"]),  # a file name
        ("FAILED.JPG", ["summer/failed.jpg", "winter/day 1/failed.jpg", "winter/failed.jpg"]),
        ("winter", ["winter/day 1/failed.jpg", "winter/failed.jpg"]),  # an album's name
        ("winter day", ["winter/day 1/failed.jpg"]),  # every word must match
        ('"day 1/"', ["winter/day 1/failed.jpg"]),  # a quoted phrase
        ("albums/summer/dry", ["summer/dry.jpg"]),  # a key, as the bucket shows it
        ("nothing-like-this", []),
    ],
)
def test_a_search_matches_path_key_or_album_name_for_every_word(library, client, search, expected):
    assert listed(client, "?q=" + search) == expected


# A query that searches the photos' paths (PostgreSQL: UPPER("albums_photo"."path"::text) LIKE).
PATH_SEARCH = re.compile(r'"ALBUMS_PHOTO"\."PATH"(::TEXT\))? LIKE')


def test_a_search_with_few_matches_is_run_once_for_the_whole_page(library, client):
    """The list, its count and its date drill-down read the matches by id: the search's
    condition (a trigram scan on a large library) is evaluated in one query, not three."""
    with CaptureQueriesContext(connection) as queries:
        shown = listed(client, "?q=failed")

    assert shown == ["summer/failed.jpg", "winter/day 1/failed.jpg", "winter/failed.jpg"]
    searching = [q["sql"] for q in queries.captured_queries if PATH_SEARCH.search(q["sql"].upper())]
    assert len(searching) == 1


def test_a_search_with_many_matches_keeps_its_condition(library, client, monkeypatch):
    monkeypatch.setattr(large_lists, "FEW_MATCHES", 2)

    with CaptureQueriesContext(connection) as queries:
        shown = listed(client, "?q=failed")

    assert shown == ["summer/failed.jpg", "winter/day 1/failed.jpg", "winter/failed.jpg"]
    searching = [q["sql"] for q in queries.captured_queries if PATH_SEARCH.search(q["sql"].upper())]
    assert len(searching) > 1


def test_the_photo_list_shows_fifty_a_page(library, client):
    summer = library[0]
    for number in range(60):
        photo(summer, f"more/{number:02}.jpg", verified=T0)

    first = client.get(PHOTOS).context["cl"]
    second = client.get(PHOTOS + "?p=2").context["cl"]

    assert (len(first.result_list), len(second.result_list)) == (50, Photo.objects.count() - 50)


def test_a_year_of_the_drill_down_lists_its_photos_by_date_taken(library, client):
    winter = library[1]
    Photo.objects.filter(path="dry.jpg").update(taken_at=T0 + timedelta(days=3))
    Photo.objects.filter(path="failed.jpg", album=winter).update(taken_at=T0)
    Photo.objects.filter(path="unverified.jpg").update(taken_at=T0 + timedelta(days=1))
    Photo.objects.filter(path="never.jpg").update(taken_at=T0 - timedelta(days=400))

    response = client.get(PHOTOS + "?taken_at__year=2024")

    photos = [f"{p.album.slug}/{p.path}" for p in response.context["cl"].result_list]
    assert photos == ["winter/failed.jpg", "summer/unverified.jpg", "summer/dry.jpg"]


def test_the_photo_list_is_ordered_by_album_then_path(library, client):
    response = client.get(PHOTOS)

    photos = list(response.context["cl"].result_list)
    assert [(p.album_id, p.path) for p in photos] == sorted((p.album_id, p.path) for p in photos)


@pytest.fixture
def dated(db):
    album = Album.objects.create(name="Years", slug="years", folder="Years")
    moments = [
        datetime(2019, 3, 5, 10, tzinfo=UTC),
        datetime(2019, 3, 5, 23, tzinfo=UTC),
        datetime(2019, 11, 30, 12, tzinfo=UTC),
        datetime(2021, 1, 1, 3, tzinfo=UTC),  # still 2020 in New York
        datetime(2021, 7, 14, 12, tzinfo=UTC),
        None,
    ]
    for number, moment in enumerate(moments):
        photo(album, f"{number}.jpg", verified=T0, taken=moment)
    return album


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Pacific/Auckland"])
@pytest.mark.parametrize("few_rows", [False, True])
def test_the_date_steps_are_djangos_own(dated, zone, few_rows):
    fast = IndexedDatesQuerySet(model=Photo)
    if few_rows:
        fast = fast.few_rows()
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for kind, lookups in [
            ("year", {}),
            ("month", {"taken_at__year": 2019}),
            ("day", {"taken_at__year": 2019, "taken_at__month": 3}),
            ("day", {"taken_at__year": 2020, "taken_at__month": 12}),
        ]:
            django = list(QuerySet(model=Photo).filter(**lookups).datetimes("taken_at", kind))
            assert fast.filter(**lookups).datetimes("taken_at", kind) == django, (kind, lookups)
        taken = [p.taken_at for p in Photo.objects.exclude(taken_at=None)]
        with CaptureQueriesContext(connection) as queries:
            ends = fast.aggregate(first=Min("taken_at"), last=Max("taken_at"))
        assert ends == {"first": min(taken), "last": max(taken)}
        # Never an aggregate over every row: a long list's ends are its first and last rows.
        assert not [q for q in queries.captured_queries if "MIN(" in q["sql"].upper()]


def test_the_date_drill_down_offers_the_years_with_photos(dated, client):
    page = client.get(PHOTOS).content.decode()
    assert "?taken_at__year=2019" in page and "?taken_at__year=2021" in page
    assert "?taken_at__year=2020" not in page

    searched = client.get(PHOTOS + "?q=1.jpg&taken_at__year=2019").content.decode()
    assert "taken_at__month=3" in searched and "taken_at__month=11" not in searched


def test_a_short_list_reads_its_dates_in_one_query(dated, client):
    with CaptureQueriesContext(connection) as queries:
        page = client.get(PHOTOS + "?q=.jpg").content.decode()

    sql = [query["sql"] for query in queries.captured_queries]
    reads = [text for text in sql if text.startswith('SELECT "albums_photo"."taken_at"')]
    assert len(reads) == 1 and "DISTINCT" not in reads[0] and "LIMIT" not in reads[0]
    assert "?q=.jpg&amp;taken_at__year=2019" in page and "taken_at__year=2020" not in page


def test_a_long_list_is_counted_up_to_the_limit_then_estimated(db, library, monkeypatch):
    monkeypatch.setattr(large_lists, "EXACT_COUNT_LIMIT", 3)
    paginator = EstimatedCountPaginator(Photo.objects.order_by("pk"), 2)

    if connection.vendor == "postgresql":
        assert paginator.count >= 4  # the planner's estimate, never below what was counted
    else:
        assert paginator.count == Photo.objects.count()  # one machine: counted exactly
    short = EstimatedCountPaginator(Photo.objects.filter(path="found.jpg"), 2)
    assert short.count == 1


@pytest.fixture
def shelf(db, monkeypatch):
    """300 photos in three albums, 20 a page, and pages read by id from the 3rd on (the
    deferred join), so that a plain OFFSET and the deferred join can be compared."""
    monkeypatch.setattr(large_lists, "DEFERRED_JOIN_OFFSET", 40)
    monkeypatch.setattr(PhotoAdmin, "list_per_page", 20)
    albums = [
        Album.objects.create(name=name, slug=name.lower(), folder=name)
        for name in ("Zebra", "Apple", "Mango")  # listed by id, not by name
    ]
    for number in range(300):  # paths out of the order they are made in; a third found
        folder = "aBbx"[number % 4]
        photo(albums[number % 3], f"{folder}/{number:03}.jpg", verified=T0, uploaded=number % 3)


@pytest.mark.parametrize(
    "query", ["", "state=found", "q=x/", "state=uploaded&q=b/", "album__id__exact={apple}&q=jpg"]
)
def test_a_deep_page_shows_the_rows_of_a_plain_offset_in_its_order(shelf, client, query):
    query = query.format(apple=Album.objects.get(slug="apple").pk)
    pages = -(-client.get(f"{PHOTOS}?{query}").context["cl"].result_count // 20)
    assert pages >= 4  # so at least one page is read by id

    for number in range(1, pages + 1):
        changelist = client.get(f"{PHOTOS}?{query}&p={number}").context["cl"]
        bottom = (number - 1) * 20
        plain = changelist.queryset[bottom : bottom + 20]  # what Django's Paginator reads

        assert [photo.pk for photo in changelist.result_list] == [photo.pk for photo in plain]


def test_a_deep_page_reads_ids_then_rows(shelf, client):
    with CaptureQueriesContext(connection) as queries:
        client.get(PHOTOS + "?p=3")

    offsets = [query["sql"] for query in queries.captured_queries if "OFFSET" in query["sql"]]
    assert len(offsets) == 1 and offsets[0].startswith('SELECT "albums_photo"."id" AS "pk" FROM')
    assert any('"albums_photo"."id" IN (' in query["sql"] for query in queries.captured_queries)


def test_the_deferred_join_pages_as_djangos_paginator(shelf):
    photos = Photo.objects.order_by("album_id", "path")
    ours, django = EstimatedCountPaginator(photos, 7, orphans=3), Paginator(photos, 7, orphans=3)

    assert (ours.count, ours.num_pages) == (django.count, django.num_pages)
    for number in django.page_range:
        page, expected = ours.page(number), django.page(number)
        assert [photo.pk for photo in page] == [photo.pk for photo in expected]
        assert (page.start_index(), page.end_index()) == (
            expected.start_index(),
            expected.end_index(),
        )
    with pytest.raises(EmptyPage):
        ours.page(django.num_pages + 1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL index")
def test_the_photo_list_order_has_an_index_with_the_ids_on_postgresql(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s",
            [Photo._meta.db_table, "photo_album_path_id_idx"],
        )
        (definition,) = cursor.fetchone()
    assert definition.endswith("USING btree (album_id, path) INCLUDE (id)")


def test_the_photo_list_shows_no_full_count(library, client):
    response = client.get(PHOTOS + "?q=failed")

    page = response.content.decode()
    assert "3 results" in page and "Show all" in page
    assert f"{Photo.objects.count()} total" not in page  # no second count of the whole table
    assert response.context["cl"].full_result_count is None


ALBUMS = reverse("admin:albums_album_changelist")
RUNS = reverse("admin:albums_syncrun_changelist")
TOKENS = reverse("admin:albums_apitoken_changelist")


@pytest.mark.parametrize(
    ("url", "offered"),
    [(ALBUMS, True), (PHOTOS, False), (RUNS, False), (TOKENS, False)],
)
def test_show_counts_is_offered_only_where_counting_stays_fast(library, client, url, offered):
    """Django counts every choice of every filter over the whole list: the albums are a
    few thousand at most; photos and runs grow without bound (issue 28)."""
    page = client.get(url).content.decode()

    assert ("Show counts" in page) is offered
    assert ("_facets=True" in page) is offered


@pytest.mark.parametrize(
    ("url", "query"),
    [
        (PHOTOS, ""),
        (PHOTOS, "state=unverified&"),
        (PHOTOS, "state=found&q=jpg&"),
        (RUNS, ""),
        (RUNS, "status__exact=partial&"),
    ],
)
def test_counts_asked_for_by_hand_are_not_counted(library, client, url, query):
    """`?_facets=True` typed in the address of a list without counts runs the list's own
    queries, not one COUNT per filter choice."""
    with CaptureQueriesContext(connection) as plain:
        expected = client.get(f"{url}?{query}")
    with CaptureQueriesContext(connection) as asked:
        response = client.get(f"{url}?{query}_facets=True")

    def counts(queries):
        return sum(q["sql"].upper().count("COUNT(") for q in queries.captured_queries)

    assert response.status_code == expected.status_code
    assert len(asked.captured_queries) == len(plain.captured_queries)
    assert counts(asked) == counts(plain)
    assert not response.context["cl"].add_facets


def test_the_album_list_counts_each_choice(library, client):
    summer = library[0]
    Album.objects.filter(pk=summer.pk).update(
        last_synced_at=T0, last_sync_status=SyncStatus.PARTIAL, visibility="public"
    )

    page = client.get(ALBUMS + "?_facets=True").content.decode()

    assert "Never synced (3)" in page
    assert "Last sync had problems (1)" in page
    assert "Public: listed on the site (1)" in page
    assert "Partly failed (1)" in page


def test_unverified_compares_each_photo_with_its_own_albums_last_run(library, client):
    """Summer's last run started at T0, winter's a day later: a photo verified between the
    two is verified in summer and not in winter."""
    summer, winter = library
    photo(summer, "between.jpg", verified=T0 + timedelta(hours=12))
    photo(winter, "between.jpg", verified=T0 + timedelta(hours=12))
    photo(winter, "after.jpg", verified=T0 + timedelta(days=1, minutes=1))

    assert listed(client, "?state=unverified") == [
        "summer/failed.jpg",
        "summer/unverified.jpg",
        "winter/between.jpg",
        "winter/day 1/failed.jpg",
    ]
    assert listed(client, f"?state=unverified&album__id__exact={winter.pk}") == [
        "winter/between.jpg",
        "winter/day 1/failed.jpg",
    ]


def test_unverified_spread_over_many_albums_lists_each_photo_once(db, client):
    """One unverified photo in each of many albums, each with several runs (dry runs and a
    run still going after the last finished one): each listed once, none of the others."""
    expected = []
    for number in range(12):
        album = Album.objects.create(name=f"A{number}", slug=f"a{number}", folder=f"A{number}")
        started = T0 + timedelta(hours=number)
        run(album, started=started - timedelta(days=1))
        run(album, started=started)
        run(album, started=started + timedelta(hours=1), dry_run=True)
        run(album, started=started + timedelta(hours=2), finished=False)
        photo(album, "old.jpg", verified=started - timedelta(minutes=1))
        photo(album, "new.jpg", verified=started + timedelta(minutes=1))
        expected.append(f"a{number}/old.jpg")

    assert listed(client, "?state=unverified") == sorted(expected)


def test_the_excluded_filter_shows_the_photos_an_exclusion_keeps(library, client):
    summer, winter = library
    for album, path in [(summer, "@eaDir/thumb.jpg"), (winter, "raw/IMG_1.CR2")]:
        photo(album, path, verified=T0 - timedelta(days=3))
    Photo.objects.filter(path__in=["@eaDir/thumb.jpg", "raw/IMG_1.CR2"]).update(excluded_at=T0)

    assert listed(client, "?state=excluded") == ["summer/@eaDir/thumb.jpg", "winter/raw/IMG_1.CR2"]
    assert listed(client, f"?state=excluded&album__id__exact={winter.pk}") == [
        "winter/raw/IMG_1.CR2"
    ]
