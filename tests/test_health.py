"""GET /api/health/ and /api/health/live/: what a monitor, a load balancer or a container
orchestrator polls, without logging in (issues 16 and 28)."""

import json
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from albums import health
from albums.models import Album, SyncRun, SyncStatus
from albums.schedule import ensure_sync_schedule
from albums.tasks import sync_due_albums
from tests.conftest import FAKE_SECRET, closed_port, run_manage, use_s3, write_photo

HEALTH = "/api/health/"
LIVE = "/api/health/live/"
UNKEYABLE = "back\\slash.jpg"  # a name that cannot be a key: its upload fails alone


def iso(moment) -> str:
    return DjangoJSONEncoder().default(moment)


def scheduled_album(slug: str, *, age: timedelta, on_schedule=True) -> Album:
    album = Album.objects.create(name=slug, slug=slug, folder=slug, sync_on_schedule=on_schedule)
    age_album(album, age)
    return album


def age_album(album: Album, age: timedelta) -> None:
    Album.objects.filter(pk=album.pk).update(created_at=timezone.now() - age)


def run(album: Album, status: str, *, ago: timedelta, dry_run=False, kind="sync") -> SyncRun:
    """A run in the album's past, as the runs table keeps it."""
    finished = timezone.now() - ago
    return SyncRun.objects.create(
        album=album, kind=kind, trigger="schedule", status=status, dry_run=dry_run,
        started_at=finished - timedelta(seconds=30), finished_at=finished,
    )  # fmt: skip


@pytest.fixture
def scheduled(on_commit, local_bucket):
    """The schedule's task, as a cluster runs it (sync mode: the runs run on commit)."""

    def run_the_schedule() -> list[SyncRun]:
        with on_commit():
            ids = sync_due_albums()
        return list(SyncRun.objects.filter(pk__in=ids).order_by("album__slug"))

    return run_the_schedule


@pytest.fixture
def partly_failing(photos_root, db) -> Album:
    """An album on schedule for a month, one of whose files can never be synced."""
    write_photo(photos_root / "Winter" / "fine.jpg")
    write_photo(photos_root / "Winter" / UNKEYABLE)
    album = Album.objects.create(name="Winter", slug="winter", folder="Winter")
    age_album(album, timedelta(days=30))
    return album


def test_a_healthy_site_answers_200_to_anyone(db):
    album = scheduled_album("summer", age=timedelta(days=30))
    last = run(album, SyncStatus.SUCCESS, ago=timedelta(minutes=50))
    scheduled_album("old-and-unscheduled", age=timedelta(days=300), on_schedule=False)

    response = Client().get(HEALTH)

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert response.json() == {
        "status": "ok",
        "database": True,
        "worker_seen": True,  # the tests' sync mode: tasks run in the caller
        "interval_minutes": 60,
        "scheduled_albums": 1,
        "overdue_albums": 0,
        "partial_albums": 0,
        "failed_albums": 0,
        "oldest_last_sync": iso(last.finished_at),
        "overdue": False,
        "problems": [],
    }
    live = Client().get(LIVE)
    assert live.status_code == 200
    assert live["Cache-Control"].startswith("max-age=0")
    assert live.json() == {"status": "ok", "database": True, "problems": []}


def test_an_album_whose_syncs_end_partial_is_degraded_not_failing(partly_failing, scheduled):
    """Issue 28: one unreadable file made every sync of its album partial, which was no
    success, so two intervals later the site answered 503 and left a load balancer's
    rotation. A partial sync went through the album: it is "degraded", 200."""
    # Its syncs have ended partial for the whole month; never a success.
    for hours in (3, 2, 1):
        run(partly_failing, SyncStatus.PARTIAL, ago=timedelta(hours=hours))
    [partial] = scheduled()
    assert partial.status == SyncStatus.PARTIAL

    response = Client().get(HEALTH)

    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["overdue"], data["overdue_albums"]) == ("degraded", False, 0)
    assert (data["partial_albums"], data["failed_albums"]) == (1, 0)
    assert data["oldest_last_sync"] == iso(partial.finished_at)
    assert data["problems"] == [health.LAST_SYNC_PARTIAL.format(count=1)]
    assert Client().get(LIVE).status_code == 200


def test_albums_whose_syncs_fail_for_two_intervals_are_failing(album, scheduled):
    age_album(album, timedelta(days=30))
    run(album, SyncStatus.SUCCESS, ago=timedelta(minutes=200))
    went_through = run(album, SyncStatus.PARTIAL, ago=timedelta(minutes=130))
    # Neither a failure, a dry run, nor a verification or a restore that passes is a sync
    # that went through.
    run(album, SyncStatus.FAILED, ago=timedelta(minutes=65))
    run(album, SyncStatus.SUCCESS, ago=timedelta(minutes=2), dry_run=True)
    run(album, SyncStatus.SUCCESS, ago=timedelta(minutes=2), kind=SyncRun.Kind.VERIFY)
    run(album, SyncStatus.SUCCESS, ago=timedelta(minutes=2), kind=SyncRun.Kind.RESTORE)
    album.path.rename(album.path.with_name("unmounted"))
    fresh = scheduled_album("fresh", age=timedelta(days=30))
    run(fresh, SyncStatus.SUCCESS, ago=timedelta(minutes=10))
    scheduled_album("just-added", age=timedelta(minutes=5))  # never synced, not yet due
    Album.objects.exclude(pk=album.pk).update(sync_on_schedule=False)
    [failed] = scheduled()  # the schedule's sync of the album fails as a whole, again
    assert failed.status == SyncStatus.FAILED
    Album.objects.update(sync_on_schedule=True)

    response = Client().get(HEALTH)

    assert response.status_code == 503
    data = response.json()
    assert (data["status"], data["database"], data["overdue"]) == ("failing", True, True)
    assert (data["scheduled_albums"], data["overdue_albums"]) == (3, 1)
    assert (data["partial_albums"], data["failed_albums"]) == (0, 1)
    assert data["oldest_last_sync"] == iso(went_through.finished_at)
    assert data["problems"] == [
        health.OVERDUE.format(count=1, minutes=120),
        health.LAST_SYNC_FAILED.format(count=1),
    ]
    # The process and its database answer: a load balancer keeps it in rotation.
    assert Client().get(LIVE).status_code == 200


def test_a_failed_sync_not_yet_overdue_is_degraded(album, scheduled):
    age_album(album, timedelta(days=30))
    run(album, SyncStatus.SUCCESS, ago=timedelta(minutes=70))
    album.path.rename(album.path.with_name("unmounted"))
    scheduled()

    response = Client().get(HEALTH)

    assert (response.status_code, response.json()["status"]) == (200, "degraded")
    assert response.json()["problems"] == [health.LAST_SYNC_FAILED.format(count=1)]


def test_a_first_sync_that_goes_on_over_several_runs_is_not_failing(db):
    """A large library's first sync stops at its time budget and goes on in the next run
    (status continued): it is making its way, not failing."""
    album = scheduled_album("large", age=timedelta(hours=5))
    for hours in (4, 3, 2, 1):
        run(album, SyncStatus.CONTINUED, ago=timedelta(hours=hours))

    response = Client().get(HEALTH)

    assert response.status_code == 200 and response.json()["overdue_albums"] == 0


def test_an_album_never_synced_is_overdue_two_intervals_after_it_was_added(db):
    scheduled_album("new", age=timedelta(minutes=119))
    assert Client().get(HEALTH).status_code == 200

    Album.objects.update(created_at=timezone.now() - timedelta(minutes=121))
    response = Client().get(HEALTH)
    assert response.status_code == 503
    assert response.json()["oldest_last_sync"] is None


def test_the_interval_is_the_schedules_own_once_edited_in_the_admin(db):
    album = scheduled_album("daily", age=timedelta(days=30))
    run(album, SyncStatus.SUCCESS, ago=timedelta(hours=5))
    assert Client().get(HEALTH).status_code == 503  # 5 h > 2 x 60 min

    schedule, _ = ensure_sync_schedule()
    schedule.minutes = 180
    schedule.save()
    assert Client().get(HEALTH).json()["interval_minutes"] == 180
    assert Client().get(HEALTH).status_code == 200  # 5 h < 2 x 3 h

    schedule.schedule_type, schedule.minutes = schedule.DAILY, None
    schedule.save()
    assert Client().get(HEALTH).json()["interval_minutes"] == 24 * 60


def test_no_worker_is_degraded_not_failing(db, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # a real check: no cluster has reported

    response = Client().get(HEALTH)

    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["worker_seen"]) == ("degraded", False)
    assert data["problems"] == [health.NO_WORKER]
    assert Client().get(LIVE).status_code == 200


def test_the_checks_cost_a_few_queries_whatever_the_library(db, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # the worker's heartbeat is read, as in production

    def queries(url: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert Client().get(url).status_code in (200, 503)
        return [query["sql"] for query in captured.captured_queries]

    first = scheduled_album("first", age=timedelta(days=30))
    run(first, SyncStatus.SUCCESS, ago=timedelta(minutes=10))
    one_album = queries(HEALTH)
    for number in range(30):
        album = scheduled_album(f"album-{number}", age=timedelta(days=30))
        for minutes in (190, 130, 70, 10):
            run(album, SyncStatus.PARTIAL, ago=timedelta(minutes=minutes))

    # SELECT 1, the schedule, the counts, the album that waited longest, the heartbeat.
    assert len(one_album) == len(queries(HEALTH)) == 5
    assert queries(LIVE) == ["SELECT 1"]
    with CaptureQueriesContext(connection) as captured:
        Client().head(LIVE)
    assert len(captured) == 1


@pytest.mark.parametrize("url", [HEALTH, LIVE])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_only_get_is_allowed(db, url, method):
    response = getattr(Client(enforce_csrf_checks=True), method)(url)

    assert (response.status_code, response["Allow"]) == (405, "GET, HEAD")
    assert response.json() == {"error": health.METHOD_NOT_ALLOWED}
    assert Client().head(url).status_code == 200


def test_the_answer_names_no_album_path_or_secret(
    settings, album, partly_failing, photos_root, scheduled
):
    album.path.rename(album.path.with_name("unmounted"))
    [failed, partial] = scheduled()  # one album failing, the other degraded
    use_s3(settings)  # the bucket's credentials are configured, with a recognisable secret
    age_album(album, timedelta(days=10))
    SyncRun.objects.filter(pk=failed.pk).update(finished_at=timezone.now() - timedelta(days=3))
    assert (failed.status, partial.status) == (SyncStatus.FAILED, SyncStatus.PARTIAL)

    response = Client().get(HEALTH)

    assert response.status_code == 503
    assert response.json()["problems"] == [
        health.OVERDUE.format(count=1, minutes=120),
        health.LAST_SYNC_FAILED.format(count=1),
        health.LAST_SYNC_PARTIAL.format(count=1),
    ]
    for text in (response.content.decode(), Client().get(LIVE).content.decode()):
        for secret in (FAKE_SECRET, "FAKEACCESSKEY", django_settings.SECRET_KEY):
            assert secret not in text
        for private in (album.name, album.slug, album.folder, str(photos_root), "photosite-test"):
            assert private not in text
        for private in (partly_failing.name, partly_failing.slug, "slash", "fine.jpg"):
            assert private not in text
        for error in (failed.message, *[entry["error"] for entry in partial.errors]):
            assert error and error not in text


def test_plain_http_is_answered_where_every_other_page_goes_to_https(db, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert Client().get(HEALTH).status_code == 200
    assert Client().get(LIVE).status_code == 200
    assert Client().get("/admin/login/").status_code == 301


DOWN_DATABASES = {
    "postgresql-server-down": (
        f"postgres://photosite:{FAKE_SECRET}@127.0.0.1:{closed_port()}/photosite"
    ),
    "sqlite-file-unreachable": "sqlite:////nonexistent/photosite/db.sqlite3",
}


@pytest.mark.parametrize("database", DOWN_DATABASES.values(), ids=DOWN_DATABASES.keys())
def test_a_database_that_does_not_answer_is_503_and_names_nothing(tmp_path, database):
    """A real process whose database cannot be reached: no traceback, no host, user or
    password in the answers or the log."""
    code = (
        "from django.test import Client\n"
        "for url in ('/api/health/', '/api/health/live/'):\n"
        "    r = Client().get(url); print(r.status_code); print(r.content.decode())"
    )
    process = run_manage(
        "shell", "--verbosity", "0", "-c", code,
        env={"HOME": str(tmp_path), "DJANGO_SECRET_KEY": "health", "DATABASE_URL": database,
             "DJANGO_ALLOWED_HOSTS": "testserver", "DJANGO_HTTPS": "0"},
    )  # fmt: skip

    assert process.returncode == 0, process.stderr
    status, body, live_status, live_body = process.stdout.strip().split("\n")
    assert (status, live_status) == ("503", "503")
    data = json.loads(body)
    assert (data["status"], data["database"], data["worker_seen"]) == ("failing", False, None)
    assert data["problems"] == [health.DATABASE_DOWN]
    assert json.loads(live_body) == {
        "status": "failing",
        "database": False,
        "problems": [health.DATABASE_DOWN],
    }
    for text in (process.stdout, process.stderr):
        assert FAKE_SECRET not in text and "Traceback" not in text
    assert "127.0.0.1" not in process.stdout and "photosite:" not in process.stdout
    assert "nonexistent" not in process.stdout
